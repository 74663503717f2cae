//! The connector within Kustomer's limits (tests/e2e/crm/kustomer-limits.test.mjs): its own budget
//! keeps every worker under the configured rate, a 429 pauses the whole connector for as long as
//! Kustomer asks, 5xx are retried with backoff and then succeed, a call that hangs is given up,
//! failed work is found and replayed, and nothing of the API key or customers' data reaches the
//! logs. Time is the stack's: the waits take none.

use crate::app::test;
use crate::partners::kustomer::{
    Kustomer, Limit, Received, Scope, any_call, call_to, error, too_many_requests,
};
use crate::steps::api::assert_error;
use crate::steps::channels::{receive_whatsapp, whatsapp_account};
use crate::steps::crms::kustomer::{connected_business, settled_log};
use crate::steps::crms::{connector_of, sync_log};
use crate::steps::customers::{customers, sync};
use crate::steps::text;
use crate::steps::unique_phone;
use edge::runtime::Method;
use serde_json::{Value, json};

/// The calls the sync made, as Kustomer received them: saving the key read its expiry
/// (`GET /v1/auth/tokens/current`, outside the budget) before any work.
fn sync_calls(kustomer: &Kustomer) -> Vec<Received> {
    kustomer
        .received()
        .into_iter()
        .filter(|received| {
            received.call.path().starts_with("/v1/") && received.call.path() != "/v1/auth/tokens/current"
        })
        .collect()
}

#[test]
fn a_budget_of_3_a_second_holds_across_workers_no_second_window_ever_sees_more_grants() {
    test(|app| async move {
        let setup = connected_business(
            &app,
            json!({ "rate_limit": { "per_second": 3, "per_minute": null, "per_day": null } }),
        )
        .await;
        sync(&app, &setup.business.key, customers(15, "burst")).await;
        settled_log(&app, setup.id(), 15).await;
        // The budget counts grants, when each call was allowed (in D1, shared by every worker).
        let mut grants: Vec<i64> = Vec::new();
        for shard in app.stack.shard_bindings() {
            app.stack.sql(&shard, |connection| {
                let mut statement = connection
                    .prepare("SELECT at_us FROM crm_requests WHERE connector_id = ?1 ORDER BY at_us")
                    .unwrap_or_else(|error| panic!("{error}"));
                let rows = statement
                    .query_map([setup.id()], |row| row.get::<_, i64>(0))
                    .unwrap_or_else(|error| panic!("{error}"));
                grants.extend(rows.map(|row| row.unwrap_or_else(|error| panic!("{error}"))));
            });
        }
        grants.sort_unstable();
        let calls: Vec<i64> = sync_calls(&setup.kustomer)
            .iter()
            .map(|received| received.call.at_ms)
            .collect();
        assert_eq!(grants.len(), calls.len(), "one grant per call made");
        assert!(grants.len() >= 15, "{} grants", grants.len());
        for (at, window) in grants.windows(4).enumerate() {
            assert!(
                window[3] - window[0] >= 1_000_000,
                "grants {at}..{} within {} ms",
                at + 3,
                (window[3] - window[0]) / 1000
            );
        }
        let seconds = (calls[calls.len() - 1] - calls[0]) as f64 / 1000.0;
        assert!(
            seconds >= calls.len() as f64 / 3.0 - 1.5,
            "{} calls took {seconds} s at 3 a second",
            calls.len()
        );
        assert_eq!(setup.kustomer.customers().len(), 15);
    });
}

#[test]
fn a_429_with_retry_after_pauses_the_connector_and_the_work_then_succeeds() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup.kustomer.fail(1, any_call, too_many_requests(3));
        sync(&app, &setup.business.key, customers(1, "throttled")).await;
        app.settle().await;
        let status = connector_of(&app, setup.id()).await["status"].clone();
        assert!(status["paused_until"].is_string(), "the pause is shown: {status}");
        assert!(text(&status["last_error"]).starts_with("429"), "{status}");

        let log = settled_log(&app, setup.id(), 1).await;
        assert_eq!(log[0]["status"], "succeeded", "{log:#?}");
        assert_eq!(log[0]["attempts"], 2, "one throttled try, one success");
        let calls: Vec<i64> = sync_calls(&setup.kustomer)
            .iter()
            .map(|received| received.call.at_ms)
            .collect();
        assert!(
            calls[1] - calls[0] >= 2_900,
            "waited {} ms of the 3 s asked",
            calls[1] - calls[0]
        );
    });
}

