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

use crate::Env;
use crate::console_error;
use crate::db::attachments::NewPending;
use crate::db::bot_turns::{self, Commented, Turn};
use crate::db::channel_accounts::ChannelAccount;
use crate::db::customers::NewSender;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{Batch, Db, Read};
use crate::messaging::held_inbound;
use crate::messaging::inbound_media::{INBOUND_MEDIA, MediaFetch};
use crate::messaging::media_store::{self, ATTACHMENTS};
use crate::{db, events::outbox, runtime};
use domain::bot::target::BotChannel;
use domain::channel::{AddressKind, Channel, MessageStatus};
use domain::error::ApiError;
use domain::ids::{AttachmentId, ConversationId, CustomerId, EventId, MessageId};
use domain::inbound::{
    CommentChange, InboundBatch, InboundComment, InboundMedia, InboundMessage, StatusUpdate,
};
use domain::media::clean_filename;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use domain::inbound::IngestReport;

#[derive(Deserialize)]
struct StoredMessage {
    id: MessageId,
    /// The events recorded with the message.
    #[serde(skip)]
    event_ids: Vec<EventId>,
    /// Its `message.received`, held back while files are fetched.
    #[serde(skip)]
    received_event: Option<EventId>,
    /// The bot's turn recorded with it, when the page's bot on its channel is enabled.
    #[serde(skip)]
    turn: Option<Turn>,
}

/// A page's customer message or comment, for the page's bot on its channel.
struct ForBot {
    channel: BotChannel,
    comment: Option<Commented>,
}

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

/// A customer created from a channel address gets an id derived from it, so that concurrent
/// first messages from one sender agree on who they are.
fn customer_id_for(account: &ChannelAccount, address: &str) -> CustomerId {
    let digest = Sha256::digest(format!(
        "customer|{}|{}|{address}",
        account.tenant.business_id, account.channel
    ));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    CustomerId::generate(bytes)
}

fn default_name(channel: Channel, message: &InboundMessage) -> String {
    message
        .sender_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| match channel.address_kind() {
            AddressKind::Phone | AddressKind::Email => message.from.clone(),
            AddressKind::PageScopedId => format!("{} user {}", channel, message.from),
        })
}

