//! Each business's bill, counted off the request path (docs/limits.md, "What each business
//! costs"; `domain::cost` says what goes to whom). As an invocation ends, what it used is added
//! to its isolate's tally by business and day ([`settle`]); the tally is stored in
//! `business_usage` by the first invocation to end once [`STORE_EVERY`] has passed since its last
//! store (one statement a business, one row a business a day), so D1 is written at most once per
//! isolate every 20 seconds or so, never once per request. A store that fails keeps its units for
//! the next. An isolate evicted between two stores loses what it counted since the last one, as
//! the keys' usage counts are lost (`gateway::usage`).
//!
//! The gateway keeps no tally: it stores nothing (and would carry D1's code for it). What
//! Cloudflare bills it for is counted where it leads (`domain::cost::invocation`): its request by
//! the function it hands the request to, its call to a rate limiter by the limiter object.

use crate::db::{self, Db};
use crate::platform::meter::Meter;
use crate::{console_error, runtime};
use domain::cost;
use domain::ids::BusinessId;
use domain::pricing::Units;
use domain::tenant::Tenant;
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;

/// The setting of how many seconds an isolate waits between two stores of its tally (20 where it
/// is not set; the local stack's is shorter, and 0 stores at the end of every invocation).
pub const STORE_EVERY: &str = "USAGE_REPORT_SECONDS";
const DEFAULT_STORE_EVERY_SECONDS: i64 = 20;
/// Business-days one store writes at most (each one statement); the rest wait for the next.
const STORED_PER_RUN: usize = 50;
/// Business-days an isolate's tally holds at most: units of another are not counted, and said so.
const MAX_OWED: usize = 5_000;

#[derive(Default)]
struct Tally {
    isolate: u64,
    /// Units not stored yet, by business and day.
    owed: Vec<(BusinessId, String, Units)>,
    /// When the isolate last stored its tally (ms).
    stored_ms: Option<i64>,
    /// Units not counted since the tally was full, to be said once.
    dropped: bool,
}

