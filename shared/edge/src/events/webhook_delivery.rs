//! Delivering webhook events: the body each event carries, one signed attempt at an endpoint,
//! and what the attempt means for the delivery and the endpoint.
//!
//! A body is built once per event, when it is first dispatched, from the snapshot its change
//! recorded, then kept: retries and replays send the same bytes.
//! It is written as `JSON.stringify` writes it, so that a receiver that re-serialises the
//! parsed body (the seed's Express example) signs exactly what we signed.

use crate::Env;
use crate::db::webhook_attempts::{AttemptOutcome, AttemptRecord};
use crate::db::webhook_deliveries::{Claimed, Lease, Standing};
use crate::db::webhook_endpoints::{Endpoint, Health};
use crate::db::webhook_events::{StoredEvent, table_of};
use crate::db::{Batch, Db, Statement};
use crate::platform::bounded_fetch::{self, Failure};
use crate::{db, runtime};
use domain::error::ApiError;
use domain::ids::{AttachmentId, DeliveryId, EventId, MessageId};
use domain::media;
use domain::message::Attachment;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::{self, WebhookSecret, to_js_json};
use domain::webhooks::{self, Answer, EventType, LOGGED_BODY_BYTES, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};

/// Download links in events work this long: a receiver that is down for days can still fetch.
pub const LINK_LIFETIME_SECONDS: i64 = 7 * 24 * 3600;
pub const USER_AGENT: &str = "crm-edge-webhooks/1";

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    event: &'a str,
    timestamp: String,
    business_id: &'a str,
    data: Value,
}

/// The body of an event: the seed's envelope (`event`, `timestamp`, `business_id`, `data`)
/// and the event's `id`, as `JSON.stringify` writes it.
pub fn body(
    tenant: &Tenant,
    event_id: &EventId,
    kind: EventType,
    at: Timestamp,
    data: Value,
) -> Result<String, ApiError> {
    let envelope = Envelope {
        id: event_id.as_str(),
        event: kind.as_str(),
        timestamp: at.to_rfc3339(),
        business_id: tenant.business_id.as_str(),
        data,
    };
    let value = serde_json::to_value(&envelope).map_err(|e| ApiError::internal("serialising event", e))?;
    Ok(to_js_json(&value))
}

/// The bodies of a chunk of events: those built, and those that cannot be built (an unknown
/// type, a corrupt snapshot), each with the reason. One of the latter never holds up the rest.
#[derive(Default)]
pub struct Payloads {
    pub built: Vec<(EventId, String)>,
    pub unbuildable: Vec<(EventId, String)>,
}

/// Builds the body of each event that has none yet from its snapshot (the record as its change
/// left it), adding the attachments of message events (`files`: read with the events, in the
/// same round trip; `message.received` is held back until the files received with it are
/// fetched, so they are settled unless the sweep sent the event first, and then they show
/// `pending`) and what the change itself knew (`previous_status`, say). `link_secret` signs the
/// attachments' download links, which work for [`LINK_LIFETIME_SECONDS`] from the event: a body
/// is the same bytes whoever builds it and when (the dispatch, or the claim of a delivery whose
/// dispatch died before keeping it), so the body kept is the body sent.
pub fn payloads(
    tenant: &Tenant,
    events: &[StoredEvent],
    files: &[Attachment],
    link_secret: Option<&[u8]>,
) -> Payloads {
    let mut payloads = Payloads::default();
    for event in events.iter().filter(|event| event.payload.is_none()) {
        let Some(kind) = EventType::parse(&event.kind) else {
            payloads
                .unbuildable
                .push((event.id.clone(), format!("unknown event type {:?}", event.kind)));
            continue;
        };
        match event_body(tenant, event, kind, files, link_secret) {
            Ok(body) => payloads.built.push((event.id.clone(), body)),
            Err(error) => payloads.unbuildable.push((
                event.id.clone(),
                format!(
                    "the event's body could not be built: {}",
                    error.detail().unwrap_or(&error.body.message)
                ),
            )),
        }
    }
    payloads
}

/// One event's body: its snapshot, its attachments (message events) and its detail, and a
/// message event's fields at the top of `data` as the core guide's receiver reads them.
fn event_body(
    tenant: &Tenant,
    event: &StoredEvent,
    kind: EventType,
    files: &[Attachment],
    link_secret: Option<&[u8]>,
) -> Result<String, ApiError> {
    let at = Timestamp::from_micros(event.created_us);
    let mut data = snapshot_data(event)?;
    if table_of(kind) == "messages" {
        let linked: Vec<Value> = files
            .iter()
            .filter(|file| file.message_id.as_ref().map(MessageId::as_str) == Some(event.subject_id.as_str()))
            .map(|file| {
                let mut file = file.clone();
                file.download_url = signed_link(tenant, event.base_url.as_deref(), link_secret, &file.id, at);
                // The guide's payload names the file's link `url` as well as `download_url`; both
                // are the signed link, which works without an API key until it expires.
                let mut shown = to_value(&file)?;
                if let (Value::Object(fields), Some(link)) = (&mut shown, &file.download_url) {
                    fields.insert("url".to_owned(), Value::String(link.clone()));
                }
                Ok::<_, ApiError>(shown)
            })
            .collect::<Result<_, _>>()?;
        data.insert("attachments".to_owned(), Value::Array(linked));
    }
    if let Some(Value::Object(detail)) = event.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()) {
        data.extend(detail);
    }
    if table_of(kind) == "messages" {
        webhooks::with_flat_message_fields(&mut data);
    }
    body(tenant, &event.id, kind, at, Value::Object(data))
}

/// The event's snapshot with each record in the shape the API gives it.
fn snapshot_data(event: &StoredEvent) -> Result<Map<String, Value>, ApiError> {
    let gone = || ApiError::internal("building event", format!("event {} has no snapshot", event.id));
    let Some(Value::Object(snapshot)) = event
        .snapshot
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
    else {
        return Err(gone());
    };
    let mut data = Map::new();
    for (name, raw) in snapshot {
        let value = match (name.as_str(), raw) {
            (_, Value::Null) => Value::Null,
            ("customer", raw) => to_value(&db::customers::from_snapshot(raw)?)?,
            ("message", raw) => to_value(&db::messages::from_snapshot(raw)?)?,
            ("conversation", raw) => to_value(&db::conversations::from_snapshot(raw)?)?,
            ("alert", raw) => to_value(&db::alerts::from_snapshot(raw)?)?,
            (_, raw) => raw,
        };
        data.insert(name, value);
    }
    Ok(data)
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal("serialising event data", e))
}

/// A download link for the attachment, signed to work for [`LINK_LIFETIME_SECONDS`] from `now`;
/// None without an origin or a signing secret.
pub fn signed_link(
    tenant: &Tenant,
    base_url: Option<&str>,
    secret: Option<&[u8]>,
    attachment_id: &AttachmentId,
    now: Timestamp,
) -> Option<String> {
    let (base_url, secret) = (base_url?, secret?);
    let query = media::signed_query(
        secret,
        &tenant.business_id,
        attachment_id,
        now.seconds() + LINK_LIFETIME_SECONDS,
    );
    Some(format!(
        "{}/api/download-media?{query}",
        base_url.trim_end_matches('/')
    ))
}

