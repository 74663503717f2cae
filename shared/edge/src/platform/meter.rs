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
use domain::cost::{self, Served};
use domain::ids::BusinessId;
use domain::platform::{Billed, Exceeded, Resource, Usage};
use domain::pricing::Units;
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
    /// What started it (`fetch`, `queue`, `cron`, `object`), for what Cloudflare bills of it
    /// (`domain::cost::invocation`).
    entry: &'static str,
    /// The businesses it served, with the D1 rows their statements read and wrote.
    served: RefCell<Vec<Served>>,
}

#[derive(Default)]
struct D1Waits {
    /// From each call to its answer, as this invocation saw it.
    round_trips_ms: i64,
    /// What D1 says its statements took to run.
    sql_ms: f64,
}

impl Meter {
    /// The count of a new invocation, `what` it is, started by `entry`; refusing past a limit
    /// when `enforce`.
    pub fn new(what: String, entry: &'static str, enforce: bool) -> Self {
        Self(Rc::new(Count {
            usage: RefCell::new(Usage::default()),
            enforce,
            what,
            started_ms: runtime::now().millis(),
            waited: RefCell::new(D1Waits::default()),
            entry,
            served: RefCell::new(Vec::new()),
        }))
    }

    /// Counts `count` uses of `resource`; past its limit, an error when enforcing.
    pub fn charge(&self, resource: Resource, count: u32) -> worker::Result<()> {
        let charged = self.0.usage.borrow_mut().charge(resource, count);
        self.enforced(charged)
    }

    /// Counts the rows D1 says a statement read and wrote, for `business` when it was one
    /// business's (a scoped statement).
    pub fn charge_rows(&self, read: u64, written: u64, business: Option<&BusinessId>) {
        let mut usage = self.0.usage.borrow_mut();
        usage.d1_rows_read += read;
        usage.d1_rows_written += written;
        if let Some(business) = business {
            self.with_served(business, |served| {
                served.rows_read += read;
                served.rows_written += written;
            });
        }
    }

    /// Names `business` as one the invocation served (a request answered for it), so that it
    /// bears its share of what names no business.
    pub fn serves(&self, business: &BusinessId) {
        self.with_served(business, |_| ());
    }

    fn with_served(&self, business: &BusinessId, change: impl FnOnce(&mut Served)) {
        let mut served = self.0.served.borrow_mut();
        let at = match served.iter().position(|s| s.business == *business) {
            Some(at) => at,
            None => {
                served.push(Served {
                    business: business.clone(),
                    rows_read: 0,
                    rows_written: 0,
                });
                served.len() - 1
            }
        };
        if let Some(served) = served.get_mut(at) {
            change(served);
        }
    }

    /// What each business the invocation served used of it (`domain::cost::attribute`).
    pub fn by_business(&self) -> Vec<(BusinessId, Units)> {
        cost::attribute(&self.0.usage.borrow(), self.0.entry, &self.0.served.borrow())
    }

