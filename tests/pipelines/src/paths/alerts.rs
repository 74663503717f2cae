//! Alerts (docs/alerts.md; the end-to-end suite's `alerts.test.mjs`): Kustomer down for the
//! rule's window raises exactly one `alert.raised` webhook and one email, and one
//! `alert.resolved` of each when it recovers; a business's own rules (an error rate, turned off)
//! raise and resolve as it set them; and bad settings are refused naming their field. The
//! minutes pass on the stack's clock, the sweep run each minute as the cron runs it.

use crate::app::{App, test};
use crate::partners::mailgun::{self, Mailgun};
use crate::partners::webhook_endpoint::{Delivery, Endpoint};
use crate::steps::api::assert_error;
use crate::steps::channels::{mailgun_account, mailgun_account_of, receive_whatsapp, whatsapp_account};
use crate::steps::crms::kustomer::{SETTLE_HORIZON, connected_business};
use crate::steps::unique_phone;
use crate::steps::webhooks::with_endpoint;
use edge::ops::alerting;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const OPS: &str = "ops@acme.example";

/// The business's alerts, as `GET /api-alerts{query}` lists them.
async fn alerts(app: &App, key: &str, query: &str) -> Value {
    app.api(key, Method::Get, &format!("/api-alerts{query}"), None)
        .await
        .expect(200)
        .json()
}

/// The emails Mailgun was asked to send to the business's operations address, taken or not: each
/// one's form.
fn alert_mails(mailgun: &Mailgun) -> Vec<Vec<(String, String)>> {
    mailgun
        .sends()
        .iter()
        .map(|call| Mailgun::read(call).fields)
        .filter(|fields| mailgun::field(fields, "to") == OPS)
        .collect()
}

/// The business's error-rate rule at 50 % and its alerts emailed to [`OPS`], then 20 of its
/// requests refused: an alert at the next sweep.
async fn errors_over_half(app: &App, key: &str) {
    app.api(
        key,
        Method::Patch,
        "/api-alert-settings",
        Some(json!({ "rules": { "error_rate": { "threshold": 50 } }, "email_to": [OPS] })),
    )
    .await
    .expect(200);
    for _ in 0..20 {
        app.api(key, Method::Post, "/api-customers-batch-lookup", Some(json!({})))
            .await;
    }
}

/// The business turns its error-rate rule off.
async fn error_rate_off(app: &App, key: &str) {
    app.api(
        key,
        Method::Patch,
        "/api-alert-settings",
        Some(json!({ "rules": { "error_rate": { "enabled": false } } })),
    )
    .await
    .expect(200);
}

fn signed_of(endpoint: &Endpoint, event: &str) -> Vec<Delivery> {
    let deliveries = endpoint.of_event(event);
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.signed && delivery.standard_verified),
        "every {event} is signed"
    );
    deliveries
}

