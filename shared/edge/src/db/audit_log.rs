//! `audit_log`: one row per admin or security action on a business, newest first.

use crate::db::Db;
use crate::db::{number, optional_text, text};
use domain::audit::{Action, AuditQuery, Cursor};
use domain::error::ApiError;
use domain::ids::{AuditEntryId, BusinessId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};

pub struct NewEntry<'a> {
    pub id: &'a AuditEntryId,
    pub business_id: &'a BusinessId,
    pub at_us: i64,
    pub actor: &'a str,
    pub action: Action,
    pub target_id: Option<&'a str>,
    /// A JSON object.
    pub detail: &'a str,
    pub client_ip: Option<&'a str>,
}

pub async fn insert(db: &Db, entry: &NewEntry<'_>) -> Result<(), ApiError> {
    db.scoped(
        &Tenant::for_background(entry.business_id.clone()),
        "INSERT INTO audit_log (business_id, id, at_us, actor, action, target_type, target_id, detail, client_ip) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(&[
        text(entry.id.as_str()),
        number(entry.at_us),
        text(entry.actor),
        text(entry.action.as_str()),
        text(entry.action.target_type()),
        optional_text(entry.target_id),
        text(entry.detail),
        optional_text(entry.client_ip),
    ])?
    .run()
    .await?;
    Ok(())
}

/// An entry as stored; `detail` is the JSON text it was recorded with.
#[derive(Deserialize, Serialize)]
pub struct Row {
    pub id: AuditEntryId,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub detail: String,
    pub client_ip: Option<String>,
}

/// Later than any entry: the largest time a bound number holds exactly (2^53 - 1 µs, year 2255).
const NEWEST_US: i64 = (1 << 53) - 1;

/// A page of the business's entries, newest first, and whether more follow.
pub async fn page(db: &Db, tenant: &Tenant, query: &AuditQuery) -> Result<(Vec<Row>, bool), ApiError> {
    let (before_us, before_id) = match &query.before {
        Some(Cursor { at_us, id }) => (number(*at_us), text(id)),
        None => (number(NEWEST_US), text("")),
    };
    let mut rows = db
        .scoped(
            tenant,
            "SELECT id, at_us, actor, action, target_type, target_id, detail, client_ip FROM audit_log \
             WHERE business_id = ?1 AND (at_us < ?2 OR (at_us = ?2 AND id < ?3)) \
             ORDER BY at_us DESC, id DESC LIMIT ?4",
        )
        .bind(&[before_us, before_id, number(query.limit as i64 + 1)])?
        .all()
        .await?
        .results::<Row>()
        .map_err(|error| ApiError::internal("reading the audit log", error))?;
    let more = rows.len() > query.limit;
    rows.truncate(query.limit);
    Ok((rows, more))
}
