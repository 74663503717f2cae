//! `webhook_events`: the outbox. An event is a row written by a statement that joins the batch
//! making the change, so the change and its event commit or fail together: nothing that happened
//! goes unreported, and nothing is reported that did not happen. A row is written only when an
//! enabled endpoint of the business subscribes to its type or the business has an enabled CRM
//! connector (which follows every event), and carries a snapshot of its record
//! as the change left it; its body is fixed when it is first dispatched. Once every delivery of
//! an event is settled and the retention period has passed, retention deletes it.

use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::error::ApiError;
use domain::ids::{BusinessId, EventId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event about to happen: its type, the record it is about, and what only the moment of
/// change knows (a status before it changed, say).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub kind: EventType,
    /// The id of the record the event is about: a customer, a conversation or a message, as
    /// [`table_of`] its kind says.
    pub subject_id: String,
    pub detail: Option<Value>,
}

impl NewEvent {
    pub fn new(id: EventId, kind: EventType, subject_id: impl std::fmt::Display) -> Self {
        Self {
            id,
            kind,
            subject_id: subject_id.to_string(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// When an event row is written, beyond there being a subscriber.
pub enum Guard {
    /// Whenever the batch commits.
    Always,
    /// Only if the record the event is about exists once the earlier statements have run: for a
    /// record given a fresh random id in this batch, "it was created here".
    SubjectStored,
    /// Only if the record the event is about was written by the earlier statements, as its
    /// `updated_at` (this RFC 3339 stamp) says: a record the batch found as it was and left alone
    /// has no event.
    SubjectUpdatedAt(String),
    /// Only if this condition, made by the table modules, holds.
    When(Sql),
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

/// A SQL expression that is `arm(kind)` for each event row of that kind, `otherwise` else.
fn by_kind(events: &[NewEvent], otherwise: &str, arm: impl Fn(EventType) -> String) -> String {
    // Each kind once, as first met (a handful at most: no set, no sorting code in the bundle).
    let mut kinds: Vec<EventType> = Vec::new();
    for event in events {
        if !kinds.contains(&event.kind) {
            kinds.push(event.kind);
        }
    }
    let arms: Vec<String> = kinds
        .into_iter()
        .map(|kind| format!("WHEN '{}' THEN {}", kind.as_str(), arm(kind)))
        .collect();
    format!(
        "(CASE json_extract(ev.value, '$.type') {} ELSE {otherwise} END)",
        arms.join(" ")
    )
}

const SUBJECT: &str = "json_extract(ev.value, '$.subject_id')";

/// SQL for the snapshot of each event's record (`data` of its body, but for what is added at
/// dispatch: attachments, and `detail`), read as the statement runs: after the change it joins.
fn snapshot_sql(events: &[NewEvent]) -> String {
    by_kind(events, "NULL", |kind| snapshot_of(kind, SUBJECT))
}

/// SQL for the snapshot of the record of an event of `kind` whose id is `subject`.
fn snapshot_of(kind: EventType, subject: &str) -> String {
    match table_of(kind) {
        "messages" => db::messages::snapshot_sql(subject),
        "conversations" => db::conversations::snapshot_sql(subject),
        _ => format!(
            "json_object('customer', json({}))",
            db::customers::snapshot_sql(subject)
        ),
    }
}

/// The statement that records the event `id` of `kind` about the record `found` selects, if it
/// selects one (`subject_id`, and `detail` as JSON text or null), when the batch it joins
/// commits: for a change whose record only the statements before it know, like the conversation
/// an inbound message reopened. `found` selects at most one row.
pub fn record_found(
    db: &Db,
    tenant: &Tenant,
    base_url: Option<&str>,
    now: Timestamp,
    id: &EventId,
    kind: EventType,
    found: Sql,
) -> Result<Statement, ApiError> {
    record_found_sql(base_url, now, id, kind, found).scoped(db, tenant)
}

/// The SQL of [`record_found`].
pub(crate) fn record_found_sql(
    base_url: Option<&str>,
    now: Timestamp,
    id: &EventId,
    kind: EventType,
    found: Sql,
) -> Sql {
    let insert = format!(
        "INSERT INTO webhook_events (id, business_id, type, subject_id, detail, snapshot, base_url, created_us) \
         SELECT :event_id, :business, :event_type, f.subject_id, f.detail, {}, :event_base_url, :event_now \
         FROM ({{sql}}) AS f WHERE ({} OR {}) LIMIT 1 RETURNING id",
        snapshot_of(kind, "f.subject_id"),
        db::webhook_endpoints::subscribed_sql(":event_type"),
        db::crm_connectors::any_enabled_sql(),
    );
    found
        .within(&insert)
        .bind("event_id", text(id.as_str()))
        .bind("event_type", text(kind.as_str()))
        .bind("event_base_url", db::optional_text(base_url))
        .bind("event_now", number(now.micros()))
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

/// The statement that records `events` when the batch it joins commits, and returns the ids it
/// wrote ([`recorded`] reads them). `base_url`: this deployment's public origin, for download
/// links in the payload.
pub fn record(
    db: &Db,
    tenant: &Tenant,
    base_url: Option<&str>,
    now: Timestamp,
    events: &[NewEvent],
    guard: Guard,
) -> Result<Statement, ApiError> {
    record_sql(base_url, now, events, guard)?.scoped(db, tenant)
}

/// The SQL of [`record`].
pub(crate) fn record_sql(
    base_url: Option<&str>,
    now: Timestamp,
    events: &[NewEvent],
    guard: Guard,
) -> Result<Sql, ApiError> {
    let rows = events
        .iter()
        .map(|event| EventRow {
            id: event.id.as_str(),
            kind: event.kind.as_str(),
            subject_id: &event.subject_id,
            detail: event.detail.as_ref().map(Value::to_string),
        })
        .collect::<Vec<_>>();
    // Each event's record, in its own table, found by the event's subject (and `also`).
    let subject_found = |also: &str| {
        Sql::new(by_kind(events, "0", |kind| {
            format!(
                "EXISTS (SELECT 1 FROM {} WHERE business_id = :business AND id = {SUBJECT}{also})",
                table_of(kind)
            )
        }))
    };
    let condition = match guard {
        Guard::Always => Sql::new("1"),
        Guard::SubjectStored => subject_found(""),
        Guard::SubjectUpdatedAt(stamp) => {
            subject_found(" AND updated_at = :subject_updated_at").bind("subject_updated_at", text(&stamp))
        }
        Guard::When(condition) => condition,
    };
    let insert = format!(
        "INSERT INTO webhook_events (id, business_id, type, subject_id, detail, snapshot, base_url, created_us) \
         SELECT json_extract(ev.value, '$.id'), :business, json_extract(ev.value, '$.type'), {SUBJECT}, \
         json_extract(ev.value, '$.detail'), {}, :event_base_url, :event_now \
         FROM json_each(:event_rows) AS ev WHERE ({} OR {}) AND ({{sql}}) RETURNING id",
        snapshot_sql(events),
        // Whether anyone listens comes first: when nobody does, the guard (a row read per event)
        // is never looked at.
        db::webhook_endpoints::subscribed_sql("json_extract(ev.value, '$.type')"),
        db::crm_connectors::any_enabled_sql(),
    );
    Ok(condition
        .within(&insert)
        .bind("event_base_url", db::optional_text(base_url))
        .bind("event_now", number(now.micros()))
        .bind("event_rows", text(&serde_json::to_string(&rows)?)))
}

/// The condition that no event of `kind` about `subject_id` has been recorded: an event that
/// must happen once per record (`message.sent`) is written once.
pub fn none_recorded(kind: EventType, subject_id: impl std::fmt::Display) -> Sql {
    Sql::new(
        "NOT EXISTS (SELECT 1 FROM webhook_events WHERE business_id = :business \
         AND subject_id = :recorded_subject AND type = :recorded_type)",
    )
    .bind("recorded_subject", text(&subject_id.to_string()))
    .bind("recorded_type", text(kind.as_str()))
}

/// The event ids a [`record`] statement wrote, from its place in the batch's results.
pub fn recorded(results: &[D1Result], position: usize) -> Result<Vec<EventId>, ApiError> {
    #[derive(Deserialize)]
    struct IdRow {
        id: EventId,
    }
    Ok(db::rows::<IdRow>(results, position)?
        .into_iter()
        .map(|row| row.id)
        .collect())
}

/// An event as recorded where its change happened.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredEvent {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_id: String,
    pub detail: Option<String>,
    pub snapshot: Option<String>,
    pub base_url: Option<String>,
    pub payload: Option<String>,
    pub created_us: i64,
}

/// The tenant's events among `ids`, oldest first.
pub async fn load(db: &Db, tenant: &Tenant, ids: &[EventId]) -> Result<Vec<StoredEvent>, ApiError> {
    let result = db
        .scoped(tenant, "SELECT id, type, subject_id, detail, snapshot, base_url, payload, created_us FROM webhook_events \
             WHERE +business_id = ?1 AND id IN (SELECT value FROM json_each(?2)) ORDER BY created_us, id",
        )
        .bind(&[
            db::json_list(ids.iter().map(EventId::as_str)),
        ])?
        .all()
        .await?;
    Ok(result.results::<StoredEvent>()?)
}

/// The statement that fixes an event's body, unless it has one already: retries and replays
/// send the same bytes.
pub fn set_payload(db: &Db, tenant: &Tenant, id: &EventId, payload: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE webhook_events SET payload = ?3 WHERE business_id = ?1 AND id = ?2 AND payload IS NULL",
        )
        .bind(&[text(id.as_str()), text(payload)])?)
}

/// The statement that marks the events among `ids` as dispatched: each has its body fixed by the
/// same batch, or could not be built and is dead-lettered by it, so the sweep leaves them all.
pub fn mark_dispatched(
    db: &Db,
    tenant: &Tenant,
    ids: &[EventId],
    now: Timestamp,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE webhook_events SET dispatched_us = ?3 WHERE +business_id = ?1 \
             AND id IN (SELECT value FROM json_each(?2)) AND dispatched_us IS NULL",
        )
        .bind(&[
            db::json_list(ids.iter().map(EventId::as_str)),
            number(now.micros()),
        ])?)
}

/// Events recorded before `before` and never dispatched, across businesses (the sweep's work);
/// at most `limit`, oldest first. An event held back for its message's files is not among them
/// while a file is still pending: it goes out when the last one settles (or the sweep fails it).
pub async fn undispatched(
    db: &Db,
    before: Timestamp,
    limit: usize,
) -> Result<Vec<(BusinessId, EventId)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: EventId,
    }
    let result = Sql::compose(
        "SELECT e.business_id, e.id FROM webhook_events e WHERE e.dispatched_us IS NULL AND e.created_us < :before \
         AND NOT EXISTS ({sql}) ORDER BY e.created_us LIMIT :limit",
        vec![db::attachments::pending_of_subject_sql("e")],
    )
    .bind("before", number(before.micros()))
    .bind("limit", number(limit as i64))
    .unscoped(db)?
    .all()
    .await?;
    Ok(result
        .results::<Row>()?
        .into_iter()
        .map(|row| (row.business_id, row.id))
        .collect())
}

