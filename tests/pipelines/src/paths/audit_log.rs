//! The audit log (the end-to-end suite's `audit-log.test.mjs`): admin and security actions on a
//! business are recorded with who (the admin token, or the API key by its prefix), what, when and
//! from where, and `GET /admin/businesses/{id}/audit-log` lists them newest first, a page at a
//! time. No secret appears in it: not a key, a provider secret, a webhook signing secret or an
//! SSO token.

use crate::app::{App, Business, CLIENT_IP, test};
use crate::partners::meta::numeric_id;
use crate::steps::api::{assert_error, is_rfc3339_utc, is_uuid, rfc3339_ms};
use crate::steps::customers::sync;
use crate::steps::text;
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Lets a second pass: the log orders by time, and each action of these tests happens after the
/// one before, as a client's calls do.
fn later(app: &App) {
    app.stack.advance(Duration::from_secs(1));
}

/// A business made step by step as [`App::business`] makes one (created, its limit raised, a
/// key issued), a second between steps.
pub async fn business_over_time(app: &App, name: &str) -> Business {
    later(app);
    let created = app
        .admin(
            Method::Post,
            "/admin/businesses",
            Some(json!({ "name": name, "default_country": "IE" })),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    later(app);
    app.admin(
        Method::Patch,
        &format!("/admin/businesses/{id}"),
        Some(json!({ "rate_limit": { "per_minute": 100_000, "burst": 10_000 } })),
    )
    .await
    .expect(200);
    later(app);
    let issued = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{id}/api-keys"),
            Some(json!({ "name": "native" })),
        )
        .await
        .expect(201)
        .json();
    Business {
        id,
        key: issued["key"].as_str().unwrap_or_default().to_owned(),
    }
}

/// What the end-to-end suite's `before` did: Acme's admin actions (a second key issued and
/// revoked, a channel account made and its secret rotated, its inbox framing set) and key actions
/// (a webhook made and its secret rotated, an SSO token issued and revoked); another business
/// beside it; and every secret handed to the API or received from it.
struct Recorded {
    acme: Business,
    other: Business,
    secrets: Vec<String>,
}

async fn recorded(app: &App) -> Recorded {
    let acme = business_over_time(app, "Acme").await;
    let other = business_over_time(app, "Other").await;
    let mut secrets = vec![acme.key.clone(), other.key.clone()];

    later(app);
    let issued = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/api-keys", acme.id),
            Some(json!({ "name": "ci job" })),
        )
        .await
        .expect(201)
        .json();
    secrets.push(text(&issued["key"]).to_owned());
    later(app);
    app.admin(
        Method::Delete,
        &format!("/admin/api-keys/{}", text(&issued["id"])),
        None,
    )
    .await
    .expect(200);
    let account_secrets = json!({
        "app_secret": format!("app-{}", numeric_id()),
        "verify_token": format!("vt-{}", numeric_id()),
        "access_token": format!("EAAG{}", numeric_id())
    });
    secrets.extend(
        account_secrets
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, value)| text(value).to_owned()),
    );
    later(app);
    let account = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", acme.id),
            Some(json!({
                "channel": "whatsapp",
                "provider": "meta",
                "address": numeric_id(),
                "secrets": account_secrets
            })),
        )
        .await
        .expect(201)
        .json();
    let rotated = format!("EAAG{}", numeric_id());
    secrets.push(rotated.clone());
    later(app);
    app.admin(
        Method::Patch,
        &format!("/admin/channel-accounts/{}", text(&account["id"])),
        Some(json!({ "secrets": { "access_token": rotated } })),
    )
    .await
    .expect(200);
    later(app);
    app.admin(
        Method::Patch,
        &format!("/admin/businesses/{}", acme.id),
        Some(json!({ "embed_frame_ancestors": ["https://crm.example.com"] })),
    )
    .await
    .expect(200);

    later(app);
    let hook = app
        .api(
            &acme.key,
            Method::Post,
            "/api-webhooks",
            Some(json!({ "name": "crm", "url": "https://crm.example.com/hooks" })),
        )
        .await
        .expect(201)
        .json();
    secrets.push(text(&hook["secret"]).to_owned());
    later(app);
    let rotation = app
        .api(
            &acme.key,
            Method::Post,
            &format!("/api-webhooks/{}/rotate-secret", text(&hook["webhook"]["id"])),
            Some(json!({ "grace_seconds": 60 })),
        )
        .await
        .expect(200)
        .json();
    secrets.push(text(&rotation["secret"]).to_owned());
    let customer = sync(
        app,
        &acme.key,
        json!([{ "external_id": unique("c"), "name": "Aoife", "email": format!("{}@example.com", unique("a")) }]),
    )
    .await;
    later(app);
    let token = app
        .api(
            &acme.key,
            Method::Post,
            "/api-sso-generate-token",
            Some(json!({ "customer_id": customer["results"]["details"][0]["customer_id"] })),
        )
        .await
        .expect(201)
        .json();
    secrets.push(text(&token["token"]).to_owned());
    later(app);
    app.api(
        &acme.key,
        Method::Post,
        "/api-sso-revoke-token",
        Some(json!({ "token_id": token["token_id"] })),
    )
    .await
    .expect(200);
    Recorded { acme, other, secrets }
}

