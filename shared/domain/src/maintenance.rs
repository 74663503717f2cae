//! The rules of the periodic maintenance sweep: when a queued send counts as lost, how often it
//! is put back on the queue before it is failed, and how long settled history is kept.

use crate::providers::sending::{MAX_ATTEMPTS, MAX_RETRY_DELAY_SECONDS, backoff_seconds};
use serde::Serialize;

/// Rows a sweep touches per table and run: D1 statements stay small, and a backlog is worked
/// off a minute at a time.
pub const ROWS_PER_RUN: usize = 1000;

/// How many times the sweep puts one lost send back on the queue before it gives up on it and
/// fails it: a message that the dispatcher never settles in that many rounds will not be.
pub const MAX_SEND_REQUEUES: u32 = 3;

/// The reason a send the sweep gave up on is failed with, as the client reads it.
pub fn send_lost_reason() -> String {
    format!(
        "the message was never dispatched although it was put back on the queue {MAX_SEND_REQUEUES} times; \
         nothing was sent"
    )
}

/// A file received with a message still pending this long after it arrived is handed back to the
/// media-fetcher, once: its tries (about six minutes of them) and the queue's own redeliveries are
/// long over, so its queue message was lost.
pub const MEDIA_REQUEUE_AFTER_SECONDS: i64 = 30 * 60;
/// A file still pending this long after it arrived is failed, and its message's event goes out.
pub const MEDIA_GIVE_UP_AFTER_SECONDS: i64 = 2 * 60 * 60;
/// Files the sweep hands back or fails per run: each failed one costs a few queries (its row, its
/// message's held events), and the sweep's other parts share the invocation's D1 queries.
pub const MEDIA_ROWS_PER_RUN: usize = 50;

/// The reason a file the sweep gave up on is failed with, as the client reads it.
pub fn media_lost_reason() -> String {
    format!(
        "the file was not fetched within {} hours although it was handed back to the fetcher once",
        MEDIA_GIVE_UP_AFTER_SECONDS / 3600
    )
}

/// The longest one queue consumer invocation runs (Cloudflare stops a queue consumer after 15
/// minutes of wall time), so the longest one delivery of a message can take.
pub const CONSUMER_WALL_SECONDS: i64 = 15 * 60;

/// How long the queue waits to fill a batch before handing it over (`max_batch_timeout` of
/// message-dispatcher in functions.toml).
pub const BATCH_WAIT_SECONDS: i64 = 1;

/// How many times the queue delivers one message at most: `max_retries = 5` in functions.toml,
/// one delivery more than [`MAX_ATTEMPTS`] so that a failure to settle is settled on the last.
pub const QUEUE_DELIVERIES: u32 = MAX_ATTEMPTS + 1;

/// How long a `queued` outbound message may go without a write (its acceptance, or the
/// dispatcher's note of a retry) before the sweep treats its queue message as lost.
///
/// Between two writes, a message's queue message can only be waiting on our own faults: the
/// dispatcher backs those off by [`backoff_seconds`] per delivery (2, 4, 8, 16, 32 s, each at
/// least the queue's `retry_delay` of 2 s), and each of the [`QUEUE_DELIVERIES`] deliveries
/// runs at most [`CONSUMER_WALL_SECONDS`] after [`BATCH_WAIT_SECONDS`]. A transient provider
/// failure writes a retry note (`retry_noted`) and may then wait up to
/// [`MAX_RETRY_DELAY_SECONDS`] (a provider's `Retry-After`, capped at Queues' 12 hours) before
/// the next delivery. Past this bound no delivery of the original queue message can still be
/// pending or running, so re-queuing it cannot make two dispatchers send it at once. What the
/// bound cannot cover is a queue that delivers nothing for longer (a consumer outage); see
/// the Reliability section of docs/operations.md.
pub fn stuck_send_after_seconds(retry_noted: bool) -> i64 {
    let own_fault_waits: i64 = (1..=MAX_ATTEMPTS)
        .map(|attempt| i64::from(backoff_seconds(attempt)))
        .sum();
    let deliveries = i64::from(QUEUE_DELIVERIES) * (CONSUMER_WALL_SECONDS + BATCH_WAIT_SECONDS);
    let provider_wait = if retry_noted {
        i64::from(MAX_RETRY_DELAY_SECONDS)
    } else {
        0
    };
    own_fault_waits + deliveries + provider_wait
}

/// Expired SSO tokens are kept this long past their expiry, so that a page that just lost its
/// session still gets "expired" rather than "unknown token" for a while.
pub const SSO_EXPIRED_GRACE_SECONDS: i64 = 24 * 60 * 60;

/// Console links and sessions are kept this long after they ended (expired or revoked by then),
/// so that the API access page can still tell a session that ended from one that never was.
pub const CONSOLE_ENDED_GRACE_SECONDS: i64 = 24 * 60 * 60;

/// How long delivered webhook history (events whose deliveries are all settled, and attempt
/// logs) is kept: a deployment setting, `RETENTION_DAYS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPeriod(u32);

impl RetentionPeriod {
    pub const DEFAULT_DAYS: u32 = 30;
    pub const MIN_DAYS: u32 = 1;
    pub const MAX_DAYS: u32 = 365;

