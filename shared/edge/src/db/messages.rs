//! `messages`: every message in and out, in one order per business (`created_us`). Inbound
//! messages are stored once however often a provider retries them; outbound ones move
//! `queued → sent → delivered → read` (or `failed`) and never back. Every statement is scoped by
//! the tenant, but for the sweep's, which look for lost sends across businesses.

use crate::db::Read;
use crate::db::directory::Moving;
use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::channel::{Channel, Direction, MessageStatus};
use domain::error::ApiError;
use domain::ids::{BusinessId, ConversationId, CustomerId, MessageId};
use domain::message::{Cursor, Message};
use domain::outgoing::CommentReply;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// The SQL expression that gives a new message of business `?{business}` its `created_us`:
/// the current time `?{now}` in microseconds, or one more than the business's latest message if
/// that is later. D1 runs one statement at a time, so every message gets a distinct value and
/// values increase in commit order: a poller that has seen one message has seen every earlier one.
fn next_created_us(now: u8, business: u8) -> String {
    format!(
        "MAX(?{now}, COALESCE((SELECT MAX(created_us) FROM messages WHERE business_id = ?{business}), 0) + 1)"
    )
}

/// The rank of a message's stored `status`, as [`MessageStatus::rank`] defines it, in SQL: a
/// status update applies only where it ranks higher, so late or repeated updates never move a
/// message back.
fn stored_status_rank() -> String {
    status_rank("status")
}

/// The SQL expression for the rank of the status held in `column` (see `MessageStatus::rank`).
pub fn status_rank(column: &str) -> String {
    let arms: Vec<String> = MessageStatus::ALL
        .into_iter()
        .map(|status| format!("WHEN '{}' THEN {}", status.as_str(), status.rank()))
        .collect();
    format!("(CASE {column} {} ELSE 0 END)", arms.join(" "))
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, customer_id, content, channel, direction, status, status_reason, \
                               created_us, updated_at";

#[derive(Deserialize)]
struct MessageRow {
    id: MessageId,
    conversation_id: ConversationId,
    customer_id: CustomerId,
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
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("message", &id, what);
        let channel = Channel::parse(&self.channel).ok_or_else(|| corrupt("channel"))?;
        let direction = match self.direction.as_str() {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => return Err(corrupt("direction")),
        };
        let status = MessageStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?;
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

/// The statement that stores an inbound message in its sender's conversation (both resolved
/// from the sender's `address` by the statements before it in the batch), once: a message whose
/// provider id is stored already is not stored again. It returns the new message's id.
#[allow(clippy::too_many_arguments)]
pub fn insert_inbound(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    thread: &str,
    address: &str,
    id: &MessageId,
    content: &str,
    provider_message_id: &str,
    now: Timestamp,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, format!(
            "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             provider_message_id, created_us, updated_at) \
             SELECT ?4, ?1, c.id, c.customer_id, ?2, 'inbound', ?5, 'received', ?6, {}, ?8 \
             FROM customer_identities i JOIN conversations c \
               ON c.business_id = i.business_id AND c.customer_id = i.customer_id AND c.channel = i.channel \
               AND c.thread = ?9 AND c.superseded_by IS NULL \
             WHERE i.business_id = ?1 AND i.channel = ?2 AND i.address = ?3 \
             ON CONFLICT DO NOTHING RETURNING id",
            next_created_us(7, 1)
        ))
        .bind(&[
            text(channel.as_str()),
            text(address),
            text(id.as_str()),
            text(content),
            text(provider_message_id),
            number(now.micros()),
            text(&now.to_rfc3339()),
            text(thread),
        ])?)
}

/// Gives the stored inbound message `provider_message_id` on `channel` its new `content` (an
/// edited comment's text; empty for a removed one); whether one changed.
pub async fn edit_inbound(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    provider_message_id: &str,
    content: &str,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE messages SET content = ?4, updated_at = ?5 WHERE business_id = ?1 AND channel = ?2 \
             AND provider_message_id = ?3 AND direction = 'inbound' AND content <> ?4",
        )
        .bind(&[
            text(channel.as_str()),
            text(provider_message_id),
            text(content),
            text(&now.to_rfc3339()),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) > 0)
}

/// What a send was accepted with beyond its content: kept on the row so that the sweep can put
/// a send whose queue message was lost back on the queue exactly as the client asked for it.
pub struct SendOptions<'a> {
    /// The email subject the client gave.
    pub subject: Option<&'a str>,
    /// The deployment's origin the client reached, that providers fetch attachments from.
    pub media_base_url: Option<&'a str>,
    /// The comment it answers, when it answers one (in the conversation of the comment's post).
    pub reply: Option<&'a CommentReply>,
}

