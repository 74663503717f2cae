//! What a connector does after a CRM call that did not succeed: wait and try again (5xx,
//! timeouts, connection errors), wait with the whole connector (429: the CRM's budget is the
//! organisation's, not one contact's), or fail at once with the CRM's reason (any other 4xx).
//! Work is retried for a whole day before it is given up as dead; each wait doubles, with jitter
//! so that contacts that failed together do not come back together.

/// How long work is retried before it is dead: a CRM down for a day is an outage somebody
/// replays after, not one we keep knocking on.
pub const RETRY_WINDOW_SECONDS: i64 = 24 * 3600;
/// The first wait, doubled after each failure...
pub const FIRST_RETRY_SECONDS: u32 = 2;
/// ...up to this: a CRM that is back is found within five minutes.
pub const MAX_RETRY_SECONDS: u32 = 300;
/// The longest a 429 pauses a connector, whatever the CRM asks: a day's budget spent says
/// "tomorrow", and a connector is better looked at again within the hour.
pub const MAX_PAUSE_SECONDS: u32 = 3600;

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The CRM answered with an error status. `wait` is what its headers asked for
    /// (`Retry-After`, else the rate limit's reset), in seconds; `reason` what its body said.
    Status {
        status: u16,
        wait: Option<u32>,
        reason: String,
    },
    TimedOut,
    /// No answer: refused, reset, DNS, TLS.
    Unreachable(String),
}

/// What to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Try this work again after the wait.
    Retry { after_seconds: u32, reason: String },
    /// The CRM's rate limit: no call for this connector before the wait is over.
    Throttled { after_seconds: u32, reason: String },
    /// Retrying cannot help.
    Fail { reason: String },
}

/// The wait before try number `attempt + 1`, after `attempt` failures (1 or more): 2, 4, 8 …
/// seconds up to [`MAX_RETRY_SECONDS`], each between half and all of that ("equal jitter";
/// `jitter` is uniform in [0, 1)).
pub fn backoff_seconds(attempt: u32, jitter: f64) -> u32 {
    let doubled = 1u64 << attempt.saturating_sub(1).min(20);
    let full = (u64::from(FIRST_RETRY_SECONDS) * doubled).min(u64::from(MAX_RETRY_SECONDS)) as f64;
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((full / 2.0) + jitter * (full / 2.0)).round().max(1.0) as u32
}

/// The verdict on a failed call that was try number `attempt` (1 or more) of its work.
pub fn classify(failure: &CallFailure, attempt: u32, jitter: f64) -> Verdict {
    let backoff = backoff_seconds(attempt, jitter);
    match failure {
        CallFailure::Status {
            status: 429,
            wait,
            reason,
        } => Verdict::Throttled {
            after_seconds: wait.unwrap_or(backoff).clamp(1, MAX_PAUSE_SECONDS),
            reason: format!("429: {reason}"),
        },
        CallFailure::Status {
            status: status @ (408 | 500..=599),
            wait,
            reason,
        } => Verdict::Retry {
            // A server that says when to come back is believed, within the pause limit.
            after_seconds: wait
                .map_or(backoff, |wait| wait.max(backoff))
                .min(MAX_PAUSE_SECONDS),
            reason: format!("{status}: {reason}"),
        },
        CallFailure::Status { status, reason, .. } => Verdict::Fail {
            reason: format!("{status}: {reason}"),
        },
        CallFailure::TimedOut => Verdict::Retry {
            after_seconds: backoff,
            reason: "the CRM did not answer in time".to_owned(),
        },
        CallFailure::Unreachable(cause) => Verdict::Retry {
            after_seconds: backoff,
            reason: format!("the CRM could not be reached: {cause}"),
        },
    }
}

