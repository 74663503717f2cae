//! API usage per key (docs/limits.md, "Usage per key"): counted by the gateway, stored by the
//! key's limiter object, read by `GET /api-usage` and shown on each key as its last use.

use crate::app::{App, Business, CLIENT_IP, test};
use crate::steps::api::assert_error;
use domain::time::Timestamp;
use edge::runtime::{Level, Method};
use serde_json::{Value, json};
use std::time::Duration;

/// The usage the operator reads of the business (not itself a request of a key).
async fn usage(app: &App, business: &Business, query: &str) -> Value {
    app.admin(
        Method::Get,
        &format!("/admin/businesses/{}/usage?{query}", business.id),
        None,
    )
    .await
    .expect(200)
    .json()
}

fn endpoint<'a>(usage: &'a Value, name: &str) -> &'a Value {
    usage["endpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|one| one["endpoint"] == name))
        .unwrap_or_else(|| panic!("no {name} in {usage}"))
}

/// The key's requests by class: requests, 2xx, 4xx, 5xx, rate limited.
fn classes(counts: &Value) -> [u64; 5] {
    [
        "requests",
        "status_2xx",
        "status_4xx",
        "status_5xx",
        "rate_limited",
    ]
    .map(|class| {
        counts[class]
            .as_u64()
            .unwrap_or_else(|| panic!("{class} in {counts}"))
    })
}

#[test]
fn a_keys_requests_are_counted_by_endpoint_and_class_with_its_refusals_and_its_last_use() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        app.admin(
            Method::Patch,
            &format!("/admin/businesses/{}", acme.id),
            Some(json!({ "rate_limit": { "per_minute": 6, "burst": 6 } })),
        )
        .await
        .expect(200);
        let key = acme.key.as_str();
        app.api(key, Method::Get, "/api-webhooks", None).await.expect(200);
        app.api(key, Method::Get, "/api-webhooks", None).await.expect(200);
        let bad = app
            .api(
                key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": "x" })),
            )
            .await;
        assert!((400..500).contains(&bad.status), "{}", bad.text());
        app.api(
            key,
            Method::Get,
            "/api-webhooks/4b1d2c3e-0000-4000-8000-000000000000",
            None,
        )
        .await
        .expect(404);
        let mut refused = 0;
        for _ in 0..8 {
            if app.api(key, Method::Get, "/api-webhooks", None).await.status == 429 {
                refused += 1;
            }
        }
        assert!(refused >= 4, "the limit of 6 refused {refused} of the 8");
        // An unknown key is no business's: its requests are counted nowhere.
        let unknown = format!("cek_{}", "0".repeat(48));
        app.api(&unknown, Method::Get, "/api-webhooks", None)
            .await
            .expect(401);

        let read = usage(&app, &acme, "by=hour").await;
        assert_eq!(read["by"], "hour");
        assert_eq!(read["series"].as_array().map(Vec::len), Some(48));
        let served = 8 - refused;
        assert_eq!(
            classes(endpoint(&read, "GET /api-webhooks")),
            [10, 2 + served, refused, 0, refused],
            "the list's requests and the refusals: {}",
            read["endpoints"]
        );
        assert_eq!(
            classes(endpoint(&read, "POST /api-customers-sync")),
            [1, 0, 1, 0, 0]
        );
        assert_eq!(classes(endpoint(&read, "GET /api-webhooks/*")), [1, 0, 1, 0, 0]);
        assert_eq!(
            classes(&read["totals"]),
            [12, 2 + served, 2 + refused, 0, refused]
        );
        let hours: Vec<u64> = read["series"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .map(|p| p["requests"].as_u64().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(hours.last(), Some(&12), "all in this hour: {hours:?}");
        assert_eq!(hours.iter().sum::<u64>(), 12);
        let keys = read["keys"].as_array().cloned().unwrap_or_default();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(keys[0]["name"], "native");
        assert_eq!(keys[0]["requests"], 12);

        let listed = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}/api-keys", acme.id),
                None,
            )
            .await
            .expect(200)
            .json();
        let listed = &listed["api_keys"][0];
        assert_eq!(listed["last_used_address"], CLIENT_IP);
        assert_eq!(listed["last_used_endpoint"], "GET /api-webhooks");
        assert_eq!(
            listed["last_used_at"],
            Timestamp::from_millis(app.stack.now_ms()).to_rfc3339()
        );
    });
}

