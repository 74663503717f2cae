//! `crm_call_minutes`: each connector's calls to its CRM by the minute (`domain::crm::health`),
//! added to once per invocation that made calls (`crm::health::flush`), read as a window's
//! KPIs by the connector's status.

use crate::db::directory::Moving;
use crate::db::{self, Db, Statement, number, text};
use domain::crm::health::{Minute, Window};
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;
use serde::Deserialize;
use std::fmt::Write;

/// One connector's calls of one minute.
#[derive(Debug, Clone)]
pub struct ConnectorMinute {
    pub connector: ConnectorId,
    /// The minute's start.
    pub minute_ms: i64,
    pub counts: Minute,
}

/// The statement that adds `minutes` to the tenant's rows, however many (an invocation's: a few).
/// Their JSON is written here rather than by serde: this runs in every function that calls a CRM.
pub fn add(db: &Db, tenant: &Tenant, minutes: &[ConnectorMinute]) -> Result<Statement, ApiError> {
    let mut rows = String::from("[");
    for minute in minutes {
        if rows.len() > 1 {
            rows.push(',');
        }
        rows.push('[');
        db::push_json_text(&mut rows, minute.connector.as_str());
        let counts = minute.counts;
        let _ = write!(
            rows,
            ",{},{},{},{}",
            minute.minute_ms, counts.calls, counts.failures, counts.total_ms
        );
        for class in counts.by_time {
            let _ = write!(rows, ",{class}");
        }
        rows.push(']');
    }
    rows.push(']');
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO crm_call_minutes (business_id, connector_id, minute_ms, calls, failures, total_ms, \
             under_100ms, under_250ms, under_500ms, under_1s, under_2s, under_5s, slower) \
             SELECT ?1, r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5, \
             r.value->>6, r.value->>7, r.value->>8, r.value->>9, r.value->>10, r.value->>11 \
             FROM json_each(?2) r WHERE true \
             ON CONFLICT (business_id, connector_id, minute_ms) DO UPDATE SET \
             calls = calls + excluded.calls, failures = failures + excluded.failures, \
             total_ms = total_ms + excluded.total_ms, under_100ms = under_100ms + excluded.under_100ms, \
             under_250ms = under_250ms + excluded.under_250ms, \
             under_500ms = under_500ms + excluded.under_500ms, under_1s = under_1s + excluded.under_1s, \
             under_2s = under_2s + excluded.under_2s, under_5s = under_5s + excluded.under_5s, \
             slower = slower + excluded.slower",
        )
        .bind(&[text(&rows)])?)
}

/// The connector's minutes from `from_ms` on, summed.
pub async fn window(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    from_ms: i64,
) -> Result<Window, ApiError> {
    #[derive(Deserialize)]
    struct Sums {
        minutes: u32,
        minutes_up: Option<u32>,
        calls: Option<u32>,
        failures: Option<u32>,
        total_ms: Option<u64>,
        under_100ms: Option<u32>,
        under_250ms: Option<u32>,
        under_500ms: Option<u32>,
        under_1s: Option<u32>,
        under_2s: Option<u32>,
        under_5s: Option<u32>,
        slower: Option<u32>,
    }
    let sums = db
        .scoped(
            tenant,
            "SELECT COUNT(*) AS minutes, SUM(failures < calls) AS minutes_up, SUM(calls) AS calls, \
             SUM(failures) AS failures, SUM(total_ms) AS total_ms, SUM(under_100ms) AS under_100ms, \
             SUM(under_250ms) AS under_250ms, SUM(under_500ms) AS under_500ms, SUM(under_1s) AS under_1s, \
             SUM(under_2s) AS under_2s, SUM(under_5s) AS under_5s, SUM(slower) AS slower \
             FROM crm_call_minutes WHERE business_id = ?1 AND connector_id = ?2 AND minute_ms >= ?3",
        )
        .bind(&[text(connector.as_str()), number(from_ms)])?
        .first::<Sums>(None)
        .await?;
    let Some(s) = sums else {
        return Ok(Window::default());
    };
    let n = |count: Option<u32>| count.unwrap_or(0);
    Ok(Window {
        minutes: s.minutes,
        minutes_up: n(s.minutes_up),
        sums: Minute {
            calls: n(s.calls),
            failures: n(s.failures),
            total_ms: s.total_ms.unwrap_or(0),
            by_time: [
                n(s.under_100ms),
                n(s.under_250ms),
                n(s.under_500ms),
                n(s.under_1s),
                n(s.under_2s),
                n(s.under_5s),
                n(s.slower),
            ],
        },
    })
}

/// The statement that forgets a deleted connector's minutes, for its deletion's batch.
pub fn forget_connector(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_call_minutes WHERE business_id = ?1 AND connector_id = ?2",
        )
        .bind(&[text(id.as_str())])?)
}

/// Deletes up to `limit` minutes before `before_ms`, of businesses settled on this shard.
pub async fn delete_before(
    db: &Db,
    moving: &Moving,
    before_ms: i64,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM crm_call_minutes WHERE rowid IN (SELECT rowid FROM crm_call_minutes WHERE minute_ms < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY minute_ms LIMIT ?2)",
        )
        .bind(&[number(before_ms), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
