//! What the outbound webhooks carry, end to end: every customer the sync and bulk endpoints
//! create or update, every inbound message with its customer, conversation and downloadable
//! attachments, every message sent from the CRM, and every change of a conversation's status or
//! assignee, each delivered once, signed so that the guide's receiver and a Standard Webhooks
//! receiver both verify it, to its own business's endpoints only and only for the events each
//! endpoint subscribed to. Polling sees the same messages. (The end-to-end suite's
//! `webhooks-events.test.mjs`.)

use crate::app::{App, Business, ORIGIN, test};
use crate::partners::media_host::MediaHost;
use crate::partners::meta::Graph;
use crate::partners::webhook_endpoint::{
    Delivery, Endpoint, js_restringifies_to_itself, seed_signature_verifies, standard_signature_match,
};
use crate::steps::api::{assert_error, is_rfc3339_utc};
use crate::steps::channels::{messages_of, receive_whatsapp_from, whatsapp_account};
use crate::steps::customers::sync;
use crate::steps::id_of;
use crate::steps::webhooks::{deliveries_of, with_endpoint};
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Checks what every delivery must be: a signed POST of `{id, event, timestamp, business_id,
/// data}`.
fn assert_signed_event(delivery: &Delivery, business: &Business, description: &str) {
    let call = &delivery.call;
    let text = call.text();
    let label = format!("{description} ({})", text.chars().take(300).collect::<String>());
    let digits = |value: Option<&str>, length: usize, hex: bool| {
        value.is_some_and(|value| {
            value.len() == length
                && value
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&b)))
        })
    };
    let base64 = |entry: &str| {
        let data = entry.trim_end_matches('=');
        !data.is_empty()
            && entry.len() - data.len() <= 2
            && data
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    assert_eq!(call.method, "POST", "{label}: POST");
    assert!(
        call.header("content-type")
            .is_some_and(|kind| kind.starts_with("application/json")),
        "{label}: content-type"
    );
    assert!(delivery.body.is_object(), "{label}: a JSON body");
    assert_eq!(
        delivery.body["business_id"],
        business.id.as_str(),
        "{label}: business_id"
    );
    assert!(
        delivery.body["timestamp"].as_str().is_some_and(is_rfc3339_utc),
        "{label}: timestamp"
    );
    assert!(delivery.body["id"].is_string(), "{label}: id");
    assert_eq!(
        call.header("webhook-id"),
        delivery.body["id"].as_str(),
        "{label}: webhook-id is the event id"
    );
    assert!(
        digits(call.header("x-webhook-timestamp"), 10, false),
        "{label}: X-Webhook-Timestamp in Unix seconds"
    );
    assert!(
        digits(call.header("x-webhook-signature"), 64, true),
        "{label}: X-Webhook-Signature in hex"
    );
    assert!(
        digits(call.header("webhook-timestamp"), 10, false),
        "{label}: webhook-timestamp"
    );
    assert!(
        call.header("webhook-signature").is_some_and(|header| header
            .split(' ')
            .all(|entry| entry.strip_prefix("v1,").is_some_and(base64))),
        "{label}: webhook-signature"
    );
    assert!(delivery.seed_verified, "{label}: the seed's signature verifies");
    assert!(
        delivery.standard_verified,
        "{label}: the Standard Webhooks signature verifies"
    );
}

