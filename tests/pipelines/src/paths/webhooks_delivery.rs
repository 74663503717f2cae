//! How deliveries behave when the receiver does not simply answer 200, on the virtual clock: the
//! seed's schedule (three retries after 2, 4 and 8 s), no retry for a 4xx other than 429 or a
//! redirect, Retry-After honoured, timeouts and refused connections retried and logged, dead
//! deliveries replayed with the same webhook-id, secrets rotated with a grace period during which
//! both sign, an endpoint that keeps failing disabled until the business enables it again, and a
//! fan-out larger than one invocation. (The end-to-end suite's `webhooks-delivery.test.mjs`.)

use crate::app::{App, Business, test};
use crate::partners::gaps;
use crate::partners::webhook_endpoint::{
    Delivery, Endpoint, seed_signature_verifies, standard_signature_entries, standard_signature_match,
};
use crate::steps::api::{assert_error, is_rfc3339_utc, rfc3339_at, rfc3339_ms};
use crate::steps::customers::{new_customer, sync};
use crate::steps::store::{execute, select_values};
use crate::steps::webhooks::{
    attempts_of, create_webhook, deliveries_of, delivery_of_event, get_webhook, with_endpoint,
};
use crate::steps::{id_of, unique};
use edge::runtime::Level;
use edge::runtime::Method;
use edge::runtime::native::{Delay, Reply};
use futures_util::future::join;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough for every retry of the standard schedule (2 + 4 + 8 s) and more.
const SCHEDULE: Duration = Duration::from_secs(60);

fn event_id_of(delivery: &Delivery) -> String {
    delivery.call.header("webhook-id").unwrap_or_default().to_owned()
}

/// The attempts of one delivery, oldest first (the log is newest first).
async fn attempts_of_delivery(app: &App, key: &str, delivery_id: &str) -> Vec<Value> {
    let mut log = attempts_of(app, key, &format!("delivery_id={delivery_id}")).await;
    log.reverse();
    log
}

/// A business with an endpoint at `host` subscribed to `customer.created` (and `fields`).
async fn business_with_endpoint(
    app: &App,
    name: &str,
    host: &str,
    fields: Value,
) -> (Business, Endpoint, Value, String) {
    let business = app.business(name).await;
    let endpoint = Endpoint::install(&app.stack, host);
    let mut all = json!({ "events": ["customer.created"] });
    if let (Some(all), Some(fields)) = (all.as_object_mut(), fields.as_object()) {
        all.extend(fields.clone());
    }
    let (webhook, secret) = with_endpoint(app, &business.key, &endpoint, all).await;
    (business, endpoint, webhook, secret)
}

