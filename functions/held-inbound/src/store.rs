//! Storing what was kept while a business was being moved: a channel's parsed batch goes through
//! `edge::messaging::ingest` as if it had just arrived, a Chatwoot delivery through its connector; then the
//! kept object is deleted. Something kept for an account or a connector that is gone, or that is
//! no longer the same business's, is dropped.

use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::inbound::InboundBatch;
use edge::messaging::held_inbound::{self, HeldInbound, KeptFrom};
use edge::messaging::media_store::ATTACHMENTS;
use edge::platform::queue::Settle;
use edge::runtime::Internal;
use edge::{Env, console_error, console_log, console_warn, crm, db, messaging::ingest};

/// The consumer of `crm-edge-inbound-held`: stores a kept batch (the queue hands it over only
/// once the business is no longer paused), then deletes it.
pub async fn handle(env: Env, held: HeldInbound, attempt: u32) -> Settle {
    match store(&env, &held).await {
        Ok(()) => Settle::Ack,
        Err(error) => {
            console_error!(
                "kept inbound batch {} (attempt {attempt}): not stored: {}",
                held.key,
                error.detail().unwrap_or(&error.body.message)
            );
            Settle::RetryIn(held_inbound::RETRY_SECONDS)
        }
    }
}

async fn store(env: &Env, held: &HeldInbound) -> Result<(), ApiError> {
    let bucket = env.bucket_read(ATTACHMENTS).internal("R2")?;
    let Some(object) = bucket.get(&held.key).execute().await.internal("R2")? else {
        console_warn!("kept inbound {} is gone: stored already", held.key);
        return Ok(());
    };
    let bytes = match object.body() {
        Some(body) => body.bytes().await.internal("reading the request's body")?,
        None => Vec::new(),
    };
    let db = env.db()?;
    let keys = env.keyring()?;
    let ours = |business: &BusinessId| business == &held.business_id;
    match &held.from {
        KeptFrom::Channel { account_id, base_url } => {
            let batch: InboundBatch = serde_json::from_slice(&bytes)
                .map_err(|error| ApiError::internal("reading a kept inbound batch", error))?;
            match db::channel_accounts::find(&db, &keys, account_id).await? {
                Some(account) if ours(&account.tenant.business_id) => {
                    ingest::ingest(env, &account, batch, base_url).await?;
                }
                _ => console_warn!(
                    "kept inbound {}: channel account {account_id} is gone; dropped",
                    held.key
                ),
            }
        }
        KeptFrom::Chatwoot {
            connector_id,
            delivery,
        } => match db::crm_connectors::find_any(&db, &keys, connector_id).await? {
            Some(connector) if ours(&connector.tenant.business_id) => {
                let outcome = crm::chatwoot::record(env, &db, &connector, &bytes, delivery).await?;
                console_log!("kept Chatwoot delivery {}: {outcome}", held.key);
            }
            _ => console_warn!(
                "kept inbound {}: connector {connector_id} is gone; dropped",
                held.key
            ),
        },
    }
    env.bucket_write(ATTACHMENTS)
        .internal("R2")?
        .delete(&held.key)
        .await
        .internal("R2")?;
    Ok(())
}
