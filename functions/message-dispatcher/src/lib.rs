//! The consumer of `crm-edge-outbound-messages`: each queue message names one outbound message,
//! which is sent through its channel's provider and settled `sent` or `failed`, or put back on
//! the queue with a delay when the provider is busy or down.
//!
//! The export below is what `#[event(queue)]` generates, written out: worker 0.8.7's
//! `MessageBatch` does not expose a message's delivery count (`attempts`), and the retry policy
//! (give up on the 5th attempt, with the last reason) needs it. Acknowledging and retrying go
//! through the runtime's own message objects, which report failure instead of panicking.

mod dispatch;
mod transport;

use futures_util::future::join_all;
use shared::edge::outbound::QueuedSend;
use shared::edge::queue::{self, Settle};
use worker::worker_sys::MessageBatch;
use worker::{Env, console_error};

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

/// Handles every message of the batch at once; each is acknowledged or retried on its own.
async fn consume(batch: MessageBatch, env: Env) {
    let env = &env;
    join_all(queue::messages(&batch).into_iter().map(|message| async move {
        let attempt = queue::attempts(&message);
        let settle = match queue::read_body::<QueuedSend>(&message) {
            Some(job) => dispatch::handle(env, &job, attempt).await,
            None => {
                // Retrying a message that cannot be read would fail the same way every time.
                console_error!("dropping an outbound queue message that is not a QueuedSend");
                Settle::Ack
            }
        };
        queue::settle(&message, settle);
    }))
    .await;
}
