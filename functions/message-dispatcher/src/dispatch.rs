//! One delivery of one queued message: load it (scoped by the business the queue message names),
//! claim it with a write, send it through the provider, and settle it. Every attempt is logged
//! with the message id, provider, status and duration, never with credentials.
//!
//! A business being moved may not write. Its sends wait on the queue while the directory says
//! so (`edge::platform::queue`); one that started before this isolate saw the pause is stopped by its claim,
//! and one whose provider accepted it but whose settle was refused is handed back to the queue
//! with the provider's answer, so that it is recorded after the move and never sent again.

use domain::channel::{Channel, MessageStatus};
use domain::error::ApiError;
use domain::message::{Attachment, Message};
use domain::outgoing::no_address_message;
use domain::providers::api::{Media, Outcome, Outgoing, Sender};
use domain::providers::sending::{
    self, Decision, EMAIL_LINK_LIFETIME_SECONDS, MAX_ATTEMPTS, PROVIDER_LINK_LIFETIME_SECONDS,
};
use domain::tenant::Tenant;
use edge::Env;
use edge::db::Db;
use edge::messaging::media_store::{ATTACHMENTS, storage_key};
use edge::messaging::send_queue::{self, Accepted, QueuedSend, ToDeliver};
use edge::platform::queue::{Settle, held_seconds};
use edge::runtime::Internal;
use edge::{console_error, console_log, console_warn};
use edge::{db, events::outbox, messaging::message_status, platform::provider_call, runtime};

/// Email attachments are read into memory up to this total; further files are linked instead.
const MAX_EMAIL_ATTACHMENT_BYTES: usize = 20 * 1024 * 1024;

pub async fn handle(env: Env, job: QueuedSend, attempt: u32) -> Settle {
    let (env, job) = (&env, &job);
    match deliver(env, job, attempt).await {
        Ok(settle) => settle,
        Err(error) => {
            // Our own fault (D1 or R2 unavailable): the message is still queued and the queue
            // delivers it again. Past the last attempt the queue will not, so the message is
            // failed now if D1 lets us, rather than left queued for ever.
            console_error!(
                "message {} attempt {attempt}: not dispatched: {}",
                job.message_id,
                error.detail().unwrap_or(&error.body.message)
            );
            if attempt > MAX_ATTEMPTS {
                give_up(env, job).await;
                return Settle::Ack;
            }
            Settle::RetryIn(sending::backoff_seconds(attempt))
        }
    }
}

/// The business a queue message acts for; every query below is scoped by it.
fn tenant_of(job: &QueuedSend) -> Tenant {
    Tenant::for_background(job.business_id.clone())
}

