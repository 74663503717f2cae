//! The native twin of the Workers runtime: one process, no bundle, no `wrangler dev`. A [`Stack`]
//! is what a deployment's bindings would be: D1 shards (SQLite migrated from `migrations/`), KV
//! namespaces, R2 buckets and queues (maps), service bindings and Durable Objects (the functions a
//! test registers), variables and secrets (maps), the partners the code calls (scripts, by host),
//! a log, and the clock (`clock`). The functions' own code runs on it unchanged, so a whole
//! pipeline (a receiver, the queue after it, the consumer, the CRM it calls) is a unit test that
//! takes milliseconds.
//!
//! A stack belongs to the thread that made it, as an isolate's bindings belong to it; the newest
//! one made on a thread is the one the runtime's free-standing calls (an outbound fetch, the
//! clock) use.

pub mod clock;
mod d1;
mod http;
pub mod partners;
mod storage;

pub use clock::{Delay, block_on};
#[cfg(test)]
pub(crate) use d1::migrated_connection;
pub use d1::{Bound, D1Database, D1PreparedStatement, D1Result, bound, bound_text, d1_cause, prepare};
pub use http::{
    AbortController, AbortSignal, ByteStream, Context, Data, Fetch, Fetcher, File, FixedLengthStream,
    FormData, FormEntry, Headers, ObjectNamespace, Request, Response, ResponseBody, Stub,
};
pub use partners::{Outbound, Reply, Script};
pub use storage::{Bucket, Kv, Object, ObjectBody, Queue, QueueMessage, Sent, Settled, keys_stored_before};

use crate::runtime::{Body, Level};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use d1::Shard;
pub use futures_util::future::LocalBoxFuture;
/// The SQLite a shard is, for a test's own reads ([`Stack::sql`]).
pub use rusqlite;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use worker::{Error, Result};

/// The invocation's bindings: in the native runtime, the stack itself.
pub type Bindings = Stack;

/// A function registered under a service binding: how the gateway reaches it natively.
pub type Service = Rc<dyn Fn(Request) -> LocalBoxFuture<'static, Result<Response>>>;

/// A Durable Object: one instance per name, made by its class's factory when first asked.
pub trait DurableObject {
    fn fetch(&self, request: Request) -> LocalBoxFuture<'_, Result<Response>>;
}

/// Makes the object of a name.
pub type ObjectClass = Rc<dyn Fn(&str) -> Rc<dyn DurableObject>>;

/// The D1 bindings every stack has, in `SHARDS` order (as `functions.toml` names them).
const SHARD_BINDINGS: [&str; 2] = ["DB", "DB_1"];

/// A KV value, and when it expires (ms), under its (namespace, key).
type Stored = (String, Option<i64>);

#[derive(Default)]
struct World {
    vars: RefCell<BTreeMap<String, String>>,
    secrets: RefCell<BTreeMap<String, String>>,
    shards: RefCell<BTreeMap<String, Rc<Shard>>>,
    kv: RefCell<BTreeMap<(String, String), Stored>>,
    /// (bucket, key) → object.
    objects: RefCell<BTreeMap<(String, String), Object>>,
    /// Queue binding → messages waiting, in the order sent.
    queues: RefCell<BTreeMap<String, VecDeque<Sent>>>,
    /// Queue binding → messages the queue gave up on.
    dead_letters: RefCell<BTreeMap<String, Vec<Sent>>>,
    /// Queue bindings whose sends fail (a queue outage), as a send to Cloudflare's fails.
    refusing: RefCell<std::collections::BTreeSet<String>>,
    partners: RefCell<Vec<(String, Rc<RefCell<Script>>)>>,
    outbound: RefCell<Vec<Outbound>>,
    services: RefCell<BTreeMap<String, Service>>,
    classes: RefCell<BTreeMap<String, ObjectClass>>,
    instances: RefCell<BTreeMap<(String, String), Rc<dyn DurableObject>>>,
    log: RefCell<Vec<(Level, String)>>,
    background: RefCell<Vec<LocalBoxFuture<'static, ()>>>,
}

