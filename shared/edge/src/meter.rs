//! The count of one invocation (a request, a queue batch, a cron run) against what Cloudflare
//! allows one invocation (`domain::platform`): D1 queries and their rows, subrequests, KV
//! operations, and bytes held in buffers.
//!
//! `wrangler dev` enforces none of these. With `PLATFORM_LIMITS=enforce` (the local stack's
//! `.dev.vars`, and every native stack), a use past a limit fails here, loudly, as it would fail in
//! production, and every invocation ends with one `[usage]` line in the log (what the end-to-end
//! suite and the benches read back into their tables). Without it, the count is kept and nothing
//! is refused or logged.
//!
//! Every clone shares its count: the ten messages of a queue batch share one invocation's
//! limits, as on Cloudflare.

use crate::runtime;
use crate::{console_error, console_log};
use domain::platform::{Exceeded, Resource, Usage};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone)]
pub struct Meter(Rc<Count>);

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

impl Meter {
    /// The count of a new invocation, `what` it is; refusing past a limit when `enforce`.
    pub fn new(what: String, enforce: bool) -> Self {
        Self(Rc::new(Count {
            usage: RefCell::new(Usage::default()),
            enforce,
            what,
            started_ms: runtime::now().millis(),
            waited: RefCell::new(D1Waits::default()),
        }))
    }

    /// Counts `count` uses of `resource`; past its limit, an error when enforcing.
    pub fn charge(&self, resource: Resource, count: u32) -> worker::Result<()> {
        let charged = self.0.usage.borrow_mut().charge(resource, count);
        self.enforced(charged)
    }

    /// Counts the rows D1 says a statement read and wrote.
    pub fn charge_rows(&self, read: u64, written: u64) {
        let mut usage = self.0.usage.borrow_mut();
        usage.d1_rows_read += read;
        usage.d1_rows_written += written;
    }

    /// Counts one D1 round trip.
    pub fn charge_round_trip(&self) {
        self.0.usage.borrow_mut().d1_round_trips += 1;
    }

    /// Adds a D1 call's wait (from the call to its answer) and what D1 said its SQL took.
    pub fn waited_on_d1(&self, round_trip_ms: i64, sql_ms: f64) {
        let mut waited = self.0.waited.borrow_mut();
        waited.round_trips_ms += round_trip_ms;
        waited.sql_ms += sql_ms;
    }

    /// Counts `bytes` read whole into memory until the returned guard is dropped.
    pub fn hold(&self, bytes: usize) -> worker::Result<Held> {
        let held = self.0.usage.borrow_mut().hold(bytes);
        let guard = Held {
            count: Rc::clone(&self.0),
            bytes,
        };
        self.enforced(held)?;
        Ok(guard)
    }

    /// Bytes the invocation may still hold in buffers.
    pub fn room(&self) -> usize {
        self.0.usage.borrow().room()
    }

    /// What the invocation used so far.
    pub fn usage(&self) -> Usage {
        self.0.usage.borrow().clone()
    }

    /// Logs the invocation's usage line, when enforcing.
    pub fn report(&self) {
        if !self.0.enforce {
            return;
        }
        let usage = self.usage();
        let waited = self.0.waited.borrow();
        console_log!(
            "[usage] {} d1_queries={} d1_round_trips={} rows_read={} rows_written={} subrequests={} kv={} peak_buffered={} wasm_memory={} elapsed_ms={} d1_wait_ms={} d1_sql_us={}",
            self.0.what,
            usage.d1_queries,
            usage.d1_round_trips,
            usage.d1_rows_read,
            usage.d1_rows_written,
            usage.subrequests,
            usage.kv_operations,
            usage.peak_buffered_bytes,
            wasm_memory_bytes(),
            runtime::now().millis() - self.0.started_ms,
            waited.round_trips_ms,
            // Whole microseconds: formatting an f64 would bring its formatting code into every bundle.
            (waited.sql_ms * 1000.0) as u64
        );
    }

    fn enforced(&self, result: Result<(), Exceeded>) -> worker::Result<()> {
        match result {
            Err(exceeded) if self.0.enforce => {
                console_error!("[limit] {}: {exceeded}", self.0.what);
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
