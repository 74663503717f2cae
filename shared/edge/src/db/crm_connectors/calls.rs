//! What the calls to the CRM leave on the connector, none of it a change of the connector: the last
//! call's health (an error and a success kept apart, a failing spell begun or ended), a pause a
//! 429 asked for, only ever extended, its key's expiry as the CRM reports it, and the CRM's own
//! configuration kept for a while; and the alert rules' reading of it across the shard.

use crate::db::directory::Moving;
use crate::db::{self, Db, Read, number, text};
use crate::runtime::D1Result;
use domain::alerts::ConnectorSignals;
use domain::crm::budget;
use domain::error::ApiError;
use domain::ids::{BusinessId, ConnectorId};
use domain::tenant::Tenant;
use serde::Deserialize;
use serde_json::Value;

/// Records how the last call to the CRM went: its health as the status shows it.
pub async fn record_health(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    error: Option<&str>,
    now_us: i64,
) -> Result<(), ApiError> {
    // A failure after a success starts the connector's failing spell; a success ends it.
    let sql = if error.is_some() {
        "UPDATE crm_connectors SET last_error = ?3, last_error_us = ?4, \
         failing_since_us = coalesce(failing_since_us, ?4) WHERE business_id = ?1 AND id = ?2"
    } else {
        "UPDATE crm_connectors SET last_success_us = ?4, failing_since_us = NULL \
         WHERE business_id = ?1 AND id = ?2 AND ?3 IS NULL"
    };
    db.scoped(tenant, sql)
        .bind(&[text(id.as_str()), db::optional_text(error), number(now_us)])?
        .run()
        .await?;
    Ok(())
}

/// Keeps when the connector's CRM key expires, as its CRM just reported it (None: it reported
/// none); a credential saved since (`revision` moved on) is left to its own report.
pub async fn record_key_expiry(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    revision: i64,
    expires_us: Option<i64>,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_connectors SET key_expires_us = ?4 WHERE business_id = ?1 AND id = ?2 AND revision = ?3",
    )
    .bind(&[
        text(id.as_str()),
        number(revision),
        db::optional_number(expires_us),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The statement reading what the alert rules read of the shard's enabled connectors
/// (`domain::alerts`) whose condition may hold: failing, paused, half their daily budget spent,
/// with work waiting a minute or more, or a key expiring within the rule's longest threshold; at
/// most `limit`, businesses being moved left out. Each connector is read once, and its oldest
/// waiting job by an index seek.
pub fn alert_signals(
    db: &Db,
    moving: &Moving,
    now_us: i64,
    limit: usize,
) -> Result<Read<Vec<ConnectorSignals>>, ApiError> {
    Ok(Read::new(db
        .unscoped(
            "SELECT * FROM (SELECT c.business_id, c.id, c.name, c.failing_since_us, c.paused_until_us, c.per_day, c.key_expires_us, \
             CASE WHEN c.day_start_us = ?3 THEN c.day_count ELSE 0 END AS spent_today, \
             (SELECT j.created_us FROM crm_sync_jobs j WHERE j.business_id = c.business_id \
              AND j.connector_id = c.id AND j.status = 'pending' ORDER BY j.seq LIMIT 1) AS oldest_pending_us \
             FROM crm_connectors c WHERE c.enabled = 1 AND c.business_id NOT IN (SELECT value FROM json_each(?1))) \
             WHERE failing_since_us IS NOT NULL OR paused_until_us > ?2 \
             OR (per_day > 0 AND spent_today * 2 >= per_day) OR oldest_pending_us <= ?4 \
             OR key_expires_us <= ?6 \
             ORDER BY business_id, id LIMIT ?5",
        )
        .bind(&[
            moving.param(),
            number(now_us),
            number(budget::day_start(now_us)),
            number(now_us - 60_000_000),
            number(limit as i64),
            number(now_us + i64::from(domain::alerts::KEY_EXPIRY_MAX_DAYS) * 86_400_000_000),
        ])?, read_alert_signals))
}

/// The connectors the statement of [`alert_signals`] read.
fn read_alert_signals(answer: &D1Result) -> Result<Vec<ConnectorSignals>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: String,
        name: String,
        failing_since_us: Option<i64>,
        paused_until_us: Option<i64>,
        per_day: Option<i64>,
        spent_today: i64,
        oldest_pending_us: Option<i64>,
        key_expires_us: Option<i64>,
    }
    Ok(db::rows::<Row>(answer)?
        .into_iter()
        .map(|row| ConnectorSignals {
            business_id: row.business_id,
            id: row.id,
            name: row.name,
            failing_since_ms: row.failing_since_us.map(|us| us / 1000),
            paused_until_ms: row.paused_until_us.map(|us| us / 1000),
            per_day: row.per_day,
            spent_today: row.spent_today,
            oldest_waiting_ms: row.oldest_pending_us.map(|us| us / 1000),
            key_expires_ms: row.key_expires_us.map(|us| us / 1000),
        })
        .collect())
}

/// Pauses every call to the connector's CRM until `until_us` (a 429), unless it is paused longer.
pub async fn pause(db: &Db, tenant: &Tenant, id: &ConnectorId, until_us: i64) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_connectors SET paused_until_us = max(coalesce(paused_until_us, 0), ?3) \
         WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[text(id.as_str()), number(until_us)])?
    .run()
    .await?;
    Ok(())
}

/// Keeps what was read of the CRM's configuration, at `now_us`, if the connector is still at the
/// `revision` it was read with: any reader may refresh it, but what was read with credentials or
/// settings since changed is not kept (a change of the connector forgets it).
pub async fn store_cache(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    revision: i64,
    cache: &Value,
    now_us: i64,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_connectors SET crm_cache = ?3, crm_cache_us = ?4 \
         WHERE business_id = ?1 AND id = ?2 AND revision = ?5",
    )
    .bind(&[
        text(id.as_str()),
        text(&cache.to_string()),
        number(now_us),
        number(revision),
    ])?
    .run()
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::find;
    use super::*;
    use crate::testing::{Fixture, Must};
    use domain::crm::budget::SECOND_US;
    use serde_json::json;

    #[test]
    fn health_keeps_the_last_error_and_the_last_success_apart() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let keys = fixture.keys();
            let t1 = fixture.now().micros();
            record_health(&fixture.db, &acme, &id, Some("401 from the CRM"), t1)
                .await
                .must();
            record_health(&fixture.db, &acme, &id, None, t1 + 5).await.must();
            let connector = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(
                connector.last_error.as_deref(),
                Some("401 from the CRM"),
                "a success does not erase it"
            );
            assert_eq!(
                (connector.last_error_us, connector.last_success_us),
                (Some(t1), Some(t1 + 5))
            );
            assert_eq!(connector.revision, 0, "health is not a change of the connector");
        });
    }

    #[test]
    fn a_pause_is_only_ever_extended_and_the_cache_kept_with_its_time() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let keys = fixture.keys();
            let now = fixture.now().micros();
            pause(&fixture.db, &acme, &id, now + 60 * SECOND_US).await.must();
            pause(&fixture.db, &acme, &id, now + 10 * SECOND_US).await.must();
            store_cache(&fixture.db, &acme, &id, 0, &json!({"pipelines": [1, 2]}), now)
                .await
                .must();
            let connector = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(connector.paused_until_us, Some(now + 60 * SECOND_US));
            assert_eq!(
                (connector.crm_cache, connector.crm_cache_us),
                (Some(json!({"pipelines": [1, 2]})), Some(now))
            );
        });
    }
}
