//! `webhook_deliveries`: one event's delivery to one endpoint, its state (`pending`, `delivered`,
//! `dead`), its attempts so far, when it is due, and who holds it. Every statement is scoped by
//! the tenant, but for the sweep, which looks for lost work across businesses and deletes the
//! deliveries of events past retention.

use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::error::ApiError;
use domain::ids::{BusinessId, DeliveryId, EndpointId, EventId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// The statement that creates one pending delivery per event among `event_ids` (those whose body
/// is fixed) and enabled endpoint subscribed to it, leased until `lease_until` for its first
/// attempt under `lease`. A delivery exists once per endpoint and event, so a repeated dispatch
/// creates nothing twice; only deliveries created now come back ([`created`] reads them).
pub fn create(
    db: &Db,
    tenant: &Tenant,
    event_ids: &[EventId],
    now: Timestamp,
    lease: &Lease,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, attempts, \
             next_attempt_us, leased_until_us, lease, event_us, updated_us) \
             SELECT lower(hex(randomblob(16))), ?1, e.id, ev.id, ev.type, 'pending', 0, ?3, ?4, ?5, ev.created_us, ?3 \
             FROM webhook_events ev JOIN webhook_endpoints e ON e.business_id = ev.business_id \
             WHERE +ev.business_id = ?1 AND ev.id IN (SELECT value FROM json_each(?2)) AND ev.payload IS NOT NULL \
             AND e.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(e.events) s WHERE s.value = ev.type) \
             ORDER BY ev.created_us \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING \
             RETURNING id, endpoint_id, event_id, event_type, lease, \
               (SELECT payload FROM webhook_events WHERE business_id = ?1 AND id = event_id) AS payload",
        )
        .bind(&[
            db::json_list(event_ids.iter().map(EventId::as_str)),
            number(now.micros()),
            number(lease.until.micros()),
            text(&lease.token),
        ])?)
}

/// The statement that records events whose body cannot be built (each with why) as dead
/// deliveries to every enabled endpoint subscribed to them, so that each endpoint's dead-letter
/// list shows them; they are never attempted, and a replay skips them.
pub fn create_dead(
    db: &Db,
    tenant: &Tenant,
    failures: &[(EventId, String)],
    now: Timestamp,
) -> Result<Statement, ApiError> {
    let failures: Vec<serde_json::Value> = failures
        .iter()
        .map(|(id, reason)| serde_json::json!({ "id": id.as_str(), "reason": reason }))
        .collect();
    let failures = serde_json::to_string(&failures)
        .map_err(|error| ApiError::internal("recording unbuildable events", error))?;
    Ok(db
        .scoped(tenant, "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, attempts, \
             last_error, event_us, updated_us) \
             SELECT lower(hex(randomblob(16))), ?1, e.id, ev.id, ev.type, 'dead', 0, json_extract(f.value, '$.reason'), \
             ev.created_us, ?3 \
             FROM json_each(?2) f \
             JOIN webhook_events ev ON +ev.business_id = ?1 AND ev.id = json_extract(f.value, '$.id') \
             JOIN webhook_endpoints e ON e.business_id = ev.business_id \
             WHERE ev.payload IS NULL AND e.enabled = 1 \
             AND EXISTS (SELECT 1 FROM json_each(e.events) s WHERE s.value = ev.type) \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(&[text(&failures), number(now.micros())])?)
}

/// The deliveries a [`create`] statement made, each claimed for its first attempt.
pub fn created(results: &[D1Result], position: usize) -> Result<Vec<Claimed>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: DeliveryId,
        endpoint_id: EndpointId,
        event_id: EventId,
        event_type: String,
        lease: String,
        payload: String,
    }
    Ok(db::rows::<Row>(results, position)?
        .into_iter()
        .map(|row| Claimed {
            lease: row.lease,
            endpoint_id: row.endpoint_id,
            delivery_id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            attempt: 1,
            replay: 0,
            payload: row.payload,
        })
        .collect())
}

/// A lease on deliveries: who holds them (a random token) and until when.
#[derive(Debug, Clone)]
pub struct Lease {
    pub token: String,
    pub until: Timestamp,
}

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: DeliveryId,
    /// The token of the lease the attempt is made under: its result lands only under it.
    pub lease: String,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: u32,
    pub replay: u32,
    pub payload: String,
    pub endpoint_id: EndpointId,
}

