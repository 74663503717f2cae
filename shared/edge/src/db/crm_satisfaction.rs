//! `crm_satisfaction`: the satisfaction (CSAT) results a CRM reported for our conversations, the
//! latest per connector and conversation, for the analytics.

use crate::db::Db;
use crate::db::Param;
use crate::db::{number, optional_text, text};
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId};
use domain::tenant::Tenant;
use serde::Deserialize;

pub struct Rating<'a> {
    pub score: Option<f64>,
    pub level: Option<&'a str>,
    pub comment: Option<&'a str>,
}

/// Keeps the conversation's latest rating from this connector.
pub async fn record(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    conversation: &ConversationId,
    rating: &Rating<'_>,
    now_us: i64,
) -> Result<(), ApiError> {
    db.scoped(tenant, "INSERT INTO crm_satisfaction (connector_id, business_id, conversation_id, score, level, comment, updated_us) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (connector_id, conversation_id) DO UPDATE SET \
         score = excluded.score, level = excluded.level, comment = excluded.comment, updated_us = excluded.updated_us",
    )
    .bind(&[
        text(connector.as_str()),
        text(conversation.as_str()),
        rating.score.map_or(Param::Null, Param::Number),
        optional_text(rating.level),
        optional_text(rating.comment),
        number(now_us),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The average score and the count of rated conversations updated in [from_us, to_us).
#[derive(Debug, Default, Deserialize)]
pub struct Average {
    pub average: Option<f64>,
    pub count: i64,
}

pub async fn average(db: &Db, tenant: &Tenant, from_us: i64, to_us: i64) -> Result<Average, ApiError> {
    let row = db
        .scoped(
            tenant,
            "SELECT avg(score) AS average, count(score) AS count FROM crm_satisfaction \
             WHERE business_id = ?1 AND updated_us >= ?2 AND updated_us < ?3",
        )
        .bind(&[number(from_us), number(to_us)])?
        .first::<Average>(None)
        .await?;
    Ok(row.unwrap_or_default())
}
