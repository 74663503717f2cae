//! The connector's budget: one call granted if it allows it now (not paused, under its limits in
//! the sliding minute and second and in the UTC day, counted in the same statement), and what it
//! has spent, read after a refusal to know how long to wait.

use crate::db::{Db, Statement, number, text};
use domain::crm::budget::{self, Budget, Spent};
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;
use serde_json::Value;

/// The statement that grants one request under `token` if the connector's budget allows it now:
/// not paused, fewer than its limits in the sliding minute and second (counted in
/// `crm_requests`) and in the UTC day (counted here). [`crate::db::crm_requests::record_grant`]
/// follows it in the same batch.
pub fn grant(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    token: &str,
    now_us: i64,
) -> Result<Statement, ApiError> {
    let today = budget::day_start(now_us);
    Ok(db
        .scoped(
            tenant,
            "UPDATE crm_connectors SET last_grant = ?3, \
             day_count = CASE WHEN day_start_us = ?5 THEN day_count + 1 ELSE 1 END, day_start_us = ?5 \
             WHERE business_id = ?1 AND id = ?2 \
             AND coalesce(paused_until_us, 0) <= ?4 \
             AND (per_day IS NULL OR day_start_us <> ?5 OR day_count < per_day) \
             AND (per_minute IS NULL OR (SELECT count(*) FROM crm_requests r WHERE r.connector_id = ?2 \
                  AND r.at_us > ?4 - 60000000) < per_minute) \
             AND (per_second IS NULL OR (SELECT count(*) FROM crm_requests r WHERE r.connector_id = ?2 \
                  AND r.at_us > ?4 - 1000000) < per_second)",
        )
        .bind(&[text(id.as_str()), text(token), number(now_us), number(today)])?)
}

/// What the budget has spent, read after a grant was refused, to know how long to wait.
pub async fn spent(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    limits: &Budget,
    now_us: i64,
) -> Result<Spent, ApiError> {
    let window = |length: i64, limit: Option<u32>| {
        format!(
            "(SELECT count(*) FROM crm_requests r WHERE r.connector_id = c.id AND r.at_us > ?3 - {length}), \
             (SELECT min(at_us) FROM (SELECT at_us FROM crm_requests r WHERE r.connector_id = c.id \
              AND r.at_us > ?3 - {length} ORDER BY at_us DESC LIMIT {}))",
            limit.unwrap_or(0)
        )
    };
    let sql = format!(
        "SELECT {}, {}, c.day_start_us, c.day_count, c.paused_until_us FROM crm_connectors c \
         WHERE c.business_id = ?1 AND c.id = ?2",
        window(budget::MINUTE_US, limits.per_minute),
        window(budget::SECOND_US, limits.per_second),
    );
    let rows: Vec<Vec<Value>> = db
        .scoped(tenant, sql)
        .bind(&[text(id.as_str()), number(now_us)])?
        .raw()
        .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let int = |at: usize| row.get(at).and_then(Value::as_i64);
    let count = |at: usize| int(at).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(Spent {
        minute_count: count(0),
        minute_frees_at_us: int(1),
        second_count: count(2),
        second_frees_at_us: int(3),
        day_start_us: int(4).unwrap_or(0),
        day_count: count(5),
        paused_until_us: int(6),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::take;
    use super::super::{find, pause};
    use super::*;
    use crate::testing::{Fixture, Must, UNLIMITED};
    use domain::crm::budget::{DAY_US, MINUTE_US, SECOND_US};
    use std::time::Duration;

    async fn spent_now(fixture: &Fixture, tenant: &Tenant, id: &ConnectorId, limits: &Budget) -> Spent {
        spent(&fixture.db, tenant, id, limits, fixture.now().micros())
            .await
            .must()
    }

    #[test]
    fn the_budget_grants_up_to_its_limits_in_the_sliding_second_and_minute() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let limits = Budget {
                per_minute: Some(3),
                per_second: Some(2),
                per_day: None,
            };
            let id = fixture.connector_with(&acme, true, limits).await;
            let start = fixture.now().micros();
            assert!(take(&fixture, &acme, &id).await);
            assert!(take(&fixture, &acme, &id).await);
            assert!(!take(&fixture, &acme, &id).await, "two in a second");
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!((spent.second_count, spent.second_frees_at_us), (2, Some(start)));
            assert_eq!(
                fixture.rows("crm_requests", "at_us").len(),
                2,
                "a refused grant is no request"
            );

            fixture.stack.advance(Duration::from_secs(1));
            assert!(take(&fixture, &acme, &id).await, "the second has passed");
            assert!(!take(&fixture, &acme, &id).await, "three in a minute");
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!(
                (spent.minute_count, spent.minute_frees_at_us),
                (3, Some(start)),
                "the third newest frees a place"
            );
            assert_eq!(spent.second_count, 1);

            fixture.stack.advance(Duration::from_secs(59));
            assert!(take(&fixture, &acme, &id).await, "the first two left the minute");
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!(spent.minute_count, 2);
            assert_eq!(start + MINUTE_US, fixture.now().micros());
        });
    }

    #[test]
    fn the_budget_counts_the_utc_day_and_starts_again_the_next() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let limits = Budget {
                per_minute: None,
                per_second: None,
                per_day: Some(2),
            };
            let id = fixture.connector_with(&acme, true, limits).await;
            assert!(take(&fixture, &acme, &id).await);
            assert!(take(&fixture, &acme, &id).await);
            assert!(!take(&fixture, &acme, &id).await, "two a day");
            let now = fixture.now().micros();
            let today = budget::day_start(now);
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!((spent.day_start_us, spent.day_count), (today, 2));
            let connector = find(&fixture.db, &fixture.keys(), &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(connector.calls_today(now), 2);

            fixture.stack.advance(Duration::from_micros(
                u64::try_from(today + DAY_US - now).unwrap_or(0),
            ));
            assert!(take(&fixture, &acme, &id).await, "a new UTC day");
            let connector = find(&fixture.db, &fixture.keys(), &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!((connector.day_start_us, connector.day_count), (today + DAY_US, 1));
        });
    }

    #[test]
    fn a_paused_connector_is_granted_nothing_until_the_pause_ends() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let until = fixture.now().micros() + 10 * SECOND_US;
            pause(&fixture.db, &acme, &id, until).await.must();
            assert!(!take(&fixture, &acme, &id).await);
            assert_eq!(
                spent_now(&fixture, &acme, &id, &UNLIMITED).await.paused_until_us,
                Some(until)
            );
            fixture.stack.advance(Duration::from_secs(10));
            assert!(take(&fixture, &acme, &id).await, "the pause ended");
        });
    }
}