#[test]
fn a_receiver_that_always_answers_500_gets_four_attempts_2_4_and_8_s_apart_then_the_delivery_is_dead_and_a_replay_delivers_it_with_the_same_webhook_id()
 {
    test(|app| async move {
        let long_body = format!(r#"{{"error":"{}"}}"#, "x".repeat(3000));
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        endpoint.answer_always(
            Reply::status(500)
                .header("content-type", "application/json")
                .body(long_body.clone()),
        );
        let webhook_id = id_of(&webhook);
        new_customer(&app, &acme.key, "Event Source").await;
        app.settle().await;

        let first = endpoint.deliveries();
        assert_eq!(first.len(), 1, "the first attempt, at once");
        let event_id = event_id_of(&first[0]);
        let pending = delivery_of_event(&app, &acme.key, &webhook_id, &event_id).await;
        assert_eq!(pending["status"], "pending", "{pending}");
        assert!(pending["attempts"].as_u64() >= Some(1), "{pending}");
        assert!(
            pending["next_attempt_at"].as_str().is_some_and(is_rfc3339_utc),
            "a pending delivery says when it is tried next: {pending}"
        );
        assert_eq!(pending["event_type"], "customer.created");

        app.settle_within(SCHEDULE).await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 4, "four attempts, then no more");
        let calls: Vec<_> = requests.iter().map(|d| d.call.clone()).collect();
        let waits = gaps(&calls);
        for (at, expected) in [2_000, 4_000, 8_000].into_iter().enumerate() {
            assert!(
                waits[at] >= expected && waits[at] < expected + 1_000,
                "retry {} waits {expected} ms (waited {} ms; all: {waits:?})",
                at + 1,
                waits[at]
            );
        }
        assert!(
            requests.iter().all(|d| event_id_of(d) == event_id),
            "webhook-id is the same on every retry"
        );
        let stamps: Vec<i64> = requests
            .iter()
            .map(|d| {
                d.call
                    .header("x-webhook-timestamp")
                    .and_then(|stamp| stamp.parse().ok())
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            stamps[3] - stamps[0] >= 10,
            "each attempt is signed at its own time, so the seed's 300 s check passes on late retries ({stamps:?})"
        );
        for attempt in &requests {
            assert!(
                attempt.seed_verified && attempt.standard_verified,
                "every retry is signed"
            );
            assert_eq!(attempt.body["business_id"], acme.id.as_str());
        }

        let dead = delivery_of_event(&app, &acme.key, &webhook_id, &event_id).await;
        assert_eq!(dead["status"], "dead", "{dead}");
        assert_eq!(dead["attempts"], 4);
        assert_eq!(dead["replays"], 0);
        assert_eq!(
            dead["next_attempt_at"],
            Value::Null,
            "a dead delivery is not tried again"
        );
        assert_eq!(dead["last_status"], 500);
        assert!(dead["event_at"].as_str().is_some_and(is_rfc3339_utc));
        let dead_id = id_of(&dead);
        let dead_only = deliveries_of(&app, &acme.key, &webhook_id, "status=dead").await;
        assert_eq!(
            dead_only.iter().map(id_of).collect::<Vec<_>>(),
            std::slice::from_ref(&dead_id),
            "the dead-letter list shows it"
        );
        assert_eq!(
            deliveries_of(&app, &acme.key, &webhook_id, "status=pending").await,
            Vec::<Value>::new(),
            "nothing is pending"
        );

        let log = attempts_of_delivery(&app, &acme.key, &dead_id).await;
        assert_eq!(
            log.iter().map(|a| a["attempt"].clone()).collect::<Vec<_>>(),
            [json!(1), json!(2), json!(3), json!(4)],
            "{log:?}"
        );
        assert_eq!(
            log.iter().map(|a| a["outcome"].clone()).collect::<Vec<_>>(),
            [
                json!("retrying"),
                json!("retrying"),
                json!("retrying"),
                json!("dead")
            ]
        );
        for entry in &log {
            assert_eq!(entry["status_code"], 500);
            assert_eq!(entry["replay"], 0);
            assert_eq!(entry["event_id"], event_id.as_str());
            assert_eq!(entry["webhook_id"], webhook_id.as_str());
            assert_eq!(entry["delivery_id"], dead_id.as_str());
            assert_eq!(entry["event_type"], "customer.created");
            assert_eq!(entry["url"], endpoint.url().as_str());
            assert!(entry["duration_ms"].is_number());
            let logged = entry["response_body"].as_str().unwrap_or_default();
            assert!(
                logged.len() <= 1024,
                "the logged body is cut at 1024 bytes ({})",
                logged.len()
            );
            assert!(
                long_body.starts_with(logged),
                "the logged body is the start of the answer"
            );
            assert!(logged.len() >= 512, "a useful part of the answer is kept");
        }
        let by_event = attempts_of(&app, &acme.key, &format!("event_id={event_id}")).await;
        assert_eq!(
            by_event.iter().map(|a| a["attempt"].clone()).collect::<Vec<_>>(),
            [json!(4), json!(3), json!(2), json!(1)],
            "the log is queryable by event, newest first"
        );

        endpoint.answer_always(Reply::text(200, "ok"));
        let replay = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{webhook_id}/replay"),
                Some(json!({ "delivery_id": dead_id })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(replay["replayed"], 1);
        assert_eq!(replay["delivery_ids"], json!([dead_id]));
        app.settle().await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 5, "the replay is one more request");
        let replayed = &requests[4];
        assert_eq!(
            event_id_of(replayed),
            event_id,
            "the replay keeps the webhook-id, so the receiver can deduplicate"
        );
        assert_eq!(replayed.body["id"], event_id.as_str());
        assert!(
            replayed.seed_verified && replayed.standard_verified,
            "the replay is signed"
        );
        let delivered = delivery_of_event(&app, &acme.key, &webhook_id, &event_id).await;
        assert_eq!(delivered["status"], "delivered");
        assert_eq!(delivered["replays"], 1);
        let after = attempts_of_delivery(&app, &acme.key, &dead_id).await;
        assert_eq!(after.len(), 5);
        let last = &after[4];
        assert_eq!(
            (
                &last["replay"],
                &last["attempt"],
                &last["outcome"],
                &last["status_code"]
            ),
            (&json!(1), &json!(1), &json!("delivered"), &json!(200)),
            "{last}"
        );
    });
}

#[test]
fn a_410_a_400_or_a_redirect_is_not_retried_so_one_attempt_and_the_delivery_is_dead() {
    test(|app| async move {
        let target = Endpoint::install(&app.stack, "moved.example.com");
        let cases = [
            ("410 Gone", Reply::status(410), 410),
            ("400 Bad Request", Reply::status(400), 400),
            (
                "a 301 redirect, which is not followed",
                Reply::status(301).header("location", &target.url()),
                301,
            ),
        ];
        let mut started = Vec::new();
        for (at, (description, reply, status)) in cases.into_iter().enumerate() {
            let (business, endpoint, webhook, _) = business_with_endpoint(
                &app,
                &format!("Business {at}"),
                &format!("hooks{at}.example.com"),
                json!({}),
            )
            .await;
            endpoint.answer_always(reply);
            new_customer(&app, &business.key, "Event Source").await;
            started.push((description, status, business, endpoint, webhook));
        }
        // Longer than the first two waits of the schedule.
        app.settle_within(Duration::from_millis(4_500)).await;
        for (description, status, business, endpoint, webhook) in started {
            let requests = endpoint.deliveries();
            assert_eq!(requests.len(), 1, "{description}: exactly one attempt");
            let delivery =
                delivery_of_event(&app, &business.key, &id_of(&webhook), &event_id_of(&requests[0])).await;
            assert_eq!(delivery["status"], "dead", "{description}: {delivery}");
            assert_eq!(delivery["attempts"], 1, "{description}: one attempt counted");
            assert_eq!(delivery["last_status"], status, "{description}: last_status");
            let log = attempts_of_delivery(&app, &business.key, &id_of(&delivery)).await;
            assert_eq!(
                log.iter()
                    .map(|a| (
                        a["attempt"].clone(),
                        a["status_code"].clone(),
                        a["outcome"].clone()
                    ))
                    .collect::<Vec<_>>(),
                [(json!(1), json!(status), json!("dead"))],
                "{description}: the log"
            );
        }
        assert!(target.deliveries().is_empty(), "the redirect was not followed");
    });
}

/// Replays one delivery through the API, which answers that it was queued again.
async fn replay_one(app: &App, key: &str, webhook_id: &str, delivery_id: &str) {
    let replay = app
        .api(
            key,
            Method::Post,
            &format!("/api-webhooks/{webhook_id}/replay"),
            Some(json!({ "delivery_id": delivery_id })),
        )
        .await
        .expect(202)
        .json();
    assert_eq!(replay, json!({ "replayed": 1, "delivery_ids": [delivery_id] }));
}

#[test]
fn a_429_with_retry_after_5_is_retried_no_sooner_than_5_s_later() {
    test(|app| async move {
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        endpoint.answer_next([Reply::status(429).header("retry-after", "5")]);
        let webhook_id = id_of(&webhook);
        new_customer(&app, &acme.key, "Event Source").await;
        app.settle_within(SCHEDULE).await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 2, "the 429, then the retry");
        let calls: Vec<_> = requests.iter().map(|d| d.call.clone()).collect();
        let wait = gaps(&calls)[0];
        assert!(
            (5_000..6_000).contains(&wait),
            "Retry-After is honoured over the 2 s schedule (waited {wait} ms)"
        );
        let event_id = event_id_of(&requests[0]);
        assert_eq!(event_id_of(&requests[1]), event_id);
        let delivery = delivery_of_event(&app, &acme.key, &webhook_id, &event_id).await;
        assert_eq!(delivery["status"], "delivered");
        assert_eq!(delivery["attempts"], 2);
        let delivery_id = id_of(&delivery);
        let log = attempts_of_delivery(&app, &acme.key, &delivery_id).await;
        assert_eq!(
            log.iter()
                .map(|a| (a["status_code"].clone(), a["outcome"].clone()))
                .collect::<Vec<_>>(),
            [(json!(429), json!("retrying")), (json!(200), json!("delivered"))]
        );

        // A delivered delivery can be replayed too, as the same event.
        replay_one(&app, &acme.key, &webhook_id, &delivery_id).await;
        app.settle().await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 3);
        assert_eq!(event_id_of(&requests[2]), event_id, "the same webhook-id");
        let again = delivery_of_event(&app, &acme.key, &webhook_id, &event_id).await;
        assert_eq!(
            (&again["status"], &again["replays"]),
            (&json!("delivered"), &json!(1))
        );
        assert_eq!(again["attempts"], 1, "the replay is a new round of attempts");
        for (description, body) in [
            (
                "an unknown delivery id",
                json!({ "delivery_id": "00000000-0000-4000-8000-000000000000" }),
            ),
            (
                "a delivery id that is not an id",
                json!({ "delivery_id": "nope" }),
            ),
        ] {
            let answer = app
                .api(
                    &acme.key,
                    Method::Post,
                    &format!("/api-webhooks/{webhook_id}/replay"),
                    Some(body),
                )
                .await;
            assert!(
                [404, 422].contains(&answer.status),
                "{description}: refused ({} {})",
                answer.status,
                answer.text()
            );
        }
    });
}

