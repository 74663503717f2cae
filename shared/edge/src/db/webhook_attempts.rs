//! `webhook_attempts`: the log of every delivery attempt and test send, with the answer each got.
//! Every statement is scoped by the tenant, but for retention, which deletes old lines of every
//! business.

use crate::db::{self, number, text};
use crate::db::{Db, Statement};
use domain::error::ApiError;
use domain::ids::{DeliveryId, EndpointId, EventId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// One line of the attempt log.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub endpoint_id: &'a EndpointId,
    pub delivery_id: Option<&'a DeliveryId>,
    pub event_id: &'a EventId,
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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying { .. } => "retrying",
            Self::Dead => "dead",
        }
    }
}

/// The statement that logs one attempt.
pub fn insert(db: &Db, tenant: &Tenant, record: &AttemptRecord<'_>) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO webhook_attempts (business_id, endpoint_id, delivery_id, event_id, event_type, attempt, replay, \
             url, status_code, response_body, duration_ms, error, outcome, attempted_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .bind(&[
            text(record.endpoint_id.as_str()),
            db::optional_text(record.delivery_id.map(DeliveryId::as_str)),
            text(record.event_id.as_str()),
            text(record.event_type),
            number(i64::from(record.attempt)),
            number(i64::from(record.replay)),
            text(record.url),
            db::optional_number(record.status_code.map(i64::from)),
            db::optional_text(record.response_body),
            number(record.duration_ms.min(i64::MAX as u64) as i64),
            db::optional_text(record.error),
            text(record.outcome.as_str()),
            number(record.at.micros()),
        ])?)
}

/// The statement that removes an endpoint's log (with the endpoint).
pub fn delete_of_endpoint(db: &Db, tenant: &Tenant, endpoint: &EndpointId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM webhook_attempts WHERE business_id = ?1 AND endpoint_id = ?2",
        )
        .bind(&[text(endpoint.as_str())])?)
}

/// A line of the attempt log as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct AttemptRow {
    pub id: i64,
    pub endpoint_id: EndpointId,
    pub delivery_id: Option<DeliveryId>,
    pub event_id: EventId,
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
    pub endpoint_id: Option<&'a EndpointId>,
    pub event_id: Option<&'a EventId>,
    pub delivery_id: Option<&'a DeliveryId>,
}

/// The latest attempts matching every given filter, newest first.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    filter: &AttemptFilter<'_>,
    limit: usize,
) -> Result<Vec<AttemptRow>, ApiError> {
    let result = db
        .scoped(tenant, "SELECT id, endpoint_id, delivery_id, event_id, event_type, attempt, replay, url, status_code, response_body, \
             duration_ms, error, outcome, attempted_us FROM webhook_attempts WHERE business_id = ?1 \
             AND (?2 IS NULL OR endpoint_id = ?2) AND (?3 IS NULL OR event_id = ?3) AND (?4 IS NULL OR delivery_id = ?4) \
             ORDER BY id DESC LIMIT ?5",
        )
        .bind(&[
            db::optional_text(filter.endpoint_id.map(EndpointId::as_str)),
            db::optional_text(filter.event_id.map(EventId::as_str)),
            db::optional_text(filter.delivery_id.map(DeliveryId::as_str)),
            number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.results::<AttemptRow>()?)
}

/// Deletes up to `limit` log lines made before `before` (the oldest first), across businesses:
/// the log is kept for the retention period only. How many went.
pub async fn delete_older_than(db: &Db, before: Timestamp, limit: usize) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts WHERE attempted_us < ?1 \
             ORDER BY id LIMIT ?2)",
        )
        .bind(&[number(before.micros()), number(limit as i64)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
