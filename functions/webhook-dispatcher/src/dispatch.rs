//! One webhook task: dispatching events (fix their bodies, record the CRM work they mean, create
//! deliveries, attempt each) or attempting one delivery again. Retries are new queue messages delayed by the endpoint's
//! schedule; the queue's own redelivery only covers our faults (D1 unavailable, a crash).

use domain::error::ApiError;
use domain::ids::{DeliveryId, EventId};
use domain::tenant::Tenant;
use edge::Env;
use edge::db::Db;
use edge::db::webhook_attempts::AttemptOutcome;
use edge::db::webhook_deliveries::Claimed;
use edge::db::webhook_endpoints::Endpoint;
use edge::outbox::{self, WebhookTask};
use edge::queue::Settle;
use edge::{DB, runtime, secrets_key, webhook_delivery};
use edge::{console_error, console_log};
use futures_util::StreamExt;
use futures_util::stream;

/// The key that signs download links in event bodies (download-media checks them).
const MEDIA_LINK_SECRET: &str = "MEDIA_LINK_SECRET";
/// Attempts made at once by one task: enough to keep a slow receiver from holding up the rest.
const PARALLEL_ATTEMPTS: usize = 16;
/// A dispatch starts no first attempt once its invocation has made this many D1 queries: the ten
/// tasks of a batch share one invocation's 1,000, and each has up to [`PARALLEL_ATTEMPTS`]
/// attempts of a few queries each under way, which must be able to record how they ended.
const DISPATCH_QUERY_CEILING: u32 = domain::platform::D1_QUERIES / 4;
/// Our own failures are retried by the queue after this long, a few times.
const OWN_FAULT_RETRY_SECONDS: u32 = 5;

pub async fn handle(env: Env, task: WebhookTask, delivery_count: u32) -> Settle {
    let env = &env;
    let result = match &task {
        WebhookTask::Dispatch {
            business_id,
            event_ids,
        } => dispatch(env, &Tenant::for_background(business_id.clone()), event_ids).await,
        WebhookTask::Deliver {
            business_id,
            delivery_id,
            attempt,
        } => {
            let tenant = Tenant::for_background(business_id.clone());
            match env.d1(DB) {
                Ok(db) => deliver(env, &db, &tenant, delivery_id, *attempt).await,
                Err(error) => Err(error.into()),
            }
        }
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

async fn dispatch(env: &Env, tenant: &Tenant, event_ids: &[EventId]) -> Result<(), ApiError> {
    let db = env.d1(DB)?;
    let keys = secrets_key::keyring(env)?;
    let now = runtime::now();
    let stored = edge::db::webhook_events::load(&db, tenant, event_ids).await?;
    let secret = env.secret(MEDIA_LINK_SECRET);
    let bodies =
        webhook_delivery::payloads(&db, tenant, &stored, secret.as_deref().map(str::as_bytes), now).await?;
    for (event_id, reason) in &bodies.unbuildable {
        console_error!("event {event_id} is dead-lettered alone, the rest of its chunk goes on: {reason}");
    }
    // Before the events are marked dispatched: a failure here leaves them to be dispatched (and
    // planned) again, and planning twice records the work once.
    edge::crm::sync::plan(env, &db, tenant, &stored).await?;
    let due =
        webhook_delivery::fan_out(&db, &keys, tenant, &bodies, event_ids, now, PARALLEL_ATTEMPTS).await?;
    let db = &db;
    let results: Vec<Result<Option<Claimed>, ApiError>> = stream::iter(due)
        .map(|(claimed, endpoint)| async move {
            // Many events to many endpoints can be more attempts than one invocation's D1 queries
            // allow: past its share, a first attempt is handed to a task of its own.
            if env.usage().d1_queries >= DISPATCH_QUERY_CEILING {
                return Ok(Some(claimed));
            }
            attempt(env, db, tenant, &claimed, endpoint.as_ref())
                .await
                .map(|()| None)
        })
        .buffer_unordered(PARALLEL_ATTEMPTS)
        .collect()
        .await;
    let mut handed_on: Vec<Claimed> = Vec::new();
    for result in results {
        match result {
            Ok(Some(claimed)) => handed_on.push(claimed),
            Ok(None) => {}
            // A failed attempt-keeping step leaves its delivery pending and due: the sweep finds it.
            Err(error) => console_error!(
                "a first attempt was not recorded: {}",
                error.detail().unwrap_or(&error.body.message)
            ),
        }
    }
    hand_on(env, db, tenant, &handed_on).await
}

/// Lets go of the leases of first attempts this invocation has no room for, and puts each on the
/// queue as a task of its own. Not queued, they stay pending and the sweep finds them.
async fn hand_on(env: &Env, db: &Db, tenant: &Tenant, claimed: &[Claimed]) -> Result<(), ApiError> {
    let Some(first) = claimed.first() else {
        return Ok(());
    };
    let ids: Vec<&DeliveryId> = claimed.iter().map(|c| &c.delivery_id).collect();
    edge::db::webhook_deliveries::release(db, tenant, &ids, &first.lease).await?;
    let tasks = claimed
        .iter()
        .map(|c| WebhookTask::Deliver {
            business_id: tenant.business_id.clone(),
            delivery_id: c.delivery_id.clone(),
            attempt: c.attempt,
        })
        .collect();
    console_log!("{} first attempts handed to tasks of their own", claimed.len());
    if let Err(error) = outbox::enqueue(env, tasks, 0).await {
        console_error!("{} first attempts left for the sweep: {error}", claimed.len());
    }
    Ok(())
}

/// Attempts the delivery if it is still at `attempt` and nobody else holds it.
async fn deliver(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    delivery_id: &DeliveryId,
    attempt: u32,
) -> Result<(), ApiError> {
    let Some((claimed, endpoint)) = webhook_delivery::claim(
        db,
        &secrets_key::keyring(env)?,
        tenant,
        delivery_id,
        attempt,
        runtime::now(),
    )
    .await?
    else {
        // Settled already, or another worker holds it: a repeated queue delivery.
        return Ok(());
    };
    self::attempt(env, db, tenant, &claimed, endpoint.as_ref()).await
}

/// Makes the attempt the lease was taken for, and schedules the next one when it failed in a
/// way worth retrying.
async fn attempt(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    endpoint: Option<&Endpoint>,
) -> Result<(), ApiError> {
    let outcome = webhook_delivery::attempt(env, db, tenant, claimed, endpoint, runtime::now()).await?;
    let (delivery_id, attempt) = (&claimed.delivery_id, claimed.attempt);
    console_log!(
        "webhook delivery {delivery_id} ({}) attempt {attempt}: {outcome:?}",
        claimed.event_type
    );
    if let AttemptOutcome::Retrying { next } = outcome {
        let delay = ((next.millis() - runtime::now().millis()).max(0) as f64 / 1000.0).ceil() as u32;
        let task = WebhookTask::Deliver {
            business_id: tenant.business_id.clone(),
            delivery_id: delivery_id.clone(),
            attempt: attempt + 1,
        };
        if let Err(error) = outbox::enqueue(env, vec![task], delay).await {
            console_error!("delivery {delivery_id}: retry left for the sweep: {error}");
        }
    }
    Ok(())
}
