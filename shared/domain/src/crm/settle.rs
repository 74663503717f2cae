//! How a try of a piece of CRM work ends up in the sync log: what the work's row records, whether
//! the connector is paused or its health changes, and whether the contact's work goes on now.

use crate::crm::retry::{self, CallFailure, Verdict};
use crate::crm::work::JobStatus;

/// How one try of a piece of work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the CRM's id for the record it made or changed.
    Synced { crm_id: Option<String> },
    /// Nothing to do, and why.
    Skipped(String),
    /// It cannot be done, whatever the CRM does (the settings are unusable).
    Invalid(String),
    /// The budget had no room for this long: the work waits, no try is counted.
    Budget { wait_ms: i64 },
    /// A call failed: retried or failed as [`retry::classify`] says.
    Failed(CallFailure),
}

/// What to record and do after a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The row's new state; None leaves the row as it is but for `next_attempt_us` (a deferral,
    /// which counts no try).
    pub status: Option<JobStatus>,
    pub crm_id: Option<String>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub next_attempt_us: i64,
    /// The connector's last error, for its status.
    pub health_error: Option<String>,
    /// Pause every call to the connector until then (a 429).
    pub pause_until_us: Option<i64>,
    /// None: go on with the contact's next work now. Some: stop, and come back after so many
    /// seconds (the contact's work stays in order behind this piece).
    pub resume_after_seconds: Option<u32>,
}

/// The decision on `outcome` for work at try number `attempt` (1 or more) whose retry window began
/// at `retry_from_us`. `jitter` is uniform in [0, 1).
pub fn decide(outcome: Outcome, attempt: u32, retry_from_us: i64, now_us: i64, jitter: f64) -> Decision {
    let done = |status: JobStatus, crm_id: Option<String>, error: Option<String>| Decision {
        status: Some(status),
        crm_id,
        http_status: None,
        error,
        next_attempt_us: now_us,
        health_error: None,
        pause_until_us: None,
        resume_after_seconds: None,
    };
    match outcome {
        Outcome::Synced { crm_id } => done(JobStatus::Succeeded, crm_id, None),
        Outcome::Skipped(reason) => done(JobStatus::Skipped, None, Some(reason)),
        Outcome::Invalid(reason) => Decision {
            health_error: Some(reason.clone()),
            ..done(JobStatus::Failed, None, Some(reason))
        },
        Outcome::Budget { wait_ms } => Decision {
            status: None,
            next_attempt_us: now_us + wait_ms * 1000,
            resume_after_seconds: Some(((wait_ms + 999) / 1000).clamp(1, i64::from(u32::MAX)) as u32),
            ..done(JobStatus::Pending, None, None)
        },
        Outcome::Failed(failure) => {
            let http_status = match &failure {
                CallFailure::Status { status, .. } => Some(*status),
                _ => None,
            };
            match retry::classify(&failure, attempt, jitter) {
                Verdict::Fail { reason } => Decision {
                    http_status,
                    health_error: Some(reason.clone()),
                    ..done(JobStatus::Failed, None, Some(reason))
                },
                Verdict::Retry {
                    after_seconds,
                    reason,
                }
                | Verdict::Throttled {
                    after_seconds,
                    reason,
                } => {
                    let next = now_us + i64::from(after_seconds) * 1_000_000;
                    let pause_until_us = (http_status == Some(429)).then_some(next);
                    if retry::out_of_time(retry_from_us, now_us) {
                        let reason =
                            format!("given up after {attempt} tries over the retry window: {reason}");
                        return Decision {
                            http_status,
                            health_error: Some(reason.clone()),
                            pause_until_us,
                            ..done(JobStatus::Dead, None, Some(reason))
                        };
                    }
                    Decision {
                        http_status,
                        next_attempt_us: next,
                        health_error: Some(reason.clone()),
                        pause_until_us,
                        resume_after_seconds: Some(after_seconds),
                        ..done(JobStatus::Pending, None, Some(reason))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000_000_000;

    fn failed(status: u16, wait: Option<u32>) -> Outcome {
        Outcome::Failed(CallFailure::Status {
            status,
            wait,
            reason: "no".to_owned(),
        })
    }

    #[test]
    fn success_and_skips_go_straight_on() {
        let synced = decide(
            Outcome::Synced {
                crm_id: Some("k1".into()),
            },
            1,
            NOW,
            NOW,
            0.5,
        );
        assert_eq!(synced.status, Some(JobStatus::Succeeded));
        assert_eq!(synced.crm_id.as_deref(), Some("k1"));
        assert_eq!(synced.resume_after_seconds, None);
        let skipped = decide(Outcome::Skipped("off".into()), 1, NOW, NOW, 0.5);
        assert_eq!(
            (skipped.status, skipped.error.as_deref()),
            (Some(JobStatus::Skipped), Some("off"))
        );
    }

    #[test]
    fn a_refusal_fails_the_work_and_the_contact_goes_on() {
        let decision = decide(failed(400, None), 1, NOW, NOW, 0.5);
        assert_eq!(decision.status, Some(JobStatus::Failed));
        assert_eq!(decision.http_status, Some(400));
        assert_eq!(decision.error.as_deref(), Some("400: no"));
        assert_eq!(decision.resume_after_seconds, None);
    }

    #[test]
    fn a_transient_failure_keeps_the_work_pending_and_stops_the_contact() {
        let decision = decide(failed(503, None), 3, NOW, NOW, 0.0);
        assert_eq!(decision.status, Some(JobStatus::Pending));
        assert_eq!(decision.next_attempt_us, NOW + 4_000_000);
        assert_eq!(decision.resume_after_seconds, Some(4));
        assert_eq!(decision.pause_until_us, None, "only a 429 pauses the connector");
    }

    #[test]
    fn a_429_pauses_the_whole_connector_for_what_it_asks() {
        let decision = decide(failed(429, Some(20)), 1, NOW, NOW, 0.5);
        assert_eq!(decision.pause_until_us, Some(NOW + 20_000_000));
        assert_eq!(decision.resume_after_seconds, Some(20));
    }

    #[test]
    fn a_spent_budget_defers_without_counting_a_try() {
        let decision = decide(Outcome::Budget { wait_ms: 1_500 }, 1, NOW, NOW, 0.5);
        assert_eq!(decision.status, None);
        assert_eq!(decision.next_attempt_us, NOW + 1_500_000);
        assert_eq!(decision.resume_after_seconds, Some(2));
    }

    #[test]
    fn work_retried_for_the_whole_window_is_dead() {
        let started = NOW - retry::RETRY_WINDOW_SECONDS * 1_000_000 - 1;
        let decision = decide(Outcome::Failed(CallFailure::TimedOut), 40, started, NOW, 0.5);
        assert_eq!(decision.status, Some(JobStatus::Dead));
        assert!(
            decision
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("given up after 40 tries"))
        );
        assert_eq!(
            decision.resume_after_seconds, None,
            "the contact's next work goes on"
        );
    }
}
