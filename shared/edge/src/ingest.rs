//! Storing what a channel receiver verified and parsed: the customer (found by the address the
//! channel knows them by, or created), their conversation on the channel, each message once
//! however often the provider retries it, its media in R2, and status updates of sent messages.
//!
//! Each message is one D1 batch (one transaction, one round trip) whose statements resolve the
//! customer and conversation themselves, so that two deliveries racing each other cannot create
//! two customers or two conversations.

use crate::Env;
use crate::console_error;
use crate::db::Db;
use crate::db::attachments::NewPending;
use crate::db::channel_accounts::ChannelAccount;
use crate::db::customers::NewSender;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::inbound_media::{INBOUND_MEDIA, MediaFetch};
use crate::media_store::{self, ATTACHMENTS};
use crate::{DB, db, outbox, runtime};
use domain::channel::{AddressKind, Channel, MessageStatus};
use domain::error::ApiError;
use domain::ids::{AttachmentId, ConversationId, CustomerId, EventId, MessageId};
use domain::inbound::{InboundBatch, InboundMedia, InboundMessage, StatusUpdate};
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
    let db = env.d1(DB)?;
    let arrived = runtime::now();
    let mut report = IngestReport::default();
    for message in batch.messages {
        let Some(stored) = store_message(&db, account, &message, arrived, base_url).await? else {
            report.duplicates += 1;
            continue;
        };
        report.stored += 1;
        let mut queued = 0;
        for media in message.media {
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
    report.statuses_applied = apply_statuses(&db, account, &batch.statuses).await?;
    Ok(report)
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
    let touch_conversation = db::conversations::touch_for_inbound(
        db,
        tenant,
        channel,
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
    let results = db
        .batch(vec![
            create_customer,
            customer_created,
            link_identity,
            touch_conversation,
            insert_message,
            message_events,
            reopened_event,
        ])
        .await?;
    let Some(stored) = db::first_row::<StoredMessage>(&results, 4)? else {
        return Ok(None);
    };
    let mut event_ids = webhook_events::recorded(&results, 1)?;
    event_ids.extend(webhook_events::recorded(&results, 5)?);
    event_ids.extend(webhook_events::recorded(&results, 6)?);
    let received_event = event_ids.contains(&received_event).then_some(received_event);
    Ok(Some(StoredMessage {
        event_ids,
        received_event,
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
            let bucket = env.bucket(ATTACHMENTS)?;
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
    let queued = match env.queue(INBOUND_MEDIA) {
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