fn events_of(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|delivery| delivery.body["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn customer_ids(result: &Value) -> Vec<Value> {
    result["results"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|detail| detail["customer_id"].clone())
        .collect()
}

/// The conversation an event names, in either of its shapes.
fn conversation_id_of(data: &Value) -> Value {
    match &data["conversation"]["id"] {
        Value::Null => data["conversation_id"].clone(),
        id => id.clone(),
    }
}

/// The customer of `key` with `external_id`, as the API reads it.
async fn customer(app: &App, key: &str, external_id: &str) -> Value {
    app.api(
        key,
        Method::Get,
        &format!("/api-customers?external_id={external_id}"),
        None,
    )
    .await
    .expect(200)
    .json()
}

#[test]
fn a_sync_that_creates_two_customers_and_updates_one_delivers_three_signed_events_to_its_own_business_only() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        // Stored before any endpoint exists: no event is recorded for it.
        let existing =
            json!({ "external_id": "CRM-0", "name": "Before Hooks", "email": "before@example.com" });
        sync(&app, &acme.key, json!([existing])).await;
        app.settle().await;
        let mine = Endpoint::install(&app.stack, "hooks.acme.example");
        let (webhook, secret) = with_endpoint(&app, &acme.key, &mine, json!({})).await;
        let other = app.business("Other").await;
        let theirs = Endpoint::install(&app.stack, "hooks.other.example");
        with_endpoint(&app, &other.key, &theirs, json!({})).await;

        let result = sync(
            &app,
            &acme.key,
            json!([
                { "external_id": "CRM-1", "name": "Ada Lovelace", "email": "ada@example.com", "phone": "087 123 4567" },
                { "external_id": "CRM-2", "name": "Grace Hopper", "email": "grace@example.com" },
                { "external_id": "CRM-0", "name": "After Hooks", "email": "before@example.com", "custom_fields": { "crm_segment": "enterprise" } }
            ]),
        )
        .await;
        assert_eq!(result["results"]["created"], 2, "{result}");
        assert_eq!(result["results"]["updated"], 1, "{result}");
        let ids = customer_ids(&result);
        app.settle().await;

        let received = mine.deliveries();
        assert_eq!(
            received.len(),
            3,
            "exactly three events: {:?}",
            events_of(&received)
        );
        for delivery in &received {
            assert_signed_event(
                delivery,
                &acme,
                delivery.body["event"].as_str().unwrap_or_default(),
            );
        }
        assert!(
            seed_signature_verifies(&secret, &received[0].call),
            "the secret shown at creation signs"
        );
        let mut event_ids: Vec<&Value> = received.iter().map(|d| &d.body["id"]).collect();
        event_ids.sort_by_key(|id| id.to_string());
        event_ids.dedup();
        assert_eq!(event_ids.len(), 3, "three distinct event ids");
        let of_customer = |id: &Value| {
            received
                .iter()
                .find(|d| &d.body["data"]["customer"]["id"] == id)
                .unwrap_or_else(|| panic!("no event of {id}"))
        };
        assert_eq!(
            of_customer(&ids[0]).body["event"],
            "customer.created",
            "Ada is created"
        );
        assert_eq!(
            of_customer(&ids[1]).body["event"],
            "customer.created",
            "Grace is created"
        );
        assert_eq!(
            of_customer(&ids[2]).body["event"],
            "customer.updated",
            "the existing customer is updated"
        );
        let ada = &of_customer(&ids[0]).body["data"]["customer"];
        assert_eq!(ada["name"], "Ada Lovelace");
        assert_eq!(ada["email"], "ada@example.com");
        assert_eq!(ada["phone"], "+353871234567", "the phone as stored, in E.164");
        assert_eq!(ada["external_id"], "CRM-1");
        let after = &of_customer(&ids[2]).body["data"]["customer"];
        assert_eq!(after["name"], "After Hooks", "the update carries the new values");
        assert_eq!(after["custom_fields"], json!({ "crm_segment": "enterprise" }));

        let deliveries = deliveries_of(&app, &acme.key, &id_of(&webhook), "").await;
        assert_eq!(deliveries.len(), 3);
        assert!(
            deliveries
                .iter()
                .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
            "three deliveries, each delivered at the first attempt: {deliveries:?}"
        );

        // The other business gets its own customer's event, and nothing of the first one's.
        let own = sync(
            &app,
            &other.key,
            json!([{ "name": "Their Customer", "email": "theirs@example.com" }]),
        )
        .await;
        app.settle().await;
        let theirs_received = theirs.deliveries();
        assert_eq!(theirs_received.len(), 1, "one event for the other business");
        assert_signed_event(&theirs_received[0], &other, "the other business");
        assert_eq!(
            theirs_received[0].body["data"]["customer"]["id"],
            customer_ids(&own)[0]
        );
        assert_eq!(
            mine.deliveries().len(),
            3,
            "the other business's event does not reach the first"
        );
    });
}

#[test]
fn every_customer_a_bulk_create_stores_is_a_customer_created_or_customer_updated_event() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let bulk = |customers: Value| {
            let app = &app;
            let key = acme.key.clone();
            async move {
                app.api(
                    &key,
                    Method::Post,
                    "/api-customers-bulk-create",
                    Some(json!({ "customers": customers })),
                )
                .await
                .expect(200)
            }
        };
        bulk(json!([
            { "external_id": "SF-1", "name": "One", "email": "one@example.com" },
            { "external_id": "SF-2", "name": "Two", "email": "two@example.com" }
        ]))
        .await;
        app.settle().await;
        bulk(json!([{ "external_id": "SF-1", "name": "One Again", "email": "one@example.com" }])).await;
        app.settle().await;
        let received = endpoint.deliveries();
        let mut seen: Vec<(String, String)> = received
            .iter()
            .map(|d| {
                (
                    d.body["event"].as_str().unwrap_or_default().to_owned(),
                    d.body["data"]["customer"]["external_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("customer.created".to_owned(), "SF-1".to_owned()),
                ("customer.created".to_owned(), "SF-2".to_owned()),
                ("customer.updated".to_owned(), "SF-1".to_owned()),
            ]
        );
        for delivery in &received {
            assert_signed_event(delivery, &acme, "a bulk event");
        }
    });
}