#[test]
fn a_delivery_its_first_attempt_delivered_is_listed_from_that_attempt_and_replayed_as_the_same_event() {
    test(|app| async move {
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        let webhook_id = id_of(&webhook);
        new_customer(&app, &acme.key, "First Time").await;
        app.settle().await;
        let event_id = event_id_of(&endpoint.deliveries()[0]);
        let listed = deliveries_of(&app, &acme.key, &webhook_id, "").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        let delivery = &listed[0];
        assert_eq!(
            (
                &delivery["status"],
                &delivery["attempts"],
                &delivery["replays"],
                &delivery["event_id"]
            ),
            (&json!("delivered"), &json!(1), &json!(0), &json!(event_id))
        );
        for (query, count) in [("status=delivered", 1), ("status=dead", 0), ("status=pending", 0)] {
            assert_eq!(
                deliveries_of(&app, &acme.key, &webhook_id, query).await.len(),
                count,
                "{query}"
            );
        }
        let delivery_id = id_of(delivery);
        assert_eq!(attempts_of_delivery(&app, &acme.key, &delivery_id).await.len(), 1);

        replay_one(&app, &acme.key, &webhook_id, &delivery_id).await;
        app.settle().await;
        let sent = endpoint.deliveries();
        assert_eq!(sent.len(), 2);
        assert_eq!(event_id_of(&sent[1]), event_id, "the same webhook-id");
        assert_eq!(sent[1].call.text(), sent[0].call.text(), "the same bytes");
        let listed = deliveries_of(&app, &acme.key, &webhook_id, "").await;
        assert_eq!(listed.len(), 1, "listed once, from its row now: {listed:?}");
        assert_eq!(
            (
                &listed[0]["id"],
                &listed[0]["status"],
                &listed[0]["replays"],
                &listed[0]["attempts"]
            ),
            (&json!(delivery_id), &json!("delivered"), &json!(1), &json!(1))
        );
        let log = attempts_of_delivery(&app, &acme.key, &delivery_id).await;
        let rounds: Vec<(Value, Value)> = log
            .iter()
            .map(|a| (a["replay"].clone(), a["outcome"].clone()))
            .collect();
        assert_eq!(
            rounds,
            [(json!(0), json!("delivered")), (json!(1), json!("delivered"))],
            "oldest first"
        );

        // Another business cannot replay it, nor name it through its own endpoint.
        let other = app.business("Globex").await;
        let (theirs, _) = create_webhook(
            &app,
            &other.key,
            json!({ "url": "https://hooks.globex.example/in" }),
        )
        .await;
        for (key, hook) in [(&other.key, id_of(&webhook)), (&other.key, id_of(&theirs))] {
            let answer = app
                .api(
                    key,
                    Method::Post,
                    &format!("/api-webhooks/{hook}/replay"),
                    Some(json!({ "delivery_id": delivery_id })),
                )
                .await;
            assert_eq!(answer.status, 404, "{}", answer.text());
        }
        assert_eq!(endpoint.deliveries().len(), 2, "nothing more was sent");
    });
}

