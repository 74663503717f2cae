//! One webhook task: dispatching events (fix their bodies, create deliveries, attempt each) or
//! attempting one delivery again. Retries are new queue messages delayed by the endpoint's
//! schedule; the queue's own redelivery only covers our faults (D1 unavailable, a crash).

use futures_util::StreamExt;
use futures_util::stream;
use edge::auth::Tenant;
use edge::events::{self, WebhookTask};
use edge::queue::Settle;
use edge::webhooks_repo::{self, AttemptOutcome, Claimed};
use edge::{DB, runtime, webhook_delivery};
use domain::error::ApiError;
use domain::ids::BusinessId;
use worker::{D1Database, Env, console_error, console_log};

/// The key that signs download links in event bodies (download-media checks them).
const MEDIA_LINK_SECRET: &str = "MEDIA_LINK_SECRET";
/// Attempts made at once by one task: enough to keep a slow receiver from holding up the rest.
const PARALLEL_ATTEMPTS: usize = 16;
/// A lease outlives the longest attempt (30 s timeout) with room to record it.
const LEASE_SECONDS: i64 = 60;
/// Our own failures are retried by the queue after this long, a few times.
const OWN_FAULT_RETRY_SECONDS: u32 = 5;

pub async fn handle(env: Env, task: WebhookTask, delivery_count: u32) -> Settle {
    let env = &env;
    let result = match &task {
        WebhookTask::Dispatch {
            business_id,
            event_ids,
        } => match tenant(business_id) {
            Some(tenant) => dispatch(env, &tenant, event_ids).await,
            None => Ok(()),
        },
        WebhookTask::Deliver {
            business_id,
            delivery_id,
            attempt,
        } => match tenant(business_id) {
            Some(tenant) => match env.d1(DB) {
                Ok(db) => deliver(env, &db, &tenant, delivery_id, *attempt).await,
                Err(error) => Err(error.into()),
            },
            None => Ok(()),
        },
    };
    match result {
        Ok(()) => Settle::Ack,
        Err(error) => {
            console_error!(
                "webhook task (delivery {delivery_count} of it) failed, the queue will retry it: {}",
                error.detail().unwrap_or(&error.body.message)
            );
            Settle::RetryIn(OWN_FAULT_RETRY_SECONDS)
        }
    }
}

fn tenant(business_id: &str) -> Option<Tenant> {
    let tenant = BusinessId::parse(business_id).map(|business_id| Tenant {
        business_id,
        default_country: None,
    });
    if tenant.is_none() {
        console_error!("dropping a webhook task for an invalid business id");
    }
    tenant
}

async fn dispatch(env: &Env, tenant: &Tenant, event_ids: &[String]) -> Result<(), ApiError> {
    let db = env.d1(DB)?;
    let now = runtime::now();
    let stored = webhooks_repo::events(&db, tenant, event_ids).await?;
    let secret = env
        .secret(MEDIA_LINK_SECRET)
        .ok()
        .map(|secret| secret.to_string());
    let bodies =
        webhook_delivery::payloads(&db, tenant, &stored, secret.as_deref().map(str::as_bytes), now).await?;
    let lease = now.plus_seconds(LEASE_SECONDS);
    let claimed = webhooks_repo::fan_out(&db, tenant, &bodies, event_ids, now, lease).await?;
    let db = &db;
    let results: Vec<Result<(), ApiError>> = stream::iter(claimed)
        .map(|claimed| async move { attempt(env, db, tenant, &claimed).await })
        .buffer_unordered(PARALLEL_ATTEMPTS)
        .collect()
        .await;
    // A failed attempt-keeping step leaves its delivery pending and due: the sweep finds it.
    for error in results.into_iter().filter_map(Result::err) {
        console_error!(
            "a first attempt was not recorded: {}",
            error.detail().unwrap_or(&error.body.message)
        );
    }
    Ok(())
}

/// Attempts the delivery if it is still at `attempt` and nobody else holds it.
async fn deliver(
    env: &Env,
    db: &D1Database,
    tenant: &Tenant,
    delivery_id: &str,
    attempt: u32,
) -> Result<(), ApiError> {
    let now = runtime::now();
    let lease = now.plus_seconds(LEASE_SECONDS);
    let Some(claimed) = webhooks_repo::claim(db, tenant, delivery_id, attempt, now, lease).await? else {
        // Settled already, or another worker holds it: a repeated queue delivery.
        return Ok(());
    };
    self::attempt(env, db, tenant, &claimed).await
}

/// Makes the attempt the lease was taken for, and schedules the next one when it failed in a
/// way worth retrying.
async fn attempt(env: &Env, db: &D1Database, tenant: &Tenant, claimed: &Claimed) -> Result<(), ApiError> {
    let outcome = webhook_delivery::attempt(db, tenant, claimed, runtime::now()).await?;
    let (delivery_id, attempt) = (&claimed.delivery_id, claimed.attempt);
    console_log!(
        "webhook delivery {delivery_id} ({}) attempt {attempt}: {outcome:?}",
        claimed.event_type
    );
    if let AttemptOutcome::Retrying { next } = outcome {
        let delay = ((next.millis() - runtime::now().millis()).max(0) as f64 / 1000.0).ceil() as u32;
        let task = WebhookTask::Deliver {
            business_id: tenant.business_id.as_str().to_owned(),
            delivery_id: delivery_id.clone(),
            attempt: attempt + 1,
        };
        if let Err(error) = events::enqueue(env, vec![task], delay).await {
            console_error!("delivery {delivery_id}: retry left for the sweep: {error}");
        }
    }
    Ok(())
}