#[test]
fn a_sync_that_changes_nothing_is_no_event_and_leaves_updated_at_alone_and_the_next_change_is_one() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let ann = json!({ "external_id": "CRM-ann", "name": "Ann", "email": "ann@example.com", "tags": ["vip"], "custom_fields": { "tier": "gold", "score": 5 } });
        let first = sync(&app, &acme.key, json!([ann])).await;
        app.settle().await;
        let stored = customer(&app, &acme.key, "CRM-ann").await;
        // Time passes, so that a rewrite would show in updated_at.
        app.stack.advance(Duration::from_secs(5));
        // The same customer again, and with only what it keeps (an absent field keeps its value).
        let again = sync(&app, &acme.key, json!([ann])).await;
        let sparse = sync(
            &app,
            &acme.key,
            json!([{ "external_id": "CRM-ann", "name": "Ann", "email": "ann@example.com", "custom_fields": { "score": 5 } }]),
        )
        .await;
        for answer in [again, sparse] {
            assert_eq!(
                (
                    &answer["results"]["updated"],
                    &answer["results"]["details"][0]["action"],
                    &answer["results"]["details"][0]["customer_id"]
                ),
                (
                    &json!(1),
                    &json!("updated"),
                    &first["results"]["details"][0]["customer_id"]
                ),
                "still answered as matched and up to date: {answer}"
            );
        }
        let unchanged = customer(&app, &acme.key, "CRM-ann").await;
        assert_eq!(unchanged["updated_at"], stored["updated_at"], "not rewritten");
        sync(
            &app,
            &acme.key,
            json!([{ "external_id": "CRM-ann", "name": "Ann", "email": "ann@example.com", "tags": ["vip"], "custom_fields": { "score": 6 } }]),
        )
        .await;
        app.settle().await;
        let received = endpoint.deliveries();
        assert_eq!(
            events_of(&received),
            ["customer.created", "customer.updated"],
            "no event for the syncs that changed nothing"
        );
        assert_eq!(
            received[1].body["data"]["customer"]["custom_fields"],
            json!({ "tier": "gold", "score": 6 })
        );
        let changed = customer(&app, &acme.key, "CRM-ann").await;
        assert_ne!(changed["updated_at"], stored["updated_at"], "a change is stamped");
    });
}

/// The name, notes and custom fields of the awkward customer, as the end-to-end test writes them.
const AWKWARD_NAME: &str = "Zo\u{eb} \"Q\" O'Brien \u{2028}\u{2029} </script><b>&amp;</b> \u{1f980}\u{1f469}\u{1f3fd}\u{200d}\u{1f4bb} \\ back slash \u{e9}\u{301} \u{4e2d}\u{6587}";
/// `JSON.stringify` of the name (Node 20).
const AWKWARD_NAME_JSON: &str = "\"Zo\u{eb} \\\"Q\\\" O'Brien \u{2028}\u{2029} </script><b>&amp;</b> \u{1f980}\u{1f469}\u{1f3fd}\u{200d}\u{1f4bb} \\\\ back slash \u{e9}\u{301} \u{4e2d}\u{6587}\"";
/// The rest of the customer, written by hand so that the numbers reach the server as spelled.
const AWKWARD_REST: &str = "\"notes\":\"line one\\nline two\\r\\n\\ud83e\\udd80 crab as an escaped pair\",\"custom_fields\":{\"big\":1e21,\"bigger\":1.5e300,\"tenth\":0.1,\"negative_zero\":-0,\"one_point_zero\":1.0,\"huge_integer\":12345678901234567890,\"tiny\":5e-7,\"small\":0.000001,\"negative\":-1.5e-10,\"max_safe\":9007199254740993,\"10\":\"ten\",\"2\":\"two\",\"b\":\"bee\",\"a\":\"ay\",\"0\":\"zero\",\"01\":\"zero-one\",\"4294967295\":\"not an index\",\"control\":\"\\u0000\\u0007\\u001f\\u007f\",\"nested\":{\"z\":[1,2.50,{\"y\":null,\"x\":true}],\"\u{2028}key\":\"\u{e9}\"},\"empty\":{},\"list\":[]}";
/// What a JavaScript receiver holds of the custom fields: Node 20's
/// `JSON.stringify(JSON.parse(raw).customers[0].custom_fields)`.
const AWKWARD_FIELDS_AS_JS_HOLDS_THEM: &str = "{\"0\":\"zero\",\"2\":\"two\",\"10\":\"ten\",\"big\":1e+21,\"bigger\":1.5e+300,\"tenth\":0.1,\"negative_zero\":0,\"one_point_zero\":1,\"huge_integer\":12345678901234567000,\"tiny\":5e-7,\"small\":0.000001,\"negative\":-1.5e-10,\"max_safe\":9007199254740992,\"b\":\"bee\",\"a\":\"ay\",\"01\":\"zero-one\",\"4294967295\":\"not an index\",\"control\":\"\\u0000\\u0007\\u001f\u{7f}\",\"nested\":{\"z\":[1,2.5,{\"y\":null,\"x\":true}],\"\u{2028}key\":\"\u{e9}\"},\"empty\":{},\"list\":[]}";

