//! The Kustomer connector following our events (tests/e2e/crm/kustomer-sync.test.mjs): customers
//! found by email or created (with the configured field mapping) and updated, conversations and
//! every message on the Kustomer timeline in order, exactly one Kustomer customer however many
//! events arrive at once, each toggle honoured, 4xx failing at once with Kustomer's reason, the
//! connector's API, and every step in the sync log.

use crate::app::{ORIGIN, test};
use crate::partners::kustomer::{PERMISSIONS, call_to, error};
use crate::partners::media_host::MediaHost;
use crate::steps::api::assert_error;
use crate::steps::channels::{receive_whatsapp, receive_whatsapp_image, whatsapp_account};
use crate::steps::crms::kustomer::{Connected, connect, connected_business, settled_log};
use crate::steps::crms::{connector_of, entry, operations, sync_log};
use crate::steps::customers::sync;
use crate::steps::text;
use crate::steps::{unique_number, unique_phone};
use edge::runtime::Method;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn a_synced_customer_is_created_in_kustomer_with_the_mapped_fields_and_updated_when_they_change() {
    test(|app| async move {
        let setup = connected_business(
            &app,
            json!({ "settings": { "field_mapping": {
                "customerEmail": "attributes.emails[0].email",
                "customerName": "attributes.name",
                "customerPhone": "attributes.phones[0].phone",
                "tags": "attributes.tags",
                "custom_fields.plan": "attributes.custom.planStr"
            } } }),
        )
        .await;
        let key = &setup.business.key;
        let synced = sync(
            &app,
            key,
            json!([{ "external_id": "CRM-1", "name": "Ada Lovelace", "email": "ada@example.com",
                     "phone": "087 123 4567", "tags": ["vip"], "custom_fields": { "plan": "gold" } }]),
        )
        .await;
        let ours = synced["results"]["details"][0]["customer_id"].clone();
        app.settle().await;
        let customers = setup.kustomer.customers();
        assert_eq!(customers.len(), 1, "{customers:#?}");
        let attributes = &customers[0]["attributes"];
        assert_eq!(attributes["name"], "Ada Lovelace");
        assert_eq!(attributes["emails"][0]["email"], "ada@example.com");
        assert_eq!(attributes["phones"][0]["phone"], "+353871234567");
        assert_eq!(attributes["tags"], json!(["vip"]));
        assert_eq!(attributes["custom"]["planStr"], "gold");
        assert_eq!(
            attributes["externalId"], "CRM-1",
            "our external id is Kustomer's externalId"
        );

        sync(
            &app,
            key,
            json!([{ "external_id": "CRM-1", "name": "Ada King", "email": "ada@example.com" }]),
        )
        .await;
        let log = settled_log(&app, setup.id(), 2).await;
        let customers = setup.kustomer.customers();
        assert_eq!(customers.len(), 1, "updated, not created again");
        assert_eq!(customers[0]["attributes"]["name"], "Ada King");
        assert_eq!(
            operations(&log),
            [
                ("customer.updated".to_owned(), "succeeded".to_owned()),
                ("customer.created".to_owned(), "succeeded".to_owned())
            ]
        );
        for entry in &log {
            assert_eq!(entry["crm_id"], customers[0]["id"], "{entry}");
            assert_eq!(entry["record_id"], ours, "{entry}");
        }
    });
}

#[test]
fn a_customer_or_conversation_deleted_in_kustomer_is_made_again_and_the_work_succeeds() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let kustomer = &setup.kustomer;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        receive_whatsapp(&app, &whatsapp, &from, "before").await;
        settled_log(&app, setup.id(), 3).await;
        let gone = kustomer
            .remove_conversation(text(&kustomer.conversations()[0]["id"]))
            .unwrap_or_default();
        receive_whatsapp(&app, &whatsapp, &from, "after the conversation was deleted").await;
        app.settle().await;
        let conversations = kustomer.conversations();
        assert_eq!(conversations.len(), 1, "a new conversation: {conversations:#?}");
        assert_ne!(conversations[0]["id"], gone["id"]);
        let timeline = kustomer.messages(text(&conversations[0]["id"]));
        assert_eq!(timeline.len(), 1, "{timeline:#?}");
        assert_eq!(
            timeline[0]["attributes"]["preview"],
            "after the conversation was deleted"
        );

        let synced = sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Kept Here", "email": "kept@example.com" }]),
        )
        .await;
        let ours = text(&synced["results"]["details"][0]["customer_id"]).to_owned();
        app.settle().await;
        let kept = kustomer
            .customers()
            .into_iter()
            .find(|customer| customer["attributes"]["name"] == "Kept Here")
            .unwrap_or_else(|| panic!("the customer in Kustomer: {:#?}", kustomer.customers()));
        let deleted = kustomer.remove_customer(text(&kept["id"])).unwrap_or_default();
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Kept Here Still", "email": "kept@example.com" }]),
        )
        .await;
        app.settle().await;
        assert!(
            kustomer
                .customers()
                .iter()
                .any(|customer| customer["attributes"]["name"] == "Kept Here Still"),
            "made again with the update: {:#?}",
            kustomer.customers()
        );
        let log = sync_log(&app, setup.id(), &format!("record={ours}")).await;
        let updated = entry(&log, "customer.updated");
        assert_eq!(updated["status"], "succeeded", "{updated}");
        assert_ne!(
            updated["crm_id"], deleted["id"],
            "linked to the new Kustomer customer"
        );
    });
}