/// Takes a lease on the delivery for its attempt number `attempt` until `lease_until`: only one
/// worker attempts it, however often the queue delivers the task. None when the delivery is not
/// pending, is at another attempt, or is leased by someone else.
pub async fn claim(
    db: &Db,
    tenant: &Tenant,
    delivery_id: &DeliveryId,
    attempt: u32,
    now: Timestamp,
    lease: &Lease,
) -> Result<Option<Claimed>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        event_id: EventId,
        event_type: String,
        replays: u32,
        endpoint_id: EndpointId,
    }
    #[derive(Deserialize)]
    struct Payload {
        payload: Option<String>,
    }
    let results = db
        .batch(vec![
            db.scoped(tenant, "UPDATE webhook_deliveries SET leased_until_us = ?5, lease = ?6 WHERE business_id = ?1 AND id = ?2 \
                 AND status = 'pending' AND attempts = ?3 AND (leased_until_us IS NULL OR leased_until_us < ?4) \
                 RETURNING event_id, event_type, replays, endpoint_id",
            )
            .bind(&[
                db::text(delivery_id.as_str()),
                number(i64::from(attempt.saturating_sub(1))),
                number(now.micros()),
                number(lease.until.micros()),
                text(&lease.token),
            ])?,
            db.scoped(tenant, "SELECT ev.payload FROM webhook_deliveries d JOIN webhook_events ev \
                 ON ev.business_id = d.business_id AND ev.id = d.event_id WHERE d.business_id = ?1 AND d.id = ?2",
            )
            .bind(&[db::text(delivery_id.as_str())])?,
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
        .ok_or_else(|| db::corrupt("webhook event", row.event_id.as_str(), "payload"))?;
    Ok(Some(Claimed {
        delivery_id: delivery_id.clone(),
        lease: lease.token.clone(),
        event_id: row.event_id,
        event_type: row.event_type,
        attempt,
        replay: row.replays,
        payload,
        endpoint_id: row.endpoint_id,
    }))
}

/// The statement that settles a delivery after attempt `attempt` made under `lease`: `pending`
/// again (due at `next`), `delivered` or `dead`, with the answer it got; its lease is released.
/// It changes nothing unless the delivery is still pending under that lease (a sweep may have
/// handed it to another worker, a replay may have started a new round).
#[allow(clippy::too_many_arguments)]
pub fn settle(
    db: &Db,
    tenant: &Tenant,
    id: &DeliveryId,
    lease: &str,
    attempt: u32,
    status: &str,
    next: Option<Timestamp>,
    last_status: Option<u16>,
    last_error: Option<&str>,
    at: Timestamp,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "UPDATE webhook_deliveries SET attempts = ?3, status = ?4, next_attempt_us = ?5, leased_until_us = NULL, \
             lease = NULL, last_status = ?6, last_error = ?7, updated_us = ?8 \
             WHERE business_id = ?1 AND id = ?2 AND status = 'pending' AND lease = ?9",
        )
        .bind(&[
            text(id.as_str()),
            number(i64::from(attempt)),
            text(status),
            db::optional_number(next.map(Timestamp::micros)),
            db::optional_number(last_status.map(i64::from)),
            db::optional_text(last_error),
            number(at.micros()),
            text(lease),
        ])?)
}