#[test]
fn awkward_content_still_verifies_the_seeds_way() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let (_, secret) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let raw = format!(
            r#"{{"customers":[{{"external_id":"CRM-odd","name":{AWKWARD_NAME_JSON},"email":"odd@example.com",{AWKWARD_REST}}}]}}"#
        );
        let answer = app
            .request(
                Method::Post,
                "/api-customers-sync",
                &[("x-api-key", &acme.key), ("content-type", "application/json")],
                raw.into_bytes(),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(answer["results"]["created"], 1, "{answer}");
        app.settle().await;

        let deliveries = endpoint.deliveries();
        assert_eq!(deliveries.len(), 1);
        let delivery = &deliveries[0];
        assert_signed_event(delivery, &acme, "awkward content");
        assert_eq!(
            js_restringifies_to_itself(&delivery.call.body),
            Ok(()),
            "what a JavaScript receiver parses and writes again is the body as it came"
        );
        assert!(seed_signature_verifies(&secret, &delivery.call), "the seed's way");
        assert!(
            standard_signature_match(&secret, &delivery.call).is_some(),
            "the Standard Webhooks way"
        );
        let customer = &delivery.body["data"]["customer"];
        assert_eq!(customer["name"], AWKWARD_NAME, "the name arrives as written");
        assert_eq!(
            customer["notes"],
            "line one\nline two\r\n\u{1f980} crab as an escaped pair"
        );
        let expected: Value = serde_json::from_str(AWKWARD_FIELDS_AS_JS_HOLDS_THEM).unwrap_or_default();
        assert_eq!(
            customer["custom_fields"], expected,
            "custom_fields arrive as a JavaScript runtime reads them"
        );
    });
}

#[test]
fn an_endpoint_subscribed_only_to_customer_created_gets_no_customer_updated() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let only_created = Endpoint::install(&app.stack, "created.acme.example");
        let everything = Endpoint::install(&app.stack, "everything.acme.example");
        with_endpoint(
            &app,
            &acme.key,
            &only_created,
            json!({ "events": ["customer.created"] }),
        )
        .await;
        with_endpoint(&app, &acme.key, &everything, json!({})).await;
        sync(
            &app,
            &acme.key,
            json!([{ "external_id": "CRM-sub", "name": "First", "email": "sub@example.com" }]),
        )
        .await;
        app.settle().await;
        let second = sync(
            &app,
            &acme.key,
            json!([{ "external_id": "CRM-sub", "name": "Second", "email": "sub@example.com" }]),
        )
        .await;
        assert_eq!(second["results"]["updated"], 1, "{second}");
        app.settle().await;
        let received = only_created.deliveries();
        assert_eq!(events_of(&received), ["customer.created"], "only the creation");
        assert_eq!(
            sorted(events_of(&everything.deliveries())),
            ["customer.created", "customer.updated"]
        );
        assert_eq!(
            received[0].body["id"],
            everything.of_event("customer.created")[0].body["id"],
            "one event, the same id at both endpoints"
        );
    });
}

#[test]
fn an_endpoints_changes_apply_to_the_next_event_so_a_new_url_receives_it_and_a_deleted_endpoint_nothing() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let before = Endpoint::install(&app.stack, "before.acme.example");
        let moved = Endpoint::install(&app.stack, "moved.acme.example");
        let removed = Endpoint::install(&app.stack, "removed.acme.example");
        let sentinel = Endpoint::install(&app.stack, "sentinel.acme.example");
        let created = json!({ "events": ["customer.created"] });
        let (webhook, secret) = with_endpoint(&app, &acme.key, &before, created.clone()).await;
        let (doomed, _) = with_endpoint(&app, &acme.key, &removed, created.clone()).await;
        with_endpoint(&app, &acme.key, &sentinel, created).await;
        moved.knows_secret(&secret);
        app.api(
            &acme.key,
            Method::Patch,
            &format!("/api-webhooks/{}", id_of(&webhook)),
            Some(json!({ "url": moved.url() })),
        )
        .await
        .expect(200);
        app.api(
            &acme.key,
            Method::Delete,
            &format!("/api-webhooks/{}", id_of(&doomed)),
            None,
        )
        .await
        .expect(204);
        let result = sync(
            &app,
            &acme.key,
            json!([{ "name": "After the changes", "email": "after@example.com" }]),
        )
        .await;
        let id = &customer_ids(&result)[0];
        app.settle().await;
        let got = |endpoint: &Endpoint| {
            endpoint
                .deliveries()
                .iter()
                .any(|d| &d.body["data"]["customer"]["id"] == id)
        };
        assert!(got(&sentinel), "the event at the untouched endpoint");
        assert!(got(&moved), "the event at the new url");
        assert!(before.deliveries().is_empty(), "the old url gets nothing");
        assert!(
            removed.deliveries().is_empty(),
            "the deleted endpoint gets nothing"
        );
        assert_signed_event(
            &moved.deliveries()[0],
            &acme,
            "at the new url, with the same secret",
        );
    });
}

