//! KV, R2 and Queues in the native runtime, kept in the stack's maps: KV's values expire on the
//! stack's clock, R2 keeps each object's bytes and metadata, and a queue records every message
//! sent with its delay, for a test to hand to the consumer it chooses (`edge::platform::queue::deliver`).
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
    /// When it was stored, on the stack's clock (R2's `uploaded`).
    uploaded_ms: i64,
}

impl Object {
    pub(crate) fn stored(key: String, bytes: Vec<u8>, metadata: HttpMetadata) -> Self {
        Self {
            key,
            bytes: Rc::new(bytes),
            metadata,
            with_body: false,
            uploaded_ms: clock::now_ms(),
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

    pub async fn delete_multiple(&self, keys: Vec<String>) -> Result<()> {
        for key in keys {
            Stack::current().r2_delete(&self.name, &key);
        }
        Ok(())
    }
}

/// Up to `limit` keys of `bucket` under `prefix` that were stored before `before_ms`, in key
/// order (as Workers' twin walks R2's list).
pub async fn keys_stored_before(
    bucket: &Bucket,
    prefix: &str,
    before_ms: i64,
    limit: usize,
) -> Result<Vec<String>> {
    let stack = Stack::current();
    Ok(stack
        .r2_keys(&bucket.name)
        .into_iter()
        .filter(|key| key.starts_with(prefix))
        .filter(|key| {
            stack
                .r2_read(&bucket.name, key)
                .is_some_and(|object| object.uploaded_ms < before_ms)
        })
        .take(limit)
        .collect())
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
        Stack::current().enqueue(&self.binding, vec![sent])
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
        Stack::current().enqueue(&self.binding, sent)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::block_on;
    use std::time::Duration;

    #[test]
    fn kv_refuses_an_expiry_under_a_minute_and_forgets_a_value_when_it_expires() {
        let stack = Stack::new();
        let kv = Kv {
            namespace: "CACHE".into(),
        };
        assert!(
            block_on(kv.put_expiring("k", "v", 59)).is_err(),
            "KV's least expiry is 60 s"
        );
        block_on(kv.put_expiring("k", "v", 60)).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(block_on(kv.text("k")).ok().flatten().as_deref(), Some("v"));
        stack.advance(Duration::from_secs(60));
        assert_eq!(block_on(kv.text("k")).ok().flatten(), None, "expired");
    }

    #[test]
    fn r2_keeps_bytes_and_metadata_and_a_get_of_nothing_is_none() {
        let stack = Stack::new();
        let bucket = Bucket { name: "FILES".into() };
        let metadata = HttpMetadata {
            content_type: Some("text/plain".into()),
            ..HttpMetadata::default()
        };
        block_on(
            bucket
                .put("a", b"hello".to_vec())
                .http_metadata(metadata)
                .execute(),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let object = block_on(bucket.get("a").execute())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("stored"));
        assert_eq!(object.http_metadata().content_type.as_deref(), Some("text/plain"));
        let body = object.body().unwrap_or_else(|| panic!("a get has the body"));
        assert_eq!(block_on(body.bytes()).ok(), Some(b"hello".to_vec()));
        assert!(block_on(bucket.get("missing").execute()).ok().flatten().is_none());
        block_on(bucket.delete("a")).unwrap_or_else(|error| panic!("{error}"));
        assert!(stack.r2_keys("FILES").is_empty());
    }

    #[test]
    fn a_queue_refuses_a_message_over_its_size_and_a_batch_over_a_hundred() {
        let stack = Stack::new();
        let queue = Queue {
            binding: "WORK".into(),
        };
        assert!(block_on(queue.send("x".repeat(QUEUE_MESSAGE_BYTES))).is_err());
        let items: Vec<u32> = (0..101).collect();
        assert!(block_on(queue.send_batch(&items, 0)).is_err());
        block_on(queue.send_batch(&items[..100], 30)).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(stack.queued("WORK").len(), 100);
        assert!(stack.take_due("WORK", 10).is_empty(), "delayed 30 s");
    }

    #[test]
    fn a_retried_message_comes_back_after_its_delay_and_goes_to_the_dead_letters_past_its_retries() {
        let stack = Stack::new();
        block_on(
            Queue {
                binding: "WORK".into(),
            }
            .send(1),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        for delivery in 1..=3 {
            let batch = stack.take_due("WORK", 10);
            assert_eq!(batch.len(), 1, "delivery {delivery}");
            assert_eq!(batch[0].attempts(), delivery);
            batch[0].retry_in(5).unwrap_or_else(|error| panic!("{error}"));
            stack.settle("WORK", batch, 2);
            assert!(stack.take_due("WORK", 10).is_empty(), "not before its delay");
            stack.advance(Duration::from_secs(5));
        }
        assert!(stack.queued("WORK").is_empty());
        assert_eq!(
            stack.dead_letters("WORK").len(),
            1,
            "three deliveries of a message with two retries"
        );
    }
}
