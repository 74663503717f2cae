//! `webhook_deliveries`: one event's delivery to one endpoint, its state (`pending`, `delivered`,
//! `dead`), its attempts so far, when it is due, and who holds it. Every statement is scoped by
//! the tenant, but for the sweep, which looks for lost work across businesses and deletes the
//! deliveries of events past retention.

use crate::db::Read;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::error::ApiError;
use domain::ids::{BusinessId, DeliveryId, EndpointId, EventId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// The statement that reads the first attempts `event_ids` are due: one per event and enabled
/// endpoint subscribed to it that neither has a delivery row nor logged an attempt of it, so
/// that a dispatch repeated (the queue's redelivery, the sweep's) attempts nothing twice that
/// the first recorded. Nothing is written before a first attempt: its delivery gets a row only
/// if the attempt does not settle it ([`insert`]), and is known meanwhile by its id
/// ([`DeliveryId::of`]). It reads as the deliveries due.
pub fn first_due(db: &Db, tenant: &Tenant, event_ids: &[EventId]) -> Result<Read<Vec<Claimed>>, ApiError> {
    Ok(Read::new(db
        .scoped(tenant, "SELECT e.id AS endpoint_id, ev.id AS event_id, ev.type AS event_type \
             FROM webhook_events ev JOIN webhook_endpoints e ON e.business_id = ev.business_id \
             WHERE +ev.business_id = ?1 AND ev.id IN (SELECT value FROM json_each(?2)) \
             AND e.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(e.events) s WHERE s.value = ev.type) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.business_id = ?1 AND d.event_id = ev.id \
               AND d.endpoint_id = e.id) \
             AND NOT EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.business_id = ?1 AND a.event_id = ev.id \
               AND a.endpoint_id = e.id AND a.delivery_id IS NOT NULL) \
             ORDER BY ev.created_us",
        )
        .bind(&[db::json_list(event_ids.iter().map(EventId::as_str))])?, read_first_due))
}

/// The first attempts a [`first_due`] statement found, each claimed without a lease (no other
/// worker can claim a delivery that has no row) and without its body, which the dispatch has
/// with its events.
fn read_first_due(answer: &D1Result) -> Result<Vec<Claimed>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        endpoint_id: EndpointId,
        event_id: EventId,
        event_type: String,
    }
    Ok(db::rows::<Row>(answer)?
        .into_iter()
        .map(|row| Claimed {
            delivery_id: DeliveryId::of(&row.endpoint_id, &row.event_id),
            lease: None,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type,
            attempt: 1,
            replay: 0,
            payload: None,
        })
        .collect())
}

/// Where a delivery stands after an attempt (or without one): `pending` again (due at `next`),
/// `delivered` or `dead`, after `attempts` attempts, with the last answer.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub status: &'a str,
    pub attempts: u32,
    pub next: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<&'a str>,
    pub at: Timestamp,
}

/// The statement that gives the delivery `claimed` for its first attempt its row, as it stands:
/// pending for a retry, or dead. Once only: a row made already stays as it is.
fn insert(
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    standing: &Standing<'_>,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, attempts, \
             next_attempt_us, last_status, last_error, event_us, updated_us) \
             SELECT ?2, ?1, ?3, ev.id, ev.type, ?5, ?6, ?7, ?8, ?9, ev.created_us, ?10 \
             FROM webhook_events ev WHERE ev.business_id = ?1 AND ev.id = ?4 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&[
            text(claimed.delivery_id.as_str()),
            text(claimed.endpoint_id.as_str()),
            text(claimed.event_id.as_str()),
            text(standing.status),
            number(i64::from(standing.attempts)),
            db::optional_number(standing.next.map(Timestamp::micros)),
            db::optional_number(standing.last_status.map(i64::from)),
            db::optional_text(standing.last_error),
            number(standing.at.micros()),
        ])?)
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
    /// The token of the lease the attempt is made under: its result lands only under it. None
    /// for a first attempt, whose delivery has no row to lease until the attempt ends.
    pub lease: Option<String>,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: u32,
    pub replay: u32,
    /// The event's body, once it is fixed: a dispatch that claimed the delivery but did not get
    /// to store the body it built leaves it to the next claim to build.
    pub payload: Option<String>,
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
        .map(|result| result.rows::<Row>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next());
    let Some(row) = row else {
        return Ok(None);
    };
    let payload = results
        .get(1)
        .map(|result| result.rows::<Payload>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.payload);
    Ok(Some(Claimed {
        delivery_id: delivery_id.clone(),
        lease: Some(lease.token.clone()),
        event_id: row.event_id,
        event_type: row.event_type,
        attempt,
        replay: row.replays,
        payload,
        endpoint_id: row.endpoint_id,
    }))
}