#[test]
fn a_sync_of_200_new_customers_delivers_exactly_200_customer_created_events_none_lost_or_repeated() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let customers: Vec<Value> = (0..200)
            .map(|at| json!({ "external_id": format!("CRM-many-{at}"), "name": format!("Customer {at}"), "email": format!("many-{at}@example.com") }))
            .collect();
        let result = sync(&app, &acme.key, json!(customers)).await;
        assert_eq!(result["results"]["created"], 200);
        app.settle().await;
        let received = endpoint.deliveries();
        assert_eq!(received.len(), 200, "exactly 200 requests");
        let mut ids: Vec<String> = received.iter().map(|d| d.body["id"].to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 200, "200 distinct webhook-ids");
        assert!(
            received.iter().all(|d| d.body["event"] == "customer.created"),
            "all customer.created"
        );
        let mut delivered: Vec<String> = received
            .iter()
            .map(|d| d.body["data"]["customer"]["id"].to_string())
            .collect();
        delivered.sort();
        let mut created: Vec<String> = customer_ids(&result).iter().map(Value::to_string).collect();
        created.sort();
        assert_eq!(delivered, created, "one event per created customer");
        let unverified = received
            .iter()
            .filter(|d| !d.seed_verified || !d.standard_verified || d.body["business_id"] != acme.id.as_str())
            .count();
        assert_eq!(unverified, 0, "every delivery verifies and names the business");
    });
}

#[test]
fn an_inbound_whatsapp_image_makes_customer_created_conversation_created_and_message_received_with_a_downloadable_attachment()
 {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let media = MediaHost::install(&app.stack, "graph-media.example.com");
        media.serve_png();
        let account = whatsapp_account(&app, &acme.id, Some(&media.api_base_url())).await;
        let from = "+353871112222";
        receive_whatsapp_from(
            &app,
            &account,
            from,
            "Photo Sender",
            "The broken part",
            Some("1700000000001"),
        )
        .await;
        app.settle_within(Duration::from_secs(60)).await;

        let received = endpoint.deliveries();
        assert_eq!(
            sorted(events_of(&received)),
            ["conversation.created", "customer.created", "message.received"]
        );
        for delivery in &received {
            assert_signed_event(
                delivery,
                &acme,
                delivery.body["event"].as_str().unwrap_or_default(),
            );
        }
        let data_of = |event: &str| endpoint.of_event(event)[0].body["data"].clone();
        let data = data_of("message.received");
        let (message, customer, attachments) = (&data["message"], &data["customer"], &data["attachments"]);
        assert_eq!(message["content"], "The broken part");
        assert_eq!(message["platform"], "whatsapp");
        assert_eq!(message["channel"], "whatsapp");
        assert_eq!(message["direction"], "inbound");
        assert_eq!(message["status"], "received");
        assert!(message["created_at"].as_str().is_some_and(is_rfc3339_utc));
        assert_eq!(message["customer_id"], customer["id"]);
        assert_eq!(customer["phone"], from);
        assert_eq!(customer["name"], "Photo Sender");
        // The core guide's receiver reads the message's fields at the top of `data`.
        assert_eq!(data["content"], "The broken part");
        assert_eq!(data["channel"], "whatsapp");
        assert_eq!(data["direction"], "inbound");
        assert_eq!(data["created_at"], message["created_at"]);
        assert_eq!(data["message_id"], message["id"]);
        assert_eq!(data["conversation_id"], message["conversation_id"]);
        assert_eq!(data["customer_id"], customer["id"]);
        assert_eq!(data["external_id"], customer["external_id"]);
        assert_eq!(
            data_of("customer.created")["customer"]["id"],
            customer["id"],
            "customer.created names the same customer"
        );
        let conversation = data_of("conversation.created");
        assert_eq!(
            conversation_id_of(&conversation),
            message["conversation_id"],
            "conversation.created names the message's conversation"
        );
        assert_eq!(
            conversation["customer"]["id"], customer["id"],
            "conversation.created carries its customer"
        );
        assert_eq!(conversation["conversation"]["channel"], "whatsapp");
        assert!(
            conversation["conversation"]["whatsapp_account_id"].is_string(),
            "{conversation}"
        );
        assert_eq!(
            conversation["conversation"]["whatsapp_account_id"],
            conversation["conversation"]["channel_account_id"],
            "the event's conversation names its WhatsApp account as the API does"
        );

        assert_eq!(attachments.as_array().map(Vec::len), Some(1), "{attachments}");
        let attachment = &attachments[0];
        assert_eq!(attachment["type"], "image/png");
        assert_eq!(attachment["size"], media.image().len());
        assert!(attachment["id"].is_string());
        assert!(attachment["filename"].is_string());
        let link = attachment["download_url"].as_str().unwrap_or_default();
        let path = link
            .strip_prefix(ORIGIN)
            .unwrap_or_else(|| panic!("the download_url is the deployment's ({link})"));
        let download = app.request(Method::Get, path, &[], Vec::new()).await;
        assert_eq!(
            download.status, 200,
            "the download_url works without an API key ({link})"
        );
        assert_eq!(download.body, media.image(), "byte for byte");
        let signature = path
            .split(['?', '&'])
            .find_map(|pair| pair.strip_prefix("signature="))
            .unwrap_or_else(|| panic!("the download_url is a signed link ({link})"));
        let tampered = format!(
            "{}{}",
            if signature.starts_with('a') { 'b' } else { 'a' },
            &signature[1..]
        );
        let tampered_path = path.replace(
            &format!("signature={signature}"),
            &format!("signature={tampered}"),
        );
        let refused = app.request(Method::Get, &tampered_path, &[], Vec::new()).await;
        assert!(
            [401, 403, 404].contains(&refused.status),
            "a tampered link is refused (got {})",
            refused.status
        );

        // The same sender again: a message on the same conversation, no new customer or
        // conversation.
        receive_whatsapp_from(&app, &account, from, "Photo Sender", "Any news?", None).await;
        app.settle().await;
        let later = endpoint.deliveries();
        assert_eq!(
            events_of(&later[3..]),
            ["message.received"],
            "only message.received for a known sender"
        );
        assert_eq!(
            later[3].body["data"]["message"]["conversation_id"],
            message["conversation_id"]
        );
        assert_eq!(
            later[3].body["data"]["attachments"],
            json!([]),
            "a text has no attachments"
        );
    });
}

