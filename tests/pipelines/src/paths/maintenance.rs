//! The maintenance sweep (the end-to-end suite's `maintenance.test.mjs`; `POST
//! /admin/maintenance/sweep` runs the code the cron runs every minute): a send whose queue message
//! was lost is sent after the sweep with what it was accepted with, one re-queued too often is
//! failed, and webhook history and SSO tokens past retention are deleted while everything still in
//! use is kept. Rows the API cannot put in such states (a queued message with no queue message,
//! history with a pending delivery) are written directly, stamped with the virtual clock's time,
//! and the weeks of retention pass on that clock.

use crate::app::{App, Business, ORIGIN, test};
use crate::partners::mailgun::{self, Mailgun};
use crate::steps::api::{assert_error, new_uuid, rfc3339_at, wrong_admin_credentials};
use crate::steps::channels::{mailgun_account, messages_of};
use crate::steps::customers::sync;
use crate::steps::store::{execute, select};
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const DOMAIN: &str = "mg.acme.example.com";
const MAILGUN_KEY: &str = "key-mailgun-api-key";
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A business (in Ireland) with an email account on Mailgun, and Mailgun's Messages API.
async fn business_with_email(app: &App) -> (Business, Mailgun) {
    let business = app.business("Acme").await;
    let mailgun = mailgun_account(app, &business.id, DOMAIN, MAILGUN_KEY).await;
    (business, mailgun)
}

/// A customer synced with an email address: their id and address.
async fn new_customer(app: &App, business: &Business) -> (String, String) {
    let tag = unique("sweep");
    let email = format!("{tag}@example.com");
    let result = sync(
        app,
        &business.key,
        json!([{ "external_id": format!("CRM-{tag}"), "name": "Jane Doe", "email": email }]),
    )
    .await;
    let id = result["results"]["details"][0]["customer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (id, email)
}

/// The sweep, as the operator runs it; its report, every part of it run.
async fn sweep(app: &App) -> Value {
    let report = app
        .admin(Method::Post, "/admin/maintenance/sweep", None)
        .await
        .expect(200)
        .json();
    assert_eq!(
        report["failed"],
        json!([]),
        "every part of the sweep ran: {report}"
    );
    report
}

/// What Mailgun was asked to send to `email`: each send's form fields.
fn mails_to(mailgun: &Mailgun, email: &str) -> Vec<Vec<(String, String)>> {
    mailgun
        .sends()
        .iter()
        .map(|call| Mailgun::read(call).fields)
        .filter(|fields| mailgun::field(fields, "to").contains(email))
        .collect()
}

/// A customer with an email conversation (one message sent through the API and taken by
/// Mailgun).
struct Conversation {
    customer_id: String,
    email: String,
    id: String,
}

async fn customer_with_conversation(app: &App, business: &Business, mailgun: &Mailgun) -> Conversation {
    let (customer_id, email) = new_customer(app, business).await;
    let sent = app
        .api(
            &business.key,
            Method::Post,
            "/api-send-message",
            Some(
                json!({ "email": email, "channel": "email", "subject": "Hello", "content": "First message" }),
            ),
        )
        .await
        .expect(202)
        .json();
    app.settle().await;
    assert_eq!(mails_to(mailgun, &email).len(), 1, "the first message was sent");
    let rows = select(
        app,
        "SELECT conversation_id FROM messages WHERE id = ?1",
        &[sent["message"]["id"].as_str().unwrap_or_default()],
    );
    Conversation {
        customer_id,
        email,
        id: rows[0]["conversation_id"].as_str().unwrap_or_default().to_owned(),
    }
}

/// A `queued` outbound message stored as send-message stores one, whose queue message never
/// existed (the worker died between storing and enqueueing), last written now.
fn store_stuck_send(
    app: &App,
    business: &Business,
    conversation: &Conversation,
    subject: &str,
    reason: Option<&str>,
    requeues: u32,
) -> String {
    let id = new_uuid();
    let shard = app
        .stack
        .shard_bindings()
        .into_iter()
        .find(|binding| {
            app.stack.sql(binding, |connection| {
                connection
                    .query_row(
                        "SELECT count(*) FROM businesses WHERE id = ?1",
                        [&business.id],
                        |row| row.get::<_, i64>(0),
                    )
                    .unwrap_or(0)
                    == 1
            })
        })
        .unwrap_or_else(|| panic!("no shard holds {}", business.id));
    let updated_at = rfc3339_at(app.stack.now_ms());
    app.stack.sql(&shard, |connection| {
        connection
            .execute(
                "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status,
                   status_reason, created_us, updated_at, send_subject, send_media_base_url, send_requeues)
                 VALUES (?1, ?2, ?3, ?4, 'email', 'outbound', ?5, 'queued', ?6,
                   (SELECT MAX(created_us) + 1 FROM messages WHERE business_id = ?2), ?7, ?8, ?9, ?10)",
                edge::runtime::native::rusqlite::params![
                    id,
                    business.id,
                    conversation.id,
                    conversation.customer_id,
                    format!("Stuck {id}"),
                    reason,
                    updated_at,
                    subject,
                    ORIGIN,
                    requeues
                ],
            )
            .unwrap_or_else(|error| panic!("storing a stuck send: {error}"));
    });
    id
}