/// The statement that settles a delivery after an attempt, as it now stands. Under a lease, the
/// delivery's row is updated and the lease released, and only while it is still pending under
/// that lease (a sweep may have handed it to another worker, a replay may have started a new
/// round). A first attempt's delivery gets its row now unless the attempt delivered it: None.
pub fn settle(
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    standing: &Standing<'_>,
) -> Result<Option<Statement>, ApiError> {
    let Some(lease) = claimed.lease.as_deref() else {
        return if standing.status == "delivered" {
            Ok(None)
        } else {
            insert(db, tenant, claimed, standing).map(Some)
        };
    };
    Ok(Some(
        db.scoped(tenant, "UPDATE webhook_deliveries SET attempts = ?3, status = ?4, next_attempt_us = ?5, leased_until_us = NULL, \
             lease = NULL, last_status = ?6, last_error = ?7, updated_us = ?8 \
             WHERE business_id = ?1 AND id = ?2 AND status = 'pending' AND lease = ?9",
        )
        .bind(&[
            text(claimed.delivery_id.as_str()),
            number(i64::from(standing.attempts)),
            text(standing.status),
            db::optional_number(standing.next.map(Timestamp::micros)),
            db::optional_number(standing.last_status.map(i64::from)),
            db::optional_text(standing.last_error),
            number(standing.at.micros()),
            text(lease),
        ])?,
    ))
}

/// The statement that moves a claimed delivery to the dead without an attempt, saying why: under
/// its lease, keeping its last answer; a first attempt's, as a row of its own.
pub fn abandon(
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    reason: &str,
    now: Timestamp,
) -> Result<Statement, ApiError> {
    let Some(lease) = claimed.lease.as_deref() else {
        let standing = Standing {
            status: "dead",
            attempts: claimed.attempt.saturating_sub(1),
            next: None,
            last_status: None,
            last_error: Some(reason),
            at: now,
        };
        return insert(db, tenant, claimed, &standing);
    };
    Ok(db.scoped(tenant, "UPDATE webhook_deliveries SET status = 'dead', next_attempt_us = NULL, leased_until_us = NULL, lease = NULL, \
         last_error = ?3, updated_us = ?4 WHERE business_id = ?1 AND id = ?2 AND status = 'pending' AND lease = ?5",
    )
    .bind(&[
        db::text(claimed.delivery_id.as_str()),
        db::text(reason),
        number(now.micros()),
        db::text(lease),
    ])?)
}

