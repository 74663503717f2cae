//! `business_usage`: what each business used of what Cloudflare bills, one row a day
//! (`domain::cost`), added to by each isolate's tally (`crate::platform::bill`), read by the cost endpoints.

use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, number, text};
use domain::cost::COUNTED;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::pricing::Units;
use domain::tenant::Tenant;
use serde::Deserialize;

/// `COUNTED`'s columns, in order.
const COLUMNS: &str = "worker_requests, d1_rows_read, d1_rows_written, kv_reads, kv_writes, queue_operations, \
    r2_class_a, r2_class_b, do_requests";

/// A row's counts, `COUNTED`'s columns (or their sums) by name.
#[derive(Deserialize)]
struct Counts {
    worker_requests: i64,
    d1_rows_read: i64,
    d1_rows_written: i64,
    kv_reads: i64,
    kv_writes: i64,
    queue_operations: i64,
    r2_class_a: i64,
    r2_class_b: i64,
    do_requests: i64,
}

impl Counts {
    fn units(&self) -> Units {
        let counts = [
            self.worker_requests,
            self.d1_rows_read,
            self.d1_rows_written,
            self.kv_reads,
            self.kv_writes,
            self.queue_operations,
            self.r2_class_a,
            self.r2_class_b,
            self.do_requests,
        ];
        COUNTED
            .iter()
            .zip(counts)
            .fold(Units::default(), |units, (meter, count)| {
                units.with(*meter, u64::try_from(count).unwrap_or(0))
            })
    }
}

const ADD: &str = "INSERT INTO business_usage (business_id, day, worker_requests, d1_rows_read, d1_rows_written, \
    kv_reads, kv_writes, queue_operations, r2_class_a, r2_class_b, do_requests) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
    ON CONFLICT (business_id, day) DO UPDATE SET \
    worker_requests = worker_requests + excluded.worker_requests, \
    d1_rows_read = d1_rows_read + excluded.d1_rows_read, \
    d1_rows_written = d1_rows_written + excluded.d1_rows_written, \
    kv_reads = kv_reads + excluded.kv_reads, kv_writes = kv_writes + excluded.kv_writes, \
    queue_operations = queue_operations + excluded.queue_operations, \
    r2_class_a = r2_class_a + excluded.r2_class_a, r2_class_b = r2_class_b + excluded.r2_class_b, \
    do_requests = do_requests + excluded.do_requests";

/// Adds `units` to the business's row of `day` (`2026-11-29`): one statement.
pub async fn add(db: &Db, tenant: &Tenant, day: &str, units: &Units) -> Result<(), ApiError> {
    let mut values = vec![text(day)];
    values.extend(
        COUNTED
            .iter()
            .map(|meter| number(i64::try_from(units.get(*meter)).unwrap_or(i64::MAX))),
    );
    db.scoped(tenant, ADD).bind(&values)?.run().await?;
    Ok(())
}

/// The business's days from `from_day` on, each with its units.
pub async fn days(db: &Db, tenant: &Tenant, from_day: &str) -> Result<Vec<(String, Units)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        day: String,
        #[serde(flatten)]
        counts: Counts,
    }
    let rows = db
        .scoped(
            tenant,
            format!(
                "SELECT day, {COLUMNS} FROM business_usage WHERE business_id = ?1 AND day >= ?2 ORDER BY day"
            ),
        )
        .bind(&[text(from_day)])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows
        .into_iter()
        .map(|row| (row.day, row.counts.units()))
        .collect())
}

/// Each business's units from `from_day` on, of the businesses settled on this `db`'s shard
/// (those being moved are counted once they have moved), at most `limit` of them.
pub async fn by_business(
    db: &Db,
    moving: &Moving,
    from_day: &str,
    limit: usize,
) -> Result<Vec<(BusinessId, Units)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        #[serde(flatten)]
        counts: Counts,
    }
    let sums = COLUMNS
        .split(", ")
        .map(|column| format!("SUM({column}) AS {column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = db
        .unscoped(format!(
            "SELECT business_id, {sums} FROM business_usage INDEXED BY business_usage_by_day WHERE day >= ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?2)) GROUP BY business_id LIMIT ?3"
        ))
        .bind(&[text(from_day), moving.param(), number(limit as i64)])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows
        .into_iter()
        .map(|row| (row.business_id, row.counts.units()))
        .collect())
}

/// Deletes up to `limit` rows of days before `before_day`, of businesses settled on this shard.
pub async fn delete_before(
    db: &Db,
    moving: &Moving,
    before_day: &str,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM business_usage WHERE rowid IN (SELECT rowid FROM business_usage \
             INDEXED BY business_usage_by_day WHERE day < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY day LIMIT ?2)",
        )
        .bind(&[text(before_day), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