/// The statement that stores a message to send as `queued`, in the customer's conversation on
/// the channel (touched by the statement before it), with its send options. It returns the
/// message's id, conversation and place in the business's order.
#[allow(clippy::too_many_arguments)]
pub fn insert_outbound(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    channel: Channel,
    id: &MessageId,
    content: &str,
    options: &SendOptions<'_>,
    now: Timestamp,
) -> Result<Read<Option<InsertedOutbound>>, ApiError> {
    Ok(Read::first(db
        .scoped(tenant, format!(
            "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             created_us, updated_at, send_subject, send_media_base_url, send_reply_to, send_privately) \
             SELECT ?4, ?1, c.id, c.customer_id, c.channel, 'outbound', ?5, 'queued', {}, ?7, ?8, ?9, ?11, ?12 \
             FROM conversations c WHERE c.business_id = ?1 AND c.customer_id = ?2 AND c.channel = ?3 \
             AND c.thread = ?10 AND c.superseded_by IS NULL \
             RETURNING id, conversation_id, created_us",
            next_created_us(6, 1)
        ))
        .bind(&[
            text(customer_id.as_str()),
            text(channel.as_str()),
            text(id.as_str()),
            text(content),
            number(now.micros()),
            text(&now.to_rfc3339()),
            db::optional_text(options.subject),
            db::optional_text(options.media_base_url),
            text(options.reply.map_or("", |reply| reply.post_id.as_str())),
            db::optional_text(options.reply.map(|reply| reply.comment_id.as_str())),
            number(i64::from(options.reply.is_some_and(|reply| reply.privately))),
        ])?))
}

/// What [`insert_outbound`] returns.
#[derive(Debug, Deserialize)]
pub struct InsertedOutbound {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub created_us: i64,
}

/// The statement that moves our outbound message to `status` unless it is already there or
/// further along (a late or repeated update never moves it back).
pub fn advance(
    db: &Db,
    tenant: &Tenant,
    id: &MessageId,
    status: MessageStatus,
    reason: Option<&str>,
    provider_message_id: Option<&str>,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, format!(
            "UPDATE messages SET status = ?3, status_reason = ?4, provider_message_id = COALESCE(?5, provider_message_id), \
             updated_at = ?6 WHERE business_id = ?1 AND id = ?2 AND direction = 'outbound' AND {} < ?7",
            stored_status_rank()
        ))
        .bind(&[
            text(id.as_str()),
            text(status.as_str()),
            db::optional_text(reason),
            db::optional_text(provider_message_id),
            text(now),
            number(i64::from(status.rank())),
        ])?)
}

/// The condition that the message holds `status` as written at `now`: true exactly when the
/// [`advance`] made at `now` applied.
pub fn moved_to(id: &MessageId, status: MessageStatus, now: &str) -> Sql {
    Sql::new(
        "EXISTS (SELECT 1 FROM messages WHERE business_id = :business AND id = :message_id \
         AND status = :message_status AND updated_at = :message_at)",
    )
    .bind("message_id", text(id.as_str()))
    .bind("message_status", text(status.as_str()))
    .bind("message_at", text(now))
}

/// The statement that applies a provider's status callback to the outbound message it sent as
/// `provider_message_id` on `channel`, forward only.
pub fn apply_provider_status(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    provider_message_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            format!(
                "UPDATE messages SET status = ?3, status_reason = ?4, updated_at = ?5 \
             WHERE business_id = ?1 AND channel = ?6 AND provider_message_id = ?2 AND direction = 'outbound' \
             AND {} < ?7",
                stored_status_rank()
            ),
        )
        .bind(&[
            text(provider_message_id),
            text(status.as_str()),
            db::optional_text(reason),
            text(now),
            text(channel.as_str()),
            number(i64::from(status.rank())),
        ])?)
}

/// Claims the queued outbound message `id` for one attempt to send it, before anything is sent:
/// its `updated_at` moves from `read_at` (as the sender read it) to `now`, which of two
/// deliveries racing each other only one can do, and a business being moved cannot (its writes
/// are refused, so nothing is sent that could not be recorded). The lost-send sweep counts from
/// `updated_at`, so it leaves a message alone while an attempt on it may still be going on.
/// `now` must be later than `read_at`. True: this attempt holds the message.
pub async fn claim_send(
    db: &Db,
    tenant: &Tenant,
    id: &MessageId,
    read_at: &str,
    now: &str,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE messages SET updated_at = ?4 \
             WHERE business_id = ?1 AND id = ?2 AND direction = 'outbound' AND status = 'queued' AND updated_at = ?3",
        )
        .bind(&[text(id.as_str()), text(read_at), text(now)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Records why a still-queued message is waiting for another attempt.
pub async fn note_retry(
    db: &Db,
    tenant: &Tenant,
    id: &MessageId,
    reason: &str,
    now: &str,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE messages SET status_reason = ?3, updated_at = ?4 \
         WHERE business_id = ?1 AND id = ?2 AND direction = 'outbound' AND status = 'queued'",
    )
    .bind(&[text(id.as_str()), text(reason), text(now)])?
    .run()
    .await?;
    Ok(())
}

/// The tenant's outbound message `id`, a column of it (`column` is written in the code, never
/// taken from a request): a fragment for a read of another table about the message.
pub fn outbound_column(id: &MessageId, column: &'static str) -> Sql {
    Sql::new(format!(
        "SELECT {column} FROM messages WHERE business_id = :business AND id = :message AND direction = 'outbound'"
    ))
    .bind("message", text(id.as_str()))
}

/// The statement reading the tenant's outbound message `id`.
pub fn outbound(db: &Db, tenant: &Tenant, id: &MessageId) -> Result<Read<Option<Message>>, ApiError> {
    Ok(Read::new(
        outbound_column(id, MESSAGE_COLUMNS).scoped(db, tenant)?,
        read_outbound,
    ))
}

/// The statement reading which comment the outbound message `id` answers, if any.
pub fn reply(db: &Db, tenant: &Tenant, id: &MessageId) -> Result<Read<Option<(String, bool)>>, ApiError> {
    Ok(Read::new(
        outbound_column(id, "send_reply_to, send_privately").scoped(db, tenant)?,
        read_reply,
    ))
}

/// The comment the statement of [`reply`] found the message answers: its id, and
/// whether the answer goes privately.
fn read_reply(answer: &D1Result) -> Result<Option<(String, bool)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        send_reply_to: Option<String>,
        send_privately: i64,
    }
    Ok(db::first_row::<Row>(answer)?.and_then(|row| {
        row.send_reply_to
            .map(|comment| (comment, row.send_privately != 0))
    }))
}

