//! Channel accounts (the end-to-end suite's `channel-accounts.test.mjs`): a business's provider
//! credentials, configured through the admin API and never shown in clear.

use super::move_business::shard_of;
use crate::app::test;
use crate::partners::meta::numeric_id;
use crate::steps::api::UNKNOWN_ID;

/// A business id no business has.
const UNKNOWN_BUSINESS: &str = "biz_00000000000000000000000000000000";
use crate::steps::api::assert_error;
use crate::steps::channels::{receive_whatsapp, whatsapp_account};
use crate::steps::text;
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::json;

#[test]
fn an_account_is_created_with_its_secrets_which_are_listed_by_name_only() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let secrets = json!({ "app_secret": unique("app"), "verify_token": unique("verify"), "access_token": unique("access") });
        let path = format!("/admin/businesses/{}/channel-accounts", business.id);
        let created = app
            .admin(
                Method::Post,
                &path,
                Some(json!({
                    "channel": "whatsapp", "provider": "meta", "address": numeric_id(), "name": "Support line",
                    "secrets": secrets, "settings": { "api_base_url": "https://graph.acme.example/v21.0" }
                })),
            )
            .await
            .expect(201);
        let body = created.json();
        assert_eq!(body["channel"], "whatsapp");
        assert_eq!(body["provider"], "meta");
        assert_eq!(
            body["secrets_set"],
            json!(["access_token", "app_secret", "verify_token"])
        );
        assert_eq!(
            body["webhook_path"],
            format!("/webhooks/meta/{}", text(&body["id"]))
        );
        assert_eq!(
            body["settings"],
            json!({ "api_base_url": "https://graph.acme.example/v21.0" })
        );
        let listed = app.admin(Method::Get, &path, None).await.expect(200);
        assert_eq!(
            listed.json()["channel_accounts"].as_array().map(Vec::len),
            Some(1)
        );
        for (_, value) in secrets.as_object().into_iter().flatten() {
            assert!(
                !created.text().contains(text(value)),
                "no secret in the create response"
            );
            assert!(!listed.text().contains(text(value)), "no secret in the listing");
        }
    });
}

#[test]
fn a_secret_is_rotated_by_naming_only_what_changes() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let created = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/channel-accounts", business.id),
                Some(json!({
                    "channel": "sms", "provider": "twilio", "address": "+1 415 555 0123",
                    "secrets": { "auth_token": "old" }, "settings": { "account_sid": "AC123" }
                })),
            )
            .await
            .expect(201)
            .json();
        assert_eq!(
            created["address"], "+14155550123",
            "the Twilio number is stored in E.164"
        );
        let rotated = app
            .admin(
                Method::Patch,
                &format!("/admin/channel-accounts/{}", text(&created["id"])),
                Some(json!({ "secrets": { "auth_token": "new-token" } })),
            )
            .await
            .expect(200);
        let body = rotated.json();
        assert_eq!(body["secrets_set"], json!(["auth_token"]));
        assert_eq!(body["settings"], json!({ "account_sid": "AC123" }));
        assert!(!rotated.text().contains("new-token"));
        assert_error(
            &app.admin(
                Method::Patch,
                &format!("/admin/channel-accounts/{UNKNOWN_ID}"),
                Some(json!({ "name": "x" })),
            )
            .await,
            404,
            "not_found",
            "unknown account",
        );
    });
}

#[test]
fn incomplete_or_inconsistent_accounts_are_refused_with_the_field_at_fault() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let meta = json!({ "app_secret": "a", "verify_token": "v", "access_token": "t" });
        let cases = [
            (
                json!({ "provider": "meta", "address": "1", "secrets": meta }),
                "channel",
                "no channel",
            ),
            (
                json!({ "channel": "telegram", "provider": "meta", "address": "1", "secrets": meta }),
                "channel",
                "an unknown channel",
            ),
            (
                json!({ "channel": "email", "provider": "meta", "address": "1", "secrets": meta }),
                "provider",
                "meta does not carry email",
            ),
            (
                json!({ "channel": "whatsapp", "provider": "meta", "address": "abc", "secrets": meta }),
                "address",
                "a non-numeric Meta id",
            ),
            (
                json!({ "channel": "whatsapp", "provider": "meta", "address": "1", "secrets": { "app_secret": "a" } }),
                "secrets.verify_token",
                "a missing secret",
            ),
            (
                json!({ "channel": "sms", "provider": "twilio", "address": "not a phone", "secrets": { "auth_token": "t" }, "settings": { "account_sid": "AC1" } }),
                "address",
                "a bad phone",
            ),
            (
                json!({ "channel": "sms", "provider": "twilio", "address": "+14155550100", "secrets": { "auth_token": "t" } }),
                "settings.account_sid",
                "a missing setting",
            ),
            (
                json!({ "channel": "email", "provider": "mailgun", "address": "nope", "secrets": { "signing_key": "s", "api_key": "k" }, "settings": { "domain": "d" } }),
                "address",
                "a bad email",
            ),
            (
                json!({ "channel": "whatsapp", "provider": "meta", "address": "1", "secrets": { "app_secret": 7, "verify_token": "v", "access_token": "t" } }),
                "secrets.app_secret",
                "a secret that is not a string",
            ),
        ];
        let path = format!("/admin/businesses/{}/channel-accounts", business.id);
        for (body, field, description) in cases {
            let answer = app.admin(Method::Post, &path, Some(body)).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], field, "{description}");
        }
    });
}

