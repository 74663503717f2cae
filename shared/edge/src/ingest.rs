//! Storing what a channel receiver verified and parsed: the customer (found by the address the
//! channel knows them by, or created), their conversation on the channel, each message once
//! however often the provider retries it, its media in R2, and status updates of sent messages.
//!
//! Each message is one D1 batch (one transaction, one round trip) whose statements resolve the
//! customer and conversation themselves, so that two deliveries racing each other cannot create
//! two customers or two conversations.

use domain::channel::{AddressKind, Channel, MessageStatus, Provider};
use crate::attachments::{self, ATTACHMENTS};
use crate::channel_accounts::ChannelAccount;
use crate::events::{self, Guard, NewEvent};
use crate::{DB, d1, messages_repo, runtime};
use domain::error::ApiError;
use domain::inbound::{InboundBatch, InboundMedia, InboundMessage, StatusUpdate};
use domain::time::Timestamp;
use domain::webhooks::EventType;
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use worker::wasm_bindgen::JsValue;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, console_error};

/// The Graph API that WhatsApp media ids are resolved through, unless the account says otherwise.
pub const GRAPH_API_BASE: &str = "https://graph.facebook.com/v21.0";
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
    id: String,
    /// The events recorded with the message, published once its media are stored too.
    #[serde(skip)]
    event_ids: Vec<String>,
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
        events::publish(env, &account.tenant, stored.event_ids).await;
    }
    report.statuses_applied = apply_statuses(&db, account, &batch.statuses).await?;
    Ok(report)
}

