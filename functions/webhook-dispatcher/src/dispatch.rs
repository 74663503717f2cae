//! One webhook task: dispatching events (create their deliveries, record the CRM work they mean,
//! attempt each, keeping their bodies with the attempts) or attempting one delivery again. Retries are new queue messages delayed by the endpoint's
//! schedule; the queue's own redelivery only covers our faults (D1 unavailable, a crash).

use domain::error::ApiError;
use domain::ids::{DeliveryId, EventId};
use domain::tenant::Tenant;
use edge::Env;
use edge::db::Db;
use edge::db::webhook_attempts::AttemptOutcome;
use edge::db::webhook_deliveries::Claimed;
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

/// What became of a first attempt a dispatch claimed (or an error: it was not recorded).
enum FirstAttempt {
    /// Made, and recorded with what it settles of its event.
    Recorded,
    /// Past the invocation's share of D1 queries: handed to a task of its own.
    HandedOn,
}

/// Two D1 round trips for a first attempt: one batch reads the events (and what their bodies,
/// the CRM planning and the fan-out need) and claims their deliveries, and one batch after each
/// POST records it with what it settles of its event (the body, kept for retries and replays,
/// and the mark that it was dispatched). A last batch settles only what no attempt did.
async fn dispatch(env: &Env, tenant: &Tenant, event_ids: &[EventId]) -> Result<(), ApiError> {
    let db = env.d1(DB)?;
    let keys = secrets_key::keyring(env)?;
    let now = runtime::now();
    let secret = env.secret(MEDIA_LINK_SECRET);
    let link_secret = secret.as_deref().map(str::as_bytes);
    let dispatch =
        webhook_delivery::dispatch(&db, &keys, tenant, event_ids, link_secret, now, PARALLEL_ATTEMPTS)
            .await?;
    for (event_id, reason) in &dispatch.payloads.unbuildable {
        console_error!("event {event_id} is dead-lettered alone, the rest of its chunk goes on: {reason}");
    }
    // Before the events are marked dispatched: a failure here leaves them to be dispatched (and
    // planned) again, and planning twice records the work once. The deliveries claimed meanwhile
    // are claimed again once their lease runs out.
    edge::crm::sync::plan(env, &db, tenant, &dispatch.connectors, &dispatch.events).await?;
    let (db, dispatch) = (&db, &dispatch);
    let results: Vec<(&Claimed, Result<FirstAttempt, ApiError>)> = stream::iter(&dispatch.due)
        .map(|(claimed, endpoint)| async move {
            // Many events to many endpoints can be more attempts than one invocation's D1 queries
            // allow: past its share, a first attempt is handed to a task of its own.
            if env.usage().d1_queries >= DISPATCH_QUERY_CEILING {
                return (claimed, Ok(FirstAttempt::HandedOn));
            }
            let made = async {
                let settling = dispatch.settling(db, tenant, &[&claimed.event_id])?;
                let outcome = webhook_delivery::attempt_with(
                    env,
                    db,
                    tenant,
                    claimed,
                    endpoint.as_ref(),
                    runtime::now(),
                    settling.into_iter().collect(),
                )
                .await?;
                after(env, tenant, claimed, outcome).await;
                Ok(FirstAttempt::Recorded)
            };
            (claimed, made.await)
        })
        .buffer_unordered(PARALLEL_ATTEMPTS)
        .collect()
        .await;
    let mut handed_on: Vec<&Claimed> = Vec::new();
    let mut recorded: Vec<&EventId> = Vec::new();
    for (claimed, result) in results {
        match result {
            Ok(FirstAttempt::HandedOn) => handed_on.push(claimed),
            Ok(FirstAttempt::Recorded) => recorded.push(&claimed.event_id),
            // A failed attempt-keeping step leaves its delivery pending and due: the sweep finds
            // it, and its event is settled below.
            Err(error) => console_error!(
                "a first attempt was not recorded: {}",
                error.detail().unwrap_or(&error.body.message)
            ),
        }
    }
    dispatch.finish(db, tenant, &recorded, &handed_on).await?;
    hand_on(env, tenant, &handed_on).await;
    Ok(())
}

/// Puts the first attempts this invocation had no room for on the queue, each as a task of its
/// own; their leases were let go by the dispatch's last batch. Not queued, they stay pending and
/// the sweep finds them.
async fn hand_on(env: &Env, tenant: &Tenant, claimed: &[&Claimed]) {
    if claimed.is_empty() {
        return;
    }
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
    let secret = env.secret(MEDIA_LINK_SECRET);
    let link_secret = secret.as_deref().map(str::as_bytes);
    let Some(claimed) = webhook_delivery::with_body(db, tenant, claimed, link_secret, runtime::now()).await?
    else {
        return Ok(());
    };
    let outcome =
        webhook_delivery::attempt(env, db, tenant, &claimed, endpoint.as_ref(), runtime::now()).await?;
    after(env, tenant, &claimed, outcome).await;
    Ok(())
}

/// Logs how an attempt ended, and schedules the next one when it failed in a way worth retrying.
async fn after(env: &Env, tenant: &Tenant, claimed: &Claimed, outcome: AttemptOutcome) {
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
}
