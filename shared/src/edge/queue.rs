//! Consuming a queue one message at a time, through the runtime's own message objects: reading
//! a body, counting deliveries, and acknowledging or retrying, each reporting failure instead of
//! panicking (worker 0.8.7's typed wrappers unwrap, and do not expose `attempts`).

use serde::de::DeserializeOwned;
use worker::console_error;
use worker::js_sys::{Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Message as QueueMessage, MessageBatch};

pub use worker::worker_sys::Message;

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
