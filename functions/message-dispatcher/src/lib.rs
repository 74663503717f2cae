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

use dispatch::Settle;
use futures_util::future::join_all;
use shared::edge::outbound::QueuedSend;
use worker::js_sys::{Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Message as QueueMessage, MessageBatch};
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
    let messages = match batch.messages() {
        Ok(messages) => messages,
        Err(error) => {
            console_error!("the outbound batch could not be read: {error:?}");
            return;
        }
    };
    let env = &env;
    join_all(messages.iter().map(|value| async move {
        let message: QueueMessage = value.unchecked_into();
        let attempt = attempts(&message);
        let settle = match read_body(&message) {
            Some(job) => dispatch::handle(env, &job, attempt).await,
            None => {
                // Retrying a message that cannot be read would fail the same way every time.
                console_error!("dropping an outbound queue message that is not a QueuedSend");
                Settle::Ack
            }
        };
        settle_message(&message, settle);
    }))
    .await;
}

/// How many times this message has been delivered, this time included (1 on first delivery).
fn attempts(message: &QueueMessage) -> u32 {
    Reflect::get(message, &JsValue::from_str("attempts"))
        .ok()
        .and_then(|value| value.as_f64())
        .filter(|count| count.is_finite() && *count >= 1.0)
        .map_or(1, |count| count.min(f64::from(u32::MAX)) as u32)
}

fn read_body(message: &QueueMessage) -> Option<QueuedSend> {
    let body = message.body().ok()?;
    let text = worker::js_sys::JSON::stringify(&body).ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}

fn settle_message(message: &QueueMessage, settle: Settle) {
    let result = match settle {
        Settle::Ack => message.ack(),
        Settle::RetryIn(seconds) => {
            let options = Object::new();
            let _ = Reflect::set(
                &options,
                &JsValue::from_str("delaySeconds"),
                &JsValue::from_f64(f64::from(seconds)),
            );
            message.retry(options.into())
        }
    };
    if let Err(error) = result {
        console_error!("settling an outbound queue message failed: {error:?}");
    }
}
