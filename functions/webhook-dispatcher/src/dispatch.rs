//! A batch of webhook tasks: dispatching events (create their deliveries, record the CRM work
//! they mean, attempt each, keeping their bodies with the attempts) and attempting deliveries
//! again. Retries are new queue messages delayed by the endpoint's schedule; the queue's own
//! redelivery only covers our faults (D1 unavailable, a crash).

use domain::error::ApiError;
use domain::ids::{BusinessId, DeliveryId, EventId};
use domain::tenant::Tenant;
use edge::Env;
use edge::db::Db;
use edge::db::webhook_attempts::AttemptOutcome;
use edge::db::webhook_deliveries::Claimed;
use edge::events::outbox::{self, DISPATCH_CHUNK, WebhookTask};
use edge::platform::queue::Settle;
use edge::{console_error, console_log};
use edge::{events::webhook_delivery, runtime};
use futures_util::StreamExt;
use futures_util::stream;
use std::pin::pin;

/// Attempts made at once by a dispatch, and queued attempts at once beside it: enough to keep a
/// slow receiver from holding up the rest.
const PARALLEL_ATTEMPTS: usize = 16;
/// No attempt, dispatched or queued, starts once the invocation has made this many D1 queries:
/// what is under way by then (a dispatch's [`PARALLEL_ATTEMPTS`] first attempts and as many queued
/// ones, a few queries each, and the dispatch's last batch) must still be able to record how it
/// ended within the invocation's 1,000.
const START_CEILING: u32 = domain::platform::D1_QUERIES - 250;
/// D1 queries a dispatch makes besides its first attempts (its read, CRM planning, its last
/// batch), and at most per first attempt (recording it): a dispatch starts only if, to one
/// endpoint an event, it can make all its first attempts below [`START_CEILING`].
const DISPATCH_QUERIES: u32 = 8;
const FIRST_ATTEMPT_QUERIES: u32 = 4;
/// No first attempt starts this long after its dispatch did: the rest are handed to tasks of
/// their own. A dispatch thus ends within this and one attempt's longest timeout, well before
/// the sweep takes its events for lost (`maintenance::UNDISPATCHED_GRACE_SECONDS`), which would
/// attempt again what it has not recorded yet.
const FIRST_ATTEMPTS_SECONDS: i64 = 60;
/// Our own failures are retried by the queue after this long, a few times.
const OWN_FAULT_RETRY_SECONDS: u32 = 5;

