//! Consuming a queue one message at a time: reading a body, counting deliveries, and
//! acknowledging or retrying, each reporting failure instead of panicking (worker 0.8.7's typed
//! wrappers unwrap, and do not expose `attempts`). A consumer function exports its handler with
//! [`queue_consumer!`](crate::queue_consumer); natively, a test hands a queue's recorded
//! messages to the same handler with [`deliver`]. And the one way work is put on a queue in bulk
//! ([`send_all`]).

use crate::Env;
use crate::console_error;
use crate::runtime::QueueMessage;
use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

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
        queue.send_batch(chunk, delay_seconds).await?;
    }
    Ok(())
}

/// What the queue should do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Ack,
    RetryIn(u32),
}

/// The body as `T`, or None when it is not one.
fn read_body<T: DeserializeOwned>(message: &QueueMessage) -> Option<T> {
    serde_json::from_str(&message.body_json()?).ok()
}

fn settle(message: &QueueMessage, settle: Settle) {
    let result = match settle {
        Settle::Ack => message.ack(),
        Settle::RetryIn(seconds) => message.retry_in(seconds),
    };
    if let Err(error) = result {
        console_error!("settling a queue message failed: {error}");
    }
}

/// Handles every message of a batch at once, each settled on its own as `handle` decides from
/// its body and delivery count. A body that is not a `T` is dropped: it would fail every retry.
/// The batch is one invocation: its messages share its limits (`crate::meter`).
pub async fn consume<T, F, Fut>(messages: &[QueueMessage], env: &Env, handle: &F)
where
    T: DeserializeOwned,
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    join_all(messages.iter().map(|message| async move {
        let result = match read_body::<T>(message) {
            Some(body) => handle(env.clone(), body, message.attempts()).await,
            None => {
                console_error!(
                    "dropping a queue message that is not a {}",
                    std::any::type_name::<T>()
                );
                Settle::Ack
            }
        };
        settle(message, result);
    }))
    .await;
    env.report();
}

/// How a function consumes a queue (its `[functions.<name>.consumes]` in `functions.toml`).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy)]
pub struct Consumer<'a> {
    /// The queue's binding, where its producers send.
    pub binding: &'a str,
    pub max_batch_size: usize,
    pub max_retries: u32,
}

/// Natively: hands the messages of the consumer's queue that are due now to `handle`, a batch
/// per invocation as the queue would, until none is due; settles each as the handler said
/// (a retry comes back after its delay, or goes to the dead letters past `max_retries`).
/// Returns how many deliveries were made.
#[cfg(not(target_arch = "wasm32"))]
pub async fn deliver<T, F, Fut>(
    stack: &crate::runtime::native::Stack,
    consumer: Consumer<'_>,
    handle: F,
) -> usize
where
    T: DeserializeOwned,
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    let mut delivered = 0;
    loop {
        let batch = stack.take_due(consumer.binding, consumer.max_batch_size);
        if batch.is_empty() {
            return delivered;
        }
        delivered += batch.len();
        let env = Env::new(stack.clone(), "queue");
        consume(&batch, &env, &handle).await;
        stack.settle(consumer.binding, batch, consumer.max_retries);
    }
}

/// Exports a consumer function's queue handler: each message's body is read as `$body` and
/// handed to `$handle(env, body, delivery_count) -> Settle`. Written out rather than
/// `#[event(queue)]`, whose typed batch unwraps and hides the delivery count. Natively it exports
/// nothing: a test calls `$handle` through [`deliver`].
// rustfmt re-indents the attribute below further on every run; it is formatted by hand.
#[rustfmt::skip]
#[macro_export]
macro_rules! queue_consumer {
    ($body:ty, $handle:path) => {
        #[cfg(target_arch = "wasm32")]
        async fn consume_queue_batch(batch: ::worker::worker_sys::MessageBatch, env: ::worker::Env) {
            let env = $crate::Env::new(env, "queue");
            let messages = $crate::runtime::QueueMessage::of_batch(&batch);
            $crate::queue::consume::<$body, _, _>(&messages, &env, &$handle).await
        }

        #[cfg(target_arch = "wasm32")]
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
