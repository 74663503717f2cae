//! Consuming a queue one message at a time, through the runtime's own message objects: reading
//! a body, counting deliveries, and acknowledging or retrying, each reporting failure instead of
//! panicking (worker 0.8.7's typed wrappers unwrap, and do not expose `attempts`). A consumer
//! function exports its handler with [`queue_consumer!`](crate::queue_consumer). And the one way
//! work is put on a queue in bulk ([`send_all`]).

use crate::Env;
use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use worker::js_sys::{Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Message as QueueMessage, MessageBatch};
use worker::{BatchMessageBuilder, MessageBuilder, console_error};

/// The most messages Queues takes in one `sendBatch`.
const BATCH_LIMIT: usize = 100;

/// Puts `items` on the queue bound as `binding`, [`BATCH_LIMIT`] per call, each delivered after
/// `delay_seconds`. Stops at the first refused call (the items before it are queued).
pub async fn send_all<T: Serialize + Clone>(
    env: &Env,
    binding: &str,
    items: &[T],
    delay_seconds: u32,
) -> worker::Result<()> {
    let queue = env.queue(binding)?;
    for chunk in items.chunks(BATCH_LIMIT) {
        let batch = BatchMessageBuilder::new()
            .messages(
                chunk
                    .iter()
                    .cloned()
                    .map(|item| MessageBuilder::new(item).delay_seconds(delay_seconds).build()),
            )
            .build();
        queue.send_batch(batch).await?;
    }
    Ok(())
}

/// What the queue should do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Ack,
    RetryIn(u32),
}

/// The messages of a batch; none (logged) if the batch cannot be read.
pub fn messages(batch: &MessageBatch) -> Vec<QueueMessage> {
    match batch.messages() {
        Ok(messages) => messages.iter().map(|value| value.unchecked_into()).collect(),
        Err(error) => {
            console_error!("a queue batch could not be read: {error:?}");
            Vec::new()
        }
    }
}

/// How many times this message has been delivered, this time included (1 on first delivery).
pub fn attempts(message: &QueueMessage) -> u32 {
    Reflect::get(message, &JsValue::from_str("attempts"))
        .ok()
        .and_then(|value| value.as_f64())
        .filter(|count| count.is_finite() && *count >= 1.0)
        .map_or(1, |count| count.min(f64::from(u32::MAX)) as u32)
}

/// The body as `T`, or None when it is not one.
pub fn read_body<T: DeserializeOwned>(message: &QueueMessage) -> Option<T> {
    let body = message.body().ok()?;
    let text = worker::js_sys::JSON::stringify(&body).ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}

pub fn settle(message: &QueueMessage, settle: Settle) {
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
        console_error!("settling a queue message failed: {error:?}");
    }
}

/// Handles every message of the batch at once, each settled on its own as `handle` decides from
/// its body and delivery count. A body that is not a `T` is dropped: it would fail every retry.
/// The batch is one invocation: its messages share its limits (`crate::env`).
pub async fn consume<T, F, Fut>(batch: MessageBatch, env: worker::Env, handle: F)
where
    T: DeserializeOwned,
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    let env = Env::new(env, "queue");
    consume_all(&batch, &env, &handle).await;
    env.report();
}

async fn consume_all<T, F, Fut>(batch: &MessageBatch, env: &Env, handle: &F)
where
    T: DeserializeOwned,
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    join_all(messages(batch).into_iter().map(|message| async move {
        let result = match read_body::<T>(&message) {
            Some(body) => handle(env.clone(), body, attempts(&message)).await,
            None => {
                console_error!(
                    "dropping a queue message that is not a {}",
                    std::any::type_name::<T>()
                );
                Settle::Ack
            }
        };
        settle(&message, result);
    }))
    .await;
}

/// Exports a consumer function's queue handler: each message's body is read as `$body` and
/// handed to `$handle(env, body, delivery_count) -> Settle`. Written out rather than
/// `#[event(queue)]`, whose typed batch unwraps and hides the delivery count.
// rustfmt re-indents the attribute below further on every run; it is formatted by hand.
#[rustfmt::skip]
#[macro_export]
macro_rules! queue_consumer {
    ($body:ty, $handle:path) => {
        async fn consume_queue_batch(batch: ::worker::worker_sys::MessageBatch, env: ::worker::Env) {
            $crate::queue::consume::<$body, _, _>(batch, env, $handle).await
        }

        mod queue_export {
            use ::worker::wasm_bindgen::{JsValue, prelude::wasm_bindgen};

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
                super::consume_queue_batch(batch, env).await;
                Ok(JsValue::UNDEFINED)
            }
        }
    };
}
