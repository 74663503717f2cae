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
use crate::runtime::{
    self, AbortController, AbortSignal, Bucket, ByteStream, Delay, Fetch, FixedLengthStream, Headers, Method,
    Response,
};
use crate::{bounded_fetch, db, http, outbox};
use domain::error::ApiError;
use domain::ids::{AttachmentId, BusinessId, MessageId};
use domain::inbound::InboundMedia;
use domain::platform::Resource;
use domain::providers::api::Sender;
use domain::providers::media::{self, Hop};
use domain::providers::meta::api as meta;
use domain::tenant::Tenant;
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use serde::{Deserialize, Serialize};
use std::pin::pin;
use std::time::Duration;

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

/// How long one file may take, from the first request to the last byte stored: 25 MiB at 2 Mbit/s.
const FETCH_TIMEOUT_MS: u64 = 120_000;
/// How long the WhatsApp media description may take, and how large it may be.
const INFO_TIMEOUT_MS: u64 = 15_000;
const INFO_MAX_BYTES: usize = 64 * 1024;

/// Fetches the pending file `pending` with `account`'s credentials and stores its bytes under
/// the row's storage key; returns the content type and size to settle the row with.
///
/// A file whose host declares its length streams from the host into R2 a chunk at a time, so a
/// 25 MiB video costs the isolate the same memory as a thumbnail; one without (chunked) is read
/// whole, when the invocation has the room for the largest file, and tried again later when not.
/// Redirects are followed one hop at a time, each checked ([`media`]). The whole fetch is
/// abandoned, and its transfers cancelled, after [`FETCH_TIMEOUT_MS`].
pub async fn fetch_and_store(
    env: &Env,
    account: &ChannelAccount,
    pending: &Pending,
) -> Result<(String, i64), FetchFailure> {
    let source: InboundMedia = serde_json::from_str(&pending.source)
        .map_err(|error| FetchFailure::Permanent(format!("the recorded source is unreadable: {error}")))?;
    let sender = account.sender().map_err(FetchFailure::Permanent)?;
    let controller = AbortController::default();
    let work = pin!(fetch_into_storage(
        env,
        &sender,
        &source,
        pending,
        controller.signal()
    ));
    let deadline = pin!(Delay::from(Duration::from_millis(FETCH_TIMEOUT_MS)));
    let outcome = match select(work, deadline).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err(FetchFailure::Transient(format!(
            "the file did not arrive within {} s",
            FETCH_TIMEOUT_MS / 1000
        ))),
    };
    // Nothing more of these transfers is wanted (after a complete one this does nothing).
    controller.abort();
    outcome
}

