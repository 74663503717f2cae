//! What a channel's provider (or a business's Chatwoot) sends while the business is being moved
//! (its writes refused): the messages and statuses its receiver verified and parsed (the verified
//! Chatwoot delivery) are kept in R2, named on the `crm-edge-inbound-held` queue, and stored once
//! the move is over; the sender is answered as if they were stored. A provider that does not retry a refused webhook (Twilio) loses nothing,
//! and one that does (Meta, Mailgun) is not made to. Storing is idempotent per provider message
//! id, so a batch stored partly before the pause struck, or kept twice, is stored once. (The
//! storing is the held-inbound function's.)

use crate::Env;
use crate::db::channel_accounts::ChannelAccount;
use crate::db::crm_connectors::Connector;
use crate::messaging::media_store::ATTACHMENTS;
use crate::platform::queue::{Work, held_seconds, send_all};
use crate::runtime::Internal;
use crate::{console_log, console_warn, runtime};
use domain::error::ApiError;
use domain::ids::{BusinessId, ChannelAccountId, ConnectorId};
use domain::inbound::InboundBatch;
use domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The queue binding (producer in the channel receivers and receiver-chatwoot, consumer in
/// held-inbound).
pub const HELD_INBOUND: &str = "HELD_INBOUND";

/// Where kept batches are in the attachments bucket, apart from the files (`media_store`).
const KEY_PREFIX: &str = "held-inbound";

/// How long a kept batch that could not be stored waits for its next try (the queue gives up
/// past `functions.toml`'s `max_retries`; its object then stays in R2 for the operator, until the
/// maintenance sweep deletes it past the retention period: [`delete_expired`]).
pub const RETRY_SECONDS: u32 = 30;

/// Kept batches deleted a sweep at most (one R2 call deletes them).
const EXPIRED_PER_RUN: usize = 1_000;

/// Deletes the kept batches stored before `before` (the retention period ago): what was never
/// stored by then never will be (its queue gave up after its tries, and left it for the
/// operator; or its business stayed paused that long). How many.
pub async fn delete_expired(env: &Env, before: Timestamp) -> Result<usize, ApiError> {
    let bucket = env.bucket_write(ATTACHMENTS).internal("R2")?;
    let keys = runtime::keys_stored_before(
        &bucket,
        &format!("{KEY_PREFIX}/"),
        before.millis(),
        EXPIRED_PER_RUN,
    )
    .await
    .internal("R2")?;
    if keys.is_empty() {
        return Ok(0);
    }
    for key in &keys {
        console_warn!("kept inbound {key}: never stored, deleted past the retention period");
    }
    let count = keys.len();
    bucket.delete_multiple(keys).await.internal("R2")?;
    Ok(count)
}

/// Something kept: whose, where in R2, and what it came from. Its fields are nested, never
/// `#[serde(flatten)]`: a queue body goes to the runtime through `serde_wasm_bindgen`, which
/// writes a flattened struct as a JavaScript `Map`, and a `Map` reaches the consumer as `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldInbound {
    pub business_id: BusinessId,
    pub key: String,
    pub from: KeptFrom,
}

/// What was kept: a channel account's messages and statuses, parsed (its R2 object the
/// [`InboundBatch`] as JSON), or a Chatwoot delivery (its R2 object the verified body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeptFrom {
    /// `base_url`: the public origin its download links are made with.
    Channel {
        account_id: ChannelAccountId,
        base_url: String,
    },
    /// `delivery`: its `X-Chatwoot-Delivery`.
    Chatwoot {
        connector_id: ConnectorId,
        delivery: String,
    },
}

impl Work for HeldInbound {
    const QUEUE: &'static str = HELD_INBOUND;

    fn business(&self) -> Option<BusinessId> {
        Some(self.business_id.clone())
    }
}

/// Whether `error` is a write refused because the business is being moved.
pub fn being_moved(error: &ApiError) -> bool {
    error
        .unavailable_because()
        .is_some_and(domain::error::Unavailable::held)
}

/// Keeps `batch` of `account` to be stored after the move; a batch with nothing in it is not
/// kept. Err: it could not be kept, and the provider must be told to try again.
pub async fn keep(
    env: &Env,
    account: &ChannelAccount,
    batch: &InboundBatch,
    base_url: &str,
) -> Result<(), ApiError> {
    if batch.messages.is_empty() && batch.statuses.is_empty() {
        return Ok(());
    }
    let body =
        serde_json::to_vec(batch).map_err(|error| ApiError::internal("keeping an inbound batch", error))?;
    let from = KeptFrom::Channel {
        account_id: account.id.clone(),
        base_url: base_url.to_owned(),
    };
    put_aside(env, &account.tenant.business_id, from, body).await?;
    console_log!(
        "channel account {}: {} messages and {} statuses kept while the business is moved",
        account.id,
        batch.messages.len(),
        batch.statuses.len()
    );
    Ok(())
}

/// Keeps a verified Chatwoot delivery of `connector` to be recorded after the move.
pub async fn keep_chatwoot(
    env: &Env,
    connector: &Connector,
    body: &[u8],
    delivery: &str,
) -> Result<(), ApiError> {
    let from = KeptFrom::Chatwoot {
        connector_id: connector.id.clone(),
        delivery: delivery.to_owned(),
    };
    put_aside(env, &connector.tenant.business_id, from, body.to_vec()).await?;
    console_log!(
        "connector {}: a Chatwoot delivery kept while the business is moved",
        connector.id
    );
    Ok(())
}

/// Writes `body` to R2 and names it on the queue, delayed by as long as a pause lasts at least.
async fn put_aside(
    env: &Env,
    business_id: &BusinessId,
    from: KeptFrom,
    body: Vec<u8>,
) -> Result<(), ApiError> {
    let random: String = runtime::random::<12>()?
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let key = format!("{KEY_PREFIX}/{business_id}/{random}");
    crate::messaging::media_store::put(
        &env.bucket_write(ATTACHMENTS).internal("R2")?,
        &key,
        "application/octet-stream",
        body,
    )
    .await?;
    let held = HeldInbound {
        business_id: business_id.clone(),
        key,
        from,
    };
    send_all(env, &[held], held_seconds(&env.db()?))
        .await
        .internal("the queue")?;
    Ok(())
}