/// The message's status, status reason and re-queue count as stored.
fn message_row(app: &App, id: &str) -> (Value, Value, Value) {
    let rows = select(
        app,
        "SELECT status, status_reason, send_requeues FROM messages WHERE id = ?1",
        &[id],
    );
    assert_eq!(rows.len(), 1, "message {id} is stored once");
    (
        rows[0]["status"].clone(),
        rows[0]["status_reason"].clone(),
        rows[0]["send_requeues"].clone(),
    )
}

#[test]
fn a_message_stuck_queued_with_no_queue_message_is_sent_after_the_sweep_with_its_subject() {
    test(|app| async move {
        let (business, mailgun) = business_with_email(&app).await;
        let conversation = customer_with_conversation(&app, &business, &mailgun).await;
        let stuck = store_stuck_send(&app, &business, &conversation, "Your invoice", None, 0);
        app.stack.advance(2 * HOUR);
        let report = sweep(&app).await;
        assert_eq!(
            report["sends_requeued"], 1,
            "the stuck send was re-queued: {report}"
        );
        app.settle().await;
        assert_eq!(message_row(&app, &stuck).0, "sent", "the stuck message was sent");
        let calls: Vec<Vec<(String, String)>> = mails_to(&mailgun, &conversation.email)
            .into_iter()
            .filter(|fields| mailgun::field(fields, "text") == format!("Stuck {stuck}"))
            .collect();
        assert_eq!(calls.len(), 1, "the stuck message reached Mailgun once");
        assert_eq!(
            mailgun::field(&calls[0], "subject"),
            "Your invoice",
            "the subject it was accepted with survived"
        );
        assert_eq!(message_row(&app, &stuck).2, 1, "the re-queue is counted");
    });
}

#[test]
fn a_queued_message_within_the_bound_or_waiting_on_a_provider_retry_is_left_alone() {
    test(|app| async move {
        let (business, mailgun) = business_with_email(&app).await;
        let conversation = customer_with_conversation(&app, &business, &mailgun).await;
        // A retry note: the dispatcher may be waiting on a provider's Retry-After of up to 12 h.
        let waiting = store_stuck_send(
            &app,
            &business,
            &conversation,
            "Waiting",
            Some("attempt 1 of 5 failed, retrying in 3600 s: mailgun answered 429"),
            0,
        );
        app.stack.advance(2 * HOUR - Duration::from_secs(600));
        let recent = store_stuck_send(&app, &business, &conversation, "Recent", None, 0);
        app.stack.advance(Duration::from_secs(600));
        sweep(&app).await;
        for (id, description) in [(recent, "a recent send"), (waiting, "a send waiting on a retry")] {
            let (status, _, requeues) = message_row(&app, &id);
            assert_eq!(
                (status, requeues),
                (json!("queued"), json!(0)),
                "{description} is not re-queued"
            );
        }
        assert!(app.stack.queued("OUTBOUND").is_empty(), "nothing was queued");
    });
}

