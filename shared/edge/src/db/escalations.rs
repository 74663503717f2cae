//! `escalations`: conversations handed to a human, through the API or because the customer asked
//! for one in so many words. One per inbound message at most, so a phrase seen twice (a retried
//! sync) escalates once. The hand-off message is sent once per escalation.

use crate::db::Db;
use crate::db::{self, number, optional_text, text};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, EscalationId, MessageId};
use domain::tenant::Tenant;
use serde::Deserialize;

/// How an escalation came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Api,
    /// The customer's message contained one of the connector's escalation phrases.
    Phrase,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Phrase => "phrase",
        }
    }
}

pub struct NewEscalation<'a> {
    pub id: &'a EscalationId,
    pub conversation_id: &'a ConversationId,
    pub customer_id: &'a CustomerId,
    pub reason: &'a str,
    pub trigger: Trigger,
    pub message_id: Option<&'a MessageId>,
}

/// Records the escalation; false when its message escalated already.
pub async fn insert(
    db: &Db,
    tenant: &Tenant,
    new: &NewEscalation<'_>,
    now_us: i64,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(tenant, "INSERT INTO escalations (id, business_id, conversation_id, customer_id, reason, trigger, message_id, created_us) \
             VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&[
            text(new.id.as_str()),
            text(new.conversation_id.as_str()),
            text(new.customer_id.as_str()),
            text(new.reason),
            text(new.trigger.as_str()),
            optional_text(new.message_id.map(MessageId::as_str)),
            number(now_us),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Marks the escalation's hand-off message as sent; true for the one caller that marked it.
pub async fn take_handoff(
    db: &Db,
    tenant: &Tenant,
    id: &EscalationId,
    now_us: i64,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(tenant, "UPDATE escalations SET handed_off_us = ?3 WHERE business_id = ?1 AND id = ?2 AND handed_off_us IS NULL",
        )
        .bind(&[text(id.as_str()), number(now_us)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Escalations and conversations started in [from_us, to_us): the escalation rate's parts.
#[derive(Debug, Default, Deserialize)]
pub struct Rate {
    pub escalations: i64,
    pub conversations: i64,
}

pub async fn rate(db: &Db, tenant: &Tenant, from_us: i64, to_us: i64) -> Result<Rate, ApiError> {
    let row = db
        .scoped(tenant, "SELECT (SELECT count(DISTINCT conversation_id) FROM escalations WHERE business_id = ?1 \
               AND created_us >= ?2 AND created_us < ?3) AS escalations, \
             (SELECT count(*) FROM conversations WHERE business_id = ?1 AND created_at >= ?4 AND created_at < ?5) \
               AS conversations",
        )
        .bind(&[
            number(from_us),
            number(to_us),
            text(&domain::time::Timestamp::from_micros(from_us).to_rfc3339()),
            text(&domain::time::Timestamp::from_micros(to_us).to_rfc3339()),
        ])?
        .first::<Rate>(None)
        .await?;
    Ok(row.unwrap_or_default())
}
