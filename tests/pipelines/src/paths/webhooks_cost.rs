//! What delivering an event costs the webhook consumer in D1 (issue 52): customers synced with
//! one subscribed endpoint, the queue settled, and the consumer's `[usage]` lines read back. Per
//! first attempt of one event to one endpoint it may take at most two D1 round trips and write at
//! most six rows, alone and in a batch of ten; the request that emitted the events is measured
//! beside it, so that no work moves into it.

use crate::app::{App, Business, test};
use crate::partners::webhook_endpoint::Endpoint;
use crate::steps::customers::sync;
use crate::steps::id_of;
use crate::steps::store::select_values;
use crate::steps::webhooks::{attempts_of, deliveries_of, with_endpoint};
use edge::events::outbox::WEBHOOKS;
use edge::runtime::Level;
use serde_json::{Value, json};

/// The most a first attempt of one event to one endpoint may take (issue 52).
const MOST_ROUND_TRIPS: f64 = 2.0;
const MOST_ROWS_WRITTEN: f64 = 6.0;

/// What a set of invocations used, summed over their `[usage]` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Used {
    invocations: u32,
    round_trips: u64,
    statements: u64,
    rows_written: u64,
}

impl Used {
    fn per(self, events: u32) -> (f64, f64, f64) {
        let events = f64::from(events);
        (
            self.round_trips as f64 / events,
            self.statements as f64 / events,
            self.rows_written as f64 / events,
        )
    }
}

/// The `[usage]` lines logged so far.
fn usage_lines(app: &App) -> Vec<String> {
    app.stack.logged(Level::Log, "[usage] ")
}

