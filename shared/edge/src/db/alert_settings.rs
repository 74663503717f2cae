//! `alert_settings`: a business's changes to the alert rules and whom alerts are emailed to
//! (`domain::alerts::Settings`), one row per business that changed anything.

use crate::db::Rows;
use crate::db::{self, Db, text};
use domain::alerts::Settings;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::tenant::Tenant;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
struct Row {
    business_id: BusinessId,
    settings: String,
}

impl Row {
    fn settings(&self) -> Result<Settings, ApiError> {
        Settings::from_stored(&self.settings)
            .map_err(|why| db::corrupt("alert_settings", self.business_id.as_str(), why))
    }
}

/// The business's settings (the defaults when it changed none).
pub async fn get(db: &Db, tenant: &Tenant) -> Result<Settings, ApiError> {
    let row: Option<Row> = db
        .scoped(
            tenant,
            "SELECT business_id, settings FROM alert_settings WHERE business_id = ?1",
        )
        .first(None)
        .await?;
    row.map_or_else(|| Ok(Settings::default()), |row| row.settings())
}

/// Stores the business's settings.
pub async fn put(db: &Db, tenant: &Tenant, settings: &Settings, now: &str) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO alert_settings (business_id, settings, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (business_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
    )
    .bind(&[text(&settings.to_stored()), text(now)])?
    .run()
    .await?;
    Ok(())
}

/// The settings of those of `businesses` that changed any (on the shard `db` is), by business. A
/// corrupt row is the defaults, with its error logged by the caller's report: one business's bad
/// row does not stop the others' alerts.
pub async fn of(
    db: &Db,
    businesses: &[&BusinessId],
) -> Result<(HashMap<BusinessId, Settings>, Vec<ApiError>), ApiError> {
    if businesses.is_empty() {
        return Ok((HashMap::new(), Vec::new()));
    }
    let rows: Vec<Row> = db
        .unscoped(
            "SELECT business_id, settings FROM alert_settings WHERE business_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(&[db::json_list(businesses.iter().map(|id| id.as_str()))])?
        .all()
        .await?
        .rows()?;
    let mut settings = HashMap::new();
    let mut corrupt = Vec::new();
    for row in rows {
        match row.settings() {
            Ok(read) => {
                settings.insert(row.business_id, read);
            }
            Err(error) => corrupt.push(error),
        }
    }
    Ok((settings, corrupt))
}