#[test]
fn a_message_sent_from_the_crm_makes_conversation_created_once_and_message_sent_for_each_message() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            &acme.key,
            &endpoint,
            json!({ "events": ["conversation.created", "message.sent"] }),
        )
        .await;
        Graph::install(&app.stack);
        whatsapp_account(&app, &acme.id, None).await;
        let created = sync(
            &app,
            &acme.key,
            json!([{ "external_id": "CRM-send", "name": "Send Target", "email": "send@example.com", "phone": "+353871113333", "whatsapp_number": "+353871113333" }]),
        )
        .await;
        let customer_id = customer_ids(&created)[0].clone();
        let mut sent = Vec::new();
        for content in ["Your order is ready", "It ships tomorrow"] {
            let accepted = app
                .api(
                    &acme.key,
                    Method::Post,
                    "/api-send-message",
                    Some(json!({ "customer_id": "CRM-send", "channel": "whatsapp", "content": content })),
                )
                .await
                .expect(202)
                .json();
            sent.push((accepted["message"].clone(), content));
            app.settle().await;
        }
        let received = endpoint.deliveries();
        for delivery in &received {
            assert_signed_event(
                delivery,
                &acme,
                delivery.body["event"].as_str().unwrap_or_default(),
            );
        }
        assert_eq!(
            sorted(events_of(&received)),
            ["conversation.created", "message.sent", "message.sent"],
            "one conversation, two messages"
        );
        let first_conversation = &sent[0].0["conversation_id"];
        let conversation = &endpoint.of_event("conversation.created")[0].body["data"];
        assert_eq!(
            &conversation_id_of(conversation),
            first_conversation,
            "conversation.created names the conversation of the send"
        );
        assert_eq!(conversation["customer"]["id"], customer_id);
        for (message, content) in &sent {
            let data = &endpoint
                .of_event("message.sent")
                .into_iter()
                .find(|d| d.body["data"]["message"]["id"] == message["id"])
                .unwrap_or_else(|| panic!("no message.sent of {message}"))
                .body["data"];
            assert_eq!(data["message"]["content"], *content);
            assert_eq!(data["message"]["direction"], "outbound");
            assert_eq!(data["message"]["channel"], "whatsapp");
            assert_eq!(&data["message"]["conversation_id"], first_conversation);
            assert_eq!(data["customer"]["id"], customer_id);
            assert_eq!(data["attachments"], json!([]));
        }
    });
}