/// A batch's work, done together: the queued attempts [`PARALLEL_ATTEMPTS`] at a time, then the
/// dispatch tasks of each business merged into dispatches of up to [`DISPATCH_CHUNK`] events (one
/// read for all their events, one write for the attempts that end together), made one after
/// another. A task that
/// cannot start within the invocation's D1 queries goes back on the queue as a new message, not
/// as a retry: it has not failed.
pub async fn handle(env: Env, work: Vec<(WebhookTask, u32)>) -> Vec<Settle> {
    let env = &env;
    let mut dispatches: Vec<Merged> = Vec::new();
    let mut deliveries = Vec::new();
    for (index, (task, _)) in work.iter().enumerate() {
        match task {
            WebhookTask::Dispatch {
                business_id,
                event_ids,
            } => merge(&mut dispatches, index, business_id, event_ids),
            WebhookTask::Deliver {
                business_id,
                delivery_id,
                attempt,
            } => deliveries.push((index, business_id, delivery_id, *attempt)),
        }
    }
    let mut outcomes: Vec<(Vec<usize>, Outcome)> = stream::iter(deliveries)
        .map(|(index, business_id, delivery_id, attempt)| async move {
            if env.usage().d1_queries >= START_CEILING {
                return (vec![index], None);
            }
            let tenant = Tenant::for_background(business_id.clone());
            let outcome = match env.db() {
                Ok(db) => deliver(env, &db, &tenant, delivery_id, attempt).await,
                Err(error) => Err(error),
            };
            (vec![index], Some(outcome))
        })
        .buffer_unordered(PARALLEL_ATTEMPTS)
        .collect()
        .await;
    for merged in dispatches {
        let events = u32::try_from(merged.event_ids.len()).unwrap_or(u32::MAX);
        let needs = DISPATCH_QUERIES.saturating_add(events.saturating_mul(FIRST_ATTEMPT_QUERIES));
        let outcome = if env.usage().d1_queries.saturating_add(needs) > START_CEILING {
            None
        } else {
            let tenant = Tenant::for_background(merged.business_id.clone());
            Some(dispatch(env, &tenant, &merged.event_ids).await)
        };
        outcomes.push((merged.tasks, outcome));
    }

    let mut settles = vec![Settle::Ack; work.len()];
    let mut not_started = Vec::new();
    for (tasks, outcome) in outcomes {
        match outcome {
            Some(Ok(())) => {}
            Some(Err(error)) => {
                console_error!(
                    "webhook work of {} queue messages failed, the queue will retry it: {}",
                    tasks.len(),
                    error.detail().unwrap_or(&error.body.message)
                );
                for index in tasks {
                    settles[index] = Settle::RetryIn(OWN_FAULT_RETRY_SECONDS);
                }
            }
            None => not_started.extend(tasks),
        }
    }
    if !not_started.is_empty() {
        let tasks = not_started.iter().map(|&index| work[index].0.clone()).collect();
        console_log!(
            "{} webhook tasks put back on the queue, past this invocation's D1 queries",
            not_started.len()
        );
        if let Err(error) = outbox::enqueue(env, tasks, 0).await {
            console_error!("putting webhook tasks back failed, the queue will retry them: {error}");
            for index in not_started {
                settles[index] = Settle::RetryIn(OWN_FAULT_RETRY_SECONDS);
            }
        }
    }
    settles
}

/// How the work of some of the batch's tasks went; None: it did not start.
type Outcome = Option<Result<(), ApiError>>;

/// Dispatch tasks of one business merged into one dispatch: their events, each once, and which
/// of the batch's tasks they came from.
struct Merged<'a> {
    business_id: &'a BusinessId,
    event_ids: Vec<EventId>,
    tasks: Vec<usize>,
}

/// Adds the task at `index` to the last dispatch of its business while its events fit, or
/// starts another.
fn merge<'a>(
    dispatches: &mut Vec<Merged<'a>>,
    index: usize,
    business_id: &'a BusinessId,
    event_ids: &[EventId],
) {
    let fits = dispatches
        .iter()
        .rposition(|merged| merged.business_id == business_id)
        .filter(|&at| dispatches[at].event_ids.len() + event_ids.len() <= DISPATCH_CHUNK);
    let at = fits.unwrap_or_else(|| {
        dispatches.push(Merged {
            business_id,
            event_ids: Vec::with_capacity(event_ids.len()),
            tasks: Vec::new(),
        });
        dispatches.len() - 1
    });
    let merged = &mut dispatches[at];
    for event_id in event_ids {
        if !merged.event_ids.contains(event_id) {
            merged.event_ids.push(event_id.clone());
        }
    }
    merged.tasks.push(index);
}

