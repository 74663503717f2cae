//! Files received with a message, fetched from the provider after the message is stored: the
//! receiver records each as a `pending` attachment and puts a [`MediaFetch`] on the inbound
//! media queue; the media-fetcher consumes it with retries, stores the bytes in R2 and settles
//! the row `stored`, or `failed` with the reason once every try failed or the provider refused
//! for good. The message's `message.received` event is held back until its last file settles,
//! so that the event lists the files as they ended.

use crate::Env;
use crate::db::Db;
use crate::db::attachments::Pending;
use crate::db::channel_accounts::ChannelAccount;
use crate::media_store::{self, ATTACHMENTS};
use crate::{db, outbox};
use domain::error::ApiError;
use domain::ids::{AttachmentId, BusinessId, MessageId};
use domain::inbound::InboundMedia;
use domain::providers::meta::api as meta;
use domain::tenant::Tenant;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// The queue binding (producer in the receivers, consumer in media-fetcher).
pub const INBOUND_MEDIA: &str = "INBOUND_MEDIA";
/// Inbound media larger than this is not fetched (WhatsApp allows 100 MB video; a Worker has 128 MB).
pub const MAX_INBOUND_MEDIA_BYTES: usize = 25 * 1024 * 1024;
/// Tries per file; the waits between them are [`RETRY_DELAYS_SECONDS`].
pub const MAX_ATTEMPTS: u32 = 5;
/// About six minutes in all: a provider's media host that is down for a few minutes loses nothing.
pub const RETRY_DELAYS_SECONDS: [u32; 4] = [2, 10, 60, 300];

/// What the receiver hands the media-fetcher: which file of which business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFetch {
    pub business_id: BusinessId,
    pub attachment_id: AttachmentId,
}

/// Why a fetch did not bring the file.
#[derive(Debug)]
pub enum FetchFailure {
    /// Worth another try (5xx, 408, 429, a timeout, a refused connection, our own storage).
    Transient(String),
    /// Will not get better (the provider says the file is gone or not ours, or it is too large).
    Permanent(String),
}

impl FetchFailure {
    pub fn reason(&self) -> &str {
        match self {
            Self::Transient(reason) | Self::Permanent(reason) => reason,
        }
    }
}

/// Fetches the pending file `pending` with `account`'s credentials and stores its bytes under
/// the row's storage key; returns the content type and size to settle the row with.
pub async fn fetch_and_store(
    env: &Env,
    account: &ChannelAccount,
    pending: &Pending,
) -> Result<(String, i64), FetchFailure> {
    let source: InboundMedia = serde_json::from_str(&pending.source)
        .map_err(|error| FetchFailure::Permanent(format!("the recorded source is unreadable: {error}")))?;
    let (bytes, served_type) = fetch(account, &source).await?;
    let mime_type = [
        Some(pending.mime_type.clone()).filter(|t| !t.is_empty()),
        served_type,
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_else(|| "application/octet-stream".to_owned());
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let bucket = env
        .bucket(ATTACHMENTS)
        .map_err(|error| FetchFailure::Transient(format!("no storage: {error}")))?;
    media_store::put(&bucket, &pending.storage_key, &mime_type, bytes)
        .await
        .map_err(|error| FetchFailure::Transient(format!("storing failed: {}", error.body.message)))?;
    Ok((mime_type, size))
}

/// The bytes of a remote file and the content type its host declared.
async fn fetch(
    account: &ChannelAccount,
    source: &InboundMedia,
) -> Result<(Vec<u8>, Option<String>), FetchFailure> {
    match source {
        InboundMedia::Inline { .. } => Err(FetchFailure::Permanent(
            "an inline file has nothing to fetch".to_owned(),
        )),
        InboundMedia::Url { url, .. } => {
            let auth = account
                .sender()
                .ok()
                .and_then(|sender| sender.linked_media_authorization());
            get(url, auth.as_deref()).await
        }
        InboundMedia::WhatsappMediaId { id, .. } => {
            let (info_url, bearer) = account
                .sender()
                .and_then(|sender| meta::media_info_request(&sender, id))
                .map_err(FetchFailure::Permanent)?;
            let (info, _) = get(&info_url, Some(&bearer)).await?;
            let info = meta::media_info(&info).map_err(FetchFailure::Permanent)?;
            let (bytes, served_type) = get(&info.url, Some(&bearer)).await?;
            Ok((bytes, info.mime_type.or(served_type)))
        }
    }
}

/// GETs a URL, refusing a body over the inbound media limit.
async fn get(url: &str, authorization: Option<&str>) -> Result<(Vec<u8>, Option<String>), FetchFailure> {
    let transient = |error: worker::Error| FetchFailure::Transient(format!("{url}: {error}"));
    let headers = Headers::new();
    if let Some(value) = authorization {
        headers.set("authorization", value).map_err(transient)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(transient)?;
    let mut response = Fetch::Request(request).send().await.map_err(transient)?;
    let status = response.status_code();
    if !(200..300).contains(&status) {
        let reason = format!("{url} answered {status}");
        return Err(if status == 408 || status == 429 || status >= 500 {
            FetchFailure::Transient(reason)
        } else {
            FetchFailure::Permanent(reason)
        });
    }
    let content_type = response.headers().get("content-type").ok().flatten();
    let mut stream = response.stream().map_err(transient)?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(transient)?);
        if bytes.len() > MAX_INBOUND_MEDIA_BYTES {
            return Err(FetchFailure::Permanent(format!(
                "{url} is larger than {MAX_INBOUND_MEDIA_BYTES} bytes"
            )));
        }
    }
    Ok((bytes, content_type))
}

/// Publishes the message's held-back events once none of its files is pending any more.
pub async fn release_events_when_settled(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    message_id: &MessageId,
) -> Result<(), ApiError> {
    if db::attachments::pending_of_message(db, tenant, message_id).await? > 0 {
        return Ok(());
    }
    let held = db::webhook_events::undispatched_of_subject(db, tenant, message_id).await?;
    outbox::publish(env, tenant, held).await;
    Ok(())
}