#[test]
fn a_receiver_slower_than_the_timeout_is_logged_as_a_timeout_and_retried() {
    test(|app| async move {
        let (acme, endpoint, webhook, _) = business_with_endpoint(
            &app,
            "Acme",
            "hooks.acme.example",
            json!({ "timeout_seconds": 2 }),
        )
        .await;
        endpoint.answer_next([Reply::text(200, "late").after(Duration::from_secs(5))]);
        new_customer(&app, &acme.key, "Event Source").await;
        app.settle().await;
        let event_id = event_id_of(&endpoint.deliveries()[0]);
        let log = attempts_of(&app, &acme.key, &format!("event_id={event_id}")).await;
        assert_eq!(log.len(), 1, "the first attempt in the log: {log:?}");
        let first = &log[0];
        assert_eq!(first["status_code"], Value::Null, "{first}");
        assert!(
            first["error"]
                .as_str()
                .is_some_and(|error| error.to_lowercase().contains("time")),
            "the error mentions the timeout: {first}"
        );
        assert_eq!(first["outcome"], "retrying");
        let duration = first["duration_ms"].as_u64().unwrap_or_default();
        assert!(
            (1_500..5_000).contains(&duration),
            "cut off after about 2 s ({duration} ms)"
        );
        let delivery = delivery_of_event(&app, &acme.key, &id_of(&webhook), &event_id).await;
        assert!(
            delivery["last_error"]
                .as_str()
                .is_some_and(|error| error.to_lowercase().contains("time")),
            "the delivery shows the last error: {delivery}"
        );
        app.settle_within(SCHEDULE).await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 2, "retried once, and delivered");
        assert_eq!(event_id_of(&requests[1]), event_id, "the retry is the same event");
    });
}

#[test]
fn a_refused_connection_is_logged_with_its_error_and_retried() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        // Nothing answers at this host: every connection is refused.
        let (webhook, _) = create_webhook(
            &app,
            &acme.key,
            json!({ "url": "https://nobody.example.com/hooks", "events": ["customer.created"] }),
        )
        .await;
        new_customer(&app, &acme.key, "Event Source").await;
        app.settle_within(Duration::from_secs(3)).await;
        let mut log = attempts_of(&app, &acme.key, &format!("webhook_id={}", id_of(&webhook))).await;
        log.reverse();
        assert_eq!(
            log.iter()
                .map(|a| (
                    a["attempt"].clone(),
                    a["status_code"].clone(),
                    a["outcome"].clone()
                ))
                .collect::<Vec<_>>(),
            [
                (json!(1), Value::Null, json!("retrying")),
                (json!(2), Value::Null, json!("retrying"))
            ],
            "two attempts at a host that refuses: {log:?}"
        );
        for entry in &log {
            assert!(
                entry["error"].as_str().is_some_and(|error| !error.is_empty()),
                "the error is logged: {entry}"
            );
        }
        let at: Vec<i64> = log
            .iter()
            .filter_map(|a| a["attempted_at"].as_str().and_then(rfc3339_ms))
            .collect();
        assert!(
            at[1] - at[0] >= 2_000,
            "the retry waits 2 s ({} ms)",
            at[1] - at[0]
        );
        let calls = app.stack.calls_to("nobody.example.com");
        assert_eq!(gaps(&calls), [2_000], "the calls themselves, 2 s apart");
    });
}

