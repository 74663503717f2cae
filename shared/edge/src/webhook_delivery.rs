//! Delivering webhook events: the body each event carries, one signed attempt at an endpoint,
//! and what the attempt means for the delivery and the endpoint.
//!
//! A body is built once per event, when it is first dispatched, from the snapshot its change
//! recorded, then kept: retries and replays send the same bytes.
//! It is written as `JSON.stringify` writes it, so that a receiver that re-serialises the
//! parsed body (the seed's Express example) signs exactly what we signed.

use crate::Env;
use crate::bounded_fetch::{self, Failure};
use crate::db::Db;
use crate::db::webhook_attempts::{AttemptOutcome, AttemptRecord};
use crate::db::webhook_deliveries::{Claimed, Lease};
use crate::db::webhook_endpoints::{Endpoint, Health};
use crate::db::webhook_events::{StoredEvent, table_of};
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
/// left it), adding the attachments of message events (read now: `message.received` is held
/// back until the files received with it are fetched, so they are settled unless the sweep sent
/// the event first, and then they show `pending`) and what the change itself knew (`previous_status`, say). `link_secret` signs the
/// attachments' download links.
pub async fn payloads(
    db: &Db,
    tenant: &Tenant,
    events: &[StoredEvent],
    link_secret: Option<&[u8]>,
    now: Timestamp,
) -> Result<Payloads, ApiError> {
    let mut payloads = Payloads::default();
    let mut pending: Vec<(&StoredEvent, EventType)> = Vec::new();
    for event in events.iter().filter(|event| event.payload.is_none()) {
        match EventType::parse(&event.kind) {
            Some(kind) => pending.push((event, kind)),
            None => payloads
                .unbuildable
                .push((event.id.clone(), format!("unknown event type {:?}", event.kind))),
        }
    }
    let message_ids: Vec<MessageId> = pending
        .iter()
        .filter(|(_, kind)| table_of(*kind) == "messages")
        .filter_map(|(event, _)| MessageId::parse(&event.subject_id))
        .collect();
    let files = db::attachments::of_messages(db, tenant, &message_ids.iter().collect::<Vec<_>>()).await?;

    for (event, kind) in pending {
        match event_body(tenant, event, kind, &files, link_secret, now) {
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
    Ok(payloads)
}

/// One event's body: its snapshot, its attachments (message events) and its detail.
fn event_body(
    tenant: &Tenant,
    event: &StoredEvent,
    kind: EventType,
    files: &[Attachment],
    link_secret: Option<&[u8]>,
    now: Timestamp,
) -> Result<String, ApiError> {
    let mut data = snapshot_data(event)?;
    if table_of(kind) == "messages" {
        let linked: Vec<Value> = files
            .iter()
            .filter(|file| file.message_id.as_ref().map(MessageId::as_str) == Some(event.subject_id.as_str()))
            .map(|file| {
                let mut file = file.clone();
                file.download_url =
                    signed_link(tenant, event.base_url.as_deref(), link_secret, &file.id, now);
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
    let at = Timestamp::from_micros(event.created_us);
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
            (_, raw) => raw,
        };
        data.insert(name, value);
    }
    Ok(data)
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal("serialising event data", e))
}

/// A download link for the attachment, signed to work for [`LINK_LIFETIME_SECONDS`]; None
/// without an origin or a signing secret.
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
    let Some(endpoint) = endpoint else {
        return Ok(AttemptOutcome::Dead);
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
        db::webhook_deliveries::abandon(db, tenant, &claimed.delivery_id, &claimed.lease, reason, now)
            .await?;
        return Ok(AttemptOutcome::Dead);
    }
    let seed_secret = endpoint.seed_secret(now, claimed.attempt);
    let attempted = send(
        env,
        endpoint,
        seed_secret,
        &claimed.event_id,
        &claimed.event_type,
        &claimed.payload,
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
    record_attempt(db, tenant, &record, Some(&claimed.lease), &health, confirms).await?;
    Ok(outcome)
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

/// Logs the attempt, settles its delivery (if any, and only while it is still pending under
/// `lease`, the lease the attempt was made under: a late result cannot undo a later one, and
/// delivered is final), updates the endpoint's health and, when `confirms_new_secret`, records
/// that the receiver holds the new secret, in one transaction.
pub async fn record_attempt(
    db: &Db,
    tenant: &Tenant,
    record: &AttemptRecord<'_>,
    lease: Option<&str>,
    health: &Health,
    confirms_new_secret: bool,
) -> Result<(), ApiError> {
    let mut statements = vec![db::webhook_attempts::insert(db, tenant, record)?];
    if confirms_new_secret {
        statements.push(db::webhook_endpoints::confirm_new_secret(
            db,
            tenant,
            record.endpoint_id,
        )?);
    }
    if let (Some(delivery_id), Some(lease)) = (record.delivery_id, lease) {
        let (status, next) = match record.outcome {
            AttemptOutcome::Delivered => ("delivered", None),
            AttemptOutcome::Retrying { next } => ("pending", Some(next)),
            AttemptOutcome::Dead => ("dead", None),
        };
        statements.push(db::webhook_deliveries::settle(
            db,
            tenant,
            delivery_id,
            lease,
            record.attempt,
            status,
            next,
            record.status_code,
            record.error,
            record.at,
        )?);
    }
    if let Some(update) =
        db::webhook_endpoints::health_update(db, tenant, record.endpoint_id, health, record.at)?
    {
        statements.push(update);
    }
    db.batch(statements).await?;
    Ok(())
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

/// Fixes each event's body (where not fixed yet), creates one pending delivery per event and
/// subscribed enabled endpoint, and marks the events dispatched, in one transaction. The new
/// deliveries come back already leased for their first attempt, made `parallel` at a time by
/// the caller, with what it needs. Only deliveries created now come back, so a repeated
/// dispatch attempts nothing twice.
pub async fn fan_out(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    payloads: &Payloads,
    event_ids: &[EventId],
    now: Timestamp,
    parallel: usize,
) -> Result<Vec<(Claimed, Option<Endpoint>)>, ApiError> {
    let endpoints = db::webhook_endpoints::list(db, keys, tenant).await?;
    let enabled = endpoints.iter().filter(|endpoint| endpoint.enabled);
    let slowest = enabled
        .clone()
        .map(|endpoint| endpoint.timeout_seconds)
        .max()
        .unwrap_or(0);
    let most_deliveries = event_ids.len().saturating_mul(enabled.count());
    let lease = Lease {
        token: hex::encode(runtime::random::<16>()?),
        until: now.plus_seconds(webhooks::lease_seconds(most_deliveries, parallel, slowest)),
    };
    let mut statements = payloads
        .built
        .iter()
        .map(|(event_id, payload)| db::webhook_events::set_payload(db, tenant, event_id, payload))
        .collect::<Result<Vec<_>, _>>()?;
    if !payloads.unbuildable.is_empty() {
        // Dead at once for every endpoint that wanted them: their dead-letter lists show why.
        statements.push(db::webhook_deliveries::create_dead(
            db,
            tenant,
            &payloads.unbuildable,
            now,
        )?);
    }
    let created_at = statements.len();
    statements.push(db::webhook_deliveries::create(
        db, tenant, event_ids, now, &lease,
    )?);
    statements.push(db::webhook_events::mark_dispatched(db, tenant, event_ids, now)?);
    let results = db.batch(statements).await?;
    Ok(db::webhook_deliveries::created(&results, created_at)?
        .into_iter()
        .map(|claimed| {
            let endpoint = endpoints.iter().find(|e| e.id == claimed.endpoint_id).cloned();
            (claimed, endpoint)
        })
        .collect())
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
        // One attempt: at most the longest timeout any endpoint may have.
        until: now.plus_seconds(webhooks::lease_seconds(1, 1, webhooks::MAX_TIMEOUT_SECONDS)),
    };
    let Some(claimed) = db::webhook_deliveries::claim(db, tenant, delivery_id, attempt, now, &lease).await?
    else {
        return Ok(None);
    };
    let endpoint = db::webhook_endpoints::find(db, keys, tenant, &claimed.endpoint_id).await?;
    Ok(Some((claimed, endpoint)))
}