#[test]
fn one_provider_address_belongs_to_one_account() {
    test(|app| async move {
        let first = app.business("First").await;
        let second = app.business("Second").await;
        let body = json!({
            "channel": "facebook", "provider": "meta", "address": numeric_id(),
            "secrets": { "app_secret": "a", "verify_token": "v", "access_token": "t" }
        });
        let accounts = |id: &str| format!("/admin/businesses/{id}/channel-accounts");
        app.admin(Method::Post, &accounts(&first.id), Some(body.clone()))
            .await
            .expect(201);
        assert_error(
            &app.admin(Method::Post, &accounts(&second.id), Some(body.clone()))
                .await,
            409,
            "conflict",
            "the same page twice",
        );
        let mut elsewhere = body;
        elsewhere["address"] = json!(numeric_id());
        assert_error(
            &app.admin(Method::Post, &accounts(UNKNOWN_ID), Some(elsewhere))
                .await,
            404,
            "not_found",
            "unknown business",
        );
        assert_error(
            &app.json(
                Method::Get,
                &accounts(&first.id),
                &[("authorization", "Bearer wrong")],
                None,
            )
            .await,
            401,
            "unauthorized",
            "wrong admin token",
        );
    });
}

#[test]
fn the_operator_releases_an_address_a_business_claimed_without_owning_it() {
    test(|app| async move {
        let squatter = app.business("Squatter").await;
        let owner = app.business("Owner").await;
        let page = numeric_id();
        let account = |page: &str| {
            json!({
                "channel": "facebook", "provider": "meta", "address": page,
                "secrets": { "app_secret": unique("app"), "verify_token": unique("verify"), "access_token": unique("access") }
            })
        };
        let claimed = app
            .api(
                &squatter.key,
                Method::Post,
                "/api-channel-accounts",
                Some(account(&page)),
            )
            .await
            .expect(201)
            .json();
        let refused = app
            .api(
                &owner.key,
                Method::Post,
                "/api-channel-accounts",
                Some(account(&page)),
            )
            .await;
        assert_error(&refused, 409, "conflict", "the page is claimed");
        let path = format!("/admin/channel-accounts/{}", text(&claimed["id"]));
        let deleted = app.admin(Method::Delete, &path, None).await.expect(200).json();
        assert_eq!(deleted["address"], page.as_str());
        app.api(
            &owner.key,
            Method::Post,
            "/api-channel-accounts",
            Some(account(&page)),
        )
        .await
        .expect(201);
        let left = app
            .api(&squatter.key, Method::Get, "/api-channel-accounts", None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            left["channel_accounts"],
            json!([]),
            "the squatter's account is gone"
        );
        assert_error(
            &app.admin(Method::Delete, &path, None).await,
            404,
            "not_found",
            "deleted once",
        );
        let log = app
            .api(&squatter.key, Method::Get, "/api-audit-log?limit=20", None)
            .await
            .expect(200)
            .json();
        let entries = log["entries"].as_array().cloned().unwrap_or_default();
        let entry = entries
            .iter()
            .find(|entry| entry["action"] == "channel_account.deleted");
        assert_eq!(entry.map(|entry| &entry["actor"]), Some(&json!("admin")), "{log}");
        assert_eq!(
            entry.map(|entry| &entry["detail"]["address"]),
            Some(&json!(page)),
            "{log}"
        );
    });
}

