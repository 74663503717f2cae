//! KV, R2 and Queues in the native runtime, kept in the stack's maps: KV's values expire on the
//! stack's clock, R2 keeps each object's bytes and metadata, and a queue records every message
//! sent with its delay, for a test to hand to the consumer it chooses (`edge::queue::deliver`).
//! The platform's limits on each are kept as production keeps them: KV's least expiry of 60 s,
//! 128 KB a queue message and 100 messages a batch.

use super::http::{Data, ResponseBody};
use super::{Stack, clock};
use serde::Serialize;
use std::cell::Cell;
use std::rc::Rc;
use worker::{Error, HttpMetadata, Result};

/// KV refuses an expiry under a minute.
const KV_LEAST_TTL_SECONDS: u64 = 60;

/// A KV namespace.
pub struct Kv {
    pub(crate) namespace: String,
}

impl Kv {
    /// The text stored under `key`, unless it expired.
    pub async fn text(&self, key: &str) -> Result<Option<String>> {
        Ok(Stack::current().kv_read(&self.namespace, key))
    }

    /// Stores `value` under `key` for `ttl_seconds`.
    pub async fn put_expiring(&self, key: &str, value: &str, ttl_seconds: u64) -> Result<()> {
        if ttl_seconds < KV_LEAST_TTL_SECONDS {
            return Err(Error::JsError(format!(
                "KV PUT failed: 400 Invalid expiration_ttl of {ttl_seconds}. Expiration TTL must be at least {KV_LEAST_TTL_SECONDS}."
            )));
        }
        let expires_ms = clock::now_ms() + i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2_000) * 1000;
        Stack::current().kv_write(&self.namespace, key, Some((value.to_owned(), Some(expires_ms))));
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        Stack::current().kv_write(&self.namespace, key, None);
        Ok(())
    }
}

/// An object kept in a bucket.
#[derive(Clone)]
pub struct Object {
    key: String,
    bytes: Rc<Vec<u8>>,
    metadata: HttpMetadata,
    /// Whether the body was asked for (`get`) or only the object's details (`put`'s answer).
    with_body: bool,
}

impl Object {
    pub(crate) fn stored(key: String, bytes: Vec<u8>, metadata: HttpMetadata) -> Self {
        Self {
            key,
            bytes: Rc::new(bytes),
            metadata,
            with_body: false,
        }
    }