/// The message the statement of [`outbound`] found, or None.
fn read_outbound(answer: &D1Result) -> Result<Option<Message>, ApiError> {
    db::first_row::<MessageRow>(answer)?
        .map(MessageRow::into_message)
        .transpose()
}

/// Up to `limit` messages created after the cursor, oldest first.
pub async fn since(db: &Db, tenant: &Tenant, after: Cursor, limit: usize) -> Result<Vec<Message>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND created_us > ?2 ORDER BY created_us LIMIT ?3"
        ))
        .bind(&[
            number(after.after_us),
            number(limit as i64),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// The latest `limit` messages of each conversation, oldest first.
pub async fn of_conversations(
    db: &Db,
    tenant: &Tenant,
    conversation_ids: &[&ConversationId],
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {MESSAGE_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY created_us DESC) AS n \
             FROM messages WHERE business_id = ?1 AND conversation_id IN (SELECT value FROM json_each(?2))) \
             WHERE n <= ?3 ORDER BY created_us"
        ))
        .bind(&[
            db::json_list(conversation_ids.iter().map(|id| id.as_str())),
            number(limit as i64),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// One customer's messages on every channel, oldest first: the latest `limit` of them, or with
/// `after`, up to `limit` created after that cursor (the embedded inbox's first load and polls).
pub async fn of_customer(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
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
        .scoped(tenant, sql)
        .bind(&[
            db::text(customer_id.as_str()),
            number(after_us),
            number(limit as i64),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// The customer's messages among `ids` (a page asking how its queued replies are doing).
pub async fn of_customer_by_ids(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    ids: &[&MessageId],
) -> Result<Vec<Message>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND customer_id = ?2 \
             AND id IN (SELECT value FROM json_each(?3)) ORDER BY created_us"
            ),
        )
        .bind(&[
            db::text(customer_id.as_str()),
            db::json_list(ids.iter().map(|id| id.as_str())),
        ])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// The tenant's messages among `ids`, in the business's message order.
pub async fn by_ids(db: &Db, tenant: &Tenant, ids: &[&MessageId]) -> Result<Vec<Message>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2)) \
             ORDER BY created_us"
        ))
        .bind(&[db::json_list(ids.iter().map(|id| id.as_str()))])?
        .all()
        .await?;
    to_messages(result.results::<MessageRow>()?)
}

/// SQL for `{"message", "customer"}` of the tenant's message whose id is `id_expression`, as
/// stored at the moment the statement runs; [`from_snapshot`] reads the message back.
pub fn snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('message', {}, 'customer', json({})) FROM messages m \
         WHERE m.business_id = :business AND m.id = {id_expression})",
        db::customers::json_object_of(MESSAGE_COLUMNS, "m"),
        db::customers::snapshot_sql("m.customer_id")
    )
}

/// A message from the JSON [`snapshot_sql`] made.
pub fn from_snapshot(value: serde_json::Value) -> Result<Message, ApiError> {
    serde_json::from_value::<MessageRow>(value)
        .map_err(|e| ApiError::internal("reading a message snapshot", e))?
        .into_message()
}

/// How far a multi-part send got: the parts the provider accepted, and its id for the first.
#[derive(Debug, Default, Deserialize)]
pub struct SendProgress {
    pub parts_sent: usize,
    pub partial_provider_id: Option<String>,
}

/// The progress recorded for the queued message `id` (nothing for a message never partly sent).
pub async fn send_progress(db: &Db, tenant: &Tenant, id: &MessageId) -> Result<SendProgress, ApiError> {
    Ok(db
        .scoped(tenant, "SELECT parts_sent, partial_provider_id FROM messages WHERE business_id = ?1 AND id = ?2 AND status = 'queued'",
        )
        .bind(&[text(id.as_str())])?
        .first::<SendProgress>(None)
        .await?
        .unwrap_or_default())
}