/// What one attempt came to, as the log records it.
pub struct Attempted {
    pub answer: Answer,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub millis: u64,
}

impl Attempted {
    /// The answer in a few words, for logs and reasons.
    pub fn describe(&self) -> String {
        match (&self.status_code, &self.error) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// POSTs the body to the endpoint, signed with its current secrets at `now`, the seed header
/// with `seed_secret`.
pub async fn send(
    env: &Env,
    endpoint: &Endpoint,
    seed_secret: &WebhookSecret,
    event_id: &EventId,
    kind: &str,
    body: &str,
    now: Timestamp,
) -> Attempted {
    let signed = webhook_signing::sign(
        seed_secret,
        &endpoint.signing_secrets(now),
        event_id.as_str(),
        now.seconds(),
        body,
    );
    let timestamp = signed.timestamp.to_string();
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("user-agent", USER_AGENT.to_owned()),
        ("x-webhook-event", kind.to_owned()),
        ("x-webhook-timestamp", timestamp.clone()),
        ("x-webhook-signature", signed.x_webhook_signature),
        ("webhook-id", signed.webhook_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signed.webhook_signature),
    ];
    let timeout_ms = u64::from(endpoint.timeout_seconds) * 1000;
    let exchange = bounded_fetch::post(
        env,
        &endpoint.url,
        &headers,
        body.as_bytes(),
        timeout_ms,
        LOGGED_BODY_BYTES,
    )
    .await;
    match exchange.result {
        Ok(reply) => Attempted {
            status_code: Some(reply.status),
            response_body: Some(webhooks::truncate_for_log(&reply.body)),
            error: None,
            millis: exchange.millis,
            answer: Answer::Status {
                code: reply.status,
                retry_after: reply
                    .retry_after
                    .as_deref()
                    .and_then(|value| domain::retry_after::seconds(value, now)),
            },
        },
        Err(Failure::TimedOut) => Attempted {
            answer: Answer::TimedOut,
            status_code: None,
            response_body: None,
            error: Some(format!(
                "timed out: no answer within {} s",
                endpoint.timeout_seconds
            )),
            millis: exchange.millis,
        },
        Err(Failure::Unreachable(error)) => Attempted {
            answer: Answer::Unreachable,
            status_code: None,
            response_body: None,
            error: Some(format!("connection failed: {error}")),
            millis: exchange.millis,
        },
    }
}

/// Makes the claimed attempt at `endpoint` (None: it was deleted) and records it. Returns the
/// outcome (a retry says when).
pub async fn attempt(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    endpoint: Option<&Endpoint>,
    now: Timestamp,
) -> Result<AttemptOutcome, ApiError> {
    let (outcome, record) = attempt_unrecorded(env, db, tenant, claimed, endpoint, now).await?;
    if !record.is_empty() {
        db.batch(record).await?;
    }
    Ok(outcome)
}

/// [`attempt`], leaving its record to the caller: the outcome, and the statements that record it
/// (see [`record_statements`]), to commit in one batch with other attempts' (a dispatch records
/// the first attempts that ended together in one round trip).
pub async fn attempt_unrecorded(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    endpoint: Option<&Endpoint>,
    now: Timestamp,
) -> Result<(AttemptOutcome, Vec<Statement>), ApiError> {
    let Some(endpoint) = endpoint else {
        return Ok((AttemptOutcome::Dead, Vec::new()));
    };
    let Some(body) = claimed.payload.as_deref() else {
        return Err(ApiError::internal(
            "attempting a delivery",
            format!("the body of event {} is not fixed", claimed.event_id),
        ));
    };
    let mut record = AttemptRecord {
        endpoint_id: &endpoint.id,
        delivery_id: Some(&claimed.delivery_id),
        event_id: &claimed.event_id,
        event_type: &claimed.event_type,
        attempt: claimed.attempt,
        replay: claimed.replay,
        url: &endpoint.url,
        status_code: None,
        response_body: None,
        duration_ms: 0,
        error: None,
        outcome: AttemptOutcome::Dead,
        at: now,
    };
    if !endpoint.enabled {
        // The business turned the endpoint off, or it was disabled for failing: no attempt is
        // made, and the delivery waits among the dead for a replay once it is enabled again.
        let reason = "not sent: the endpoint is disabled";
        let abandon = db::webhook_deliveries::abandon(db, tenant, claimed, reason, now)?;
        return Ok((AttemptOutcome::Dead, vec![abandon]));
    }
    let seed_secret = endpoint.seed_secret(now, claimed.attempt);
    let attempted = send(
        env,
        endpoint,
        seed_secret,
        &claimed.event_id,
        &claimed.event_type,
        body,
        now,
    )
    .await;
    let finished = Timestamp::from_millis(now.millis() + attempted.millis.min(i64::MAX as u64) as i64);
    let signed_with_previous = seed_secret != &endpoint.secret;
    let outcome = match webhooks::verdict(
        &attempted.answer,
        claimed.attempt,
        endpoint.retry_schedule,
        signed_with_previous,
    ) {
        Verdict::Delivered => AttemptOutcome::Delivered,
        Verdict::RetryIn(seconds) => AttemptOutcome::Retrying {
            next: finished.plus_seconds(i64::from(seconds)),
        },
        Verdict::DeadLetter => AttemptOutcome::Dead,
    };
    let health = health_after(endpoint, &outcome, &attempted, finished);
    record.status_code = attempted.status_code;
    record.response_body = attempted.response_body.as_deref();
    record.error = attempted.error.as_deref();
    record.duration_ms = attempted.millis;
    record.outcome = outcome;
    let confirms = confirms_new_secret(endpoint, seed_secret, outcome);
    let statements = record_statements(db, tenant, &record, Some(claimed), &health, confirms)?;
    Ok((outcome, statements))
}

/// Whether an attempt accepted with the seed header signed by `seed_secret` shows that the
/// receiver has the endpoint's new secret, which it was not known to have.
pub fn confirms_new_secret(
    endpoint: &Endpoint,
    seed_secret: &WebhookSecret,
    outcome: AttemptOutcome,
) -> bool {
    outcome == AttemptOutcome::Delivered && !endpoint.seed_signs_new && seed_secret == &endpoint.secret
}

/// Logs the attempt, settles the delivery `claimed` for it if any (under its lease, only while
/// it is still pending under it: a late result cannot undo a later one, and delivered is final;
/// a first attempt's, by giving it a row unless it was delivered), updates the endpoint's health
/// and, when `confirms_new_secret`, records that the receiver holds the new secret, in one
/// transaction.
pub async fn record_attempt(
    db: &Db,
    tenant: &Tenant,
    record: &AttemptRecord<'_>,
    claimed: Option<&Claimed>,
    health: &Health,
    confirms_new_secret: bool,
) -> Result<(), ApiError> {
    let statements = record_statements(db, tenant, record, claimed, health, confirms_new_secret)?;
    db.batch(statements).await?;
    Ok(())
}

/// The statements of [`record_attempt`], for a caller's batch.
pub fn record_statements(
    db: &Db,
    tenant: &Tenant,
    record: &AttemptRecord<'_>,
    claimed: Option<&Claimed>,
    health: &Health,
    confirms_new_secret: bool,
) -> Result<Vec<Statement>, ApiError> {
    let mut statements = vec![db::webhook_attempts::insert(db, tenant, record)?];
    if confirms_new_secret {
        statements.push(db::webhook_endpoints::confirm_new_secret(
            db,
            tenant,
            record.endpoint_id,
        )?);
    }
    if let Some(claimed) = claimed {
        let (status, next) = match record.outcome {
            AttemptOutcome::Delivered => ("delivered", None),
            AttemptOutcome::Retrying { next } => ("pending", Some(next)),
            AttemptOutcome::Dead => ("dead", None),
        };
        let standing = Standing {
            status,
            attempts: record.attempt,
            next,
            last_status: record.status_code,
            last_error: record.error,
            at: record.at,
        };
        statements.extend(db::webhook_deliveries::settle(db, tenant, claimed, &standing)?);
    }
    if let Some(update) =
        db::webhook_endpoints::health_update(db, tenant, record.endpoint_id, health, record.at)?
    {
        statements.push(update);
    }
    Ok(statements)
}

/// A success heals the endpoint; a failure starts or continues its failing period, and one that
/// ends a period longer than the endpoint allows disables it, saying why.
fn health_after(
    endpoint: &Endpoint,
    outcome: &AttemptOutcome,
    attempted: &Attempted,
    now: Timestamp,
) -> Health {
    if *outcome == AttemptOutcome::Delivered {
        return Health::Healthy;
    }
    let since = endpoint.failing_since_us.unwrap_or(now.micros());
    if webhooks::should_disable(since, now.micros(), endpoint.disable_after_seconds) {
        Health::Disable(format!(
            "disabled at {}: every delivery since {} failed (allowed: {} s; last answer: {}); \
             fix the receiver, then enable the endpoint and replay its dead deliveries",
            now.to_rfc3339(),
            Timestamp::from_micros(since).to_rfc3339(),
            endpoint.disable_after_seconds,
            attempted.describe()
        ))
    } else {
        Health::Failing
    }
}

/// A dispatch under way: its events read, the first attempts they are due (each known by its
/// delivery's id: nothing is written before a first attempt) and their bodies built, in one
/// round trip; left to do are the attempts, each batch of them recorded with the events it
/// settles ([`Dispatch::settling`] of [`Dispatch::completed_by`]), and [`Dispatch::finish`] for
/// the rest.
pub struct Dispatch {
    pub events: Vec<StoredEvent>,
    /// The business's enabled CRM connectors, which follow every event.
    pub connectors: Vec<db::crm_connectors::Enabled>,
    /// The first attempts to make, each with its endpoint and the body it sends.
    pub due: Vec<(Claimed, Option<Endpoint>)>,
    /// The bodies built now, and the events whose body cannot be built.
    pub payloads: Payloads,
    /// The deliveries of events whose body cannot be built, with why: dead without an attempt.
    doomed: Vec<(Claimed, String)>,
    now: Timestamp,
}

/// Reads the events among `event_ids` (with the files their message events list, the business's
/// enabled CRM connectors, its endpoints, and the first attempts the events are due: one per
/// event and subscribed enabled endpoint that neither has a delivery row nor logged an attempt),
/// in one batch that writes nothing; then builds the bodies not fixed yet. A repeated dispatch
/// attempts nothing twice that was recorded. Nothing is marked dispatched yet: should the
/// dispatch end before its attempts are recorded, the sweep dispatches the events again.
pub async fn dispatch(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    event_ids: &[EventId],
    link_secret: Option<&[u8]>,
    now: Timestamp,
) -> Result<Dispatch, ApiError> {
    let mut batch = Batch::default();
    let events = batch.read(db::webhook_events::load_statement(db, tenant, event_ids)?);
    let files = batch.read(db::attachments::of_messages_among(
        db,
        tenant,
        db::webhook_events::message_subjects(event_ids),
    )?);
    let connectors = batch.read(db::crm_connectors::enabled_read(db, tenant));
    let endpoints = batch.read(db::webhook_endpoints::list_read(db, tenant));
    let first = batch.read(db::webhook_deliveries::first_due(db, tenant, event_ids)?);
    let answers = batch.run(db).await?;
    let events = answers.take(events)?;
    let files = answers.take(files)?;
    let connectors = answers.take(connectors)?;
    let endpoints = db::webhook_endpoints::listed(db, keys, tenant, answers.take(endpoints)?).await?;
    let first = answers.take(first)?;
    let payloads = payloads(tenant, &events, &files, link_secret);
    let mut due = Vec::with_capacity(first.len());
    let mut doomed = Vec::new();
    for mut claimed in first {
        // The body kept with the event, else the one built now.
        claimed.payload = events
            .iter()
            .find(|event| event.id == claimed.event_id)
            .and_then(|event| event.payload.clone())
            .or_else(|| {
                payloads
                    .built
                    .iter()
                    .find(|(id, _)| *id == claimed.event_id)
                    .map(|(_, body)| body.clone())
            });
        if claimed.payload.is_some() {
            let endpoint = endpoints.iter().find(|e| e.id == claimed.endpoint_id).cloned();
            due.push((claimed, endpoint));
            continue;
        }
        let reason = payloads
            .unbuildable
            .iter()
            .find(|(id, _)| *id == claimed.event_id)
            .map_or("the event's body could not be built", |(_, reason)| {
                reason.as_str()
            })
            .to_owned();
        doomed.push((claimed, reason));
    }
    Ok(Dispatch {
        events,
        connectors,
        due,
        payloads,
        doomed,
        now,
    })
}

/// How often `id` is among `ids`.
fn count(ids: &[&EventId], id: &EventId) -> usize {
    ids.iter().filter(|other| **other == id).count()
}

impl Dispatch {
    /// The events that recording `recording` (events, one per first attempt) settles, `recorded`
    /// being recorded before: those whose every first attempt is then recorded. An event is
    /// settled with its last first attempt, not before: should the dispatch end between its
    /// attempts, it is still the sweep's to dispatch again.
    pub fn completed_by<'a>(&self, recorded: &[&EventId], recording: &[&'a EventId]) -> Vec<&'a EventId> {
        let mut completed: Vec<&EventId> = Vec::new();
        for &id in recording {
            if !completed.contains(&id)
                && count(recorded, id) + count(recording, id) == self.first_attempts_of(id)
            {
                completed.push(id);
            }
        }
        completed
    }

    /// How many first attempts the event `id` is due in this dispatch.
    fn first_attempts_of(&self, id: &EventId) -> usize {
        self.due
            .iter()
            .filter(|(claimed, _)| claimed.event_id == *id)
            .count()
    }

    /// The statement that fixes the bodies built for `event_ids` and marks them dispatched,
    /// unless every one of them is both already; for the batch that records a first attempt.
    pub fn settling(
        &self,
        db: &Db,
        tenant: &Tenant,
        event_ids: &[&EventId],
    ) -> Result<Option<Statement>, ApiError> {
        let unsettled: Vec<(&EventId, Option<&str>)> = self
            .events
            .iter()
            .filter(|event| event_ids.contains(&&event.id))
            .filter(|event| event.payload.is_none() || event.dispatched_us.is_none())
            .map(|event| (&event.id, self.built(&event.id)))
            .collect();
        if unsettled.is_empty() {
            return Ok(None);
        }
        db::webhook_events::dispatched(db, tenant, &unsettled, self.now).map(Some)
    }

    fn built(&self, event_id: &EventId) -> Option<&str> {
        self.payloads
            .built
            .iter()
            .find(|(id, _)| id == event_id)
            .map(|(_, body)| body.as_str())
    }

    /// Settles, in one batch, what the batches of first attempts did not: the events that had
    /// none to make (no subscribed endpoint, an unbuildable body, every one made already) or some
    /// `handed_on` to tasks of their own (given their rows here, pending, for those tasks to
    /// claim), and the deliveries of events whose body cannot be built (dead, saying why, so
    /// each endpoint's dead-letter list shows them). Events with a first attempt `unrecorded`
    /// (not made, or its batch failed) are left for the sweep to dispatch again. Nothing to
    /// settle, no round trip.
    pub async fn finish(
        &self,
        db: &Db,
        tenant: &Tenant,
        recorded: &[&EventId],
        unrecorded: &[&EventId],
        handed_on: &[&Claimed],
    ) -> Result<(), ApiError> {
        let rest: Vec<&EventId> = self
            .events
            .iter()
            .map(|event| &event.id)
            .filter(|id| !unrecorded.contains(id))
            .filter(|id| {
                let due = self.first_attempts_of(id);
                due == 0 || count(recorded, id) < due
            })
            .collect();
        let mut statements: Vec<Statement> = self.settling(db, tenant, &rest)?.into_iter().collect();
        for (claimed, reason) in &self.doomed {
            statements.push(db::webhook_deliveries::abandon(
                db, tenant, claimed, reason, self.now,
            )?);
        }
        if !handed_on.is_empty() {
            statements.push(db::webhook_deliveries::hand_on(db, tenant, handed_on, self.now)?);
        }
        if !statements.is_empty() {
            db.batch(statements).await?;
        }
        Ok(())
    }
}

