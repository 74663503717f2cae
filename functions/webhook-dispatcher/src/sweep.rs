//! The periodic sweep: events recorded but never dispatched (the queue refused them) and
//! pending deliveries long past their time (a retry message lost) go back on the queue. It
//! looks across businesses, and hands each item back under its own business.

use domain::ids::{BusinessId, EventId};
use edge::outbox::{self, WebhookTask};
use edge::{DB, db, runtime};
use std::collections::BTreeMap;
use worker::{Env, console_error, console_log};

/// Work is lost once it is this late: well past any queue delay or lease.
const GRACE_SECONDS: i64 = 120;
const PER_SWEEP: usize = 500;

pub async fn run(env: &Env) {
    let now = runtime::now();
    let lost = match env.d1(DB) {
        Ok(db) => lost_work(&db, now).await,
        Err(error) => {
            console_error!("webhook sweep: no database: {error}");
            return;
        }
    };
    let tasks = match lost {
        Ok(tasks) => tasks,
        Err(error) => {
            console_error!(
                "webhook sweep failed: {}",
                error.detail().unwrap_or(&error.body.message)
            );
            return;
        }
    };
    if tasks.is_empty() {
        return;
    }
    let count = tasks.len();
    match outbox::enqueue(env, tasks, 0).await {
        Ok(()) => console_log!("webhook sweep: re-queued {count} lost tasks"),
        Err(error) => console_error!("webhook sweep: re-queueing failed: {error}"),
    }
}

/// Events recorded over [`GRACE_SECONDS`] ago and never dispatched, and pending deliveries over
/// [`GRACE_SECONDS`] overdue that nobody holds, as the tasks that take them up again.
async fn lost_work(
    db: &worker::D1Database,
    now: domain::time::Timestamp,
) -> Result<Vec<WebhookTask>, domain::error::ApiError> {
    let before = now.plus_seconds(-GRACE_SECONDS);
    let mut by_business: BTreeMap<BusinessId, Vec<EventId>> = BTreeMap::new();
    for (business_id, event_id) in db::webhook_events::undispatched(db, before, PER_SWEEP).await? {
        by_business.entry(business_id).or_default().push(event_id);
    }
    let mut tasks: Vec<WebhookTask> = by_business
        .iter()
        .flat_map(|(business_id, ids)| outbox::dispatch_tasks(business_id, ids))
        .collect();
    let overdue = db::webhook_deliveries::overdue(db, before, now, PER_SWEEP).await?;
    tasks.extend(
        overdue
            .into_iter()
            .map(|(business_id, delivery_id, attempt)| WebhookTask::Deliver {
                business_id,
                delivery_id,
                attempt,
            }),
    );
    Ok(tasks)
}
