//! `webhook_attempts`: the log of every delivery attempt and test send, with the answer each got.
//! Every statement is scoped by the tenant, but for retention, which deletes old lines of every
//! business.

use crate::db::Rows;
use crate::db::Sql;
use crate::db::directory::Moving;
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

/// The statement that logs one attempt, with its event's time (a delivery its first attempt
/// settled is listed from this line: `webhook_deliveries::list`).
pub fn insert(db: &Db, tenant: &Tenant, record: &AttemptRecord<'_>) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO webhook_attempts (business_id, endpoint_id, delivery_id, event_id, event_type, attempt, replay, \
             url, status_code, response_body, duration_ms, error, outcome, attempted_us, event_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             (SELECT created_us FROM webhook_events WHERE business_id = ?1 AND id = ?4))",
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
    Ok(result.rows::<AttemptRow>()?)
}

/// Deletes up to `limit` log lines made before `before` (the oldest first), across businesses:
/// the log is kept for the retention period only. How many went.
pub async fn delete_older_than(
    db: &Db,
    moving: &Moving,
    before: Timestamp,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM webhook_attempts WHERE attempted_us < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY id LIMIT ?2)",
        )
        .bind(&[number(before.micros()), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// The statement that deletes the business's attempts at delivering the events `events` selects
/// (an erasure's: their URLs and the answers' bodies may quote the events).
pub fn erase_of_events(db: &Db, tenant: &Tenant, events: Sql) -> Result<Statement, ApiError> {
    events
        .within("DELETE FROM webhook_attempts WHERE business_id = :business AND event_id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::tenant::Tenant;
    use std::time::Duration;

    /// Logs one attempt now.
    async fn log(
        fixture: &Fixture,
        tenant: &Tenant,
        endpoint: &EndpointId,
        event: &EventId,
        delivery: Option<&DeliveryId>,
    ) {
        let record = AttemptRecord {
            endpoint_id: endpoint,
            delivery_id: delivery,
            event_id: event,
            event_type: "customer.created",
            attempt: 1,
            replay: 0,
            url: "https://hooks.example.com/crm",
            status_code: Some(500),
            response_body: Some("oops"),
            duration_ms: 120,
            error: None,
            outcome: AttemptOutcome::Retrying {
                next: fixture.now().plus_seconds(60),
            },
            at: fixture.now(),
        };
        fixture
            .db
            .batch(vec![insert(&fixture.db, tenant, &record).must()])
            .await
            .must();
    }

    /// The lines `filter` finds, as (endpoint, event).
    async fn lines(
        fixture: &Fixture,
        tenant: &Tenant,
        filter: AttemptFilter<'_>,
        limit: usize,
    ) -> Vec<(EndpointId, EventId)> {
        list(&fixture.db, tenant, &filter, limit)
            .await
            .must()
            .into_iter()
            .map(|row| (row.endpoint_id, row.event_id))
            .collect()
    }

    #[test]
    fn the_log_is_newest_first_and_filtered_by_endpoint_event_and_delivery() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (first, second) = (EndpointId::generate(random()), EndpointId::generate(random()));
            let (one, two) = (EventId::generate(random()), EventId::generate(random()));
            let delivery = DeliveryId::generate(random());
            log(&fixture, &acme, &first, &one, Some(&delivery)).await;
            log(&fixture, &acme, &second, &one, None).await;
            log(&fixture, &acme, &first, &two, None).await;
            log(&fixture, &globex, &first, &one, None).await;
            let cases = [
                (
                    "by endpoint",
                    AttemptFilter {
                        endpoint_id: Some(&first),
                        ..AttemptFilter::default()
                    },
                    vec![(first.clone(), two.clone()), (first.clone(), one.clone())],
                ),
                (
                    "by event",
                    AttemptFilter {
                        event_id: Some(&one),
                        ..AttemptFilter::default()
                    },
                    vec![(second.clone(), one.clone()), (first.clone(), one.clone())],
                ),
                (
                    "by delivery",
                    AttemptFilter {
                        delivery_id: Some(&delivery),
                        ..AttemptFilter::default()
                    },
                    vec![(first.clone(), one.clone())],
                ),
                (
                    "by endpoint and event",
                    AttemptFilter {
                        endpoint_id: Some(&second),
                        event_id: Some(&one),
                        ..AttemptFilter::default()
                    },
                    vec![(second.clone(), one.clone())],
                ),
            ];
            for (description, filter, expected) in cases {
                assert_eq!(
                    lines(&fixture, &acme, filter, 10).await,
                    expected,
                    "{description}"
                );
            }
            assert_eq!(
                lines(
                    &fixture,
                    &acme,
                    AttemptFilter {
                        endpoint_id: Some(&first),
                        ..AttemptFilter::default()
                    },
                    1
                )
                .await
                .len(),
                1,
                "the limit"
            );
            let row = list(
                &fixture.db,
                &acme,
                &AttemptFilter {
                    delivery_id: Some(&delivery),
                    ..AttemptFilter::default()
                },
                1,
            )
            .await
            .must();
            assert_eq!(
                (
                    row[0].status_code,
                    row[0].response_body.as_deref(),
                    row[0].outcome.as_str()
                ),
                (Some(500), Some("oops"), "retrying")
            );
            assert_eq!(
                (row[0].duration_ms, row[0].attempted_us),
                (120, fixture.now().micros())
            );
            assert_eq!(
                list(
                    &fixture.db,
                    &globex,
                    &AttemptFilter {
                        event_id: Some(&two),
                        ..AttemptFilter::default()
                    },
                    10
                )
                .await
                .must()
                .len(),
                0
            );
        });
    }

    #[test]
    fn an_endpoints_log_goes_with_it_and_retention_takes_the_oldest_lines_first() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let (endpoint, kept) = (EndpointId::generate(random()), EndpointId::generate(random()));
            let event = EventId::generate(random());
            for _ in 0..3 {
                log(&fixture, &acme, &kept, &event, None).await;
            }
            log(&fixture, &acme, &endpoint, &event, None).await;
            log(&fixture, &globex, &kept, &event, None).await;
            let deleted = fixture
                .changes(delete_of_endpoint(&fixture.db, &globex, &endpoint).must())
                .await;
            assert_eq!(deleted, 0, "another business's endpoint of that id has none");
            let deleted = fixture
                .changes(delete_of_endpoint(&fixture.db, &acme, &endpoint).must())
                .await;
            assert_eq!(deleted, 1);

            fixture.stack.advance(Duration::from_secs(60));
            let cutoff = fixture.now();
            log(&fixture, &acme, &kept, &event, None).await;
            let shards = fixture.db.each_shard();
            assert_eq!(
                delete_older_than(&shards[0], &Moving::NONE, cutoff, 2)
                    .await
                    .must(),
                2,
                "to the limit"
            );
            assert_eq!(
                delete_older_than(&shards[0], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                1
            );
            assert_eq!(
                delete_older_than(&shards[0], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                0,
                "the newer line stays"
            );
            assert_eq!(
                delete_older_than(&shards[1], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                1,
                "the second shard's own"
            );
            assert_eq!(fixture.rows("webhook_attempts", "id").len(), 1);
        });
    }
}