#[test]
fn kustomer_failing_for_the_window_raises_one_alert_and_one_email_then_one_resolution_of_each() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (kustomer, key) = (&setup.kustomer, &setup.business.key);
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            key,
            &endpoint,
            json!({ "events": ["alert.raised", "alert.resolved"] }),
        )
        .await;
        let mailgun = mailgun_account(&app, &setup.business.id, "mg.acme.example", "key-alerts").await;
        let settings = app
            .api(
                key,
                Method::Patch,
                "/api-alert-settings",
                Some(json!({ "email_to": [OPS] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(settings["email_from"], "support@mg.acme.example", "{settings}");
        let failing = settings["rules"]
            .as_array()
            .and_then(|rules| rules.iter().find(|rule| rule["kind"] == "connector_failing"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (failing["threshold"].clone(), failing["unit"].clone()),
            (json!(10), json!("minutes"))
        );

        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        kustomer.down();
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "is anyone there?").await;
        app.settle().await;
        // Minute by minute, as the cron sweeps: nothing before the rule's ten minutes, then one
        // alert however many sweeps follow.
        for minute in 1..=14 {
            app.stack.advance(MINUTE);
            app.settle().await;
            app.sweep().await;
            app.settle().await;
            let raised = endpoint.of_event("alert.raised").len();
            assert_eq!(
                raised,
                usize::from(minute >= 10),
                "minute {minute}: {raised} raised"
            );
        }
        let raised = signed_of(&endpoint, "alert.raised");
        let alert = &raised[0].body["data"]["alert"];
        assert_eq!(alert["kind"], "connector_failing", "{alert}");
        assert_eq!(alert["subject"], "connector");
        assert_eq!(alert["subject_id"], setup.id());
        assert_eq!(alert["state"], "open");
        assert_eq!(
            (alert["value"].clone(), alert["threshold"].clone()),
            (json!(10), json!(10))
        );
        let mails = alert_mails(&mailgun);
        assert_eq!(mails.len(), 1, "one email");
        assert!(mailgun::field(&mails[0], "subject").contains("Alert: CRM connector failing"));
        assert_eq!(mailgun::field(&mails[0], "from"), "support@mg.acme.example");
        assert!(mailgun::field(&mails[0], "text").contains("have failed for 10 minutes"));
        let listed = alerts(&app, key, "?state=open").await;
        assert_eq!(listed["open"], 1, "{listed}");
        assert_eq!(listed["alerts"][0]["id"], alert["id"]);
        assert_eq!(listed["alerts"][0]["raised_email"], "sent");

        kustomer.up();
        app.settle_within(SETTLE_HORIZON).await;
        for _ in 0..3 {
            app.sweep().await;
            app.settle().await;
            app.stack.advance(MINUTE);
        }
        let resolved = signed_of(&endpoint, "alert.resolved");
        assert_eq!(resolved.len(), 1, "one resolution");
        assert_eq!(endpoint.of_event("alert.raised").len(), 1, "and no alert again");
        let over = &resolved[0].body["data"]["alert"];
        assert_eq!(
            (over["id"].clone(), over["state"].clone()),
            (alert["id"].clone(), json!("resolved"))
        );
        assert!(over["resolved_at"].is_string(), "{over}");
        let mails = alert_mails(&mailgun);
        assert_eq!(mails.len(), 2, "one email more");
        assert!(mailgun::field(&mails[1], "subject").contains("Resolved: CRM connector failing"));
        let listed = alerts(&app, key, "").await;
        assert_eq!(listed["open"], 0, "{listed}");
        let history = &listed["alerts"][0];
        assert_eq!(
            (
                history["state"].clone(),
                history["raised_email"].clone(),
                history["resolved_email"].clone()
            ),
            (json!("resolved"), json!("sent"), json!("sent"))
        );
        assert_eq!(
            app.admin(
                Method::Get,
                &format!("/admin/businesses/{}/alerts", setup.business.id),
                None
            )
            .await
            .expect(200)
            .json(),
            listed,
            "the operator sees the same"
        );
    })
}

/// The connector's key as its status shows it (`status.key_expires_at`).
async fn key_expires_at(app: &App, connector: &str) -> Value {
    app.admin(Method::Get, &format!("/admin/connectors/{connector}"), None)
        .await
        .expect(200)
        .json()["status"]["key_expires_at"]
        .clone()
}

/// The seed's "Monitor API key expiration": a Kustomer key saved with an expiry 20 days away is
/// shown on the connector and raises `connector_key_expiring` 14 days before it (the rule's
/// default), once; saving a replacement that never expires resolves it.
#[test]
fn a_kustomer_key_expiring_is_alerted_fourteen_days_ahead_and_resolved_when_replaced() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (kustomer, key, connector) = (&setup.kustomer, &setup.business.key, setup.id().to_owned());
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            key,
            &endpoint,
            json!({ "events": ["alert.raised", "alert.resolved"] }),
        )
        .await;
        assert_eq!(
            key_expires_at(&app, &connector).await,
            Value::Null,
            "the first key never expires"
        );
        let org = kustomer.org();
        let now = domain::time::Timestamp::from_millis(app.stack.now_ms());
        let expiring = format!("{}-2", setup.api_key);
        kustomer.add_key(&expiring, &org, &crate::partners::kustomer::PERMISSIONS);
        kustomer.key_expires(&expiring, now.plus_seconds(20 * 86_400));
        let save = |api_key: String| {
            let app = &app;
            let connector = connector.clone();
            async move {
                app.admin(
                    Method::Patch,
                    &format!("/admin/connectors/{connector}"),
                    Some(json!({ "secrets": { "api_key": api_key } })),
                )
                .await
                .expect(200)
                .json()
            }
        };
        let saved = save(expiring.clone()).await;
        assert_eq!(
            saved["status"]["key_expires_at"],
            now.plus_seconds(20 * 86_400).to_rfc3339(),
            "read from Kustomer as the key is saved: {saved}"
        );
        for day in 1..=7 {
            app.stack.advance(Duration::from_secs(86_400));
            app.sweep().await;
            app.settle().await;
            assert_eq!(
                endpoint.of_event("alert.raised").len(),
                usize::from(day >= 6),
                "day {day}: {} days left",
                20 - day
            );
        }
        let raised = signed_of(&endpoint, "alert.raised");
        let alert = &raised[0].body["data"]["alert"];
        assert_eq!(
            (
                alert["kind"].clone(),
                alert["subject_id"].clone(),
                alert["value"].clone(),
                alert["threshold"].clone()
            ),
            (
                json!("connector_key_expiring"),
                json!(connector),
                json!(14),
                json!(14)
            ),
            "{alert}"
        );
        assert!(
            alert["message"]
                .as_str()
                .is_some_and(|said| said.contains("expires in 14 days")),
            "{alert}"
        );

        let lasting = format!("{}-3", setup.api_key);
        kustomer.add_key(&lasting, &org, &crate::partners::kustomer::PERMISSIONS);
        let saved = save(lasting).await;
        assert_eq!(saved["status"]["key_expires_at"], Value::Null, "{saved}");
        app.sweep().await;
        app.settle().await;
        let resolved = signed_of(&endpoint, "alert.resolved");
        assert_eq!(resolved.len(), 1, "resolved by the replacement");
        assert_eq!(resolved[0].body["data"]["alert"]["id"], alert["id"]);
        app.sweep().await;
        app.settle().await;
        assert_eq!(endpoint.of_event("alert.raised").len(), 1, "and not raised again");
    })
}

