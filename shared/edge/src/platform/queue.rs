//! Consuming a queue one message at a time, or a batch's messages together: reading a body,
//! counting deliveries, and acknowledging or retrying, each reporting failure instead of
//! panicking (worker 0.8.7's typed wrappers unwrap, and do not expose `attempts`). A consumer
//! function exports its handler with [`queue_consumer!`](crate::queue_consumer); natively, a test
//! hands a queue's recorded messages to the same handler with [`deliver`] or [`deliver_batches`].
//! And the one way work is put on a queue in bulk ([`send_all`]).
//!
//! Every message's work is one business's ([`Work`]). While that business is being moved its
//! writes are refused, and work that acts outside the database (a provider send, a webhook POST,
//! a CRM call, a download, an embedding) must not start: it could not record what it did, and
//! would do it again. Such a message is put back on its queue, a new message delayed by
//! [`held_seconds`] (the directory's freshness), before its handler sees it; its deliveries are
//! not counted against the queue's retries, however long the move takes.

use crate::Env;
use crate::db::Db;
use crate::runtime::QueueMessage;
use crate::{console_error, console_log};
use domain::ids::BusinessId;
use futures_util::future::{JoinAll, join_all};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

/// The most messages Queues takes in one `sendBatch`.
const BATCH_LIMIT: usize = 100;

/// Puts `items` on their own queue ([`Work::QUEUE`]: a body goes nowhere else), [`BATCH_LIMIT`]
/// per call, each delivered after `delay_seconds`. Stops at the first refused call (the items
/// before it are queued). Each call is a subrequest of the invocation, counted as it is made.
pub async fn send_all<T: Work>(env: &Env, items: &[T], delay_seconds: u32) -> worker::Result<()> {
    for chunk in items.chunks(BATCH_LIMIT) {
        env.queue(T::QUEUE, chunk.len())?
            .send_batch(chunk, delay_seconds)
            .await?;
    }
    Ok(())
}

/// The longest a business's work waits while the business is being moved, before it is looked
/// at again: work held again and again costs one delivery a minute at most.
pub const HELD_SECONDS: u32 = 60;

/// How long a business's work waits while the business is being moved, before it is looked at
/// again: the directory's freshness (a minute in production, [`HELD_SECONDS`] at most), which a
/// pause lasts at least (then as long as the copy takes).
pub fn held_seconds(db: &Db) -> u32 {
    u32::try_from(db.directory_fresh_ms() / 1000)
        .unwrap_or(HELD_SECONDS)
        .clamp(1, HELD_SECONDS)
}

/// A queue message's work: which business it acts for, and the queue it travels on (its
/// consumer's own, where it is put back while the business is being moved).
pub trait Work: Serialize + DeserializeOwned + Clone {
    /// The queue's binding, which the consumer must also be able to send to.
    const QUEUE: &'static str;

    /// The business the work is done for; None: no one business's.
    fn business(&self) -> Option<BusinessId>;
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

/// Acks or retries the message. Its delivery was a queue operation (a read), and an ack is one
/// more (its delete); a retried message is read again later.
fn settle(env: &Env, message: &QueueMessage, settle: Settle) {
    let result = match settle {
        Settle::Ack => {
            env.meter().bill(|billed| billed.queue_operations += 2);
            message.ack()
        }
        Settle::RetryIn(seconds) => {
            env.meter().bill(|billed| billed.queue_operations += 1);
            message.retry_in(seconds)
        }
    };
    if let Err(error) = result {
        console_error!("settling a queue message failed: {error}");
    }
}

/// Handles every message of a batch at once, each settled on its own as `handle` decides from
/// its body and delivery count. A body that is not a `T` is dropped: it would fail every retry.
/// The batch is one invocation: its messages share its limits (`crate::platform::meter`).
pub async fn consume<T, F, Fut>(messages: &[QueueMessage], env: &Env, handle: &F)
where
    T: Work,
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    join_all(messages.iter().map(|message| async move {
        let result = match admitted::<T>(env, message).await {
            Ok(body) => handle(env.clone(), body, message.attempts()).await,
            Err(settled) => settled,
        };
        settle(env, message, result);
    }))
    .await;
    crate::platform::invocation::end(env).await;
    env.report();
    env.after_report().await;
}