/// A whole deployment's bindings, in this process.
#[derive(Clone)]
pub struct Stack(Rc<World>);

thread_local! {
    static CURRENT: RefCell<Option<Stack>> = const { RefCell::new(None) };
    static RANDOM: RefCell<([u8; 32], u64)> = RefCell::new((seed(), 0));
    /// Which isolate this thread is: each new stack is a new one, which remembers nothing.
    static ISOLATE: Cell<u64> = const { Cell::new(0) };
}

/// The isolate the thread runs: what an isolate keeps in memory (what it read of the directory)
/// is forgotten when a new stack starts one.
pub fn isolate() -> u64 {
    ISOLATE.with(Cell::get)
}

impl Default for Stack {
    fn default() -> Self {
        Self::new()
    }
}

impl Stack {
    /// A new stack on this thread, its clock at [`clock::START_MS`]: two D1 shards (`DB` and
    /// `DB_1`, `SHARDS` listing both), the platform's limits enforced, and new random secrets
    /// (`SECRETS_KEY`, `ADMIN_TOKEN`, `MEDIA_LINK_SECRET`).
    pub fn new() -> Self {
        clock::reset(clock::START_MS);
        ISOLATE.with(|isolate| isolate.set(isolate.get() + 1));
        let stack = Stack(Rc::new(World::default()));
        for binding in SHARD_BINDINGS {
            stack
                .0
                .shards
                .borrow_mut()
                .insert(binding.to_owned(), Rc::new(Shard::migrated()));
        }
        stack.set_var("SHARDS", &SHARD_BINDINGS.join(","));
        stack.set_var("PLATFORM_LIMITS", "enforce");
        stack.set_var("CRM_EDGE_FUNCTION", "native");
        stack.set_secret(
            "SECRETS_KEY",
            &format!("k1:{}", hex::encode(random_bytes::<32>())),
        );
        stack.set_secret("ADMIN_TOKEN", &hex::encode(random_bytes::<24>()));
        stack.set_secret("MEDIA_LINK_SECRET", &hex::encode(random_bytes::<24>()));
        CURRENT.with(|current| *current.borrow_mut() = Some(stack.clone()));
        stack
    }

    /// The stack this thread made last.
    pub fn current() -> Stack {
        CURRENT
            .with(|current| current.borrow().clone())
            .unwrap_or_else(|| {
                panic!("the native runtime was used without a Stack: make one first (Stack::new)")
            })
    }

    pub fn set_var(&self, name: &str, value: &str) {
        self.0.vars.borrow_mut().insert(name.to_owned(), value.to_owned());
    }

    pub fn remove_var(&self, name: &str) {
        self.0.vars.borrow_mut().remove(name);
    }

    pub fn set_secret(&self, name: &str, value: &str) {
        self.0
            .secrets
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }

    /// The deployment no longer sets the secret `name`.
    pub fn remove_secret(&self, name: &str) {
        self.0.secrets.borrow_mut().remove(name);
    }

    // What a function's code asks of its bindings (`runtime::Bindings`).

    pub fn var(&self, name: &str) -> Option<String> {
        self.0.vars.borrow().get(name).cloned()
    }

    pub fn secret(&self, name: &str) -> Option<String> {
        self.0.secrets.borrow().get(name).cloned()
    }

    pub fn d1(&self, name: &str) -> Result<D1Database> {
        self.0
            .shards
            .borrow()
            .get(name)
            .map(|shard| D1Database {
                shard: Rc::clone(shard),
            })
            .ok_or_else(|| Error::BindingError(format!("no D1 database is bound as {name}")))
    }

    pub fn kv(&self, name: &str) -> Result<Kv> {
        Ok(Kv {
            namespace: name.to_owned(),
        })
    }

    pub fn queue(&self, name: &str) -> Result<Queue> {
        Ok(Queue {
            binding: name.to_owned(),
        })
    }

    pub fn bucket(&self, name: &str) -> Result<Bucket> {
        Ok(Bucket {
            name: name.to_owned(),
        })
    }

