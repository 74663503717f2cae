//! What a channel's provider sends while the business is being moved (its writes refused): the
//! messages and statuses its receiver verified and parsed are kept in R2, named on the
//! `crm-edge-inbound-held` queue, and stored once the move is over; the provider is answered as
//! if they were stored. A provider that does not retry a refused webhook (Twilio) loses nothing,
//! and one that does (Meta, Mailgun) is not made to. Storing is idempotent per provider message
//! id, so a batch stored partly before the pause struck, or kept twice, is stored once. (The
//! storing is `ingest::held`.)

use crate::db::channel_accounts::ChannelAccount;
use crate::media_store::ATTACHMENTS;
use crate::queue::{HELD_SECONDS, Work, send_all};
use crate::{console_log, runtime};
use domain::error::{ApiError, BEING_MOVED};
use domain::ids::{BusinessId, ChannelAccountId};
use domain::inbound::InboundBatch;
use serde::{Deserialize, Serialize};

/// The queue binding (producer in the channel receivers, consumer in receiver-twilio).
pub const HELD_INBOUND: &str = "HELD_INBOUND";

/// Where kept batches are in the attachments bucket, apart from the files (`media_store`).
const KEY_PREFIX: &str = "held-inbound";

/// How long a kept batch that could not be stored waits for its next try (the queue gives up
/// past `functions.toml`'s `max_retries`; its object then stays in R2 for the operator).
pub const RETRY_SECONDS: u32 = 30;

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