#[test]
fn after_a_rotation_both_secrets_sign_during_the_grace_period_and_with_no_grace_only_the_new_one() {
    test(|app| async move {
        let (acme, endpoint, webhook, first) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        let webhook_id = id_of(&webhook);
        new_customer(&app, &acme.key, "Before").await;
        app.settle().await;
        let before = &endpoint.deliveries()[0];
        assert!(
            seed_signature_verifies(&first, &before.call),
            "before: the seed signature uses the first secret"
        );
        assert_eq!(
            standard_signature_entries(&before.call).len(),
            1,
            "before: one v1 signature"
        );

        let rotated = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{webhook_id}/rotate-secret"),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        let second = rotated["secret"].as_str().unwrap_or_default().to_owned();
        assert!(second.starts_with("whsec_"));
        assert_ne!(second, first, "a new secret");
        let expires = rotated["webhook"]["previous_secret_expires_at"]
            .as_str()
            .and_then(rfc3339_ms)
            .unwrap_or_default();
        assert!(
            (expires - (app.stack.now_ms() + 86_400_000)).abs() < 300_000,
            "the old secret expires in about a day ({})",
            rotated["webhook"]["previous_secret_expires_at"]
        );
        let read = app
            .api(
                &acme.key,
                Method::Get,
                &format!("/api-webhooks/{webhook_id}"),
                None,
            )
            .await
            .expect(200)
            .text();
        assert!(
            !read.contains(&second[6..]) && !read.contains(&first[6..]),
            "no secret is readable afterwards"
        );

        endpoint.knows_secrets(&[&first, &second]);
        new_customer(&app, &acme.key, "During").await;
        app.settle().await;
        let during = &endpoint.deliveries()[1];
        assert!(
            seed_signature_verifies(&first, &during.call),
            "during: a first attempt signs X-Webhook-Signature with the old secret, which a seed receiver still holds"
        );
        assert!(
            !seed_signature_verifies(&second, &during.call),
            "during: not with the new one, which the receiver has not confirmed"
        );
        assert_eq!(
            standard_signature_entries(&during.call).len(),
            2,
            "during: two v1 signatures ({:?})",
            during.call.header("webhook-signature")
        );
        let (new_entry, old_entry) = (
            standard_signature_match(&second, &during.call),
            standard_signature_match(&first, &during.call),
        );
        assert!(
            new_entry.is_some(),
            "during: one v1 entry verifies with the new secret"
        );
        assert!(
            old_entry.is_some(),
            "during: one v1 entry verifies with the old secret"
        );
        assert_ne!(new_entry, old_entry, "two different entries");

        let immediate = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{webhook_id}/rotate-secret"),
                Some(json!({ "grace_seconds": 0 })),
            )
            .await
            .expect(200)
            .json();
        let third = immediate["secret"].as_str().unwrap_or_default().to_owned();
        let previous = &immediate["webhook"]["previous_secret_expires_at"];
        assert!(
            previous.is_null()
                || previous
                    .as_str()
                    .and_then(rfc3339_ms)
                    .is_some_and(|at| at <= app.stack.now_ms() + 1000),
            "no grace: nothing keeps signing ({previous})"
        );
        new_customer(&app, &acme.key, "Afterwards").await;
        app.settle().await;
        let afterwards = &endpoint.deliveries()[2];
        assert!(
            seed_signature_verifies(&third, &afterwards.call),
            "afterwards: the seed signature uses the newest secret"
        );
        assert_eq!(
            standard_signature_entries(&afterwards.call).len(),
            1,
            "afterwards: one v1 signature ({:?})",
            afterwards.call.header("webhook-signature")
        );
        assert!(
            standard_signature_match(&third, &afterwards.call).is_some(),
            "afterwards: it verifies with the newest secret"
        );
        for (description, old) in [("the second", &second), ("the first", &first)] {
            assert!(
                standard_signature_match(old, &afterwards.call).is_none(),
                "afterwards: {description} secret no longer verifies"
            );
        }

        for (description, grace) in [
            ("a negative grace", json!(-1)),
            ("more than 7 days", json!(604_801)),
            ("a fractional grace", json!(1.5)),
        ] {
            let answer = app
                .api(
                    &acme.key,
                    Method::Post,
                    &format!("/api-webhooks/{webhook_id}/rotate-secret"),
                    Some(json!({ "grace_seconds": grace })),
                )
                .await;
            assert!(
                [400, 422].contains(&answer.status),
                "{description}: refused ({} {})",
                answer.status,
                answer.text()
            );
            if answer.status == 422 {
                assert_eq!(
                    answer.json()["error"]["field"],
                    "grace_seconds",
                    "{description}: the field"
                );
            }
        }
        let max = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{webhook_id}/rotate-secret"),
                Some(json!({ "grace_seconds": 604_800 })),
            )
            .await;
        assert_eq!(max.status, 200, "7 days of grace is allowed: {}", max.text());
    });
}

#[test]
fn a_seed_receiver_switching_secrets_during_a_rotation_loses_no_delivery() {
    test(|app| async move {
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        endpoint.requires_seed_signature();
        let webhook_id = id_of(&webhook);
        let rotated = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{webhook_id}/rotate-secret"),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        let second = rotated["secret"].as_str().unwrap_or_default().to_owned();

        new_customer(&app, &acme.key, "Before The Switch").await;
        app.settle().await;
        assert_eq!(
            endpoint.deliveries()[0].answered,
            200,
            "the receiver, still on the old secret, accepts the first delivery after the rotation"
        );

        endpoint.knows_secret(&second);
        new_customer(&app, &acme.key, "During The Switch").await;
        app.settle_within(SCHEDULE).await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 3, "one refusal, one retry");
        let (refused, accepted) = (&requests[1], &requests[2]);
        assert_eq!(
            event_id_of(refused),
            event_id_of(accepted),
            "the same event, retried"
        );
        assert_eq!(
            refused.answered, 401,
            "the first attempt, signed with the old secret, is refused by the switched receiver"
        );
        assert_eq!(
            accepted.answered, 200,
            "the retry, signed with the new secret, is accepted"
        );
        assert!(seed_signature_verifies(&second, &accepted.call));
        let delivery = delivery_of_event(&app, &acme.key, &webhook_id, &event_id_of(accepted)).await;
        assert_eq!(
            (&delivery["status"], &delivery["attempts"]),
            (&json!("delivered"), &json!(2))
        );

        new_customer(&app, &acme.key, "After The Switch").await;
        app.settle().await;
        let confirmed = &endpoint.deliveries()[3];
        assert_eq!(
            confirmed.answered, 200,
            "once confirmed, first attempts sign with the new secret"
        );
        assert!(seed_signature_verifies(&second, &confirmed.call));
        assert_eq!(
            standard_signature_entries(&confirmed.call).len(),
            2,
            "Standard Webhooks still lists both secrets until the grace period ends"
        );
    });
}