/// At most two D1 round trips for a first attempt: one batch reads the events (and what their
/// bodies, the CRM planning and the fan-out need) and the first attempts they are due, writing
/// nothing, and one batch records the attempts that ended together (up to [`PARALLEL_ATTEMPTS`]),
/// a delivery row for each that did not deliver, and the events whose last first attempt they
/// are (the body, kept for retries and replays, and the mark that it was dispatched). A last
/// batch settles only what no attempt did.
async fn dispatch(env: &Env, tenant: &Tenant, event_ids: &[EventId]) -> Result<(), ApiError> {
    let db = env.db()?;
    let keys = env.keyring()?;
    let now = runtime::now();
    let links = env.media_links();
    let dispatch = webhook_delivery::dispatch(&db, &keys, tenant, event_ids, links.as_deref(), now).await?;
    for (event_id, reason) in &dispatch.payloads.unbuildable {
        console_error!("event {event_id} is dead-lettered alone, the rest of its chunk goes on: {reason}");
    }
    // Before the events are marked dispatched: a failure here leaves them to be dispatched (and
    // planned) again, and planning twice records the work once.
    edge::crm::sync::plan(env, &db, tenant, &dispatch.connectors, &dispatch.events).await?;
    let (db, dispatch) = (&db, &dispatch);
    let attempts = stream::iter(&dispatch.due)
        .map(|(claimed, endpoint)| async move {
            // Many events to many endpoints can be more attempts than one invocation's D1 queries
            // allow, or than fit in FIRST_ATTEMPTS_SECONDS: past either, a first attempt is handed
            // to a task of its own (None).
            let late = runtime::now().millis() - now.millis() > FIRST_ATTEMPTS_SECONDS * 1000;
            if env.usage().d1_queries >= START_CEILING || late {
                return (claimed, Ok(None));
            }
            let made = webhook_delivery::attempt_unrecorded(
                env,
                db,
                tenant,
                claimed,
                endpoint.as_ref(),
                runtime::now(),
            )
            .await;
            (claimed, made.map(Some))
        })
        .buffer_unordered(PARALLEL_ATTEMPTS)
        .ready_chunks(PARALLEL_ATTEMPTS);
    let mut attempts = pin!(attempts);
    let mut handed_on: Vec<&Claimed> = Vec::new();
    let mut recorded: Vec<&EventId> = Vec::new();
    let mut unrecorded: Vec<&EventId> = Vec::new();
    while let Some(ended) = attempts.next().await {
        let mut made = Vec::with_capacity(ended.len());
        let mut statements = Vec::new();
        for (claimed, result) in ended {
            match result {
                Ok(None) => handed_on.push(claimed),
                Ok(Some((outcome, record))) => {
                    statements.extend(record);
                    made.push((claimed, outcome));
                }
                Err(error) => {
                    console_error!(
                        "a first attempt was not made: {}",
                        error.detail().unwrap_or(&error.body.message)
                    );
                    unrecorded.push(&claimed.event_id);
                }
            }
        }
        if made.is_empty() {
            continue;
        }
        let events: Vec<&EventId> = made.iter().map(|(claimed, _)| &claimed.event_id).collect();
        let kept = async {
            let completed = dispatch.completed_by(&recorded, &events);
            statements.splice(0..0, dispatch.settling(db, tenant, &completed)?);
            Ok::<_, ApiError>(db.batch(statements).await?)
        };
        match kept.await {
            Ok(_) => {
                recorded.extend(events);
                for (claimed, outcome) in made {
                    after(env, tenant, claimed, outcome).await;
                }
            }
            // Nothing of them was written, and their events are not marked dispatched: the sweep
            // dispatches them again, and only what no attempt recorded is attempted.
            Err(error) => {
                console_error!("{} first attempts were not recorded: {error}", made.len());
                unrecorded.extend(events);
            }
        }
    }
    dispatch
        .finish(db, tenant, &recorded, &unrecorded, &handed_on)
        .await?;
    hand_on(env, tenant, &handed_on).await;
    Ok(())
}

/// Puts the first attempts this invocation had no room for on the queue, each as a task of its
/// own; the dispatch's last batch gave their deliveries rows. Not queued, they stay pending and
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
    let Some((claimed, endpoint)) =
        webhook_delivery::claim(db, &*env.keyring()?, tenant, delivery_id, attempt, runtime::now()).await?
    else {
        // Settled already, or another worker holds it: a repeated queue delivery.
        return Ok(());
    };
    let links = env.media_links();
    let Some(claimed) =
        webhook_delivery::with_body(db, tenant, claimed, links.as_deref(), runtime::now()).await?
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