#[test]
fn the_messages_delivered_as_message_received_are_the_messages_polling_returns() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            &acme.key,
            &endpoint,
            json!({ "events": ["message.received"] }),
        )
        .await;
        let account = whatsapp_account(&app, &acme.id, None).await;
        let (ann, bob) = ("+353871114444", "+353871115555");
        for (from, text) in [(ann, "one"), (bob, "two"), (ann, "three"), (bob, "four \u{2713}")] {
            receive_whatsapp_from(&app, &account, from, "WhatsApp Sender", text, None).await;
        }
        app.settle().await;
        let received = endpoint.deliveries();
        assert_eq!(received.len(), 4, "one event per message");
        let polled = messages_of(&app, &acme.key).await;
        let mut delivered_ids: Vec<String> = received
            .iter()
            .map(|d| d.body["data"]["message"]["id"].to_string())
            .collect();
        delivered_ids.sort();
        let mut polled_ids: Vec<String> = polled.iter().map(|m| m["id"].to_string()).collect();
        polled_ids.sort();
        assert_eq!(delivered_ids, polled_ids, "the same message ids both ways");
        for delivery in &received {
            let message = &delivery.body["data"]["message"];
            let twin = polled
                .iter()
                .find(|m| m["id"] == message["id"])
                .unwrap_or_else(|| panic!("{message} is not polled"));
            for field in [
                "conversation_id",
                "customer_id",
                "content",
                "channel",
                "direction",
                "created_at",
            ] {
                assert_eq!(
                    message[field], twin[field],
                    "{field} agrees for {}",
                    twin["content"]
                );
            }
        }
    });
}

#[test]
fn patch_of_a_conversation_delivers_conversation_assigned_and_conversation_status_changed_with_the_previous_values_and_nothing_when_nothing_changes()
 {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            &acme.key,
            &endpoint,
            json!({ "events": ["conversation.assigned", "conversation.status_changed"] }),
        )
        .await;
        let account = whatsapp_account(&app, &acme.id, None).await;
        receive_whatsapp_from(
            &app,
            &account,
            "+353871116666",
            "WhatsApp Sender",
            "Where is my order?",
            None,
        )
        .await;
        let message = messages_of(&app, &acme.key).await[0].clone();
        let id = message["conversation_id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/api-conversations/{id}");
        let patch = |body: Value| app.api(&acme.key, Method::Patch, &path, Some(body));

        let assigned = patch(json!({ "assignee": "agent-7" })).await.expect(200).json();
        let conversation = &assigned["conversation"];
        assert_eq!(conversation["id"], id.as_str());
        assert_eq!(conversation["assignee"], "agent-7");
        assert_eq!(conversation["channel"], "whatsapp");
        assert_eq!(conversation["customer_id"], message["customer_id"]);
        for field in ["created_at", "updated_at", "last_message_at"] {
            assert!(
                conversation[field].as_str().is_some_and(is_rfc3339_utc),
                "{field}: {conversation}"
            );
        }
        let initial_status = conversation["status"].clone();
        assert!(
            initial_status == "open" || initial_status == "pending",
            "a new conversation is open or pending ({initial_status})"
        );
        let resolved = patch(json!({ "status": "resolved" })).await.expect(200).json();
        assert_eq!(resolved["conversation"]["status"], "resolved");
        assert_eq!(
            resolved["conversation"]["assignee"], "agent-7",
            "the assignee is kept"
        );
        app.settle().await;
        patch(json!({ "status": "resolved", "assignee": "agent-7" }))
            .await
            .expect(200);
        let both = patch(json!({ "status": "closed", "assignee": null }))
            .await
            .expect(200)
            .json();
        assert_eq!(both["conversation"]["assignee"], Value::Null);
        app.settle().await;

        let received = endpoint.deliveries();
        for delivery in &received {
            assert_signed_event(
                delivery,
                &acme,
                delivery.body["event"].as_str().unwrap_or_default(),
            );
        }
        assert_eq!(
            received.len(),
            4,
            "four changes, four events; the unchanged PATCH made none ({:?})",
            events_of(&received)
        );
        let pairs = |event: &str, previous: &str, field: &str| -> Vec<(Value, Value)> {
            endpoint
                .of_event(event)
                .iter()
                .map(|d| {
                    (
                        d.body["data"][previous].clone(),
                        d.body["data"]["conversation"][field].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(
            pairs("conversation.assigned", "previous_assignee", "assignee"),
            [(Value::Null, json!("agent-7")), (json!("agent-7"), Value::Null)]
        );
        assert_eq!(
            pairs("conversation.status_changed", "previous_status", "status"),
            [
                (initial_status, json!("resolved")),
                (json!("resolved"), json!("closed"))
            ]
        );
        for delivery in &received {
            assert_eq!(
                conversation_id_of(&delivery.body["data"]),
                id.as_str(),
                "each event names the conversation"
            );
        }
    });
}

#[test]
fn each_event_carries_the_record_as_it_was_when_its_change_happened_however_soon_the_next_change_follows() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        // Every change is made before any event is dispatched; a second between them orders the
        // events by their timestamps.
        for name in ["One", "Two", "Three"] {
            sync(
                &app,
                &acme.key,
                json!([{ "external_id": "CRM-snap", "name": name, "email": "snap@example.com" }]),
            )
            .await;
            app.stack.advance(Duration::from_secs(1));
        }
        let account = whatsapp_account(&app, &acme.id, None).await;
        receive_whatsapp_from(&app, &account, "+353871117777", "Snapshot", "Hello", None).await;
        let message = messages_of(&app, &acme.key).await[0].clone();
        for body in [
            json!({ "status": "resolved" }),
            json!({ "status": "closed" }),
            json!({ "assignee": "agent-a" }),
            json!({ "assignee": "agent-b" }),
        ] {
            app.stack.advance(Duration::from_secs(1));
            app.api(
                &acme.key,
                Method::Patch,
                &format!(
                    "/api-conversations/{}",
                    message["conversation_id"].as_str().unwrap_or_default()
                ),
                Some(body),
            )
            .await
            .expect(200);
        }
        app.settle().await;
        assert_eq!(
            endpoint.deliveries().len(),
            10,
            "{:?}",
            events_of(&endpoint.deliveries())
        );
        let by_time = |event: &str| {
            let mut of_event = endpoint.of_event(event);
            of_event.sort_by(|a, b| a.body["timestamp"].as_str().cmp(&b.body["timestamp"].as_str()));
            of_event
                .into_iter()
                .map(|d| d.body["data"].clone())
                .collect::<Vec<Value>>()
        };
        let names: Vec<Value> = by_time("customer.created")
            .into_iter()
            .chain(by_time("customer.updated"))
            .filter(|d| d["customer"]["external_id"] == "CRM-snap")
            .map(|d| d["customer"]["name"].clone())
            .collect();
        assert_eq!(
            names,
            [json!("One"), json!("Two"), json!("Three")],
            "each customer event shows the customer as that sync left it"
        );
        assert_eq!(
            by_time("conversation.status_changed")
                .iter()
                .map(|d| (d["previous_status"].clone(), d["conversation"]["status"].clone()))
                .collect::<Vec<_>>(),
            [
                (json!("open"), json!("resolved")),
                (json!("resolved"), json!("closed"))
            ],
            "each status change shows the status it changed to"
        );
        assert_eq!(
            by_time("conversation.assigned")
                .iter()
                .map(|d| (
                    d["previous_assignee"].clone(),
                    d["conversation"]["assignee"].clone()
                ))
                .collect::<Vec<_>>(),
            [
                (Value::Null, json!("agent-a")),
                (json!("agent-a"), json!("agent-b"))
            ],
            "each assignment shows the assignee it set"
        );
        let created = &by_time("conversation.created")[0];
        assert_eq!(
            (
                &created["conversation"]["status"],
                &created["conversation"]["assignee"]
            ),
            (&json!("open"), &Value::Null),
            "conversation.created shows the new conversation"
        );
    });
}

