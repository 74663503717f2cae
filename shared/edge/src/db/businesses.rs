//! `businesses`: the tenants. Only the operator's admin API creates and changes them; every other
//! table names its business.

use crate::db::{self, text};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::sso::FrameAncestors;
use serde::{Deserialize, Deserializer, Serialize};
use worker::D1Database;

/// A business as stored and as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    /// ISO 3166 alpha-2, as validated when the business was created.
    pub default_country: Option<String>,
    pub created_at: String,
    /// Origins allowed to frame the embedded inbox.
    #[serde(deserialize_with = "json_text")]
    pub embed_frame_ancestors: Vec<String>,
}

/// A JSON array stored as text.
fn json_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let stored = String::deserialize(deserializer)?;
    serde_json::from_str(&stored).map_err(serde::de::Error::custom)
}

const COLUMNS: &str = "id, name, default_country, created_at, embed_frame_ancestors";

pub async fn create(db: &D1Database, business: &Business) -> Result<(), ApiError> {
    db.prepare("INSERT INTO businesses (id, name, default_country, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[
            text(business.id.as_str()),
            text(&business.name),
            db::optional_text(business.default_country.as_deref()),
            text(&business.created_at),
        ])?
        .run()
        .await?;
    Ok(())
}

pub async fn find(db: &D1Database, id: &BusinessId) -> Result<Option<Business>, ApiError> {
    Ok(db
        .prepare(format!("SELECT {COLUMNS} FROM businesses WHERE id = ?1"))
        .bind(&[text(id.as_str())])?
        .first::<Business>(None)
        .await?)
}

/// Sets who may frame the embedded inbox; false when there is no such business.
pub async fn set_frame_ancestors(
    db: &D1Database,
    id: &BusinessId,
    ancestors: &FrameAncestors,
) -> Result<bool, ApiError> {
    let json = serde_json::to_string(ancestors.origins())?;
    let result = db
        .prepare("UPDATE businesses SET embed_frame_ancestors = ?2 WHERE id = ?1")
        .bind(&[text(id.as_str()), text(&json)])?
        .run()
        .await?;
    Ok(db::changes(&result) > 0)
}
