//! The consumer of `crm-edge-webhooks`: fans each recorded event out to the business's
//! subscribed endpoints and makes every delivery attempt, never inside the request that caused
//! the event. A periodic sweep re-queues work the queue lost.

mod dispatch;
mod sweep;

use worker::{Env, ScheduleContext, ScheduledEvent, event};

edge::queue_consumer!(edge::outbox::WebhookTask, dispatch::handle);

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    sweep::run(&env).await;
}