    pub fn service(&self, name: &str) -> Result<Fetcher> {
        Ok(Fetcher {
            binding: name.to_owned(),
        })
    }

    pub fn assets(&self, name: &str) -> Result<Fetcher> {
        self.service(name)
    }

    pub fn durable_object(&self, name: &str) -> Result<ObjectNamespace> {
        Ok(ObjectNamespace {
            binding: name.to_owned(),
        })
    }

    /// A binding reached through JavaScript (Vectorize): none exists natively.
    pub fn js(&self, _name: &str) -> Option<worker::wasm_bindgen::JsValue> {
        None
    }

    /// Workers AI: not in the native runtime, as it is not offline (the local embedder's REST
    /// shape stands in for it, through a partner script).
    pub fn ai(&self, name: &str) -> Result<worker::Ai> {
        Err(Error::BindingError(format!(
            "{name}: Workers AI does not run natively; set RAG_BACKEND=local"
        )))
    }

    // What a test sets up and looks at.

    /// Answers every call to `host` (`api.kustomer.test`, `127.0.0.1:9000`) with `script`.
    pub fn partner(&self, host: &str, script: impl FnMut(&Outbound) -> Reply + 'static) {
        let mut partners = self.0.partners.borrow_mut();
        partners.retain(|(known, _)| known != host);
        partners.push((host.to_owned(), Rc::new(RefCell::new(Box::new(script)))));
    }

    /// Every outbound call made so far, in order.
    pub fn outbound(&self) -> Vec<Outbound> {
        self.0.outbound.borrow().clone()
    }

    /// The calls made to `host`, in order.
    pub fn calls_to(&self, host: &str) -> Vec<Outbound> {
        self.outbound()
            .into_iter()
            .filter(|call| call.host() == host)
            .collect()
    }

    /// Registers the function that answers the service binding `name`.
    pub fn register_service(&self, name: &str, service: Service) {
        self.0.services.borrow_mut().insert(name.to_owned(), service);
    }

    /// Registers the Durable Object class bound as `name`.
    pub fn register_object_class(&self, name: &str, class: ObjectClass) {
        self.0.classes.borrow_mut().insert(name.to_owned(), class);
    }

    /// The D1 bindings, in `SHARDS` order.
    pub fn shard_bindings(&self) -> Vec<String> {
        SHARD_BINDINGS.iter().map(|name| (*name).to_owned()).collect()
    }

    /// The shard `binding` answers every call with D1's `message` until [`Stack::restore`].
    pub fn outage(&self, binding: &str, message: &str) {
        self.outage_after(binding, 0, message);
    }

    /// The shard `binding` answers `calls` more calls, then fails every call with D1's `message`
    /// until [`Stack::restore`]: an invocation that dies part of the way through its work.
    pub fn outage_after(&self, binding: &str, calls: u32, message: &str) {
        if let Some(shard) = self.0.shards.borrow().get(binding) {
            shard.set_outage(Some((calls, message.to_owned())));
        }
    }

    /// Every D1 call on every shard answers after `latency` (on the virtual clock; zero: at
    /// once, as a new stack's do), so that requests run at once interleave their statements as
    /// concurrent isolates do, instead of each running to its end before the next starts.
    pub fn d1_latency(&self, latency: Duration) {
        for shard in self.0.shards.borrow().values() {
            shard.set_latency(latency);
        }
    }

    pub fn restore(&self, binding: &str) {
        if let Some(shard) = self.0.shards.borrow().get(binding) {
            shard.set_outage(None);
        }
    }

    /// Uses the shard's database directly: a test's own reads (`SELECT *` on real rows) and
    /// writes, outside any invocation's count.
    pub fn sql<T>(&self, binding: &str, use_it: impl FnOnce(&rusqlite::Connection) -> T) -> T {
        let shard = self
            .0
            .shards
            .borrow()
            .get(binding)
            .cloned()
            .unwrap_or_else(|| panic!("no shard {binding}"));
        shard.with_connection(use_it)
    }