/// The tenant's events about `subject_id` that were never dispatched (those held back until
/// the subject was complete: a message's `message.received` waits for its files).
pub async fn undispatched_of_subject(
    db: &Db,
    tenant: &Tenant,
    subject_id: impl std::fmt::Display,
) -> Result<Vec<EventId>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: EventId,
    }
    let result = db
        .scoped(tenant, "SELECT id FROM webhook_events WHERE business_id = ?1 AND subject_id = ?2 AND dispatched_us IS NULL \
             ORDER BY created_us",
        )
        .bind(&[text(&subject_id.to_string())])?
        .all()
        .await?;
    Ok(result.results::<Row>()?.into_iter().map(|row| row.id).collect())
}

/// SQL yielding the ids of up to `limit` events, of any business, recorded before `before`,
/// dispatched, and with no delivery pending (the oldest first): history retention may delete.
/// An event never dispatched, or with a delivery still to be made, is never among them.
pub fn expired(before: Timestamp, limit: usize) -> Sql {
    Sql::compose(
        "SELECT e.id FROM webhook_events e WHERE e.dispatched_us IS NOT NULL AND e.created_us < :retain_before \
         AND {sql} ORDER BY e.created_us, e.id LIMIT :retain_limit",
        vec![db::webhook_deliveries::none_pending("e.id")],
    )
    .bind("retain_before", number(before.micros()))
    .bind("retain_limit", number(limit as i64))
}

/// The statement that deletes the events [`expired`] selects. Run in one batch after
/// [`db::webhook_deliveries::delete_of_events`] over the same selection: both see the same
/// events, since deleting settled deliveries leaves none of them with a pending one.
pub fn delete_expired(db: &Db, before: Timestamp, limit: usize) -> Result<Statement, ApiError> {
    expired(before, limit)
        .within("DELETE FROM webhook_events WHERE id IN ({sql})")
        .unscoped(db)
}