impl Tally {
    fn add(&mut self, business: BusinessId, day: &str, units: &Units) {
        let full = self.owed.len() >= MAX_OWED;
        match self.owed.iter_mut().find(|(b, d, _)| *b == business && d == day) {
            Some((_, _, owed)) => {
                for meter in cost::COUNTED {
                    owed.add(meter, units.get(meter));
                }
            }
            None if full => self.dropped = true,
            None => self.owed.push((business, day.to_owned(), units.clone())),
        }
    }
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

/// The isolate's tally (a new isolate's is empty).
fn with_tally<T>(use_it: impl FnOnce(&mut Tally) -> T) -> T {
    TALLY.with(|tally| {
        let mut tally = tally.borrow_mut();
        let isolate = runtime::isolate();
        if tally.isolate != isolate {
            *tally = Tally {
                isolate,
                ..Tally::default()
            };
        }
        use_it(&mut tally)
    })
}

/// [`settle`] behind a pointer: what `Env::d1` hands its invocation for after its usage line,
/// so that only a function that opens D1 links the tally in (the gateway, which stores nothing,
/// does not).
pub type Settle = for<'a> fn(&'a Meter, &'a Db, Option<String>) -> LocalBoxFuture<'a, ()>;

/// [`settle`], as a [`Settle`].
pub fn settle_boxed<'a>(meter: &'a Meter, db: &'a Db, store_every: Option<String>) -> LocalBoxFuture<'a, ()> {
    Box::pin(settle(meter, db, store_every))
}

/// Adds what the invocation `meter` counted used to its isolate's tally, by business, and stores
/// the tally in `db` when it is due (`store_every`: the [`STORE_EVERY`] setting). Run after an
/// invocation's usage line (`Env::after_report`) when it opened D1, and by the rate limiter
/// object.
pub async fn settle(meter: &Meter, db: &Db, store_every: Option<String>) {
    let now = runtime::now();
    let day = cost::day_of(now);
    let every_ms = store_every
        .and_then(|seconds| seconds.trim().parse::<i64>().ok())
        .unwrap_or(DEFAULT_STORE_EVERY_SECONDS)
        * 1000;
    let (owed, dropped) = with_tally(|tally| {
        for (business, units) in meter.by_business() {
            tally.add(business, &day, &units);
        }
        let due = tally
            .stored_ms
            .is_none_or(|stored| now.millis() - stored >= every_ms);
        if !due || tally.owed.is_empty() {
            return (Vec::new(), false);
        }
        tally.stored_ms = Some(now.millis());
        let take = tally.owed.len().min(STORED_PER_RUN);
        (
            tally.owed.drain(..take).collect::<Vec<_>>(),
            std::mem::take(&mut tally.dropped),
        )
    });
    if dropped {
        console_error!("an isolate's tally of businesses' usage was full: some units were not counted");
    }
    // One statement a business, one after the other: a few businesses an isolate, typically.
    let mut failed = None;
    for (business, day, units) in owed {
        let tenant = Tenant::for_background(business);
        if let Err(error) = db::business_usage::add(db, &tenant, &day, &units).await {
            with_tally(|tally| tally.add(tenant.business_id, &day, &units));
            failed = Some(error);
        }
    }
    if let Some(error) = failed {
        console_error!("businesses' usage was not stored, kept for the next store: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Env;
    use crate::runtime::Level;
    use crate::testing::{Fixture, Must};
    use domain::pricing::Meter;
    use std::time::Duration;

    /// One invocation (a queue batch: a billed request) that reads `tenant`'s business row, then
    /// settles.
    async fn invocation(fixture: &Fixture, tenant: &Tenant) {
        let env = Env::new(fixture.stack.clone(), "queue");
        let db = env.db().must();
        db.scoped(tenant, "SELECT id FROM businesses WHERE id = ?1")
            .all()
            .await
            .must();
        env.queue("OUTBOUND", 2).must();
        env.after_report().await;
    }

    /// What `business_usage` holds of the business today.
    async fn stored(fixture: &Fixture, tenant: &Tenant) -> Units {
        let day = cost::day_of(runtime::now());
        db::business_usage::days(&fixture.db, tenant, &day)
            .await
            .must()
            .into_iter()
            .next()
            .map(|(_, units)| units)
            .unwrap_or_default()
    }

    /// Renames a table on every shard.
    async fn rename(fixture: &Fixture, from: &str, to: &str) {
        for shard in fixture.db.each_shard() {
            shard
                .unscoped(format!("ALTER TABLE {from} RENAME TO {to}"))
                .run()
                .await
                .must();
        }
    }

    #[test]
    fn an_isolate_stores_its_tally_at_most_every_so_often_and_a_failed_store_keeps_it() {
        let fixture = Fixture::new();
        fixture.stack.set_var(STORE_EVERY, "20");
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            invocation(&fixture, &acme).await;
            let first = stored(&fixture, &acme).await;
            assert_eq!(
                (
                    first.get(Meter::WorkerRequests),
                    first.get(Meter::D1RowsRead),
                    first.get(Meter::QueueOperations)
                ),
                (1, 1, 2),
                "the isolate's first store is at once"
            );
            invocation(&fixture, &acme).await;
            assert_eq!(
                stored(&fixture, &acme).await,
                first,
                "not again within 20 seconds"
            );

            // The next store fails: the table is gone for a while.
            fixture.stack.advance(Duration::from_secs(20));
            rename(&fixture, "business_usage", "gone").await;
            invocation(&fixture, &acme).await;
            assert_eq!(
                fixture
                    .stack
                    .logged(Level::Error, "businesses' usage was not stored")
                    .len(),
                1
            );
            rename(&fixture, "gone", "business_usage").await;

            fixture.stack.advance(Duration::from_secs(20));
            invocation(&fixture, &acme).await;
            let all = stored(&fixture, &acme).await;
            assert_eq!(
                (
                    all.get(Meter::WorkerRequests),
                    all.get(Meter::D1RowsRead),
                    all.get(Meter::QueueOperations)
                ),
                (4, 4, 8),
                "every invocation's units, the failed store's kept for the next"
            );
        });
    }
}