/// Takes the lease on a delivery for attempt `attempt` (see `webhook_deliveries::claim`), with
/// the endpoint it goes to; None when it is not this worker's to attempt.
pub async fn claim(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    delivery_id: &DeliveryId,
    attempt: u32,
    now: Timestamp,
) -> Result<Option<(Claimed, Option<Endpoint>)>, ApiError> {
    let lease = Lease {
        token: hex::encode(runtime::random::<16>()?),
        until: now.plus_seconds(webhooks::LEASE_SECONDS),
    };
    let Some(claimed) = db::webhook_deliveries::claim(db, tenant, delivery_id, attempt, now, &lease).await?
    else {
        return Ok(None);
    };
    let endpoint = db::webhook_endpoints::find(db, keys, tenant, &claimed.endpoint_id).await?;
    Ok(Some((claimed, endpoint)))
}

/// A claimed delivery with its event's body: as claimed when the body is fixed; otherwise (its
/// dispatch ended between claiming the delivery and storing the body) the body is built now and
/// kept, unless another worker kept one first, whose bytes are then sent. None when the body
/// cannot be built: the delivery is then dead, saying why.
pub async fn with_body(
    db: &Db,
    tenant: &Tenant,
    claimed: Claimed,
    link_secret: Option<&[u8]>,
    now: Timestamp,
) -> Result<Option<Claimed>, ApiError> {
    if claimed.payload.is_some() {
        return Ok(Some(claimed));
    }
    let ids = std::slice::from_ref(&claimed.event_id);
    let mut batch = Batch::default();
    let events = batch.read(db::webhook_events::load_statement(db, tenant, ids)?);
    let files = batch.read(db::attachments::of_messages_among(
        db,
        tenant,
        db::webhook_events::message_subjects(ids),
    )?);
    let answers = batch.run(db).await?;
    let events = answers.take(events)?;
    let files = answers.take(files)?;
    if let Some(stored) = events.iter().find_map(|event| event.payload.clone()) {
        return Ok(Some(Claimed {
            payload: Some(stored),
            ..claimed
        }));
    }
    let payloads = payloads(tenant, &events, &files, link_secret);
    if let Some((_, body)) = payloads.built.first() {
        let statement = db::webhook_events::keep_payload(db, tenant, &claimed.event_id, body)?;
        let kept = statement.run().await?;
        return Ok(Some(Claimed {
            payload: kept.or_else(|| Some(body.clone())),
            ..claimed
        }));
    }
    let reason = payloads
        .unbuildable
        .first()
        .map_or("the event is gone", |(_, reason)| reason.as_str());
    db.batch(vec![db::webhook_deliveries::abandon(
        db, tenant, &claimed, reason, now,
    )?])
    .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::Reply;
    use crate::testing::{Due, Fixture, MEDIA_LINK_SECRET};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use std::time::Duration;

    const HOOKS: &str = "hooks.acme.example";
    const URL: &str = "https://hooks.acme.example/in";
    const OTHER: &str = "https://other.acme.example/in";

    fn hmac_sha256(key: &[u8], message: &str) -> Vec<u8> {
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|error| panic!("{error}"));
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Attempt `number` of `delivery` leased now; the test fails when it is not ours to make.
    async fn claim_attempt(fixture: &Fixture, tenant: &Tenant, delivery: &DeliveryId, number: u32) -> Due {
        claim(
            &fixture.db,
            &fixture.keys(),
            tenant,
            delivery,
            number,
            runtime::now(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
        .unwrap_or_else(|| panic!("attempt {number} is ours"))
    }

    /// A business whose first endpoint takes `customer.created` and whose second only
    /// `message.received`, and one customer created: one event.
    async fn customer_created(fixture: &Fixture) -> (Tenant, Endpoint) {
        let tenant = fixture.business("Acme").await;
        let endpoint = fixture
            .webhook_endpoint(&tenant, URL, &[EventType::CustomerCreated])
            .await;
        fixture
            .webhook_endpoint(&tenant, OTHER, &[EventType::MessageReceived])
            .await;
        fixture
            .customers(
                &tenant,
                json!([{ "name": "Zoë </script>", "email": "zoe@example.com" }]),
            )
            .await;
        (tenant, endpoint)
    }

    #[test]
    fn a_body_is_written_as_json_stringify_writes_it() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        let event_id =
            EventId::parse("0b5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f").unwrap_or_else(|| panic!("an id"));
        let data = json!({
            "amount": 1.0,
            "big": 1e21,
            "small": 0.000001,
            "name": "Zoë \"Z\" </script>\u{2028}\n",
            "10": "an index key",
            "2": "comes first",
        });
        let body = body(
            &tenant,
            &event_id,
            EventType::CustomerCreated,
            Timestamp::from_millis(1_795_694_400_000),
            data,
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            body,
            format!(
                "{{\"business_id\":\"{}\",\"data\":{{\"2\":\"comes first\",\"10\":\"an index key\",\"amount\":1,\"big\":1e+21,\
                 \"name\":\"Zoë \\\"Z\\\" </script>\u{2028}\\n\",\"small\":0.000001}},\"event\":\"customer.created\",\
                 \"id\":\"0b5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f\",\"timestamp\":\"2026-11-26T12:00:00.000Z\"}}",
                tenant.business_id
            )
        );
    }

    #[test]
    fn an_event_goes_to_the_enabled_endpoints_subscribed_to_it_and_only_once() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(200, "ok"));
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            let disabled = fixture
                .webhook_endpoint(
                    &tenant,
                    "https://off.acme.example/in",
                    &[EventType::CustomerCreated],
                )
                .await;
            fixture.execute(
                "UPDATE webhook_endpoints SET enabled = 0 WHERE id = ?1",
                &[disabled.id.as_str()],
            );
            let ids = fixture.event_ids();
            assert_eq!(ids.len(), 1);
            let due = fixture.dispatch(&tenant, &ids).await;
            let to: Vec<&domain::ids::EndpointId> =
                due.iter().map(|(claimed, _)| &claimed.endpoint_id).collect();
            assert_eq!(to, vec![&endpoint.id]);
            assert_eq!(fixture.attempt(&tenant, &due[0]).await, AttemptOutcome::Delivered);
            assert!(
                fixture.dispatch(&tenant, &ids).await.is_empty(),
                "a repeated dispatch attempts nothing twice"
            );
            assert_eq!(fixture.stack.calls_to(HOOKS).len(), 1);
            let events = fixture.rows("webhook_events", "id");
            assert!(events[0]["dispatched_us"].is_i64(), "{events:?}");
        });
    }

    #[test]
    fn one_attempt_posts_the_kept_body_signed_both_ways_and_a_2xx_delivers_it() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(204, ""));
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            assert_eq!(fixture.attempt(&tenant, &due[0]).await, AttemptOutcome::Delivered);
            let calls = fixture.stack.calls_to(HOOKS);
            assert_eq!(calls.len(), 1);
            let call = &calls[0];
            assert_eq!((call.method.as_str(), call.url.as_str()), ("POST", URL));
            assert_eq!(Some(call.text()), due[0].0.payload, "the body fixed at dispatch");
            let body = call.json();
            assert_eq!(body["event"], "customer.created");
            assert_eq!(body["id"], due[0].0.event_id.as_str());
            assert_eq!(body["business_id"], tenant.business_id.as_str());
            assert_eq!(body["data"]["customer"]["name"], "Zoë </script>");
            assert_eq!(body["data"]["customer"]["email"], "zoe@example.com");
            let timestamp = (fixture.stack.now_ms() / 1000).to_string();
            assert_eq!(call.header("content-type"), Some("application/json"));
            assert_eq!(call.header("user-agent"), Some(USER_AGENT));
            assert_eq!(call.header("x-webhook-event"), Some("customer.created"));
            assert_eq!(call.header("webhook-id"), Some(due[0].0.event_id.as_str()));
            assert_eq!(call.header("webhook-timestamp"), Some(timestamp.as_str()));
            assert_eq!(call.header("x-webhook-timestamp"), Some(timestamp.as_str()));
            let secret = endpoint.secret.as_str();
            let key = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            let signed = format!("{}.{timestamp}.{}", due[0].0.event_id, call.text());
            assert_eq!(
                call.header("webhook-signature"),
                Some(format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed))).as_str())
            );
            assert_eq!(
                call.header("x-webhook-signature"),
                Some(
                    hex::encode(hmac_sha256(
                        secret.as_bytes(),
                        &format!("{timestamp}.{}", call.text())
                    ))
                    .as_str()
                )
            );
            assert!(
                fixture.rows("webhook_deliveries", "id").is_empty(),
                "delivered at its first attempt: no row but the attempt's"
            );
            let listed = db::webhook_deliveries::list(&fixture.db, &tenant, &endpoint.id, None, 10)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(listed.len(), 1);
            assert_eq!(
                (
                    &listed[0].id,
                    listed[0].status.as_str(),
                    listed[0].attempts,
                    listed[0].last_status
                ),
                (&due[0].0.delivery_id, "delivered", 1, Some(204))
            );
            let attempts = fixture.rows("webhook_attempts", "id");
            assert_eq!(attempts.len(), 1);
            assert_eq!(
                (
                    attempts[0]["outcome"].as_str(),
                    attempts[0]["status_code"].as_i64()
                ),
                (Some("delivered"), Some(204))
            );
        });
    }

    #[test]
    fn a_failure_worth_retrying_is_scheduled_by_the_endpoints_schedule_or_its_retry_after() {
        let cases = [
            (Reply::text(503, "down"), 2, "a 5xx: the schedule's first wait"),
            (
                Reply::text(429, "slow").header("retry-after", "120"),
                120,
                "a 429 asks for longer",
            ),
            (
                Reply::text(500, "oops").header("retry-after", "1"),
                2,
                "a shorter Retry-After does not hurry it",
            ),
            (Reply::refused(), 2, "unreachable"),
        ];
        for (reply, wait_seconds, description) in cases {
            let fixture = Fixture::new();
            fixture.stack.partner(HOOKS, move |_| reply.clone());
            fixture.run(async {
                let (tenant, _) = customer_created(&fixture).await;
                let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
                let now = runtime::now();
                let outcome = fixture.attempt(&tenant, &due[0]).await;
                assert_eq!(
                    outcome,
                    AttemptOutcome::Retrying {
                        next: now.plus_seconds(wait_seconds)
                    },
                    "{description}"
                );
                let deliveries = fixture.rows("webhook_deliveries", "id");
                assert_eq!(deliveries[0]["status"], "pending", "{description}");
                assert_eq!(
                    deliveries[0]["next_attempt_us"].as_i64(),
                    Some(now.plus_seconds(wait_seconds).micros()),
                    "{description}"
                );
                let endpoints = fixture.rows("webhook_endpoints", "created_at");
                assert_eq!(
                    endpoints[0]["failing_since_us"].as_i64(),
                    Some(now.micros()),
                    "{description}"
                );
            });
        }
    }

    #[test]
    fn a_refused_connection_is_logged_with_its_error_and_retried() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let first = fixture.attempt(&tenant, &due[0]).await;
            let AttemptOutcome::Retrying { next } = first else {
                panic!("{first:?}");
            };
            fixture.stack.advance(Duration::from_millis(
                (next.millis() - fixture.stack.now_ms()) as u64,
            ));
            let second = claim_attempt(&fixture, &tenant, &due[0].0.delivery_id, 2).await;
            assert!(matches!(
                fixture.attempt(&tenant, &second).await,
                AttemptOutcome::Retrying { .. }
            ));
            let attempts = fixture.rows("webhook_attempts", "id");
            let log: Vec<(Option<i64>, bool, Option<&str>)> = attempts
                .iter()
                .map(|row| {
                    (
                        row["attempt"].as_i64(),
                        row["status_code"].is_null(),
                        row["outcome"].as_str(),
                    )
                })
                .collect();
            assert_eq!(
                log,
                vec![
                    (Some(1), true, Some("retrying")),
                    (Some(2), true, Some("retrying"))
                ]
            );
            for row in &attempts {
                let error = row["error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with("connection failed: ") && error.contains("refused"),
                    "{error}"
                );
            }
            let at: Vec<i64> = attempts
                .iter()
                .filter_map(|row| row["attempted_us"].as_i64())
                .collect();
            assert_eq!(at[1] - at[0], 2_000_000, "the retry waits the schedule's 2 s");
        });
    }

    #[test]
    fn a_partner_that_never_answers_times_out_at_the_endpoints_timeout() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::never());
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let started = fixture.stack.now_ms();
            let outcome = fixture.attempt(&tenant, &due[0]).await;
            assert!(matches!(outcome, AttemptOutcome::Retrying { .. }), "{outcome:?}");
            assert_eq!(fixture.stack.now_ms() - started, 15_000);
            let attempts = fixture.rows("webhook_attempts", "id");
            assert_eq!(attempts[0]["error"], "timed out: no answer within 15 s");
            assert_eq!(attempts[0]["duration_ms"], 15_000);
            let deliveries = fixture.rows("webhook_deliveries", "id");
            assert_eq!(deliveries[0]["last_error"], "timed out: no answer within 15 s");
        });
    }

    #[test]
    fn a_refusal_or_a_redirect_is_not_retried_and_the_last_retry_dead_letters_the_delivery() {
        let cases = [
            (Reply::text(400, "who are you"), 400, "400 Bad Request"),
            (Reply::text(410, "gone"), 410, "410 Gone"),
            (
                Reply::status(301).header("location", "https://elsewhere.example/in"),
                301,
                "a redirect, which is not followed",
            ),
        ];
        for (reply, status, description) in cases {
            let fixture = Fixture::new();
            fixture.stack.partner(HOOKS, move |_| reply.clone());
            fixture.run(async {
                let (tenant, _) = customer_created(&fixture).await;
                let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
                assert_eq!(
                    fixture.attempt(&tenant, &due[0]).await,
                    AttemptOutcome::Dead,
                    "{description}"
                );
                let deliveries = fixture.rows("webhook_deliveries", "id");
                assert_eq!(
                    (
                        deliveries[0]["status"].as_str(),
                        deliveries[0]["attempts"].as_i64(),
                        deliveries[0]["last_status"].as_i64()
                    ),
                    (Some("dead"), Some(1), Some(i64::from(status))),
                    "{description}"
                );
                let attempts = fixture.rows("webhook_attempts", "id");
                let log: Vec<(Option<i64>, Option<i64>, Option<&str>)> = attempts
                    .iter()
                    .map(|row| {
                        (
                            row["attempt"].as_i64(),
                            row["status_code"].as_i64(),
                            row["outcome"].as_str(),
                        )
                    })
                    .collect();
                assert_eq!(
                    log,
                    vec![(Some(1), Some(i64::from(status)), Some("dead"))],
                    "{description}"
                );
                assert!(
                    fixture.stack.calls_to("elsewhere.example").is_empty(),
                    "{description}"
                );
            });
        }
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(500, "still down"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let delivery = due[0].0.delivery_id.clone();
            let mut outcomes = vec![fixture.attempt(&tenant, &due[0]).await];
            for number in 2..=4 {
                let AttemptOutcome::Retrying { next } = outcomes[outcomes.len() - 1] else {
                    panic!("{outcomes:?}");
                };
                fixture.stack.advance(Duration::from_millis(
                    (next.millis() - fixture.stack.now_ms()) as u64,
                ));
                let claimed = claim_attempt(&fixture, &tenant, &delivery, number).await;
                outcomes.push(fixture.attempt(&tenant, &claimed).await);
            }
            assert_eq!(outcomes[3], AttemptOutcome::Dead, "{outcomes:?}");
            assert_eq!(
                fixture.stack.calls_to(HOOKS).len(),
                4,
                "the first try and the schedule's three retries"
            );
            let deliveries = fixture.rows("webhook_deliveries", "id");
            assert_eq!(
                (
                    deliveries[0]["status"].as_str(),
                    deliveries[0]["attempts"].as_i64()
                ),
                (Some("dead"), Some(4))
            );
        });
    }

    /// A dispatch's first round trip alone (the events and the first attempts they are due read,
    /// the bodies built), as a worker that dies before anything after it leaves it.
    async fn first_round_trip(
        fixture: &Fixture,
        tenant: &Tenant,
        ids: &[EventId],
        link_secret: Option<&[u8]>,
    ) -> Dispatch {
        dispatch(
            &fixture.db,
            &fixture.keys(),
            tenant,
            ids,
            link_secret,
            runtime::now(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// The claimed delivery with its body, which must be one that can be built.
    async fn built(
        fixture: &Fixture,
        tenant: &Tenant,
        claimed: Claimed,
        link_secret: Option<&[u8]>,
    ) -> Claimed {
        with_body(&fixture.db, tenant, claimed, link_secret, runtime::now())
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("a body"))
    }

    #[test]
    fn a_dispatch_that_ends_before_its_second_round_trip_loses_nothing_and_sends_nothing_twice() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(200, "ok"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let ids = fixture.event_ids();
            let secret = Some(MEDIA_LINK_SECRET);
            // The first round trip writes nothing; the worker dies before the POST.
            let lost = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert_eq!(lost.due.len(), 1);
            let events = fixture.rows("webhook_events", "id");
            assert_eq!(
                (events[0]["payload"].clone(), events[0]["dispatched_us"].clone()),
                (Value::Null, Value::Null),
                "neither kept nor marked yet"
            );
            assert!(fixture.rows("webhook_deliveries", "id").is_empty());

            // The sweep dispatches the event again: the same first attempt is due, made and
            // recorded with the event it settles.
            let again = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert_eq!(again.due.len(), 1, "nothing was recorded: it is still due");
            assert_eq!(
                again.due[0].0.delivery_id, lost.due[0].0.delivery_id,
                "the same delivery"
            );
            let (claimed, endpoint) = &again.due[0];
            let (outcome, mut statements) = attempt_unrecorded(
                &fixture.env,
                &fixture.db,
                &tenant,
                claimed,
                endpoint.as_ref(),
                runtime::now(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(outcome, AttemptOutcome::Delivered);
            let recording = [&claimed.event_id];
            let completed = again.completed_by(&[], &recording);
            assert_eq!(completed, recording, "its only first attempt settles the event");
            statements.extend(
                again
                    .settling(&fixture.db, &tenant, &completed)
                    .unwrap_or_else(|e| panic!("{e:?}")),
            );
            fixture
                .db
                .batch(statements)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let events = fixture.rows("webhook_events", "id");
            let kept = events[0]["payload"].as_str().unwrap_or_default().to_owned();
            assert!(kept.contains("\"event\":\"customer.created\""), "{kept}");
            assert!(events[0]["dispatched_us"].is_i64());
            assert!(
                fixture.rows("webhook_deliveries", "id").is_empty(),
                "delivered at its first attempt: the attempt is its record"
            );

            // Dispatched once more (a repeated queue message): nothing is due.
            let third = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert!(
                third.due.is_empty(),
                "its attempt is logged: nothing to send twice"
            );
            let calls = fixture.stack.calls_to(HOOKS);
            assert_eq!(calls.len(), 1, "sent once");
            assert_eq!(calls[0].text(), kept, "the body kept is the body sent");
        });
    }

    #[test]
    fn a_delivery_claimed_before_its_body_was_kept_builds_it_or_is_dead_saying_why() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(200, "ok"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            // A delivery with a row, pending, whose event's body nobody kept yet (an event to
            // two endpoints whose other first attempt is not recorded, say).
            let pending = |ids: Vec<EventId>| {
                let (fixture, tenant) = (&fixture, &tenant);
                async move {
                    let lost = first_round_trip(fixture, tenant, &ids, None).await;
                    let handed: Vec<&Claimed> = lost.due.iter().map(|(claimed, _)| claimed).collect();
                    let statement =
                        db::webhook_deliveries::hand_on(&fixture.db, tenant, &handed, runtime::now())
                            .unwrap_or_else(|error| panic!("{error:?}"));
                    fixture
                        .db
                        .batch(vec![statement])
                        .await
                        .unwrap_or_else(|error| panic!("{error:?}"));
                    lost.due[0].0.delivery_id.clone()
                }
            };
            let delivery = pending(fixture.event_ids()).await;
            let (claimed, endpoint) = claim_attempt(&fixture, &tenant, &delivery, 1).await;
            let endpoint_id = claimed.endpoint_id.clone();
            assert_eq!(claimed.payload, None, "the dispatch kept no body");
            let built = built(&fixture, &tenant, claimed.clone(), None).await;
            let kept = fixture.rows("webhook_events", "id")[0]["payload"].clone();
            assert_eq!(built.payload.as_deref(), kept.as_str(), "kept as built");
            assert_eq!(
                fixture.attempt(&tenant, &(built, endpoint)).await,
                AttemptOutcome::Delivered
            );

            // An event whose snapshot became unreadable: its delivery is dead, saying why.
            let added = |name: &'static str| {
                let (fixture, tenant) = (&fixture, &tenant);
                async move {
                    let before = fixture.event_ids();
                    let email = format!("{}@example.com", name.to_lowercase());
                    fixture
                        .customers(tenant, json!([{ "name": name, "email": email }]))
                        .await;
                    let event = fixture.event_ids().into_iter().find(|id| !before.contains(id));
                    event.unwrap_or_else(|| panic!("{name}'s event"))
                }
            };
            let corrupt = |event: &EventId| {
                fixture.execute(
                    "UPDATE webhook_events SET snapshot = 'not json' WHERE id = ?1",
                    &[event.as_str()],
                );
            };
            let dead = |id: &DeliveryId| {
                let row = fixture
                    .rows("webhook_deliveries", "id")
                    .into_iter()
                    .find(|row| row["id"] == id.as_str())
                    .unwrap_or_else(|| panic!("delivery {id}"));
                assert_eq!(row["status"], "dead", "{row:?}");
                let error = row["last_error"].as_str().unwrap_or_default();
                assert!(error.contains("could not be built"), "{error}");
                row["attempts"].as_i64()
            };
            let grace = added("Grace").await;
            let id = pending(vec![grace.clone()]).await;
            corrupt(&grace);
            let (claimed, _) = claim_attempt(&fixture, &tenant, &id, 1).await;
            let none = with_body(&fixture.db, &tenant, claimed, None, runtime::now())
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(none.is_none());
            dead(&id);

            // One unreadable when it is dispatched: nothing to send, and its delivery is dead.
            let ada = added("Ada").await;
            corrupt(&ada);
            let doomed = first_round_trip(&fixture, &tenant, std::slice::from_ref(&ada), None).await;
            assert!(doomed.due.is_empty(), "nothing to send");
            doomed
                .finish(&fixture.db, &tenant, &[], &[], &[])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(dead(&DeliveryId::of(&endpoint_id, &ada)), Some(0));
            let events = fixture.rows("webhook_events", "id");
            let settled = events
                .iter()
                .find(|row| row["id"] == ada.as_str())
                .map(|row| row["dispatched_us"].is_i64());
            assert_eq!(settled, Some(true), "settled");
            assert_eq!(fixture.stack.calls_to(HOOKS).len(), 1, "nothing sent for either");
        });
    }

    #[test]
    fn an_event_to_two_endpoints_is_settled_with_its_last_first_attempt_and_never_while_one_is_unrecorded() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            for url in [URL, OTHER] {
                fixture
                    .webhook_endpoint(&tenant, url, &[EventType::CustomerCreated])
                    .await;
            }
            fixture
                .customers(
                    &tenant,
                    json!([{ "name": "Two Ways", "email": "two@example.com" }]),
                )
                .await;
            let ids = fixture.event_ids();
            let event = &ids[0];
            let dispatched = || fixture.rows("webhook_events", "id")[0]["dispatched_us"].is_i64();
            let first = first_round_trip(&fixture, &tenant, &ids, None).await;
            assert_eq!(first.due.len(), 2, "one first attempt per endpoint");
            assert!(
                first.completed_by(&[], &[event]).is_empty(),
                "one of two recorded: not yet"
            );
            assert_eq!(
                first.completed_by(&[event], &[event]),
                vec![event],
                "the second completes it"
            );

            // One of its first attempts was not recorded: the event is left for the sweep.
            first
                .finish(&fixture.db, &tenant, &[event], &[event], &[])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(!dispatched());
            assert!(fixture.rows("webhook_deliveries", "id").is_empty());

            // One recorded, the other handed on: settled, the handed-on one with a pending row.
            let again = first_round_trip(&fixture, &tenant, &ids, None).await;
            let handed = &again.due[1].0;
            again
                .finish(&fixture.db, &tenant, &[event], &[], &[handed])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(dispatched());
            let rows = fixture.rows("webhook_deliveries", "id");
            assert_eq!(rows.len(), 1);
            assert_eq!(
                (
                    rows[0]["id"].as_str(),
                    rows[0]["status"].as_str(),
                    rows[0]["attempts"].as_i64()
                ),
                (Some(handed.delivery_id.as_str()), Some("pending"), Some(0))
            );
            let third = first_round_trip(&fixture, &tenant, &ids, None).await;
            let left: Vec<&DeliveryId> = third
                .due
                .iter()
                .map(|(claimed, _)| &claimed.delivery_id)
                .collect();
            assert_eq!(
                left,
                vec![&again.due[0].0.delivery_id],
                "only what has neither row nor attempt"
            );
        });
    }

    #[test]
    fn a_delivery_is_attempted_once_however_often_its_task_comes() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(500, "down"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let delivery = due[0].0.delivery_id.clone();
            fixture.attempt(&tenant, &due[0]).await;
            fixture.stack.advance(Duration::from_secs(2));
            let keys = fixture.keys();
            let first = claim(&fixture.db, &keys, &tenant, &delivery, 2, runtime::now()).await;
            let second = claim(&fixture.db, &keys, &tenant, &delivery, 2, runtime::now()).await;
            assert!(matches!(first, Ok(Some(_))));
            assert!(matches!(second, Ok(None)), "leased to the first");
            let stale = claim(&fixture.db, &keys, &tenant, &delivery, 1, runtime::now()).await;
            assert!(matches!(stale, Ok(None)), "an attempt already made");
        });
    }

    #[test]
    fn an_endpoint_that_keeps_failing_past_its_allowance_is_disabled_saying_why_and_then_skipped() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(502, "bad gateway"));
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            fixture.execute(
                "UPDATE webhook_endpoints SET disable_after_seconds = 3 WHERE id = ?1",
                &[endpoint.id.as_str()],
            );
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let delivery = due[0].0.delivery_id.clone();
            fixture.attempt(&tenant, &due[0]).await;
            let enabled =
                |fixture: &Fixture| fixture.rows("webhook_endpoints", "created_at")[0]["enabled"].clone();
            assert_eq!(enabled(&fixture), 1, "failing for less than its allowance");
            fixture.stack.advance(Duration::from_secs(2));
            let second = claim_attempt(&fixture, &tenant, &delivery, 2).await;
            fixture.attempt(&tenant, &second).await;
            assert_eq!(enabled(&fixture), 1, "two seconds of failing");
            fixture.stack.advance(Duration::from_secs(4));
            let third = claim_attempt(&fixture, &tenant, &delivery, 3).await;
            fixture.attempt(&tenant, &third).await;
            let endpoints = fixture.rows("webhook_endpoints", "created_at");
            assert_eq!(endpoints[0]["enabled"], 0);
            let reason = endpoints[0]["disabled_reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("every delivery since") && reason.contains("last answer: HTTP 502"),
                "{reason}"
            );
            fixture.stack.advance(Duration::from_secs(8));
            let fourth = claim_attempt(&fixture, &tenant, &delivery, 4).await;
            assert_eq!(fixture.attempt(&tenant, &fourth).await, AttemptOutcome::Dead);
            assert_eq!(
                fixture.stack.calls_to(HOOKS).len(),
                3,
                "nothing sent to a disabled endpoint"
            );
            let deliveries = fixture.rows("webhook_deliveries", "id");
            assert_eq!(deliveries[0]["status"], "dead");
            assert_eq!(deliveries[0]["last_error"], "not sent: the endpoint is disabled");
        });
    }

    #[test]
    fn a_success_heals_a_failing_endpoint() {
        let fixture = Fixture::new();
        let answers = std::cell::Cell::new(0);
        fixture.stack.partner(HOOKS, move |_| {
            answers.set(answers.get() + 1);
            if answers.get() == 1 {
                Reply::text(500, "")
            } else {
                Reply::text(200, "")
            }
        });
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            fixture.attempt(&tenant, &due[0]).await;
            assert!(fixture.rows("webhook_endpoints", "created_at")[0]["failing_since_us"].is_i64());
            fixture.stack.advance(Duration::from_secs(2));
            let again = claim_attempt(&fixture, &tenant, &due[0].0.delivery_id, 2).await;
            assert_eq!(fixture.attempt(&tenant, &again).await, AttemptOutcome::Delivered);
            assert!(fixture.rows("webhook_endpoints", "created_at")[0]["failing_since_us"].is_null());
        });
    }

    #[test]
    fn an_event_whose_body_cannot_be_built_is_dead_for_its_endpoints_and_holds_up_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            fixture
                .customers(
                    &tenant,
                    json!([{ "name": "Grace", "email": "grace@example.com" }]),
                )
                .await;
            let ids = fixture.event_ids();
            assert_eq!(ids.len(), 2);
            fixture.execute(
                "UPDATE webhook_events SET snapshot = 'not json' WHERE id = ?1",
                &[ids[0].as_str()],
            );
            let due = fixture.dispatch(&tenant, &ids).await;
            assert_eq!(due.len(), 1, "the other event goes on");
            assert_eq!(due[0].0.event_id, ids[1]);
            let deliveries = fixture.rows("webhook_deliveries", "event_id");
            let dead: Vec<_> = deliveries.iter().filter(|row| row["status"] == "dead").collect();
            assert_eq!(dead.len(), 1, "{deliveries:?}");
            assert_eq!(dead[0]["event_id"], ids[0].as_str());
            assert_eq!(dead[0]["endpoint_id"], endpoint.id.as_str());
            let error = dead[0]["last_error"].as_str().unwrap_or_default();
            assert!(error.contains("could not be built"), "{error}");
        });
    }

    #[test]
    fn a_download_link_is_signed_for_a_week_and_made_only_with_an_origin_and_a_secret() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        let id = AttachmentId::generate([3; 16]);
        let now = runtime::now();
        let link = signed_link(
            &tenant,
            Some("https://api.example/"),
            Some(MEDIA_LINK_SECRET),
            &id,
            now,
        )
        .unwrap_or_else(|| panic!("a link"));
        assert!(
            link.starts_with("https://api.example/api/download-media?"),
            "{link}"
        );
        let expires = (now.seconds() + 7 * 24 * 3600).to_string();
        assert!(link.contains(&format!("expires={expires}")), "{link}");
        assert!(
            link.contains(id.as_str()) && link.contains("signature="),
            "{link}"
        );
        assert_eq!(
            signed_link(&tenant, None, Some(MEDIA_LINK_SECRET), &id, now),
            None
        );
        assert_eq!(
            signed_link(&tenant, Some("https://api.example"), None, &id, now),
            None
        );
    }

    /// Acme, with an endpoint for `message.received`, and an email with an invoice received on
    /// its mail account as `provider_message_id`.
    async fn invoice_received(fixture: &Fixture, provider_message_id: &str) -> Tenant {
        let tenant = fixture.business("Acme").await;
        fixture
            .webhook_endpoint(&tenant, URL, &[EventType::MessageReceived])
            .await;
        let mail = fixture
            .channel_account(
                &tenant,
                domain::channel::Channel::Email,
                domain::providers::Provider::Mailgun,
                "support@acme.example",
                json!({ "api_key": "k" }),
            )
            .await;
        let message = domain::inbound::InboundMessage {
            provider_message_id: provider_message_id.to_owned(),
            from: "ada@example.com".to_owned(),
            sender_name: None,
            content: "Invoice attached".to_owned(),
            media: vec![domain::inbound::InboundMedia::Inline {
                filename: "invoice.pdf".to_owned(),
                mime_type: "application/pdf".to_owned(),
                bytes: b"%PDF".to_vec(),
            }],
        };
        fixture.ingest_one(&mail, message).await;
        tenant
    }

    #[test]
    fn a_message_events_body_is_the_same_bytes_whoever_builds_it_and_when() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = invoice_received(&fixture, "<m2@mail>").await;
            let recorded = fixture.stack.now_ms() / 1000;
            let ids = fixture.event_ids();
            let secret = Some(MEDIA_LINK_SECRET);
            fixture.stack.advance(Duration::from_secs(90));
            // The dispatch builds the body, then dies before keeping it.
            let lost = first_round_trip(&fixture, &tenant, &ids, secret).await;
            let first = lost.due[0].0.payload.clone().unwrap_or_default();
            // An hour later the sweep dispatches it again, and the body is built again.
            fixture.stack.advance(Duration::from_secs(3600));
            let again = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert_eq!(
                again.due[0].0.payload.as_deref(),
                Some(first.as_str()),
                "the same bytes"
            );
            let expires = (recorded + 7 * 24 * 3600).to_string();
            assert!(
                first.contains(&format!("expires={expires}")),
                "the link works for a week from the event: {first}"
            );
        });
    }

    #[test]
    fn a_message_event_carries_its_files_with_links_signed_to_download_them() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = invoice_received(&fixture, "<m1@mail>").await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            assert_eq!(due.len(), 1, "message.received only");
            let body: Value = serde_json::from_str(due[0].0.payload.as_deref().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(body["event"], "message.received");
            assert_eq!(body["data"]["message"]["content"], "Invoice attached");
            let files = body["data"]["attachments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(files.len(), 1, "{body}");
            assert_eq!(
                (files[0]["filename"].as_str(), files[0]["size"].as_i64()),
                (Some("invoice.pdf"), Some(4))
            );
            let link = files[0]["download_url"].as_str().unwrap_or_default();
            assert!(
                link.starts_with("https://api.example/api/download-media?") && link.contains("signature="),
                "{link}"
            );
            assert_eq!(files[0]["url"], files[0]["download_url"]);
        });
    }
}