#[test]
fn customer_lookup_finds_an_existing_kustomer_customer_by_email_instead_of_creating_one_and_off_creates() {
    test(|app| async move {
        let on = connected_business(&app, json!({})).await;
        let existing = on.kustomer.seed_customer(
            json!({ "name": "Known", "emails": [{ "type": "home", "email": "known@example.com" }] }),
        );
        sync(
            &app,
            &on.business.key,
            json!([{ "name": "Known Person", "email": "known@example.com" }]),
        )
        .await;
        let log = settled_log(&app, on.id(), 1).await;
        assert_eq!(
            log[0]["crm_id"], existing["id"],
            "linked to the customer Kustomer had"
        );
        assert_eq!(on.kustomer.customers().len(), 1, "nobody created");

        let off = connected_business(&app, json!({ "settings": { "customer_lookup": false } })).await;
        off.kustomer.seed_customer(
            json!({ "name": "Known", "emails": [{ "type": "home", "email": "known-off@example.com" }] }),
        );
        sync(
            &app,
            &off.business.key,
            json!([{ "name": "Other Person", "email": "other@example.com" }]),
        )
        .await;
        settled_log(&app, off.id(), 1).await;
        assert_eq!(off.kustomer.customers().len(), 2, "Lookup off: a new customer");
        assert!(
            !off.kustomer
                .calls()
                .iter()
                .any(|call| call.path().contains("/email=")),
            "no lookup made"
        );
    });
}

#[test]
fn a_customer_kustomer_refuses_fails_at_once_with_kustomers_reason_and_is_not_retried() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup.kustomer.fail(
            1,
            call_to("POST", "/v1/customers"),
            error(400, "emails/0/email is not valid", Some("/emails/0/email")),
        );
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Refused", "email": "refused@example.com" }]),
        )
        .await;
        let log = settled_log(&app, setup.id(), 1).await;
        let refused = &log[0];
        assert_eq!(refused["status"], "failed", "{refused}");
        assert_eq!(refused["last_status"], 400);
        assert!(text(&refused["last_error"]).starts_with("400: "), "{refused}");
        assert!(
            text(&refused["last_error"]).contains("emails/0/email is not valid"),
            "Kustomer's reason: {refused}"
        );
        assert_eq!(refused["attempts"], 1);
        let status = &connector_of(&app, setup.id()).await["status"];
        assert_eq!(status["last_24h"]["failed"], 1, "{status}");
        assert!(text(&status["last_error"]).starts_with("400"), "{status}");
    });
}

#[test]
fn twenty_messages_from_one_new_customer_at_once_create_exactly_one_kustomer_customer_and_conversation() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        // Kustomer takes a while to answer, so the workers that take the customer's work at once
        // are under way at once.
        setup.kustomer.latency(Duration::from_millis(40));
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        let texts: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
        join_all(
            texts
                .iter()
                .map(|text| receive_whatsapp(&app, &whatsapp, &from, text)),
        )
        .await;
        settled_log(&app, setup.id(), 22).await;
        let succeeded = sync_log(&app, setup.id(), "status=succeeded").await;
        assert!(succeeded.len() >= 22, "every message synced: {succeeded:#?}");
        let kustomer = &setup.kustomer;
        assert_eq!(kustomer.customers().len(), 1, "one customer");
        assert_eq!(kustomer.conversations().len(), 1, "one conversation");
        let timeline = kustomer.messages(text(&kustomer.conversations()[0]["id"]));
        assert_eq!(timeline.len(), 20, "every message on the timeline once");
        assert!(
            timeline
                .iter()
                .all(|message| message["attributes"]["direction"] == "in"
                    && message["attributes"]["channel"] == "whatsapp"),
            "{timeline:#?}"
        );
    });
}

