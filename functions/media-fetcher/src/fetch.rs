//! One file: read its pending row (scoped by the business the queue message names), fetch it
//! with the channel account's credentials, store it, settle the row.

use domain::error::ApiError;
use domain::tenant::Tenant;
use edge::Env;
use edge::db;
use edge::messaging::inbound_media::{self, FetchFailure, MAX_ATTEMPTS, MediaFetch, RETRY_DELAYS_SECONDS};
use edge::platform::queue::Settle;
use edge::{console_error, console_log, console_warn};

pub async fn handle(env: Env, job: MediaFetch, attempt: u32) -> Settle {
    match fetch(&env, &job, attempt).await {
        Ok(settle) => settle,
        Err(error) => {
            // Our own fault (D1 unavailable): the row is still pending; the queue tries again.
            console_error!(
                "media {} attempt {attempt}: {}",
                job.attachment_id,
                error.detail().unwrap_or(&error.body.message)
            );
            Settle::RetryIn(delay_after(attempt))
        }
    }
}

/// The wait after attempt `attempt` (counted from 1).
fn delay_after(attempt: u32) -> u32 {
    let at = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    RETRY_DELAYS_SECONDS
        .get(at)
        .or(RETRY_DELAYS_SECONDS.last())
        .copied()
        .unwrap_or(60)
}

async fn fetch(env: &Env, job: &MediaFetch, attempt: u32) -> Result<Settle, ApiError> {
    let tenant = Tenant::for_background(job.business_id.clone());
    let db = env.db()?;
    let id = &job.attachment_id;
    let Some(pending) = db::attachments::pending(&db, &tenant, id).await? else {
        // Settled already: a repeated queue delivery.
        return Ok(Settle::Ack);
    };
    let account = db::channel_accounts::find(&db, &*env.keyring()?, &pending.account_id)
        .await?
        .filter(|account| account.tenant.business_id == tenant.business_id);
    let outcome = match &account {
        Some(account) => inbound_media::fetch_and_store(env, account, &pending).await,
        None => Err(FetchFailure::Permanent(
            "the channel account it came through no longer exists".to_owned(),
        )),
    };
    let settled = match &outcome {
        Ok((mime_type, size)) => {
            console_log!("media {id} attempt {attempt}: stored ({size} bytes, {mime_type})");
            Ok((mime_type.as_str(), *size))
        }
        Err(FetchFailure::Transient(reason)) if attempt < MAX_ATTEMPTS => {
            let delay = delay_after(attempt);
            console_warn!("media {id} attempt {attempt}/{MAX_ATTEMPTS}: {reason}; again in {delay} s");
            return Ok(Settle::RetryIn(delay));
        }
        Err(failure) => {
            console_warn!(
                "media {id} attempt {attempt}: failed for good: {}",
                failure.reason()
            );
            Err(failure.reason())
        }
    };
    db::attachments::settle(&db, &tenant, id, settled).await?;
    inbound_media::release_events_when_settled(env, &db, &tenant, &pending.message_id).await?;
    Ok(Settle::Ack)
}
