//! Webhook endpoints, events, deliveries and the attempt log in D1. Every statement is scoped by
//! the tenant's business id, always `?1`, except the sweep, which looks for lost work across
//! businesses and hands each item back with its own business.

use crate::auth::Tenant;
use crate::d1;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::time::Timestamp;
use domain::webhook_signing::WebhookSecret;
use domain::webhooks::{EventType, RetrySchedule};
use serde::Deserialize;
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

fn number(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}

fn optional_number(value: Option<i64>) -> JsValue {
    value.map_or(JsValue::NULL, number)
}

fn corrupt(what: &str, id: &str) -> ApiError {
    ApiError::internal("reading webhooks", format!("stored {what} of {id} is not valid"))
}

/// A registered endpoint as stored, secrets included: never returned to a client as is.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub secret: WebhookSecret,
    pub previous_secret: Option<WebhookSecret>,
    pub previous_secret_until_us: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub retry_schedule: RetrySchedule,
    pub timeout_seconds: u32,
    pub disable_after_seconds: u32,
    pub failing_since_us: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl Endpoint {
    /// The secrets that sign a delivery at `now`: the current one first, then the previous one
    /// while its rotation grace lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until_us)
            && now.micros() < until
        {
            secrets.push(previous);
        }
        secrets
    }

    pub fn subscribes_to(&self, kind: EventType) -> bool {
        self.events.contains(&kind)
    }
}

const ENDPOINT_COLUMNS: &str = "id, name, url, events, secret, previous_secret, previous_secret_until_us, enabled, \
     disabled_reason, retry_schedule, timeout_seconds, disable_after_seconds, failing_since_us, created_at, updated_at";

