//! `bot_answers`: the bot's log, one row per turn (a customer's message answered, handed off or
//! left alone, or a try in the console), and the KPIs read from it.

use crate::db::Rows;
use crate::db::Sql;
use crate::db::{Db, Statement, number, optional_number, optional_text, text};
use domain::api::bots::{AnswerEntry, KpisOut, Percentiles, TurnPiece, TurnRefusal};
use domain::bot::target::BotTarget;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::tenant::Tenant;
use serde::Deserialize;

/// One turn, as it is logged.
pub struct NewTurn<'a> {
    pub id: &'a str,
    pub target: &'a BotTarget,
    pub customer_id: Option<&'a CustomerId>,
    pub conversation_id: Option<&'a ConversationId>,
    /// The customer's message; None for a try.
    pub message_id: Option<&'a MessageId>,
    pub question: &'a str,
    pub action: &'a str,
    pub reason: Option<&'a str>,
    pub text: Option<&'a str>,
    /// A comment's: what was said under it, for everyone.
    pub public_text: Option<&'a str>,
    pub pieces: &'a [TurnPiece],
    pub refusals: &'a [TurnRefusal],
    pub model: Option<&'a str>,
    pub generator_ms: Option<u64>,
    pub total_ms: u64,
    pub reply_message_id: Option<&'a MessageId>,
    /// A comment answered in public and privately: the private message.
    pub private_message_id: Option<&'a MessageId>,
    pub created_at: &'a str,
}

/// Logs a turn; nothing when the message's turn is logged already.
pub fn insert(db: &Db, tenant: &Tenant, turn: &NewTurn<'_>) -> Result<Statement, ApiError> {
    let pieces = serde_json::to_string(turn.pieces)
        .map_err(|error| ApiError::internal("writing a bot turn's pieces", error))?;
    let refusals = serde_json::to_string(turn.refusals)
        .map_err(|error| ApiError::internal("writing a bot turn's refusals", error))?;
    let millis = |value: Option<u64>| optional_number(value.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)));
    Ok(db
        .scoped(
            tenant,
            "INSERT OR IGNORE INTO bot_answers (id, business_id, page_id, channel, customer_id, conversation_id, \
             message_id, question, action, reason, text, pieces, model, generator_ms, total_ms, reply_message_id, \
             is_try, created_at, private_message_id, public_text, refusals) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, \
             ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        )
        .bind(&[
            text(turn.id),
            text(turn.target.page_id.as_str()),
            text(turn.target.channel.as_str()),
            optional_text(turn.customer_id.map(CustomerId::as_str)),
            optional_text(turn.conversation_id.map(ConversationId::as_str)),
            optional_text(turn.message_id.map(MessageId::as_str)),
            text(turn.question),
            text(turn.action),
            optional_text(turn.reason),
            optional_text(turn.text),
            text(&pieces),
            optional_text(turn.model),
            millis(turn.generator_ms),
            millis(Some(turn.total_ms)),
            optional_text(turn.reply_message_id.map(MessageId::as_str)),
            number(i64::from(turn.message_id.is_none())),
            text(turn.created_at),
            optional_text(turn.private_message_id.map(MessageId::as_str)),
            optional_text(turn.public_text),
            text(&refusals),
        ])?)
}

/// Whether the turn for `message` is logged: a redelivered message is not answered twice.
pub async fn answered(db: &Db, tenant: &Tenant, message: &MessageId) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Found {
        #[allow(dead_code, reason = "the row's presence is the answer")]
        found: i64,
    }
    let found: Option<Found> = db
        .scoped(
            tenant,
            "SELECT 1 AS found FROM bot_answers WHERE message_id = ?2 AND business_id = ?1",
        )
        .bind(&[text(message.as_str())])?
        .first(None)
        .await?;
    Ok(found.is_some())
}

#[derive(Deserialize)]
struct Row {
    id: String,
    created_at: String,
    customer_id: Option<String>,
    conversation_id: Option<String>,
    message_id: Option<String>,
    question: String,
    action: String,
    reason: Option<String>,
    text: Option<String>,
    public_text: Option<String>,
    pieces: String,
    refusals: String,
    model: Option<String>,
    generator_ms: Option<i64>,
    total_ms: i64,
    reply_message_id: Option<String>,
    is_try: i64,
}

impl Row {
    fn entry(self) -> AnswerEntry {
        let millis = |ms: i64| u64::try_from(ms).unwrap_or(0);
        AnswerEntry {
            // A log row's pieces were written by `insert`; a damaged one shows none rather than
            // hiding the turn.
            pieces: serde_json::from_str(&self.pieces).unwrap_or_default(),
            refusals: serde_json::from_str(&self.refusals).unwrap_or_default(),
            public_text: self.public_text,
            id: self.id,
            created_at: self.created_at,
            customer_id: self.customer_id,
            conversation_id: self.conversation_id,
            message_id: self.message_id,
            question: self.question,
            action: self.action,
            reason: self.reason,
            text: self.text,
            model: self.model,
            generator_ms: self.generator_ms.map(millis),
            total_ms: millis(self.total_ms),
            reply_message_id: self.reply_message_id,
            is_try: self.is_try != 0,
        }
    }
}