/// The sum of `lines`.
fn sum(lines: &[String]) -> Used {
    let field = |line: &str, name: &str| {
        line.split(' ')
            .find_map(|field| field.strip_prefix(name))
            .and_then(|count| count.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    lines.iter().fold(Used::default(), |sum, line| Used {
        invocations: sum.invocations + 1,
        round_trips: sum.round_trips + field(line, "d1_round_trips="),
        statements: sum.statements + field(line, "d1_queries="),
        rows_written: sum.rows_written + field(line, "rows_written="),
    })
}

/// A business with one endpoint subscribed to `customer.created`.
async fn business_with_endpoint(app: &App) -> (Business, Endpoint, Value) {
    let business = app.business("Acme").await;
    let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
    let (webhook, _) = with_endpoint(
        app,
        &business.key,
        &endpoint,
        json!({ "events": ["customer.created"] }),
    )
    .await;
    (business, endpoint, webhook)
}

/// Syncs `count` new customers and lets the webhook consumer deliver their events: what the
/// consumer used, and what the request (every invocation it took) used.
async fn deliver_new_customers(app: &App, business: &Business, count: u32) -> (Used, Used) {
    let customers: Vec<Value> = (0..count)
        .map(|at| json!({ "external_id": format!("cost-{at}"), "name": format!("Cost {at}"), "email": format!("cost-{at}@example.com") }))
        .collect();
    let before = usage_lines(app).len();
    let result = sync(app, &business.key, json!(customers)).await;
    assert_eq!(result["results"]["created"], count, "{result}");
    let requested = usage_lines(app).len();
    // The webhook queue's consumer alone: nothing else has work.
    while app.deliver_once(WEBHOOKS).await > 0 {}
    let lines = usage_lines(app);
    // The key's limiter object is not the request's work: its lease, and the key's usage report,
    // which goes once per key and isolate every 20 seconds (here, the native tests' setting, after
    // each request).
    let requests: Vec<String> = lines[before..requested]
        .iter()
        .filter(|line| !line.contains(" object "))
        .cloned()
        .collect();
    (sum(&lines[requested..]), sum(&requests))
}

/// The external ids of the customers whose events reached `endpoint`, one per delivery.
fn delivered_customers(endpoint: &Endpoint) -> Vec<String> {
    endpoint
        .deliveries()
        .iter()
        .filter_map(|d| {
            d.call.json()["data"]["customer"]["external_id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

fn assert_within_target(consumer: Used, events: u32, description: &str) {
    let (round_trips, statements, rows_written) = consumer.per(events);
    assert!(
        round_trips <= MOST_ROUND_TRIPS && rows_written <= MOST_ROWS_WRITTEN,
        "{description}: per event {round_trips} round trips, {statements} statements, {rows_written} rows \
         written (at most {MOST_ROUND_TRIPS} and {MOST_ROWS_WRITTEN}); all: {consumer:?}"
    );
}

#[test]
fn one_event_to_one_endpoint_takes_at_most_two_round_trips_and_six_rows_written_on_its_first_attempt() {
    test(|app| async move {
        let (acme, endpoint, webhook) = business_with_endpoint(&app).await;
        let (consumer, request) = deliver_new_customers(&app, &acme, 1).await;
        assert_eq!(endpoint.deliveries().len(), 1, "delivered");
        assert!(endpoint.deliveries()[0].signed, "signed");
        assert_eq!(consumer.invocations, 1, "one consumer invocation: {consumer:?}");
        assert_within_target(consumer, 1, "one event");
        assert_eq!(
            request.rows_written, 2,
            "the request writes the customer and its event, nothing of its delivery: {request:?}"
        );
        let log = attempts_of(&app, &acme.key, &format!("webhook_id={}", id_of(&webhook))).await;
        assert_eq!(log.len(), 1, "the attempt is logged: {log:?}");
        assert_eq!(log[0]["outcome"], "delivered", "{log:?}");
        let sent = endpoint.deliveries()[0].call.text();
        assert_eq!(
            select_values(
                &app,
                "SELECT payload, dispatched_us IS NOT NULL FROM webhook_events",
                &[]
            ),
            vec![vec![json!(sent), json!(1)]],
            "the body sent is kept for retries and replays, and the event is dispatched"
        );
        assert_eq!(
            consumer.rows_written, 2,
            "the attempt and the event's mark, no delivery row (natively, rows changed; D1 counts \
             their index entries too: BENCHMARKS.md): {consumer:?}"
        );
        assert!(select_values(&app, "SELECT id FROM webhook_deliveries", &[]).is_empty());
        let listed = deliveries_of(&app, &acme.key, &id_of(&webhook), "").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (
                &listed[0]["status"],
                &listed[0]["attempts"],
                &listed[0]["last_status"]
            ),
            (&json!("delivered"), &json!(1), &json!(200)),
            "listed from its attempt"
        );
    });
}

#[test]
fn ten_events_to_one_endpoint_take_at_most_two_round_trips_and_six_rows_written_each() {
    test(|app| async move {
        let (acme, endpoint, webhook) = business_with_endpoint(&app).await;
        let (consumer, request) = deliver_new_customers(&app, &acme, 10).await;
        assert_eq!(endpoint.deliveries().len(), 10, "each delivered");
        assert!(endpoint.deliveries().iter().all(|d| d.signed), "signed");
        assert_within_target(consumer, 10, "ten events in one sync");
        assert_eq!(
            request.rows_written, 20,
            "the request writes each customer and its event, nothing of their delivery: {request:?}"
        );
        let log = attempts_of(&app, &acme.key, &format!("webhook_id={}", id_of(&webhook))).await;
        assert_eq!(log.len(), 10, "every attempt is logged");
    });
}

#[test]
fn ten_single_customer_syncs_in_one_batch_are_dispatched_with_one_read_and_recorded_with_one_write() {
    test(|app| async move {
        let (acme, endpoint, _) = business_with_endpoint(&app).await;
        for at in 0..10 {
            let customer = json!({ "external_id": format!("single-{at}"), "name": format!("Single {at}"), "email": format!("single-{at}@example.com") });
            let result = sync(&app, &acme.key, json!([customer])).await;
            assert_eq!(result["results"]["created"], 1, "{result}");
        }
        assert_eq!(app.stack.queued(WEBHOOKS).len(), 10, "one dispatch task per sync");
        let before = usage_lines(&app).len();
        assert_eq!(app.deliver_once(WEBHOOKS).await, 10, "the ten tasks in one batch");
        let consumer = sum(&usage_lines(&app)[before..]);
        assert_eq!(
            (consumer.invocations, consumer.round_trips),
            (1, 2),
            "one read for the ten events, and one write for the attempts that ended together \
             (here all ten: the endpoint answers at once): {consumer:?}"
        );
        let mut ids = delivered_customers(&endpoint);
        ids.sort();
        let expected: Vec<String> = (0..10).map(|at| format!("single-{at}")).collect();
        assert_eq!(ids, expected, "each event once");
        assert!(app.stack.queued(WEBHOOKS).is_empty(), "nothing left or retried");
    });
}

#[test]
fn a_batch_with_more_work_than_one_invocation_may_do_puts_the_rest_back_as_new_messages_each_delivered_once()
{
    test(|app| async move {
        let (acme, endpoint, _) = business_with_endpoint(&app).await;
        let count = 1000;
        let customers: Vec<Value> = (0..count)
            .map(|at| json!({ "external_id": format!("many-{at}"), "name": format!("Many {at}"), "email": format!("many-{at}@example.com") }))
            .collect();
        sync(&app, &acme.key, json!(customers)).await;
        assert_eq!(app.stack.queued(WEBHOOKS).len(), 20, "50 events a task");
        assert_eq!(app.deliver_once(WEBHOOKS).await, 20, "all in one batch");
        let waiting = app.stack.queued(WEBHOOKS);
        assert!(
            !waiting.is_empty() && waiting.len() < 20,
            "some tasks were done, the rest wait: {}",
            waiting.len()
        );
        assert!(
            waiting
                .iter()
                .all(|task| task.attempts == 0 && task.json()["task"] == "dispatch"),
            "whole dispatch tasks put back as new messages, not counted as retries: {:?}",
            waiting
                .iter()
                .map(|task| (task.attempts, task.json()))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            app.stack
                .logged(Level::Log, "webhook tasks put back on the queue")
                .len(),
            1,
            "said once"
        );
        while app.deliver_once(WEBHOOKS).await > 0 {}
        let mut ids = delivered_customers(&endpoint);
        ids.sort();
        ids.dedup();
        assert_eq!(
            (ids.len(), endpoint.deliveries().len()),
            (count, count),
            "every event delivered, once"
        );
        assert_eq!(
            app.stack.logged(Level::Error, "[limit]"),
            Vec::<String>::new(),
            "no invocation crossed a production limit"
        );
        assert!(app.stack.dead_letters(WEBHOOKS).is_empty(), "no dead letters");
    });
}