#[derive(Deserialize)]
struct EndpointRow {
    id: String,
    name: String,
    url: String,
    events: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until_us: Option<i64>,
    enabled: i64,
    disabled_reason: Option<String>,
    retry_schedule: String,
    timeout_seconds: u32,
    disable_after_seconds: u32,
    failing_since_us: Option<i64>,
    created_at: String,
    updated_at: String,
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<Endpoint, ApiError> {
        let names: Vec<String> =
            serde_json::from_str(&self.events).map_err(|_| corrupt("events", &self.id))?;
        Ok(Endpoint {
            events: names.iter().filter_map(|name| EventType::parse(name)).collect(),
            secret: WebhookSecret::parse(&self.secret).ok_or_else(|| corrupt("secret", &self.id))?,
            previous_secret: self.previous_secret.as_deref().and_then(WebhookSecret::parse),
            retry_schedule: RetrySchedule::parse(&self.retry_schedule)
                .ok_or_else(|| corrupt("retry_schedule", &self.id))?,
            enabled: self.enabled != 0,
            id: self.id,
            name: self.name,
            url: self.url,
            previous_secret_until_us: self.previous_secret_until_us,
            disabled_reason: self.disabled_reason,
            timeout_seconds: self.timeout_seconds,
            disable_after_seconds: self.disable_after_seconds,
            failing_since_us: self.failing_since_us,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn events_json(events: &[EventType]) -> JsValue {
    d1::json_list(events.iter().map(|event| event.as_str()))
}

/// Stores a new endpoint, or writes every field of an existing one.
pub async fn save(db: &D1Database, tenant: &Tenant, endpoint: &Endpoint) -> Result<(), ApiError> {
    db.prepare(
        "INSERT INTO webhook_endpoints (id, business_id, name, url, events, secret, previous_secret, \
         previous_secret_until_us, enabled, disabled_reason, retry_schedule, timeout_seconds, disable_after_seconds, \
         failing_since_us, created_at, updated_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, events = excluded.events, \
         secret = excluded.secret, previous_secret = excluded.previous_secret, \
         previous_secret_until_us = excluded.previous_secret_until_us, enabled = excluded.enabled, \
         disabled_reason = excluded.disabled_reason, retry_schedule = excluded.retry_schedule, \
         timeout_seconds = excluded.timeout_seconds, disable_after_seconds = excluded.disable_after_seconds, \
         failing_since_us = excluded.failing_since_us, updated_at = excluded.updated_at \
         WHERE webhook_endpoints.business_id = excluded.business_id",
    )
    .bind(&[
        d1::text(tenant.business_id.as_str()),
        d1::text(&endpoint.id),
        d1::text(&endpoint.name),
        d1::text(&endpoint.url),
        events_json(&endpoint.events),
        d1::text(endpoint.secret.as_str()),
        d1::optional_text(endpoint.previous_secret.as_ref().map(WebhookSecret::as_str)),
        optional_number(endpoint.previous_secret_until_us),
        number(i64::from(endpoint.enabled)),
        d1::optional_text(endpoint.disabled_reason.as_deref()),
        d1::text(endpoint.retry_schedule.as_str()),
        number(i64::from(endpoint.timeout_seconds)),
        number(i64::from(endpoint.disable_after_seconds)),
        optional_number(endpoint.failing_since_us),
        d1::text(&endpoint.created_at),
        d1::text(&endpoint.updated_at),
    ])?
    .run()
    .await?;
    Ok(())
}

pub async fn list(db: &D1Database, tenant: &Tenant) -> Result<Vec<Endpoint>, ApiError> {
    let result = db
        .prepare(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE business_id = ?1 ORDER BY created_at, id"
        ))
        .bind(&[d1::text(tenant.business_id.as_str())])?
        .all()
        .await?;
    result
        .results::<EndpointRow>()?
        .into_iter()
        .map(EndpointRow::into_endpoint)
        .collect()
}

pub async fn find(db: &D1Database, tenant: &Tenant, id: &str) -> Result<Option<Endpoint>, ApiError> {
    let row = db
        .prepare(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2"
        ))
        .bind(&[d1::text(tenant.business_id.as_str()), d1::text(id)])?
        .first::<EndpointRow>(None)
        .await?;
    row.map(EndpointRow::into_endpoint).transpose()
}

/// Removes the endpoint with its deliveries and their log; true if it existed.
pub async fn delete(db: &D1Database, tenant: &Tenant, id: &str) -> Result<bool, ApiError> {
    let params = [d1::text(tenant.business_id.as_str()), d1::text(id)];
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM webhook_attempts WHERE business_id = ?1 AND endpoint_id = ?2")
                .bind(&params)?,
            db.prepare("DELETE FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2")
                .bind(&params)?,
            db.prepare("DELETE FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2")
                .bind(&params)?,
        ])
        .await?;
    let deleted = results
        .last()
        .and_then(|result| result.meta().ok().flatten())
        .and_then(|meta| meta.changes)
        .unwrap_or(0);
    Ok(deleted > 0)
}

/// An event as recorded where its change happened.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject_id: String,
    pub detail: Option<String>,
    pub snapshot: Option<String>,
    pub base_url: Option<String>,
    pub payload: Option<String>,
    pub created_us: i64,
}

pub async fn events(db: &D1Database, tenant: &Tenant, ids: &[String]) -> Result<Vec<StoredEvent>, ApiError> {
    let result = db
        .prepare(
            "SELECT id, type, subject_id, detail, snapshot, base_url, payload, created_us FROM webhook_events \
             WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2)) ORDER BY created_us, id",
        )
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::json_list(ids.iter().map(String::as_str)),
        ])?
        .all()
        .await?;
    Ok(result.results::<StoredEvent>()?)
}