#[test]
fn a_message_re_queued_three_times_without_being_dispatched_is_failed_with_a_clear_reason() {
    test(|app| async move {
        let (business, mailgun) = business_with_email(&app).await;
        let conversation = customer_with_conversation(&app, &business, &mailgun).await;
        let stuck = store_stuck_send(&app, &business, &conversation, "Looping", None, 3);
        app.stack.advance(2 * HOUR);
        let report = sweep(&app).await;
        assert_eq!(report["sends_failed"], 1, "{report}");
        let (status, reason, _) = message_row(&app, &stuck);
        assert_eq!(status, "failed");
        let reason = reason.as_str().unwrap_or_default();
        assert!(
            reason.contains("never dispatched ")
                && reason.contains(" 3 times; nothing was sent")
                && reason.find("never dispatched") < reason.find(" 3 times"),
            "{reason}"
        );
        let seen = messages_of(&app, &business.key)
            .await
            .into_iter()
            .find(|message| message["id"] == stuck.as_str())
            .unwrap_or_else(|| panic!("the client sees the message"));
        assert_eq!(seen["status"], "failed", "the client sees it failed");
        app.settle().await;
        assert!(
            !mails_to(&mailgun, &conversation.email)
                .iter()
                .any(|fields| mailgun::field(fields, "subject") == "Looping"),
            "nothing was sent"
        );
    });
}

/// Webhook history of `business`, written now: an event and its deliveries in `statuses`.
fn store_event(app: &App, business: &Business, statuses: &[&str]) -> String {
    let id = new_uuid();
    let at = (app.stack.now_ms() * 1000).to_string();
    execute(
        app,
        "INSERT INTO webhook_events (id, business_id, type, subject_id, created_us, dispatched_us)
         SELECT ?1, ?2, 'customer.created', ?3, ?4, ?4 FROM businesses WHERE id = ?2",
        &[&id, &business.id, &new_uuid(), &at],
    );
    for status in statuses {
        execute(
            app,
            "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, event_us, updated_us)
             SELECT ?1, ?2, ?3, ?4, 'customer.created', ?5, ?6, ?6 FROM businesses WHERE id = ?2",
            &[&new_uuid(), &business.id, &new_uuid(), &id, status, &at],
        );
    }
    id
}

/// An attempt logged now; its event's id.
fn store_attempt(app: &App, business: &Business) -> String {
    let event = new_uuid();
    let at = (app.stack.now_ms() * 1000).to_string();
    execute(
        app,
        "INSERT INTO webhook_attempts (business_id, endpoint_id, event_id, event_type, attempt, url, duration_ms, outcome, attempted_us)
         SELECT ?1, ?2, ?3, 'customer.created', 1, 'https://example.com/hook', 12, 'delivered', ?4 FROM businesses WHERE id = ?1",
        &[&business.id, &new_uuid(), &event, &at],
    );
    event
}

/// An SSO token of the customer, issued through the API with `expires_in` seconds; its id.
async fn issue_token(app: &App, business: &Business, customer_id: &str, expires_in: u32) -> String {
    let issued = app
        .api(
            &business.key,
            Method::Post,
            "/api-sso-generate-token",
            Some(json!({ "customer_id": customer_id, "expires_in": expires_in })),
        )
        .await
        .expect(201)
        .json();
    issued["token_id"].as_str().unwrap_or_default().to_owned()
}

