//! `GET /admin/businesses/{id}/audit-log`: who did what to the business, newest first, a page at
//! a time (`limit`, and `before` from the previous page's `next_cursor`).

use crate::businesses;
use domain::audit::{AuditQuery, Cursor};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::time::Timestamp;
use edge::Env;
use edge::db::audit_log::{self, Row};
use edge::{DB, db, http};
use serde_json::{Value, json};
use worker::{Request, Response};

pub async fn list(req: &Request, env: &Env, business_id: &BusinessId) -> Result<Response, ApiError> {
    let query = AuditQuery::parse(&http::query(req)?)?;
    let tenant = businesses::find(env, business_id).await?.tenant()?;
    let (rows, more) = audit_log::page(&env.d1(DB)?, &tenant, &query).await?;
    let next_cursor = more.then(|| rows.last()).flatten().map(|last| {
        Cursor {
            at_us: last.at_us,
            id: last.id.as_str().to_owned(),
        }
        .encode()
    });
    let entries = rows.into_iter().map(shown).collect::<Result<Vec<_>, _>>()?;
    http::json(200, &json!({ "entries": entries, "next_cursor": next_cursor }))
}

fn shown(row: Row) -> Result<Value, ApiError> {
    let detail: Value =
        serde_json::from_str(&row.detail).map_err(|_| db::corrupt("audit_log", row.id.as_str(), "detail"))?;
    Ok(json!({
        "id": row.id,
        "at": Timestamp::from_micros(row.at_us).to_rfc3339_micros(),
        "actor": row.actor,
        "action": row.action,
        "target": { "type": row.target_type, "id": row.target_id },
        "detail": detail,
        "client_ip": row.client_ip,
    }))
}
