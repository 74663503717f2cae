//! `api_key_usage`: each API key's requests by the hour and endpoint (`domain::key_usage`), added
//! to by the key's limiter object, read by the API Access page, and `api_keys`' last use.

use crate::db::Db;
use crate::db::Read;
use crate::db::directory::Moving;
use crate::db::{self, number, optional_text, text};
use crate::runtime::D1Result;
use domain::alerts::{self, Measure};
use domain::api::admin::{EndpointUsage, KeyUsage, UsageCounts, UsageOut, UsagePoint};
use domain::error::ApiError;
use domain::ids::{ApiKeyId, BusinessId};
use domain::key_usage::{Period, Report};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// Adds a report's counts to the key's rows and sets its last use (unless a later one is there
/// already: reports from two isolates may arrive out of order). One round trip, two statements;
/// a row written per hour and endpoint the report holds, and the key's.
pub async fn record(db: &Db, tenant: &Tenant, key: &ApiKeyId, report: &Report) -> Result<(), ApiError> {
    let arrays = db::json_arrays(report.counts.iter().map(|entry| {
        let c = entry.counts;
        (
            entry.hour_ms,
            entry.endpoint.as_str(),
            c.status_2xx,
            c.status_3xx,
            c.status_4xx,
            c.status_5xx,
            c.rate_limited,
        )
    }))?;
    let mut statements = arrays
        .iter()
        .map(|rows| {
            db.scoped(
                tenant,
                "INSERT INTO api_key_usage (business_id, key_id, hour_ms, endpoint, status_2xx, status_3xx, \
                 status_4xx, status_5xx, rate_limited) \
                 SELECT ?1, ?2, r.value->>0, r.value->>1, r.value->>2, r.value->>3, r.value->>4, r.value->>5, \
                 r.value->>6 FROM json_each(?3) r WHERE true \
                 ON CONFLICT (business_id, hour_ms, key_id, endpoint) DO UPDATE SET \
                 status_2xx = status_2xx + excluded.status_2xx, status_3xx = status_3xx + excluded.status_3xx, \
                 status_4xx = status_4xx + excluded.status_4xx, status_5xx = status_5xx + excluded.status_5xx, \
                 rate_limited = rate_limited + excluded.rate_limited",
            )
            .bind(&[text(key.as_str()), text(rows)])
        })
        .collect::<Result<Vec<_>, db::Error>>()?;
    let last = &report.last;
    let at = Timestamp::from_millis(last.at_ms).to_rfc3339();
    statements.push(
        db.scoped(
            tenant,
            "UPDATE api_keys SET last_used_at = ?3, last_used_address = ?4, last_used_endpoint = ?5 \
             WHERE business_id = ?1 AND id = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)",
        )
        .bind(&[
            text(key.as_str()),
            text(&at),
            optional_text(last.address.as_deref()),
            text(&last.endpoint),
        ])?,
    );
    db.batch(statements).await?;
    Ok(())
}

/// A row of any of the three reads: what it is grouped by (the period's start, the endpoint, or the
/// key with its prefix and name), and its sums. One type for the three: each type read is code
/// in the bundle.
#[derive(Deserialize)]
struct Summed {
    #[serde(default)]
    at: i64,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    key_id: Option<ApiKeyId>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    name: Option<String>,
    status_2xx: i64,
    status_3xx: i64,
    status_4xx: i64,
    status_5xx: i64,
    rate_limited: i64,
}

impl Summed {
    fn counts(&self) -> UsageCounts {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let classes = [self.status_2xx, self.status_3xx, self.status_4xx, self.status_5xx];
        UsageCounts {
            requests: classes.into_iter().map(count).sum(),
            status_2xx: count(self.status_2xx),
            status_3xx: count(self.status_3xx),
            status_4xx: count(self.status_4xx),
            status_5xx: count(self.status_5xx),
            rate_limited: count(self.rate_limited),
        }
    }
}

const SUMS: &str = "SUM(u.status_2xx) AS status_2xx, SUM(u.status_3xx) AS status_3xx, \
    SUM(u.status_4xx) AS status_4xx, SUM(u.status_5xx) AS status_5xx, SUM(u.rate_limited) AS rate_limited";

