//! `conversations`: one per customer and channel, touched by every message in or out, and
//! changed (status, assignee) through `/api-conversations/{id}`. Every statement is scoped by
//! the tenant.

use crate::db::{self, Sql, text};
use crate::db::{Db, Statement};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::{ChannelAccountId, ConversationId, CustomerId, MessageId};
use domain::message::{Conversation, ConversationStatus};
use domain::tenant::Tenant;
use serde_json::Value;

const COLUMNS: &str = "c.id, c.customer_id, c.channel, c.channel_account_id, c.status, c.assignee, \
     c.last_message_at, c.created_at, c.updated_at, c.reopen_count, \
     (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count";

/// The statement that opens the customer's conversation on the channel for an inbound message
/// from `address` (the customer its identity names), or touches it; nothing when the provider's
/// message `provider_message_id` is stored already (a redelivery).
///
/// A conversation that was resolved or closed is reopened by the message: open again, without a
/// resolution time, its reopening counted and recorded against `message_id`, so that
/// [`reopened_by`] finds it in the same batch.
#[allow(clippy::too_many_arguments)]
pub fn touch_for_inbound(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    address: &str,
    new_id: &ConversationId,
    account: &ChannelAccountId,
    now: &str,
    provider_message_id: &str,
    message_id: &MessageId,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO conversations (id, business_id, customer_id, channel, channel_account_id, status, last_message_at, created_at, updated_at) \
             SELECT ?4, ?1, customer_id, ?2, ?5, 'open', ?6, ?6, ?6 FROM customer_identities \
             WHERE business_id = ?1 AND channel = ?2 AND address = ?3 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE business_id = ?1 AND channel = ?2 AND provider_message_id = ?7) \
             ON CONFLICT (business_id, customer_id, channel) DO UPDATE SET \
             last_message_at = excluded.last_message_at, updated_at = excluded.updated_at, \
             status = CASE WHEN conversations.status IN ('resolved', 'closed') THEN 'open' ELSE conversations.status END, \
             resolved_at = CASE WHEN conversations.status IN ('resolved', 'closed') THEN NULL ELSE conversations.resolved_at END, \
             reopen_count = conversations.reopen_count + (conversations.status IN ('resolved', 'closed')), \
             reopened_from = CASE WHEN conversations.status IN ('resolved', 'closed') THEN conversations.status \
               ELSE conversations.reopened_from END, \
             reopened_by = CASE WHEN conversations.status IN ('resolved', 'closed') THEN ?8 ELSE conversations.reopened_by END",
        )
        .bind(&[
            text(channel.as_str()),
            text(address),
            text(new_id.as_str()),
            text(account.as_str()),
            text(now),
            text(provider_message_id),
            text(message_id.as_str()),
        ])?)
}

/// SQL selecting the conversation (as `subject_id`) that the inbound message `message_id` from
/// `address` on `channel` reopened, with the status it had (as `detail`,
/// `{"previous_status": …, "reopened_by": "customer_message"}`); no row when the message reopened
/// none.
pub fn reopened_by(channel: Channel, address: &str, message_id: &MessageId) -> Sql {
    Sql::new(
        "SELECT c.id AS subject_id, json_object('previous_status', c.reopened_from, 'reopened_by', 'customer_message') AS detail \
         FROM conversations c WHERE c.business_id = :business AND c.channel = :reopen_channel \
         AND c.customer_id = (SELECT customer_id FROM customer_identities \
           WHERE business_id = :business AND channel = :reopen_channel AND address = :reopen_address) \
         AND c.reopened_by = :reopen_message",
    )
    .bind("reopen_channel", text(channel.as_str()))
    .bind("reopen_address", text(address))
    .bind("reopen_message", text(message_id.as_str()))
}

/// The statement that opens the customer's conversation on the channel for a message we send,
/// or touches it (keeping the account it was opened with).
pub fn touch_for_outbound(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    channel: Channel,
    new_id: &ConversationId,
    account: &ChannelAccountId,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO conversations (id, business_id, customer_id, channel, channel_account_id, status, \
             last_message_at, created_at, updated_at) VALUES (?4, ?1, ?2, ?3, ?5, 'open', ?6, ?6, ?6) \
             ON CONFLICT (business_id, customer_id, channel) DO UPDATE SET \
             channel_account_id = COALESCE(conversations.channel_account_id, excluded.channel_account_id), \
             last_message_at = excluded.last_message_at, updated_at = excluded.updated_at",
        )
        .bind(&[
            text(customer_id.as_str()),
            text(channel.as_str()),
            text(new_id.as_str()),
            text(account.as_str()),
            text(now),
        ])?)
}