#[test]
fn messages_reach_the_timeline_in_order_with_channel_and_direction() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        for text in ["first", "second", "third"] {
            receive_whatsapp(&app, &whatsapp, &from, text).await;
        }
        let log = settled_log(&app, setup.id(), 5).await;
        let conversations = setup.kustomer.conversations();
        assert_eq!(conversations.len(), 1, "{conversations:#?}");
        let conversation = &conversations[0];
        assert_eq!(conversation["attributes"]["status"], "open");
        assert_eq!(conversation["attributes"]["priority"], 3, "the default priority");
        let timeline = setup.kustomer.messages(text(&conversation["id"]));
        let previews: Vec<&str> = timeline
            .iter()
            .map(|message| text(&message["attributes"]["preview"]))
            .collect();
        assert_eq!(previews, ["first", "second", "third"]);
        assert!(
            timeline
                .iter()
                .all(|message| message["attributes"]["direction"] == "in"
                    && message["attributes"]["channel"] == "whatsapp"),
            "{timeline:#?}"
        );
        assert!(
            log.iter()
                .all(|entry| entry["status"] == "succeeded" || entry["status"] == "skipped"),
            "{log:#?}"
        );
    });
}

#[test]
fn a_messages_files_are_on_the_timeline_as_signed_download_links() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let media = MediaHost::install(&app.stack, "media.meta.test");
        media.serve_png();
        let whatsapp = whatsapp_account(&app, &setup.business.id, Some(&media.api_base_url())).await;
        receive_whatsapp_image(&app, &whatsapp, &unique_phone(), "my receipt", "media-1").await;
        app.settle().await;
        let conversations = setup.kustomer.conversations();
        assert_eq!(conversations.len(), 1, "{conversations:#?}");
        let timeline = setup.kustomer.messages(text(&conversations[0]["id"]));
        assert_eq!(timeline.len(), 1, "{timeline:#?}");
        let link = text(&timeline[0]["attributes"]["meta"]["attachments"][0]["url"]).to_owned();
        let path = link
            .strip_prefix(ORIGIN)
            .unwrap_or_else(|| panic!("a link to the deployment: {}", timeline[0]["attributes"]));
        assert!(
            path.starts_with("/api/download-media?") && path.contains("signature="),
            "a signed download link: {link}"
        );
        let download = app.request(Method::Get, path, &[], Vec::new()).await;
        assert_eq!(
            download.status,
            200,
            "the link downloads the file: {}",
            download.text()
        );
        assert_eq!(download.body, media.image());
    });
}

#[test]
fn with_conversation_sync_off_conversations_and_messages_are_skipped_and_say_why() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "settings": { "conversation_sync": false } })).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "not synced").await;
        let log = settled_log(&app, setup.id(), 3).await;
        let skipped: Vec<&Value> = log.iter().filter(|entry| entry["status"] == "skipped").collect();
        let mut operations: Vec<&str> = skipped.iter().map(|entry| text(&entry["operation"])).collect();
        operations.sort_unstable();
        assert_eq!(
            operations,
            ["conversation.created", "message.received"],
            "{log:#?}"
        );
        assert!(
            skipped
                .iter()
                .all(|entry| entry["last_error"] == "Conversation Sync is off"),
            "{skipped:#?}"
        );
        assert_eq!(setup.kustomer.conversations().len(), 0);
        assert_eq!(
            setup.kustomer.customers().len(),
            1,
            "the customer is still synced"
        );
    });
}

#[test]
fn a_status_change_in_crm_edge_closes_the_kustomer_conversation() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "please close").await;
        let log = settled_log(&app, setup.id(), 3).await;
        let conversation = text(&entry(&log, "conversation.created")["record_id"]).to_owned();
        app.api(
            &setup.business.key,
            Method::Patch,
            &format!("/api-conversations/{conversation}"),
            Some(json!({ "status": "resolved" })),
        )
        .await
        .expect(200);
        app.settle().await;
        assert_eq!(setup.kustomer.conversations()[0]["attributes"]["status"], "done");
    });
}

