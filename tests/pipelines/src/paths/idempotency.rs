//! `Idempotency-Key` on the POSTs that create or send (`tests/e2e/idempotency.test.mjs`): a retry
//! of the same request within 24 hours gets the first response again (`Idempotent-Replayed:
//! true`) and does nothing twice (one message reaches the provider, one webhook endpoint exists);
//! the same key with another request is 422; concurrent requests with one key run once; keys
//! belong to their business; a malformed key is 400; a request without a key is untouched.

use crate::app::{Answer, App, Business, test};
use crate::partners::meta::Graph;
use crate::steps::api::assert_error;
use crate::steps::channels::{messages_of, whatsapp_account};
use crate::steps::customers::{at_once, sync, text_at};
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "idempotent-replayed";

/// Long enough for every attempt of a send (its backoff), in virtual time.
const SETTLE: Duration = Duration::from_secs(120);

/// `POST path` of `body` with the business's key and, when given, an `Idempotency-Key`.
async fn post(app: &App, business: &Business, path: &str, body: Value, key: Option<&str>) -> Answer {
    let mut headers = vec![("x-api-key", business.key.as_str())];
    if let Some(key) = key {
        headers.push((KEY, key));
    }
    app.json(Method::Post, path, &headers, Some(body)).await
}

async fn webhook_count(app: &App, business: &Business) -> usize {
    let listed = app
        .api(&business.key, Method::Get, "/api-webhooks", None)
        .await
        .expect(200)
        .json();
    listed["webhooks"].as_array().map_or(0, Vec::len)
}

/// A webhook endpoint to register, named afresh each time.
fn endpoint() -> Value {
    json!({ "name": unique("hook"), "url": "https://crm.example.com/hooks", "events": ["message.received"] })
}

/// A key no other call gives, as a client makes one (a UUID).
fn new_key() -> String {
    let n = unique("k")
        .trim_start_matches("k-")
        .parse::<u64>()
        .unwrap_or_default();
    format!("0d9f6c2a-7b1e-4c3d-9a8b-{n:012x}")
}

#[test]
fn a_retry_with_the_same_key_and_body_sends_one_message_the_retry_gets_the_first_answer_and_the_provider_one_call()
 {
    test(|app| async move {
        let graph = Graph::install(&app.stack);
        let acme = app.business_in("Acme", Some("IE")).await;
        whatsapp_account(&app, &acme.id, None).await;
        let phone = "+353871234001";
        let stored = sync(
            &app,
            &acme.key,
            json!([{ "external_id": unique("c"), "name": "Aoife", "phone": phone, "whatsapp_number": phone }]),
        )
        .await;
        let customer_id = text_at(&stored, "/results/details/0/customer_id").to_owned();
        let body =
            json!({ "customer_id": customer_id, "channel": "whatsapp", "content": "Your order shipped" });
        let key = new_key();
        let first = post(&app, &acme, "/api-send-message", body.clone(), Some(&key)).await;
        assert_eq!(first.status, 202, "{}", first.text());
        assert_eq!(first.header(REPLAYED), None, "the first answer is not a replay");
        for _ in 0..3 {
            let retry = post(&app, &acme, "/api-send-message", body.clone(), Some(&key)).await;
            assert_eq!(retry.status, 202, "{}", retry.text());
            assert_eq!(retry.header(REPLAYED), Some("true"));
            assert_eq!(retry.body, first.body, "the first response, byte for byte");
        }
        // Every attempt the dispatcher would make, had there been a second message.
        app.settle_within(SETTLE).await;
        assert_eq!(
            graph.texts_sent_to(phone),
            ["Your order shipped"],
            "the provider was called once"
        );
        let mine: Vec<Value> = messages_of(&app, &acme.key)
            .await
            .into_iter()
            .filter(|message| message["customer_id"] == customer_id)
            .collect();
        assert_eq!(mine.len(), 1, "one message is stored: {mine:?}");
        // Without a key every request is its own.
        let again = post(&app, &acme, "/api-send-message", body, None)
            .await
            .expect(202);
        assert_ne!(again.json()["message"]["id"], first.json()["message"]["id"]);
    });
}

#[test]
fn a_retry_with_the_same_key_and_body_creates_one_webhook_endpoint_and_replays_its_signing_secret() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let before = webhook_count(&app, &acme).await;
        let body = endpoint();
        let key = new_key();
        let first = post(&app, &acme, "/api-webhooks", body.clone(), Some(&key))
            .await
            .expect(201);
        let retry = post(&app, &acme, "/api-webhooks", body, Some(&key))
            .await
            .expect(201);
        assert_eq!(retry.header(REPLAYED), Some("true"));
        let (first, retry) = (first.json(), retry.json());
        assert_eq!(retry["webhook"]["id"], first["webhook"]["id"]);
        assert_eq!(
            retry["secret"], first["secret"],
            "the secret shown once is shown to the retry too"
        );
        assert_eq!(webhook_count(&app, &acme).await, before + 1);
    });
}