#[test]
fn an_attempt_that_ends_after_its_delivery_was_settled_elsewhere_changes_nothing() {
    test(|app| async move {
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        // The first attempt fails at once; the retry, under its lease, waits 3 s for its 500.
        endpoint.answer_always(Reply::status(500).after(Duration::from_secs(3)));
        endpoint.answer_next([Reply::status(500)]);
        new_customer(&app, &acme.key, "Event Source").await;
        // While the retry waits for its answer, the delivery is settled by someone else (another
        // worker that took it over, or a replay's round).
        let settled_elsewhere = async {
            while endpoint.deliveries().len() < 2 {
                Delay::from(Duration::from_millis(10)).await;
            }
            let event_id = event_id_of(&endpoint.deliveries()[0]);
            execute(
                &app,
                "UPDATE webhook_deliveries SET status = 'delivered', lease = 'someone-else' WHERE event_id = ?1",
                &[&event_id],
            );
        };
        join(app.settle_within(Duration::from_secs(10)), settled_elsewhere).await;
        let event_id = event_id_of(&endpoint.deliveries()[0]);
        let rows = select_values(
            &app,
            "SELECT id, status, attempts FROM webhook_deliveries WHERE event_id = ?1",
            &[&event_id],
        );
        assert_eq!(rows.len(), 1, "{rows:?}");
        let delivery_id = rows[0][0].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            (&rows[0][1], &rows[0][2]),
            (&json!("delivered"), &json!(1)),
            "the late 500 did not put the delivered delivery back to pending"
        );
        assert_eq!(
            attempts_of(&app, &acme.key, &format!("delivery_id={delivery_id}"))
                .await
                .len(),
            2,
            "the late attempt is logged"
        );
        app.settle_within(SCHEDULE).await;
        assert_eq!(endpoint.deliveries().len(), 2, "and no retry was made for it");
        let listed = deliveries_of(&app, &acme.key, &id_of(&webhook), "").await;
        assert_eq!(listed[0]["status"], "delivered");
    });
}

#[test]
fn an_endpoint_failing_for_longer_than_disable_after_seconds_is_disabled_gets_no_later_events_and_patch_enabled_true_revives_it()
 {
    test(|app| async move {
        let (acme, endpoint, webhook, _) = business_with_endpoint(
            &app,
            "Acme",
            "hooks.acme.example",
            json!({ "disable_after_seconds": 3 }),
        )
        .await;
        endpoint.answer_always(Reply::status(500));
        let webhook_id = id_of(&webhook);
        new_customer(&app, &acme.key, "Event Source").await;
        app.settle().await;
        let failing = get_webhook(&app, &acme.key, &webhook_id).await;
        assert!(
            failing["failing_since"].as_str().is_some_and(is_rfc3339_utc),
            "failing_since is set after the first failure: {failing}"
        );

        app.settle_within(SCHEDULE).await;
        let disabled = get_webhook(&app, &acme.key, &webhook_id).await;
        assert_eq!(disabled["enabled"], false, "the endpoint is disabled: {disabled}");
        assert!(
            disabled["disabled_reason"]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "the business is told why: {disabled}"
        );
        let seen = endpoint.deliveries().len();
        assert!(
            seen >= 2,
            "it failed more than once before being disabled ({seen})"
        );
        // What was still being retried is given up, and visible as dead, so that it can be
        // replayed once the receiver is fixed (as disabled_reason tells the business to do).
        let event_id = event_id_of(&endpoint.deliveries()[0]);
        let given_up = delivery_of_event(&app, &acme.key, &webhook_id, &event_id).await;
        assert_eq!(given_up["status"], "dead", "{given_up}");
        assert_eq!(given_up["last_status"], 500, "the receiver's last answer is kept");
        assert!(
            given_up["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("disabled")),
            "and why it was given up: {given_up}"
        );
        assert_eq!(
            given_up["attempts"], seen,
            "giving up is not counted as an attempt"
        );

        let later = new_customer(&app, &acme.key, "After Disabling").await;
        app.settle_within(SCHEDULE).await;
        assert!(
            !endpoint
                .deliveries()
                .iter()
                .any(|d| d.body["data"]["customer"]["id"] == later.as_str()),
            "an event after disabling is not delivered to the disabled endpoint"
        );

        let revived = app
            .api(
                &acme.key,
                Method::Patch,
                &format!("/api-webhooks/{webhook_id}"),
                Some(json!({ "enabled": true })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(revived["webhook"]["enabled"], true);
        assert_eq!(
            revived["webhook"]["disabled_reason"],
            Value::Null,
            "the reason is cleared"
        );
        assert_eq!(
            revived["webhook"]["failing_since"],
            Value::Null,
            "the failure clock restarts"
        );
        endpoint.answer_always(Reply::text(200, "ok"));
        let revived_customer = new_customer(&app, &acme.key, "After Reviving").await;
        app.settle().await;
        assert!(
            endpoint
                .deliveries()
                .iter()
                .any(|d| d.body["data"]["customer"]["id"] == revived_customer.as_str()),
            "the event after re-enabling is delivered"
        );
    });
}

#[test]
fn a_disabled_endpoint_enabled_false_at_creation_gets_nothing() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let sentinel = Endpoint::install(&app.stack, "sentinel.acme.example");
        with_endpoint(&app, &acme.key, &endpoint, json!({ "enabled": false })).await;
        with_endpoint(
            &app,
            &acme.key,
            &sentinel,
            json!({ "events": ["customer.created"] }),
        )
        .await;
        let id = new_customer(&app, &acme.key, "Event Source").await;
        app.settle_within(SCHEDULE).await;
        assert!(
            sentinel
                .deliveries()
                .iter()
                .any(|d| d.body["data"]["customer"]["id"] == id.as_str()),
            "the event at the enabled endpoint"
        );
        assert!(
            endpoint.deliveries().is_empty(),
            "nothing reaches the disabled endpoint"
        );
        assert_error(
            &app.api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/replay", acme.id),
                Some(json!({})),
            )
            .await,
            404,
            "not_found",
            "a business id is no webhook id",
        );
    });
}

