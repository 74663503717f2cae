//! Storing what a channel receiver verified and parsed: the customer (found by the address the
//! channel knows them by, or created), their conversation on the channel, each message once
//! however often the provider retries it, its media in R2, and status updates of sent messages.
//!
//! While the business is being moved, what could not be stored is kept and stored after the move
//! (`held_inbound`).
//!
//! Each message is one D1 batch (one transaction, one round trip) whose statements resolve the
//! customer and conversation themselves, so that two deliveries racing each other cannot create
//! two customers or two conversations.
//!
//! This file takes a delivery item by item (a message, or a change to a comment), hands the bot
//! its turns, and applies the statuses; `message` stores one message in its batch, and `media`
//! stores the files a message carries or queues their fetch.

mod media;
mod message;

use crate::Env;
use crate::console_error;
use crate::db::bot_turns::{Commented, Turn};
use crate::db::channel_accounts::ChannelAccount;
use crate::db::{self, Db};
use crate::messaging::held_inbound;
use crate::{events::outbox, runtime};
use domain::bot::target::BotChannel;
use domain::channel::{Channel, MessageStatus};
use domain::error::ApiError;
use domain::inbound::{CommentChange, InboundBatch, InboundComment, InboundMessage, StatusUpdate};
use domain::time::Timestamp;
use media::{Stored, store_media};
use message::{ForBot, store_message};

pub use domain::inbound::IngestReport;

/// Messages of one delivery share its arrival time, as on Cloudflare, where the clock stands
/// still while a request waits on I/O; their `created_us` keeps them apart and in order.
/// `base_url`: the deployment's public origin, for download links in the events.
pub async fn ingest(
    env: &Env,
    account: &ChannelAccount,
    batch: InboundBatch,
    base_url: &str,
) -> Result<IngestReport, ApiError> {
    let db = env.db()?;
    let arrived = runtime::now();
    let mut report = IngestReport::default();
    // The bots' turns the batches recorded, handed to the bot's queue at the end.
    let mut turns = Vec::new();
    let mut items = batch
        .messages
        .into_iter()
        .map(Item::Message)
        .chain(batch.comments.into_iter().map(Item::Comment));
    while let Some(item) = items.next() {
        let (message, thread) = match &item {
            Item::Message(message) => (message, ""),
            Item::Comment(comment) => (&comment.message, comment.thread.as_str()),
        };
        let for_bot = (account.channel == Channel::Facebook && !message.content.trim().is_empty()).then(
            || match &item {
                Item::Message(_) => ForBot {
                    channel: BotChannel::Messenger,
                    comment: None,
                },
                Item::Comment(comment) => ForBot {
                    channel: BotChannel::Facebook,
                    comment: Some(Commented {
                        post_id: comment.thread.clone(),
                        comment_id: comment.message.provider_message_id.clone(),
                    }),
                },
            },
        );
        let stored = match &item {
            Item::Comment(comment) if comment.change != CommentChange::Added => {
                match changed_comment(&db, account, comment, arrived).await {
                    Ok(changed) => {
                        report.comments_changed += usize::from(changed);
                        continue;
                    }
                    Err(error) => Err(error),
                }
            }
            _ => store_message(&db, account, message, thread, for_bot, arrived, base_url).await,
        };
        let stored = match stored {
            Ok(stored) => stored,
            // The business is being moved: this item, those after it and the statuses are kept
            // for after the move, and the provider is answered as if they were stored.
            Err(error) if held_inbound::being_moved(&error) => {
                let mut rest = InboundBatch {
                    statuses: batch.statuses,
                    ..InboundBatch::default()
                };
                for item in std::iter::once(item).chain(items) {
                    match item {
                        Item::Message(message) => rest.messages.push(message),
                        Item::Comment(comment) => rest.comments.push(comment),
                    }
                }
                held_inbound::keep(env, account, &rest, base_url).await?;
                hand_to_bot(env, &turns).await;
                return Ok(report);
            }
            Err(error) => return Err(error),
        };
        let Some(stored) = stored else {
            report.duplicates += 1;
            continue;
        };
        report.stored += 1;
        turns.extend(stored.turn);
        let media = match item {
            Item::Message(message) => message.media,
            Item::Comment(_) => Vec::new(),
        };
        let mut queued = 0;
        for media in media {
            match store_media(env, &db, account, &stored.id, media).await {
                Ok(Stored::Now) => report.media_stored += 1,
                Ok(Stored::Queued) => queued += 1,
                Err(error) => {
                    report.media_failed += 1;
                    console_error!(
                        "media of message {} not stored: {}",
                        stored.id,
                        error.detail().unwrap_or(&error.body.message)
                    );
                }
            }
        }
        report.media_queued += queued;
        // While files are fetched, `message.received` waits for them (the fetcher releases it).
        let events = stored
            .event_ids
            .into_iter()
            .filter(|id| queued == 0 || Some(id) != stored.received_event.as_ref())
            .collect();
        outbox::publish(env, &account.tenant, events).await;
    }
    hand_to_bot(env, &turns).await;
    report.statuses_applied = match apply_statuses(&db, account, &batch.statuses).await {
        Ok(applied) => applied,
        Err(error) if held_inbound::being_moved(&error) => {
            let rest = InboundBatch {
                statuses: batch.statuses,
                ..InboundBatch::default()
            };
            held_inbound::keep(env, account, &rest, base_url).await?;
            0
        }
        Err(error) => return Err(error),
    };
    Ok(report)
}