/// The tenant's usage (of one key, or of all) over the periods read at `now` (`Period::starts`):
/// by period, every period shown; by endpoint and by key, the most requests first. One round
/// trip, three statements.
pub async fn read(
    db: &Db,
    tenant: &Tenant,
    key_id: Option<&ApiKeyId>,
    by: Period,
    now: Timestamp,
) -> Result<UsageOut, ApiError> {
    let starts = by.starts(now.millis());
    let from = starts.first().copied().unwrap_or_default();
    let within = "u.business_id = ?1 AND u.hour_ms >= ?2 AND (?3 IS NULL OR u.key_id = ?3)";
    let key = optional_text(key_id.map(ApiKeyId::as_str));
    let statements = [
        format!(
            "SELECT u.hour_ms - u.hour_ms % ?4 AS at, {SUMS} FROM api_key_usage u WHERE {within} \
             GROUP BY at ORDER BY at"
        ),
        format!(
            "SELECT u.endpoint, {SUMS} FROM api_key_usage u WHERE {within} \
             GROUP BY u.endpoint ORDER BY SUM(u.status_2xx + u.status_3xx + u.status_4xx + u.status_5xx) DESC, \
             u.endpoint"
        ),
        format!(
            "SELECT u.key_id, k.prefix, k.name, {SUMS} FROM api_key_usage u \
             JOIN api_keys k ON k.business_id = u.business_id AND k.id = u.key_id WHERE {within} \
             GROUP BY u.key_id ORDER BY SUM(u.status_2xx + u.status_3xx + u.status_4xx + u.status_5xx) DESC, \
             k.prefix"
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(at, sql)| {
        // Only the first groups by the period (`?4`): D1 refuses a value no parameter takes.
        let statement = db.scoped(tenant, sql).bind(&[number(from), key.clone()])?;
        if at == 0 {
            statement.bind(&[number(by.millis())])
        } else {
            Ok(statement)
        }
    })
    .map(|statement| statement.map(Read::<Vec<Summed>>::rows))
    .collect::<Result<Vec<_>, db::Error>>()?;
    let [periods, endpoints, keys]: [Vec<Summed>; 3] = db::read_together(db, statements)
        .await?
        .try_into()
        .map_err(|_| ApiError::internal("reading usage", "three reads gave another count of answers"))?;
    // Both in time order: each period takes its row, if it has one.
    let mut periods = periods.into_iter().peekable();
    let series: Vec<UsagePoint> = starts
        .iter()
        .map(|start| UsagePoint {
            at: Timestamp::from_millis(*start).to_rfc3339(),
            counts: periods
                .next_if(|row| row.at == *start)
                .map(|row| row.counts())
                .unwrap_or_default(),
        })
        .collect();
    let totals = series
        .iter()
        .fold(UsageCounts::default(), |sum, point| sum.plus(&point.counts));
    let endpoints = endpoints
        .into_iter()
        .map(|row| EndpointUsage {
            counts: row.counts(),
            endpoint: row.endpoint,
        })
        .collect();
    let keys = keys
        .into_iter()
        .filter_map(|row| {
            Some(KeyUsage {
                counts: row.counts(),
                key_id: row.key_id?,
                prefix: row.prefix,
                name: row.name,
            })
        })
        .collect();
    Ok(UsageOut {
        by: by.as_str().to_owned(),
        from: Timestamp::from_millis(from).to_rfc3339(),
        key_id: key_id.cloned(),
        totals,
        series,
        endpoints,
        keys,
    })
}

/// Deletes up to `limit` rows of hours before `before_ms`, of businesses settled on this shard.
pub async fn delete_before(
    db: &Db,
    moving: &Moving,
    before_ms: i64,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM api_key_usage WHERE rowid IN (SELECT rowid FROM api_key_usage WHERE hour_ms < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY hour_ms LIMIT ?2)",
        )
        .bind(&[number(before_ms), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// The statement reading the shard's API usage of this hour and the last, by business, as the
/// error-rate and refusal rules measure it (`domain::alerts`): businesses with errors or refusals
/// only, at most `limit`, businesses being moved left out.
pub fn alert_measures(
    db: &Db,
    moving: &Moving,
    now_ms: i64,
    limit: usize,
) -> Result<Read<(Vec<Measure>, usize)>, ApiError> {
    let since = Period::Hour.start_of(now_ms) - domain::key_usage::HOUR_MS;
    Ok(Read::new(db
        .unscoped(
            "SELECT business_id, sum(status_2xx + status_3xx + status_4xx + status_5xx) AS requests, \
             sum(status_4xx + status_5xx) AS errors, sum(rate_limited) AS refused FROM api_key_usage \
             INDEXED BY api_key_usage_by_hour WHERE hour_ms >= ?1 AND business_id NOT IN (SELECT value FROM json_each(?2)) \
             GROUP BY business_id HAVING errors > 0 ORDER BY business_id LIMIT ?3",
        )
        .bind(&[number(since), moving.param(), number(limit as i64)])?, read_alert_measures))
}

/// The measures the statement of [`alert_measures`] read, and how many
/// businesses it read.
fn read_alert_measures(answer: &D1Result) -> Result<(Vec<Measure>, usize), ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        requests: i64,
        errors: i64,
        refused: i64,
    }
    let rows = db::rows::<Row>(answer)?;
    let read = rows.len();
    let measures = rows
        .into_iter()
        .flat_map(|row| alerts::usage_measures(&row.business_id, row.requests, row.errors, row.refused))
        .collect();
    Ok((measures, read))
}