#[test]
fn a_business_alerted_on_its_error_rate_as_it_set_it_and_not_once_it_turned_the_rule_off() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key = &business.key;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(&app, key, &endpoint, json!({})).await;
        app.api(
            key,
            Method::Patch,
            "/api-alert-settings",
            Some(json!({ "rules": { "error_rate": { "threshold": 50 } } })),
        )
        .await
        .expect(200);
        // 30 requests, 12 of them refused as malformed: 40 %, under the business's 50 %.
        let request = |good: bool| {
            let body = if good {
                json!({ "emails": ["nobody@example.com"] })
            } else {
                json!({})
            };
            app.api(key, Method::Post, "/api-customers-batch-lookup", Some(body))
        };
        for n in 0..30 {
            request(n >= 12).await;
        }
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            alerts(&app, key, "").await["alerts"],
            json!([]),
            "40 % is under 50 %"
        );
        for _ in 0..30 {
            request(false).await;
        }
        app.sweep().await;
        app.settle().await;
        let listed = alerts(&app, key, "?state=open").await;
        let alert = &listed["alerts"][0];
        // 42 errors of 63 requests: the endpoint's creation, the change of settings and the first
        // listing were the key's requests too.
        assert_eq!(
            (alert["kind"].clone(), alert["value"].clone()),
            (json!("error_rate"), json!(66)),
            "{listed}"
        );
        assert_eq!(alert["raised_email"], "none", "nobody is named to email");
        assert_eq!(
            endpoint.of_event("alert.raised").len(),
            1,
            "an endpoint of every event hears of it"
        );

        error_rate_off(&app, key).await;
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            alerts(&app, key, "?state=open").await["open"],
            0,
            "a rule turned off resolves its alert"
        );
        assert_eq!(endpoint.of_event("alert.resolved").len(), 1);
        app.sweep().await;
        app.settle().await;
        assert_eq!(endpoint.of_event("alert.raised").len(), 1, "and raises no other");
    })
}