/// The statement that gives first attempts a dispatch had no room for their rows, pending and
/// due now at no attempt yet, for tasks of their own to claim.
pub fn hand_on(
    db: &Db,
    tenant: &Tenant,
    claimed: &[&Claimed],
    now: Timestamp,
) -> Result<Statement, ApiError> {
    let pairs = serde_json::Value::Array(
        claimed
            .iter()
            .map(|c| {
                serde_json::json!([
                    c.delivery_id.as_str(),
                    c.endpoint_id.as_str(),
                    c.event_id.as_str()
                ])
            })
            .collect(),
    );
    Ok(db
        .scoped(tenant, "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, attempts, \
             next_attempt_us, event_us, updated_us) \
             SELECT p.value ->> 0, ?1, p.value ->> 1, ev.id, ev.type, 'pending', 0, ?3, ev.created_us, ?3 \
             FROM json_each(?2) p JOIN webhook_events ev ON ev.id = p.value ->> 2 AND +ev.business_id = ?1 \
             WHERE true ON CONFLICT DO NOTHING",
        )
        .bind(&[text(&pairs.to_string()), number(now.micros())])?)
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
    moving: &Moving,
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
             AND business_id NOT IN (SELECT value FROM json_each(?4)) ORDER BY next_attempt_us LIMIT ?3",
        )
        .bind(&[
            number(before.micros()),
            number(now.micros()),
            number(limit as i64),
            moving.param(),
        ])?
        .all()
        .await?;
    Ok(result
        .rows::<Row>()?
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

/// The endpoint's deliveries, newest event first, optionally of one status: those with a row,
/// and those their first attempt delivered, as that attempt logged them.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    endpoint_id: &EndpointId,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRow>, ApiError> {
    let result = db
        .scoped(tenant, "SELECT * FROM (SELECT id, event_id, event_type, status, attempts, replays, next_attempt_us, last_status, \
             last_error, event_us FROM webhook_deliveries WHERE business_id = ?1 AND endpoint_id = ?2 AND (?3 IS NULL OR status = ?3) \
             ORDER BY event_us DESC, id LIMIT ?4) \
             UNION ALL SELECT * FROM (SELECT a.delivery_id AS id, a.event_id, a.event_type, 'delivered' AS status, 1 AS attempts, \
             0 AS replays, NULL AS next_attempt_us, a.status_code AS last_status, NULL AS last_error, a.event_us \
             FROM webhook_attempts a WHERE a.business_id = ?1 AND a.endpoint_id = ?2 AND (?3 IS NULL OR ?3 = 'delivered') \
             AND a.attempt = 1 AND a.replay = 0 AND a.outcome = 'delivered' AND a.event_us IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id) ORDER BY a.id DESC LIMIT ?4) \
             ORDER BY event_us DESC, id LIMIT ?4",
        )
        .bind(&[
            db::text(endpoint_id.as_str()),
            db::optional_text(status),
            number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.rows::<DeliveryRow>()?)
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
    let mut statements = Vec::with_capacity(2);
    let statement = match selection {
        ReplaySelection::One(delivery_id) => {
            // A delivery its first attempt settled has no row: it gets one, as that attempt left it.
            if let Some(event_id) = delivery_id.event_at(endpoint_id) {
                statements.push(
                    db.scoped(tenant, "INSERT INTO webhook_deliveries (id, business_id, endpoint_id, event_id, event_type, status, \
                         attempts, last_status, event_us, updated_us) \
                         SELECT a.delivery_id, ?1, a.endpoint_id, a.event_id, a.event_type, 'delivered', 1, a.status_code, \
                         a.event_us, a.attempted_us FROM webhook_attempts a WHERE a.business_id = ?1 AND a.event_id = ?3 \
                         AND a.endpoint_id = ?2 AND a.delivery_id = ?4 AND a.attempt = 1 AND a.replay = 0 \
                         AND a.outcome = 'delivered' AND a.event_us IS NOT NULL LIMIT 1 \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&[
                        db::text(endpoint_id.as_str()),
                        db::text(event_id.as_str()),
                        db::text(delivery_id.as_str()),
                    ])?,
                );
            }
            db.scoped(tenant, format!("{set} id = ?4 AND status <> 'pending' RETURNING id"))
                .bind(&[db::text(endpoint_id.as_str()), number(now.micros()), db::text(delivery_id.as_str())])?
        }
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
    let mut batch = db::Batch::default();
    batch.push(statements);
    let replayed = batch.read(db::Read::<Vec<Row>>::rows(statement));
    Ok(batch
        .run(db)
        .await?
        .take(replayed)?
        .into_iter()
        .map(|row| row.id)
        .collect())
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

/// A restore's quarantine: the business's pending deliveries are dead-lettered with `reason`
/// (listed as dead, and replayed by the operator or the business if they are still wanted).
pub fn kill_pending(db: &Db, tenant: &Tenant, reason: &str, now_us: i64) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE webhook_deliveries SET status = 'dead', last_error = ?2, next_attempt_us = NULL, \
             leased_until_us = NULL, updated_us = ?3 WHERE business_id = ?1 AND status = 'pending'",
        )
        .bind(&[text(reason), number(now_us)])?)
}

