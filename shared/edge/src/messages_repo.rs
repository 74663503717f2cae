//! Reading messages and conversations. Every statement is scoped by the tenant, always `?1`.

use domain::channel::{Channel, Direction, MessageStatus};
use crate::attachments;
use crate::auth::Tenant;
use crate::{customers_repo, d1};
use domain::error::ApiError;
use domain::message::{Cursor, Message};
use domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

/// The SQL expression that gives a new message of business `?{business}` its `created_us`:
/// the current time `?{now}` in microseconds, or one more than the business's latest message if
/// that is later. D1 runs one statement at a time, so every message gets a distinct value and
/// values increase in commit order: a poller that has seen one message has seen every earlier one.
pub fn next_created_us(now: u8, business: u8) -> String {
    format!(
        "MAX(?{now}, COALESCE((SELECT MAX(created_us) FROM messages WHERE business_id = ?{business}), 0) + 1)"
    )
}

/// The rank of a message's stored `status`, as [`MessageStatus::rank`] defines it, in SQL: a
/// status update applies only where it ranks higher, so late or repeated updates never move a
/// message back.
pub fn stored_status_rank() -> String {
    use MessageStatus::*;
    let arms: Vec<String> = [Received, Queued, Sent, Delivered, Read, Failed]
        .into_iter()
        .map(|status| format!("WHEN '{}' THEN {}", status.as_str(), status.rank()))
        .collect();
    format!("(CASE status {} ELSE 0 END)", arms.join(" "))
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, customer_id, content, channel, direction, status, status_reason, \
                               created_us, updated_at";

#[derive(Deserialize)]
struct MessageRow {
    id: String,
    conversation_id: String,
    customer_id: String,
    content: String,
    channel: String,
    direction: String,
    status: String,
    status_reason: Option<String>,
    created_us: i64,
    updated_at: String,
}

impl MessageRow {
    fn into_message(self) -> Result<Message, ApiError> {
        let corrupt = |what: &str| {
            ApiError::internal(
                "reading message",
                format!("stored {what} of {} is not valid", self.id),
            )
        };
        let channel = Channel::parse(&self.channel).ok_or_else(|| corrupt("channel"))?;
        let direction = match self.direction.as_str() {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => return Err(corrupt("direction")),
        };
        let status: MessageStatus = serde_json::from_value(serde_json::Value::String(self.status.clone()))
            .map_err(|_| corrupt("status"))?;
        Ok(Message {
            created_at: Timestamp::from_micros(self.created_us).to_rfc3339_micros(),
            created_us: self.created_us,
            platform: channel,
            channel,
            direction,
            status,
            id: self.id,
            conversation_id: self.conversation_id,
            customer_id: self.customer_id,
            content: self.content,
            status_reason: self.status_reason,
            updated_at: self.updated_at,
            attachments: None,
        })
    }
}

fn to_messages(rows: Vec<MessageRow>) -> Result<Vec<Message>, ApiError> {
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// Fills in each message's attachments (one query for all of them), with download links under
/// the deployment's `origin`.
pub async fn attach(
    db: &D1Database,
    tenant: &Tenant,
    origin: &str,
    messages: &mut [Message],
) -> Result<(), ApiError> {
    let ids: Vec<&str> = messages.iter().map(|message| message.id.as_str()).collect();
    let mut found = attachments::of_messages(db, tenant, &ids).await?;
    for message in messages.iter_mut() {
        let (mine, rest): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|attachment| attachment.message_id.as_deref() == Some(message.id.as_str()));
        message.attachments = Some(
            mine.into_iter()
                .map(|attachment| attachment.with_download_url(origin))
                .collect(),
        );
        found = rest;
    }
    Ok(())
}

/// Up to `limit` messages created after the cursor, oldest first.
pub async fn since(
    db: &D1Database,
    tenant: &Tenant,
    after: Cursor,
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let result = db
        .prepare(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND created_us > ?2 ORDER BY created_us LIMIT ?3"
        ))
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            JsValue::from_f64(after.after_us as f64),
            JsValue::from_f64(limit as f64),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// The latest `limit` messages of each conversation, oldest first.
pub async fn of_conversations(
    db: &D1Database,
    tenant: &Tenant,
    conversation_ids: &[&str],
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let result = db
        .prepare(format!(
            "SELECT {MESSAGE_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY created_us DESC) AS n \
             FROM messages WHERE business_id = ?1 AND conversation_id IN (SELECT value FROM json_each(?2))) \
             WHERE n <= ?3 ORDER BY created_us"
        ))
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::json_list(conversation_ids.iter().copied()),
            JsValue::from_f64(limit as f64),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// One customer's messages on every channel, oldest first: the latest `limit` of them, or with
/// `after`, up to `limit` created after that cursor (the embedded inbox's first load and polls).
pub async fn of_customer(
    db: &D1Database,
    tenant: &Tenant,
    customer_id: &str,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let (sql, after_us) = match after {
        Some(cursor) => (
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND customer_id = ?2 AND created_us > ?3 \
                 ORDER BY created_us LIMIT ?4"
            ),
            cursor.after_us,
        ),
        None => (
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM (SELECT * FROM messages WHERE business_id = ?1 AND customer_id = ?2 \
                 AND created_us > ?3 ORDER BY created_us DESC LIMIT ?4) ORDER BY created_us"
            ),
            0,
        ),
    };
    let result = db
        .prepare(sql)
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::text(customer_id),
            JsValue::from_f64(after_us as f64),
            JsValue::from_f64(limit as f64),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// The customer's messages among `ids` (a page asking how its queued replies are doing).
pub async fn of_customer_by_ids(
    db: &D1Database,
    tenant: &Tenant,
    customer_id: &str,
    ids: &[&str],
) -> Result<Vec<Message>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .prepare(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND customer_id = ?2 \
             AND id IN (SELECT value FROM json_each(?3)) ORDER BY created_us"
        ))
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::text(customer_id),
            d1::json_list(ids.iter().copied()),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// A conversation as `/api-conversations-by-customer` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub customer_id: String,
    pub channel: String,
    pub channel_account_id: Option<String>,
    pub status: String,
    pub assignee: Option<String>,
    pub last_message_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: i64,
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub messages: Option<Vec<Message>>,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.customer_id, c.channel, c.channel_account_id, c.status, c.assignee, \
     c.last_message_at, c.created_at, c.updated_at, \
     (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count";

pub async fn conversations_of(
    db: &D1Database,
    tenant: &Tenant,
    customer_id: &str,
) -> Result<Vec<Conversation>, ApiError> {
    let result = db
        .prepare(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.business_id = ?1 AND c.customer_id = ?2 \
             ORDER BY c.last_message_at DESC, c.created_at DESC"
        ))
        .bind(&[d1::text(tenant.business_id.as_str()), d1::text(customer_id)])?
        .all()
        .await?;
    Ok(result.results::<Conversation>()?)
}