    /// The messages waiting on the queue `binding`, oldest first, due or not.
    pub fn queued(&self, binding: &str) -> Vec<Sent> {
        self.0
            .queues
            .borrow()
            .get(binding)
            .map(|waiting| waiting.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The messages the queue `binding` gave up on.
    pub fn dead_letters(&self, binding: &str) -> Vec<Sent> {
        self.0
            .dead_letters
            .borrow()
            .get(binding)
            .cloned()
            .unwrap_or_default()
    }

    /// Makes every send to the queue `binding` fail (`true`), as a queue that is down does, or
    /// take them again (`false`).
    pub fn refuse_sends(&self, binding: &str, refusing: bool) {
        let mut refused = self.0.refusing.borrow_mut();
        if refusing {
            refused.insert(binding.to_owned());
        } else {
            refused.remove(binding);
        }
    }

    /// Forgets every message waiting on `binding` (a queue whose messages were lost).
    pub fn purge(&self, binding: &str) -> Vec<Sent> {
        self.0
            .queues
            .borrow_mut()
            .remove(binding)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// Up to `count` messages of `binding` due now, taken off the queue for one delivery.
    pub fn take_due(&self, binding: &str, count: usize) -> Vec<QueueMessage> {
        let now = clock::now_ms();
        let mut queues = self.0.queues.borrow_mut();
        let Some(waiting) = queues.get_mut(binding) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(mut sent) = waiting.pop_front() {
            if taken.len() < count && sent.due_ms <= now {
                sent.attempts += 1;
                taken.push(QueueMessage {
                    sent,
                    settled: Rc::new(Cell::new(None)),
                });
            } else {
                kept.push_back(sent);
            }
        }
        *waiting = kept;
        taken
    }

    /// What the queue does after a delivery: an acknowledged message (or one left unsettled by
    /// an invocation that ended) is gone; one to retry comes back after its delay, unless it has
    /// been delivered `max_retries + 1` times, when it goes to the dead letters.
    pub fn settle(&self, binding: &str, messages: Vec<QueueMessage>, max_retries: u32) {
        for message in messages {
            let Some(Settled::RetryIn(seconds)) = message.settled.get() else {
                continue;
            };
            let mut sent = message.sent;
            if sent.attempts > max_retries {
                self.0
                    .dead_letters
                    .borrow_mut()
                    .entry(binding.to_owned())
                    .or_default()
                    .push(sent);
                continue;
            }
            sent.due_ms = clock::now_ms() + i64::from(seconds) * 1000;
            // A retry stays on its queue: nothing is sent, so an outage of sends does not lose it.
            self.0
                .queues
                .borrow_mut()
                .entry(binding.to_owned())
                .or_default()
                .push_back(sent);
        }
    }

    /// When the next message of `binding` is due (ms), if any waits.
    pub fn next_due(&self, binding: &str) -> Option<i64> {
        self.0
            .queues
            .borrow()
            .get(binding)
            .and_then(|waiting| waiting.iter().map(|sent| sent.due_ms).min())
    }

    /// The text stored in KV `namespace` under `key`, unless it expired.
    pub fn kv_read(&self, namespace: &str, key: &str) -> Option<String> {
        let now = clock::now_ms();
        self.0
            .kv
            .borrow()
            .get(&(namespace.to_owned(), key.to_owned()))
            .filter(|(_, expires)| expires.is_none_or(|at| at > now))
            .map(|(value, _)| value.clone())
    }

    /// The object stored in `bucket` under `key`.
    pub fn r2_read(&self, bucket: &str, key: &str) -> Option<Object> {
        self.0
            .objects
            .borrow()
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    /// The bytes stored in `bucket` under `key`.
    pub fn r2_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.r2_read(bucket, key).map(|object| object.bytes().to_vec())
    }

    /// The keys of `bucket`, in order.
    pub fn r2_keys(&self, bucket: &str) -> Vec<String> {
        self.0
            .objects
            .borrow()
            .keys()
            .filter(|(name, _)| name == bucket)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.0.log.borrow().clone()
    }

    /// The lines logged at `level` that contain `text`.
    pub fn logged(&self, level: Level, text: &str) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|(at, line)| *at == level && line.contains(text))
            .map(|(_, line)| line)
            .collect()
    }

    /// Starts a new isolate: what the last one kept in memory (what it read of the directory, a
    /// key's rate-limit lease) is gone, as after a restart.
    pub fn restart_isolate(&self) {
        ISOLATE.with(|isolate| isolate.set(isolate.get() + 1));
    }

    /// Moves the clock on.
    pub fn advance(&self, wait: Duration) {
        clock::advance(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2));
    }

