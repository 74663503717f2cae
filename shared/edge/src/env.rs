//! The bindings of one invocation (a request, a queue batch, a cron run), each use counted against
//! what Cloudflare allows one invocation (`domain::platform`): D1 queries and their rows,
//! subrequests, KV operations, and bytes held in buffers.
//!
//! `wrangler dev` enforces none of these. With `PLATFORM_LIMITS=enforce` (the local stack's
//! `.dev.vars`), a use past a limit fails here, loudly, as it would fail in production, and every
//! invocation ends with one `[usage]` line in the log (what the end-to-end suite and the benches
//! read back into their tables). Without it, the count is kept and nothing is refused or logged.
//!
//! An invocation makes its `Env` once, at its entry (`http::serve`, `queue::consume`, the cron
//! handler), and every clone shares its count: the ten messages of a queue batch share one
//! invocation's limits, as on Cloudflare.

use crate::db::Db;
use crate::kv::Kv;
use domain::platform::{Exceeded, Resource, Usage};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Bucket, Fetcher, ObjectNamespace, Queue, console_log};

/// The variable that turns enforcement on.
const PLATFORM_LIMITS: &str = "PLATFORM_LIMITS";
/// The D1 bindings businesses are spread over, in order (`scripts/configure` sets it).
const SHARDS: &str = "SHARDS";
/// The shards new businesses are placed on, by number (all of them where it is not set).
const NEW_BUSINESS_SHARDS: &str = "NEW_BUSINESS_SHARDS";
/// How long an isolate trusts what it read of the directory, in seconds (a minute where it is
/// not set; the test stack shortens it so that moving a business is tested in seconds).
const DIRECTORY_FRESH_SECONDS: &str = "DIRECTORY_FRESH_SECONDS";
/// The function's name, for the usage line (`scripts/configure` sets it in every config).
const FUNCTION: &str = "CRM_EDGE_FUNCTION";

#[derive(Clone)]
pub struct Env {
    inner: worker::Env,
    count: Rc<Count>,
}

struct Count {
    usage: RefCell<Usage>,
    enforce: bool,
    /// What the invocation is, for its usage line: `customers-sync fetch`.
    what: String,
    /// When the invocation started (ms), and how long it waited on D1, for the usage line. On
    /// Cloudflare the clock moves only across I/O, so there the elapsed time leaves out computing.
    started_ms: i64,
    waited: RefCell<D1Waits>,
}

#[derive(Default)]
struct D1Waits {
    /// From each call to its answer, as this invocation saw it.
    round_trips_ms: i64,
    /// What D1 says its statements took to run.
    sql_ms: f64,
}

impl Env {
    /// The bindings of a new invocation; `entry` says what started it (`fetch`, `queue`, `cron`).
    pub fn new(inner: worker::Env, entry: &str) -> Self {
        let read = |name: &str| inner.var(name).map(|value| value.to_string()).ok();
        let enforce = read(PLATFORM_LIMITS).is_some_and(|value| value.trim() == "enforce");
        let function = read(FUNCTION).unwrap_or_else(|| "worker".to_owned());
        Self {
            count: Rc::new(Count {
                usage: RefCell::new(Usage::default()),
                enforce,
                what: format!("{function} {entry}"),
                started_ms: crate::runtime::now().millis(),
                waited: RefCell::new(D1Waits::default()),
            }),
            inner,
        }
    }

    /// The runtime's own `Env`, for what is not counted (variables, secrets).
    pub fn raw(&self) -> &worker::Env {
        &self.inner
    }

    pub fn var(&self, name: &str) -> worker::Result<worker::Var> {
        self.inner.var(name)
    }

    pub fn secret(&self, name: &str) -> worker::Result<worker::Secret> {
        self.inner.secret(name)
    }