/// The seconds until a rate limit's window resets, from an `x-ratelimit-reset` header: a Unix
/// time (seconds or milliseconds) when the value is that large, else seconds to wait.
pub fn reset_seconds(value: &str, now_us: i64) -> Option<u32> {
    let value: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|value: &f64| value.is_finite() && *value >= 0.0)?;
    let now_seconds = now_us as f64 / 1e6;
    let wait = if value > 1e12 {
        value / 1000.0 - now_seconds
    } else if value > 1e9 {
        value - now_seconds
    } else {
        value
    };
    Some(wait.max(0.0).ceil().min(f64::from(u32::MAX)) as u32)
}

/// Whether work first recorded at `created_us` has been retried long enough to be dead.
pub fn out_of_time(created_us: i64, now_us: i64) -> bool {
    now_us - created_us > RETRY_WINDOW_SECONDS * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, wait: Option<u32>) -> CallFailure {
        CallFailure::Status {
            status,
            wait,
            reason: "said so".to_owned(),
        }
    }

    #[test]
    fn waits_double_up_to_five_minutes_with_jitter_between_half_and_all() {
        let lowest: Vec<u32> = (1..=10).map(|attempt| backoff_seconds(attempt, 0.0)).collect();
        let highest: Vec<u32> = (1..=10)
            .map(|attempt| backoff_seconds(attempt, 0.999_999))
            .collect();
        assert_eq!(lowest, vec![1, 2, 4, 8, 16, 32, 64, 128, 150, 150]);
        assert_eq!(highest, vec![2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_seconds(u32::MAX, f64::NAN), 150, "no overflow, no NaN");
    }

    #[test]
    fn each_failure_gets_its_verdict() {
        let cases = [
            (status(429, Some(30)), "throttled 30", "429 waits what it asks"),
            (status(429, None), "throttled 2", "429 without a wait backs off"),
            (
                status(429, Some(86_400)),
                "throttled 3600",
                "a day's wait is capped",
            ),
            (status(500, None), "retry 2", "5xx backs off"),
            (
                status(503, Some(120)),
                "retry 120",
                "5xx with Retry-After is believed",
            ),
            (status(408, None), "retry 2", "a request timeout is retried"),
            (status(400, None), "fail", "400 fails now"),
            (status(401, None), "fail", "401 fails now"),
            (status(404, Some(5)), "fail", "404 fails now"),
            (CallFailure::TimedOut, "retry 2", "a timeout is retried"),
            (
                CallFailure::Unreachable("refused".into()),
                "retry 2",
                "refused is retried",
            ),
        ];
        for (failure, expected, description) in cases {
            let seen = match classify(&failure, 1, 0.999_999) {
                Verdict::Throttled { after_seconds, .. } => format!("throttled {after_seconds}"),
                Verdict::Retry { after_seconds, .. } => format!("retry {after_seconds}"),
                Verdict::Fail { .. } => "fail".to_owned(),
            };
            assert_eq!(seen, expected, "{description}");
        }
    }

    #[test]
    fn the_crms_reason_is_kept_with_its_status() {
        let Verdict::Fail { reason } = classify(&status(422, None), 1, 0.5) else {
            panic!("a 422 fails");
        };
        assert_eq!(reason, "422: said so");
    }

    #[test]
    fn a_reset_is_read_as_seconds_or_as_a_unix_time() {
        let now = 1_700_000_000_000_000;
        assert_eq!(reset_seconds("30", now), Some(30));
        assert_eq!(reset_seconds("1700000045", now), Some(45));
        assert_eq!(reset_seconds("1700000045000", now), Some(45));
        assert_eq!(reset_seconds("1600000000", now), Some(0), "a reset already past");
        assert_eq!(reset_seconds("soon", now), None);
        assert_eq!(reset_seconds("-4", now), None);
    }

    #[test]
    fn work_is_dead_after_a_day_of_retries() {
        let day = RETRY_WINDOW_SECONDS * 1_000_000;
        assert!(!out_of_time(0, day));
        assert!(out_of_time(0, day + 1));
    }
}