/// Hands the batch's work to `handle` at once, as `(body, delivery count)` in the batch's order,
/// for a consumer that does the work of several messages together; `handle` answers one
/// [`Settle`] per item, in the same order (an item it leaves unanswered is retried). Messages
/// are admitted as [`consume`] admits them.
pub async fn consume_batch<T, F, Fut>(messages: &[QueueMessage], env: &Env, handle: &F)
where
    T: Work,
    F: Fn(Env, Vec<(T, u32)>) -> Fut,
    Fut: Future<Output = Vec<Settle>>,
{
    let admitted = join_all(messages.iter().map(|message| admitted::<T>(env, message))).await;
    let mut work = Vec::new();
    let mut handled = Vec::new();
    for (message, admitted) in messages.iter().zip(admitted) {
        match admitted {
            Ok(body) => {
                work.push((body, message.attempts()));
                handled.push(message);
            }
            Err(settled) => settle(env, message, settled),
        }
    }
    if !work.is_empty() {
        let mut settles = handle(env.clone(), work).await.into_iter();
        for message in handled {
            settle(env, message, settles.next().unwrap_or(Settle::RetryIn(0)));
        }
    }
    crate::platform::invocation::end(env).await;
    env.report();
    env.after_report().await;
}

/// A handler of one message at a time as a handler of the batch (every message at once), for
/// code that drives consumers of both kinds alike (natively, [`deliver`]).
pub fn each<T, F, Fut>(handle: F) -> impl Fn(Env, Vec<(T, u32)>) -> JoinAll<Fut>
where
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    move |env, work| {
        join_all(
            work.into_iter()
                .map(|(body, count)| handle(env.clone(), body, count)),
        )
    }
}

/// The message's body for its handler, or how the message is settled without it: a body that
/// is not a `T` is dropped (it would fail every retry), and the work of a business being moved is
/// held ([`held_while_moved`]).
async fn admitted<T: Work>(env: &Env, message: &QueueMessage) -> Result<T, Settle> {
    let Some(body) = read_body::<T>(message) else {
        console_error!(
            "dropping a queue message that is not a {}",
            std::any::type_name::<T>()
        );
        return Err(Settle::Ack);
    };
    match held_while_moved(env, &body).await {
        Some(held) => Err(held),
        None => Ok(body),
    }
}

