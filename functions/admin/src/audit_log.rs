//! The audit log (`GET /admin/businesses/{id}/audit-log`, and `GET /api-audit-log` with the
//! business's key): who did what to the business, newest first, a page at a time (`limit`, and
//! `before` from the previous page's `next_cursor`). A business reads where its own keys and
//! sessions acted from, never where the operator works from.

use domain::api::admin::{AuditEntry, AuditLogOut, AuditTarget};
use domain::audit::{Actor, AuditQuery, Cursor};
use domain::error::ApiError;
use domain::query::Query;
use domain::time::Timestamp;
use edge::Env;
use edge::db;
use edge::db::audit_log::{self, Row};
use edge::platform::call::{Json, Managed, Scope};
use serde_json::{Map, Value};

pub async fn list(
    env: Env,
    scope: Scope,
    Managed(tenant): Managed,
    query: Query,
) -> Result<Json<AuditLogOut>, ApiError> {
    let query = AuditQuery::parse(&query)?;
    let (rows, more) = audit_log::page(&env.db()?, &tenant, &query).await?;
    let next_cursor = more.then(|| rows.last()).flatten().map(|last| {
        Cursor {
            at_us: last.at_us,
            id: last.id.as_str().to_owned(),
        }
        .encode()
    });
    let by_operator = matches!(scope, Scope::Operator);
    let entries = rows
        .into_iter()
        .map(|row| shown(row, by_operator))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(AuditLogOut { entries, next_cursor }))
}

/// An entry as its reader sees it: the operator's own address only to the operator.
fn shown(row: Row, by_operator: bool) -> Result<AuditEntry, ApiError> {
    let corrupt = || db::corrupt("audit_log", row.id.as_str(), "detail");
    let detail: Map<String, Value> = serde_json::from_str(&row.detail).map_err(|_| corrupt())?;
    let operators = row.actor == Actor::Admin.label();
    let client_ip = row.client_ip.filter(|_| by_operator || !operators);
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
        client_ip,
    })
}