    pub fn now_ms(&self) -> i64 {
        clock::now_ms()
    }

    // The runtime's side.

    pub(crate) fn record(&self, outbound: Outbound) {
        self.0.outbound.borrow_mut().push(outbound);
    }

    /// Runs `ask` with the script of `host`, if there is one.
    pub(crate) fn script_for<T>(&self, host: &str, ask: impl FnOnce(&mut Script) -> T) -> Option<T> {
        let script = self
            .0
            .partners
            .borrow()
            .iter()
            .find(|(known, _)| known == host)
            .map(|(_, script)| Rc::clone(script))?;
        let mut script = script.borrow_mut();
        Some(ask(&mut script))
    }

    pub(crate) fn kv_write(&self, namespace: &str, key: &str, value: Option<(String, Option<i64>)>) {
        let mut kv = self.0.kv.borrow_mut();
        let at = (namespace.to_owned(), key.to_owned());
        match value {
            Some(value) => kv.insert(at, value),
            None => kv.remove(&at),
        };
    }

    pub(crate) fn r2_write(&self, bucket: &str, object: Object) {
        self.0
            .objects
            .borrow_mut()
            .insert((bucket.to_owned(), object.key()), object);
    }

    pub(crate) fn r2_delete(&self, bucket: &str, key: &str) {
        self.0
            .objects
            .borrow_mut()
            .remove(&(bucket.to_owned(), key.to_owned()));
    }

    pub(crate) fn enqueue(&self, binding: &str, sent: Vec<Sent>) -> Result<()> {
        if self.0.refusing.borrow().contains(binding) {
            return Err(Error::JsError(format!(
                "Queue send failed: Internal Error (the queue {binding} is unavailable)"
            )));
        }
        self.0
            .queues
            .borrow_mut()
            .entry(binding.to_owned())
            .or_default()
            .extend(sent);
        Ok(())
    }

    pub(crate) async fn call_service(&self, binding: &str, request: Request) -> Result<Response> {
        let service = self.0.services.borrow().get(binding).cloned();
        match service {
            Some(service) => service(request).await,
            None => Err(Error::BindingError(format!(
                "no service is registered as {binding}"
            ))),
        }
    }

    pub(crate) async fn call_object(&self, binding: &str, name: &str, request: Request) -> Result<Response> {
        let at = (binding.to_owned(), name.to_owned());
        let existing = self.0.instances.borrow().get(&at).cloned();
        let object = match existing {
            Some(object) => object,
            None => {
                let class = self.0.classes.borrow().get(binding).cloned().ok_or_else(|| {
                    Error::BindingError(format!("no Durable Object class is registered as {binding}"))
                })?;
                let object = class(name);
                self.0.instances.borrow_mut().insert(at, Rc::clone(&object));
                object
            }
        };
        object.fetch(request).await
    }

    pub(crate) fn keep_background(&self, task: LocalBoxFuture<'static, ()>) {
        self.0.background.borrow_mut().push(task);
    }

    /// Runs the work invocations left for after their answers (`Context::wait_until`), and any
    /// it leaves in turn.
    pub async fn run_background(&self) {
        loop {
            let tasks = std::mem::take(&mut *self.0.background.borrow_mut());
            if tasks.is_empty() {
                return;
            }
            futures_util::future::join_all(tasks).await;
        }
    }

    fn log(&self, level: Level, line: String) {
        self.0.log.borrow_mut().push((level, line));
    }
}

/// A line of the log: printed (a test shows it when it fails) and kept on the current stack.
pub fn log(level: Level, line: String) {
    eprintln!("[{level:?}] {line}");
    let _ = CURRENT.try_with(|current| {
        if let Some(stack) = current.borrow().as_ref() {
            stack.log(level, line);
        }
    });
}

