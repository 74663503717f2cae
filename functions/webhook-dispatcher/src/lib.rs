//! The consumer of `crm-edge-webhooks`: fans each recorded event out to the business's
//! subscribed endpoints and makes every delivery attempt, never inside the request that caused
//! the event. A periodic sweep re-queues work the queue lost.
//!
//! The queue export is written out (as in message-dispatcher) so that each message is read,
//! acknowledged and retried through the runtime's own objects, which report failure instead of
//! panicking.

mod dispatch;
mod sweep;

use futures_util::future::join_all;
use shared::edge::events::WebhookTask;
use shared::edge::queue::{self, Settle};
use worker::worker_sys::MessageBatch;
use worker::{Env, ScheduleContext, ScheduledEvent, console_error, event};

mod export {
    use worker::wasm_bindgen::{JsValue, prelude::wasm_bindgen};

    #[wasm_bindgen(
        wasm_bindgen = ::worker::wasm_bindgen,
        wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
        js_sys = ::worker::js_sys
    )]
    pub async fn queue(
        batch: ::worker::worker_sys::MessageBatch,
        env: ::worker::Env,
        _ctx: ::worker::worker_sys::Context,
    ) -> Result<JsValue, JsValue> {
        super::consume(batch, env).await;
        Ok(JsValue::UNDEFINED)
    }
}

async fn consume(batch: MessageBatch, env: Env) {
    let env = &env;
    join_all(queue::messages(&batch).into_iter().map(|message| async move {
        let settle = match queue::read_body::<WebhookTask>(&message) {
            Some(task) => dispatch::handle(env, task, queue::attempts(&message)).await,
            None => {
                console_error!("dropping a webhook queue message that is not a WebhookTask");
                Settle::Ack
            }
        };
        queue::settle(&message, settle);
    }))
    .await;
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    sweep::run(&env).await;
}