/// Fixes each event's body (where not fixed yet), creates one pending delivery per event and
/// subscribed enabled endpoint, and marks the events dispatched, in one transaction. The new
/// deliveries come back already leased until `lease_until` for their first attempt, with what
/// it needs. Only deliveries created now come back, so a repeated dispatch attempts nothing twice.
pub async fn fan_out(
    db: &D1Database,
    tenant: &Tenant,
    payloads: &[(String, String)],
    event_ids: &[String],
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Vec<Claimed>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        endpoint_id: String,
        event_id: String,
        event_type: String,
        payload: String,
    }
    let business = d1::text(tenant.business_id.as_str());
    let ids = d1::json_list(event_ids.iter().map(String::as_str));
    let mut statements = Vec::new();
    for (event_id, payload) in payloads {
        statements.push(
            db.prepare(
                "UPDATE webhook_events SET payload = ?3 WHERE business_id = ?1 AND id = ?2 AND payload IS NULL",
            )
            .bind(&[business.clone(), d1::text(event_id), d1::text(payload)])?,
        );
    }
    statements.push(
        db.prepare(
            "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, attempts, \
             next_attempt_us, leased_until_us, event_us, updated_us) \
             SELECT lower(hex(randomblob(16))), ?1, e.id, ev.id, ev.type, 'pending', 0, ?3, ?4, ev.created_us, ?3 \
             FROM webhook_events ev JOIN webhook_endpoints e ON e.business_id = ev.business_id \
             WHERE ev.business_id = ?1 AND ev.id IN (SELECT value FROM json_each(?2)) AND ev.payload IS NOT NULL \
             AND e.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(e.events) s WHERE s.value = ev.type) \
             ORDER BY ev.created_us \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING \
             RETURNING id, endpoint_id, event_id, event_type, \
               (SELECT payload FROM webhook_events WHERE business_id = ?1 AND id = event_id) AS payload",
        )
        .bind(&[business.clone(), ids.clone(), number(now.micros()), number(lease_until.micros())])?,
    );
    statements.push(
        db.prepare(
            "UPDATE webhook_events SET dispatched_us = ?3 WHERE business_id = ?1 \
             AND id IN (SELECT value FROM json_each(?2)) AND dispatched_us IS NULL AND payload IS NOT NULL",
        )
        .bind(&[business, ids, number(now.micros())])?,
    );
    let results = db.batch(statements).await?;
    let created = results
        .get(payloads.len())
        .ok_or_else(|| ApiError::internal("fanning out events", "D1 returned fewer results than statements"))?
        .results::<Row>()?;
    if created.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints = list(db, tenant).await?;
    Ok(created
        .into_iter()
        .map(|row| Claimed {
            endpoint: endpoints.iter().find(|e| e.id == row.endpoint_id).cloned(),
            delivery_id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            attempt: 1,
            replay: 0,
            payload: row.payload,
        })
        .collect())
}

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub replay: u32,
    pub payload: String,
    pub endpoint: Option<Endpoint>,
}

/// Takes a lease on the delivery for its attempt number `attempt` until `lease_until`: only one
/// worker attempts it, however often the queue delivers the task. None when the delivery is not
/// pending, is at another attempt, or is leased by someone else.
pub async fn claim(
    db: &D1Database,
    tenant: &Tenant,
    delivery_id: &str,
    attempt: u32,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Option<Claimed>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        event_id: String,
        event_type: String,
        replays: u32,
        endpoint_id: String,
    }
    #[derive(Deserialize)]
    struct Payload {
        payload: Option<String>,
    }
    let business = d1::text(tenant.business_id.as_str());
    let results = db
        .batch(vec![
            db.prepare(
                "UPDATE webhook_deliveries SET leased_until_us = ?5 WHERE business_id = ?1 AND id = ?2 \
                 AND status = 'pending' AND attempts = ?3 AND (leased_until_us IS NULL OR leased_until_us < ?4) \
                 RETURNING event_id, event_type, replays, endpoint_id",
            )
            .bind(&[
                business.clone(),
                d1::text(delivery_id),
                number(i64::from(attempt.saturating_sub(1))),
                number(now.micros()),
                number(lease_until.micros()),
            ])?,
            db.prepare(
                "SELECT ev.payload FROM webhook_deliveries d JOIN webhook_events ev \
                 ON ev.business_id = d.business_id AND ev.id = d.event_id WHERE d.business_id = ?1 AND d.id = ?2",
            )
            .bind(&[business, d1::text(delivery_id)])?,
        ])
        .await?;
    let row = results
        .first()
        .map(|result| result.results::<Row>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next());
    let Some(row) = row else {
        return Ok(None);
    };
    let payload = results
        .get(1)
        .map(|result| result.results::<Payload>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.payload)
        .ok_or_else(|| corrupt("payload of the event", &row.event_id))?;
    let endpoint = find(db, tenant, &row.endpoint_id).await?;
    Ok(Some(Claimed {
        delivery_id: delivery_id.to_owned(),
        event_id: row.event_id,
        event_type: row.event_type,
        attempt,
        replay: row.replays,
        payload,
        endpoint,
    }))
}