async fn store_message(
    db: &Db,
    account: &ChannelAccount,
    message: &InboundMessage,
    thread: &str,
    for_bot: Option<ForBot>,
    now: Timestamp,
    base_url: &str,
) -> Result<Option<StoredMessage>, ApiError> {
    let tenant = &account.tenant;
    let channel = account.channel;
    let address = message.from.as_str();
    let (email, phone, whatsapp) = match channel.address_kind() {
        AddressKind::Email => (Some(address), None, None),
        AddressKind::Phone if channel == Channel::Whatsapp => (None, Some(address), Some(address)),
        AddressKind::Phone => (None, Some(address), None),
        AddressKind::PageScopedId => (None, None, None),
    };
    let new_customer = customer_id_for(account, address);
    let now_text = now.to_rfc3339();
    let conversation_id = ConversationId::generate(runtime::random()?);
    let message_id = MessageId::generate(runtime::random()?);

    let name = default_name(channel, message);
    let sender = NewSender {
        id: &new_customer,
        name: &name,
        email,
        phone,
        whatsapp_number: whatsapp,
    };
    let create_customer =
        db::customers::create_sender(db, tenant, &sender, channel.as_str(), address, &now_text)?;
    // A sender's customer is new exactly when it exists now but their address is not linked
    // yet: both happen in this batch, together.
    let customer_created = webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &[NewEvent::new(
            EventId::generate(runtime::random()?),
            EventType::CustomerCreated,
            &new_customer,
        )],
        Guard::When(
            db::customer_identities::not_linked(channel.as_str(), address)
                .and(db::customers::exists(&new_customer)),
        ),
    )?;
    let link_identity =
        db::customer_identities::link(db, tenant, channel.as_str(), address, email, phone, &new_customer)?;
    // A resolved conversation that has been quiet long enough is followed by a new one.
    let supersede_quiet = db::conversations::supersede_if_quiet(
        db,
        tenant,
        channel,
        thread,
        address,
        &conversation_id,
        &now_text,
        &message.provider_message_id,
    )?;
    let touch_conversation = db::conversations::touch_for_inbound(
        db,
        tenant,
        channel,
        thread,
        address,
        &conversation_id,
        &account.id,
        &now_text,
        &message.provider_message_id,
        &message_id,
    )?;
    let insert_message = db::messages::insert_inbound(
        db,
        tenant,
        channel,
        thread,
        address,
        &message_id,
        &message.content,
        &message.provider_message_id,
        now,
    )?;
    // Both are about records given fresh ids above, which exist only if created here.
    let received_event = EventId::generate(runtime::random()?);
    let message_events = webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &[
            NewEvent::new(
                EventId::generate(runtime::random()?),
                EventType::ConversationCreated,
                &conversation_id,
            ),
            NewEvent::new(received_event.clone(), EventType::MessageReceived, &message_id),
        ],
        Guard::SubjectStored,
    )?;
    // A resolved or closed conversation the message reopened says so.
    let reopened_event = webhook_events::record_found(
        db,
        tenant,
        Some(base_url),
        now,
        &EventId::generate(runtime::random()?),
        EventType::ConversationStatusChanged,
        db::conversations::reopened_by(channel, address, &message_id),
    )?;
    let mut batch = Batch::default();
    batch.push([create_customer]);
    let customer_created = batch.read(customer_created);
    batch.push([link_identity, supersede_quiet, touch_conversation]);
    let stored = batch.read(Read::<Option<StoredMessage>>::first(insert_message));
    let message_events = batch.read(message_events);
    let reopened_event = batch.read(reopened_event);
    // The bot's turn, when the page's bot on the channel is enabled (the statement reads it).
    let turn = for_bot
        .map(|for_bot| {
            let turn = Turn {
                business_id: tenant.business_id.clone(),
                page_id: account.address.clone(),
                channel: for_bot.channel.as_str().to_owned(),
                message_id: message_id.clone(),
                comment: for_bot.comment,
            };
            bot_turns::pending(
                db,
                tenant,
                &turn.page_id,
                for_bot.channel,
                &message_id,
                turn.comment.as_ref(),
                now.millis(),
            )
            .map(|statement| (turn, batch.write(statement)))
        })
        .transpose()?;
    let answers = batch.run(db).await?;
    let Some(stored) = answers.take(stored)? else {
        return Ok(None);
    };
    let mut event_ids = answers.take(customer_created)?;
    event_ids.extend(answers.take(message_events)?);
    event_ids.extend(answers.take(reopened_event)?);
    let received_event = event_ids.contains(&received_event).then_some(received_event);
    Ok(Some(StoredMessage {
        event_ids,
        received_event,
        turn: turn.and_then(|(turn, pending)| (answers.changes(pending) == 1).then_some(turn)),
        ..stored
    }))
}

/// Where a file of an inbound message went.
enum Stored {
    /// Its bytes came with the webhook and are stored.
    Now,
    /// It is a pending attachment on the inbound media queue.
    Queued,
}