    /// The D1 database bound as `name`, its statements counted.
    /// `DB` is every shard (docs/scaling.md): the bindings the `SHARDS` variable lists, in
    /// order, or `DB` alone where it lists none.
    pub fn d1(&self, name: &str) -> worker::Result<Db> {
        let shards = match self.inner.var(SHARDS) {
            Ok(list) if name == crate::DB => list
                .to_string()
                .split(',')
                .map(|binding| self.inner.d1(binding.trim()))
                .collect::<worker::Result<Vec<_>>>()?,
            _ => vec![self.inner.d1(name)?],
        };
        let open = self
            .inner
            .var(NEW_BUSINESS_SHARDS)
            .map(|list| {
                list.to_string()
                    .split(',')
                    .filter_map(|shard| shard.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let directory_fresh_ms = self
            .inner
            .var(DIRECTORY_FRESH_SECONDS)
            .ok()
            .and_then(|seconds| seconds.to_string().trim().parse::<i64>().ok())
            .filter(|seconds| *seconds > 0)
            .map_or(crate::db::directory::FRESH_MS, |seconds| seconds * 1000);
        Ok(Db::new(shards, open, directory_fresh_ms, self.clone()))
    }

    // The handles below are counted when they are taken, one use each: take one for each
    // operation (a KV get, an R2 put, a queue send or batch, a call to a Worker or an object).

    /// The KV namespace bound as `name`, for one operation.
    pub fn kv(&self, name: &str) -> worker::Result<Kv> {
        self.charge(Resource::KvOperation, 1)?;
        Kv::bound(&self.inner, name)
    }

    /// The queue bound as `name`, for one send (of a message or a batch).
    pub fn queue(&self, name: &str) -> worker::Result<Queue> {
        self.charge(Resource::Subrequest, 1)?;
        self.inner.queue(name)
    }

    /// The R2 bucket bound as `name`, for one operation.
    pub fn bucket(&self, name: &str) -> worker::Result<Bucket> {
        self.charge(Resource::Subrequest, 1)?;
        self.inner.bucket(name)
    }

    /// The Worker bound as `name`, for one call.
    pub fn service(&self, name: &str) -> worker::Result<Fetcher> {
        self.charge(Resource::Subrequest, 1)?;
        self.inner.service(name)
    }

    /// The static assets bound as `name`, for one read (counted as a subrequest, as a service
    /// binding's call is).
    pub fn assets(&self, name: &str) -> worker::Result<Fetcher> {
        self.charge(Resource::Subrequest, 1)?;
        self.inner.assets(name)
    }

    /// The Durable Object namespace bound as `name`, for one call to one of its objects.
    pub fn durable_object(&self, name: &str) -> worker::Result<ObjectNamespace> {
        self.charge(Resource::Subrequest, 1)?;
        self.inner.durable_object(name)
    }

    /// Counts `count` uses of `resource`; past its limit, an error when enforcing.
    pub fn charge(&self, resource: Resource, count: u32) -> worker::Result<()> {
        let charged = self.count.usage.borrow_mut().charge(resource, count);
        self.enforced(charged)
    }

    /// Counts the rows D1 says a statement read and wrote.
    pub fn charge_rows(&self, read: u64, written: u64) {
        let mut usage = self.count.usage.borrow_mut();
        usage.d1_rows_read += read;
        usage.d1_rows_written += written;
    }

    /// Counts one D1 round trip.
    pub fn charge_round_trip(&self) {
        self.count.usage.borrow_mut().d1_round_trips += 1;
    }

    /// Adds a D1 call's wait (from the call to its answer) and what D1 said its SQL took.
    pub fn waited_on_d1(&self, round_trip_ms: i64, sql_ms: f64) {
        let mut waited = self.count.waited.borrow_mut();
        waited.round_trips_ms += round_trip_ms;
        waited.sql_ms += sql_ms;
    }

    /// Counts `bytes` read whole into memory until the returned guard is dropped.
    pub fn hold(&self, bytes: usize) -> worker::Result<Held> {
        let held = self.count.usage.borrow_mut().hold(bytes);
        let guard = Held {
            count: Rc::clone(&self.count),
            bytes,
        };
        self.enforced(held)?;
        Ok(guard)
    }

    /// Bytes the invocation may still hold in buffers.
    pub fn room(&self) -> usize {
        self.count.usage.borrow().room()
    }

    /// What the invocation used so far.
    pub fn usage(&self) -> Usage {
        self.count.usage.borrow().clone()
    }

    /// Logs the invocation's usage line, when enforcing (the local stack).
    pub fn report(&self) {
        if !self.count.enforce {
            return;
        }
        let usage = self.usage();
        let waited = self.count.waited.borrow();
        console_log!(
            "[usage] {} d1_queries={} d1_round_trips={} rows_read={} rows_written={} subrequests={} kv={} peak_buffered={} wasm_memory={} elapsed_ms={} d1_wait_ms={} d1_sql_us={}",
            self.count.what,
            usage.d1_queries,
            usage.d1_round_trips,
            usage.d1_rows_read,
            usage.d1_rows_written,
            usage.subrequests,
            usage.kv_operations,
            usage.peak_buffered_bytes,
            wasm_memory_bytes(),
            crate::runtime::now().millis() - self.count.started_ms,
            waited.round_trips_ms,
            // Whole microseconds: formatting an f64 would bring its formatting code into every bundle.
            (waited.sql_ms * 1000.0) as u64
        );
    }

    fn enforced(&self, result: Result<(), Exceeded>) -> worker::Result<()> {
        match result {
            Err(exceeded) if self.count.enforce => {
                worker::console_error!("[limit] {}: {exceeded}", self.count.what);
                Err(worker::Error::RustError(exceeded.to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// The module's linear memory: what the isolate's Rust side ever grew to (it never shrinks, so it is
/// the most that any invocation of this isolate so far needed, not this one's alone).
fn wasm_memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Bytes counted as held in memory, until dropped.
pub struct Held {
    count: Rc<Count>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.count.usage.borrow_mut().release(self.bytes);
    }
}