async fn give_up(env: &Env, job: &QueuedSend) {
    let tenant = tenant_of(job);
    let reason = "the message could not be sent because of an internal error";
    let failed = match env.db() {
        Ok(db) => message_status::mark_failed(&db, &tenant, &job.message_id, reason)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if !failed {
        console_error!(
            "message {}: left queued; it could not be marked failed",
            job.message_id
        );
    }
}

async fn deliver(env: &Env, job: &QueuedSend, attempt: u32) -> Result<Settle, ApiError> {
    let tenant = tenant_of(job);
    let db = env.db()?;
    let keys = env.keyring()?;
    let Some(loaded) = send_queue::to_deliver(&db, &keys, &tenant, &job.message_id).await? else {
        console_warn!(
            "message {}: no such outbound message of business {}",
            job.message_id,
            job.business_id
        );
        return Ok(Settle::Ack);
    };
    let message = &loaded.message;
    if message.status != MessageStatus::Queued {
        // Queues deliver at least once: a repeated delivery of a settled message is a no-op.
        console_log!(
            "message {}: already {}, not sent again",
            message.id,
            message.status.as_str()
        );
        return Ok(Settle::Ack);
    }
    if let Some(accepted) = &job.accepted {
        let decision = Decision::MarkSent {
            provider_message_id: accepted.provider_message_id.clone(),
        };
        return settle(env, &db, &tenant, job, decision, attempt).await;
    }
    // Email files are read whole, and copied once more into Mailgun's multipart body: the send
    // holds that much of the invocation's memory, and waits for another invocation when the
    // batch's other sends hold too much of it (a retry, not a failure of the message).
    let _held = match email_file_bytes(message) {
        0 => None,
        bytes => {
            let needed = bytes.saturating_mul(2);
            if env.room() < needed {
                return Err(ApiError::unavailable(
                    "the other sends of this batch hold the memory this email's files need",
                    2,
                ));
            }
            Some(env.hold(needed).internal("the invocation's memory")?)
        }
    };
    // A message that cannot be addressed or whose attachments cannot be linked fails for good,
    // and so does one of an account a restore paused (a restore's queued sends are failed with
    // it; one queued since would be sent by an account not yet resumed).
    if loaded
        .account
        .as_ref()
        .is_some_and(|account| account.paused_at.is_some())
    {
        let reason = "its channel account is paused (the business was restored from a backup): resume it, \
                      then send again"
            .to_owned();
        return settle(env, &db, &tenant, job, Decision::MarkFailed { reason }, attempt).await;
    }
    let ready = match prepare(&loaded) {
        Ok(sender) => media(env, &tenant, message, job)
            .await?
            .map(|media| (sender, media)),
        Err(reason) => Err(reason),
    };
    let (sender, media) = match ready {
        Ok(ready) => ready,
        Err(reason) => {
            return settle(env, &db, &tenant, job, Decision::MarkFailed { reason }, attempt).await;
        }
    };
    let outgoing = Outgoing {
        channel: message.channel,
        to: &sender.to,
        text: &message.content,
        subject: job.subject.as_deref(),
        media: &media,
    };
    if !claim(&db, &tenant, message).await? {
        console_log!(
            "message {}: another delivery is sending it; this one stands down",
            message.id
        );
        return Ok(Settle::Ack);
    }
    let requests = match &loaded.reply {
        // An answer to a comment is one call: under the comment, or privately to its author.
        Some((comment, privately)) => {
            match sending::comment_reply(&sender.sender, comment, *privately, &message.content) {
                Ok(request) => vec![request],
                Err(uncallable) => {
                    let reason = uncallable.to_string();
                    return settle(env, &db, &tenant, job, Decision::MarkFailed { reason }, attempt).await;
                }
            }
        }
        None => sending::requests(&sender.sender, &outgoing, &format!("crm-edge-{}", hex_random()?)),
    };
    let provider = sender.sender.provider();
    let parts = requests.len();
    // Parts an earlier attempt got accepted are not sent again.
    let progress = if parts > 1 {
        db::messages::send_progress(&db, &tenant, &message.id).await?
    } else {
        db::messages::SendProgress::default()
    };
    let mut first_id = progress.partial_provider_id;
    let mut outcome = Outcome::Sent {
        provider_message_id: None,
    };
    for (at, request) in requests.iter().enumerate().skip(progress.parts_sent) {
        let answer = provider_call::send(env, request, provider, |status, retry_after, body| {
            sending::classify(provider, status, retry_after, body)
        })
        .await;
        console_log!(
            "message {} attempt {attempt}/{MAX_ATTEMPTS} part {}/{parts}: {} {} -> {} in {} ms: {}",
            message.id,
            at + 1,
            provider.as_str(),
            message.channel,
            answer
                .status
                .map_or_else(|| "no answer".to_owned(), |status| format!("HTTP {status}")),
            answer.millis,
            describe(&answer.outcome)
        );
        match answer.outcome {
            Outcome::Sent { provider_message_id } => {
                first_id = first_id.or(provider_message_id);
                if at + 1 < parts {
                    db::messages::record_parts_sent(&db, &tenant, &message.id, at + 1, first_id.as_deref())
                        .await?;
                }
            }
            other => {
                outcome = other;
                break;
            }
        }
    }
    if let Outcome::Sent { .. } = outcome {
        outcome = Outcome::Sent {
            provider_message_id: first_id,
        };
    }
    let decision = sending::decide(outcome, attempt);
    let Decision::MarkSent { provider_message_id } = decision else {
        return settle(env, &db, &tenant, job, decision, attempt).await;
    };
    let decision = Decision::MarkSent {
        provider_message_id: provider_message_id.clone(),
    };
    match settle(env, &db, &tenant, job, decision, attempt).await {
        Ok(settled) => Ok(settled),
        Err(error) => hand_back_accepted(env, job, provider_message_id, &error).await,
    }
}

/// Claims the message for this attempt (`db::messages::claim_send`); false: another delivery
/// holds it, and its own queue message comes back if that delivery does not finish.
async fn claim(db: &Db, tenant: &Tenant, message: &Message) -> Result<bool, ApiError> {
    let now = runtime::now();
    // Strictly later than what was read: a claim at the same millisecond would look unclaimed.
    let read = domain::time::Timestamp::parse_rfc3339(&message.updated_at).map_or(0, |read| read.millis());
    let claimed = domain::time::Timestamp::from_millis(now.millis().max(read + 1)).to_rfc3339();
    db::messages::claim_send(db, tenant, &message.id, &message.updated_at, &claimed).await
}

/// The provider accepted the message, and recording it failed (the business is being moved, or
/// D1 did not answer): a new queue message carries the provider's answer, and records it once it
/// can, without sending again. Err only when that cannot be queued either; the queue then
/// retries this delivery, which sends again.
async fn hand_back_accepted(
    env: &Env,
    job: &QueuedSend,
    provider_message_id: Option<String>,
    error: &ApiError,
) -> Result<Settle, ApiError> {
    console_warn!(
        "message {}: sent, but not recorded: {}; recorded later",
        job.message_id,
        error.detail().unwrap_or(&error.body.message)
    );
    let later = QueuedSend {
        accepted: Some(Accepted { provider_message_id }),
        ..job.clone()
    };
    edge::platform::queue::send_all(env, &[later], held_seconds(&env.db()?))
        .await
        .internal("the queue")?;
    Ok(Settle::Ack)
}

/// Who sends the message and to whom; Err is why it cannot be sent at all.
struct Ready {
    sender: Sender,
    to: String,
}

fn prepare(loaded: &ToDeliver) -> Result<Ready, String> {
    let channel = loaded.message.channel;
    if loaded.customer.is_none() {
        return Err("the customer no longer exists".to_owned());
    }
    let Some(to) = loaded.recipient() else {
        return Err(no_address_message(channel));
    };
    let Some(account) = &loaded.account else {
        return Err(format!("the business has no {channel} account to send from"));
    };
    account
        .sender()
        .map(|sender| Ready { sender, to })
        .map_err(|lacking| lacking.to_string())
}

/// The message's files, each with a signed link of this deployment that the provider fetches it
/// from (made fresh on every attempt); for email, with their bytes too, since Mailgun is sent the
/// files themselves. Err: why the files cannot be offered at all.
async fn media(
    env: &Env,
    tenant: &Tenant,
    message: &Message,
    job: &QueuedSend,
) -> Result<Result<Vec<Media>, String>, ApiError> {
    let attachments = message.attachments.as_deref().unwrap_or_default();
    if attachments.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let (Some(base_url), Some(links)) = (job.media_base_url.as_deref(), env.media_links()) else {
        console_error!(
            "message {}: attachments cannot be linked: no base URL or no MEDIA_LINK_SECRET",
            message.id
        );
        return Ok(Err(
            "the attachments could not be offered to the provider (server configuration)".to_owned(),
        ));
    };
    let lifetime = match message.channel {
        Channel::Email => EMAIL_LINK_LIFETIME_SECONDS,
        _ => PROVIDER_LINK_LIFETIME_SECONDS,
    };
    let expires = runtime::now().seconds() + lifetime;
    let mut loaded = 0usize;
    let mut media = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        let query = links.query(&tenant.business_id, &attachment.id, expires);
        let size = usize::try_from(attachment.size).unwrap_or(usize::MAX);
        let bytes = if message.channel == Channel::Email
            && loaded.saturating_add(size) <= MAX_EMAIL_ATTACHMENT_BYTES
        {
            let bytes = file_bytes(env, tenant, attachment).await?;
            loaded += bytes.as_ref().map_or(0, Vec::len);
            bytes
        } else {
            None
        };
        media.push(Media {
            url: format!("{}/api/download-media?{query}", base_url.trim_end_matches('/')),
            filename: attachment.filename.clone(),
            mime_type: attachment.mime_type.clone(),
            bytes,
        });
    }
    Ok(Ok(media))
}