pub fn now_ms() -> i64 {
    clock::now_ms()
}

/// [`crate::runtime::local_time`] from the system's time zone database (`/usr/share/zoneinfo`),
/// as a bundle's `Intl` reads it from its own.
pub fn local_time(zone: &str, at_ms: i64) -> Option<(u8, u16)> {
    let zone = jiff::tz::TimeZone::get(zone).ok()?;
    let at = jiff::Timestamp::from_millisecond(at_ms).ok()?.to_zoned(zone);
    let day = u8::try_from(at.weekday().to_monday_zero_offset()).ok()?;
    let minute = u16::try_from(i32::from(at.hour()) * 60 + i32::from(at.minute())).ok()?;
    Some((day, minute))
}

/// The URL the request was made to.
pub fn request_url(req: &Request) -> String {
    req.url_text().to_owned()
}

/// The same request at `url`: its method, headers and body as they came (see the wasm32 twin).
pub fn at_url(req: Request, url: &str) -> Result<Request> {
    req.moved_to(url)
}

/// The request's method as the client sent it, in capitals (see the wasm32 twin).
pub fn request_method(req: &Request) -> String {
    req.method_name().to_ascii_uppercase()
}

/// A request this worker makes (a redirect answered to it is returned, never followed).
pub fn outgoing(
    method: worker::Method,
    url: &str,
    headers: Option<&Headers>,
    body: Option<Body<'_>>,
) -> Result<Request> {
    let mut request = Request::new(url, method)?;
    if let Some(headers) = headers {
        *request.headers_mut()? = headers.clone();
    }
    let body = match body {
        Some(Body::Bytes(bytes)) => bytes.to_vec(),
        Some(Body::Text(text)) => text.as_bytes().to_vec(),
        None => Vec::new(),
    };
    Ok(request.with_body(body))
}

/// A multipart or URL-encoded body read as the runtime's form parser reads it.
pub async fn parse_form(_url: &str, content_type: &str, body: Vec<u8>) -> Result<FormData> {
    FormData::parse(content_type, &body)
}

/// Random bytes: SHA-256 over a per-thread seed and a counter. Not for keeping secrets (nothing
/// natively is), but never the same twice in a process.
pub fn fill_random(bytes: &mut [u8]) -> std::result::Result<(), String> {
    RANDOM.with(|state| {
        let mut state = state.borrow_mut();
        for chunk in bytes.chunks_mut(32) {
            state.1 += 1;
            let block = Sha256::new()
                .chain_update(state.0)
                .chain_update(state.1.to_le_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    });
    Ok(())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let _ = fill_random(&mut bytes);
    bytes
}

/// A seed no two threads of any two processes share.
fn seed() -> [u8; 32] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let local = 0u8;
    Sha256::new()
        .chain_update(nanos.to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .chain_update(format!("{:?}", std::thread::current().id()))
        .chain_update((&local as *const u8 as usize).to_le_bytes())
        .finalize()
        .into()
}

/// AES-256-GCM, as WebCrypto does it: `plaintext` sealed, its tag after it.
pub async fn encrypt(
    key: &[u8; 32],
    nonce: &[u8; 12],
    associated: &[u8],
    plaintext: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|error| error.to_string())?;
    let payload = Payload {
        msg: plaintext,
        aad: associated,
    };
    cipher
        .encrypt(Nonce::from_slice(nonce), payload)
        .map_err(|_| "OperationError: the value cannot be sealed".to_owned())
}

/// The plaintext of what [`encrypt`] sealed, or an error when its tag does not verify.
pub async fn decrypt(
    key: &[u8; 32],
    nonce: &[u8; 12],
    associated: &[u8],
    sealed: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|error| error.to_string())?;
    let payload = Payload {
        msg: sealed,
        aad: associated,
    };
    cipher
        .decrypt(Nonce::from_slice(nonce), payload)
        .map_err(|_| "OperationError: the value does not open under this key and place".to_owned())
}