#[test]
fn kustomers_own_budget_answered_429_with_x_ratelimit_reset_pauses_the_connector_until_the_window_ends() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        // Three calls a minute: the first customer's lookup and create fit, and the second's
        // lookup; its create does not. (A retry looks the customer up by email and by external
        // id before creating: three calls, which a fresh window holds.)
        setup.kustomer.rate_limit(Some(Limit::per_minute(3)));
        sync(&app, &setup.business.key, customers(2, "org-budget")).await;
        let log = settled_log(&app, setup.id(), 2).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let throttles = setup.kustomer.throttles();
        assert!(!throttles.is_empty(), "the org's budget was spent");
        let received = setup.kustomer.received();
        for throttle in &throttles {
            let next = received
                .iter()
                .find(|call| call.call.at_ms > throttle.at_ms)
                .map(|call| call.call.at_ms);
            assert!(
                next.is_some_and(|next| next - throttle.at_ms >= 1000 * throttle.retry_after as i64 - 1000),
                "nothing more was asked before the window ended ({} s): {:?}",
                throttle.retry_after,
                next.map(|next| next - throttle.at_ms)
            );
        }
        assert_eq!(setup.kustomer.customers().len(), 2);
    });
}

#[test]
fn a_customer_writing_faster_than_kustomer_takes_their_messages_gets_every_one_in_order_after_the_window() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup.kustomer.customer_create_limit(Limit::per_minute(3));
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        let texts: Vec<String> = (1..=5).map(|n| format!("message {n}")).collect();
        for text in &texts {
            receive_whatsapp(&app, &whatsapp, &from, text).await;
        }
        let log = settled_log(&app, setup.id(), 7).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let throttles = setup.kustomer.throttles();
        assert!(
            throttles.iter().any(|throttle| throttle.scope == Scope::Customer),
            "Kustomer's per-customer limit was reached: {throttles:?}"
        );
        let conversation = setup.kustomer.conversations()[0]["id"].clone();
        let previews: Vec<String> = setup
            .kustomer
            .messages(text(&conversation))
            .iter()
            .map(|message| text(&message["attributes"]["preview"]).to_owned())
            .collect();
        assert_eq!(previews, texts, "every message once, in order");
    });
}

#[test]
fn answers_5xx_are_retried_with_backoff_until_kustomer_succeeds() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup
            .kustomer
            .fail(2, any_call, error(503, "Injected failure 503", None));
        sync(&app, &setup.business.key, customers(1, "flaky")).await;
        let log = settled_log(&app, setup.id(), 1).await;
        assert_eq!(log[0]["status"], "succeeded", "{log:#?}");
        assert_eq!(log[0]["attempts"], 3);
        assert_eq!(setup.kustomer.customers().len(), 1);
        let calls: Vec<i64> = sync_calls(&setup.kustomer)
            .iter()
            .map(|received| received.call.at_ms)
            .collect();
        assert!(
            calls[1] - calls[0] >= 1000 && calls[2] - calls[1] >= 2000,
            "each wait at least half of 2 s, then 4 s: {calls:?}"
        );
    });
}

#[test]
fn a_call_that_hangs_is_given_up_after_10_s_and_tried_again() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup.kustomer.hang(1);
        sync(&app, &setup.business.key, customers(1, "hung")).await;
        let log = settled_log(&app, setup.id(), 1).await;
        assert_eq!(log[0]["status"], "succeeded", "{log:#?}");
        assert_eq!(
            log[0]["attempts"], 2,
            "the timed-out try, then the one that worked"
        );
        assert_eq!(setup.kustomer.customers().len(), 1);
        let received = sync_calls(&setup.kustomer);
        assert_eq!(received[0].status, None, "the first call was never answered");
        assert!(
            received[1].call.at_ms - received[0].call.at_ms >= 10_000,
            "given up after 10 s: {} ms",
            received[1].call.at_ms - received[0].call.at_ms
        );
    });
}