/// A customer created from a channel address gets an id derived from it, so that concurrent
/// first messages from one sender agree on who they are.
fn customer_id_for(account: &ChannelAccount, address: &str) -> String {
    let digest = Sha256::digest(format!(
        "customer|{}|{}|{address}",
        account.tenant.business_id, account.channel
    ));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    domain::ids::uuid_v4(bytes)
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
    let business = d1::text(account.tenant.business_id.as_str());
    let channel = d1::text(account.channel.as_str());
    let address = d1::text(&message.from);
    let (email, phone, whatsapp) = match account.channel.address_kind() {
        AddressKind::Email => (Some(message.from.as_str()), None, None),
        AddressKind::Phone if account.channel == Channel::Whatsapp => {
            (None, Some(message.from.as_str()), Some(message.from.as_str()))
        }
        AddressKind::Phone => (None, Some(message.from.as_str()), None),
        AddressKind::PageScopedId => (None, None, None),
    };
    let new_customer = customer_id_for(account, &message.from);
    let now_text = d1::text(&now.to_rfc3339());
    let provider_id = d1::text(&message.provider_message_id);
    let conversation_id = domain::ids::uuid_v4(runtime::random()?);
    let message_id = domain::ids::uuid_v4(runtime::random()?);
    let (channel_value, address_value) = (channel.clone(), address.clone());

    let create_customer = db
        .prepare(
            "INSERT INTO customers (id, business_id, name, email, phone, whatsapp_number, tags, custom_fields, created_at, updated_at) \
             SELECT ?2, ?1, ?3, ?4, ?5, ?6, '[]', '{}', ?7, ?7 \
             WHERE NOT EXISTS (SELECT 1 FROM customer_identities WHERE business_id = ?1 AND channel = ?8 AND address = ?9) \
             AND NOT EXISTS (SELECT 1 FROM customers WHERE business_id = ?1 AND \
                 ((?5 IS NOT NULL AND (phone = ?5 OR whatsapp_number = ?5)) OR (?4 IS NOT NULL AND email = ?4))) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&[
            business.clone(),
            d1::text(&new_customer),
            d1::text(&default_name(account.channel, message)),
            d1::optional_text(email),
            d1::optional_text(phone),
            d1::optional_text(whatsapp),
            now_text.clone(),
            channel.clone(),
            address.clone(),
        ])?;
    let link_identity = db
        .prepare(
            "INSERT OR IGNORE INTO customer_identities (business_id, channel, address, customer_id) VALUES (?1, ?2, ?3, COALESCE(\
             (SELECT id FROM customers WHERE business_id = ?1 AND ?5 IS NOT NULL AND phone = ?5), \
             (SELECT id FROM customers WHERE business_id = ?1 AND ?5 IS NOT NULL AND whatsapp_number = ?5 ORDER BY created_at LIMIT 1), \
             (SELECT id FROM customers WHERE business_id = ?1 AND ?4 IS NOT NULL AND email = ?4), ?6))",
        )
        .bind(&[
            business.clone(),
            channel.clone(),
            address.clone(),
            d1::optional_text(email),
            d1::optional_text(phone),
            d1::text(&new_customer),
        ])?;
    let touch_conversation = db
        .prepare(
            "INSERT INTO conversations (id, business_id, customer_id, channel, channel_account_id, status, last_message_at, created_at, updated_at) \
             SELECT ?4, ?1, customer_id, ?2, ?5, 'open', ?6, ?6, ?6 FROM customer_identities \
             WHERE business_id = ?1 AND channel = ?2 AND address = ?3 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE business_id = ?1 AND channel = ?2 AND provider_message_id = ?7) \
             ON CONFLICT (business_id, customer_id, channel) DO UPDATE SET \
             last_message_at = excluded.last_message_at, updated_at = excluded.updated_at",
        )
        .bind(&[
            business.clone(),
            channel.clone(),
            address.clone(),
            d1::text(&conversation_id),
            d1::text(&account.id),
            now_text.clone(),
            provider_id.clone(),
        ])?;
    let insert_message = db
        .prepare(format!(
            "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             provider_message_id, created_us, updated_at) \
             SELECT ?4, ?1, c.id, c.customer_id, ?2, 'inbound', ?5, 'received', ?6, {}, ?8 \
             FROM customer_identities i JOIN conversations c \
               ON c.business_id = i.business_id AND c.customer_id = i.customer_id AND c.channel = i.channel \
             WHERE i.business_id = ?1 AND i.channel = ?2 AND i.address = ?3 \
             ON CONFLICT DO NOTHING RETURNING id",
            messages_repo::next_created_us(7, 1)
        ))
        .bind(&[
            business,
            channel,
            address,
            d1::text(&message_id),
            d1::text(&message.content),
            provider_id,
            JsValue::from_f64(now.micros() as f64),
            now_text,
        ])?;
    // A sender's customer is new exactly when it exists now but their address is not linked
    // yet: both happen in this batch, together.
    let customer_created = events::record(
        db,
        &account.tenant,
        Some(base_url),
        now,
        &[NewEvent::new(EventType::CustomerCreated, &new_customer)?],
        Guard::When(
            "NOT EXISTS (SELECT 1 FROM customer_identities WHERE business_id = ?1 AND channel = ?5 AND address = ?6) \
             AND EXISTS (SELECT 1 FROM customers WHERE business_id = ?1 AND id = ?7)",
            vec![
                channel_value.clone(),
                address_value.clone(),
                d1::text(&new_customer),
            ],
        ),
    )?;
    // Both are about records given fresh ids above, which exist only if created here.
    let message_events = events::record(
        db,
        &account.tenant,
        Some(base_url),
        now,
        &[
            NewEvent::new(EventType::ConversationCreated, &conversation_id)?,
            NewEvent::new(EventType::MessageReceived, &message_id)?,
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
    let stored = match results.get(4) {
        Some(result) => result.results::<StoredMessage>()?,
        None => {
            return Err(ApiError::internal(
                "storing inbound message",
                "D1 returned fewer results than statements",
            ));
        }
    };
    let mut event_ids = events::recorded(&results, 1)?;
    event_ids.extend(events::recorded(&results, 5)?);
    Ok(stored
        .into_iter()
        .next()
        .map(|message| StoredMessage { event_ids, ..message }))
}

async fn store_media(
    env: &Env,
    db: &worker::D1Database,
    account: &ChannelAccount,
    message_id: &str,
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
            let auth = match (
                account.provider,
                account.setting("account_sid"),
                account.secret("auth_token"),
            ) {
                // Twilio serves media to its account when "HTTP Basic Authentication for media" is on.
                (Provider::Twilio, Some(sid), Some(token)) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"))
                )),
                _ => None,
            };
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
            let token = account.secret("access_token").ok_or_else(|| {
                ApiError::internal("fetching WhatsApp media", "the account has no access_token")
            })?;
            let bearer = format!("Bearer {token}");
            let base = account
                .setting("api_base_url")
                .unwrap_or(GRAPH_API_BASE)
                .trim_end_matches('/');
            #[derive(Deserialize)]
            struct MediaInfo {
                url: String,
                mime_type: Option<String>,
            }
            let (info, _) = fetch_bytes(&format!("{base}/{id}"), Some(&bearer)).await?;
            let info: MediaInfo = serde_json::from_slice(&info).map_err(|e| {
                ApiError::internal("fetching WhatsApp media", format!("unexpected media info: {e}"))
            })?;
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
    let (_, record) = attachments::store(
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

/// Moves sent messages forward (never back: a late `delivered` does not undo `read`).
async fn apply_statuses(
    db: &worker::D1Database,
    account: &ChannelAccount,
    statuses: &[StatusUpdate],
) -> Result<usize, ApiError> {
    if statuses.is_empty() {
        return Ok(0);
    }
    let now = runtime::now().to_rfc3339();
    let statements = statuses
        .iter()
        .filter(|update| update.status != MessageStatus::Received && update.status != MessageStatus::Queued)
        .map(|update| {
            Ok(db
                .prepare(format!(
                    "UPDATE messages SET status = ?3, status_reason = ?4, updated_at = ?5 \
                     WHERE business_id = ?1 AND channel = ?6 AND provider_message_id = ?2 AND direction = 'outbound' \
                     AND {} < ?7",
                    messages_repo::stored_status_rank()
                ))
                .bind(&[
                    d1::text(account.tenant.business_id.as_str()),
                    d1::text(&update.provider_message_id),
                    d1::text(update.status.as_str()),
                    d1::optional_text(update.reason.as_deref()),
                    d1::text(&now),
                    d1::text(account.channel.as_str()),
                    JsValue::from_f64(f64::from(update.status.rank())),
                ])?)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    if statements.is_empty() {
        return Ok(0);
    }
    let results = db.batch(statements).await?;
    let mut applied = 0;
    for result in results {
        applied += result.meta()?.and_then(|meta| meta.changes).unwrap_or(0);
    }
    Ok(applied)
}