/// One line of the attempt log.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub endpoint_id: &'a str,
    pub delivery_id: Option<&'a str>,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub attempt: u32,
    pub replay: u32,
    pub url: &'a str,
    pub status_code: Option<u16>,
    pub response_body: Option<&'a str>,
    pub duration_ms: u64,
    pub error: Option<&'a str>,
    pub outcome: AttemptOutcome,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    Retrying { next: Timestamp },
    Dead,
}

impl AttemptOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying { .. } => "retrying",
            Self::Dead => "dead",
        }
    }
}

/// What the attempt does to its endpoint's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The endpoint answered well: it is not failing.
    Healthy,
    /// Another failure; it has been failing since the first one.
    Failing,
    /// It has failed for longer than it may: disabled, for this reason.
    Disable(String),
    /// A test send or an attempt that does not count for the endpoint's health.
    Unchanged,
}

/// Logs the attempt, settles its delivery (if any) and updates the endpoint's health, in one
/// transaction.
pub async fn record_attempt(
    db: &D1Database,
    tenant: &Tenant,
    record: &AttemptRecord<'_>,
    health: &Health,
) -> Result<(), ApiError> {
    let business = d1::text(tenant.business_id.as_str());
    let at = number(record.at.micros());
    let mut statements = vec![
        db.prepare(
            "INSERT INTO webhook_attempts (business_id, endpoint_id, delivery_id, event_id, event_type, attempt, replay, \
             url, status_code, response_body, duration_ms, error, outcome, attempted_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .bind(&[
            business.clone(),
            d1::text(record.endpoint_id),
            d1::optional_text(record.delivery_id),
            d1::text(record.event_id),
            d1::text(record.event_type),
            number(i64::from(record.attempt)),
            number(i64::from(record.replay)),
            d1::text(record.url),
            optional_number(record.status_code.map(i64::from)),
            d1::optional_text(record.response_body),
            number(record.duration_ms.min(i64::MAX as u64) as i64),
            d1::optional_text(record.error),
            d1::text(record.outcome.as_str()),
            at.clone(),
        ])?,
    ];
    if let Some(delivery_id) = record.delivery_id {
        let (status, next) = match record.outcome {
            AttemptOutcome::Delivered => ("delivered", None),
            AttemptOutcome::Retrying { next } => ("pending", Some(next.micros())),
            AttemptOutcome::Dead => ("dead", None),
        };
        statements.push(
            db.prepare(
                "UPDATE webhook_deliveries SET attempts = ?3, status = ?4, next_attempt_us = ?5, leased_until_us = NULL, \
                 last_status = ?6, last_error = ?7, updated_us = ?8 WHERE business_id = ?1 AND id = ?2",
            )
            .bind(&[
                business.clone(),
                d1::text(delivery_id),
                number(i64::from(record.attempt)),
                d1::text(status),
                optional_number(next),
                optional_number(record.status_code.map(i64::from)),
                d1::optional_text(record.error),
                at.clone(),
            ])?,
        );
    }
    let endpoint = d1::text(record.endpoint_id);
    let health_update = match health {
        Health::Unchanged => None,
        Health::Healthy => Some((
            "UPDATE webhook_endpoints SET failing_since_us = NULL WHERE business_id = ?1 AND id = ?2 \
             AND failing_since_us IS NOT NULL",
            vec![business.clone(), endpoint],
        )),
        Health::Failing => Some((
            "UPDATE webhook_endpoints SET failing_since_us = ?3 WHERE business_id = ?1 AND id = ?2 \
             AND failing_since_us IS NULL",
            vec![business.clone(), endpoint, at],
        )),
        Health::Disable(reason) => Some((
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?3, updated_at = ?4, \
             failing_since_us = COALESCE(failing_since_us, ?5) WHERE business_id = ?1 AND id = ?2 AND enabled = 1",
            vec![
                business.clone(),
                endpoint,
                d1::text(reason),
                d1::text(&record.at.to_rfc3339()),
                at,
            ],
        )),
    };
    if let Some((sql, params)) = health_update {
        statements.push(db.prepare(sql).bind(&params)?);
    }
    db.batch(statements).await?;
    Ok(())
}