/// The tenant's messages among `ids`, in the business's message order.
pub async fn by_ids(db: &D1Database, tenant: &Tenant, ids: &[&str]) -> Result<Vec<Message>, ApiError> {
    let result = db
        .prepare(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2)) \
             ORDER BY created_us"
        ))
        .bind(&[d1::text(tenant.business_id.as_str()), d1::json_list(ids.iter().copied())])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// The tenant's conversations among `ids`.
pub async fn conversations_by_ids(
    db: &D1Database,
    tenant: &Tenant,
    ids: &[&str],
) -> Result<Vec<Conversation>, ApiError> {
    let result = db
        .prepare(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations c \
             WHERE c.business_id = ?1 AND c.id IN (SELECT value FROM json_each(?2))"
        ))
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::json_list(ids.iter().copied()),
        ])?
        .all()
        .await?;
    Ok(result.results::<Conversation>()?)
}

/// SQL for `{"message", "customer"}` of the tenant's message whose id is `id_expression`, as
/// stored at the moment the statement runs; [`message_from_snapshot`] reads the message back.
pub fn message_snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('message', {}, 'customer', json({})) FROM messages m \
         WHERE m.business_id = ?1 AND m.id = {id_expression})",
        d1::json_object_of(MESSAGE_COLUMNS, "m"),
        customers_repo::snapshot_sql("m.customer_id")
    )
}

/// SQL for `{"conversation", "customer"}` of the tenant's conversation whose id is
/// `id_expression`, as stored at the moment the statement runs.
pub fn conversation_snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('conversation', {}, 'customer', json({})) FROM conversations c \
         WHERE c.business_id = ?1 AND c.id = {id_expression})",
        d1::json_object_of(CONVERSATION_COLUMNS, "c"),
        customers_repo::snapshot_sql("c.customer_id")
    )
}

/// A message from the JSON [`message_snapshot_sql`] made.
pub fn message_from_snapshot(value: serde_json::Value) -> Result<Message, ApiError> {
    serde_json::from_value::<MessageRow>(value)
        .map_err(|e| ApiError::internal("reading a message snapshot", e))?
        .into_message()
}

/// A conversation from the JSON [`conversation_snapshot_sql`] made.
pub fn conversation_from_snapshot(value: serde_json::Value) -> Result<Conversation, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::internal("reading a conversation snapshot", e))
}