    /// The period `RETENTION_DAYS` sets. Unset means the default; a value that is not a whole
    /// number of days in bounds also means the default, with the warning to log: a typo in a
    /// deployment setting must not stop the sweep nor delete history early.
    pub fn from_setting(value: Option<&str>) -> (Self, Option<String>) {
        let Some(raw) = value.map(str::trim).filter(|raw| !raw.is_empty()) else {
            return (Self::default(), None);
        };
        match raw.parse::<u32>() {
            Ok(days) if (Self::MIN_DAYS..=Self::MAX_DAYS).contains(&days) => (Self(days), None),
            _ => (
                Self::default(),
                Some(format!(
                    "RETENTION_DAYS={raw:?} is not a whole number of days from {} to {}; keeping {} days",
                    Self::MIN_DAYS,
                    Self::MAX_DAYS,
                    Self::DEFAULT_DAYS
                )),
            ),
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    pub fn seconds(self) -> i64 {
        i64::from(self.0) * 86_400
    }
}

impl Default for RetentionPeriod {
    fn default() -> Self {
        Self(Self::DEFAULT_DAYS)
    }
}

/// A bot's turn not taken this long after it was handed to the bot's queue is handed over again:
/// well past the generator's retries (4 attempts, 5 s apart and growing) and the queue's delays.
pub const BOT_TURN_REQUEUE_AFTER_SECONDS: i64 = 300;
/// A bot's turn handed over this many times by the sweep and still not taken is given up.
pub const MAX_BOT_TURN_REQUEUES: i64 = 6;

/// What one run did, per kind; `failed` names the parts that could not run (logged).
#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SweepReport {
    pub retention_days: u32,
    pub webhook_tasks_requeued: usize,
    pub sends_requeued: usize,
    pub sends_failed: usize,
    pub media_requeued: usize,
    pub media_failed: usize,
    pub webhook_events_deleted: usize,
    pub webhook_deliveries_deleted: usize,
    pub webhook_attempts_deleted: usize,
    pub sso_tokens_deleted: usize,
    pub console_sessions_deleted: usize,
    /// OAuth authorisations started and left unfinished, deleted once expired.
    pub oauth_states_deleted: usize,
    /// Inbound kept while its business was paused and never stored, deleted past the retention
    /// period (R2 objects).
    pub held_inbound_deleted: usize,
    /// Customers whose erasure the sweep finished (`domain::erasure`).
    pub customers_erased: usize,
    pub idempotency_keys_deleted: usize,
    /// Hours of API usage older than 35 days.
    pub api_key_usage_deleted: usize,
    /// Days of businesses' usage past a year and a month (`domain::cost::KEPT_DAYS`).
    pub business_usage_deleted: usize,
    /// Minutes of connectors' call counts older than 35 days.
    pub crm_call_minutes_deleted: usize,
    pub crm_contacts_handed_over: usize,
    pub crm_sync_jobs_deleted: usize,
    pub crm_inbound_events_deleted: usize,
    pub crm_links_due: usize,
    /// The bot's turns a lost queue message left waiting, handed to it again; and those given up
    /// after as many tries (people see their messages as always).
    pub bot_turns_requeued: usize,
    pub bot_turns_given_up: usize,
    /// Rows deleted of copies that moves left behind (an old copy whose deletion stopped, an
    /// aborted move's partial copy).
    pub moved_copy_rows_deleted: usize,
    /// Alerts the rules raised and resolved (docs/alerts.md), alert emails sent, and resolved
    /// alerts older than 35 days deleted.
    pub alerts_raised: usize,
    pub alerts_resolved: usize,
    pub alert_emails_sent: usize,
    pub alerts_deleted: usize,
    pub failed: Vec<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_setting_is_read_in_bounds_and_falls_back_to_the_default_with_a_warning() {
        let cases = [
            (None, 30, false, "unset"),
            (Some(""), 30, false, "empty"),
            (Some("7"), 7, false, "a week"),
            (Some(" 90 "), 90, false, "spaces around"),
            (Some("1"), 1, false, "the lower bound"),
            (Some("365"), 365, false, "the upper bound"),
            (Some("0"), 30, true, "zero would delete everything"),
            (Some("366"), 30, true, "over a year"),
            (Some("-5"), 30, true, "negative"),
            (Some("30d"), 30, true, "a unit"),
            (Some("7.5"), 30, true, "a fraction"),
            (Some("99999999999"), 30, true, "overflow"),
        ];
        for (value, days, warns, description) in cases {
            let (period, warning) = RetentionPeriod::from_setting(value);
            assert_eq!(period.days(), days, "{description}");
            assert_eq!(warning.is_some(), warns, "{description}: {warning:?}");
        }
        assert_eq!(RetentionPeriod::default().seconds(), 30 * 86_400);
    }

    #[test]
    fn a_send_counts_as_lost_only_after_every_delivery_and_delay_the_queue_can_make() {
        // 6 deliveries of at most 15 min (plus the 1 s batch wait), 2+4+8+16+32 s of own-fault
        // backoff, and for a message with a retry note one provider delay of up to 12 h.
        assert_eq!(stuck_send_after_seconds(false), 6 * 901 + 62);
        assert_eq!(stuck_send_after_seconds(true), 6 * 901 + 62 + 43_200);
        assert_eq!(
            QUEUE_DELIVERIES, 6,
            "max_retries = 5 in functions.toml allows 6 deliveries"
        );
    }

    #[test]
    fn the_queue_settings_the_bound_is_built_on_match_functions_toml() {
        let manifest = include_str!("../../../functions.toml");
        let consumer = manifest
            .split("[functions.message-dispatcher.consumes]")
            .nth(1)
            .and_then(|rest| rest.split("note =").next())
            .unwrap_or_default();
        assert!(
            consumer.contains(&format!("max_retries = {}", QUEUE_DELIVERIES - 1)),
            "{consumer}"
        );
        assert!(
            consumer.contains(&format!("max_batch_timeout = {BATCH_WAIT_SECONDS}")),
            "{consumer}"
        );
        assert!(consumer.contains("retry_delay = 2"), "{consumer}");
    }
}