#[test]
fn a_squatter_cannot_pin_an_address_with_its_own_inbound_the_operator_hands_it_to_its_owner() {
    test(|app| async move {
        let squatter = app.business("Squatter").await;
        // The owner on the squatter's shard, where the squatter's account row holds the address
        // too (one account an address on a shard), not only the directory's claim.
        let mut owner = app.business("Owner").await;
        for _ in 0..20 {
            if shard_of(&app, &owner) == shard_of(&app, &squatter) {
                break;
            }
            owner = app.business("Owner").await;
        }
        assert_eq!(shard_of(&app, &owner), shard_of(&app, &squatter));
        let held = whatsapp_account(&app, &squatter.id, None).await;
        // Signed with the secret the squatter set itself: a conversation now refers to the account.
        receive_whatsapp(&app, &held, "+15550001111", "made up").await;
        let account = json!({
            "channel": "whatsapp", "provider": "meta", "address": held.address,
            "secrets": { "app_secret": unique("app"), "verify_token": unique("verify"), "access_token": unique("access") }
        });
        let path = format!("/admin/channel-accounts/{}", held.id);
        assert_error(
            &app.admin(Method::Delete, &path, None).await,
            409,
            "conflict",
            "its conversations keep it",
        );
        let release = format!("{path}/release");
        assert_error(
            &app.api(&squatter.key, Method::Post, &release, Some(json!({})))
                .await,
            401,
            "unauthorized",
            "a business does not release addresses",
        );
        assert_error(
            &app.admin(
                Method::Post,
                &release,
                Some(json!({ "to_business_id": UNKNOWN_BUSINESS })),
            )
            .await,
            422,
            "validation_failed",
            "to a business that does not exist",
        );
        let released = app
            .admin(
                Method::Post,
                &release,
                Some(json!({ "to_business_id": owner.id })),
            )
            .await
            .expect(200)
            .json();
        assert!(released["paused_at"].is_string(), "paused: {released}");
        assert_eq!(
            released["address"],
            format!("released:{}:{}", held.id, held.address),
            "the account gives its address up"
        );
        let again = app
            .api(
                &squatter.key,
                Method::Post,
                "/api-channel-accounts",
                Some(account.clone()),
            )
            .await;
        assert_error(
            &again,
            409,
            "conflict",
            "handed to its owner, not free for the squatter",
        );
        app.api(&owner.key, Method::Post, "/api-channel-accounts", Some(account))
            .await
            .expect(201);
        let conversations = app
            .api(&squatter.key, Method::Get, "/api-channel-accounts", None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            conversations["channel_accounts"][0]["id"],
            held.id.as_str(),
            "the squatter's account stays, with its history: {conversations}"
        );
        let log = app
            .api(&squatter.key, Method::Get, "/api-audit-log?limit=20", None)
            .await
            .expect(200)
            .json();
        assert!(
            log["entries"].as_array().is_some_and(|entries| entries
                .iter()
                .any(|entry| entry["action"] == "channel_account.released"
                    && entry["detail"]["to_business_id"] == owner.id.as_str())),
            "{log}"
        );
    });
}

#[test]
fn a_business_deletes_only_its_own_accounts_and_only_those_nothing_refers_to() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let other = app.business("Other").await;
        let used = whatsapp_account(&app, &acme.id, None).await;
        receive_whatsapp(&app, &used, "+353871234567", "hello").await;
        let unused = whatsapp_account(&app, &acme.id, None).await;
        let delete = |key: &str, id: &str| {
            let (key, path) = (key.to_owned(), format!("/api-channel-accounts/{id}"));
            let app = &app;
            async move { app.api(&key, Method::Delete, &path, None).await }
        };
        assert_error(
            &delete(&other.key, &unused.id).await,
            404,
            "not_found",
            "another business's account",
        );
        let in_use = delete(&acme.key, &used.id).await;
        let error = assert_error(&in_use, 409, "conflict", "an account with a conversation");
        assert!(text(&error["message"]).contains("1 conversations"), "{error}");
        delete(&acme.key, &unused.id).await.expect(200);
        let listed = app
            .api(&acme.key, Method::Get, "/api-channel-accounts", None)
            .await
            .expect(200)
            .json();
        let ids: Vec<&str> = listed["channel_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|account| text(&account["id"]))
            .collect();
        assert_eq!(
            ids,
            vec![used.id.as_str()],
            "the used account stays, the other is gone"
        );
        let reclaimed = app
            .api(
                &other.key,
                Method::Post,
                "/api-channel-accounts",
                Some(json!({
                    "channel": "whatsapp", "provider": "meta", "address": unused.address,
                    "secrets": { "app_secret": "a", "verify_token": "v", "access_token": "t" }
                })),
            )
            .await;
        reclaimed.expect(201);
    });
}
