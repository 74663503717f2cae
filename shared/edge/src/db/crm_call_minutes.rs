//! `crm_call_minutes`: calls to a business's CRM by the minute (`domain::crm::health`), each a
//! connector's or a CRM link's fetches (its source), added to once per invocation that made calls
//! (`crm::health`), read as a window's KPIs by the connector's or the link's status.

use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, Statement, number, text};
use domain::crm::health::{Minute, Window};
use domain::error::ApiError;
use domain::tenant::Tenant;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;

/// The calls of one minute of one source: a connector, or a CRM link.
#[derive(Debug, Clone)]
pub struct SourceMinute {
    /// The connector's id, or the link's.
    pub source: String,
    /// The minute's start.
    pub minute_ms: i64,
    pub counts: Minute,
}

/// The statement that adds `minutes` to the tenant's rows, however many (an invocation's: a few).
/// Their JSON is written here rather than by serde: this runs in every function that calls a CRM.
pub fn add(db: &Db, tenant: &Tenant, minutes: &[SourceMinute]) -> Result<Statement, ApiError> {
    let mut rows = String::from("[");
    for minute in minutes {
        if rows.len() > 1 {
            rows.push(',');
        }
        rows.push('[');
        db::push_json_text(&mut rows, &minute.source);
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
            "INSERT INTO crm_call_minutes (business_id, source_id, minute_ms, calls, failures, total_ms, \
             under_100ms, under_250ms, under_500ms, under_1s, under_2s, under_5s, slower) \
             SELECT ?1, r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5, \
             r.value->>6, r.value->>7, r.value->>8, r.value->>9, r.value->>10, r.value->>11 \
             FROM json_each(?2) r WHERE true \
             ON CONFLICT (business_id, source_id, minute_ms) DO UPDATE SET \
             calls = calls + excluded.calls, failures = failures + excluded.failures, \
             total_ms = total_ms + excluded.total_ms, under_100ms = under_100ms + excluded.under_100ms, \
             under_250ms = under_250ms + excluded.under_250ms, \
             under_500ms = under_500ms + excluded.under_500ms, under_1s = under_1s + excluded.under_1s, \
             under_2s = under_2s + excluded.under_2s, under_5s = under_5s + excluded.under_5s, \
             slower = slower + excluded.slower",
        )
        .bind(&[text(&rows)])?)
}

#[derive(Deserialize)]
struct Sums {
    #[serde(default)]
    source_id: String,
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

impl Sums {
    fn window(&self) -> Window {
        let n = |count: Option<u32>| count.unwrap_or(0);
        Window {
            minutes: self.minutes,
            minutes_up: n(self.minutes_up),
            sums: Minute {
                calls: n(self.calls),
                failures: n(self.failures),
                total_ms: self.total_ms.unwrap_or(0),
                by_time: [
                    n(self.under_100ms),
                    n(self.under_250ms),
                    n(self.under_500ms),
                    n(self.under_1s),
                    n(self.under_2s),
                    n(self.under_5s),
                    n(self.slower),
                ],
            },
        }
    }
}

const SUMS: &str = "COUNT(*) AS minutes, SUM(failures < calls) AS minutes_up, SUM(calls) AS calls, \
    SUM(failures) AS failures, SUM(total_ms) AS total_ms, SUM(under_100ms) AS under_100ms, \
    SUM(under_250ms) AS under_250ms, SUM(under_500ms) AS under_500ms, SUM(under_1s) AS under_1s, \
    SUM(under_2s) AS under_2s, SUM(under_5s) AS under_5s, SUM(slower) AS slower";

/// The source's minutes from `from_ms` on, summed.
pub async fn window(db: &Db, tenant: &Tenant, source: &str, from_ms: i64) -> Result<Window, ApiError> {
    let sums = db
        .scoped(
            tenant,
            format!(
                "SELECT {SUMS} FROM crm_call_minutes WHERE business_id = ?1 AND source_id = ?2 AND minute_ms >= ?3"
            ),
        )
        .bind(&[text(source), number(from_ms)])?
        .first::<Sums>(None)
        .await?;
    Ok(sums.map(|sums| sums.window()).unwrap_or_default())
}

/// Every source's minutes of the tenant from `from_ms` on, summed, by the source's id: one read
/// for a list of links.
pub async fn windows(db: &Db, tenant: &Tenant, from_ms: i64) -> Result<HashMap<String, Window>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT source_id, {SUMS} FROM crm_call_minutes WHERE business_id = ?1 AND minute_ms >= ?2 \
                 GROUP BY source_id"
            ),
        )
        .bind(&[number(from_ms)])?
        .all()
        .await?;
    Ok(result
        .rows::<Sums>()?
        .into_iter()
        .map(|sums| (sums.source_id.clone(), sums.window()))
        .collect())
}

/// The statement that forgets a deleted connector's or link's minutes, for its deletion's batch.
pub fn forget(db: &Db, tenant: &Tenant, source: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_call_minutes WHERE business_id = ?1 AND source_id = ?2",
        )
        .bind(&[text(source)])?)
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
