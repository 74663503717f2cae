//! The consumer of `crm-edge-webhooks`: fans each recorded event out to the business's
//! subscribed endpoints and makes every delivery attempt, never inside the request that caused
//! the event. Its cron runs the maintenance sweep (`edge::maintenance`) every minute: lost
//! webhook work and lost sends go back on their queues, and expired history is deleted.

mod dispatch;

use worker::{ScheduleContext, ScheduledEvent, event};

edge::queue_consumer!(edge::outbox::WebhookTask, dispatch::handle);

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: worker::Env, _ctx: ScheduleContext) {
    edge::maintenance::run_scheduled(env).await;
}