#[test]
fn a_replay_for_a_time_range_re_sends_the_dead_deliveries_of_events_in_from_to() {
    test(|app| async move {
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        endpoint.answer_always(Reply::status(410));
        let webhook_id = id_of(&webhook);
        let from = rfc3339_at(app.stack.now_ms() - 1000);
        new_customer(&app, &acme.key, "One").await;
        new_customer(&app, &acme.key, "Two").await;
        app.settle().await;
        let ids: Vec<String> = endpoint.deliveries().iter().map(event_id_of).collect();
        assert_eq!(ids.len(), 2);
        let dead = deliveries_of(&app, &acme.key, &webhook_id, "status=dead").await;
        assert_eq!(dead.len(), 2, "two dead deliveries: {dead:?}");
        let to = rfc3339_at(app.stack.now_ms() + 1000);

        let replay_path = format!("/api-webhooks/{webhook_id}/replay");
        for (description, body) in [
            ("neither delivery_id nor a range", json!({})),
            ("a range without its end", json!({ "from": from })),
            (
                "a range that is not RFC 3339",
                json!({ "from": "yesterday", "to": to }),
            ),
        ] {
            let answer = app.api(&acme.key, Method::Post, &replay_path, Some(body)).await;
            assert!(
                [400, 422].contains(&answer.status),
                "{description}: refused ({} {})",
                answer.status,
                answer.text()
            );
        }
        let empty = app
            .api(
                &acme.key,
                Method::Post,
                &replay_path,
                Some(json!({ "from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z" })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(empty["replayed"], 0, "nothing died in 2000");

        endpoint.answer_always(Reply::text(200, "ok"));
        let replayed = app
            .api(
                &acme.key,
                Method::Post,
                &replay_path,
                Some(json!({ "from": from, "to": to })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(replayed["replayed"], 2, "{replayed}");
        let mut replayed_ids: Vec<String> = replayed["delivery_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect();
        replayed_ids.sort();
        let mut dead_ids: Vec<String> = dead.iter().map(id_of).collect();
        dead_ids.sort();
        assert_eq!(replayed_ids, dead_ids);
        app.settle().await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 4);
        let mut again: Vec<String> = requests[2..].iter().map(event_id_of).collect();
        again.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(again, expected, "the same events, with the same webhook-ids");
        let delivered = deliveries_of(&app, &acme.key, &webhook_id, "status=delivered").await;
        assert_eq!(delivered.len(), 2);
        assert!(
            delivered.iter().all(|d| d["replays"] == 1),
            "both delivered after one replay: {delivered:?}"
        );
    });
}

#[test]
fn an_event_whose_body_cannot_be_built_is_dead_lettered_alone_with_why_and_the_rest_of_its_batch_is_delivered()
 {
    test(|app| async move {
        let (acme, endpoint, webhook, _) =
            business_with_endpoint(&app, "Acme", "hooks.acme.example", json!({})).await;
        let webhook_id = id_of(&webhook);
        let tag = unique("poison");
        // The store itself breaks this one customer's event as it is recorded, as a corrupt row
        // would.
        execute(
            &app,
            &format!(
                "CREATE TRIGGER corrupt AFTER INSERT ON webhook_events WHEN NEW.snapshot LIKE '%{tag}%' \
                 BEGIN UPDATE webhook_events SET snapshot = '{{\"customer\": 42}}' WHERE id = NEW.id; END"
            ),
            &[],
        );
        let result = sync(
            &app,
            &acme.key,
            json!([
                { "external_id": format!("CRM-{tag}-1"), "name": tag, "email": format!("{tag}-1@example.com") },
                // Nothing of this one's record names the tag, so the store leaves its event alone.
                { "external_id": "CRM-healthy", "name": "Healthy", "email": "healthy@example.com" }
            ]),
        )
        .await;
        assert_eq!(result["results"]["created"], 2, "{result}");
        let poisoned = result["results"]["details"][0]["customer_id"].clone();
        let healthy = result["results"]["details"][1]["customer_id"].clone();
        app.settle_within(SCHEDULE).await;
        let requests = endpoint.deliveries();
        assert_eq!(requests.len(), 1, "only the healthy event is sent");
        assert_eq!(
            requests[0].body["data"]["customer"]["id"], healthy,
            "the healthy event is delivered"
        );
        let dead = deliveries_of(&app, &acme.key, &webhook_id, "status=dead").await;
        assert_eq!(dead.len(), 1, "one dead delivery: {dead:?}");
        assert!(
            dead[0]["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("could not be built")),
            "{}",
            dead[0]
        );
        let rows = select_values(
            &app,
            "SELECT subject_id, dispatched_us IS NOT NULL FROM webhook_events WHERE id = ?1",
            &[dead[0]["event_id"].as_str().unwrap_or_default()],
        );
        assert_eq!(
            rows,
            [vec![poisoned, json!(1)]],
            "settled, so that the sweep does not bring it back"
        );
        let replay = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{webhook_id}/replay"),
                Some(json!({ "delivery_id": id_of(&dead[0]) })),
            )
            .await;
        let replayed = serde_json::from_slice::<Value>(&replay.body)
            .ok()
            .and_then(|body| body["replayed"].as_u64())
            .unwrap_or(0);
        assert_eq!(replayed, 0, "a replay skips it: {}", replay.text());
        app.settle_within(SCHEDULE).await;
        assert_eq!(endpoint.deliveries().len(), 1, "nothing else was sent");
    });
}

#[test]
fn fifty_events_to_16_endpoints_are_800_deliveries_each_made_once_with_no_invocation_past_its_d1_queries() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let mut endpoints = Vec::new();
        for at in 0..16 {
            let endpoint = Endpoint::install(&app.stack, &format!("hooks{at}.acme.example"));
            with_endpoint(
                &app,
                &acme.key,
                &endpoint,
                json!({ "events": ["customer.created"] }),
            )
            .await;
            endpoints.push(endpoint);
        }
        let customers: Vec<Value> = (0..50)
            .map(|at| json!({ "external_id": format!("fan-{at}"), "name": format!("Fan {at}"), "email": format!("fan-{at}@example.com") }))
            .collect();
        let result = sync(&app, &acme.key, json!(customers)).await;
        assert_eq!(result["results"]["created"], 50);
        app.settle_within(SCHEDULE).await;
        for endpoint in &endpoints {
            let mut ids: Vec<String> = endpoint.deliveries().iter().map(event_id_of).collect();
            assert_eq!(ids.len(), 50, "every event once at {}", endpoint.url());
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 50, "no event twice at {}", endpoint.url());
            assert!(endpoint.deliveries().iter().all(|d| d.signed));
        }
        assert_eq!(
            app.stack.logged(Level::Error, "[limit]"),
            Vec::<String>::new(),
            "no invocation crossed a production limit"
        );
        let usage = app.stack.logged(Level::Log, "[usage]");
        let most = usage
            .iter()
            .filter_map(|line| {
                line.split(' ')
                    .find_map(|field| field.strip_prefix("d1_queries="))
                    .and_then(|count| count.parse::<u32>().ok())
            })
            .max()
            .unwrap_or_default();
        assert!(
            most > 0 && most <= domain::platform::D1_QUERIES,
            "every invocation stayed within its D1 queries (the most: {most})"
        );
        assert!(
            !app.stack
                .logged(Level::Log, "first attempts handed to tasks of their own")
                .is_empty(),
            "the fan-out was larger than one invocation"
        );
    });
}