/// Moves a leased delivery to the dead without an attempt, saying why; its last answer stays.
pub async fn abandon(
    db: &D1Database,
    tenant: &Tenant,
    delivery_id: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    db.prepare(
        "UPDATE webhook_deliveries SET status = 'dead', next_attempt_us = NULL, leased_until_us = NULL, \
         last_error = ?3, updated_us = ?4 WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
        d1::text(tenant.business_id.as_str()),
        d1::text(delivery_id),
        d1::text(reason),
        number(now.micros()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: u32,
    pub replays: u32,
    pub next_attempt_us: Option<i64>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub event_us: i64,
}

/// The endpoint's deliveries, newest event first, optionally of one status.
pub async fn deliveries(
    db: &D1Database,
    tenant: &Tenant,
    endpoint_id: &str,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRow>, ApiError> {
    let result = db
        .prepare(
            "SELECT id, event_id, event_type, status, attempts, replays, next_attempt_us, last_status, last_error, event_us \
             FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2 AND (?3 IS NULL OR status = ?3) \
             ORDER BY event_us DESC, id LIMIT ?4",
        )
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::text(endpoint_id),
            d1::optional_text(status),
            number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.results::<DeliveryRow>()?)
}

/// Which deliveries of an endpoint to replay.
pub enum ReplaySelection<'a> {
    One(&'a str),
    /// Dead deliveries whose event happened in `[from, to)`.
    DeadBetween(Timestamp, Timestamp),
}

/// The most deliveries one replay request re-queues.
pub const MAX_REPLAY: usize = 1000;

/// Puts the selected deliveries back to pending for a new round of attempts; their ids.
pub async fn replay(
    db: &D1Database,
    tenant: &Tenant,
    endpoint_id: &str,
    selection: ReplaySelection<'_>,
    now: Timestamp,
) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let set = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, replays = replays + 1, \
               next_attempt_us = ?3, leased_until_us = NULL, updated_us = ?3 \
               WHERE business_id = ?1 AND endpoint_id = ?2 AND";
    let business = d1::text(tenant.business_id.as_str());
    let statement = match selection {
        ReplaySelection::One(delivery_id) => db
            .prepare(format!("{set} id = ?4 AND status <> 'pending' RETURNING id"))
            .bind(&[business, d1::text(endpoint_id), number(now.micros()), d1::text(delivery_id)])?,
        ReplaySelection::DeadBetween(from, to) => db
            .prepare(format!(
                "{set} id IN (SELECT id FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2 \
                 AND status = 'dead' AND event_us >= ?4 AND event_us < ?5 ORDER BY event_us LIMIT {MAX_REPLAY}) \
                 RETURNING id"
            ))
            .bind(&[
                business,
                d1::text(endpoint_id),
                number(now.micros()),
                number(from.micros()),
                number(to.micros()),
            ])?,
    };
    let result = statement.all().await?;
    Ok(result.results::<Row>()?.into_iter().map(|row| row.id).collect())
}

/// A line of the attempt log as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct AttemptRow {
    pub id: i64,
    pub endpoint_id: String,
    pub delivery_id: Option<String>,
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub replay: u32,
    pub url: String,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub outcome: String,
    pub attempted_us: i64,
}