#[test]
fn failed_work_is_found_by_status_and_by_record_and_a_replay_of_its_time_range_does_it_again() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let id = setup.id();
        setup.kustomer.fail(
            2,
            call_to("POST", "/v1/customers"),
            error(400, "Injected failure 400", None),
        );
        let synced = sync(&app, &setup.business.key, customers(2, "replay")).await;
        let log = settled_log(&app, id, 2).await;
        let statuses: Vec<&str> = log.iter().map(|entry| text(&entry["status"])).collect();
        assert_eq!(statuses, ["failed", "failed"]);
        let mine = text(&synced["results"]["details"][0]["customer_id"]);
        let by_record = sync_log(&app, id, &format!("record={mine}")).await;
        assert_eq!(by_record.len(), 1, "{by_record:#?}");
        assert_eq!(by_record[0]["record_id"], mine);
        assert_eq!(sync_log(&app, id, "status=succeeded").await.len(), 0);
        let replay_path = format!("/admin/connectors/{id}/replay");
        let replay = |body: Value| app.admin(Method::Post, &replay_path, Some(body));
        assert_error(
            &app.admin(
                Method::Get,
                &format!("/admin/connectors/{id}/sync-log?status=lost"),
                None,
            )
            .await,
            422,
            "validation_failed",
            "an unknown status",
        );
        assert_error(
            &replay(json!({ "statuses": ["succeeded"] })).await,
            422,
            "validation_failed",
            "only dead and failed",
        );
        assert_error(
            &replay(json!({ "from": "yesterday" })).await,
            422,
            "validation_failed",
            "not a time",
        );

        let nothing = replay(
            json!({ "statuses": ["failed"], "to": "2020-01-01T00:00:00Z", "from": "2019-01-01T00:00:00Z" }),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(nothing["contacts"], 0, "outside the range: nothing replayed");
        let replayed = replay(json!({ "statuses": ["failed"], "from": log[1]["created_at"] }))
            .await
            .expect(200)
            .json();
        assert_eq!(replayed["contacts"], 2);
        settled_log(&app, id, 2).await;
        assert_eq!(
            sync_log(&app, id, "status=succeeded").await.len(),
            2,
            "both done on replay"
        );
        assert_eq!(setup.kustomer.customers().len(), 2);
    });
}

#[test]
fn outside_debug_mode_no_api_key_email_phone_or_name_of_a_customer_is_logged() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let secretish = json!({ "name": "Zelda Private", "email": "zelda@private.example", "phone": "+353 87 765 4321", "external_id": "zelda-1" });
        sync(&app, &setup.business.key, json!([secretish])).await;
        settled_log(&app, setup.id(), 1).await;
        app.admin(
            Method::Post,
            &format!("/admin/connectors/{}/test", setup.id()),
            None,
        )
        .await
        .expect(200);
        let log: Vec<String> = app.stack.logs().into_iter().map(|(_, line)| line).collect();
        let log = log.join("\n");
        assert!(
            log.contains(&format!("kustomer {}", setup.id())),
            "the calls are logged: {log}"
        );
        for value in [
            setup.api_key.as_str(),
            "zelda@private.example",
            "zelda%40private.example",
            "Zelda Private",
            "+353877654321",
        ] {
            assert!(!log.contains(value), "{value} is not in the log: {log}");
        }
    });
}

/// The guide's "Debug Mode" (`KUSTOMER_DEBUG=true`, a variable of the functions that call
/// Kustomer, set as the guide writes it): each call's bodies are logged, redacted, so the
/// customer's email and name still are not.
#[test]
fn the_guides_debug_mode_logs_each_calls_bodies_redacted() {
    test(|app| async move {
        let (name, value) = "KUSTOMER_DEBUG=true".split_once('=').unwrap_or_default();
        app.stack.set_var(name, value);
        let setup = connected_business(&app, json!({})).await;
        let secretish =
            json!({ "name": "Zelda Private", "email": "zelda@private.example", "external_id": "zelda-2" });
        sync(&app, &setup.business.key, json!([secretish])).await;
        settled_log(&app, setup.id(), 1).await;
        let log: Vec<String> = app.stack.logs().into_iter().map(|(_, line)| line).collect();
        let debug: Vec<&String> = log
            .iter()
            .filter(|line| line.starts_with(&format!("[debug] kustomer {}", setup.id())))
            .collect();
        assert!(
            debug
                .iter()
                .any(|line| line.contains("Post /v1/customers ") && line.contains("sent {")),
            "the customer's creation is logged with its body: {debug:#?}"
        );
        for value in [setup.api_key.as_str(), "zelda@private.example", "Zelda Private"] {
            assert!(
                !log.iter().any(|line| line.contains(value)),
                "{value} is not in the log: {log:#?}"
            );
        }
    });
}
