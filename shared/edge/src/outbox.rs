//! Handing recorded events to the webhook queue. Events are written with their change
//! (`db::webhook_events`); after the batch commits, [`publish`] puts their ids on the queue, whose
//! consumer (webhook-dispatcher) fans them out to endpoints and delivers. Should the queue refuse
//! them, the consumer's periodic sweep finds events never dispatched.

use crate::Env;
use crate::console_error;
use domain::ids::{BusinessId, DeliveryId, EventId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};

/// The queue binding: producer in every function that emits, consumer in webhook-dispatcher.
pub const WEBHOOKS: &str = "WEBHOOKS";

/// Event ids per dispatch task: one task's deliveries fit one consumer invocation.
pub const DISPATCH_CHUNK: usize = 50;

/// The work on the webhook queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum WebhookTask {
    /// Fix the payload of these events and create their deliveries, then attempt each.
    Dispatch {
        business_id: BusinessId,
        event_ids: Vec<EventId>,
    },
    /// Attempt this delivery; `attempt` is the attempt of the current round it will be.
    Deliver {
        business_id: BusinessId,
        delivery_id: DeliveryId,
        attempt: u32,
    },
}

/// The dispatch tasks of a business's events, [`DISPATCH_CHUNK`] events each.
pub fn dispatch_tasks(business_id: &BusinessId, event_ids: &[EventId]) -> Vec<WebhookTask> {
    event_ids
        .chunks(DISPATCH_CHUNK)
        .map(|chunk| WebhookTask::Dispatch {
            business_id: business_id.clone(),
            event_ids: chunk.to_vec(),
        })
        .collect()
}

/// Hands committed events to the webhook queue. A failure here loses nothing (the events are in
/// D1 and the sweep dispatches them); it only delays them, so it is logged, not returned.
pub async fn publish(env: &Env, tenant: &Tenant, event_ids: Vec<EventId>) {
    if event_ids.is_empty() {
        return;
    }
    let tasks = dispatch_tasks(&tenant.business_id, &event_ids);
    if let Err(error) = enqueue(env, tasks, 0).await {
        console_error!(
            "{} webhook events of business {} left for the sweep: {error}",
            event_ids.len(),
            tenant.business_id
        );
    }
}

/// Puts tasks on the webhook queue after `delay_seconds`.
pub async fn enqueue(env: &Env, tasks: Vec<WebhookTask>, delay_seconds: u32) -> worker::Result<()> {
    crate::queue::send_all(env, WEBHOOKS, &tasks, delay_seconds).await
}