async fn fetch_into_storage(
    env: &Env,
    sender: &Sender,
    source: &InboundMedia,
    pending: &Pending,
    signal: AbortSignal,
) -> Result<(String, i64), FetchFailure> {
    let allow_loopback = http::allows_loopback(env);
    let (hop, described_type) = match source {
        InboundMedia::Inline { .. } => {
            return Err(FetchFailure::Permanent(
                "an inline file has nothing to fetch".to_owned(),
            ));
        }
        InboundMedia::Url { url, .. } => {
            let hop = media::first(sender, url, sender.linked_media_authorization(), allow_loopback);
            (hop.map_err(FetchFailure::Permanent)?, None)
        }
        InboundMedia::WhatsappMediaId { id, .. } => {
            let (info_url, bearer) = meta::media_info_request(sender, id).map_err(FetchFailure::Permanent)?;
            let headers = [("authorization", bearer.clone())];
            let exchange = bounded_fetch::send(
                env,
                Method::Get,
                &info_url,
                &headers,
                None,
                INFO_TIMEOUT_MS,
                INFO_MAX_BYTES,
            )
            .await;
            let reply = match exchange.result {
                Ok(reply) => reply,
                Err(bounded_fetch::Failure::TimedOut) => {
                    return Err(FetchFailure::Transient(format!(
                        "{info_url} did not answer in time"
                    )));
                }
                Err(bounded_fetch::Failure::Unreachable(why)) => {
                    return Err(FetchFailure::Transient(format!("{info_url}: {why}")));
                }
            };
            refuse_status(&info_url, reply.status)?;
            let info = meta::media_info(&reply.body).map_err(FetchFailure::Permanent)?;
            let hop = media::first(sender, &info.url, Some(bearer), allow_loopback);
            (hop.map_err(FetchFailure::Permanent)?, info.mime_type)
        }
    };
    let (mut response, url) = follow(env, sender, hop, &signal, allow_loopback).await?;
    refuse_status(&url, response.status_code())?;
    let served_type = response.headers().get("content-type").ok().flatten();
    let mime_type = [
        Some(pending.mime_type.clone()).filter(|t| !t.is_empty()),
        described_type,
        served_type,
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_else(|| "application/octet-stream".to_owned());
    let declared = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|length| length.trim().parse::<u64>().ok());
    let too_large =
        || FetchFailure::Permanent(format!("{url} is larger than {MAX_INBOUND_MEDIA_BYTES} bytes"));
    let transient = |error: worker::Error| FetchFailure::Transient(format!("{url}: {error}"));
    let stream = response.stream().map_err(transient)?;
    let size = match declared {
        Some(length) if length > MAX_INBOUND_MEDIA_BYTES as u64 => return Err(too_large()),
        Some(length) => {
            let bucket = storage(env)?;
            media_store::put(
                &bucket,
                &pending.storage_key,
                &mime_type,
                FixedLengthStream::wrap(stream, length),
            )
            .await
            .map_err(|error| FetchFailure::Transient(format!("storing failed: {}", error.body.message)))?;
            length
        }
        None => {
            if env.room() < MAX_INBOUND_MEDIA_BYTES {
                return Err(FetchFailure::Transient(
                    "other files of this batch hold the memory a file of unknown length needs".to_owned(),
                ));
            }
            let _held = env.hold(MAX_INBOUND_MEDIA_BYTES).map_err(transient)?;
            let bytes = read_whole(stream)
                .await
                .map_err(transient)?
                .ok_or_else(too_large)?;
            let length = bytes.len() as u64;
            let bucket = storage(env)?;
            media_store::put(&bucket, &pending.storage_key, &mime_type, bytes)
                .await
                .map_err(|error| {
                    FetchFailure::Transient(format!("storing failed: {}", error.body.message))
                })?;
            length
        }
    };
    Ok((mime_type, i64::try_from(size).unwrap_or(i64::MAX)))
}

/// GETs `hop`, following redirects one at a time, each target checked again and the credentials
/// dropped when it leaves the origin. The answer that is not a redirect, and where it came from.
async fn follow(
    env: &Env,
    sender: &Sender,
    mut hop: Hop,
    signal: &AbortSignal,
    allow_loopback: bool,
) -> Result<(Response, String), FetchFailure> {
    for _ in 0..=media::MAX_REDIRECTS {
        let url = hop.url.to_string();
        let transient = |error: worker::Error| FetchFailure::Transient(format!("{url}: {error}"));
        env.charge(Resource::Subrequest, 1).map_err(transient)?;
        let headers = Headers::new();
        // Stored as sent: a compressed transfer would have no length to stream against.
        headers.set("accept-encoding", "identity").map_err(transient)?;
        if let Some(value) = &hop.authorization {
            headers.set("authorization", value).map_err(transient)?;
        }
        let request = runtime::outgoing(Method::Get, &url, Some(&headers), None).map_err(transient)?;
        let response = Fetch::Request(request)
            .send_with_signal(signal)
            .await
            .map_err(transient)?;
        let location = response.headers().get("location").ok().flatten();
        match (response.status_code(), location) {
            (301 | 302 | 303 | 307 | 308, Some(location)) => {
                hop = media::redirect(sender, &hop, &location, allow_loopback)
                    .map_err(FetchFailure::Permanent)?;
            }
            _ => return Ok((response, url)),
        }
    }
    Err(FetchFailure::Permanent(format!(
        "more than {} redirects from {}",
        media::MAX_REDIRECTS,
        hop.url
    )))
}

/// A non-2xx status as a failure: 408, 429 and 5xx are worth another try, the rest are not.
fn refuse_status(url: &str, status: u16) -> Result<(), FetchFailure> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let reason = format!("{url} answered {status}");
    Err(if status == 408 || status == 429 || status >= 500 {
        FetchFailure::Transient(reason)
    } else {
        FetchFailure::Permanent(reason)
    })
}

/// Reads a body of unknown length whole; None once it passes the inbound media limit.
async fn read_whole(mut stream: ByteStream) -> worker::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() > MAX_INBOUND_MEDIA_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(bytes))
}

fn storage(env: &Env) -> Result<Bucket, FetchFailure> {
    env.bucket(ATTACHMENTS)
        .map_err(|error| FetchFailure::Transient(format!("no storage: {error}")))
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