    pub fn key(&self) -> String {
        self.key.clone()
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn http_metadata(&self) -> HttpMetadata {
        self.metadata.clone()
    }

    pub fn body(&self) -> Option<ObjectBody> {
        self.with_body.then(|| ObjectBody(Rc::clone(&self.bytes)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// An object's bytes.
pub struct ObjectBody(Rc<Vec<u8>>);

impl ObjectBody {
    pub async fn bytes(self) -> Result<Vec<u8>> {
        Ok(self.0.as_ref().clone())
    }

    pub async fn text(self) -> Result<String> {
        String::from_utf8(self.0.as_ref().clone()).map_err(|error| Error::RustError(error.to_string()))
    }

    pub fn response_body(self) -> Result<ResponseBody> {
        Ok(ResponseBody::Body(self.0.as_ref().clone()))
    }
}

/// An R2 bucket.
pub struct Bucket {
    pub(crate) name: String,
}

impl Bucket {
    pub fn put(&self, key: impl Into<String>, value: impl Into<Data>) -> PutOptionsBuilder {
        PutOptionsBuilder {
            bucket: self.name.clone(),
            key: key.into(),
            value: value.into(),
            metadata: HttpMetadata::default(),
        }
    }

    pub fn get(&self, key: impl Into<String>) -> GetOptionsBuilder {
        GetOptionsBuilder {
            bucket: self.name.clone(),
            key: key.into(),
        }
    }

    pub async fn head(&self, key: impl Into<String>) -> Result<Option<Object>> {
        Ok(Stack::current().r2_read(&self.name, &key.into()))
    }

    pub async fn delete(&self, key: impl Into<String>) -> Result<()> {
        Stack::current().r2_delete(&self.name, &key.into());
        Ok(())
    }
}

pub struct PutOptionsBuilder {
    bucket: String,
    key: String,
    value: Data,
    metadata: HttpMetadata,
}

impl PutOptionsBuilder {
    pub fn http_metadata(mut self, metadata: HttpMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Stores the object once its whole body has come (a stream that fails stores nothing).
    pub async fn execute(self) -> Result<Object> {
        let bytes = self.value.into_bytes().await?;
        let object = Object::stored(self.key, bytes, self.metadata);
        Stack::current().r2_write(&self.bucket, object.clone());
        Ok(object)
    }
}

pub struct GetOptionsBuilder {
    bucket: String,
    key: String,
}

impl GetOptionsBuilder {
    pub async fn execute(self) -> Result<Option<Object>> {
        Ok(Stack::current()
            .r2_read(&self.bucket, &self.key)
            .map(|object| Object {
                with_body: true,
                ..object
            }))
    }
}

/// The most bytes of one queue message (1 KB = 1,000 bytes; about 100 are the platform's).
const QUEUE_MESSAGE_BYTES: usize = domain::platform::QUEUE_MESSAGE_BYTES;
/// The most messages of one batch sent.
const QUEUE_BATCH_MESSAGES: usize = domain::platform::QUEUE_BATCH_MESSAGES;

/// A message sent and not yet settled by a consumer.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The body as JSON text.
    pub body: String,
    /// Not delivered before this time (ms).
    pub due_ms: i64,
    /// Deliveries so far.
    pub attempts: u32,
}

impl Sent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// A queue, for sending.
pub struct Queue {
    pub(crate) binding: String,
}

impl Queue {
    pub async fn send<T: Serialize>(&self, body: T) -> Result<()> {
        let sent = message(&body, 0)?;
        Stack::current().enqueue(&self.binding, vec![sent]);
        Ok(())
    }

    pub async fn send_batch<T: Serialize + Clone>(&self, items: &[T], delay_seconds: u32) -> Result<()> {
        if items.len() > QUEUE_BATCH_MESSAGES {
            return Err(Error::JsError(format!(
                "Queue sendBatch failed: batch has {} messages, the most is {QUEUE_BATCH_MESSAGES}",
                items.len()
            )));
        }
        let sent = items
            .iter()
            .map(|item| message(item, delay_seconds))
            .collect::<Result<Vec<_>>>()?;
        Stack::current().enqueue(&self.binding, sent);
        Ok(())
    }
}

fn message<T: Serialize>(body: &T, delay_seconds: u32) -> Result<Sent> {
    let body = serde_json::to_string(body)?;
    if body.len() > QUEUE_MESSAGE_BYTES {
        return Err(Error::JsError(format!(
            "Queue send failed: message of {} bytes is larger than the limit of {QUEUE_MESSAGE_BYTES}",
            body.len()
        )));
    }
    Ok(Sent {
        body,
        due_ms: clock::now_ms() + i64::from(delay_seconds) * 1000,
        attempts: 0,
    })
}

/// What a consumer did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acked,
    RetryIn(u32),
}

/// One message of a batch a consumer is handed.
pub struct QueueMessage {
    pub(crate) sent: Sent,
    pub(crate) settled: Rc<Cell<Option<Settled>>>,
}

impl QueueMessage {
    pub fn attempts(&self) -> u32 {
        self.sent.attempts
    }

    pub fn body_json(&self) -> Option<String> {
        Some(self.sent.body.clone())
    }

    pub fn ack(&self) -> std::result::Result<(), String> {
        self.settled.set(Some(Settled::Acked));
        Ok(())
    }

    pub fn retry_in(&self, seconds: u32) -> std::result::Result<(), String> {
        self.settled.set(Some(Settled::RetryIn(seconds)));
        Ok(())
    }
}