#[test]
fn a_bad_conversation_patch_is_refused_and_another_businesss_conversation_is_404() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            &acme.key,
            &endpoint,
            json!({ "events": ["conversation.assigned", "conversation.status_changed"] }),
        )
        .await;
        let account = whatsapp_account(&app, &acme.id, None).await;
        receive_whatsapp_from(&app, &account, "+353871118888", "WhatsApp Sender", "Hi", None).await;
        let message = messages_of(&app, &acme.key).await[0].clone();
        let path = format!(
            "/api-conversations/{}",
            message["conversation_id"].as_str().unwrap_or_default()
        );
        for (description, body, field) in [
            ("an unknown status", json!({ "status": "archived" }), "status"),
            (
                "a status in the wrong case",
                json!({ "status": "Open" }),
                "status",
            ),
        ] {
            let answer = app.api(&acme.key, Method::Patch, &path, Some(body)).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], field, "{description}: the field");
        }
        crate::steps::api::client_error(
            &app.api(&acme.key, Method::Patch, &path, Some(json!({ "assignee": 42 })))
                .await,
            "a numeric assignee",
        );
        assert_error(
            &crate::steps::api::raw(&app, Some(&acme.key), Method::Patch, &path, br#"{"status":"#).await,
            400,
            "malformed_request",
            "truncated JSON",
        );
        assert_error(
            &app.json(Method::Patch, &path, &[], Some(json!({ "status": "closed" })))
                .await,
            401,
            "unauthorized",
            "no API key",
        );
        let intruder = app.business("Intruder").await;
        let unknown = "/api-conversations/8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";
        for (description, target) in [
            ("another business's conversation", path.as_str()),
            ("an unknown conversation", unknown),
        ] {
            assert_error(
                &app.api(
                    &intruder.key,
                    Method::Patch,
                    target,
                    Some(json!({ "status": "closed" })),
                )
                .await,
                404,
                "not_found",
                description,
            );
        }
        assert_error(
            &app.api(
                &acme.key,
                Method::Patch,
                unknown,
                Some(json!({ "status": "closed" })),
            )
            .await,
            404,
            "not_found",
            "an unknown conversation of the owner",
        );
        app.settle().await;
        assert!(endpoint.deliveries().is_empty(), "no refused PATCH made an event");
    });
}
