//! A connector's health as numbers (docs/connectors.md, "Health"): each call to its CRM is counted
//! by the minute it was made in ([`Minute`]: calls, failed calls, time taken, and calls by how
//! long they took), and the production checklist's KPIs are read from a window of minutes
//! ([`Health`]): uptime (the share of minutes with calls in which a call succeeded), average and
//! 95th-percentile response time, error rate; beside them the checklist's targets ([`TARGETS`]).

use serde::Serialize;

/// A minute, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// The window a status reads its health over.
pub const WINDOW_HOURS: u32 = 24;
/// The upper bounds (ms) of the response-time classes a minute counts calls in; a call slower
/// than the last is in a class of its own.
pub const BOUNDS_MS: [u32; 6] = [100, 250, 500, 1_000, 2_000, 5_000];
/// Classes of response time: one per bound, and the slower.
pub const CLASSES: usize = BOUNDS_MS.len() + 1;

/// The calls of one minute to one connector's CRM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minute {
    pub calls: u32,
    /// Calls the CRM failed or did not answer: a 4xx other than 404, a 5xx, a time-out, no
    /// connection. A 404 is an answer (a record that is not there).
    pub failures: u32,
    pub total_ms: u64,
    /// Calls by response time: `by_time[i]` took at most `BOUNDS_MS[i]`, the last longer.
    pub by_time: [u32; CLASSES],
}

impl Minute {
    /// One call that took `millis` and failed or not.
    pub fn record(&mut self, millis: u64, failed: bool) {
        self.calls += 1;
        self.failures += u32::from(failed);
        self.total_ms += millis;
        let class = BOUNDS_MS
            .iter()
            .position(|bound| millis <= u64::from(*bound))
            .unwrap_or(CLASSES - 1);
        self.by_time[class] += 1;
    }

    /// The minute `at_ms` is in.
    pub fn start_of(at_ms: i64) -> i64 {
        at_ms - at_ms.rem_euclid(MINUTE_MS)
    }
}

/// A window of minutes summed, as the store adds them up: `minutes` with calls, of which
/// `minutes_up` had a call that succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub minutes: u32,
    pub minutes_up: u32,
    pub sums: Minute,
}

/// The production checklist's targets (001, "Success Metrics").
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Targets {
    /// Uptime above this share.
    pub uptime: f64,
    /// Average CRM response time below this.
    pub average_response_ms: u32,
    /// Error rate below this share.
    pub error_rate: f64,
    /// Sync success above this share.
    pub sync_success_rate: f64,
}

/// 99.5 % uptime, under 2 s on average, under 1 % errors, over 99 % of syncs succeeding.
pub const TARGETS: Targets = Targets {
    uptime: 0.995,
    average_response_ms: 2_000,
    error_rate: 0.01,
    sync_success_rate: 0.99,
};

/// A connector's calls to its CRM over a window, as the checklist's KPIs. Each figure is null when
/// no call was made in the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Health {
    /// The window's length.
    pub window_hours: u32,
    pub calls: u64,
    pub failed_calls: u64,
    /// Minutes with calls, and of them those in which a call succeeded.
    pub minutes_with_calls: u32,
    pub minutes_up: u32,
    /// minutes_up / minutes_with_calls: the share of minutes in which the CRM answered.
    pub uptime: Option<f64>,
    pub average_response_ms: Option<f64>,
    /// The response time 95 % of calls took at most, to the class it falls in (100, 250, 500,
    /// 1000, 2000 or 5000 ms; above 5000: the slowest class, given as 10000, the time-out).
    pub p95_response_ms: Option<u32>,
    /// failed_calls / calls.
    pub error_rate: Option<f64>,
    pub targets: Targets,
}

/// The time-out a call is given up at: the slowest class's bound.
const SLOWEST_MS: u32 = 10_000;

impl Health {
    pub fn of(window: &Window, window_hours: u32) -> Self {
        let sums = window.sums;
        let calls = u64::from(sums.calls);
        let share = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        let p95 = (calls > 0).then(|| {
            let wanted = (calls * 95).div_ceil(100);
            let mut seen = 0;
            for (class, count) in sums.by_time.iter().enumerate() {
                seen += u64::from(*count);
                if seen >= wanted {
                    return BOUNDS_MS.get(class).copied().unwrap_or(SLOWEST_MS);
                }
            }
            SLOWEST_MS
        });
        Health {
            window_hours,
            calls,
            failed_calls: u64::from(sums.failures),
            minutes_with_calls: window.minutes,
            minutes_up: window.minutes_up,
            uptime: share(u64::from(window.minutes_up), u64::from(window.minutes)),
            average_response_ms: share(sums.total_ms, calls),
            p95_response_ms: p95,
            error_rate: share(u64::from(sums.failures), calls),
            targets: TARGETS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_counted_in_its_response_times_class_and_a_failure_as_one() {
        let mut minute = Minute::default();
        for (millis, failed) in [
            (40, false),
            (100, false),
            (101, false),
            (1_500, true),
            (9_000, true),
        ] {
            minute.record(millis, failed);
        }
        assert_eq!(minute.calls, 5);
        assert_eq!(minute.failures, 2);
        assert_eq!(minute.total_ms, 10_741);
        assert_eq!(minute.by_time, [2, 1, 0, 0, 1, 0, 1]);
        assert_eq!(Minute::start_of(90_500), 60_000);
    }

    #[test]
    fn the_kpis_are_read_from_the_window_and_are_null_without_calls() {
        let mut sums = Minute::default();
        for _ in 0..95 {
            sums.record(80, false);
        }
        for _ in 0..5 {
            sums.record(3_000, true);
        }
        let health = Health::of(
            &Window {
                minutes: 10,
                minutes_up: 9,
                sums,
            },
            24,
        );
        assert_eq!(health.calls, 100);
        assert_eq!(health.uptime, Some(0.9));
        assert_eq!(health.average_response_ms, Some(226.0));
        assert_eq!(
            health.p95_response_ms,
            Some(100),
            "the 95th call is the last fast one"
        );
        assert_eq!(health.error_rate, Some(0.05));
        sums.record(20_000, true);
        let slower = Health::of(
            &Window {
                minutes: 10,
                minutes_up: 9,
                sums,
            },
            24,
        );
        assert_eq!(slower.p95_response_ms, Some(5_000));
        let idle = Health::of(&Window::default(), 24);
        assert_eq!(
            (
                idle.uptime,
                idle.average_response_ms,
                idle.p95_response_ms,
                idle.error_rate
            ),
            (None, None, None, None)
        );
    }
}
