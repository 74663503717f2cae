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
use crate::messaging::media_store::{self, ATTACHMENTS};
use crate::runtime::{
    self, AbortController, AbortSignal, Bucket, ByteStream, Delay, Fetch, FixedLengthStream, Headers, Method,
    Response,
};
use crate::{db, events::outbox, platform::bounded_fetch, platform::http};
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

impl crate::platform::queue::Work for MediaFetch {
    const QUEUE: &'static str = INBOUND_MEDIA;

    fn business(&self) -> Option<BusinessId> {
        Some(self.business_id.clone())
    }
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
    let sender = account
        .sender()
        .map_err(|lacking| FetchFailure::Permanent(lacking.to_string()))?;
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
            let (info_url, bearer) = meta::media_info_request(sender, id)
                .map_err(|why| FetchFailure::Permanent(why.to_string()))?;
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
            let info = meta::media_info(&reply.body).map_err(|why| FetchFailure::Permanent(why.into()))?;
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
    env.bucket_write(ATTACHMENTS)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::Reply;
    use crate::testing::{ADA_PHONE, Fixture};
    use domain::channel::Channel;
    use domain::inbound::InboundMessage;
    use domain::providers::Provider;
    use serde_json::json;

    const GRAPH: &str = "graph.facebook.com";
    const TWILIO: &str = "api.twilio.com";
    const LOOKASIDE: &str = "lookaside.fbsbx.com";
    const LOOKASIDE_URL: &str = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1";
    const TWILIO_MEDIA: &str = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1";