/// The bot's turns, newest first (turns logged in the same millisecond, as the runtime's clock
/// stands still while an invocation waits, in the order they were logged), `limit` of them
/// before the turn `before` (when given).
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    target: &BotTarget,
    limit: usize,
    before: Option<&str>,
) -> Result<Vec<AnswerEntry>, ApiError> {
    let rows: Vec<Row> = db
        .scoped(
            tenant,
            "SELECT id, created_at, customer_id, conversation_id, message_id, question, action, reason, text, \
             public_text, pieces, refusals, model, generator_ms, total_ms, reply_message_id, is_try FROM bot_answers \
             WHERE business_id = ?1 AND page_id = ?2 AND channel = ?3 AND (?4 IS NULL OR (created_at, rowid) < \
             (SELECT created_at, rowid FROM bot_answers WHERE id = ?4 AND business_id = ?1)) \
             ORDER BY created_at DESC, rowid DESC LIMIT ?5",
        )
        .bind(&[
            text(target.page_id.as_str()),
            text(target.channel.as_str()),
            optional_text(before),
            number(i64::try_from(limit).unwrap_or(100)),
        ])?
        .all()
        .await?
        .rows()?;
    Ok(rows.into_iter().map(Row::entry).collect())
}

/// The bot's KPIs over the turns since `since` (tries left out).
pub async fn kpis(
    db: &Db,
    tenant: &Tenant,
    target: &BotTarget,
    days: u32,
    since: &str,
) -> Result<KpisOut, ApiError> {
    #[derive(Deserialize, Default)]
    struct Counts {
        answered: Option<i64>,
        handed_off: Option<i64>,
        silent: Option<i64>,
        without_person: Option<i64>,
        p50: Option<i64>,
        p95: Option<i64>,
    }
    // A reply needed no person when, after it, its conversation got no hand-off of the bot's, no
    // escalation, and no message from the page that is not the bot's.
    let counts: Option<Counts> = db
        .scoped(
            tenant,
            "WITH t AS (SELECT action, created_at, conversation_id, reply_message_id, total_ms FROM bot_answers \
             WHERE business_id = ?1 AND page_id = ?2 AND channel = ?3 AND created_at >= ?4 AND is_try = 0), \
             replies AS (SELECT total_ms FROM t WHERE action = 'reply') \
             SELECT SUM(action = 'reply') AS answered, SUM(action = 'handoff') AS handed_off, \
             SUM(action = 'silent') AS silent, \
             SUM(action = 'reply' AND NOT EXISTS (SELECT 1 FROM messages r, messages m WHERE r.id = t.reply_message_id \
             AND r.business_id = ?1 AND m.conversation_id = t.conversation_id AND m.created_us > r.created_us \
             AND m.business_id = ?1 AND m.direction = 'outbound' AND NOT EXISTS (SELECT 1 FROM bot_answers x \
             WHERE x.reply_message_id = m.id AND x.business_id = ?1) AND NOT EXISTS (SELECT 1 FROM bot_answers y \
             WHERE y.private_message_id = m.id AND y.business_id = ?1)) \
             AND NOT EXISTS (SELECT 1 FROM messages r, escalations e WHERE r.id = t.reply_message_id \
             AND r.business_id = ?1 AND e.conversation_id = t.conversation_id AND e.created_us > r.created_us \
             AND e.business_id = ?1) \
             AND NOT EXISTS (SELECT 1 FROM bot_answers h WHERE h.conversation_id = t.conversation_id \
             AND h.business_id = ?1 AND h.action = 'handoff' AND h.created_at > t.created_at)) AS without_person, \
             (SELECT total_ms FROM replies ORDER BY total_ms LIMIT 1 OFFSET (SELECT (COUNT(*) - 1) * 50 / 100 \
             FROM replies)) AS p50, \
             (SELECT total_ms FROM replies ORDER BY total_ms LIMIT 1 OFFSET (SELECT (COUNT(*) - 1) * 95 / 100 \
             FROM replies)) AS p95 \
             FROM t",
        )
        .bind(&[
            text(target.page_id.as_str()),
            text(target.channel.as_str()),
            text(since),
        ])?
        .first(None)
        .await?;
    let count = |value: Option<i64>| value.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    let counts = counts.unwrap_or_default();
    Ok(KpisOut {
        days,
        answered: count(counts.answered),
        handed_off: count(counts.handed_off),
        silent: count(counts.silent),
        answered_without_person: count(counts.without_person),
        time_to_answer_ms: Percentiles {
            p50: counts.p50.and_then(|ms| u64::try_from(ms).ok()),
            p95: counts.p95.and_then(|ms| u64::try_from(ms).ok()),
        },
    })
}

/// The statement that deletes the bot's answers in the conversations `conversations` selects (an
/// erasure's).
pub fn erase_of_conversations(db: &Db, tenant: &Tenant, conversations: Sql) -> Result<Statement, ApiError> {
    conversations
        .within("DELETE FROM bot_answers WHERE business_id = :business AND conversation_id IN ({sql})")
        .scoped(db, tenant)
}

/// The statement that deletes the bot's answers to the customer (an erasure's last).
pub fn erase_of_customer(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM bot_answers WHERE business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer.as_str())])?)
}
