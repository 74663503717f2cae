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

impl crate::platform::queue::Work for WebhookTask {
    const QUEUE: &'static str = WEBHOOKS;

    fn business(&self) -> Option<BusinessId> {
        match self {
            Self::Dispatch { business_id, .. } | Self::Deliver { business_id, .. } => {
                Some(business_id.clone())
            }
        }
    }
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
    crate::platform::queue::send_all(env, &tasks, delay_seconds).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Level;
    use crate::testing::Fixture;
    use domain::platform::{Resource, SUBREQUESTS};

    fn ids(count: u8) -> Vec<EventId> {
        (0..count).map(|n| EventId::generate([n; 16])).collect()
    }

    #[test]
    fn committed_events_go_to_the_webhook_queue_fifty_to_a_task_in_order() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        let events = ids(120);
        fixture.run(publish(&fixture.env, &tenant, events.clone()));
        let tasks: Vec<WebhookTask> = fixture.queued(WEBHOOKS);
        let chunks: Vec<Vec<EventId>> = tasks
            .into_iter()
            .map(|task| match task {
                WebhookTask::Dispatch {
                    business_id,
                    event_ids,
                } if business_id == tenant.business_id => event_ids,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 20]);
        assert_eq!(chunks.concat(), events);
    }

    #[test]
    fn a_task_reads_on_the_wire_as_the_consumer_expects() {
        let business_id = BusinessId::generate([1; 16]);
        let dispatch = WebhookTask::Dispatch {
            business_id: business_id.clone(),
            event_ids: ids(1),
        };
        let deliver = WebhookTask::Deliver {
            business_id,
            delivery_id: DeliveryId::generate([2; 16]),
            attempt: 3,
        };
        assert_eq!(
            serde_json::to_string(&dispatch).unwrap_or_default(),
            r#"{"task":"dispatch","business_id":"01010101-0101-4101-8101-010101010101","event_ids":["00000000-0000-4000-8000-000000000000"]}"#
        );
        assert_eq!(
            serde_json::to_string(&deliver).unwrap_or_default(),
            r#"{"task":"deliver","business_id":"01010101-0101-4101-8101-010101010101","delivery_id":"02020202-0202-4202-8202-020202020202","attempt":3}"#
        );
    }

    #[test]
    fn nothing_to_publish_sends_nothing() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        fixture.run(publish(&fixture.env, &tenant, Vec::new()));
        assert!(fixture.stack.queued(WEBHOOKS).is_empty());
        assert_eq!(fixture.env.usage().subrequests, 0);
    }

    #[test]
    fn a_queue_that_refuses_leaves_the_events_for_the_sweep_and_says_so() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        fixture
            .env
            .charge(Resource::Subrequest, SUBREQUESTS)
            .unwrap_or_else(|error| panic!("{error}"));
        fixture.run(publish(&fixture.env, &tenant, ids(3)));
        assert!(fixture.stack.queued(WEBHOOKS).is_empty());
        let logged = fixture.stack.logged(Level::Error, "3 webhook events of business");
        assert_eq!(logged.len(), 1, "{:?}", fixture.stack.logs());
        assert!(logged[0].contains("left for the sweep"), "{}", logged[0]);
    }
}
