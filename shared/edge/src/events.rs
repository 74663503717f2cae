//! Emitting webhook events where changes happen.
//!
//! An event is a row of `webhook_events` written by a statement that joins the batch making the
//! change, so the change and its event commit or fail together: nothing that happened goes
//! unreported, and nothing is reported that did not happen. A row is written only when an
//! enabled endpoint of the business subscribes to its type. After the batch, [`publish`] hands
//! the new events to the webhook queue; its consumer fans them out to endpoints and delivers.
//! Should the queue refuse them, the consumer's periodic sweep finds events never dispatched.

use crate::auth::Tenant;
use crate::{customers_repo, d1, messages_repo, runtime};
use domain::error::ApiError;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::wasm_bindgen::JsValue;
use worker::{
    BatchMessageBuilder, D1Database, D1PreparedStatement, D1Result, Env, MessageBuilder, console_error,
};

/// The queue binding: producer in every function that emits, consumer in webhook-dispatcher.
pub const WEBHOOKS: &str = "WEBHOOKS";

/// Event ids per dispatch task: one task's deliveries fit one consumer invocation.
pub const DISPATCH_CHUNK: usize = 50;

/// The work on the webhook queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum WebhookTask {
    /// Fix the payload of these events and create their deliveries, then attempt each.
    Dispatch {
        business_id: String,
        event_ids: Vec<String>,
    },
    /// Attempt this delivery; `attempt` is the attempt of the current round it will be.
    Deliver {
        business_id: String,
        delivery_id: String,
        attempt: u32,
    },
}

/// An event about to happen: its type, the record it is about, and what only the moment of
/// change knows (a status before it changed, say).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub kind: EventType,
    pub subject_id: String,
    pub detail: Option<Value>,
}

impl NewEvent {
    pub fn new(kind: EventType, subject_id: &str) -> Result<Self, ApiError> {
        Ok(Self {
            id: domain::ids::uuid_v4(runtime::random()?),
            kind,
            subject_id: subject_id.to_owned(),
            detail: None,
        })
    }
}

/// When an event row is written, beyond there being a subscriber.
pub enum Guard<'a> {
    /// Whenever the batch commits.
    Always,
    /// Only if the record the event is about exists once the earlier statements have run: for a
    /// record given a fresh random id in this batch, "it was created here".
    SubjectStored,
    /// Only if this SQL condition holds; its parameters are bound from `?5` on.
    When(&'a str, Vec<JsValue>),
}

/// SQL for the snapshot of each event's record (`data` of its body, but for what is added at
/// dispatch: attachments, and `detail`), read as the statement runs: after the change it joins.
fn snapshot_sql(events: &[NewEvent]) -> String {
    let subject = "json_extract(ev.value, '$.subject_id')";
    by_kind(events, "NULL", |kind| match table_of(kind) {
        "messages" => messages_repo::message_snapshot_sql(subject),
        "conversations" => messages_repo::conversation_snapshot_sql(subject),
        _ => format!(
            "json_object('customer', json({}))",
            customers_repo::snapshot_sql(subject)
        ),
    })
}

/// A SQL expression that is `arm(kind)` for each event row of that kind, `otherwise` else.
fn by_kind(events: &[NewEvent], otherwise: &str, arm: impl Fn(EventType) -> String) -> String {
    let kinds: std::collections::BTreeSet<EventType> = events.iter().map(|event| event.kind).collect();
    let arms: Vec<String> = kinds
        .into_iter()
        .map(|kind| format!("WHEN '{}' THEN {}", kind.as_str(), arm(kind)))
        .collect();
    format!(
        "(CASE json_extract(ev.value, '$.type') {} ELSE {otherwise} END)",
        arms.join(" ")
    )
}

/// Where the record each type of event is about lives.
pub fn table_of(kind: EventType) -> &'static str {
    match kind {
        EventType::MessageReceived | EventType::MessageSent => "messages",
        EventType::ConversationCreated
        | EventType::ConversationAssigned
        | EventType::ConversationStatusChanged => "conversations",
        EventType::CustomerCreated | EventType::CustomerUpdated | EventType::Test => "customers",
    }
}

#[derive(Serialize)]
struct EventRow<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    subject_id: &'a str,
    /// Stored as JSON text (or null).
    detail: Option<String>,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

