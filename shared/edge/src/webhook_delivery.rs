//! Delivering webhook events: the body each event carries, one signed attempt at an endpoint,
//! and what the attempt means for the delivery and the endpoint.
//!
//! A body is built once per event, when it is first dispatched, from the snapshot its change
//! recorded, then kept: retries and replays send the same bytes.
//! It is written as `JSON.stringify` writes it, so that a receiver that re-serialises the
//! parsed body (the seed's Express example) signs exactly what we signed.

use crate::auth::Tenant;
use crate::bounded_post::{self, Failure};
use crate::events::table_of;
use crate::webhooks_repo::{
    self, AttemptOutcome, AttemptRecord, Claimed, Endpoint, Health, StoredEvent,
};
use crate::{attachments, customers_repo, messages_repo};
use domain::error::ApiError;
use domain::media;
use domain::time::Timestamp;
use domain::webhook_signing::{self, to_js_json};
use domain::webhooks::{self, Answer, EventType, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};
use worker::D1Database;

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
    event_id: &str,
    kind: EventType,
    at: Timestamp,
    data: Value,
) -> Result<String, ApiError> {
    let envelope = Envelope {
        id: event_id,
        event: kind.as_str(),
        timestamp: at.to_rfc3339(),
        business_id: tenant.business_id.as_str(),
        data,
    };
    let value = serde_json::to_value(&envelope).map_err(|e| ApiError::internal("serialising event", e))?;
    Ok(to_js_json(&value))
}

/// Builds the body of each event that has none yet from its snapshot (the record as its change
/// left it), adding the attachments of message events (read now: they never change once linked)
/// and what the change itself knew (`previous_status`, say). `link_secret` signs the
/// attachments' download links.
pub async fn payloads(
    db: &D1Database,
    tenant: &Tenant,
    events: &[StoredEvent],
    link_secret: Option<&[u8]>,
    now: Timestamp,
) -> Result<Vec<(String, String)>, ApiError> {
    let pending: Vec<(&StoredEvent, EventType)> = events
        .iter()
        .filter(|event| event.payload.is_none())
        .filter_map(|event| EventType::parse(&event.kind).map(|kind| (event, kind)))
        .collect();
    let message_ids: Vec<&str> = pending
        .iter()
        .filter(|(_, kind)| table_of(*kind) == "messages")
        .map(|(event, _)| event.subject_id.as_str())
        .collect();
    let files = attachments::of_messages(db, tenant, &message_ids).await?;

    let mut bodies = Vec::new();
    for (event, kind) in pending {
        let mut data = snapshot_data(event)?;
        if table_of(kind) == "messages" {
            let linked: Vec<Value> = files
                .iter()
                .filter(|file| file.message_id.as_deref() == Some(event.subject_id.as_str()))
                .map(|file| {
                    let mut file = file.clone();
                    file.download_url =
                        signed_link(tenant, event.base_url.as_deref(), link_secret, &file.id, now);
                    to_value(&file)
                })
                .collect::<Result<_, _>>()?;
            data.insert("attachments".to_owned(), Value::Array(linked));
        }
        if let Some(Value::Object(detail)) =
            event.detail.as_deref().and_then(|d| serde_json::from_str(d).ok())
        {
            data.extend(detail);
        }
        let at = Timestamp::from_micros(event.created_us);
        bodies.push((
            event.id.clone(),
            body(tenant, &event.id, kind, at, Value::Object(data))?,
        ));
    }
    Ok(bodies)
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
            ("customer", raw) => to_value(&customers_repo::from_snapshot(raw)?)?,
            ("message", raw) => to_value(&messages_repo::message_from_snapshot(raw)?)?,
            ("conversation", raw) => to_value(&messages_repo::conversation_from_snapshot(raw)?)?,
            (_, raw) => raw,
        };
        data.insert(name, value);
    }
    Ok(data)
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal("serialising event data", e))
}

/// A link that downloads the attachment without an API key until it expires.
fn signed_link(
    tenant: &Tenant,
    base_url: Option<&str>,
    secret: Option<&[u8]>,
    attachment_id: &str,
    now: Timestamp,
) -> Option<String> {
    let (base_url, secret) = (base_url?, secret?);
    let query = media::signed_query(
        secret,
        tenant.business_id.as_str(),
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

/// POSTs the body to the endpoint, signed with its current secrets at `now`.
pub async fn send(endpoint: &Endpoint, event_id: &str, kind: &str, body: &str, now: Timestamp) -> Attempted {
    let signed = webhook_signing::sign(&endpoint.signing_secrets(now), event_id, now.seconds(), body);
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
    let exchange = bounded_post::post(&endpoint.url, &headers, body.as_bytes(), timeout_ms).await;
    match exchange.result {
        Ok(reply) => Attempted {
            status_code: Some(reply.status),
            response_body: Some(webhooks::truncate_for_log(&reply.body)),
            error: None,
            millis: exchange.millis,
            answer: Answer::Status {
                code: reply.status,
                retry_after: reply.retry_after,
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

/// Makes the claimed attempt and records it. Returns the outcome (a retry says when).
pub async fn attempt(
    db: &D1Database,
    tenant: &Tenant,
    claimed: &Claimed,
    now: Timestamp,
) -> Result<AttemptOutcome, ApiError> {
    let Some(endpoint) = claimed.endpoint.as_ref() else {
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
        webhooks_repo::abandon(db, tenant, &claimed.delivery_id, reason, now).await?;
        return Ok(AttemptOutcome::Dead);
    }
    let attempted = send(
        endpoint,
        &claimed.event_id,
        &claimed.event_type,
        &claimed.payload,
        now,
    )
    .await;
    let finished = Timestamp::from_millis(now.millis() + attempted.millis.min(i64::MAX as u64) as i64);
    let outcome = match webhooks::verdict(&attempted.answer, claimed.attempt, endpoint.retry_schedule) {
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
    webhooks_repo::record_attempt(db, tenant, &record, &health).await?;
    Ok(outcome)
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