/// The statement that sets status and assignee, only if the conversation still holds what
/// `current` read (a compare-and-set): 0 rows changed means someone else changed it first.
pub fn change(
    db: &Db,
    tenant: &Tenant,
    current: &Conversation,
    status: ConversationStatus,
    assignee: Option<&str>,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE conversations SET status = ?5, assignee = ?6, updated_at = ?7, \
             resolved_at = CASE WHEN ?5 NOT IN ('resolved', 'closed') THEN NULL \
               WHEN status IN ('resolved', 'closed') THEN resolved_at ELSE ?7 END \
             WHERE business_id = ?1 AND id = ?2 AND status = ?3 AND assignee IS ?4",
        )
        .bind(&[
            text(current.id.as_str()),
            text(current.status.as_str()),
            db::optional_text(current.assignee.as_deref()),
            text(status.as_str()),
            db::optional_text(assignee),
            text(now),
        ])?)
}

/// The condition that the conversation holds what [`change`] wrote at `now`: true exactly when
/// that change applied.
pub fn changed_to(id: &ConversationId, status: ConversationStatus, assignee: Option<&str>, now: &str) -> Sql {
    Sql::new(
        "EXISTS (SELECT 1 FROM conversations WHERE business_id = :business AND id = :conversation_id \
         AND status = :conversation_status AND assignee IS :conversation_assignee AND updated_at = :conversation_at)",
    )
    .bind("conversation_id", text(id.as_str()))
    .bind("conversation_status", text(status.as_str()))
    .bind("conversation_assignee", db::optional_text(assignee))
    .bind("conversation_at", text(now))
}

/// What the analytics read of one conversation: when it began and was resolved, its assignee,
/// and when the customer first wrote and was first answered after that.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Timing {
    pub assignee: Option<String>,
    /// How often the customer reopened it after it was resolved or closed.
    pub reopen_count: i64,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub first_inbound_us: Option<i64>,
    pub first_response_us: Option<i64>,
}

/// The timings of the tenant's conversations that began in [from, to), at most `limit`.
pub async fn timings(
    db: &Db,
    tenant: &Tenant,
    from: domain::time::Timestamp,
    to: domain::time::Timestamp,
    limit: usize,
) -> Result<Vec<Timing>, ApiError> {
    let first_inbound = "(SELECT min(m.created_us) FROM messages m WHERE m.business_id = c.business_id \
                         AND m.conversation_id = c.id AND m.direction = 'inbound')";
    let result = db
        .scoped(tenant, format!(
            "SELECT c.assignee, c.reopen_count, c.created_at, c.resolved_at, {first_inbound} AS first_inbound_us, \
             (SELECT min(m.created_us) FROM messages m WHERE m.business_id = c.business_id \
              AND m.conversation_id = c.id AND m.direction = 'outbound' AND m.created_us > {first_inbound}) \
             AS first_response_us FROM conversations c \
             WHERE c.business_id = ?1 AND c.created_at >= ?2 AND c.created_at < ?3 ORDER BY c.created_at LIMIT ?4"
        ))
        .bind(&[
            text(&from.to_rfc3339()),
            text(&to.to_rfc3339()),
            db::number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.results::<Timing>()?)
}

/// The customer's conversations, the latest active first.
pub async fn of_customer(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
) -> Result<Vec<Conversation>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM conversations c WHERE c.business_id = ?1 AND c.customer_id = ?2 \
             ORDER BY c.last_message_at DESC, c.created_at DESC"
            ),
        )
        .bind(&[text(customer_id.as_str())])?
        .all()
        .await?;
    Ok(result.results::<Conversation>()?)
}

/// The tenant's conversations among `ids`.
pub async fn by_ids(
    db: &Db,
    tenant: &Tenant,
    ids: &[&ConversationId],
) -> Result<Vec<Conversation>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM conversations c \
             WHERE c.business_id = ?1 AND c.id IN (SELECT value FROM json_each(?2))"
            ),
        )
        .bind(&[db::json_list(ids.iter().map(|id| id.as_str()))])?
        .all()
        .await?;
    Ok(result.results::<Conversation>()?)
}

/// SQL for `{"conversation", "customer"}` of the tenant's conversation whose id is
/// `id_expression`, as stored at the moment the statement runs.
pub fn snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('conversation', {}, 'customer', json({})) FROM conversations c \
         WHERE c.business_id = :business AND c.id = {id_expression})",
        db::customers::json_object_of(COLUMNS, "c"),
        db::customers::snapshot_sql("c.customer_id")
    )
}

/// A conversation from the JSON [`snapshot_sql`] made.
pub fn from_snapshot(value: Value) -> Result<Conversation, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::internal("reading a conversation snapshot", e))
}