/// Moves a delivery leased under `lease` to the dead without an attempt, saying why; its last
/// answer stays.
pub async fn abandon(
    db: &Db,
    tenant: &Tenant,
    delivery_id: &DeliveryId,
    lease: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    db.scoped(tenant, "UPDATE webhook_deliveries SET status = 'dead', next_attempt_us = NULL, leased_until_us = NULL, lease = NULL, \
         last_error = ?3, updated_us = ?4 WHERE business_id = ?1 AND id = ?2 AND status = 'pending' AND lease = ?5",
    )
    .bind(&[
        db::text(delivery_id.as_str()),
        db::text(reason),
        number(now.micros()),
        db::text(lease),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Lets go of the leases `lease` holds on `delivery_ids` without an attempt: each stays pending
/// at its attempt, for the next worker that claims it.
pub async fn release(
    db: &Db,
    tenant: &Tenant,
    delivery_ids: &[&DeliveryId],
    lease: &str,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE webhook_deliveries SET leased_until_us = NULL, lease = NULL WHERE +business_id = ?1 \
         AND id IN (SELECT value FROM json_each(?2)) AND status = 'pending' AND lease = ?3",
    )
    .bind(&[
        db::json_list(delivery_ids.iter().map(|id| id.as_str())),
        db::text(lease),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The statement that removes an endpoint's deliveries (with the endpoint).
pub fn delete_of_endpoint(db: &Db, tenant: &Tenant, endpoint: &EndpointId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2",
        )
        .bind(&[text(endpoint.as_str())])?)
}

/// Pending deliveries due before `before` that nobody holds at `now`, across businesses (the
/// sweep's work): (business, delivery, the attempt it is due for); at most `limit`.
pub async fn overdue(
    db: &Db,
    before: Timestamp,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<(BusinessId, DeliveryId, u32)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: DeliveryId,
        attempts: u32,
    }
    let result = db
        .unscoped(
            "SELECT business_id, id, attempts FROM webhook_deliveries WHERE status = 'pending' \
             AND next_attempt_us < ?1 AND (leased_until_us IS NULL OR leased_until_us < ?2) \
             ORDER BY next_attempt_us LIMIT ?3",
        )
        .bind(&[
            number(before.micros()),
            number(now.micros()),
            number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result
        .results::<Row>()?
        .into_iter()
        .map(|row| (row.business_id, row.id, row.attempts + 1))
        .collect())
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub event_id: EventId,
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
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    endpoint_id: &EndpointId,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRow>, ApiError> {
    let result = db
        .scoped(tenant, "SELECT id, event_id, event_type, status, attempts, replays, next_attempt_us, last_status, last_error, event_us \
             FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2 AND (?3 IS NULL OR status = ?3) \
             ORDER BY event_us DESC, id LIMIT ?4",
        )
        .bind(&[
            db::text(endpoint_id.as_str()),
            db::optional_text(status),
            number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.results::<DeliveryRow>()?)
}

/// Which deliveries of an endpoint to replay.
pub enum ReplaySelection<'a> {
    One(&'a DeliveryId),
    /// Dead deliveries whose event happened in `[from, to)`.
    DeadBetween(Timestamp, Timestamp),
}

/// The most deliveries one replay request re-queues.
pub const MAX_REPLAY: usize = 1000;

/// Puts the selected deliveries back to pending for a new round of attempts; their ids.
pub async fn replay(
    db: &Db,
    tenant: &Tenant,
    endpoint_id: &EndpointId,
    selection: ReplaySelection<'_>,
    now: Timestamp,
) -> Result<Vec<DeliveryId>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: DeliveryId,
    }
    let set = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, replays = replays + 1, \
               next_attempt_us = ?3, leased_until_us = NULL, lease = NULL, updated_us = ?3 \
               WHERE business_id = ?1 AND endpoint_id = ?2 \
               AND event_id IN (SELECT id FROM webhook_events WHERE business_id = ?1 AND payload IS NOT NULL) AND";
    let statement = match selection {
        ReplaySelection::One(delivery_id) => db
            .scoped(tenant, format!("{set} id = ?4 AND status <> 'pending' RETURNING id"))
            .bind(&[db::text(endpoint_id.as_str()), number(now.micros()), db::text(delivery_id.as_str())])?,
        ReplaySelection::DeadBetween(from, to) => db
            .scoped(tenant, format!(
                "{set} id IN (SELECT id FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2 \
                 AND status = 'dead' AND event_us >= ?4 AND event_us < ?5 ORDER BY event_us LIMIT {MAX_REPLAY}) \
                 RETURNING id"
            ))
            .bind(&[
                db::text(endpoint_id.as_str()),
                number(now.micros()),
                number(from.micros()),
                number(to.micros()),
            ])?,
    };
    let result = statement.all().await?;
    Ok(result.results::<Row>()?.into_iter().map(|row| row.id).collect())
}

/// The condition that no delivery of the event whose id is `event_id_expression` is pending:
/// every endpoint has it (delivered) or has given up on it (dead).
pub fn none_pending(event_id_expression: &str) -> Sql {
    Sql::new(format!(
        "NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = {event_id_expression} AND d.status = 'pending')"
    ))
}

/// The statement that deletes every delivery of the events `event_ids` selects (SQL that yields
/// event ids), across businesses: retention deletes them with their events.
pub fn delete_of_events(db: &Db, event_ids: Sql) -> Result<Statement, ApiError> {
    event_ids
        .within("DELETE FROM webhook_deliveries WHERE event_id IN ({sql})")
        .unscoped(db)
}