    /// Counts what Cloudflare bills: `add` adds it to the invocation's count.
    pub fn bill(&self, add: impl FnOnce(&mut Billed)) {
        add(&mut self.0.usage.borrow_mut().billed);
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
        let billed = usage.billed;
        console_log!(
            "[usage] {} d1_queries={} d1_round_trips={} rows_read={} rows_written={} subrequests={} kv={} peak_buffered={} wasm_memory={} elapsed_ms={} d1_wait_ms={} d1_sql_us={} kv_reads={} kv_writes={} queue_operations={} r2_class_a={} r2_class_b={} do_requests={}",
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
            (waited.sql_ms * 1000.0) as u64,
            billed.kv_reads,
            billed.kv_writes,
            billed.queue_operations,
            billed.r2_class_a,
            billed.r2_class_b,
            billed.do_requests
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

#[cfg(test)]
mod tests {
    use crate::runtime::Level;
    use crate::testing::Fixture;
    use domain::platform::{BUFFERED_BYTES, D1_QUERIES, KV_OPERATIONS};

    /// Runs `count` one-statement queries on the first shard, each through the invocation's `Db`.
    async fn queries(fixture: &Fixture, count: u32) -> Result<(), crate::db::Error> {
        let shard = fixture.db.on_shard(0);
        for _ in 0..count {
            shard.unscoped("SELECT 1 AS one").all().await?;
        }
        Ok(())
    }

    #[test]
    fn the_thousand_and_first_d1_query_of_an_invocation_fails_as_production_would() {
        let fixture = Fixture::new();
        fixture.run(async {
            queries(&fixture, D1_QUERIES)
                .await
                .unwrap_or_else(|error| panic!("the first thousand run: {error}"));
            let error = queries(&fixture, 1)
                .await
                .err()
                .map(|error| error.to_string())
                .unwrap_or_else(|| panic!("the 1001st ran"));
            assert!(
                error.contains("1001 D1 queries in one invocation; the limit is 1000"),
                "{error}"
            );
            assert_eq!(
                fixture.stack.logged(Level::Error, "[limit] native test").len(),
                1,
                "{:?}",
                fixture.stack.logs()
            );
        });
    }

    #[test]
    fn a_new_invocation_starts_a_new_count() {
        let fixture = Fixture::new();
        fixture.run(async {
            queries(&fixture, D1_QUERIES)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let next = crate::Env::new(fixture.stack.clone(), "queue");
            let db = next.db().unwrap_or_else(|error| panic!("{error}"));
            db.on_shard(0)
                .unscoped("SELECT 1 AS one")
                .all()
                .await
                .unwrap_or_else(|error| panic!("another invocation's first query: {error}"));
            assert_eq!(next.usage().d1_queries, 1);
        });
    }

    #[test]
    fn without_enforcement_the_count_is_kept_and_nothing_is_refused_or_logged() {
        let fixture = Fixture::new();
        fixture.stack.remove_var("PLATFORM_LIMITS");
        let env = crate::Env::new(fixture.stack.clone(), "fetch");
        fixture.run(async {
            let db = env.db().unwrap_or_else(|error| panic!("{error}"));
            for _ in 0..=D1_QUERIES {
                db.on_shard(0)
                    .unscoped("SELECT 1 AS one")
                    .all()
                    .await
                    .unwrap_or_else(|error| panic!("{error}"));
            }
            assert_eq!(env.usage().d1_queries, D1_QUERIES + 1);
            env.report();
        });
        assert!(fixture.stack.logged(Level::Error, "[limit]").is_empty());
        assert!(fixture.stack.logged(Level::Log, "[usage]").is_empty());
    }

    #[test]
    fn a_batch_counts_each_statement_and_one_round_trip() {
        let fixture = Fixture::new();
        fixture.run(async {
            let shard = fixture.db.on_shard(0);
            let statements = (0..3).map(|_| shard.unscoped("SELECT 1 AS one")).collect();
            shard
                .batch(statements)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let usage = fixture.env.usage();
            assert_eq!((usage.d1_queries, usage.d1_round_trips), (3, 1));
        });
    }

    #[test]
    fn bytes_held_count_until_their_guard_is_dropped_and_past_half_the_isolate_are_refused() {
        let fixture = Fixture::new();
        let env = &fixture.env;
        assert_eq!(env.room(), BUFFERED_BYTES);
        let first = env
            .hold(BUFFERED_BYTES - 10)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(env.room(), 10);
        let refused = env.hold(11).err().map(|error| error.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|error| error.contains("bytes held in buffers at once")),
            "{refused:?}"
        );
        assert_eq!(env.room(), 10, "a refused hold holds nothing");
        let within = env.hold(10).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(env.room(), 0);
        drop(first);
        drop(within);
        assert_eq!(env.room(), BUFFERED_BYTES);
        assert_eq!(
            env.usage().peak_buffered_bytes,
            BUFFERED_BYTES + 1,
            "the peak is kept for the usage line, showing how far past the refused hold went"
        );
    }

    #[test]
    fn every_kv_handle_taken_is_one_operation_and_the_thousand_and_first_is_refused() {
        let fixture = Fixture::new();
        for _ in 0..KV_OPERATIONS {
            fixture
                .env
                .kv(crate::AUTH_CACHE)
                .unwrap_or_else(|error| panic!("{error}"));
        }
        assert!(fixture.env.kv(crate::AUTH_CACHE).is_err());
        assert_eq!(fixture.env.usage().kv_operations, KV_OPERATIONS + 1);
    }

    #[test]
    fn an_invocation_reports_one_usage_line_naming_its_function_and_entry() {
        let fixture = Fixture::new();
        fixture.stack.set_var("CRM_EDGE_FUNCTION", "customers-sync");
        let env = crate::Env::new(fixture.stack.clone(), "fetch");
        fixture.run(async {
            let db = env.db().unwrap_or_else(|error| panic!("{error}"));
            db.on_shard(0)
                .unscoped("SELECT 1 AS one")
                .all()
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        });
        env.queue("OUTBOUND", 1).unwrap_or_else(|error| panic!("{error}"));
        env.report();
        let lines = fixture.stack.logged(Level::Log, "[usage] customers-sync fetch ");
        assert_eq!(lines.len(), 1, "{:?}", fixture.stack.logs());
        assert!(
            lines[0].contains(" d1_queries=1 d1_round_trips=1 ") && lines[0].contains(" subrequests=1 "),
            "{}",
            lines[0]
        );
    }
}