#[test]
fn usage_is_read_by_the_hour_or_the_day_of_one_key_or_all_and_only_the_businesss_own() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let beta = app.business("Beta").await;
        let second = app
            .api(
                &acme.key,
                Method::Post,
                "/api-keys",
                Some(json!({ "name": "second" })),
            )
            .await
            .expect(201)
            .json();
        let second_key = second["key"].as_str().unwrap_or_default().to_owned();
        let second_id = second["id"].as_str().unwrap_or_default().to_owned();
        app.api(&second_key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);
        app.stack.advance(Duration::from_secs(3 * 3600));
        app.api(&second_key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);
        app.api(&beta.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);

        let hours = usage(&app, &acme, "by=hour").await;
        let busy: Vec<u64> = hours["series"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .map(|point| point["requests"].as_u64().unwrap_or(0))
                    .filter(|requests| *requests > 0)
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            busy,
            [2, 1],
            "the key issue, then the list three hours apart, then the list"
        );
        let one = usage(&app, &acme, &format!("by=hour&key_id={second_id}")).await;
        assert_eq!(one["key_id"], second_id.as_str());
        assert_eq!(one["totals"]["requests"], 2, "the second key's own: {one}");
        let days = usage(&app, &acme, "").await;
        assert_eq!(days["by"], "day");
        assert_eq!(days["series"].as_array().map(Vec::len), Some(30));
        assert_eq!(days["totals"]["requests"], 3);
        assert_eq!(days["keys"].as_array().map(Vec::len), Some(2));

        // The business reads its own with its key; another business's key id is none of its.
        let own = app
            .api(&acme.key, Method::Get, "/api-usage?by=hour", None)
            .await
            .expect(200)
            .json();
        assert_eq!(own["totals"]["requests"], 3);
        let beta_keys = app
            .api(&beta.key, Method::Get, "/api-keys", None)
            .await
            .expect(200)
            .json();
        let beta_key = beta_keys["api_keys"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        app.api(
            &acme.key,
            Method::Get,
            &format!("/api-usage?key_id={beta_key}"),
            None,
        )
        .await
        .expect(404);
        app.api(&acme.key, Method::Get, "/api-usage?key_id=..%2F..", None)
            .await
            .expect(404);
        let wrong = app.api(&acme.key, Method::Get, "/api-usage?by=week", None).await;
        assert_error(
            &wrong,
            422,
            "validation_failed",
            "by that is neither hour nor day",
        );
        app.request(Method::Get, "/api-usage", &[], Vec::new())
            .await
            .expect(401);
        let beta_usage = usage(&app, &beta, "by=hour").await;
        assert_eq!(
            beta_usage["totals"]["requests"], 2,
            "its list and its key list: {beta_usage}"
        );
    });
}

#[test]
fn a_report_waits_its_seconds_a_key_revoked_a_minute_ago_is_not_counted_and_old_usage_is_swept() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        app.stack.set_var("USAGE_REPORT_SECONDS", "20");
        let before = app.stack.now_ms();
        app.api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);
        assert_eq!(
            app.stack.now_ms() - before,
            20_000,
            "the report went 20 s after the request"
        );
        app.stack.set_var("USAGE_REPORT_SECONDS", "0");
        assert_eq!(usage(&app, &acme, "by=hour").await["totals"]["requests"], 1);
        let keys = app
            .api(&acme.key, Method::Get, "/api-keys", None)
            .await
            .expect(200)
            .json();
        let id = keys["api_keys"][0]["id"].as_str().unwrap_or_default().to_owned();
        app.admin(Method::Delete, &format!("/admin/api-keys/{id}"), None)
            .await
            .expect(200);
        app.stack.advance(Duration::from_secs(61));
        app.api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(401);
        assert_eq!(usage(&app, &acme, "by=hour").await["totals"]["requests"], 2);

        app.stack.advance(Duration::from_secs(36 * 24 * 3600));
        let swept = app
            .admin(Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200)
            .json();
        assert_eq!(swept["api_key_usage_deleted"], 2, "{swept}");
        assert_eq!(usage(&app, &acme, "").await["totals"]["requests"], 0);
    });
}

#[test]
fn a_report_the_database_does_not_take_is_answered_503_by_the_limiter_not_500() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        app.stack.set_var("USAGE_REPORT_SECONDS", "0");
        app.api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);
        for shard in app.stack.shard_bindings() {
            app.stack.outage(&shard, "D1_ERROR: Network connection lost.");
        }
        app.api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(503);
        let refused = app.stack.logged(Level::Error, "a key's usage was not stored");
        assert!(!refused.is_empty(), "the report was refused");
        assert!(
            refused
                .iter()
                .all(|line| line.contains("answered 503") && !line.contains("answered 500")),
            "a database that does not answer is a 503, ours to retry, not our bug: {refused:#?}"
        );
    });
}
