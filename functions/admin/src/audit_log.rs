//! The audit log (`GET /admin/businesses/{id}/audit-log`, and `GET /api-audit-log` with the
//! business's key): who did what to the business, newest first, a page at a time (`limit`, and
//! `before` from the previous page's `next_cursor`).

use domain::api::admin::{AuditEntry, AuditLogOut, AuditTarget};
use domain::audit::{AuditQuery, Cursor};
use domain::error::ApiError;
use domain::query::Query;
use domain::time::Timestamp;
use edge::Env;
use edge::call::{Json, Managed};
use edge::db::audit_log::{self, Row};
use edge::{DB, db};
use serde_json::{Map, Value};

pub async fn list(env: Env, Managed(tenant): Managed, query: Query) -> Result<Json<AuditLogOut>, ApiError> {
    let query = AuditQuery::parse(&query)?;
    let (rows, more) = audit_log::page(&env.d1(DB)?, &tenant, &query).await?;
    let next_cursor = more.then(|| rows.last()).flatten().map(|last| {
        Cursor {
            at_us: last.at_us,
            id: last.id.as_str().to_owned(),
        }
        .encode()
    });
    let entries = rows.into_iter().map(shown).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(AuditLogOut { entries, next_cursor }))
}

fn shown(row: Row) -> Result<AuditEntry, ApiError> {
    let corrupt = || db::corrupt("audit_log", row.id.as_str(), "detail");
    let detail: Map<String, Value> = serde_json::from_str(&row.detail).map_err(|_| corrupt())?;
    Ok(AuditEntry {
        at: Timestamp::from_micros(row.at_us).to_rfc3339_micros(),
        id: row.id,
        actor: row.actor,
        action: row.action,
        target: AuditTarget {
            target_type: row.target_type,
            id: row.target_id,
        },
        detail,
        client_ip: row.client_ip,
    })
}
