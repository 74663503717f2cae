//! `bot_turns`: a customer message a page's bot is to answer, written in the message's own batch
//! (as its events are) when the page's bot on the channel is enabled, and deleted in the batch
//! that logs the turn. The queue message that hands it to the bot is a nudge, not the record: the
//! sweep hands over again every turn that waited too long, so a lost queue message loses no turn.

use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{Db, Sql, Statement, number, optional_text, text};
use domain::bot::target::BotChannel;
use domain::error::ApiError;
use domain::ids::{BusinessId, MessageId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};

/// A turn to take: the customer's message on a page's channel, and for a comment, where it is.
/// Also the body of the bot's queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub business_id: BusinessId,
    pub page_id: String,
    /// `facebook` (a comment) or `messenger`.
    pub channel: String,
    pub message_id: MessageId,
    /// A comment's post and its own id (Meta's), which its answer names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Commented>,
}

/// Where a comment is: the post (its conversation's thread) and the comment itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commented {
    pub post_id: String,
    pub comment_id: String,
}

/// The turn of `message` (stored by the same batch), written only if the message was stored now
/// and the page's bot on the channel is enabled: the batch reads the bot's switch itself, so the
/// inbound path pays no read of its own for it. Changes one row when written.
pub fn pending(
    db: &Db,
    tenant: &Tenant,
    page: &str,
    channel: BotChannel,
    message: &MessageId,
    comment: Option<&Commented>,
    now_ms: i64,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
        tenant,
        "INSERT INTO bot_turns (business_id, message_id, page_id, channel, post_id, comment_id, queued_ms) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
         WHERE EXISTS (SELECT 1 FROM bots WHERE business_id = ?1 AND page_id = ?3 AND channel = ?4 AND enabled = 1) \
         AND EXISTS (SELECT 1 FROM messages WHERE id = ?2 AND +business_id = ?1) \
         ON CONFLICT (business_id, message_id) DO NOTHING",
    )
    .bind(&[
        text(message.as_str()),
        text(page),
        text(channel.as_str()),
        optional_text(comment.map(|comment| comment.post_id.as_str())),
        optional_text(comment.map(|comment| comment.comment_id.as_str())),
        number(now_ms),
    ])?)
}

/// The turn of `message` is taken: its row goes, in the batch that logs it.
pub fn taken(db: &Db, tenant: &Tenant, message: &MessageId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM bot_turns WHERE business_id = ?1 AND message_id = ?2",
        )
        .bind(&[text(message.as_str())])?)
}

#[derive(Deserialize)]
struct Row {
    business_id: BusinessId,
    message_id: MessageId,
    page_id: String,
    channel: String,
    post_id: Option<String>,
    comment_id: Option<String>,
}

impl Row {
    fn turn(self) -> Turn {
        let comment = match (self.post_id, self.comment_id) {
            (Some(post_id), Some(comment_id)) => Some(Commented { post_id, comment_id }),
            _ => None,
        };
        Turn {
            business_id: self.business_id,
            page_id: self.page_id,
            channel: self.channel,
            message_id: self.message_id,
            comment,
        }
    }
}

/// Up to `limit` turns (of any business settled on this shard) handed to the queue before
/// `before_ms` and not taken since, each marked as handed over again now: the sweep queues them.
/// A turn handed over `most` times already is left to [`given_up`].
pub async fn take_waiting(
    db: &Db,
    moving: &Moving,
    before_ms: i64,
    now_ms: i64,
    most: i64,
    limit: usize,
) -> Result<Vec<Turn>, ApiError> {
    let result = Sql::new(
        "UPDATE bot_turns SET queued_ms = :now, requeued = requeued + 1 WHERE rowid IN \
         (SELECT rowid FROM bot_turns WHERE queued_ms < :before AND requeued < :most \
         AND business_id NOT IN (SELECT value FROM json_each(:moving)) ORDER BY queued_ms LIMIT :limit) \
         RETURNING business_id, message_id, page_id, channel, post_id, comment_id",
    )
    .bind("now", number(now_ms))
    .bind("before", number(before_ms))
    .bind("most", number(most))
    .bind("moving", moving.param())
    .bind("limit", number(limit as i64))
    .unscoped(db)?
    .all()
    .await?;
    Ok(result.rows::<Row>()?.into_iter().map(Row::turn).collect())
}

/// Turns handed over `most` times and still not taken, deleted (up to `limit`): something keeps
/// the bot from them (its queue's consumer fails on them), and people see the messages as always.
pub async fn given_up(
    db: &Db,
    moving: &Moving,
    before_ms: i64,
    most: i64,
    limit: usize,
) -> Result<Vec<Turn>, ApiError> {
    let result = Sql::new(
        "DELETE FROM bot_turns WHERE rowid IN (SELECT rowid FROM bot_turns WHERE queued_ms < :before \
         AND requeued >= :most AND business_id NOT IN (SELECT value FROM json_each(:moving)) \
         ORDER BY queued_ms LIMIT :limit) \
         RETURNING business_id, message_id, page_id, channel, post_id, comment_id",
    )
    .bind("before", number(before_ms))
    .bind("most", number(most))
    .bind("moving", moving.param())
    .bind("limit", number(limit as i64))
    .unscoped(db)?
    .all()
    .await?;
    Ok(result.rows::<Row>()?.into_iter().map(Row::turn).collect())
}

/// A restore's quarantine: the turns the backup held are dropped (their messages are of another
/// moment; people see them as always).
pub fn drop_all(db: &Db, tenant: &Tenant) -> Result<Statement, ApiError> {
    Ok(db.scoped(tenant, "DELETE FROM bot_turns WHERE business_id = ?1"))
}

/// The statement that deletes the turns of the messages `messages` selects (an erasure's).
pub fn erase_of_messages(db: &Db, tenant: &Tenant, messages: Sql) -> Result<Statement, ApiError> {
    messages
        .within("DELETE FROM bot_turns WHERE business_id = :business AND message_id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};

    #[test]
    fn a_waiting_turn_is_handed_over_again_until_it_is_taken_and_given_up_after_the_most_tries() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let db = &fixture.db;
            let message = MessageId::generate([7; 16]);
            let insert = "INSERT INTO bot_turns (business_id, message_id, page_id, channel, queued_ms) \
                          VALUES (?1, ?2, '123', 'messenger', 1000)";
            db.scoped(&tenant, insert)
                .bind(&[text(message.as_str())])
                .must()
                .run()
                .await
                .must();
            let waiting = take_waiting(db, &Moving::NONE, 2000, 5000, 2, 10).await.must();
            assert_eq!(
                waiting.iter().map(|turn| &turn.message_id).collect::<Vec<_>>(),
                [&message]
            );
            assert!(
                take_waiting(db, &Moving::NONE, 2000, 6000, 2, 10)
                    .await
                    .must()
                    .is_empty(),
                "handed over again just now"
            );
            assert_eq!(
                take_waiting(db, &Moving::NONE, 9000, 9000, 2, 10)
                    .await
                    .must()
                    .len(),
                1
            );
            assert!(
                take_waiting(db, &Moving::NONE, 20_000, 20_000, 2, 10)
                    .await
                    .must()
                    .is_empty(),
                "past the most tries"
            );
            let moving = Moving::on(0, &[]);
            assert_eq!(given_up(db, &moving, 20_000, 2, 10).await.must().len(), 1);
            db.batch(vec![taken(db, &tenant, &message).must()]).await.must();
            assert!(given_up(db, &Moving::NONE, 20_000, 2, 10).await.must().is_empty());
        });
    }
}