/// One statement that records `events` when the batch it joins commits, and returns the ids it
/// wrote. `base_url`: this deployment's public origin, for download links in the payload.
pub fn record(
    db: &D1Database,
    tenant: &Tenant,
    base_url: Option<&str>,
    now: Timestamp,
    events: &[NewEvent],
    guard: Guard<'_>,
) -> Result<D1PreparedStatement, ApiError> {
    let rows = events
        .iter()
        .map(|event| EventRow {
            id: &event.id,
            kind: event.kind.as_str(),
            subject_id: &event.subject_id,
            detail: event.detail.as_ref().map(Value::to_string),
        })
        .collect::<Vec<_>>();
    let rows = serde_json::to_string(&rows).map_err(|e| ApiError::internal("serialising events", e))?;
    let (condition, extra) = match guard {
        Guard::Always => ("1".to_owned(), Vec::new()),
        Guard::SubjectStored => (
            by_kind(events, "0", |kind| {
                format!(
                    "EXISTS (SELECT 1 FROM {} WHERE business_id = ?1 AND id = json_extract(ev.value, '$.subject_id'))",
                    table_of(kind)
                )
            }),
            Vec::new(),
        ),
        Guard::When(sql, params) => (format!("({sql})"), params),
    };
    let sql = format!(
        "INSERT INTO webhook_events (id, business_id, type, subject_id, detail, snapshot, base_url, created_us) \
         SELECT json_extract(ev.value, '$.id'), ?1, json_extract(ev.value, '$.type'), \
         json_extract(ev.value, '$.subject_id'), json_extract(ev.value, '$.detail'), {}, ?2, ?3 \
         FROM json_each(?4) AS ev \
         WHERE {condition} AND EXISTS (SELECT 1 FROM webhook_endpoints e, json_each(e.events) AS s \
           WHERE e.business_id = ?1 AND e.enabled = 1 AND s.value = json_extract(ev.value, '$.type')) \
         RETURNING id",
        snapshot_sql(events)
    );
    let mut params = vec![
        d1::text(tenant.business_id.as_str()),
        d1::optional_text(base_url),
        JsValue::from_f64(now.micros() as f64),
        d1::text(&rows),
    ];
    params.extend(extra);
    Ok(db.prepare(sql).bind(&params)?)
}

/// The event ids a [`record`] statement wrote, from its place in the batch's results.
pub fn recorded(results: &[D1Result], position: usize) -> Result<Vec<String>, ApiError> {
    let result = results
        .get(position)
        .ok_or_else(|| ApiError::internal("recording events", "D1 returned fewer results than statements"))?;
    Ok(result.results::<IdRow>()?.into_iter().map(|row| row.id).collect())
}

/// Hands committed events to the webhook queue. A failure here loses nothing (the events are in
/// D1 and the sweep dispatches them); it only delays them, so it is logged, not returned.
pub async fn publish(env: &Env, tenant: &Tenant, event_ids: Vec<String>) {
    if event_ids.is_empty() {
        return;
    }
    let tasks: Vec<WebhookTask> = event_ids
        .chunks(DISPATCH_CHUNK)
        .map(|chunk| WebhookTask::Dispatch {
            business_id: tenant.business_id.as_str().to_owned(),
            event_ids: chunk.to_vec(),
        })
        .collect();
    if let Err(error) = enqueue(env, tasks, 0).await {
        console_error!(
            "{} webhook events of business {} left for the sweep: {error}",
            event_ids.len(),
            tenant.business_id
        );
    }
}

/// Puts tasks on the webhook queue, at most 100 per call as Queues allows, after `delay_seconds`.
pub async fn enqueue(env: &Env, tasks: Vec<WebhookTask>, delay_seconds: u32) -> worker::Result<()> {
    let queue = env.queue(WEBHOOKS)?;
    for chunk in tasks.chunks(100) {
        let batch = BatchMessageBuilder::new()
            .messages(
                chunk
                    .iter()
                    .cloned()
                    .map(|task| MessageBuilder::new(task).delay_seconds(delay_seconds).build()),
            )
            .build();
        queue.send_batch(batch).await?;
    }
    Ok(())
}