/// The filters of an attempt-log query; at least one is set.
#[derive(Debug, Default)]
pub struct AttemptFilter<'a> {
    pub endpoint_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
}

/// The latest attempts matching every given filter, newest first.
pub async fn attempts(
    db: &D1Database,
    tenant: &Tenant,
    filter: &AttemptFilter<'_>,
    limit: usize,
) -> Result<Vec<AttemptRow>, ApiError> {
    let result = db
        .prepare(
            "SELECT id, endpoint_id, delivery_id, event_id, event_type, attempt, replay, url, status_code, response_body, \
             duration_ms, error, outcome, attempted_us FROM webhook_attempts WHERE business_id = ?1 \
             AND (?2 IS NULL OR endpoint_id = ?2) AND (?3 IS NULL OR event_id = ?3) AND (?4 IS NULL OR delivery_id = ?4) \
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::optional_text(filter.endpoint_id),
            d1::optional_text(filter.event_id),
            d1::optional_text(filter.delivery_id),
            number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.results::<AttemptRow>()?)
}

/// Work the queue lost, found by the periodic sweep.
pub struct LostWork {
    /// Events recorded but never dispatched, by business.
    pub undispatched: Vec<(Tenant, String)>,
    /// Pending deliveries past their time and not leased: (business, delivery, next attempt).
    pub overdue: Vec<(Tenant, String, u32)>,
}

/// Events older than `before` never dispatched, and pending deliveries due before `before`
/// that nobody holds; at most `limit` of each.
pub async fn lost_work(
    db: &D1Database,
    before: Timestamp,
    now: Timestamp,
    limit: usize,
) -> Result<LostWork, ApiError> {
    #[derive(Deserialize)]
    struct EventRow {
        business_id: String,
        id: String,
    }
    #[derive(Deserialize)]
    struct DeliveryRow {
        business_id: String,
        id: String,
        attempts: u32,
    }
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT business_id, id FROM webhook_events WHERE dispatched_us IS NULL AND created_us < ?1 \
                 ORDER BY created_us LIMIT ?2",
            )
            .bind(&[number(before.micros()), number(limit as i64)])?,
            db.prepare(
                "SELECT business_id, id, attempts FROM webhook_deliveries WHERE status = 'pending' \
                 AND next_attempt_us < ?1 AND (leased_until_us IS NULL OR leased_until_us < ?2) \
                 ORDER BY next_attempt_us LIMIT ?3",
            )
            .bind(&[
                number(before.micros()),
                number(now.micros()),
                number(limit as i64),
            ])?,
        ])
        .await?;
    let tenant = |business_id: &str| {
        BusinessId::parse(business_id).map(|business_id| Tenant {
            business_id,
            default_country: None,
        })
    };
    let mut lost = LostWork {
        undispatched: Vec::new(),
        overdue: Vec::new(),
    };
    if let Some(result) = results.first() {
        for row in result.results::<EventRow>()? {
            if let Some(tenant) = tenant(&row.business_id) {
                lost.undispatched.push((tenant, row.id));
            }
        }
    }
    if let Some(result) = results.get(1) {
        for row in result.results::<DeliveryRow>()? {
            if let Some(tenant) = tenant(&row.business_id) {
                lost.overdue.push((tenant, row.id, row.attempts + 1));
            }
        }
    }
    Ok(lost)
}
