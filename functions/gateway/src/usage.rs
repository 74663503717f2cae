//! Usage per key (docs/limits.md, "Usage per key"): each request of an API key is counted here,
//! in the isolate, by the hour, endpoint and status class (`domain::key_usage::Tally`), and the
//! counts go to the key's limiter object some seconds after the first of them
//! ([`REPORT_AFTER_SECONDS`], 20 by default), which stores them in D1. The report is sent from
//! the request's background (`Context::wait_until`, which Cloudflare keeps for up to 30 seconds
//! after the answer): no request waits for its count, and D1 is written once per key, isolate
//! and report, not once per request. An isolate that is evicted before its report loses its
//! counts of those seconds, as an isolate's lease of tokens is lost.

use crate::limits;
use domain::key_usage::{self, Tally};
use domain::rate_limit::{Ask, Holder};
use edge::Env;
use edge::console_error;
use edge::runtime::{self, Context, Delay};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// The deployment setting: seconds from a key's first counted request to its report (0: at
/// once, after the answer; the native tests' setting, whose clock would jump by the wait).
pub const REPORT_AFTER_SECONDS: &str = "USAGE_REPORT_SECONDS";
const DEFAULT_REPORT_AFTER_SECONDS: u64 = 20;
/// Keys an isolate counts at once, at most: a request of another is not counted.
const MAX_KEYS: usize = 10_000;

thread_local! {
    /// What this isolate counted of each key's requests and has not reported, by the key's
    /// holder name: a key has a tally here exactly while its report is waiting to go.
    static TALLIES: RefCell<HashMap<String, Tally>> = RefCell::new(HashMap::new());
}

/// A request of a key, as usage counts it.
pub struct Use {
    holder: Holder,
    endpoint: String,
    address: Option<String>,
}

impl Use {
    /// The request's use of a key, to the route that serves it; `None` for a request with no
    /// key (a session's, a partner's webhook).
    pub fn of(
        holder: Option<&Holder>,
        method: &str,
        owning: &domain::api::Owning,
        address: Option<String>,
    ) -> Option<Self> {
        let holder @ Holder::Key(_) = holder? else {
            return None;
        };
        Some(Self {
            holder: holder.clone(),
            endpoint: key_usage::endpoint(method, owning.route, owning.below),
            address,
        })
    }

    /// Counts the request as answered `status` (`rate_limited`: refused by the key's limit), and
    /// schedules the key's report if none is waiting.
    pub fn count(self, env: &Env, ctx: &Context, status: u16, rate_limited: bool) {
        let name = self.holder.name();
        let now = runtime::now().millis();
        let first = TALLIES.with(|tallies| {
            let mut tallies = tallies.borrow_mut();
            if tallies.len() >= MAX_KEYS && !tallies.contains_key(&name) {
                return None;
            }
            let tally = tallies.entry(name).or_default();
            let first = tally.is_empty();
            tally.count(now, self.address.as_deref(), &self.endpoint, status, rate_limited);
            Some(first)
        });
        if first == Some(true) {
            ctx.wait_until(report_later(env.clone(), self.holder, report_after(env)));
        }
    }
}

fn report_after(env: &Env) -> Duration {
    let seconds = env
        .var(REPORT_AFTER_SECONDS)
        .and_then(|seconds| seconds.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_REPORT_AFTER_SECONDS);
    Duration::from_secs(seconds.min(25))
}

/// Waits, then hands what was counted of the key's requests meanwhile to its limiter object.
async fn report_later(env: Env, holder: Holder, after: Duration) {
    if !after.is_zero() {
        Delay::from(after).await;
    }
    let name = holder.name();
    let report = TALLIES.with(|tallies| {
        tallies
            .borrow_mut()
            .remove(&name)
            .and_then(|mut tally| tally.take())
    });
    let Some(report) = report else {
        return;
    };
    if let Err(error) = limits::tell(&env, &name, &Ask::Usage { holder, report }).await {
        console_error!("a key's usage was not stored: {error:?}");
    }
}
