//! Storing what a channel receiver verified and parsed: the customer (found by the address the
//! channel knows them by, or created), their conversation on the channel, each message once
//! however often the provider retries it, its media in R2, and status updates of sent messages.
//!
//! Each message is one D1 batch (one transaction, one round trip) whose statements resolve the
//! customer and conversation themselves, so that two deliveries racing each other cannot create
//! two customers or two conversations.

use crate::db::channel_accounts::ChannelAccount;
use crate::db::customers::NewSender;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::media_store::{self, ATTACHMENTS};
use crate::{DB, db, outbox, runtime};
use domain::channel::{AddressKind, Channel, MessageStatus};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, EventId, MessageId};
use domain::inbound::{InboundBatch, InboundMedia, InboundMessage, StatusUpdate};
use domain::providers::meta::api as meta;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, console_error};

/// Inbound media larger than this is not fetched (WhatsApp allows 100 MB video; a Worker has 128 MB).
const MAX_INBOUND_MEDIA_BYTES: usize = 25 * 1024 * 1024;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct IngestReport {
    pub stored: usize,
    pub duplicates: usize,
    pub statuses_applied: usize,
    pub media_stored: usize,
    /// Media the provider did not serve; the message is stored, and the failure logged.
    pub media_failed: usize,
}

#[derive(Deserialize)]
struct StoredMessage {
    id: MessageId,
    /// The events recorded with the message, published once its media are stored too.
    #[serde(skip)]
    event_ids: Vec<EventId>,
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
        for media in message.media {
            match store_media(env, &db, account, &stored.id, media).await {
                Ok(()) => report.media_stored += 1,
                Err(error) => {
                    report.media_failed += 1;
                    console_error!("media of message {} not stored: {error}", stored.id);
                }
            }
        }
        outbox::publish(env, &account.tenant, stored.event_ids).await;
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
    db: &worker::D1Database,
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
            NewEvent::new(
                EventId::generate(runtime::random()?),
                EventType::MessageReceived,
                &message_id,
            ),
        ],
        Guard::SubjectStored,
    )?;
    let results = db
        .batch(vec![
            create_customer,
            customer_created,
            link_identity,
            touch_conversation,
            insert_message,
            message_events,
        ])
        .await?;
    let Some(stored) = db::first_row::<StoredMessage>(&results, 4)? else {
        return Ok(None);
    };
    let mut event_ids = webhook_events::recorded(&results, 1)?;
    event_ids.extend(webhook_events::recorded(&results, 5)?);
    Ok(Some(StoredMessage { event_ids, ..stored }))
}

async fn store_media(
    env: &Env,
    db: &worker::D1Database,
    account: &ChannelAccount,
    message_id: &MessageId,
    media: InboundMedia,
) -> Result<(), ApiError> {
    let (filename, mime_type, bytes) = match media {
        InboundMedia::Inline {
            filename,
            mime_type,
            bytes,
        } => (filename, mime_type, bytes),
        InboundMedia::Url {
            url,
            mime_type,
            filename,
        } => {
            let auth = account
                .sender()
                .ok()
                .and_then(|sender| sender.linked_media_authorization());
            let (bytes, served_type) = fetch_bytes(&url, auth.as_deref()).await?;
            (
                filename.unwrap_or_else(|| "attachment".to_owned()),
                mime_type.or(served_type).unwrap_or_default(),
                bytes,
            )
        }
        InboundMedia::WhatsappMediaId {
            id,
            mime_type,
            filename,
        } => {
            let unavailable = |reason: String| ApiError::internal("fetching WhatsApp media", reason);
            let (info_url, bearer) = account
                .sender()
                .and_then(|sender| meta::media_info_request(&sender, &id))
                .map_err(unavailable)?;
            let (info, _) = fetch_bytes(&info_url, Some(&bearer)).await?;
            let info = meta::media_info(&info).map_err(unavailable)?;
            let (bytes, served_type) = fetch_bytes(&info.url, Some(&bearer)).await?;
            let mime_type = mime_type.or(info.mime_type).or(served_type).unwrap_or_default();
            (
                filename.unwrap_or_else(|| "attachment".to_owned()),
                mime_type,
                bytes,
            )
        }
    };
    let mime_type = if mime_type.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        mime_type
    };
    let (_, record) = media_store::store(
        &env.bucket(ATTACHMENTS)?,
        db,
        &account.tenant,
        Some(message_id),
        &filename,
        &mime_type,
        bytes,
    )
    .await?;
    record.run().await?;
    Ok(())
}

/// GETs a URL, refusing a body over the inbound media limit; returns the bytes and content type.
async fn fetch_bytes(url: &str, authorization: Option<&str>) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let headers = Headers::new();
    if let Some(value) = authorization {
        headers.set("authorization", value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(url, &init)?;
    let mut response = Fetch::Request(request).send().await?;
    let status = response.status_code();
    if !(200..300).contains(&status) {
        return Err(ApiError::internal(
            "fetching media",
            format!("{url} answered {status}"),
        ));
    }
    let content_type = response.headers().get("content-type")?;
    let mut stream = response.stream()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() > MAX_INBOUND_MEDIA_BYTES {
            return Err(ApiError::internal(
                "fetching media",
                format!("{url} is larger than {MAX_INBOUND_MEDIA_BYTES} bytes"),
            ));
        }
    }
    Ok((bytes, content_type))
}

/// Moves sent messages forward (never back: a late `delivered` does not undo `read`). A status
/// for a provider id no message holds yet is kept, because the callback may have overtaken the
/// answer to the send; recording the id applies it (`message_status::mark_sent`).
async fn apply_statuses(
    db: &worker::D1Database,
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
