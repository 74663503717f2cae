//! `webhook_events`: the outbox. An event is a row written by a statement that joins the batch
//! making the change, so the change and its event commit or fail together: nothing that happened
//! goes unreported, and nothing is reported that did not happen. A row is written only when an
//! enabled endpoint of the business subscribes to its type or the business has an enabled CRM
//! connector (which follows every event), and carries a snapshot of its record
//! as the change left it; its body is fixed when it is first dispatched. Once every delivery of
//! an event is settled and the retention period has passed, retention deletes it.

use crate::db::Read;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::error::ApiError;
use domain::ids::{BusinessId, EventId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::Deserialize;
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
        EventType::AlertRaised | EventType::AlertResolved => "alerts",
        EventType::CustomerErased => "customer_erasures",
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
        "alerts" => db::alerts::snapshot_sql(subject),
        "customer_erasures" => db::customer_erasures::snapshot_sql(subject),
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
) -> Result<Read<Vec<EventId>>, ApiError> {
    Ok(Read::new(
        record_found_sql(base_url, now, id, kind, found).scoped(db, tenant)?,
        read_recorded,
    ))
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

/// The events as the JSON array [`record_sql`] reads them, written by hand: a sync records a
/// thousand, and serde escaped every field's name of every row.
fn event_rows(events: &[NewEvent]) -> String {
    let mut rows = String::from("[");
    for (at, event) in events.iter().enumerate() {
        if at > 0 {
            rows.push(',');
        }
        rows.push_str(r#"{"id":"#);
        db::push_json_text(&mut rows, event.id.as_str());
        rows.push_str(r#","type":"#);
        db::push_json_text(&mut rows, event.kind.as_str());
        rows.push_str(r#","subject_id":"#);
        db::push_json_text(&mut rows, &event.subject_id);
        // Stored as JSON text (or null).
        rows.push_str(r#","detail":"#);
        match &event.detail {
            Some(detail) => db::push_json_text(&mut rows, &detail.to_string()),
            None => rows.push_str("null"),
        }
        rows.push('}');
    }
    rows.push(']');
    rows
}

/// The statement that records `events` when the batch it joins commits, and returns the ids it
/// wrote. `base_url`: this deployment's public origin, for download links in the payload.
pub fn record(
    db: &Db,
    tenant: &Tenant,
    base_url: Option<&str>,
    now: Timestamp,
    events: &[NewEvent],
    guard: Guard,
) -> Result<Read<Vec<EventId>>, ApiError> {
    Ok(Read::new(
        record_sql(base_url, now, events, guard)?.scoped(db, tenant)?,
        read_recorded,
    ))
}

/// The SQL of [`record`].
pub(crate) fn record_sql(
    base_url: Option<&str>,
    now: Timestamp,
    events: &[NewEvent],
    guard: Guard,
) -> Result<Sql, ApiError> {
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
        .bind("event_rows", text(&event_rows(events))))
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

/// The event ids a [`record`] statement wrote.
fn read_recorded(answer: &D1Result) -> Result<Vec<EventId>, ApiError> {
    #[derive(Deserialize)]
    struct IdRow {
        id: EventId,
    }
    Ok(db::rows::<IdRow>(answer)?.into_iter().map(|row| row.id).collect())
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
    pub dispatched_us: Option<i64>,
}

/// The tenant's events among `ids`, oldest first; events of the same microsecond in the order of
/// `ids` (the order they were queued in).
pub async fn load(db: &Db, tenant: &Tenant, ids: &[EventId]) -> Result<Vec<StoredEvent>, ApiError> {
    load_statement(db, tenant, ids)?.run().await
}

/// The statement of [`load`], for a caller's batch.
pub fn load_statement(db: &Db, tenant: &Tenant, ids: &[EventId]) -> Result<Read<Vec<StoredEvent>>, ApiError> {
    Ok(Read::new(
        db.scoped(
            tenant,
            "SELECT e.id, e.type, e.subject_id, e.detail, e.snapshot, e.base_url, e.payload, e.created_us, \
             e.dispatched_us FROM json_each(?2) AS wanted JOIN webhook_events AS e ON e.id = wanted.value \
             WHERE +e.business_id = ?1 ORDER BY e.created_us, wanted.key",
        )
        .bind(&[db::json_list(ids.iter().map(EventId::as_str))])?,
        read_loaded,
    ))
}

/// The events a [`load_statement`] found.
fn read_loaded(answer: &D1Result) -> Result<Vec<StoredEvent>, ApiError> {
    db::rows(answer)
}

/// SQL yielding the ids of the messages the message events among `ids` are about: whose files
/// their bodies list.
pub fn message_subjects(ids: &[EventId]) -> Sql {
    let kinds = [EventType::MessageReceived, EventType::MessageSent];
    debug_assert!(kinds.iter().all(|kind| table_of(*kind) == "messages"));
    Sql::new(
        "SELECT subject_id FROM webhook_events WHERE +business_id = :business \
         AND id IN (SELECT value FROM json_each(:subject_events)) AND type IN (:received, :sent)",
    )
    .bind("subject_events", db::json_list(ids.iter().map(EventId::as_str)))
    .bind("received", text(kinds[0].as_str()))
    .bind("sent", text(kinds[1].as_str()))
}

/// The statement that fixes each event's body (where given, unless it has one already: retries
/// and replays send the same bytes) and marks it dispatched (unless it is already), for events
/// whose deliveries are made: each of `events` is an id and the body built for it now, if any.
/// An event it would leave as it is, it does not write.
pub fn dispatched(
    db: &Db,
    tenant: &Tenant,
    events: &[(&EventId, Option<&str>)],
    now: Timestamp,
) -> Result<Statement, ApiError> {
    let rows: Vec<Value> = events
        .iter()
        .map(|(id, payload)| serde_json::json!({ "id": id.as_str(), "payload": payload }))
        .collect();
    Ok(db
        .scoped(
            tenant,
            "UPDATE webhook_events AS ev SET payload = COALESCE(ev.payload, f.payload), \
             dispatched_us = COALESCE(ev.dispatched_us, ?3) \
             FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.payload') AS payload \
             FROM json_each(?2)) AS f WHERE +ev.business_id = ?1 AND ev.id = f.id \
             AND (ev.dispatched_us IS NULL OR (ev.payload IS NULL AND f.payload IS NOT NULL))",
        )
        .bind(&[text(&serde_json::to_string(&rows)?), number(now.micros())])?)
}

/// The statement that fixes an event's body unless it has one already, and returns the body it
/// keeps: for a delivery whose dispatch did not get to store it.
pub fn keep_payload(
    db: &Db,
    tenant: &Tenant,
    id: &EventId,
    payload: &str,
) -> Result<Read<Option<String>>, ApiError> {
    Ok(Read::new(
        db.scoped(
            tenant,
            "UPDATE webhook_events SET payload = COALESCE(payload, ?3) WHERE business_id = ?1 AND id = ?2 \
             RETURNING payload",
        )
        .bind(&[text(id.as_str()), text(payload)])?,
        read_kept,
    ))
}

/// The body a [`keep_payload`] kept.
fn read_kept(answer: &D1Result) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        payload: Option<String>,
    }
    Ok(db::rows::<Row>(answer)?
        .into_iter()
        .next()
        .and_then(|row| row.payload))
}

/// Events recorded before `before` and never dispatched, across businesses (the sweep's work);
/// at most `limit`, oldest first. An event held back for its message's files is not among them
/// while a file is still pending: it goes out when the last one settles (or the sweep fails it).
pub async fn undispatched(
    db: &Db,
    moving: &Moving,
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
         AND NOT EXISTS ({sql}) AND e.business_id NOT IN (SELECT value FROM json_each(:moving)) \
         ORDER BY e.created_us LIMIT :limit",
        vec![db::attachments::pending_of_subject_sql("e")],
    )
    .bind("moving", moving.param())
    .bind("before", number(before.micros()))
    .bind("limit", number(limit as i64))
    .unscoped(db)?
    .all()
    .await?;
    Ok(result
        .rows::<Row>()?
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
    Ok(result.rows::<Row>()?.into_iter().map(|row| row.id).collect())
}

/// SQL yielding the ids of up to `limit` events, of any business, recorded before `before`,
/// dispatched, and with no delivery pending (the oldest first): history retention may delete.
/// An event never dispatched, or with a delivery still to be made, is never among them.
pub fn expired(moving: &Moving, before: Timestamp, limit: usize) -> Sql {
    Sql::compose(
        "SELECT e.id FROM webhook_events e WHERE e.dispatched_us IS NOT NULL AND e.created_us < :retain_before \
         AND {sql} AND e.business_id NOT IN (SELECT value FROM json_each(:retain_moving)) \
         ORDER BY e.created_us, e.id LIMIT :retain_limit",
        vec![db::webhook_deliveries::none_pending("e.id")],
    )
    .bind("retain_moving", moving.param())
    .bind("retain_before", number(before.micros()))
    .bind("retain_limit", number(limit as i64))
}

/// The statement that deletes the events [`expired`] selects. Run in one batch after
/// [`db::webhook_deliveries::delete_of_events`] over the same selection: both see the same
/// events, since deleting settled deliveries leaves none of them with a pending one.
pub fn delete_expired(
    db: &Db,
    moving: &Moving,
    before: Timestamp,
    limit: usize,
) -> Result<Statement, ApiError> {
    expired(moving, before, limit)
        .within("DELETE FROM webhook_events WHERE id IN ({sql})")
        .unscoped(db)
}

/// The ids of the business's events about the records `subjects` selects (an erasure's).
///
/// The notice `customer.erased` is never one of them: it is about the erasure, which outlives the
/// customer, and a second finish of the same erasure must not take back the first's notice.
pub fn of_subjects(subjects: Sql) -> Sql {
    subjects.within(
        "SELECT id FROM webhook_events WHERE business_id = :business AND subject_id IN ({sql}) \
         AND type <> 'customer.erased'",
    )
}

/// The statement that deletes the business's events about the records `subjects` selects, as
/// [`of_subjects`] finds them: in the batch after their attempts' and deliveries'.
pub fn erase_of_subjects(db: &Db, tenant: &Tenant, subjects: Sql) -> Result<Statement, ApiError> {
    of_subjects(subjects)
        .within("DELETE FROM webhook_events WHERE business_id = :business AND id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{attachments, customers, webhook_deliveries};
    use crate::testing::{Fixture, Must, draft, random};
    use domain::channel::Channel;
    use domain::ids::{AttachmentId, CustomerId};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn the_events_rows_hold_each_events_fields_and_its_detail_as_json_text() {
        let events = [
            NewEvent::new(EventId::generate([1; 16]), EventType::CustomerCreated, "c-1"),
            NewEvent::new(EventId::generate([2; 16]), EventType::MessageSent, "m-\"2\"")
                .with_detail(json!({"status": "sent", "note": "a \"quoted\" word"})),
        ];
        let rows: Value = serde_json::from_str(&event_rows(&events)).must();
        assert_eq!(
            rows,
            json!([
                {"id": EventId::generate([1; 16]).as_str(), "type": "customer.created",
                    "subject_id": "c-1", "detail": null},
                {"id": EventId::generate([2; 16]).as_str(), "type": "message.sent",
                    "subject_id": "m-\"2\"", "detail": r#"{"note":"a \"quoted\" word","status":"sent"}"#},
            ])
        );
        assert_eq!(event_rows(&[]), "[]");
    }

    /// Records `events` under `guard` now: the ids written.
    async fn record_now(
        fixture: &Fixture,
        tenant: &Tenant,
        events: &[NewEvent],
        guard: Guard,
    ) -> Vec<EventId> {
        let statement = record(
            &fixture.db,
            tenant,
            Some("https://edge.test"),
            fixture.now(),
            events,
            guard,
        )
        .must();
        statement.run().await.must()
    }

    fn new_event(kind: EventType, subject: &CustomerId) -> NewEvent {
        NewEvent::new(EventId::generate(random()), kind, subject)
    }

    #[test]
    fn an_event_is_recorded_only_when_someone_listens() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let created = || vec![new_event(EventType::CustomerCreated, &ann)];
            assert!(
                record_now(&fixture, &acme, &created(), Guard::Always)
                    .await
                    .is_empty(),
                "nobody listens"
            );
            fixture.endpoint(&acme, &[EventType::CustomerUpdated]).await;
            assert!(
                record_now(&fixture, &acme, &created(), Guard::Always)
                    .await
                    .is_empty(),
                "another type"
            );
            let off = crate::testing::new_endpoint(fixture.now(), &[EventType::CustomerCreated]);
            let off = crate::db::webhook_endpoints::Endpoint {
                enabled: false,
                ..off
            };
            crate::db::webhook_endpoints::insert(&fixture.db, &fixture.keys(), &acme, &off)
                .await
                .must();
            assert!(
                record_now(&fixture, &acme, &created(), Guard::Always)
                    .await
                    .is_empty(),
                "a disabled endpoint"
            );

            let globex = fixture.business_on("Globex", 0).await;
            fixture.endpoint(&globex, &[EventType::CustomerCreated]).await;
            assert!(
                record_now(&fixture, &acme, &created(), Guard::Always)
                    .await
                    .is_empty(),
                "another business's endpoint"
            );

            let both = vec![
                new_event(EventType::CustomerCreated, &ann),
                new_event(EventType::CustomerUpdated, &ann),
            ];
            let written = record_now(&fixture, &acme, &both, Guard::Always).await;
            assert_eq!(
                written,
                [both[1].id.clone()],
                "only the type an endpoint subscribes to"
            );

            fixture.connector(&acme).await;
            let events = created();
            assert_eq!(
                record_now(&fixture, &acme, &events, Guard::Always).await,
                [events[0].id.clone()],
                "an enabled CRM connector follows every event"
            );
        });
    }

    #[test]
    fn a_guard_keeps_the_events_of_what_did_not_happen_out() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerUpdated]).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let stamp = fixture.now().to_rfc3339();
            let nobody = CustomerId::generate(random());
            let cases = [
                ("a stored subject", Guard::SubjectStored, &ann, true),
                ("a subject never stored", Guard::SubjectStored, &nobody, false),
                (
                    "written at that moment",
                    Guard::SubjectUpdatedAt(stamp.clone()),
                    &ann,
                    true,
                ),
                (
                    "written at another moment",
                    Guard::SubjectUpdatedAt("2020-01-01T00:00:00.000Z".to_owned()),
                    &ann,
                    false,
                ),
                (
                    "a condition that holds",
                    Guard::When(Sql::new("1 = 1")),
                    &nobody,
                    true,
                ),
                (
                    "a condition that fails",
                    Guard::When(customers::exists(&nobody)),
                    &ann,
                    false,
                ),
            ];
            for (description, guard, subject, written) in cases {
                let ids = record_now(
                    &fixture,
                    &acme,
                    &[new_event(EventType::CustomerUpdated, subject)],
                    guard,
                )
                .await;
                assert_eq!(ids.len(), usize::from(written), "{description}");
            }
        });
    }

    #[test]
    fn an_events_snapshot_is_its_record_as_the_batch_left_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerUpdated]).await;
            let ann = fixture.customer(&acme, "Ann").await;
            fixture.stack.advance(Duration::from_secs(1));
            let now = fixture.now();
            let renamed = draft("Ann Byrne");
            let write = customers::PlannedWrite {
                step: 0,
                id: &ann,
                draft: &renamed,
                is_new: false,
                rekeys: false,
            };
            let mut batch = db::Batch::default();
            batch.push(customers::write(&fixture.db, &acme, now, &[write]).must());
            let event = new_event(EventType::CustomerUpdated, &ann).with_detail(json!({"changed": ["name"]}));
            let _ = batch.read(
                record(
                    &fixture.db,
                    &acme,
                    Some("https://edge.test"),
                    now,
                    std::slice::from_ref(&event),
                    Guard::SubjectUpdatedAt(now.to_rfc3339()),
                )
                .must(),
            );
            batch.run(&fixture.db).await.must();
            let stored = load(&fixture.db, &acme, std::slice::from_ref(&event.id))
                .await
                .must();
            assert_eq!(stored.len(), 1);
            let stored = &stored[0];
            assert_eq!(
                (stored.kind.as_str(), stored.subject_id.as_str()),
                ("customer.updated", ann.as_str())
            );
            assert_eq!(stored.detail.as_deref(), Some("{\"changed\":[\"name\"]}"));
            assert_eq!(
                (stored.base_url.as_deref(), stored.payload.as_deref()),
                (Some("https://edge.test"), None)
            );
            assert_eq!(stored.created_us, now.micros());
            let snapshot: serde_json::Value =
                serde_json::from_str(stored.snapshot.as_deref().unwrap_or_default()).must();
            let customer = customers::from_snapshot(snapshot["customer"].clone()).must();
            assert_eq!((customer.id, customer.name.as_str()), (ann, "Ann Byrne"));
            assert_eq!(customer.updated_at, now.to_rfc3339());
        });
    }

    #[test]
    fn an_event_about_what_a_statement_found_is_recorded_only_when_it_found_something() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerUpdated]).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let found = |name: &str| {
                Sql::new("SELECT id AS subject_id, json_object('why', 'test') AS detail FROM customers WHERE business_id = :business AND name = :name")
                    .bind("name", text(name))
            };
            for (name, written) in [("Ann", true), ("Nobody", false)] {
                let id = EventId::generate(random());
                let statement = record_found(&fixture.db, &acme, None, fixture.now(), &id, EventType::CustomerUpdated, found(name)).must();
                let ids = statement.run().await.must();
                assert_eq!(ids.len(), usize::from(written), "{name}");
            }
            let rows = fixture.rows("webhook_events", "created_us");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["subject_id"], json!(ann.as_str()));
            assert_eq!(rows[0]["detail"], json!("{\"why\":\"test\"}"));
            assert!(rows[0]["snapshot"].as_str().is_some_and(|snapshot| snapshot.contains("\"name\":\"Ann\"")));
        });
    }

    #[test]
    fn an_event_that_must_happen_once_is_written_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerUpdated]).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let once = || Guard::When(none_recorded(EventType::CustomerUpdated, &ann));
            assert_eq!(
                record_now(
                    &fixture,
                    &acme,
                    &[new_event(EventType::CustomerUpdated, &ann)],
                    once()
                )
                .await
                .len(),
                1
            );
            assert!(
                record_now(
                    &fixture,
                    &acme,
                    &[new_event(EventType::CustomerUpdated, &ann)],
                    once()
                )
                .await
                .is_empty()
            );
        });
    }

    #[test]
    fn an_events_body_is_fixed_once_and_another_business_never_reads_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let id = fixture
                .event(&acme, EventType::CustomerCreated, ann.as_str())
                .await
                .unwrap_or_else(|| panic!("recorded"));
            let run = |statement: Statement| async { fixture.changes(statement).await };
            let marked = |tenant: &Tenant, payload: Option<&'static str>| {
                dispatched(&fixture.db, tenant, &[(&id, payload)], fixture.now()).must()
            };
            assert_eq!(run(marked(&globex, Some("theirs"))).await, 0);
            assert_eq!(
                run(marked(&acme, None)).await,
                1,
                "dispatched without a body (it could not be built)"
            );
            assert_eq!(run(marked(&acme, None)).await, 0, "nothing to write");
            assert_eq!(run(marked(&acme, Some("first"))).await, 1);
            assert_eq!(
                run(marked(&acme, Some("second"))).await,
                0,
                "retries send the same bytes"
            );
            assert_eq!(
                keep_payload(&fixture.db, &acme, &id, "third")
                    .must()
                    .run()
                    .await
                    .must()
                    .as_deref(),
                Some("first"),
                "a late builder keeps the first body"
            );
            assert!(
                load(&fixture.db, &globex, std::slice::from_ref(&id))
                    .await
                    .must()
                    .is_empty()
            );
            let stored = load(&fixture.db, &acme, std::slice::from_ref(&id)).await.must();
            assert_eq!(stored[0].payload.as_deref(), Some("first"));
            assert_eq!(stored[0].dispatched_us, Some(fixture.now().micros()));
        });
    }

    #[test]
    fn the_sweep_finds_each_shards_undispatched_events_but_those_waiting_for_files() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            for tenant in [&acme, &globex] {
                fixture
                    .endpoint(tenant, &[EventType::CustomerCreated, EventType::MessageReceived])
                    .await;
            }
            let ann = fixture.customer(&acme, "Ann").await;
            let lost = fixture
                .event(&acme, EventType::CustomerCreated, ann.as_str())
                .await;
            let dispatched = fixture
                .event(&acme, EventType::CustomerCreated, ann.as_str())
                .await;
            let theirs = fixture
                .event(
                    &globex,
                    EventType::CustomerCreated,
                    "c0a8d5b6-1f1e-4c3b-9a55-6f7b6f0c1e2d",
                )
                .await;
            let account = fixture.account(&acme, Channel::Whatsapp).await;
            let message = fixture
                .receive(
                    &acme,
                    Channel::Whatsapp,
                    &account,
                    "+353871234567",
                    "photo",
                    "wamid.1",
                )
                .await;
            let message = message.unwrap_or_else(|| panic!("stored"));
            let held = fixture
                .event(&acme, EventType::MessageReceived, message.as_str())
                .await;
            let file = AttachmentId::generate(random());
            let pending = attachments::NewPending {
                id: &file,
                message_id: &message,
                account_id: &account,
                filename: "photo.jpg",
                mime_type: "image/jpeg",
                storage_key: "k",
                source: "{}",
                created_at: &fixture.now().to_rfc3339(),
            };
            fixture
                .db
                .batch(vec![
                    attachments::insert_pending(&fixture.db, &acme, &pending).must(),
                ])
                .await
                .must();
            let dispatched = dispatched.unwrap_or_else(|| panic!("recorded"));
            let statement =
                super::dispatched(&fixture.db, &acme, &[(&dispatched, Some("{}"))], fixture.now()).must();
            fixture.db.batch(vec![statement]).await.must();
            fixture.stack.advance(Duration::from_secs(10));
            let late = fixture
                .event(&acme, EventType::CustomerCreated, ann.as_str())
                .await;

            let before = fixture.now();
            let shards = fixture.db.each_shard();
            let found = undispatched(&shards[0], &Moving::NONE, before, 10).await.must();
            assert_eq!(
                found,
                [(
                    acme.business_id.clone(),
                    lost.clone().unwrap_or_else(|| panic!("recorded"))
                )],
                "not the dispatched, the one held for its file, nor the one recorded since"
            );
            let found = undispatched(&shards[1], &Moving::NONE, before, 10).await.must();
            assert_eq!(
                found.into_iter().map(|(_, id)| Some(id)).collect::<Vec<_>>(),
                [theirs]
            );

            let of_message = undispatched_of_subject(&fixture.db, &acme, &message).await.must();
            assert_eq!(
                of_message.into_iter().map(Some).collect::<Vec<_>>(),
                std::slice::from_ref(&held)
            );
            attachments::settle(&fixture.db, &acme, &file, Err("gone"))
                .await
                .must();
            let found = undispatched(&shards[0], &Moving::NONE, fixture.now().plus_seconds(1), 10)
                .await
                .must();
            let found: Vec<Option<EventId>> = found.into_iter().map(|(_, id)| Some(id)).collect();
            assert_eq!(found, [lost, held, late], "oldest first, once its file settled");
            assert_eq!(
                undispatched(&shards[0], &Moving::NONE, fixture.now().plus_seconds(1), 1)
                    .await
                    .must()
                    .len(),
                1,
                "the limit"
            );
            assert!(
                undispatched_of_subject(&fixture.db, &globex, &message)
                    .await
                    .must()
                    .is_empty()
            );
        });
    }

    #[test]
    fn retention_deletes_dispatched_events_with_their_deliveries_once_none_is_pending() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let mut events = Vec::new();
            for _ in 0..4 {
                events.push(
                    fixture
                        .event(&acme, EventType::CustomerCreated, ann.as_str())
                        .await
                        .unwrap_or_else(|| panic!("recorded")),
                );
            }
            let now = fixture.now();
            let fixed: Vec<(&EventId, Option<&str>)> =
                events[..3].iter().map(|id| (id, Some("{}"))).collect();
            let created = webhook_deliveries::first_due(&fixture.db, &acme, &events[..3])
                .must()
                .run()
                .await
                .must();
            // The first two deliveries settle (dead at once); the third stays pending; the fourth
            // event is never dispatched.
            let mut statements = vec![dispatched(&fixture.db, &acme, &fixed, now).must()];
            for claimed in &created[..2] {
                statements.push(webhook_deliveries::abandon(&fixture.db, &acme, claimed, "gone", now).must());
            }
            statements.push(webhook_deliveries::hand_on(&fixture.db, &acme, &[&created[2]], now).must());
            fixture.db.batch(statements).await.must();
            fixture.stack.advance(Duration::from_secs(60));
            let before = fixture.now();
            let shard = fixture.db.on_shard(0);
            let expire = |limit| {
                let deliveries =
                    webhook_deliveries::delete_of_events(&shard, expired(&Moving::NONE, before, limit))
                        .must();
                let events = delete_expired(&shard, &Moving::NONE, before, limit).must();
                db::write_together(&shard, vec![deliveries, events])
            };
            let results = expire(1).await.must();
            assert_eq!(results, [1, 1], "the oldest, to the limit");
            let results = expire(10).await.must();
            assert_eq!(results, [1, 1]);
            let left: Vec<String> = fixture
                .rows("webhook_events", "created_us")
                .iter()
                .map(|row| row["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            let mut kept = vec![created[2].event_id.to_string(), events[3].to_string()];
            kept.sort();
            let mut left_sorted = left.clone();
            left_sorted.sort();
            assert_eq!(
                left_sorted, kept,
                "a pending delivery keeps its event; an undispatched event stays"
            );
            assert_eq!(fixture.rows("webhook_deliveries", "id").len(), 1);
        });
    }
}
