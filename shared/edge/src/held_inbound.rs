//! What a channel's provider sends while the business is being moved (its writes refused): the
//! messages and statuses its receiver verified and parsed are kept in R2, named on the
//! `crm-edge-inbound-held` queue, and stored once the move is over; the provider is answered as
//! if they were stored. A provider that does not retry a refused webhook (Twilio) loses nothing,
//! and one that does (Meta, Mailgun) is not made to. Storing is idempotent per provider message
//! id, so a batch stored partly before the pause struck, or kept twice, is stored once.

use crate::db::channel_accounts::ChannelAccount;
use crate::media_store::ATTACHMENTS;
use crate::queue::{HELD_SECONDS, Settle, Work, send_all};
use crate::{DB, console_error, console_log, console_warn, db, ingest, runtime, secrets_key};
use domain::error::{ApiError, BEING_MOVED};
use domain::ids::{BusinessId, ChannelAccountId};
use domain::inbound::InboundBatch;
use serde::{Deserialize, Serialize};

/// The queue binding (producer in the channel receivers, consumer in receiver-twilio).
pub const HELD_INBOUND: &str = "HELD_INBOUND";

/// Where kept batches are in the attachments bucket, apart from the files (`media_store`).
const KEY_PREFIX: &str = "held-inbound";

/// How often a kept batch is tried before the queue gives up on it (`functions.toml`'s
/// `max_retries`, past which its object stays in R2 for the operator).
const RETRY_SECONDS: u32 = 30;

/// A kept batch: whose, for which account, where in R2, and the public origin its download
/// links are made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldInbound {
    pub business_id: BusinessId,
    pub account_id: ChannelAccountId,
    pub key: String,
    pub base_url: String,
}

impl Work for HeldInbound {
    const QUEUE: &'static str = HELD_INBOUND;

    fn business(&self) -> Option<BusinessId> {
        Some(self.business_id.clone())
    }
}

/// Whether `error` is a write refused because the business is being moved.
pub fn being_moved(error: &ApiError) -> bool {
    error.detail().is_some_and(|detail| detail.contains(BEING_MOVED))
}

/// Keeps `batch` of `account` to be stored after the move; a batch with nothing in it is not
/// kept. Err: it could not be kept, and the provider must be told to try again.
pub async fn keep(
    env: &crate::Env,
    account: &ChannelAccount,
    batch: &InboundBatch,
    base_url: &str,
) -> Result<(), ApiError> {
    if batch.messages.is_empty() && batch.statuses.is_empty() {
        return Ok(());
    }
    let business_id = account.tenant.business_id.clone();
    let random: String = runtime::random::<12>()?
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let key = format!("{KEY_PREFIX}/{business_id}/{random}.json");
    let body =
        serde_json::to_vec(batch).map_err(|error| ApiError::internal("keeping an inbound batch", error))?;
    crate::media_store::put(&env.bucket(ATTACHMENTS)?, &key, "application/json", body).await?;
    let held = HeldInbound {
        business_id,
        account_id: account.id.clone(),
        key,
        base_url: base_url.to_owned(),
    };
    send_all(env, HELD_INBOUND, &[held], HELD_SECONDS).await?;
    console_log!(
        "channel account {}: {} messages and {} statuses kept while the business is moved",
        account.id,
        batch.messages.len(),
        batch.statuses.len()
    );
    Ok(())
}

/// The consumer of `crm-edge-inbound-held`: stores a kept batch (the queue hands it over only
/// once the business is no longer paused), then deletes it.
pub async fn handle(env: crate::Env, held: HeldInbound, attempt: u32) -> Settle {
    match store(&env, &held).await {
        Ok(()) => Settle::Ack,
        Err(error) => {
            console_error!(
                "kept inbound batch {} (attempt {attempt}): not stored: {}",
                held.key,
                error.detail().unwrap_or(&error.body.message)
            );
            Settle::RetryIn(RETRY_SECONDS)
        }
    }
}

async fn store(env: &crate::Env, held: &HeldInbound) -> Result<(), ApiError> {
    let bucket = env.bucket(ATTACHMENTS)?;
    let Some(object) = bucket.get(&held.key).execute().await? else {
        console_warn!("kept inbound batch {} is gone: stored already", held.key);
        return Ok(());
    };
    let bytes = match object.body() {
        Some(body) => body.bytes().await?,
        None => Vec::new(),
    };
    let batch: InboundBatch = serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::internal("reading a kept inbound batch", error))?;
    let db = env.d1(DB)?;
    let account = db::channel_accounts::find(&db, &secrets_key::keyring(env)?, &held.account_id).await?;
    match account.filter(|account| account.tenant.business_id == held.business_id) {
        Some(account) => {
            ingest::ingest(env, &account, batch, &held.base_url).await?;
        }
        None => console_warn!(
            "kept inbound batch {}: channel account {} no longer exists; dropped",
            held.key,
            held.account_id
        ),
    }
    env.bucket(ATTACHMENTS)?.delete(&held.key).await?;
    Ok(())
}
