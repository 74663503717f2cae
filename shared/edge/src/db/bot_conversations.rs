//! `bot_conversations`: what the bot has done in a conversation since its last resolve (answers
//! given, a hand-off), and, read with it, whether a person has written in it since: together the
//! conversation as `domain::bot::settings::decide` sees it.

use crate::db::Sql;
use crate::db::{Db, Statement, number, optional_text, text};
use domain::bot::settings::Conversation;
use domain::error::ApiError;
use domain::ids::{ConversationId, MessageId};
use domain::tenant::Tenant;
use serde::Deserialize;

/// A conversation's spell as the bot sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spell {
    /// The conversation's reopen count: the spell the state below belongs to.
    pub reopen_count: i64,
    pub conversation: Conversation,
}

/// The conversation's current spell: counted from its last reopen by the customer (the message
/// that reopened it), or from its start. None when there is no such conversation.
pub async fn spell(
    db: &Db,
    tenant: &Tenant,
    conversation: &ConversationId,
) -> Result<Option<Spell>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        reopen_count: i64,
        answers: i64,
        handed_off: i64,
        person_wrote: i64,
    }
    // A message the bot sent is one its log names; the hand-off message of an escalation is not
    // (it is sent by the escalation), and needs not be: a hand-off silences the bot anyway.
    let row: Option<Row> = db
        .scoped(
            tenant,
            "WITH c AS (SELECT id, reopen_count, CASE WHEN reopen_count > 0 THEN COALESCE((SELECT m.created_us \
             FROM messages m WHERE m.id = conversations.reopened_by), 0) ELSE 0 END AS since_us FROM conversations \
             WHERE business_id = ?1 AND id = ?2), \
             b AS (SELECT s.answers, s.handed_off_at FROM bot_conversations s, c WHERE s.business_id = ?1 \
             AND s.conversation_id = ?2 AND s.reopen_count = c.reopen_count) \
             SELECT c.reopen_count, COALESCE((SELECT answers FROM b), 0) AS answers, \
             (SELECT handed_off_at FROM b) IS NOT NULL AS handed_off, \
             EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = ?2 AND m.created_us >= c.since_us \
             AND m.business_id = ?1 AND m.direction = 'outbound' AND NOT EXISTS (SELECT 1 FROM bot_answers a \
             WHERE a.reply_message_id = m.id AND a.business_id = ?1) AND NOT EXISTS (SELECT 1 FROM bot_answers p \
             WHERE p.private_message_id = m.id AND p.business_id = ?1)) AS person_wrote FROM c",
        )
        .bind(&[text(conversation.as_str())])?
        .first(None)
        .await?;
    Ok(row.map(|row| Spell {
        reopen_count: row.reopen_count,
        conversation: Conversation {
            answers: u32::try_from(row.answers).unwrap_or(u32::MAX),
            with_people: row.handed_off != 0 || row.person_wrote != 0,
        },
    }))
}

/// What the turn answering `message` changed in the spell: one more answer, or the hand-off (at
/// `handed_off_at`). Nothing when the turn is logged already (a redelivered message), so this
/// goes in the batch before the log's row.
#[allow(clippy::too_many_arguments, reason = "one row's columns")]
pub fn record(
    db: &Db,
    tenant: &Tenant,
    conversation: &ConversationId,
    message: &MessageId,
    spell: &Spell,
    answered: bool,
    handed_off_at: Option<&str>,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO bot_conversations (business_id, conversation_id, reopen_count, answers, handed_off_at, \
             updated_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM bot_answers \
             WHERE message_id = ?7 AND business_id = ?1) ON CONFLICT (business_id, conversation_id) DO UPDATE SET \
             answers = CASE WHEN reopen_count = excluded.reopen_count THEN answers + excluded.answers \
             ELSE excluded.answers END, \
             handed_off_at = CASE WHEN reopen_count = excluded.reopen_count \
             THEN COALESCE(handed_off_at, excluded.handed_off_at) ELSE excluded.handed_off_at END, \
             reopen_count = excluded.reopen_count, updated_at = excluded.updated_at",
        )
        .bind(&[
            text(conversation.as_str()),
            number(spell.reopen_count),
            number(i64::from(answered)),
            optional_text(handed_off_at),
            text(now),
            text(message.as_str()),
        ])?)
}

/// The statement that deletes the bot's state of the conversations `conversations` selects.
pub fn erase_of_conversations(db: &Db, tenant: &Tenant, conversations: Sql) -> Result<Statement, ApiError> {
    conversations
        .within("DELETE FROM bot_conversations WHERE business_id = :business AND conversation_id IN ({sql})")
        .scoped(db, tenant)
}