#[test]
fn a_retry_with_the_same_key_and_body_upserts_once_through_sync_and_bulk_create_whatever_the_batch() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        for path in ["/api-customers-sync", "/api-customers-bulk-create"] {
            let customers: Vec<Value> = (0..20)
                .map(|i| json!({ "external_id": unique(&format!("b{i}")), "name": format!("Row {i}") }))
                .collect();
            let key = new_key();
            let first = post(&app, &acme, path, json!({ "customers": customers }), Some(&key)).await;
            assert_eq!(first.status, 200, "{path}: {}", first.text());
            let retry = post(&app, &acme, path, json!({ "customers": customers }), Some(&key)).await;
            assert_eq!(retry.header(REPLAYED), Some("true"), "{path}");
            assert_eq!(
                retry.json(),
                first.json(),
                "{path}: every created row reported as created again, not as updated"
            );
        }
    });
}

#[test]
fn a_retry_with_the_same_key_and_body_issues_one_sso_token_the_replayed_token_is_the_one_that_works() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let stored = sync(
            &app,
            &acme.key,
            json!([{ "external_id": unique("s"), "name": "Niamh", "email": format!("{}@example.com", unique("n")) }]),
        )
        .await;
        let body = json!({ "customer_id": text_at(&stored, "/results/details/0/customer_id") });
        let key = new_key();
        let first = post(&app, &acme, "/api-sso-generate-token", body.clone(), Some(&key))
            .await
            .expect(201);
        let retry = post(&app, &acme, "/api-sso-generate-token", body, Some(&key)).await;
        assert_eq!(retry.header(REPLAYED), Some("true"), "{}", retry.text());
        let token = text_at(&retry.json(), "/token").to_owned();
        assert_eq!(token, text_at(&first.json(), "/token"));
        let encoded = crate::partners::form::url_encoded(&[("token", &token)]);
        let page = app
            .request(Method::Get, &format!("/embed/inbox?{encoded}"), &[], Vec::new())
            .await;
        assert_eq!(page.status, 200, "the replayed token opens the inbox");
    });
}

#[test]
fn a_retry_with_the_same_key_and_body_uploads_one_attachment_although_the_multipart_boundary_differs_on_the_retry()
 {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let key = new_key();
        let upload = |boundary: &'static str| {
            let text = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\nContent-Type: text/plain\r\n\r\nhello idempotency\r\n--{boundary}--\r\n"
            );
            let content_type = format!("multipart/form-data; boundary={boundary}");
            let (app, acme, key) = (&app, &acme, &key);
            async move {
                app.request(
                    Method::Post,
                    "/api-upload-attachment",
                    &[
                        ("x-api-key", &acme.key),
                        ("content-type", &content_type),
                        (KEY, key),
                    ],
                    text.into_bytes(),
                )
                .await
            }
        };
        let first = upload("----a3f9c1e27b4d6a80").await;
        assert_eq!(first.status, 201, "{}", first.text());
        let retry = upload("----b51d0e8c2a7f3b96").await;
        assert_eq!(retry.status, 201, "{}", retry.text());
        assert_eq!(retry.header(REPLAYED), Some("true"));
        assert_eq!(retry.json()["attachment"]["id"], first.json()["attachment"]["id"]);
    });
}

#[test]
fn a_retry_with_the_same_key_and_body_replays_a_refusal_too_the_request_was_decided_so_the_retry_gets_the_same_4xx()
 {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let key = new_key();
        let body = json!({ "customer_id": "8e0b7a64-2c1d-4f3e-9a5b-6c7d8e9f0a1b", "channel": "whatsapp", "content": "hi" });
        let first = post(&app, &acme, "/api-send-message", body.clone(), Some(&key)).await;
        assert_error(&first, 404, "not_found", "the first request");
        let retry = post(&app, &acme, "/api-send-message", body, Some(&key)).await;
        assert_error(&retry, 404, "not_found", "the retry");
        assert_eq!(retry.header(REPLAYED), Some("true"));
    });
}