fn count(app: &App, sql: &str, id: &str) -> usize {
    select(app, sql, &[id]).len()
}

#[test]
fn settled_history_past_30_days_is_deleted_and_pending_and_recent_history_is_kept() {
    test(|app| async move {
        let (business, _) = business_with_email(&app).await;
        let (customer_id, _) = new_customer(&app, &business).await;
        let settled = store_event(&app, &business, &["delivered", "dead"]);
        let pending = store_event(&app, &business, &["delivered", "pending"]);
        let old_attempt = store_attempt(&app, &business);
        let long_expired = issue_token(&app, &business, &customer_id, 60).await;

        app.stack.advance(2 * DAY);
        let recent = store_event(&app, &business, &["delivered"]);
        let recent_attempt = store_attempt(&app, &business);

        app.stack.advance(29 * DAY - HOUR - Duration::from_secs(60));
        let just_expired = issue_token(&app, &business, &customer_id, 60).await;
        app.stack.advance(HOUR + Duration::from_secs(60));
        let valid = issue_token(&app, &business, &customer_id, 3600).await;

        // Now: the first history is 31 days old, the recent 29; one token expired 31 days ago,
        // one an hour ago, one is valid for an hour.
        let report = sweep(&app).await;
        assert_eq!(report["retention_days"], 30, "the default retention period");
        assert_eq!(report["webhook_events_deleted"], 1, "{report}");
        assert_eq!(report["webhook_deliveries_deleted"], 2, "{report}");
        assert_eq!(report["webhook_attempts_deleted"], 1, "{report}");
        assert_eq!(report["sso_tokens_deleted"], 1, "{report}");

        let event = "SELECT id FROM webhook_events WHERE id = ?1";
        let deliveries = "SELECT id FROM webhook_deliveries WHERE event_id = ?1";
        let attempt = "SELECT event_id FROM webhook_attempts WHERE event_id = ?1";
        let token = "SELECT id FROM sso_tokens WHERE id = ?1";
        assert_eq!(
            count(&app, event, &settled),
            0,
            "an old event whose deliveries are all settled is deleted"
        );
        assert_eq!(count(&app, deliveries, &settled), 0, "with its deliveries");
        assert_eq!(
            count(&app, event, &pending),
            1,
            "an old event with a pending delivery is kept"
        );
        assert_eq!(count(&app, deliveries, &pending), 2, "with all its deliveries");
        assert_eq!(
            count(&app, event, &recent),
            1,
            "an event within the retention period is kept"
        );
        assert_eq!(count(&app, deliveries, &recent), 1);
        assert_eq!(
            count(&app, attempt, &old_attempt),
            0,
            "an attempt older than the period is deleted"
        );
        assert_eq!(
            count(&app, attempt, &recent_attempt),
            1,
            "a recent attempt is kept"
        );
        assert_eq!(
            count(&app, token, &long_expired),
            0,
            "a token expired over a day ago is deleted"
        );
        assert_eq!(
            count(&app, token, &just_expired),
            1,
            "a token expired an hour ago is kept"
        );
        assert_eq!(count(&app, token, &valid), 1, "a valid token is kept");

        sweep(&app).await;
        assert_eq!(
            count(&app, event, &pending),
            1,
            "a second run keeps the pending event too"
        );
    });
}

#[test]
fn the_sweep_endpoint_refuses_without_the_admin_token_and_answers_only_post() {
    test(|app| async move {
        for (headers, description) in wrong_admin_credentials(&app.admin_token()).into_iter().take(3) {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let answer = app
                .request(Method::Post, "/admin/maintenance/sweep", &headers, Vec::new())
                .await;
            assert_error(&answer, 401, "unauthorized", description);
        }
        let answer = app.admin(Method::Get, "/admin/maintenance/sweep", None).await;
        assert_error(&answer, 405, "method_not_allowed", "GET");
        assert_eq!(answer.header("allow"), Some("POST"));
    });
}
