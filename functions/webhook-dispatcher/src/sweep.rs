//! The periodic sweep: events recorded but never dispatched (the queue refused them) and
//! pending deliveries long past their time (a retry message lost) go back on the queue. It
//! looks across businesses, and hands each item back under its own business.

use edge::events::{self, WebhookTask};
use edge::{DB, runtime, webhooks_repo};
use std::collections::BTreeMap;
use worker::{Env, console_error, console_log};

/// Work is lost once it is this late: well past any queue delay or lease.
const GRACE_SECONDS: i64 = 120;
const PER_SWEEP: usize = 500;

pub async fn run(env: &Env) {
    let now = runtime::now();
    let lost = match env.d1(DB) {
        Ok(db) => webhooks_repo::lost_work(&db, now.plus_seconds(-GRACE_SECONDS), now, PER_SWEEP).await,
        Err(error) => {
            console_error!("webhook sweep: no database: {error}");
            return;
        }
    };
    let lost = match lost {
        Ok(lost) => lost,
        Err(error) => {
            console_error!(
                "webhook sweep failed: {}",
                error.detail().unwrap_or(&error.body.message)
            );
            return;
        }
    };
    let mut by_business: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tenant, event_id) in lost.undispatched {
        by_business
            .entry(tenant.business_id.as_str().to_owned())
            .or_default()
            .push(event_id);
    }
    let mut tasks: Vec<WebhookTask> = by_business
        .into_iter()
        .flat_map(|(business_id, ids)| {
            ids.chunks(events::DISPATCH_CHUNK)
                .map(|chunk| WebhookTask::Dispatch {
                    business_id: business_id.clone(),
                    event_ids: chunk.to_vec(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    tasks.extend(
        lost.overdue
            .into_iter()
            .map(|(tenant, delivery_id, attempt)| WebhookTask::Deliver {
                business_id: tenant.business_id.as_str().to_owned(),
                delivery_id,
                attempt,
            }),
    );
    if tasks.is_empty() {
        return;
    }
    let count = tasks.len();
    match events::enqueue(env, tasks, 0).await {
        Ok(()) => console_log!("webhook sweep: re-queued {count} lost tasks"),
        Err(error) => console_error!("webhook sweep: re-queueing failed: {error}"),
    }
}