/// Stores a file the webhook carried; records any other as pending and queues its fetch. A file
/// the queue refuses stays pending: the sweep hands it to the media-fetcher (`maintenance`), as
/// it does a file whose fetch was lost. A webhook's answer never waits on a provider's download.
async fn store_media(
    env: &Env,
    db: &Db,
    account: &ChannelAccount,
    message_id: &MessageId,
    media: InboundMedia,
) -> Result<Stored, ApiError> {
    let media = match media {
        InboundMedia::Inline {
            filename,
            mime_type,
            bytes,
        } => {
            let mime_type = if mime_type.is_empty() {
                "application/octet-stream"
            } else {
                &mime_type
            };
            let bucket = env.bucket_write(ATTACHMENTS)?;
            media_store::store(
                &bucket,
                db,
                &account.tenant,
                Some(message_id),
                &filename,
                mime_type,
                bytes,
            )
            .await?;
            return Ok(Stored::Now);
        }
        remote => remote,
    };
    let (filename, mime_type) = media.declared();
    let tenant = &account.tenant;
    let id = AttachmentId::generate(runtime::random()?);
    let source =
        serde_json::to_string(&media).map_err(|error| ApiError::internal("recording media source", error))?;
    db::attachments::insert_pending(
        db,
        tenant,
        &NewPending {
            id: &id,
            message_id,
            account_id: &account.id,
            filename: &clean_filename(filename.unwrap_or("attachment")),
            mime_type: mime_type.unwrap_or_default(),
            storage_key: &media_store::storage_key(tenant, &id),
            source: &source,
            created_at: &runtime::now().to_rfc3339(),
        },
    )?
    .run()
    .await?;
    let job = MediaFetch {
        business_id: tenant.business_id.clone(),
        attachment_id: id.clone(),
    };
    let queued = match env.queue(INBOUND_MEDIA, 1) {
        Ok(queue) => queue.send(job).await,
        Err(error) => Err(error),
    };
    if let Err(error) = queued {
        console_error!("media {id} could not be queued ({error}); the sweep hands it over later");
    }
    Ok(Stored::Queued)
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
    use crate::messaging::inbound_media::MediaFetch;
    use crate::testing::{ADA_PHONE, Fixture};
    use domain::message::Message;
    use domain::providers::Provider;
    use domain::tenant::Tenant;
    use serde_json::{Value, json};

    fn text(provider_message_id: &str, from: &str, content: &str) -> InboundMessage {
        InboundMessage {
            provider_message_id: provider_message_id.to_owned(),
            from: from.to_owned(),
            sender_name: Some("Ada Lovelace".to_owned()),
            content: content.to_owned(),
            media: Vec::new(),
        }
    }

    fn of(messages: Vec<InboundMessage>) -> InboundBatch {
        InboundBatch {
            messages,
            statuses: Vec::new(),
            comments: Vec::new(),
        }
    }

    /// The types of the events recorded, in order.
    fn events(fixture: &Fixture) -> Vec<String> {
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

    fn type_of(fixture: &Fixture, event_id: &str) -> String {
        fixture
            .rows("webhook_events", "id")
            .iter()
            .find(|row| row["id"] == event_id)
            .map(|row| row["type"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_message_is_stored_once_however_often_the_provider_delivers_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, account) = fixture.whatsapp_business().await;
            let first = fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Where is my order?"))
                .await;
            assert_eq!((first.stored, first.duplicates), (1, 0));
            for _ in 0..2 {
                let again = fixture
                    .ingest_one(&account, text("wamid.1", ADA_PHONE, "Where is my order?"))
                    .await;
                assert_eq!((again.stored, again.duplicates), (0, 1));
            }
            let messages = fixture.rows("messages", "created_us");
            assert_eq!(messages.len(), 1);
            assert_eq!(
                (
                    messages[0]["direction"].as_str(),
                    messages[0]["status"].as_str(),
                    messages[0]["content"].as_str(),
                    messages[0]["provider_message_id"].as_str()
                ),
                (
                    Some("inbound"),
                    Some("received"),
                    Some("Where is my order?"),
                    Some("wamid.1")
                )
            );
            assert_eq!(
                events(&fixture),
                vec!["conversation.created", "customer.created", "message.received"],
                "nothing recorded twice (one delivery's events share its time, in order of type)"
            );
            assert_eq!(fixture.dispatched().len(), 3);
        });
    }

    #[test]
    fn a_new_sender_becomes_one_customer_with_one_conversation_on_the_channel() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let report = fixture
                .ingest(
                    &account,
                    of(vec![
                        text("wamid.1", ADA_PHONE, "Hello"),
                        text("wamid.2", ADA_PHONE, "Anyone there?"),
                    ]),
                )
                .await;
            assert_eq!(report.stored, 2);
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers.len(), 1, "{customers:?}");
            assert_eq!(
                (
                    customers[0]["name"].as_str(),
                    customers[0]["phone"].as_str(),
                    customers[0]["whatsapp_number"].as_str()
                ),
                (Some("Ada Lovelace"), Some(ADA_PHONE), Some(ADA_PHONE))
            );
            let identities = fixture.rows("customer_identities", "address");
            assert_eq!(identities.len(), 1);
            assert_eq!(
                (
                    identities[0]["channel"].as_str(),
                    identities[0]["address"].as_str()
                ),
                (Some("whatsapp"), Some(ADA_PHONE))
            );
            assert_eq!(identities[0]["customer_id"], customers[0]["id"]);
            let conversations = fixture.rows("conversations", "id");
            assert_eq!(conversations.len(), 1);
            assert_eq!(conversations[0]["channel_account_id"], account.id.as_str());
            let messages = fixture.rows("messages", "created_us");
            assert!(
                messages
                    .iter()
                    .all(|row| row["conversation_id"] == conversations[0]["id"]),
                "{messages:?}"
            );
            assert!(
                messages[0]["created_us"].as_i64() < messages[1]["created_us"].as_i64(),
                "the delivery's messages keep their order"
            );
            let created = events(&fixture)
                .iter()
                .filter(|kind| *kind == "customer.created")
                .count();
            assert_eq!(created, 1);
            let _ = tenant;
        });
    }

    #[test]
    fn a_sender_the_business_already_knows_by_phone_is_that_customer() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let known = fixture
                .customers(&tenant, json!([{ "name": "Ada (CRM)", "phone": ADA_PHONE }]))
                .await;
            fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Hi"))
                .await;
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers.len(), 1, "{customers:?}");
            assert_eq!(customers[0]["name"], "Ada (CRM)");
            assert_eq!(
                fixture.rows("messages", "id")[0]["customer_id"],
                known[0].id.as_str()
            );
            assert_eq!(
                events(&fixture)
                    .iter()
                    .filter(|kind| *kind == "customer.created")
                    .count(),
                1,
                "the sync's, not the message's"
            );
        });
    }

    #[test]
    fn the_customer_of_a_page_scoped_sender_is_named_after_the_channel() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let page = fixture
                .channel_account(
                    &tenant,
                    Channel::Facebook,
                    Provider::Meta,
                    "1029384756",
                    json!({ "app_secret": "s", "verify_token": "v", "access_token": "t" }),
                )
                .await;
            let mut message = text("m_1", "6655443322", "hi");
            message.sender_name = None;
            fixture.ingest_one(&page, message).await;
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers[0]["name"], "facebook user 6655443322");
            assert!(customers[0]["phone"].is_null() && customers[0]["email"].is_null());
        });
    }

    #[test]
    fn a_message_to_a_resolved_conversation_reopens_it_and_says_so() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, account) = fixture.whatsapp_business().await;
            fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Hi"))
                .await;
            fixture.execute("UPDATE conversations SET status = 'resolved'", &[]);
            fixture
                .ingest_one(&account, text("wamid.2", ADA_PHONE, "Me again"))
                .await;
            let conversations = fixture.rows("conversations", "id");
            assert_eq!(conversations[0]["status"], "open");
            let changed: Vec<_> = fixture
                .rows("webhook_events", "created_us")
                .into_iter()
                .filter(|row| row["type"] == "conversation.status_changed")
                .collect();
            assert_eq!(changed.len(), 1);
        });
    }

    /// Ada writes, her conversation is resolved, `quiet` passes, and she writes again (the
    /// business's window set to `window` hours unless None); the conversations and the
    /// `conversation.*` events that follow, in order.
    fn after_a_resolved_conversation(
        status: &str,
        window: Option<&str>,
        quiet: std::time::Duration,
    ) -> (Vec<serde_json::Map<String, Value>>, Vec<String>, Vec<Value>) {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, account) = fixture.whatsapp_business().await;
            if let Some(hours) = window {
                fixture.execute(
                    "UPDATE businesses SET new_conversation_after_hours = ?1",
                    &[hours],
                );
            }
            fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Hi"))
                .await;
            fixture.execute(
                "UPDATE conversations SET status = ?1, resolved_at = last_message_at",
                &[status],
            );
            fixture.stack.advance(quiet);
            fixture
                .ingest_one(&account, text("wamid.2", ADA_PHONE, "Me again"))
                .await;
            // A redelivery of the same message changes nothing.
            fixture
                .ingest_one(&account, text("wamid.2", ADA_PHONE, "Me again"))
                .await;
            let events = fixture
                .rows("webhook_events", "created_us")
                .into_iter()
                .filter_map(|row| row["type"].as_str().map(str::to_owned))
                .filter(|kind| kind.starts_with("conversation."))
                .collect();
            let messages = fixture
                .rows("messages", "created_us")
                .into_iter()
                .map(|row| row["conversation_id"].clone())
                .collect();
            (fixture.rows("conversations", "created_at, id"), events, messages)
        })
    }

    #[test]
    fn a_customer_writing_after_the_quiet_window_gets_a_new_conversation_and_within_it_the_old_one_reopened()
    {
        #[derive(Debug, PartialEq)]
        enum Then {
            Reopened,
            Followed,
            Untouched,
        }
        let hour = std::time::Duration::from_secs(3600);
        for (status, window, quiet, then, why) in [
            (
                "resolved",
                None,
                hour * 95,
                Then::Reopened,
                "95 hours is within the default four days",
            ),
            (
                "resolved",
                None,
                hour * 97,
                Then::Followed,
                "97 hours is past the default four days",
            ),
            (
                "closed",
                None,
                hour * 97,
                Then::Followed,
                "a closed conversation is followed too",
            ),
            (
                "resolved",
                Some("0"),
                hour / 60,
                Then::Followed,
                "a window of 0: never reopened",
            ),
            (
                "resolved",
                Some("24"),
                hour * 23,
                Then::Reopened,
                "within the business's own day",
            ),
            (
                "resolved",
                Some("24"),
                hour * 25,
                Then::Followed,
                "past the business's own day",
            ),
            (
                "pending",
                Some("0"),
                hour * 500,
                Then::Untouched,
                "only an ended conversation is followed",
            ),
        ] {
            let (conversations, events, messages) = after_a_resolved_conversation(status, window, quiet);
            let first = &conversations[0];
            match then {
                Then::Reopened => {
                    assert_eq!(conversations.len(), 1, "{why}");
                    assert_eq!(
                        (first["status"].as_str(), first["reopen_count"].as_i64()),
                        (Some("open"), Some(1)),
                        "{why}"
                    );
                    assert_eq!(
                        events,
                        ["conversation.created", "conversation.status_changed"],
                        "{why}"
                    );
                }
                Then::Followed => {
                    assert_eq!(conversations.len(), 2, "{why}");
                    let next = &conversations[1];
                    assert_eq!(first["status"], status, "{why}: the old one keeps its status");
                    assert_eq!(
                        first["superseded_by"], next["id"],
                        "{why}: the old one points at the new"
                    );
                    assert_eq!(
                        (next["status"].as_str(), next["superseded_by"].is_null()),
                        (Some("open"), true),
                        "{why}"
                    );
                    assert_eq!(events, ["conversation.created", "conversation.created"], "{why}");
                    assert_eq!(
                        messages,
                        [first["id"].clone(), next["id"].clone()],
                        "{why}: the return is in the new one"
                    );
                }
                Then::Untouched => {
                    assert_eq!(conversations.len(), 1, "{why}");
                    assert_eq!(first["status"], status, "{why}");
                    assert_eq!(events, ["conversation.created"], "{why}");
                }
            }
        }
    }

    #[test]
    fn a_file_in_the_webhook_is_stored_with_its_message() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let mail = fixture
                .channel_account(
                    &tenant,
                    Channel::Email,
                    Provider::Mailgun,
                    "support@acme.example",
                    json!({ "api_key": "k", "webhook_signing_key": "w" }),
                )
                .await;
            let mut message = text("<m1@mail>", "ada@example.com", "Invoice attached");
            message.media = vec![InboundMedia::Inline {
                filename: "../invoice.pdf".to_owned(),
                mime_type: String::new(),
                bytes: b"%PDF-1.7".to_vec(),
            }];
            let report = fixture.ingest_one(&mail, message).await;
            assert_eq!((report.media_stored, report.media_queued), (1, 0));
            let files = fixture.rows("attachments", "id");
            assert_eq!(files.len(), 1);
            assert_eq!(files[0]["status"], "stored");
            assert_eq!(files[0]["mime_type"], "application/octet-stream");
            assert_eq!(files[0]["size"], 8);
            assert_eq!(files[0]["message_id"], fixture.rows("messages", "id")[0]["id"]);
            let key = files[0]["storage_key"].as_str().unwrap_or_default();
            assert_eq!(
                fixture.stack.r2_bytes("ATTACHMENTS", key),
                Some(b"%PDF-1.7".to_vec())
            );
            assert!(
                key.starts_with(&format!("businesses/{}/attachments/", tenant.business_id)),
                "{key}"
            );
        });
    }

    #[test]
    fn a_file_to_fetch_is_pending_and_queued_and_holds_back_message_received() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let mut message = text("wamid.1", ADA_PHONE, "");
            message.media = vec![InboundMedia::WhatsappMediaId {
                id: "media-1".to_owned(),
                mime_type: Some("image/jpeg".to_owned()),
                filename: None,
            }];
            let report = fixture.ingest_one(&account, message).await;
            assert_eq!((report.media_stored, report.media_queued), (0, 1));
            let files = fixture.rows("attachments", "id");
            assert_eq!(
                (files[0]["status"].as_str(), files[0]["filename"].as_str(), files[0]["mime_type"].as_str()),
                (Some("pending"), Some("attachment"), Some("image/jpeg"))
            );
            let source: Value = serde_json::from_str(files[0]["source"].as_str().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(source, json!({ "kind": "whatsapp_media_id", "id": "media-1", "mime_type": "image/jpeg", "filename": null }));
            let jobs: Vec<MediaFetch> = fixture.queued(INBOUND_MEDIA);
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].business_id, tenant.business_id);
            assert_eq!(jobs[0].attachment_id.as_str(), files[0]["id"].as_str().unwrap_or_default());
            let published: Vec<String> = fixture.dispatched().iter().map(|id| type_of(&fixture, id)).collect();
            assert!(events(&fixture).contains(&"message.received".to_owned()));
            assert!(
                !published.contains(&"message.received".to_owned()),
                "held back while its file is fetched: {published:?}"
            );
        });
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
