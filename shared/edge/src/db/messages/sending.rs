//! An outbound message's life: stored `queued` in the customer's conversation with what the send
//! was accepted with; claimed by one attempt before anything is sent; a retry noted; the parts of
//! a multi-part send the provider accepted; and moved forward only, by us or by the provider's
//! status callback. With the reads a send needs: the message, and which comment it answers.

use super::{MESSAGE_COLUMNS, MessageRow, next_created_us, stored_status_rank};
use crate::db::{self, Db, Read, Sql, Statement, number, text};
use crate::runtime::D1Result;
use domain::channel::{Channel, MessageStatus};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::message::Message;
use domain::outgoing::CommentReply;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::super::by_ids;
    use super::super::on_data::{shop, status_of};
    use super::*;
    use crate::testing::{Fixture, Must};
    use serde_json::json;
    use std::time::Duration;

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
}