/// Records that the provider accepted the first `parts_sent` parts of the queued message `id`
/// (the first as `provider_id`), so that a retry sends only the rest.
pub async fn record_parts_sent(
    db: &Db,
    tenant: &Tenant,
    id: &MessageId,
    parts_sent: usize,
    provider_id: Option<&str>,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE messages SET parts_sent = ?3, partial_provider_id = COALESCE(partial_provider_id, ?4) \
         WHERE business_id = ?1 AND id = ?2 AND status = 'queued' AND parts_sent < ?3",
    )
    .bind(&[
        text(id.as_str()),
        number(parts_sent as i64),
        db::optional_text(provider_id),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Which `queued` outbound messages count as lost: last written (accepted, or a retry noted,
/// which is what `status_reason` holds while queued) before `unnoted_before` without a retry
/// note, or before `noted_before` with one. `updated_at` is written with fixed-width
/// milliseconds, so comparing it as text compares times.
fn lost_send(unnoted_before: Timestamp, noted_before: Timestamp) -> Sql {
    Sql::new(
        "direction = 'outbound' AND status = 'queued' AND ((status_reason IS NULL AND updated_at < :unnoted_before) \
         OR updated_at < :noted_before)",
    )
    .bind("unnoted_before", text(&unnoted_before.to_rfc3339()))
    .bind("noted_before", text(&noted_before.to_rfc3339()))
}

/// A lost send the sweep put back on the queue, with what it was accepted with.
#[derive(Debug, Deserialize)]
pub struct RequeuedSend {
    pub business_id: BusinessId,
    pub id: MessageId,
    pub send_subject: Option<String>,
    pub send_media_base_url: Option<String>,
}

/// Takes up to `limit` lost sends (of any business) that were re-queued fewer than
/// `max_requeues` times: each is counted and stamped `now` in the one statement that selects
/// it, so two sweeps never take the same message, and the next sweep waits the whole bound
/// again before it counts the message lost once more.
pub async fn take_lost_sends(
    db: &Db,
    moving: &Moving,
    unnoted_before: Timestamp,
    noted_before: Timestamp,
    max_requeues: u32,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<RequeuedSend>, ApiError> {
    let result = lost_send(unnoted_before, noted_before)
        .within(
            "UPDATE messages SET send_requeues = send_requeues + 1, updated_at = :now WHERE id IN \
             (SELECT id FROM messages WHERE {sql} AND send_requeues < :max_requeues \
             AND business_id NOT IN (SELECT value FROM json_each(:moving)) ORDER BY updated_at LIMIT :limit) \
             RETURNING business_id, id, send_subject, send_media_base_url",
        )
        .bind("moving", moving.param())
        .bind("now", text(&now.to_rfc3339()))
        .bind("max_requeues", number(i64::from(max_requeues)))
        .bind("limit", number(limit as i64))
        .unscoped(db)?
        .all()
        .await?;
    Ok(result.results::<RequeuedSend>()?)
}

/// Up to `limit` lost sends (of any business) already re-queued `max_requeues` times: the
/// sweep fails them rather than loop.
pub async fn lost_beyond_requeues(
    db: &Db,
    moving: &Moving,
    unnoted_before: Timestamp,
    noted_before: Timestamp,
    max_requeues: u32,
    limit: usize,
) -> Result<Vec<(BusinessId, MessageId)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: MessageId,
    }
    let result = lost_send(unnoted_before, noted_before)
        .within(
            "SELECT business_id, id FROM messages WHERE {sql} AND send_requeues >= :max_requeues \
             AND business_id NOT IN (SELECT value FROM json_each(:moving)) ORDER BY updated_at LIMIT :limit",
        )
        .bind("moving", moving.param())
        .bind("max_requeues", number(i64::from(max_requeues)))
        .bind("limit", number(limit as i64))
        .unscoped(db)?
        .all()
        .await?;
    Ok(result
        .results::<Row>()?
        .into_iter()
        .map(|row| (row.business_id, row.id))
        .collect())
}

/// A restore's quarantine: the business's outbound messages still `queued` in the backup are
/// failed with `reason`, never sent: the backup is of another moment, and what was queued then
/// may have been sent since, or no longer be wanted.
pub fn fail_queued(db: &Db, tenant: &Tenant, reason: &str, now: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE messages SET status = 'failed', status_reason = ?2, updated_at = ?3 \
             WHERE business_id = ?1 AND direction = 'outbound' AND status = 'queued'",
        )
        .bind(&[text(reason), text(now)])?)
}

/// Up to `limit` ids of the customer's messages, oldest first (an erasure's next step).
pub async fn ids_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
    limit: usize,
) -> Result<Vec<MessageId>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: MessageId,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT id FROM messages WHERE business_id = ?1 AND customer_id = ?2 ORDER BY created_us LIMIT ?3",
        )
        .bind(&[text(customer.as_str()), number(limit as i64)])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The statement that deletes the messages `ids` selects: after everything that names them.
pub fn erase(db: &Db, tenant: &Tenant, ids: Sql) -> Result<Statement, ApiError> {
    ids.within("DELETE FROM messages WHERE business_id = :business AND id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_rank_agrees_with_the_status_ranks() {
        let sql = stored_status_rank();
        for (status, rank) in [
            ("queued", 0),
            ("sent", 1),
            ("delivered", 2),
            ("failed", 3),
            ("read", 4),
        ] {
            assert!(sql.contains(&format!("WHEN '{status}' THEN {rank}")), "{sql}");
        }
    }
}

#[cfg(test)]
mod on_data {
    use super::*;
    use crate::testing::{Fixture, Must, Sent};
    use domain::ids::ChannelAccountId;
    use serde_json::json;
    use std::time::Duration;

    /// A business on the first shard with an SMS account and a customer.
    async fn shop(fixture: &Fixture, name: &str, shard: u16) -> (Tenant, ChannelAccountId, CustomerId) {
        let tenant = fixture.business_on(name, shard).await;
        let account = fixture.account(&tenant, Channel::Sms).await;
        let customer = fixture.customer(&tenant, "Ann").await;
        (tenant, account, customer)
    }

    async fn status_of(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &MessageId,
    ) -> (MessageStatus, Option<String>) {
        let found = by_ids(&fixture.db, tenant, &[id]).await.must();
        let message = found.into_iter().next().unwrap_or_else(|| panic!("message {id}"));
        (message.status, message.status_reason)
    }

    fn ids(messages: &[Message]) -> Vec<MessageId> {
        messages.iter().map(|message| message.id.clone()).collect()
    }