#[test]
fn settings_are_checked_when_saved_secrets_are_never_shown_and_the_connection_test_says_what_kustomer_said() {
    test(|app| async move {
        let Connected {
            business,
            connector,
            kustomer,
            api_key,
        } = connected_business(&app, json!({})).await;
        let id = text(&connector["id"]).to_owned();
        assert_eq!(connector["secrets_set"], json!(["api_key"]));
        assert!(
            !connector.to_string().contains(&api_key),
            "the key is not shown: {connector}"
        );
        assert_eq!(connector["webhook_path"], format!("/api/webhooks/kustomer/{id}"));
        let test_connection = || async {
            app.admin(Method::Post, &format!("/admin/connectors/{id}/test"), None)
                .await
                .expect(200)
                .json()
        };

        let passed = test_connection().await;
        assert_eq!(passed["ok"], true, "{passed}");
        assert_eq!(passed["user"]["org"], kustomer.org().as_str(), "{passed}");

        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{id}"),
            Some(json!({ "settings": { "organization_id": "f".repeat(24) } })),
        )
        .await
        .expect(200);
        let mismatch = test_connection().await;
        assert_eq!(mismatch["ok"], false, "{mismatch}");
        assert!(text(&mismatch["reason"]).contains("organization"), "{mismatch}");

        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{id}"),
            Some(json!({ "secrets": { "api_key": "eyWRONG" }, "settings": { "organization_id": null } })),
        )
        .await
        .expect(200);
        let refused = test_connection().await;
        assert_eq!(refused["ok"], false, "{refused}");
        assert_eq!(refused["status"], 401, "{refused}");
        assert!(
            text(&refused["reason"]).to_lowercase().contains("api key"),
            "{refused}"
        );

        kustomer.down();
        let unreachable = test_connection().await;
        assert_eq!(unreachable["ok"], false, "{unreachable}");
        assert!(
            text(&unreachable["reason"]).contains("could not be reached"),
            "{unreachable}"
        );
        kustomer.up();

        let teams = app
            .admin(Method::Get, &format!("/admin/connectors/{id}/teams"), None)
            .await;
        assert_error(
            &teams,
            502,
            "crm_failed",
            "the wrong key is refused by Kustomer, said as a 502 with its reason",
        );

        let invalid = [
            (
                json!({ "kind": "zoho", "secrets": { "api_key": "k" }, "settings": { "subdomain": "a" } }),
                "kind",
            ),
            (
                json!({ "kind": "kustomer", "settings": { "subdomain": "a" } }),
                "secrets.api_key",
            ),
            (
                json!({ "kind": "kustomer", "secrets": { "api_key": "k" }, "settings": {} }),
                "settings",
            ),
            (
                json!({ "kind": "kustomer", "secrets": { "api_key": "k" }, "settings": { "subdomain": "a", "default_priority": 9 } }),
                "settings.default_priority",
            ),
            (
                json!({ "kind": "kustomer", "secrets": { "api_key": "k" }, "settings": { "subdomain": "a", "base_url": "http://169.254.169.254/" } }),
                "settings.base_url",
            ),
            (
                json!({ "kind": "kustomer", "secrets": { "api_key": "k" }, "settings": { "subdomain": "a", "field_mapping": { "customerEmail": "attributes.nowhere" } } }),
                "settings.field_mapping.customerEmail",
            ),
            (
                json!({ "kind": "kustomer", "secrets": { "api_key": "k" }, "settings": { "subdomain": "a" }, "rate_limit": { "per_minute": 0 } }),
                "rate_limit.per_minute",
            ),
        ];
        for (body, field) in invalid {
            let answer = app
                .admin(
                    Method::Post,
                    &format!("/admin/businesses/{}/connectors", business.id),
                    Some(body.clone()),
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", &body.to_string());
            let prefix = field.split('.').next().unwrap_or_default();
            assert!(
                text(&error["field"]).starts_with(prefix),
                "{body}: the field {} names {field}",
                error["field"]
            );
        }
    });
}

/// Two connectors of one business, each to its own organization, keep their records apart (a
/// check the JS suite makes only implicitly, with a fresh org per test).
#[test]
fn two_businesses_on_two_organizations_of_one_kustomer_host_never_see_each_others_customers() {
    test(|app| async move {
        let first = connected_business(&app, json!({})).await;
        let other = app.business("Globex").await;
        let org = first.kustomer.other_org("globex");
        let key = format!("eyglobex{}", unique_number());
        first.kustomer.add_key(&key, &org, &PERMISSIONS);
        let subdomain = first.kustomer.subdomain();
        let second = connect(&app, &other, &subdomain, &key, json!({})).await;
        for (business, email) in [
            (&first.business, "same@example.com"),
            (&other, "same@example.com"),
        ] {
            sync(
                &app,
                &business.key,
                json!([{ "name": "Same Person", "email": email }]),
            )
            .await;
        }
        app.settle().await;
        let customers: Vec<Value> = first.kustomer.customers();
        assert_eq!(customers.len(), 2, "one per organization: {customers:#?}");
        let orgs: Vec<&str> = customers
            .iter()
            .map(|customer| text(&customer["relationships"]["org"]["data"]["id"]))
            .collect();
        assert!(
            orgs.contains(&org.as_str()) && orgs.contains(&first.kustomer.org().as_str()),
            "{orgs:?}"
        );
        let log = settled_log(&app, text(&second["id"]), 1).await;
        assert_eq!(log[0]["status"], "succeeded", "{log:#?}");
    });
}