/// One page of the business's log for `query`.
async fn audit_log(app: &App, business_id: &str, query: &str) -> Value {
    app.admin(
        Method::Get,
        &format!("/admin/businesses/{business_id}/audit-log{query}"),
        None,
    )
    .await
    .expect(200)
    .json()
}

/// The whole log, three entries a page.
async fn all_entries(app: &App, business_id: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!(
                "?limit=3&before={}",
                url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
            ),
            None => "?limit=3".to_owned(),
        };
        let page = audit_log(app, business_id, &query).await;
        entries.extend(page["entries"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().rev().map(|entry| text(&entry["action"])).collect()
}

#[test]
fn every_action_is_recorded_newest_first_with_who_what_when_and_from_where() {
    test(|app| async move {
        let Recorded { acme, .. } = recorded(&app).await;
        let entries = all_entries(&app, &acme.id).await;
        assert_eq!(
            actions(&entries),
            [
                "business.created",
                "business.updated",
                "api_key.issued",
                "api_key.issued",
                "api_key.revoked",
                "channel_account.created",
                "channel_account.updated",
                "business.updated",
                "webhook.created",
                "webhook.secret_rotated",
                "sso_token.issued",
                "sso_token.revoked",
            ]
        );
        let by_key = format!("key:{}", &acme.key[..12]);
        for entry in &entries {
            let action = text(&entry["action"]);
            assert!(is_uuid(text(&entry["id"])), "{entry}");
            assert!(is_rfc3339_utc(text(&entry["at"])), "{entry}");
            let keyed = action.starts_with("webhook.") || action.starts_with("sso_token.");
            assert_eq!(
                entry["actor"],
                if keyed { by_key.as_str() } else { "admin" },
                "{action}"
            );
            assert_eq!(
                entry["target"]["type"],
                action.split('.').next().unwrap_or_default(),
                "{entry}"
            );
            assert!(entry["target"]["id"].is_string(), "{entry}");
            assert!(entry.get("client_ip").is_some(), "{entry}");
        }
        let times: Vec<i64> = entries
            .iter()
            .map(|entry| rfc3339_ms(text(&entry["at"])).unwrap_or_default())
            .collect();
        let mut newest_first = times.clone();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(times, newest_first, "newest first");
    });
}

#[test]
fn details_say_what_changed_and_never_a_secret() {
    test(|app| async move {
        let Recorded { acme, secrets, .. } = recorded(&app).await;
        let entries = all_entries(&app, &acme.id).await;
        let whole = Value::Array(entries.clone()).to_string();
        for secret in &secrets {
            assert!(
                !whole.contains(secret.as_str()),
                "a secret leaked into the audit log: {}…",
                &secret[..6]
            );
        }
        let find = |action: &str| {
            entries
                .iter()
                .find(|entry| entry["action"] == action)
                .cloned()
                .unwrap_or_else(|| panic!("no {action}"))
        };
        assert_eq!(
            find("channel_account.updated")["detail"],
            json!({ "changed": { "secrets": ["access_token"] } })
        );
        let created = find("channel_account.created");
        let mut named: Vec<&str> = created["detail"]["secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect::<Vec<_>>();
        named.sort_unstable();
        assert_eq!(named, ["access_token", "app_secret", "verify_token"]);
        assert_eq!(
            find("webhook.secret_rotated")["detail"],
            json!({ "grace_seconds": 60 })
        );
        for issued in entries.iter().filter(|entry| entry["action"] == "api_key.issued") {
            let prefix = text(&issued["detail"]["prefix"]);
            assert!(
                prefix.len() == 12
                    && prefix.starts_with("cek_")
                    && prefix[4..]
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "the key by its prefix: {issued}"
            );
        }
        // Newest first: the framing was set after the limit was raised.
        let updated: Vec<&Value> = entries
            .iter()
            .filter(|entry| entry["action"] == "business.updated")
            .collect();
        assert_eq!(
            updated[0]["detail"],
            json!({ "changed": { "embed_frame_ancestors": true } })
        );
        assert_eq!(
            updated[1]["detail"],
            json!({ "changed": { "rate_limit": ["burst", "per_minute"] } })
        );
    });
}

#[test]
fn a_business_sees_only_its_own_entries() {
    test(|app| async move {
        let Recorded { other, .. } = recorded(&app).await;
        let entries = all_entries(&app, &other.id).await;
        assert_eq!(
            actions(&entries),
            ["business.created", "business.updated", "api_key.issued"]
        );
    });
}

#[test]
fn refused_actions_are_not_recorded() {
    test(|app| async move {
        let Recorded { other, .. } = recorded(&app).await;
        let before = all_entries(&app, &other.id).await.len();
        assert_error(
            &app.admin(
                Method::Patch,
                &format!("/admin/businesses/{}", other.id),
                Some(json!({})),
            )
            .await,
            422,
            "validation_failed",
            "an empty change of the business",
        );
        assert_error(
            &app.api(
                &other.key,
                Method::Post,
                "/api-webhooks",
                Some(json!({ "name": "x" })),
            )
            .await,
            422,
            "validation_failed",
            "a webhook without a URL",
        );
        assert_eq!(all_entries(&app, &other.id).await.len(), before);
    });
}

#[test]
fn pages_follow_next_cursor_without_repeating_or_skipping_an_entry() {
    test(|app| async move {
        let Recorded { acme, .. } = recorded(&app).await;
        let whole = audit_log(&app, &acme.id, "?limit=500").await;
        assert_eq!(whole["next_cursor"], Value::Null);
        let paged = all_entries(&app, &acme.id).await;
        let ids =
            |entries: &[Value]| -> Vec<Value> { entries.iter().map(|entry| entry["id"].clone()).collect() };
        assert_eq!(
            ids(&paged),
            ids(whole["entries"].as_array().map(Vec::as_slice).unwrap_or_default())
        );
        let first = audit_log(&app, &acme.id, "?limit=1").await;
        assert_eq!(first["entries"].as_array().map(Vec::len), Some(1));
        assert!(first["next_cursor"].is_string(), "{first}");
    });
}

#[test]
fn bad_queries_unknown_businesses_and_missing_tokens_are_refused() {
    test(|app| async move {
        let Recorded { acme, .. } = recorded(&app).await;
        let path = format!("/admin/businesses/{}/audit-log", acme.id);
        for (query, description) in [
            ("?before=forged", "a forged cursor"),
            ("?limit=0", "a limit of 0"),
            ("?limit=501", "a limit over 500"),
        ] {
            let answer = app.admin(Method::Get, &format!("{path}{query}"), None).await;
            assert_error(&answer, 422, "validation_failed", description);
        }
        assert_error(
            &app.admin(
                Method::Get,
                "/admin/businesses/00000000-0000-4000-8000-000000000000/audit-log",
                None,
            )
            .await,
            404,
            "not_found",
            "an unknown business",
        );
        assert_error(
            &app.admin(Method::Post, &path, Some(json!({}))).await,
            405,
            "method_not_allowed",
            "a POST",
        );
        assert_error(
            &app.api(&acme.key, Method::Get, &path, None).await,
            401,
            "unauthorized",
            "an API key instead of the admin token",
        );
    });
}

#[test]
fn a_business_reading_its_own_log_does_not_see_where_the_operator_acted_from() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        app.api(
            &acme.key,
            Method::Post,
            "/api-keys",
            Some(json!({ "name": "second" })),
        )
        .await
        .expect(201);
        let addresses = |log: &Value| -> Vec<(String, Value)> {
            log["entries"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|entry| (text(&entry["actor"]).to_owned(), entry["client_ip"].clone()))
                .collect()
        };
        let own = app
            .api(&acme.key, Method::Get, "/api-audit-log?limit=50", None)
            .await
            .expect(200)
            .json();
        let operators = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}/audit-log?limit=50", acme.id),
                None,
            )
            .await
            .expect(200)
            .json();
        for (reader, log, operator_sees) in
            [("the business", &own, false), ("the operator", &operators, true)]
        {
            let entries = addresses(log);
            assert!(
                entries.iter().any(|(actor, _)| actor == "admin"),
                "{reader}: {log}"
            );
            assert!(
                entries.iter().any(|(actor, _)| actor.starts_with("key:")),
                "{reader}: {log}"
            );
            for (actor, address) in entries {
                let shown = actor != "admin" || operator_sees;
                let expected = if shown { json!(CLIENT_IP) } else { Value::Null };
                assert_eq!(address, expected, "{reader} reading an entry by {actor}");
            }
        }
    });
}
