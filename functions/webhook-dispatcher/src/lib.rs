//! The consumer of `crm-edge-webhooks`: fans each recorded event out to the business's
//! subscribed endpoints and makes every delivery attempt, never inside the request that caused
//! the event. Its cron runs the maintenance sweep (`edge::ops::maintenance`) every minute: lost
//! webhook work and lost sends go back on their queues, and expired history is deleted.

mod dispatch;

pub use dispatch::handle;

edge::queue_consumer!(edge::events::outbox::WebhookTask, batch dispatch::handle);

#[cfg(target_arch = "wasm32")]
#[worker::event(scheduled)]
async fn scheduled(_event: worker::ScheduledEvent, env: worker::Env, _ctx: worker::ScheduleContext) {
    edge::ops::maintenance::run_scheduled(edge::Env::new(env, "cron")).await;
}