    /// A file a message brought from `media`, recorded pending by the receiver: its account,
    /// its id and what the fetcher reads of it.
    async fn pending_file(
        fixture: &Fixture,
        account: &ChannelAccount,
        media: InboundMedia,
    ) -> (AttachmentId, Pending) {
        let message = InboundMessage {
            provider_message_id: "m1".to_owned(),
            from: ADA_PHONE.to_owned(),
            sender_name: None,
            content: String::new(),
            media: vec![media],
        };
        fixture.ingest_one(account, message).await;
        let rows = fixture.rows("attachments", "created_at");
        let id = AttachmentId::parse(rows[0]["id"].as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("an id"));
        let pending = db::attachments::pending(&fixture.db, &account.tenant, &id)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("pending"));
        (id, pending)
    }

    async fn whatsapp(fixture: &Fixture) -> (ChannelAccount, Pending) {
        let (_, account) = fixture.whatsapp_business().await;
        let media = InboundMedia::WhatsappMediaId {
            id: "media-1".to_owned(),
            mime_type: None,
            filename: Some("photo.jpg".to_owned()),
        };
        let (_, pending) = pending_file(fixture, &account, media).await;
        (account, pending)
    }

    async fn twilio(fixture: &Fixture) -> (ChannelAccount, Pending) {
        let tenant = fixture.business("Acme").await;
        let account = fixture
            .configured_account(
                &tenant,
                (Channel::Sms, Provider::Twilio),
                "+15005550006",
                json!({ "account_sid": "AC1" }),
                json!({ "auth_token": "twilio-token" }),
            )
            .await;
        let media = InboundMedia::Url {
            url: TWILIO_MEDIA.to_owned(),
            mime_type: Some("image/png".to_owned()),
            filename: None,
        };
        let (_, pending) = pending_file(fixture, &account, media).await;
        (account, pending)
    }

    /// Meta's Graph API describing media-1 as a JPEG at the lookaside URL.
    fn graph(fixture: &Fixture) {
        fixture.stack.partner(GRAPH, |call| {
            if call.path() != "/v21.0/media-1" || call.header("authorization") != Some("Bearer meta-token") {
                return Reply::json(401, &json!({ "error": { "message": "bad token" } }));
            }
            Reply::json(
                200,
                &json!({ "url": LOOKASIDE_URL, "mime_type": "image/jpeg", "id": "media-1" }),
            )
        });
    }

    fn file(bytes: &[u8]) -> Reply {
        Reply::status(200)
            .header("content-type", "application/octet-stream")
            .header("content-length", &bytes.len().to_string())
            .body(bytes.to_vec())
    }

    async fn fetch(
        fixture: &Fixture,
        account: &ChannelAccount,
        pending: &Pending,
    ) -> Result<(String, i64), FetchFailure> {
        fetch_and_store(&fixture.env, account, pending).await
    }

    fn stored(fixture: &Fixture, pending: &Pending) -> Option<Vec<u8>> {
        fixture.stack.r2_bytes(ATTACHMENTS, &pending.storage_key)
    }

    #[test]
    fn a_whatsapp_file_is_described_by_the_graph_api_fetched_with_the_token_and_stored() {
        let fixture = Fixture::new();
        graph(&fixture);
        fixture.stack.partner(LOOKASIDE, |call| {
            if call.header("authorization") == Some("Bearer meta-token") {
                file(b"\xff\xd8\xff jpeg bytes")
            } else {
                Reply::status(403)
            }
        });
        fixture.run(async {
            let (account, pending) = whatsapp(&fixture).await;
            let (mime_type, size) = fetch(&fixture, &account, &pending)
                .await
                .unwrap_or_else(|failure| panic!("{failure:?}"));
            assert_eq!(
                (mime_type.as_str(), size),
                ("image/jpeg", 14),
                "the Graph API's type before the host's"
            );
            assert_eq!(
                stored(&fixture, &pending),
                Some(b"\xff\xd8\xff jpeg bytes".to_vec())
            );
            let object = fixture
                .stack
                .r2_read(ATTACHMENTS, &pending.storage_key)
                .unwrap_or_else(|| panic!("stored"));
            assert_eq!(object.http_metadata().content_type.as_deref(), Some("image/jpeg"));
            let fetched = fixture.stack.calls_to(LOOKASIDE);
            assert_eq!(fetched[0].header("accept-encoding"), Some("identity"));
        });
    }

    #[test]
    fn a_linked_file_is_fetched_with_the_accounts_credentials_which_a_redirect_elsewhere_drops() {
        let fixture = Fixture::new();
        fixture.stack.partner(TWILIO, |_| {
            Reply::status(302).header("location", "https://media.s3.amazonaws.com/ME1?sig=x")
        });
        fixture.stack.partner("media.s3.amazonaws.com", |call| {
            if call.header("authorization").is_some() {
                Reply::status(400)
            } else {
                file(b"png bytes")
            }
        });
        fixture.run(async {
            let (account, pending) = twilio(&fixture).await;
            let (mime_type, size) = fetch(&fixture, &account, &pending)
                .await
                .unwrap_or_else(|failure| panic!("{failure:?}"));
            assert_eq!((mime_type.as_str(), size), ("image/png", 9));
            let asked = fixture.stack.calls_to(TWILIO);
            let basic = format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "AC1:twilio-token")
            );
            assert_eq!(asked[0].header("authorization"), Some(basic.as_str()));
            assert_eq!(stored(&fixture, &pending), Some(b"png bytes".to_vec()));
        });
    }

    #[test]
    fn a_redirect_off_the_providers_media_hosts_is_not_followed() {
        let fixture = Fixture::new();
        fixture.stack.partner(TWILIO, |_| {
            Reply::status(302).header("location", "https://evil.example/steal")
        });
        fixture.run(async {
            let (account, pending) = twilio(&fixture).await;
            let failure = fetch(&fixture, &account, &pending).await.err();
            assert!(
                matches!(&failure, Some(FetchFailure::Permanent(reason)) if reason.contains("evil.example is not one of twilio's media hosts")),
                "{failure:?}"
            );
            assert!(fixture.stack.calls_to("evil.example").is_empty());
        });
    }

    #[test]
    fn what_the_host_answers_decides_whether_the_file_is_tried_again() {
        let cases = [
            (Reply::status(404), false, "gone"),
            (Reply::status(403), false, "not ours"),
            (Reply::status(408), true, "a request timeout"),
            (Reply::status(429), true, "a rate limit"),
            (Reply::status(503), true, "the host is down"),
            (Reply::refused(), true, "nothing listens"),
            (
                Reply::status(200).header("content-length", &(MAX_INBOUND_MEDIA_BYTES + 1).to_string()),
                false,
                "declared larger than the limit",
            ),
        ];
        for (reply, transient, description) in cases {
            let fixture = Fixture::new();
            fixture.stack.partner(TWILIO, move |_| reply.clone());
            fixture.run(async {
                let (account, pending) = twilio(&fixture).await;
                let failure = fetch(&fixture, &account, &pending).await.err();
                let is_transient = match failure {
                    Some(FetchFailure::Transient(_)) => true,
                    Some(FetchFailure::Permanent(_)) => false,
                    None => panic!("{description}: fetched"),
                };
                assert_eq!(is_transient, transient, "{description}");
                assert_eq!(stored(&fixture, &pending), None, "{description}");
            });
        }
    }

    #[test]
    fn a_file_that_does_not_arrive_within_two_minutes_is_abandoned_for_another_try() {
        let fixture = Fixture::new();
        fixture.stack.partner(TWILIO, |_| {
            Reply::status(200)
                .header("content-length", "1000")
                .body(vec![b'x'; 1000])
                .in_chunks(10, std::time::Duration::from_secs(2))
        });
        fixture.run(async {
            let (account, pending) = twilio(&fixture).await;
            let started = fixture.stack.now_ms();
            let failure = fetch(&fixture, &account, &pending).await.err();
            assert!(
                matches!(&failure, Some(FetchFailure::Transient(reason)) if reason == "the file did not arrive within 120 s"),
                "{failure:?}"
            );
            assert_eq!(fixture.stack.now_ms() - started, 120_000);
            assert_eq!(stored(&fixture, &pending), None, "nothing half stored");
        });
    }

    #[test]
    fn a_file_shorter_than_its_declared_length_is_not_stored() {
        let fixture = Fixture::new();
        fixture.stack.partner(TWILIO, |_| {
            Reply::status(200)
                .header("content-length", "100")
                .body(vec![b'x'; 60])
        });
        fixture.run(async {
            let (account, pending) = twilio(&fixture).await;
            let failure = fetch(&fixture, &account, &pending).await.err();
            assert!(matches!(failure, Some(FetchFailure::Transient(_))), "{failure:?}");
            assert_eq!(stored(&fixture, &pending), None);
        });
    }

    #[test]
    fn a_file_of_unknown_length_is_read_whole_while_the_invocation_has_room_and_not_past_the_limit() {
        let fixture = Fixture::new();
        fixture.stack.partner(TWILIO, |call| {
            if call.url.ends_with("big") {
                Reply::status(200)
                    .body(vec![b'x'; MAX_INBOUND_MEDIA_BYTES + 1])
                    .in_chunks(1 << 20, std::time::Duration::ZERO)
            } else {
                Reply::status(200)
                    .body(b"chunked".to_vec())
                    .in_chunks(3, std::time::Duration::ZERO)
            }
        });
        fixture.run(async {
            let (account, pending) = twilio(&fixture).await;
            let fetched = fetch(&fixture, &account, &pending).await.ok();
            assert_eq!(fetched, Some(("image/png".to_owned(), 7)));
            assert_eq!(stored(&fixture, &pending), Some(b"chunked".to_vec()));
            assert_eq!(fixture.env.room(), domain::platform::BUFFERED_BYTES, "the room held is given back");
            let big = Pending {
                source: serde_json::to_string(&InboundMedia::Url {
                    url: format!("{TWILIO_MEDIA}/big"),
                    mime_type: None,
                    filename: None,
                })
                .unwrap_or_default(),
                storage_key: "businesses/x/attachments/big".to_owned(),
                ..pending
            };
            let failure = fetch(&fixture, &account, &big).await.err();
            assert!(matches!(failure, Some(FetchFailure::Permanent(_))), "{failure:?}");
            let _held = fixture.env.hold(domain::platform::BUFFERED_BYTES - MAX_INBOUND_MEDIA_BYTES + 1);
            let crowded = fetch(&fixture, &account, &big).await.err();
            assert!(
                matches!(&crowded, Some(FetchFailure::Transient(reason)) if reason.contains("hold the memory")),
                "{crowded:?}"
            );
        });
    }

    #[test]
    fn the_held_message_received_goes_out_once_the_last_file_settles() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (account, pending) = whatsapp(&fixture).await;
            let tenant = &account.tenant;
            let published = |fixture: &Fixture| fixture.dispatched().len();
            let before = published(&fixture);
            release_events_when_settled(&fixture.env, &fixture.db, tenant, &pending.message_id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(published(&fixture), before, "its file is still pending");
            let rows = fixture.rows("attachments", "id");
            let id = AttachmentId::parse(rows[0]["id"].as_str().unwrap_or_default())
                .unwrap_or_else(|| panic!("an id"));
            db::attachments::settle(&fixture.db, tenant, &id, Ok(("image/jpeg", 14)))
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            release_events_when_settled(&fixture.env, &fixture.db, tenant, &pending.message_id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(published(&fixture), before + 1, "message.received");
        });
    }
}