/// The statement that deletes the business's deliveries of the events `events` selects (an
/// erasure's).
pub fn erase_of_events(db: &Db, tenant: &Tenant, events: Sql) -> Result<Statement, ApiError> {
    events
        .within("DELETE FROM webhook_deliveries WHERE business_id = :business AND event_id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::webhook_endpoints::{self, Endpoint};
    use crate::db::webhook_events;
    use crate::testing::{Fixture, Must, new_endpoint};
    use domain::webhooks::EventType;
    use serde_json::json;
    use std::time::Duration;

    const SUBJECT: &str = "c0a8d5b6-1f1e-4c3b-9a55-6f7b6f0c1e2d";

    fn lease(token: &str, until: Timestamp) -> Lease {
        Lease {
            token: token.to_owned(),
            until,
        }
    }

    /// The first attempts `events` are due now, handed on (their rows made, pending) with their
    /// bodies fixed and events marked, then each claimed under `token` for 25 s: the deliveries
    /// a retrying worker holds.
    async fn dispatch(fixture: &Fixture, tenant: &Tenant, events: &[EventId], token: &str) -> Vec<Claimed> {
        let now = fixture.now();
        let due = first_due(&fixture.db, tenant, events).must().run().await.must();
        if due.is_empty() {
            return due;
        }
        let handed: Vec<&Claimed> = due.iter().collect();
        fixture
            .changes(hand_on(&fixture.db, tenant, &handed, now).must())
            .await;
        let bodies: Vec<String> = events.iter().map(|id| format!("{{\"id\":\"{id}\"}}")).collect();
        let fixed: Vec<(&EventId, Option<&str>)> = events
            .iter()
            .zip(&bodies)
            .map(|(id, body)| (id, Some(body.as_str())))
            .collect();
        fixture
            .changes(webhook_events::dispatched(&fixture.db, tenant, &fixed, now).must())
            .await;
        let mut claimed = Vec::with_capacity(due.len());
        for first in &due {
            let held = claim(
                &fixture.db,
                tenant,
                &first.delivery_id,
                1,
                now,
                &lease(token, now.plus_seconds(25)),
            )
            .await
            .must()
            .unwrap_or_else(|| panic!("{} claimed", first.delivery_id));
            claimed.push(held);
        }
        claimed
    }

    async fn event(fixture: &Fixture, tenant: &Tenant, kind: EventType) -> EventId {
        fixture
            .event(tenant, kind, SUBJECT)
            .await
            .unwrap_or_else(|| panic!("recorded"))
    }

    async fn settle_now(
        fixture: &Fixture,
        tenant: &Tenant,
        claimed: &Claimed,
        token: &str,
        status: &str,
        next: Option<Timestamp>,
    ) -> usize {
        let held = held(claimed, token);
        let standing = Standing {
            status,
            attempts: claimed.attempt,
            next,
            last_status: Some(500),
            last_error: Some("server error"),
            at: fixture.now(),
        };
        let statement = settle(&fixture.db, tenant, &held, &standing).must();
        fixture
            .changes(statement.unwrap_or_else(|| panic!("under a lease, a statement")))
            .await
    }

    /// `claimed` as held under `token`.
    fn held(claimed: &Claimed, token: &str) -> Claimed {
        Claimed {
            lease: Some(token.to_owned()),
            ..claimed.clone()
        }
    }

    fn row_of(fixture: &Fixture, id: &DeliveryId) -> serde_json::Map<String, serde_json::Value> {
        fixture
            .rows("webhook_deliveries", "id")
            .into_iter()
            .find(|row| row["id"] == json!(id.as_str()))
            .unwrap_or_else(|| panic!("delivery {id}"))
    }

    #[test]
    fn a_dispatch_is_due_one_first_attempt_per_event_and_subscribed_endpoint_until_one_is_recorded() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let created_only = fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let both = fixture
                .endpoint(&acme, &[EventType::CustomerCreated, EventType::CustomerUpdated])
                .await;
            let updated_only = fixture.endpoint(&acme, &[EventType::CustomerUpdated]).await;
            let off = Endpoint {
                enabled: false,
                ..new_endpoint(fixture.now(), &[EventType::CustomerCreated])
            };
            webhook_endpoints::insert(&fixture.db, &fixture.keys(), &acme, &off)
                .await
                .must();
            let globex = fixture.business_on("Globex", 0).await;
            fixture.endpoint(&globex, &[EventType::CustomerCreated]).await;
            let (created_event, updated_event) = (
                event(&fixture, &acme, EventType::CustomerCreated).await,
                event(&fixture, &acme, EventType::CustomerUpdated).await,
            );
            let events = [created_event.clone(), updated_event.clone()];
            let due = |tenant: &Tenant| {
                let statement = first_due(&fixture.db, tenant, &events).must();
                async move { statement.run().await.must() }
            };
            let claimed = due(&acme).await;
            let mut pairs: Vec<(EndpointId, EventId)> = claimed
                .iter()
                .map(|c| (c.endpoint_id.clone(), c.event_id.clone()))
                .collect();
            pairs.sort();
            let mut expected = vec![
                (created_only.id.clone(), created_event.clone()),
                (both.id.clone(), created_event.clone()),
                (both.id.clone(), updated_event.clone()),
                (updated_only.id.clone(), updated_event.clone()),
            ];
            expected.sort();
            assert_eq!(
                pairs, expected,
                "neither the disabled endpoint nor another business's"
            );
            for delivery in &claimed {
                assert_eq!(
                    (delivery.attempt, delivery.replay, delivery.lease.as_deref()),
                    (1, 0, None)
                );
                assert_eq!(
                    delivery.delivery_id,
                    DeliveryId::of(&delivery.endpoint_id, &delivery.event_id)
                );
                assert_eq!(delivery.payload, None, "no body fixed yet");
            }
            assert!(
                fixture.rows("webhook_deliveries", "id").is_empty(),
                "nothing written"
            );
            assert!(due(&globex).await.is_empty(), "not another business's events");

            // One first attempt logged, one delivery handed on with a row: the other two are due.
            let logged = &claimed[0];
            let record = crate::db::webhook_attempts::AttemptRecord {
                endpoint_id: &logged.endpoint_id,
                delivery_id: Some(&logged.delivery_id),
                event_id: &logged.event_id,
                event_type: &logged.event_type,
                attempt: 1,
                replay: 0,
                url: "https://hooks.example.com/",
                status_code: Some(200),
                response_body: None,
                duration_ms: 3,
                error: None,
                outcome: crate::db::webhook_attempts::AttemptOutcome::Delivered,
                at: fixture.now(),
            };
            fixture
                .changes(crate::db::webhook_attempts::insert(&fixture.db, &acme, &record).must())
                .await;
            fixture
                .changes(hand_on(&fixture.db, &acme, &[&claimed[1]], fixture.now()).must())
                .await;
            let left: Vec<DeliveryId> = due(&acme).await.into_iter().map(|c| c.delivery_id).collect();
            assert_eq!(
                left,
                vec![claimed[2].delivery_id.clone(), claimed[3].delivery_id.clone()]
            );
            let row = row_of(&fixture, &claimed[1].delivery_id);
            assert_eq!(
                (
                    row["status"].clone(),
                    row["attempts"].clone(),
                    row["lease"].clone()
                ),
                (json!("pending"), json!(0), json!(null)),
                "handed on: pending at no attempt, for a task to claim"
            );
            assert_eq!(row["event_type"], json!(claimed[1].event_type));
            assert_eq!(row["business_id"], json!(acme.business_id.as_str()));
        });
    }

    #[test]
    fn an_unbuildable_events_delivery_is_dead_at_once_and_never_replayed() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let id = event(&fixture, &acme, EventType::CustomerCreated).await;
            let now = fixture.now();
            let claimed = first_due(&fixture.db, &acme, std::slice::from_ref(&id))
                .must()
                .run()
                .await
                .must();
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0].payload, None, "no body fixed yet");
            let abandoned = || abandon(&fixture.db, &acme, &claimed[0], "its message is gone", now).must();
            assert_eq!(fixture.changes(abandoned()).await, 1, "a row of its own, dead");
            assert_eq!(fixture.changes(abandoned()).await, 0, "once");
            let listed = list(&fixture.db, &acme, &endpoint.id, Some("dead"), 10)
                .await
                .must();
            assert_eq!(listed.len(), 1);
            assert_eq!(
                (listed[0].attempts, listed[0].last_error.as_deref()),
                (0, Some("its message is gone"))
            );
            let replayed = replay(
                &fixture.db,
                &acme,
                &endpoint.id,
                ReplaySelection::One(&listed[0].id),
                now,
            )
            .await
            .must();
            assert!(replayed.is_empty(), "an event without a body is not replayed");
            let between = ReplaySelection::DeadBetween(now.plus_seconds(-60), now.plus_seconds(60));
            assert!(
                replay(&fixture.db, &acme, &endpoint.id, between, now)
                    .await
                    .must()
                    .is_empty()
            );
        });
    }

    /// Claims the delivery for `attempt` now under `token`, for 30 s.
    async fn take(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &DeliveryId,
        token: &str,
        attempt: u32,
    ) -> Result<Option<Claimed>, ApiError> {
        let now = fixture.now();
        claim(
            &fixture.db,
            tenant,
            id,
            attempt,
            now,
            &lease(token, now.plus_seconds(30)),
        )
        .await
    }

    #[test]
    fn a_delivery_is_attempted_by_one_worker_until_its_lease_runs_out() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let id = event(&fixture, &acme, EventType::CustomerCreated).await;
            let first = dispatch(&fixture, &acme, &[id], "dispatcher").await.remove(0);
            let take =
                |token: &'static str, attempt: u32| take(&fixture, &acme, &first.delivery_id, token, attempt);
            assert!(
                take("queue", 1).await.must().is_none(),
                "the dispatcher holds it for its first attempt"
            );
            fixture.stack.advance(Duration::from_secs(25));
            assert!(
                take("queue", 1).await.must().is_none(),
                "held to the end of its lease (one 10 s timeout and 15 s to spare)"
            );
            fixture.stack.advance(Duration::from_millis(1));
            assert!(
                take("queue", 2).await.must().is_none(),
                "it is at its first attempt"
            );
            let claimed = take("queue", 1)
                .await
                .must()
                .unwrap_or_else(|| panic!("the lease ran out"));
            assert_eq!(
                (
                    claimed.attempt,
                    claimed.lease.as_deref(),
                    claimed.payload.as_deref()
                ),
                (1, Some("queue"), first.payload.as_deref())
            );
            assert!(
                take("other", 1).await.must().is_none(),
                "held by the queue's worker now"
            );

            assert_eq!(
                settle_now(&fixture, &acme, &first, "dispatcher", "delivered", None).await,
                0,
                "a late result from the lease that ran out changes nothing"
            );
            let retry_at = fixture.now().plus_seconds(60);
            assert_eq!(
                settle_now(&fixture, &acme, &claimed, "queue", "pending", Some(retry_at)).await,
                1
            );
            let row = row_of(&fixture, &first.delivery_id);
            assert_eq!(
                (
                    row["attempts"].clone(),
                    row["lease"].clone(),
                    row["leased_until_us"].clone()
                ),
                (json!(1), json!(null), json!(null))
            );
            assert_eq!(
                (row["next_attempt_us"].clone(), row["last_status"].clone()),
                (json!(retry_at.micros()), json!(500))
            );
            let second = take("retry", 2)
                .await
                .must()
                .unwrap_or_else(|| panic!("its second attempt"));
            assert_eq!(
                settle_now(&fixture, &acme, &second, "retry", "delivered", None).await,
                1
            );
            assert!(
                take("retry", 3).await.must().is_none(),
                "delivered: no more attempts"
            );
        });
    }

    #[test]
    fn a_delivery_is_abandoned_only_by_its_leases_holder() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let id = event(&fixture, &acme, EventType::CustomerCreated).await;
            let claimed = dispatch(&fixture, &acme, &[id], "holder").await.remove(0);
            let now = fixture.now();
            let abandoned = |token: &str| {
                abandon(
                    &fixture.db,
                    &acme,
                    &held(&claimed, token),
                    "its endpoint was deleted",
                    now,
                )
                .must()
            };
            assert_eq!(fixture.changes(abandoned("someone-else")).await, 0);
            assert_eq!(row_of(&fixture, &claimed.delivery_id)["status"], json!("pending"));
            assert_eq!(fixture.changes(abandoned("holder")).await, 1);
            let row = row_of(&fixture, &claimed.delivery_id);
            assert_eq!(
                (row["status"].clone(), row["last_error"].clone()),
                (json!("dead"), json!("its endpoint was deleted"))
            );
            assert_eq!(
                (row["lease"].clone(), row["next_attempt_us"].clone()),
                (json!(null), json!(null))
            );
        });
    }

    #[test]
    fn the_sweep_finds_each_shards_overdue_deliveries_that_nobody_holds() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            for tenant in [&acme, &globex] {
                fixture.endpoint(tenant, &[EventType::CustomerCreated]).await;
            }
            let lost = dispatch(
                &fixture,
                &acme,
                &[event(&fixture, &acme, EventType::CustomerCreated).await],
                "a",
            )
            .await
            .remove(0);
            let retried = dispatch(
                &fixture,
                &acme,
                &[event(&fixture, &acme, EventType::CustomerCreated).await],
                "b",
            )
            .await
            .remove(0);
            let delivered = dispatch(
                &fixture,
                &acme,
                &[event(&fixture, &acme, EventType::CustomerCreated).await],
                "c",
            )
            .await
            .remove(0);
            let theirs = dispatch(
                &fixture,
                &globex,
                &[event(&fixture, &globex, EventType::CustomerCreated).await],
                "d",
            )
            .await
            .remove(0);
            settle_now(
                &fixture,
                &acme,
                &retried,
                "b",
                "pending",
                Some(fixture.now().plus_seconds(3600)),
            )
            .await;
            settle_now(&fixture, &acme, &delivered, "c", "delivered", None).await;
            let shards = fixture.db.each_shard();
            let now = fixture.now();
            assert!(
                overdue(&shards[0], &Moving::NONE, now.plus_seconds(1), now, 10)
                    .await
                    .must()
                    .is_empty(),
                "still leased"
            );

            fixture.stack.advance(Duration::from_secs(300));
            let now = fixture.now();
            let before = now.plus_seconds(-120);
            assert_eq!(
                overdue(&shards[0], &Moving::NONE, before, now, 10).await.must(),
                [(acme.business_id.clone(), lost.delivery_id.clone(), 1)]
            );
            assert_eq!(
                overdue(&shards[1], &Moving::NONE, before, now, 10).await.must(),
                [(globex.business_id.clone(), theirs.delivery_id.clone(), 1)]
            );
            fixture.stack.advance(Duration::from_secs(3600));
            let now = fixture.now();
            let found = overdue(&shards[0], &Moving::NONE, now.plus_seconds(-120), now, 10)
                .await
                .must();
            assert_eq!(
                found,
                [
                    (acme.business_id.clone(), lost.delivery_id.clone(), 1),
                    (acme.business_id.clone(), retried.delivery_id.clone(), 2)
                ],
                "most overdue first, each at the attempt it is due for"
            );
            assert_eq!(
                overdue(&shards[0], &Moving::NONE, now.plus_seconds(-120), now, 1)
                    .await
                    .must()
                    .len(),
                1,
                "the limit"
            );
        });
    }

    #[test]
    fn an_endpoints_deliveries_are_listed_newest_event_first_and_replayed_as_a_new_round() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let other = fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let mut claimed = Vec::new();
            for _ in 0..3 {
                let id = event(&fixture, &acme, EventType::CustomerCreated).await;
                let made = dispatch(&fixture, &acme, &[id], "t").await;
                claimed.extend(made.into_iter().filter(|c| c.endpoint_id == endpoint.id));
                fixture.stack.advance(Duration::from_secs(10));
            }
            settle_now(&fixture, &acme, &claimed[0], "t", "dead", None).await;
            settle_now(&fixture, &acme, &claimed[1], "t", "dead", None).await;
            let ids = |rows: Vec<DeliveryRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
            let all = list(&fixture.db, &acme, &endpoint.id, None, 10).await.must();
            let newest_first: Vec<DeliveryId> = claimed.iter().rev().map(|c| c.delivery_id.clone()).collect();
            assert_eq!(ids(all), newest_first);
            assert_eq!(
                ids(list(&fixture.db, &acme, &endpoint.id, Some("dead"), 1)
                    .await
                    .must()),
                [claimed[1].delivery_id.clone()]
            );
            assert_eq!(
                list(&fixture.db, &acme, &other.id, None, 10).await.must().len(),
                3,
                "the other endpoint's own"
            );

            let now = fixture.now();
            let pending_one = ReplaySelection::One(&claimed[2].delivery_id);
            assert!(
                replay(&fixture.db, &acme, &endpoint.id, pending_one, now)
                    .await
                    .must()
                    .is_empty(),
                "a pending delivery"
            );
            let first_event_us = row_of(&fixture, &claimed[0].delivery_id)["event_us"]
                .as_i64()
                .unwrap_or(0);
            let window = ReplaySelection::DeadBetween(
                Timestamp::from_micros(first_event_us),
                Timestamp::from_micros(first_event_us + 1),
            );
            assert_eq!(
                replay(&fixture.db, &acme, &endpoint.id, window, now).await.must(),
                [claimed[0].delivery_id.clone()]
            );
            let row = row_of(&fixture, &claimed[0].delivery_id);
            assert_eq!(
                (
                    row["status"].clone(),
                    row["attempts"].clone(),
                    row["replays"].clone(),
                    row["next_attempt_us"].clone()
                ),
                (json!("pending"), json!(0), json!(1), json!(now.micros()))
            );
            let one = ReplaySelection::One(&claimed[1].delivery_id);
            assert_eq!(
                replay(&fixture.db, &acme, &other.id, one, now).await.must(),
                Vec::<DeliveryId>::new(),
                "through another endpoint"
            );
            let one = ReplaySelection::One(&claimed[1].delivery_id);
            assert_eq!(
                replay(&fixture.db, &acme, &endpoint.id, one, now).await.must(),
                [claimed[1].delivery_id.clone()]
            );
            let again = claim(
                &fixture.db,
                &acme,
                &claimed[1].delivery_id,
                1,
                now,
                &lease("r", now.plus_seconds(30)),
            )
            .await
            .must();
            assert_eq!(
                again.map(|c| (c.attempt, c.replay)),
                Some((1, 1)),
                "its first attempt of the new round"
            );
        });
    }

    #[test]
    fn another_business_neither_claims_nor_settles_nor_replays_a_delivery() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::CustomerCreated]).await;
            let id = event(&fixture, &acme, EventType::CustomerCreated).await;
            let claimed = dispatch(&fixture, &acme, &[id], "t").await.remove(0);
            fixture.stack.advance(Duration::from_secs(31));
            let now = fixture.now();
            assert!(
                claim(
                    &fixture.db,
                    &globex,
                    &claimed.delivery_id,
                    1,
                    now,
                    &lease("x", now.plus_seconds(30))
                )
                .await
                .must()
                .is_none()
            );
            assert_eq!(
                settle_now(&fixture, &globex, &claimed, "t", "delivered", None).await,
                0
            );
            fixture
                .changes(abandon(&fixture.db, &globex, &claimed, "theirs", now).must())
                .await;
            assert!(
                list(&fixture.db, &globex, &endpoint.id, None, 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert_eq!(
                fixture
                    .changes(delete_of_endpoint(&fixture.db, &globex, &endpoint.id).must())
                    .await,
                0
            );
            let row = row_of(&fixture, &claimed.delivery_id);
            assert_eq!(
                (row["status"].clone(), row["lease"].clone()),
                (json!("pending"), json!("t"))
            );
            assert_eq!(
                fixture
                    .changes(delete_of_endpoint(&fixture.db, &acme, &endpoint.id).must())
                    .await,
                1
            );
            assert!(fixture.rows("webhook_deliveries", "id").is_empty());
        });
    }
}