/// Hands the recorded turns to the bot's queue. A failure is logged: each turn is a row, and the
/// sweep hands it over again (`maintenance`).
async fn hand_to_bot(env: &Env, turns: &[Turn]) {
    if turns.is_empty() {
        return;
    }
    if let Err(error) = crate::platform::queue::send_all(env, turns, 0).await {
        console_error!(
            "{} messages were not handed to the bot now (the sweep hands them over): {error}",
            turns.len()
        );
    }
}

/// One thing a batch stores: a message, or a change to a comment (in its post's thread).
enum Item {
    Message(InboundMessage),
    Comment(InboundComment),
}

/// An edited comment takes its new text; a removed one keeps nothing of what it said. Whether a
/// stored comment changed (a change to a comment never stored, or repeated, changes nothing).
async fn changed_comment(
    db: &Db,
    account: &ChannelAccount,
    comment: &InboundComment,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let content = match comment.change {
        CommentChange::Removed => "",
        _ => comment.message.content.as_str(),
    };
    db::messages::edit_inbound(
        db,
        &account.tenant,
        account.channel,
        &comment.message.provider_message_id,
        content,
        now,
    )
    .await
}

/// Moves sent messages forward (never back: a late `delivered` does not undo `read`). A status
/// for a provider id no message holds yet is kept, because the callback may have overtaken the
/// answer to the send; recording the id applies it (`message_status::mark_sent`).
async fn apply_statuses(
    db: &Db,
    account: &ChannelAccount,
    statuses: &[StatusUpdate],
) -> Result<usize, ApiError> {
    let now = runtime::now();
    let now_text = now.to_rfc3339();
    let mut statements = Vec::new();
    for update in statuses
        .iter()
        .filter(|update| update.status != MessageStatus::Received && update.status != MessageStatus::Queued)
    {
        statements.push(db::messages::apply_provider_status(
            db,
            &account.tenant,
            account.channel,
            &update.provider_message_id,
            update.status,
            update.reason.as_deref(),
            &now_text,
        )?);
        statements.push(db::early_statuses::keep_unmatched(
            db,
            &account.tenant,
            account.channel,
            update,
            now,
        )?);
    }
    if statements.is_empty() {
        return Ok(0);
    }
    let results = db.batch(statements).await?;
    Ok(results.iter().step_by(2).map(db::changes).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ADA_PHONE, Fixture};
    use domain::message::Message;
    use domain::tenant::Tenant;

    pub(super) fn text(provider_message_id: &str, from: &str, content: &str) -> InboundMessage {
        InboundMessage {
            provider_message_id: provider_message_id.to_owned(),
            from: from.to_owned(),
            sender_name: Some("Ada Lovelace".to_owned()),
            content: content.to_owned(),
            media: Vec::new(),
        }
    }

    pub(super) fn of(messages: Vec<InboundMessage>) -> InboundBatch {
        InboundBatch {
            messages,
            statuses: Vec::new(),
            comments: Vec::new(),
        }
    }

    /// The types of the events recorded, in order.
    pub(super) fn events(fixture: &Fixture) -> Vec<String> {
        fixture
            .rows("webhook_events", "created_us, type")
            .iter()
            .map(|row| row["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// A message to Ada (known to the business by phone) sent on WhatsApp, which the provider
    /// accepted as `provider_message_id`.
    async fn sent_as(fixture: &Fixture, tenant: &Tenant, provider_message_id: &str) -> Message {
        let ada = fixture.ada(tenant).await;
        let sent = fixture.accept_whatsapp(tenant, &ada, "On its way").await;
        crate::messaging::message_status::mark_sent(
            &fixture.db,
            tenant,
            &sent.id,
            Some(provider_message_id),
            None,
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
        sent
    }

    pub(super) fn type_of(fixture: &Fixture, event_id: &str) -> String {
        fixture
            .rows("webhook_events", "id")
            .iter()
            .find(|row| row["id"] == event_id)
            .map(|row| row["type"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn statuses_move_a_sent_message_forward_never_back() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            fixture
                .ingest_one(&account, text("wamid.in", ADA_PHONE, "Hi"))
                .await;
            let sent = sent_as(&fixture, &tenant, "wamid.out").await;
            let status = |status: MessageStatus| domain::inbound::StatusUpdate {
                provider_message_id: "wamid.out".to_owned(),
                status,
                reason: None,
            };
            let stored_status = |fixture: &Fixture| {
                fixture
                    .rows("messages", "created_us")
                    .into_iter()
                    .find(|row| row["id"] == sent.id.as_str())
                    .map(|row| row["status"].as_str().unwrap_or_default().to_owned())
            };
            let read = InboundBatch {
                messages: Vec::new(),
                statuses: vec![status(MessageStatus::Delivered), status(MessageStatus::Read)],
                comments: Vec::new(),
            };
            assert_eq!(fixture.ingest(&account, read).await.statuses_applied, 2);
            assert_eq!(stored_status(&fixture).as_deref(), Some("read"));
            let late = InboundBatch {
                messages: Vec::new(),
                statuses: vec![status(MessageStatus::Delivered), status(MessageStatus::Received)],
                comments: Vec::new(),
            };
            assert_eq!(fixture.ingest(&account, late).await.statuses_applied, 0);
            assert_eq!(
                stored_status(&fixture).as_deref(),
                Some("read"),
                "a late delivered does not undo read"
            );
        });
    }

    #[test]
    fn a_status_that_overtakes_the_send_is_kept_and_applied_once_the_id_is_known() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let early = InboundBatch {
                messages: Vec::new(),
                statuses: vec![domain::inbound::StatusUpdate {
                    provider_message_id: "wamid.out".to_owned(),
                    status: MessageStatus::Delivered,
                    reason: None,
                }],
                comments: Vec::new(),
            };
            assert_eq!(fixture.ingest(&account, early).await.statuses_applied, 0);
            assert_eq!(fixture.rows("early_statuses", "status").len(), 1);
            sent_as(&fixture, &tenant, "wamid.out").await;
            let messages = fixture.rows("messages", "created_us");
            assert_eq!(messages[0]["status"], "delivered");
            assert!(
                fixture.rows("early_statuses", "status").is_empty(),
                "forgotten once applied"
            );
        });
    }
}