    fn sent_ids(sent: &[&Sent]) -> Vec<MessageId> {
        sent.iter().map(|sent| sent.id.clone()).collect()
    }

    #[test]
    fn messages_written_at_the_same_moment_still_follow_one_another() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let (globex, theirs, bob) = shop(&fixture, "Globex", 0).await;
            let now = fixture.now().micros();
            let first = fixture.send(&acme, &ann, Channel::Sms, &account, "one").await;
            let second = fixture.send(&acme, &ann, Channel::Sms, &account, "two").await;
            let other = fixture.send(&globex, &bob, Channel::Sms, &theirs, "theirs").await;
            let third = fixture.send(&acme, &ann, Channel::Sms, &account, "three").await;
            assert_eq!(
                [first.created_us, second.created_us, third.created_us],
                [now, now + 1, now + 2],
                "each after the business's latest"
            );
            assert_eq!(other.created_us, now, "another business's order is its own");
            fixture.stack.advance(Duration::from_secs(1));
            let later = fixture.send(&acme, &ann, Channel::Sms, &account, "four").await;
            assert_eq!(
                later.created_us,
                fixture.now().micros(),
                "the clock again once it is ahead"
            );
            let rows = fixture.rows("messages", "created_us");
            let row = rows
                .iter()
                .find(|row| row["id"] == json!(first.id.as_str()))
                .cloned()
                .unwrap_or_default();
            assert_eq!(row["status"], json!("queued"));
            assert_eq!(row["direction"], json!("outbound"));
            assert_eq!(row["content"], json!("one"));
            assert_eq!(row["send_media_base_url"], json!("https://edge.test"));
            assert_eq!(row["send_requeues"], json!(0));
        });
    }

    #[test]
    fn an_inbound_message_is_stored_once_and_only_from_a_known_address() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Whatsapp).await;
            let stored = fixture
                .receive(
                    &acme,
                    Channel::Whatsapp,
                    &account,
                    "+353871234567",
                    "hi",
                    "wamid.1",
                )
                .await;
            assert!(stored.is_some());
            let again = fixture
                .receive(
                    &acme,
                    Channel::Whatsapp,
                    &account,
                    "+353871234567",
                    "hi",
                    "wamid.1",
                )
                .await;
            assert_eq!(again, None, "a provider's retry");
            let now = fixture.now();
            let stranger = insert_inbound(
                &fixture.db,
                &acme,
                Channel::Whatsapp,
                "",
                "+353879999999",
                &MessageId::generate(crate::testing::random()),
                "who?",
                "wamid.2",
                now,
            )
            .must();
            assert_eq!(
                fixture.changes(stranger).await,
                0,
                "no identity, no conversation: nothing"
            );
            let rows = fixture.rows("messages", "created_us");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["status"], json!("received"));
            assert_eq!(rows[0]["provider_message_id"], json!("wamid.1"));
        });
    }

    #[test]
    fn an_outbound_message_moves_forward_only() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let now = || fixture.now().to_rfc3339();
            let step = |status, reason: Option<&'static str>, provider: Option<&'static str>, at: String| {
                advance(&fixture.db, &acme, &sent.id, status, reason, provider, &at).must()
            };
            let cases = [
                (
                    "queued to sent",
                    MessageStatus::Sent,
                    None,
                    Some("SM1"),
                    1,
                    MessageStatus::Sent,
                ),
                (
                    "sent again",
                    MessageStatus::Sent,
                    None,
                    None,
                    0,
                    MessageStatus::Sent,
                ),
                (
                    "to delivered",
                    MessageStatus::Delivered,
                    None,
                    None,
                    1,
                    MessageStatus::Delivered,
                ),
                (
                    "back to sent",
                    MessageStatus::Sent,
                    None,
                    None,
                    0,
                    MessageStatus::Delivered,
                ),
                ("to read", MessageStatus::Read, None, None, 1, MessageStatus::Read),
                (
                    "failed after read",
                    MessageStatus::Failed,
                    Some("late"),
                    None,
                    0,
                    MessageStatus::Read,
                ),
            ];
            for (description, status, reason, provider, changed, held) in cases {
                fixture.stack.advance(Duration::from_millis(1));
                let at = now();
                assert_eq!(
                    fixture.changes(step(status, reason, provider, at.clone())).await,
                    changed,
                    "{description}"
                );
                assert_eq!(
                    status_of(&fixture, &acme, &sent.id).await.0,
                    held,
                    "{description}"
                );
                let moved = moved_to(&sent.id, status, &at)
                    .within("SELECT {sql} AS moved")
                    .scoped(&fixture.db, &acme);
                let moved = moved
                    .must()
                    .first::<serde_json::Value>(None)
                    .await
                    .must()
                    .unwrap_or_default();
                assert_eq!(
                    moved["moved"],
                    json!(changed),
                    "{description}: moved_to says whether it applied"
                );
            }
            let rows = fixture.rows("messages", "created_us");
            assert_eq!(rows[0]["provider_message_id"], json!("SM1"), "kept once known");
        });
    }

    #[test]
    fn a_providers_status_finds_our_message_by_its_id_on_its_channel() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let now = fixture.now().to_rfc3339();
            fixture
                .changes(
                    advance(
                        &fixture.db,
                        &acme,
                        &sent.id,
                        MessageStatus::Sent,
                        None,
                        Some("SM1"),
                        &now,
                    )
                    .must(),
                )
                .await;
            let cases = [
                (
                    "another channel",
                    Channel::Whatsapp,
                    "SM1",
                    MessageStatus::Delivered,
                    0,
                ),
                ("another id", Channel::Sms, "SM2", MessageStatus::Delivered, 0),
                (
                    "its channel and id",
                    Channel::Sms,
                    "SM1",
                    MessageStatus::Failed,
                    1,
                ),
                (
                    "an earlier status, late",
                    Channel::Sms,
                    "SM1",
                    MessageStatus::Delivered,
                    0,
                ),
            ];
            for (description, channel, provider_id, status, changed) in cases {
                let statement = apply_provider_status(
                    &fixture.db,
                    &acme,
                    channel,
                    provider_id,
                    status,
                    Some("why"),
                    &now,
                )
                .must();
                assert_eq!(fixture.changes(statement).await, changed, "{description}");
            }
            assert_eq!(
                status_of(&fixture, &acme, &sent.id).await,
                (MessageStatus::Failed, Some("why".to_owned()))
            );

            // An inbound message is never moved by a status.
            let inbound_account = fixture.account(&acme, Channel::Whatsapp).await;
            let received = fixture
                .receive(
                    &acme,
                    Channel::Whatsapp,
                    &inbound_account,
                    "+353871234567",
                    "hi",
                    "wamid.1",
                )
                .await;
            let received = received.unwrap_or_else(|| panic!("stored"));
            let statement = apply_provider_status(
                &fixture.db,
                &acme,
                Channel::Whatsapp,
                "wamid.1",
                MessageStatus::Read,
                None,
                &now,
            )
            .must();
            assert_eq!(fixture.changes(statement).await, 0);
            let statement = advance(
                &fixture.db,
                &acme,
                &received,
                MessageStatus::Read,
                None,
                None,
                &now,
            )
            .must();
            assert_eq!(fixture.changes(statement).await, 0);
            assert_eq!(
                status_of(&fixture, &acme, &received).await.0,
                MessageStatus::Received
            );
        });
    }

    #[test]
    fn another_business_cannot_read_or_move_a_message() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let now = fixture.now().to_rfc3339();
            fixture
                .changes(
                    advance(
                        &fixture.db,
                        &acme,
                        &sent.id,
                        MessageStatus::Sent,
                        None,
                        Some("SM1"),
                        &now,
                    )
                    .must(),
                )
                .await;
            assert!(by_ids(&fixture.db, &globex, &[&sent.id]).await.must().is_empty());
            assert!(
                since(&fixture.db, &globex, Cursor { after_us: 0 }, 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_customer(&fixture.db, &globex, &ann, None, 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_conversations(&fixture.db, &globex, &[&sent.conversation_id], 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_customer_by_ids(&fixture.db, &globex, &ann, &[&sent.id])
                    .await
                    .must()
                    .is_empty()
            );
            let found = outbound(&fixture.db, &globex, &sent.id).must().run().await.must();
            assert!(found.is_none());
            for statement in [
                advance(
                    &fixture.db,
                    &globex,
                    &sent.id,
                    MessageStatus::Read,
                    None,
                    None,
                    &now,
                )
                .must(),
                apply_provider_status(
                    &fixture.db,
                    &globex,
                    Channel::Sms,
                    "SM1",
                    MessageStatus::Read,
                    None,
                    &now,
                )
                .must(),
            ] {
                assert_eq!(fixture.changes(statement).await, 0);
            }
            note_retry(&fixture.db, &globex, &sent.id, "theirs", &now)
                .await
                .must();
            record_parts_sent(&fixture.db, &globex, &sent.id, 3, Some("x"))
                .await
                .must();
            assert_eq!(
                status_of(&fixture, &acme, &sent.id).await,
                (MessageStatus::Sent, None)
            );
            assert_eq!(fixture.rows("messages", "created_us")[0]["parts_sent"], json!(0));
        });
    }

    #[test]
    fn messages_are_read_in_the_business_order_by_cursor_customer_and_conversation() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, sms, ann) = shop(&fixture, "Acme", 0).await;
            let email = fixture.account(&acme, Channel::Email).await;
            let bob = fixture.customer(&acme, "Bob").await;
            let a1 = fixture.send(&acme, &ann, Channel::Sms, &sms, "a1").await;
            let b1 = fixture.send(&acme, &bob, Channel::Sms, &sms, "b1").await;
            let a2 = fixture.send(&acme, &ann, Channel::Email, &email, "a2").await;
            let a3 = fixture.send(&acme, &ann, Channel::Sms, &sms, "a3").await;
            let a4 = fixture.send(&acme, &ann, Channel::Sms, &sms, "a4").await;

            let first = since(&fixture.db, &acme, Cursor { after_us: 0 }, 2).await.must();
            assert_eq!(ids(&first), sent_ids(&[&a1, &b1]));
            let next = since(
                &fixture.db,
                &acme,
                Cursor {
                    after_us: first[1].created_us,
                },
                2,
            )
            .await
            .must();
            assert_eq!(
                ids(&next),
                sent_ids(&[&a2, &a3]),
                "after the cursor, never again before it"
            );
            let read = of_customer(&fixture.db, &acme, &ann, None, 3).await.must();
            assert_eq!(
                ids(&read),
                sent_ids(&[&a2, &a3, &a4]),
                "the latest three, oldest first, every channel"
            );
            let polled = of_customer(
                &fixture.db,
                &acme,
                &ann,
                Some(Cursor {
                    after_us: a1.created_us,
                }),
                2,
            )
            .await
            .must();
            assert_eq!(
                ids(&polled),
                sent_ids(&[&a2, &a3]),
                "a poll after a cursor, oldest first"
            );
            let latest = of_conversations(&fixture.db, &acme, &[&a1.conversation_id, &b1.conversation_id], 2)
                .await
                .must();
            assert_eq!(
                ids(&latest),
                sent_ids(&[&b1, &a3, &a4]),
                "the latest two of each conversation"
            );
            let asked = of_customer_by_ids(&fixture.db, &acme, &ann, &[&a4.id, &b1.id, &a1.id])
                .await
                .must();
            assert_eq!(ids(&asked), sent_ids(&[&a1, &a4]), "only the customer's own");
            let message = &read[0];
            assert_eq!(
                (message.channel, message.direction, message.content.as_str()),
                (Channel::Email, Direction::Outbound, "a2")
            );
            assert_eq!(
                message.created_at,
                Timestamp::from_micros(a2.created_us).to_rfc3339_micros()
            );
        });
    }

    #[test]
    fn a_multi_part_send_records_its_progress_forward_only_while_queued() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture
                .send(&acme, &ann, Channel::Sms, &account, "with files")
                .await;
            let progress = || send_progress(&fixture.db, &acme, &sent.id);
            assert_eq!(progress().await.must().parts_sent, 0);
            record_parts_sent(&fixture.db, &acme, &sent.id, 1, Some("SM-first"))
                .await
                .must();
            record_parts_sent(&fixture.db, &acme, &sent.id, 2, Some("SM-second"))
                .await
                .must();
            record_parts_sent(&fixture.db, &acme, &sent.id, 1, Some("SM-late"))
                .await
                .must();
            let now = progress().await.must();
            assert_eq!(
                (now.parts_sent, now.partial_provider_id.as_deref()),
                (2, Some("SM-first"))
            );
            let at = fixture.now().to_rfc3339();
            fixture
                .changes(
                    advance(
                        &fixture.db,
                        &acme,
                        &sent.id,
                        MessageStatus::Sent,
                        None,
                        Some("SM-first"),
                        &at,
                    )
                    .must(),
                )
                .await;
            let done = progress().await.must();
            assert_eq!(
                (done.parts_sent, done.partial_provider_id),
                (0, None),
                "a message no longer queued has none"
            );
        });
    }

    #[test]
    fn a_retry_note_is_kept_only_while_the_message_is_queued() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let at = fixture.now().to_rfc3339();
            note_retry(&fixture.db, &acme, &sent.id, "provider 503", &at)
                .await
                .must();
            assert_eq!(
                status_of(&fixture, &acme, &sent.id).await,
                (MessageStatus::Queued, Some("provider 503".to_owned()))
            );
            fixture
                .changes(advance(&fixture.db, &acme, &sent.id, MessageStatus::Sent, None, None, &at).must())
                .await;
            note_retry(&fixture.db, &acme, &sent.id, "late", &at).await.must();
            assert_eq!(
                status_of(&fixture, &acme, &sent.id).await,
                (MessageStatus::Sent, None)
            );
        });
    }

    #[test]
    fn a_send_is_claimed_by_one_attempt_only_and_by_none_while_its_business_is_being_moved() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let updated_at = |id: MessageId| {
                let (db, acme) = (&fixture.db, &acme);
                async move { by_ids(db, acme, &[&id]).await.must()[0].updated_at.clone() }
            };
            let at = |seconds: i64| fixture.now().plus_seconds(seconds).to_rfc3339();
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let read = updated_at(sent.id.clone()).await;
            assert!(
                claim_send(&fixture.db, &acme, &sent.id, &read, &at(1))
                    .await
                    .must(),
                "the first attempt claims it"
            );
            assert!(
                !claim_send(&fixture.db, &acme, &sent.id, &read, &at(2))
                    .await
                    .must(),
                "a second attempt that read it at the same time does not"
            );
            assert_eq!(
                updated_at(sent.id.clone()).await,
                at(1),
                "the claim is the time it was taken"
            );
            fixture
                .changes(
                    advance(
                        &fixture.db,
                        &acme,
                        &sent.id,
                        MessageStatus::Sent,
                        None,
                        None,
                        &at(3),
                    )
                    .must(),
                )
                .await;
            assert!(
                !claim_send(&fixture.db, &acme, &sent.id, &at(3), &at(4))
                    .await
                    .must(),
                "a message no longer queued is not claimed"
            );

            let waiting = fixture.send(&acme, &ann, Channel::Sms, &account, "later").await;
            let read = updated_at(waiting.id.clone()).await;
            let placed = crate::db::directory::entry(&fixture.db, &acme.business_id)
                .await
                .must();
            let moving = domain::shard_move::Entry {
                moving_to: Some(1),
                move_started_ms: Some(0),
                ..placed
            };
            let moved = crate::db::directory::record(&fixture.db, &acme.business_id, &moving)
                .await
                .must();
            let refused = claim_send(&fixture.db, &acme, &waiting.id, &read, &at(5))
                .await
                .err()
                .unwrap_or_else(|| panic!("the claim of a business being moved is refused"));
            assert_eq!(refused.status(), 503, "{refused:?}");
            let placed_again = domain::shard_move::Entry {
                revision: moved.revision,
                ..placed
            };
            crate::db::directory::record(&fixture.db, &acme.business_id, &placed_again)
                .await
                .must();
            assert!(
                claim_send(&fixture.db, &acme, &waiting.id, &read, &at(6))
                    .await
                    .must(),
                "and it is claimed once the move is over"
            );
        });
    }

    #[test]
    fn the_sweep_takes_each_lost_send_once_per_bound_on_each_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let (globex, theirs, bob) = shop(&fixture, "Globex", 1).await;
            let quiet = fixture.send(&acme, &ann, Channel::Sms, &account, "quiet").await;
            let noted = fixture.send(&acme, &ann, Channel::Sms, &account, "noted").await;
            let done = fixture.send(&acme, &ann, Channel::Sms, &account, "done").await;
            let other = fixture.send(&globex, &bob, Channel::Sms, &theirs, "theirs").await;
            let at = fixture.now().to_rfc3339();
            note_retry(&fixture.db, &acme, &noted.id, "provider 503", &at)
                .await
                .must();
            fixture
                .changes(advance(&fixture.db, &acme, &done.id, MessageStatus::Sent, None, None, &at).must())
                .await;

            // Unnoted sends are lost after 5 minutes, noted ones after 30.
            fixture.stack.advance(Duration::from_secs(600));
            let now = fixture.now();
            let (unnoted, noted_bound) = (now.plus_seconds(-300), now.plus_seconds(-1800));
            let shards = fixture.db.each_shard();
            let taken = take_lost_sends(&shards[0], &Moving::NONE, unnoted, noted_bound, 3, now, 10)
                .await
                .must();
            let taken_ids: Vec<MessageId> = taken.iter().map(|send| send.id.clone()).collect();
            assert_eq!(
                taken_ids,
                std::slice::from_ref(&quiet.id),
                "the noted one waits longer; the sent one is not lost"
            );
            assert_eq!(taken[0].business_id, acme.business_id);
            assert_eq!(taken[0].send_media_base_url.as_deref(), Some("https://edge.test"));
            assert!(
                take_lost_sends(&shards[0], &Moving::NONE, unnoted, noted_bound, 3, now, 10)
                    .await
                    .must()
                    .is_empty(),
                "taken once: the next sweep waits the whole bound again"
            );
            let theirs_taken = take_lost_sends(&shards[1], &Moving::NONE, unnoted, noted_bound, 3, now, 10)
                .await
                .must();
            assert_eq!(
                theirs_taken
                    .iter()
                    .map(|send| send.id.clone())
                    .collect::<Vec<_>>(),
                std::slice::from_ref(&other.id)
            );

            fixture.stack.advance(Duration::from_secs(1800));
            let now = fixture.now();
            let (unnoted, noted_bound) = (now.plus_seconds(-300), now.plus_seconds(-1800));
            let again = take_lost_sends(&shards[0], &Moving::NONE, unnoted, noted_bound, 3, now, 1)
                .await
                .must();
            assert_eq!(again.len(), 1, "at most the limit");
            assert_eq!(again[0].id, noted.id, "the longest waiting first");
            let rows = fixture.rows("messages", "created_us");
            let requeues = |id: &MessageId| {
                rows.iter()
                    .find(|row| row["id"] == json!(id.as_str()))
                    .map(|row| row["send_requeues"].clone())
            };
            assert_eq!(requeues(&quiet.id), Some(json!(1)));
            assert_eq!(requeues(&noted.id), Some(json!(1)));
            assert_eq!(requeues(&done.id), Some(json!(0)));
        });
    }

    #[test]
    fn a_send_requeued_too_often_is_left_to_be_failed() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            for round in 0..3 {
                fixture.stack.advance(Duration::from_secs(301));
                let now = fixture.now();
                let lost = lost_beyond_requeues(
                    &fixture.db,
                    &Moving::NONE,
                    now.plus_seconds(-300),
                    now.plus_seconds(-1800),
                    2,
                    10,
                )
                .await
                .must();
                let taken = take_lost_sends(
                    &fixture.db,
                    &Moving::NONE,
                    now.plus_seconds(-300),
                    now.plus_seconds(-1800),
                    2,
                    now,
                    10,
                )
                .await
                .must();
                if round < 2 {
                    assert!(lost.is_empty(), "round {round}");
                    assert_eq!(taken.len(), 1, "round {round}");
                } else {
                    assert_eq!(
                        lost,
                        [(acme.business_id.clone(), sent.id.clone())],
                        "round {round}"
                    );
                    assert!(taken.is_empty(), "round {round}: not requeued a third time");
                }
            }
        });
    }

    #[test]
    fn a_snapshot_reads_back_as_the_message_and_its_customer() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let snapshot = Sql::new(format!("SELECT {} AS snapshot", snapshot_sql(":id")))
                .bind("id", text(sent.id.as_str()))
                .scoped(&fixture.db, &acme)
                .must()
                .first::<serde_json::Value>(None)
                .await
                .must()
                .unwrap_or_default();
            let value: serde_json::Value =
                serde_json::from_str(snapshot["snapshot"].as_str().unwrap_or_default()).must();
            let message = from_snapshot(value["message"].clone()).must();
            let read = outbound(&fixture.db, &acme, &sent.id)
                .must()
                .run()
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(message, read);
            let customer = crate::db::customers::from_snapshot(value["customer"].clone()).must();
            assert_eq!((customer.id, customer.name.as_str()), (ann, "Ann"));
        });
    }
}