#[test]
fn the_same_key_with_another_body_is_422_naming_the_header() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let key = new_key();
        post(&app, &acme, "/api-webhooks", endpoint(), Some(&key))
            .await
            .expect(201);
        let count = webhook_count(&app, &acme).await;
        let answer = post(&app, &acme, "/api-webhooks", endpoint(), Some(&key)).await;
        let error = assert_error(&answer, 422, "validation_failed", "another body");
        assert_eq!(error["field"], KEY);
        assert_eq!(webhook_count(&app, &acme).await, count, "nothing was created");
    });
}

#[test]
fn the_same_key_on_another_endpoint_is_422() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let key = new_key();
        post(&app, &acme, "/api-webhooks", endpoint(), Some(&key))
            .await
            .expect(201);
        let answer = post(
            &app,
            &acme,
            "/api-customers-sync",
            json!({ "customers": [{ "external_id": unique("x") }] }),
            Some(&key),
        )
        .await;
        assert_error(&answer, 422, "validation_failed", "another endpoint");
    });
}

#[test]
fn concurrent_requests_with_one_key_run_once_the_others_wait_409_retry_after_or_replay() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let count = webhook_count(&app, &acme).await;
        let key = new_key();
        let body = endpoint();
        let answers = at_once(
            &app,
            (0..6).map(|_| post(&app, &acme, "/api-webhooks", body.clone(), Some(&key))),
        )
        .await;
        let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
        let waiting: Vec<&Answer> = answers.iter().filter(|a| a.status == 409).collect();
        let seen: Vec<String> = answers
            .iter()
            .map(|a| format!("{} {}", a.status, a.text()))
            .collect();
        assert_eq!(created.len() + waiting.len(), answers.len(), "{seen:#?}");
        assert!(!created.is_empty(), "{seen:#?}");
        // Their claims interleave (D1 takes a round trip's time), so the first still runs when
        // the others ask: they are told to wait, not given a replay.
        assert!(!waiting.is_empty(), "some waited: {seen:#?}");
        let mut ids: Vec<Value> = created
            .iter()
            .map(|a| a.json()["webhook"]["id"].clone())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 1, "every 201 names the one endpoint");
        for answer in &waiting {
            assert_error(answer, 409, "conflict", "a request while the first runs");
            assert_eq!(answer.header("retry-after"), Some("1"));
        }
        assert_eq!(
            webhook_count(&app, &acme).await,
            count + 1,
            "one endpoint was created"
        );
        let later = post(&app, &acme, "/api-webhooks", body, Some(&key)).await;
        assert_eq!(later.header(REPLAYED), Some("true"));
    });
}

#[test]
fn keys_are_the_businesss_own_another_businesss_same_key_and_body_runs_for_it() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let other = app.business_in("Other", Some("IE")).await;
        let key = new_key();
        let body = endpoint();
        let mine = post(&app, &acme, "/api-webhooks", body.clone(), Some(&key))
            .await
            .expect(201);
        let theirs = post(&app, &other, "/api-webhooks", body, Some(&key))
            .await
            .expect(201);
        assert_eq!(theirs.header(REPLAYED), None);
        assert_ne!(theirs.json()["webhook"]["id"], mine.json()["webhook"]["id"]);
    });
}

#[test]
fn a_malformed_key_is_400_and_nothing_runs() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let count = webhook_count(&app, &acme).await;
        for bad in [String::new(), "has space".to_owned(), "k".repeat(256)] {
            let answer = post(&app, &acme, "/api-webhooks", endpoint(), Some(&bad)).await;
            let error = assert_error(&answer, 400, "malformed_request", &format!("{bad:?}"));
            assert_eq!(error["field"], KEY, "{bad:?}");
        }
        assert_eq!(webhook_count(&app, &acme).await, count);
    });
}

#[test]
fn a_key_is_checked_after_the_api_key_without_one_it_is_401() {
    test(|app| async move {
        let answer = app
            .json(
                Method::Post,
                "/api-webhooks",
                &[(KEY, &new_key())],
                Some(endpoint()),
            )
            .await;
        assert_error(&answer, 401, "unauthorized", "no API key");
    });
}

#[test]
fn an_oversized_body_with_a_key_is_413_and_claims_nothing() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let key = new_key();
        let huge = json!({ "customers": [{ "external_id": "x", "notes": "x".repeat(5 * 1024 * 1024) }] });
        assert_error(
            &post(&app, &acme, "/api-customers-sync", huge, Some(&key)).await,
            413,
            "payload_too_large",
            "a 5 MiB body",
        );
        let small = post(
            &app,
            &acme,
            "/api-customers-sync",
            json!({ "customers": [{ "external_id": unique("after") }] }),
            Some(&key),
        )
        .await;
        assert_eq!(small.status, 200, "the key is still free: {}", small.text());
        assert_eq!(small.header(REPLAYED), None);
    });
}