#[test]
fn a_first_attempt_whose_record_is_lost_is_made_again_once_the_sweep_takes_its_event_for_lost_and_logged_then()
 {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let (webhook, _) = with_endpoint(
            &app,
            &acme.key,
            &endpoint,
            json!({ "events": ["customer.created"] }),
        )
        .await;
        new_customer(&app, &acme.key, "Lost Record").await;
        let placed = select_values(
            &app,
            "SELECT shard FROM business_shards WHERE business_id = ?1",
            &[acme.id.as_str()],
        );
        let shard = app.stack.shard_bindings()[placed[0][0].as_u64().unwrap_or_default() as usize].clone();
        // The dispatch's read is answered; the batch that records the attempt is not.
        app.stack
            .outage_after(&shard, 1, "D1_ERROR: Network connection lost.");
        app.deliver_once(edge::events::outbox::WEBHOOKS).await;
        assert_eq!(endpoint.deliveries().len(), 1, "the POST was made");
        assert_eq!(
            app.stack
                .logged(Level::Error, "first attempts were not recorded")
                .len(),
            1,
            "and its record said lost"
        );
        app.stack.restore(&shard);
        app.settle().await;
        assert_eq!(endpoint.deliveries().len(), 1, "not again on its own");
        // Its event was not marked dispatched: the sweep takes it for lost after five minutes
        // (no dispatch runs that long), not before.
        app.stack.advance(Duration::from_secs(180));
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            endpoint.deliveries().len(),
            1,
            "not while a dispatch could still be running"
        );
        app.stack.advance(Duration::from_secs(121));
        app.sweep().await;
        app.settle().await;
        let sent = endpoint.deliveries();
        assert_eq!(
            sent.len(),
            2,
            "made again once the sweep took its event for lost: at least once"
        );
        assert_eq!(
            event_id_of(&sent[0]),
            event_id_of(&sent[1]),
            "the same event, the same webhook-id"
        );
        let delivery = delivery_of_event(&app, &acme.key, &id_of(&webhook), &event_id_of(&sent[1])).await;
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        let log = attempts_of_delivery(&app, &acme.key, &id_of(&delivery)).await;
        assert_eq!(log.len(), 1, "the attempt that was recorded: {log:?}");
        assert_eq!(log[0]["outcome"], "delivered", "{log:?}");
    });
}