/// Puts the work back on its queue, delayed, when its business is being moved (the directory as
/// this isolate knows it). None: the handler may go on. A directory that cannot be read is left
/// to the handler, whose first statement meets the same failure and retries as it always does.
async fn held_while_moved<T: Work>(env: &Env, body: &T) -> Option<Settle> {
    let business = body.business()?;
    let db = env.db().ok()?;
    let placement = db.placement(&business).await.ok()?;
    if !placement.paused {
        return None;
    }
    let held = held_seconds(&db);
    console_log!(
        "business {business} is being moved: its work on {} waits {held} s",
        T::QUEUE
    );
    Some(match send_all(env, std::slice::from_ref(body), held).await {
        Ok(()) => Settle::Ack,
        Err(error) => {
            console_error!("holding work of a business being moved: {error}");
            Settle::RetryIn(held)
        }
    })
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
    T: Work,
    F: Fn(Env, T, u32) -> Fut,
    Fut: Future<Output = Settle>,
{
    deliver_batches(stack, consumer, each(handle)).await
}

/// [`deliver`] for a consumer that takes its batch's work together ([`consume_batch`]).
#[cfg(not(target_arch = "wasm32"))]
pub async fn deliver_batches<T, F, Fut>(
    stack: &crate::runtime::native::Stack,
    consumer: Consumer<'_>,
    handle: F,
) -> usize
where
    T: Work,
    F: Fn(Env, Vec<(T, u32)>) -> Fut,
    Fut: Future<Output = Vec<Settle>>,
{
    let mut delivered = 0;
    loop {
        let batch = stack.take_due(consumer.binding, consumer.max_batch_size);
        if batch.is_empty() {
            return delivered;
        }
        delivered += batch.len();
        let env = Env::new(stack.clone(), "queue");
        consume_batch(&batch, &env, &handle).await;
        stack.settle(consumer.binding, batch, consumer.max_retries);
    }
}

/// Exports a consumer function's queue handler: each message's body is read as `$body` and
/// handed to `$handle(env, body, delivery_count) -> Settle`; with `batch`, the batch's bodies
/// together to `$handle(env, Vec<(body, delivery_count)>) -> Vec<Settle>` ([`consume_batch`]).
/// Written out rather than `#[event(queue)]`, whose typed batch unwraps and hides the delivery
/// count. Natively it exports nothing: a test calls `$handle` through [`deliver`] or
/// [`deliver_batches`].
// rustfmt re-indents the attribute below further on every run; it is formatted by hand.
#[rustfmt::skip]
#[macro_export]
macro_rules! queue_consumer {
    ($body:ty, batch $handle:path) => {
        $crate::queue_consumer!(@export $body, consume_batch, $handle);
    };
    ($body:ty, $handle:path) => {
        $crate::queue_consumer!(@export $body, consume, $handle);
    };
    (@export $body:ty, $consume:ident, $handle:path) => {
        #[cfg(target_arch = "wasm32")]
        async fn consume_queue_batch(batch: ::worker::worker_sys::MessageBatch, env: ::worker::Env) {
            let env = $crate::Env::new(env, "queue");
            let messages = $crate::runtime::QueueMessage::of_batch(&batch);
            $crate::platform::queue::$consume::<$body, _, _>(&messages, &env, &$handle).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Level;
    use crate::testing::Fixture;
    use serde::Deserialize;
    use std::cell::RefCell;
    use std::time::Duration;

    const WORK: &str = "WORK";

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Job {
        n: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        business_id: Option<BusinessId>,
    }

    impl Work for Job {
        const QUEUE: &'static str = WORK;

        fn business(&self) -> Option<BusinessId> {
            self.business_id.clone()
        }
    }

    fn job(n: u32) -> Job {
        Job { n, business_id: None }
    }

    fn consumer(max_retries: u32) -> Consumer<'static> {
        Consumer {
            binding: WORK,
            max_batch_size: 10,
            max_retries,
        }
    }

    #[test]
    fn a_bulk_send_goes_out_a_hundred_at_a_time_each_batch_a_subrequest_in_order() {
        let fixture = Fixture::new();
        let jobs: Vec<Job> = (0..250).map(job).collect();
        fixture.run(async {
            send_all(&fixture.env, &jobs, 0)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        });
        let queued: Vec<u64> = fixture
            .stack
            .queued(WORK)
            .iter()
            .map(|sent| sent.json()["n"].as_u64().unwrap_or(u64::MAX))
            .collect();
        assert_eq!(queued, (0..250).collect::<Vec<u64>>());
        assert_eq!(
            fixture.env.usage().subrequests,
            3,
            "three sendBatch calls: 100, 100 and 50"
        );
    }

    #[test]
    fn nothing_to_send_sends_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            send_all::<Job>(&fixture.env, &[], 0)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        });
        assert!(fixture.stack.queued(WORK).is_empty());
        assert_eq!(fixture.env.usage().subrequests, 0);
    }

    #[test]
    fn a_delayed_send_is_not_delivered_before_its_time() {
        let fixture = Fixture::new();
        fixture.run(async {
            send_all(&fixture.env, &[job(1)], 30)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let seen = RefCell::new(Vec::new());
            let handle = async |_: Env, job: Job, _: u32| {
                seen.borrow_mut().push(job.n);
                Settle::Ack
            };
            assert_eq!(deliver(&fixture.stack, consumer(3), handle).await, 0);
            fixture.stack.advance(Duration::from_secs(30));
            assert_eq!(deliver(&fixture.stack, consumer(3), handle).await, 1);
            assert_eq!(*seen.borrow(), vec![1]);
        });
    }

    #[test]
    fn a_body_that_is_not_the_consumers_type_is_dropped_acknowledged_and_logged() {
        let fixture = Fixture::new();
        fixture.run(async {
            let queue = fixture
                .env
                .queue(WORK, 1)
                .unwrap_or_else(|error| panic!("{error}"));
            queue
                .send(serde_json::json!({ "n": "not a number" }))
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            queue.send(job(7)).await.unwrap_or_else(|error| panic!("{error}"));
            let seen = RefCell::new(Vec::new());
            let handle = async |_: Env, job: Job, _: u32| {
                seen.borrow_mut().push(job.n);
                Settle::Ack
            };
            assert_eq!(deliver(&fixture.stack, consumer(3), handle).await, 2);
            assert_eq!(*seen.borrow(), vec![7], "the good one is handled");
        });
        assert!(fixture.stack.queued(WORK).is_empty(), "neither comes back");
        assert!(fixture.stack.dead_letters(WORK).is_empty());
        assert_eq!(
            fixture
                .stack
                .logged(Level::Error, "dropping a queue message that is not a")
                .len(),
            1
        );
    }

    #[test]
    fn a_retry_comes_back_after_its_delay_with_its_delivery_counted() {
        let fixture = Fixture::new();
        fixture.run(async {
            send_all(&fixture.env, &[job(1)], 0)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let attempts = RefCell::new(Vec::new());
            let handle = async |_: Env, _: Job, attempt: u32| {
                attempts.borrow_mut().push(attempt);
                if attempt < 2 {
                    Settle::RetryIn(45)
                } else {
                    Settle::Ack
                }
            };
            let started = fixture.stack.now_ms();
            assert_eq!(deliver(&fixture.stack, consumer(3), handle).await, 1);
            assert_eq!(fixture.stack.next_due(WORK), Some(started + 45_000));
            fixture.stack.advance(Duration::from_secs(44));
            assert_eq!(deliver(&fixture.stack, consumer(3), handle).await, 0, "not yet");
            fixture.stack.advance(Duration::from_secs(1));
            assert_eq!(deliver(&fixture.stack, consumer(3), handle).await, 1);
            assert_eq!(*attempts.borrow(), vec![1, 2]);
            let written = fixture.env.usage().billed.queue_operations;
            assert_eq!(written, 1, "the send is one operation");
        });
        assert!(fixture.stack.queued(WORK).is_empty(), "acknowledged");
        // Queues bills each read of a message and its delete: the retried delivery was a read,
        // the acknowledged one a read and a delete.
        let lines = fixture.stack.logged(Level::Log, "[usage] native queue");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains(" queue_operations=1 "), "{}", lines[0]);
        assert!(lines[1].contains(" queue_operations=2 "), "{}", lines[1]);
    }

    #[test]
    fn a_message_retried_past_the_queues_retries_goes_to_the_dead_letters() {
        let fixture = Fixture::new();
        fixture.run(async {
            send_all(&fixture.env, &[job(9)], 0)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let handle = async |_: Env, _: Job, _: u32| Settle::RetryIn(1);
            for _ in 0..3 {
                deliver(&fixture.stack, consumer(2), handle).await;
                fixture.stack.advance(Duration::from_secs(1));
            }
        });
        assert!(fixture.stack.queued(WORK).is_empty());
        let dead = fixture.stack.dead_letters(WORK);
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].json()["n"].as_u64(), dead[0].attempts), (Some(9), 3));
    }

    #[test]
    fn work_of_a_business_being_moved_waits_on_its_queue_without_using_its_retries_and_is_done_after_the_move()
     {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let placed = crate::db::directory::entry(&fixture.db, &acme.business_id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let moving = domain::shard_move::Entry {
                moving_to: Some(1 - placed.shard),
                move_started_ms: Some(0),
                ..placed
            };
            let moved = crate::db::directory::record(&fixture.db, &acme.business_id, &moving)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let acmes = Job {
                n: 1,
                business_id: Some(acme.business_id.clone()),
            };
            send_all(&fixture.env, &[acmes, job(2)], 0)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let seen = RefCell::new(Vec::new());
            let handle = async |_: Env, job: Job, attempt: u32| {
                seen.borrow_mut().push((job.n, attempt));
                Settle::Ack
            };
            for _ in 0..4 {
                deliver(&fixture.stack, consumer(1), handle).await;
                fixture
                    .stack
                    .advance(Duration::from_secs(u64::from(HELD_SECONDS)));
            }
            assert_eq!(
                *seen.borrow(),
                vec![(2, 1)],
                "only the work of the business that is not being moved is done"
            );
            assert!(
                fixture.stack.dead_letters(WORK).is_empty(),
                "held four times on a queue that retries once, and not given up"
            );
            let placed_again = domain::shard_move::Entry {
                revision: moved.revision,
                ..placed
            };
            crate::db::directory::record(&fixture.db, &acme.business_id, &placed_again)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            fixture
                .stack
                .advance(Duration::from_secs(u64::from(HELD_SECONDS)));
            deliver(&fixture.stack, consumer(1), handle).await;
            assert_eq!(
                *seen.borrow(),
                vec![(2, 1), (1, 1)],
                "after the move it is done, as a first delivery"
            );
        });
        assert!(fixture.stack.queued(WORK).is_empty());
    }

    #[test]
    fn the_messages_of_a_batch_share_one_invocations_count() {
        let fixture = Fixture::new();
        fixture.run(async {
            let jobs: Vec<Job> = (0..3).map(job).collect();
            send_all(&fixture.env, &jobs, 0)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let counts = RefCell::new(Vec::new());
            let handle = async |env: Env, _: Job, _: u32| {
                env.kv(crate::AUTH_CACHE)
                    .unwrap_or_else(|error| panic!("{error}"));
                counts.borrow_mut().push(env.usage().kv_operations);
                Settle::Ack
            };
            deliver(&fixture.stack, consumer(3), handle).await;
            let mut counts = counts.borrow().clone();
            counts.sort_unstable();
            assert_eq!(counts, vec![1, 2, 3]);
        });
        assert_eq!(
            fixture.stack.logged(Level::Log, "[usage] native queue").len(),
            1,
            "one usage line for the batch"
        );
    }
}