/// The bytes of an email's files that [`media`] reads whole: at most [`MAX_EMAIL_ATTACHMENT_BYTES`].
fn email_file_bytes(message: &Message) -> usize {
    if message.channel != Channel::Email {
        return 0;
    }
    let total: usize = message
        .attachments
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|attachment| usize::try_from(attachment.size).unwrap_or(usize::MAX))
        .fold(0, usize::saturating_add);
    total.min(MAX_EMAIL_ATTACHMENT_BYTES)
}

async fn file_bytes(
    env: &Env,
    tenant: &Tenant,
    attachment: &Attachment,
) -> Result<Option<Vec<u8>>, ApiError> {
    let object = env
        .bucket_read(ATTACHMENTS)
        .internal("R2")?
        .get(storage_key(tenant, &attachment.id))
        .execute()
        .await
        .internal("R2")?;
    match object.as_ref().and_then(|object| object.body()) {
        Some(body) => Ok(Some(body.bytes().await.internal("R2")?)),
        None => Ok(None),
    }
}

/// Records the decision; a message marked sent also publishes its `message.sent` event.
async fn settle(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    job: &QueuedSend,
    decision: Decision,
    attempt: u32,
) -> Result<Settle, ApiError> {
    let message_id = &job.message_id;
    match decision {
        Decision::MarkSent { provider_message_id } => {
            let sent = message_status::mark_sent(
                db,
                tenant,
                message_id,
                provider_message_id.as_deref(),
                job.media_base_url.as_deref(),
            )
            .await?;
            outbox::publish(env, tenant, sent.event_ids).await;
            console_log!("message {message_id}: sent");
            Ok(Settle::Ack)
        }
        Decision::MarkFailed { reason } => {
            message_status::mark_failed(db, tenant, message_id, &reason).await?;
            console_warn!("message {message_id}: failed on attempt {attempt}: {reason}");
            Ok(Settle::Ack)
        }
        Decision::Retry {
            delay_seconds,
            reason,
        } => {
            let note = format!(
                "attempt {attempt} of {MAX_ATTEMPTS} failed, retrying in {delay_seconds} s: {reason}"
            );
            message_status::note_retry(db, tenant, message_id, &note).await?;
            Ok(Settle::RetryIn(delay_seconds))
        }
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Sent {
            provider_message_id: Some(id),
        } => format!("accepted as {id}"),
        Outcome::Sent {
            provider_message_id: None,
        } => "accepted".to_owned(),
        Outcome::Transient { reason, .. } => format!("transient: {reason}"),
        Outcome::Rejected { reason } => format!("rejected: {reason}"),
    }
}

fn hex_random() -> Result<String, ApiError> {
    Ok(runtime::random::<12>()?
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}