#[test]
fn bad_settings_and_queries_are_refused_naming_their_field_and_nothing_changes() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key = &business.key;
        let before = app
            .api(key, Method::Get, "/api-alert-settings", None)
            .await
            .expect(200)
            .json();
        assert_eq!(before["email_from"], Value::Null, "no Mailgun account");
        assert_eq!(before["rules"].as_array().map(Vec::len), Some(10));
        for (body, field) in [
            (
                json!({ "rules": { "error_rate": { "threshold": 101 } } }),
                "rules.error_rate.threshold",
            ),
            (json!({ "rules": { "nope": { "enabled": false } } }), "rules.nope"),
            (json!({ "email_to": ["not an email"] }), "email_to[0]"),
            (json!({ "colour": "red" }), "colour"),
        ] {
            let answer = app
                .api(key, Method::Patch, "/api-alert-settings", Some(body.clone()))
                .await;
            let error = assert_error(&answer, 422, "validation_failed", &body.to_string());
            assert_eq!(error["field"], field, "{body}");
        }
        let answer = app
            .api(key, Method::Patch, "/api-alert-settings", Some(json!("rules")))
            .await;
        assert_eq!(answer.status, 400, "{}", answer.text());
        let after = app
            .api(key, Method::Get, "/api-alert-settings", None)
            .await
            .expect(200)
            .json();
        assert_eq!(after, before, "nothing changed");
        for query in ["?state=closed", "?limit=0", "?limit=201"] {
            let answer = app
                .api(key, Method::Get, &format!("/api-alerts{query}"), None)
                .await;
            assert_error(&answer, 422, "validation_failed", query);
        }
        let answer = app.api("ck_wrong", Method::Get, "/api-alerts", None).await;
        assert_eq!(answer.status, 401);
    })
}

#[test]
fn an_email_mailgun_cannot_take_now_is_tried_again_a_minute_later_and_one_it_refuses_is_failed_with_why() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key = &business.key;
        let mailgun = mailgun_account(&app, &business.id, "mg.acme.example", "key-retries").await;
        errors_over_half(&app, key).await;
        mailgun.answer_next([mailgun::mailgun_error(500, "Internal Server Error")]);
        app.sweep().await;
        let alert = alerts(&app, key, "").await["alerts"][0].clone();
        assert_eq!(alert["raised_email"], "pending", "{alert}");
        assert!(
            alert["email_error"]
                .as_str()
                .is_some_and(|error| error.contains("HTTP 500")),
            "why it waits: {alert}"
        );
        app.sweep().await;
        assert_eq!(
            alert_mails(&mailgun).len(),
            1,
            "tried once, and not again before its minute"
        );
        app.stack.advance(MINUTE);
        app.sweep().await;
        assert_eq!(
            alert_mails(&mailgun).len(),
            2,
            "tried again a minute later, and sent"
        );
        assert_eq!(alerts(&app, key, "").await["alerts"][0]["raised_email"], "sent");

        error_rate_off(&app, key).await;
        mailgun.answer_next([mailgun::mailgun_error(
            400,
            "'to' parameter is not a valid address",
        )]);
        app.sweep().await;
        app.stack.advance(MINUTE);
        app.sweep().await;
        let alert = alerts(&app, key, "").await["alerts"][0].clone();
        assert_eq!(
            (alert["state"].clone(), alert["resolved_email"].clone()),
            (json!("resolved"), json!("failed")),
            "{alert}"
        );
        assert!(
            alert["email_error"]
                .as_str()
                .is_some_and(|error| error.contains("not a valid address")),
            "{alert}"
        );
        assert_eq!(alert_mails(&mailgun).len(), 3, "refused once, not tried again");
    })
}

#[test]
fn without_a_mailgun_account_nothing_is_emailed_and_the_alert_says_why() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key = &business.key;
        errors_over_half(&app, key).await;
        app.sweep().await;
        let alert = alerts(&app, key, "").await["alerts"][0].clone();
        assert_eq!(alert["raised_email"], "none", "{alert}");
        assert!(
            alert["email_error"]
                .as_str()
                .is_some_and(|error| error.contains("no Mailgun account")),
            "{alert}"
        );
    })
}

#[test]
fn three_sweeps_at_once_send_each_alert_email_once() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key = &business.key;
        let mailgun = mailgun_account(&app, &business.id, "mg.acme.example", "key-once").await;
        // Each send takes Mailgun three seconds: the three sweeps are all under way at once.
        mailgun.latency(Duration::from_secs(3));
        errors_over_half(&app, key).await;
        let at_once = || futures_util::future::join3(app.sweep(), app.sweep(), app.sweep());
        at_once().await;
        assert_eq!(alert_mails(&mailgun).len(), 1, "the raising's email, once");
        error_rate_off(&app, key).await;
        app.stack.advance(MINUTE);
        at_once().await;
        app.stack.advance(MINUTE);
        at_once().await;
        let mails = alert_mails(&mailgun);
        assert_eq!(mails.len(), 2, "and the resolution's, once");
        assert!(mailgun::field(&mails[1], "subject").contains("Resolved:"));
    });
}

#[test]
fn one_businesss_storm_of_alert_emails_does_not_keep_anothers_waiting() {
    test(|app| async move {
        // Two businesses on one shard, whose emails one queue holds.
        let mut placed: Vec<(usize, crate::app::Business)> = Vec::new();
        let (stormy, quiet) = loop {
            let business = app.business(&format!("Business {}", placed.len())).await;
            let shard = super::move_business::shard_of(&app, &business);
            if let Some(at) = placed.iter().position(|(other, _)| *other == shard) {
                break (placed.swap_remove(at).1, business);
            }
            placed.push((shard, business));
        };
        let shard = super::move_business::SHARDS[super::move_business::shard_of(&app, &quiet)];
        let mailgun = mailgun_account(&app, &stormy.id, "mg.stormy.example", "key-stormy").await;
        mailgun.knows("mg.quiet.example", "key-quiet");
        mailgun_account_of(&app, &quiet.id, "mg.quiet.example", "key-quiet").await;
        for business in [&stormy, &quiet] {
            app.api(
                &business.key,
                Method::Patch,
                "/api-alert-settings",
                Some(json!({ "email_to": [OPS] })),
            )
            .await
            .expect(200);
        }
        // Thirty resolutions of the stormy business due first, then the quiet one's.
        let now = app.stack.now_ms();
        let mut rows = Vec::new();
        for (business, count, due) in [(&stormy, 30, now - 60_000), (&quiet, 1, now)] {
            for n in 0..count {
                rows.push(format!(
                    "('00000000-0000-4000-8000-{row:012}', '{id}', 'link_failing', 'source-{n}', 'Link', 10, 12, 'failing', {now}, {now}, 'sent', 'pending', {due_ms})",
                    id = business.id,
                    row = rows.len(),
                    due_ms = due + n
                ));
            }
        }
        app.stack.sql(shard, |connection| {
            connection
                .execute_batch(&format!(
                    "INSERT INTO alerts (id, business_id, kind, subject_id, subject_name, threshold, value, message, \
                     raised_ms, resolved_ms, raised_email, resolved_email, email_next_ms) VALUES {};",
                    rows.join(", ")
                ))
                .unwrap_or_else(|error| panic!("{error}"))
        });
        app.sweep().await;
        let from = |domain: &str| {
            alert_mails(&mailgun)
                .iter()
                .filter(|mail| mailgun::field(mail, "from").ends_with(domain))
                .count()
        };
        let (stormy_sent, quiet_sent) = (from("@mg.stormy.example"), from("@mg.quiet.example"));
        assert_eq!(quiet_sent, 1, "the quiet business's email in the first run");
        assert_eq!(
            stormy_sent,
            alerting::EMAILS_PER_BUSINESS,
            "at most {} of one business a run",
            alerting::EMAILS_PER_BUSINESS
        );
    });
}
