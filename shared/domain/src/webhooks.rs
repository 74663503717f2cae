//! Outbound webhooks, the pure part: which events exist, which URLs may receive them, what an
//! endpoint's settings may be, and what to do after each delivery attempt (the retry policy).

use crate::destination::Destination;
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An event a business can subscribe to: the seed's list, plus the test event that the
/// "send test event" button sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum EventType {
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned,
    #[serde(rename = "conversation.status_changed")]
    ConversationStatusChanged,
    #[serde(rename = "customer.created")]
    CustomerCreated,
    #[serde(rename = "customer.updated")]
    CustomerUpdated,
    /// A customer was erased on request: none of their data is left (`domain::erasure`).
    #[serde(rename = "customer.erased")]
    CustomerErased,
    /// An alert rule's condition began to hold (domain::alerts).
    #[serde(rename = "alert.raised")]
    AlertRaised,
    /// An alert's condition is over.
    #[serde(rename = "alert.resolved")]
    AlertResolved,
    /// Sent by "send test event" only: no endpoint subscribes to it.
    #[serde(rename = "webhook.test")]
    #[cfg_attr(feature = "openapi", schemars(skip))]
    Test,
}

impl EventType {
    /// The events an endpoint can subscribe to (the test event goes only where it is asked for).
    pub const SUBSCRIBABLE: [EventType; 10] = [
        Self::MessageReceived,
        Self::MessageSent,
        Self::ConversationCreated,
        Self::ConversationAssigned,
        Self::ConversationStatusChanged,
        Self::CustomerCreated,
        Self::CustomerUpdated,
        Self::CustomerErased,
        Self::AlertRaised,
        Self::AlertResolved,
    ];

    /// Whether a connected CRM follows events of this type: the chat's records do, an alert
    /// about the integration and the test event do not, nor an erasure, whose CRM work the
    /// erasure itself records (it outlives the records an event would be read from).
    pub fn is_followed_by_crms(self) -> bool {
        !matches!(
            self,
            Self::AlertRaised | Self::AlertResolved | Self::Test | Self::CustomerErased
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "message.received",
            Self::MessageSent => "message.sent",
            Self::ConversationCreated => "conversation.created",
            Self::ConversationAssigned => "conversation.assigned",
            Self::ConversationStatusChanged => "conversation.status_changed",
            Self::CustomerCreated => "customer.created",
            Self::CustomerUpdated => "customer.updated",
            Self::CustomerErased => "customer.erased",
            Self::AlertRaised => "alert.raised",
            Self::AlertResolved => "alert.resolved",
            Self::Test => "webhook.test",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([Self::Test])
            .find(|event| event.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an endpoint the business turned off is off; any other reason is ours (it failed too
/// long), which the "endpoint disabled" alert is about.
pub const DISABLED_BY_BUSINESS: &str = "disabled by the business";

/// The events an endpoint asked for: a non-empty set of subscribable events, without repeats.
/// Absent means every event.
pub fn parse_subscription(names: Option<&[String]>) -> Result<Vec<EventType>, ApiError> {
    let Some(names) = names else {
        return Ok(EventType::SUBSCRIBABLE.to_vec());
    };
    if names.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "subscribe to at least one event (or leave `events` out for all of them)",
        ));
    }
    let mut events = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let event = EventType::parse(name.trim())
            .filter(|event| *event != EventType::Test)
            .ok_or_else(|| {
                let known: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect();
                ApiError::invalid(
                    format!("events[{index}]"),
                    format!("unknown event {name:?}; events are {}", known.join(", ")),
                )
            })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// Where deliveries go: a [`Destination`] (https to a public host, or, only when the
/// deployment runs locally, http(s) to loopback, where test receivers listen) without a
/// fragment, which a receiver would never see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointUrl(String);

pub const MAX_URL_LENGTH: usize = 2048;

impl EndpointUrl {
    pub fn parse(input: &str, allow_loopback_http: bool) -> Result<Self, String> {
        let url = input.trim();
        if url.len() > MAX_URL_LENGTH {
            return Err(format!("url is longer than {MAX_URL_LENGTH} characters"));
        }
        let destination = Destination::parse("url", url, allow_loopback_http)?;
        if destination.url().fragment().is_some() {
            return Err("url must not have a fragment".to_owned());
        }
        // Stored as given: the runtime's fetch parses it exactly as it was judged here.
        Ok(Self(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long an endpoint is given to answer, per attempt.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 15;
pub const MAX_TIMEOUT_SECONDS: u32 = 30;
/// How long an endpoint may fail without a single success before it is disabled.
pub const DEFAULT_DISABLE_AFTER_SECONDS: u32 = 5 * 24 * 3600;
pub const MIN_DISABLE_AFTER_SECONDS: u32 = 1;
pub const MAX_DISABLE_AFTER_SECONDS: u32 = 30 * 24 * 3600;
/// How long a rotated-out secret keeps signing beside the new one, unless the caller says.
pub const DEFAULT_ROTATION_GRACE_SECONDS: u32 = 24 * 3600;
pub const MAX_ROTATION_GRACE_SECONDS: u32 = 7 * 24 * 3600;
/// How much of a receiver's answer the attempt log keeps.
pub const LOGGED_BODY_BYTES: usize = 1024;
/// Queues delay a message by at most 12 hours; no wait is longer than that.
pub const MAX_DELAY_SECONDS: u32 = 12 * 3600;
/// The lease a retry holds its delivery under: one attempt at the longest timeout an endpoint
/// may have, and 15 s to record its result. Until it ends nobody else attempts the delivery;
/// after it, the sweep hands it to another worker.
pub const LEASE_SECONDS: i64 = MAX_TIMEOUT_SECONDS as i64 + 15;
/// Test sends an endpoint may make per [`TEST_WINDOW_SECONDS`]: enough to fix a receiver by
/// trial, too few to turn the button into a request generator.
pub const TESTS_PER_WINDOW: u32 = 10;
pub const TEST_WINDOW_SECONDS: i64 = 60;

/// The waits between attempts. `Standard` is the seed's: three retries after 2, 4 and 8 s.
/// `Extended` spreads seven retries over a day and a half, for receivers that go down for hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetrySchedule {
    #[default]
    Standard,
    Extended,
}

impl RetrySchedule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Extended => "extended",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Standard, Self::Extended]
            .into_iter()
            .find(|schedule| schedule.as_str() == name)
    }

    /// The wait before each retry, in seconds.
    pub fn delays(self) -> &'static [u32] {
        match self {
            Self::Standard => &[2, 4, 8],
            Self::Extended => &[5, 300, 1800, 7200, 18_000, 36_000, 36_000],
        }
    }
}

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The receiver answered with this status (and maybe a `Retry-After`).
    Status {
        code: u16,
        /// The receiver's `Retry-After`, in seconds.
        retry_after: Option<u32>,
    },
    TimedOut,
    /// No answer: the connection was refused or broke.
    Unreachable,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryIn(u32),
    /// No further attempt: the receiver refused it (a 4xx other than 429, or a redirect, which
    /// is not followed), or every retry of the schedule has been spent.
    DeadLetter,
}

/// The seed's rule: 2xx is success; 5xx, 429, timeouts and connection errors are retried after
/// the schedule's wait or the receiver's `Retry-After`, whichever is longer; anything else is
/// final. `attempt` counts from 1.
///
/// One exception: a 4xx refusal of an attempt whose seed header was signed with the previous
/// secret during a rotation (`signed_with_previous`) is retried like a 5xx, because the
/// receiver may already hold the new secret, which the next attempt signs with.
pub fn verdict(
    answer: &Answer,
    attempt: u32,
    schedule: RetrySchedule,
    signed_with_previous: bool,
) -> Verdict {
    let retry_after = match answer {
        Answer::Status { code, .. } if (200..300).contains(code) => return Verdict::Delivered,
        Answer::Status { code, retry_after } if *code == 429 || *code >= 500 => *retry_after,
        Answer::Status { code, .. } if signed_with_previous && (400..500).contains(code) => None,
        Answer::Status { .. } => return Verdict::DeadLetter,
        Answer::TimedOut | Answer::Unreachable => None,
    };
    let Some(&wait) = schedule.delays().get(attempt.saturating_sub(1) as usize) else {
        return Verdict::DeadLetter;
    };
    Verdict::RetryIn(wait.max(retry_after.unwrap_or(0)).min(MAX_DELAY_SECONDS))
}

/// The first `LOGGED_BODY_BYTES` of a response body as text, cut at a character boundary.
pub fn truncate_for_log(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(LOGGED_BODY_BYTES + 4)]);
    let mut end = text.len().min(LOGGED_BODY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// True when an endpoint that has failed since `failing_since_us` (and just failed again at
/// `now_us`) has failed for longer than it is allowed to.
pub fn should_disable(failing_since_us: i64, now_us: i64, disable_after_seconds: u32) -> bool {
    now_us.saturating_sub(failing_since_us) >= i64::from(disable_after_seconds) * 1_000_000
}

/// A bounded integer setting from a request, with the field named in the error.
pub fn bounded(field: &str, value: Option<u32>, default: u32, min: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(value) if (min..=max).contains(&value) => Ok(value),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be between {min} and {max}"),
        )),
    }
}

/// The fields of a message event's `message` (and its customer's `external_id`) that the core
/// guide's receiver reads at the top of `data` (`data.content`, `data.channel`,
/// `data.created_at`; "data contains: message_id, customer_id, external_id, content, channel"),
/// copied there beside the nested records. A name `data` has already is left as it is.
pub fn with_flat_message_fields(data: &mut serde_json::Map<String, serde_json::Value>) {
    const FROM_MESSAGE: [(&str, &str); 7] = [
        ("message_id", "id"),
        ("conversation_id", "conversation_id"),
        ("customer_id", "customer_id"),
        ("content", "content"),
        ("channel", "channel"),
        ("direction", "direction"),
        ("created_at", "created_at"),
    ];
    let mut flat = Vec::with_capacity(FROM_MESSAGE.len() + 1);
    if let Some(message) = data.get("message") {
        flat.extend(
            FROM_MESSAGE
                .iter()
                .filter_map(|(name, field)| Some((*name, message.get(*field)?.clone()))),
        );
    }
    if let Some(external_id) = data
        .get("customer")
        .and_then(|customer| customer.get("external_id"))
    {
        flat.push(("external_id", external_id.clone()));
    }
    for (name, value) in flat {
        data.entry(name).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u32>) -> Answer {
        Answer::Status { code, retry_after }
    }

    #[test]
    fn the_standard_schedule_retries_three_times_after_2_4_and_8_seconds() {
        let schedule = RetrySchedule::Standard;
        let waits: Vec<Verdict> = (1..=4)
            .map(|n| verdict(&status(500, None), n, schedule, false))
            .collect();
        assert_eq!(
            waits,
            [
                Verdict::RetryIn(2),
                Verdict::RetryIn(4),
                Verdict::RetryIn(8),
                Verdict::DeadLetter
            ]
        );
    }

    #[test]
    fn each_answer_gets_the_seeds_treatment() {
        let cases = [
            (status(200, None), Verdict::Delivered, "2xx is delivered"),
            (status(204, None), Verdict::Delivered, "any 2xx"),
            (status(500, None), Verdict::RetryIn(2), "5xx is retried"),
            (status(503, None), Verdict::RetryIn(2), "503 too"),
            (status(429, None), Verdict::RetryIn(2), "429 is retried"),
            (
                status(429, Some(30)),
                Verdict::RetryIn(30),
                "Retry-After longer than the schedule wins",
            ),
            (
                status(503, Some(1)),
                Verdict::RetryIn(2),
                "a shorter Retry-After does not hasten",
            ),
            (
                status(429, Some(999999)),
                Verdict::RetryIn(MAX_DELAY_SECONDS),
                "capped at 12 h",
            ),
            (status(400, None), Verdict::DeadLetter, "4xx is final"),
            (status(410, None), Verdict::DeadLetter, "410 gone is final"),
            (
                status(404, Some(5)),
                Verdict::DeadLetter,
                "Retry-After does not revive a 404",
            ),
            (
                status(301, None),
                Verdict::DeadLetter,
                "redirects are not followed",
            ),
            (Answer::TimedOut, Verdict::RetryIn(2), "timeouts are retried"),
            (
                Answer::Unreachable,
                Verdict::RetryIn(2),
                "refused connections are retried",
            ),
        ];
        for (answer, expected, why) in cases {
            assert_eq!(
                verdict(&answer, 1, RetrySchedule::Standard, false),
                expected,
                "{why}"
            );
        }
    }

    #[test]
    fn a_refusal_of_the_old_secret_during_a_rotation_is_retried_with_the_new_one() {
        let schedule = RetrySchedule::Standard;
        assert_eq!(
            verdict(&status(401, None), 1, schedule, true),
            Verdict::RetryIn(2)
        );
        assert_eq!(
            verdict(&status(403, None), 3, schedule, true),
            Verdict::RetryIn(8)
        );
        assert_eq!(
            verdict(&status(401, None), 4, schedule, true),
            Verdict::DeadLetter
        );
        assert_eq!(
            verdict(&status(401, None), 2, schedule, false),
            Verdict::DeadLetter
        );
        assert_eq!(
            verdict(&status(301, None), 1, schedule, true),
            Verdict::DeadLetter
        );
    }

    #[test]
    fn the_extended_schedule_reaches_hours_and_then_gives_up() {
        let schedule = RetrySchedule::Extended;
        assert_eq!(
            verdict(&Answer::TimedOut, 5, schedule, false),
            Verdict::RetryIn(18_000)
        );
        assert_eq!(
            verdict(&Answer::TimedOut, 8, schedule, false),
            Verdict::DeadLetter
        );
    }

    #[test]
    fn endpoint_urls_must_be_https_except_to_loopback_in_local_mode() {
        let cases = [
            ("https://crm.example.com/hooks", false, true),
            ("HTTPS://crm.example.com:8443/hooks?x=1", false, true),
            ("http://crm.example.com/hooks", false, false),
            ("http://127.0.0.1:9000/hooks", false, false),
            ("http://127.0.0.1:9000/hooks", true, true),
            ("http://localhost:9000/", true, true),
            ("http://[::1]:9000/", true, true),
            ("http://10.0.0.1/", true, false),
            ("http://crm.example.com/", true, false),
            ("ftp://crm.example.com/", true, false),
            ("https://user:pw@crm.example.com/", false, false),
            ("https://crm.example.com/#frag", false, false),
            ("https:///nohost", false, false),
            ("https://crm.example.com:99999/", false, false),
            ("https://crm example.com/", false, false),
            ("https://xn--bcher-kva.example/hooks", false, true),
            ("crm.example.com/hooks", false, false),
            ("", false, false),
        ];
        for (url, local, ok) in cases {
            assert_eq!(EndpointUrl::parse(url, local).is_ok(), ok, "{url} local={local}");
        }
        let unicode = EndpointUrl::parse("https://bücher.example/hooks", false);
        assert!(unicode.is_err_and(|error| error.contains("punycode")));
        let long = format!("https://crm.example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(EndpointUrl::parse(&long, false).is_err());
    }

    #[test]
    fn subscriptions_name_known_events_once() {
        assert_eq!(parse_subscription(None).map(|e| e.len()).ok(), Some(10));
        let names = vec!["message.received".to_owned(), "message.received".to_owned()];
        assert_eq!(
            parse_subscription(Some(&names)).ok(),
            Some(vec![EventType::MessageReceived])
        );
        for bad in [
            vec![],
            vec!["message.deleted".to_owned()],
            vec!["webhook.test".to_owned()],
        ] {
            assert!(parse_subscription(Some(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn logged_bodies_are_cut_at_a_character_boundary() {
        let body = "é".repeat(LOGGED_BODY_BYTES);
        let logged = truncate_for_log(body.as_bytes());
        assert!(logged.len() <= LOGGED_BODY_BYTES && logged.len() >= LOGGED_BODY_BYTES - 1);
        assert_eq!(truncate_for_log(b"ok"), "ok");
    }

    #[test]
    fn an_endpoint_is_disabled_once_it_has_failed_for_its_whole_allowance() {
        assert!(!should_disable(0, 59_999_999, 60));
        assert!(should_disable(0, 60_000_000, 60));
    }

    #[test]
    fn a_message_events_data_carries_the_guides_flat_fields_beside_the_nested_records() {
        let mut data = serde_json::json!({
            "message": {
                "id": "m1", "conversation_id": "c1", "customer_id": "u1", "content": "Hi",
                "channel": "whatsapp", "direction": "inbound", "created_at": "2025-11-04T09:00:00.000Z",
                "status": "received"
            },
            "customer": {"id": "u1", "name": "Ana", "external_id": "SF-1"},
            "channel": "kept as it was"
        });
        let Some(map) = data.as_object_mut() else {
            panic!("an object")
        };
        with_flat_message_fields(map);
        assert_eq!(data["message_id"], "m1");
        assert_eq!(data["conversation_id"], "c1");
        assert_eq!(data["customer_id"], "u1");
        assert_eq!(data["content"], "Hi");
        assert_eq!(data["direction"], "inbound");
        assert_eq!(data["created_at"], "2025-11-04T09:00:00.000Z");
        assert_eq!(data["external_id"], "SF-1");
        assert_eq!(
            data["channel"], "kept as it was",
            "a name data has is not overwritten"
        );
        assert_eq!(data.get("status"), None, "only the guide's fields");
        assert_eq!(data["message"]["content"], "Hi", "the nested record stays");
    }

    #[test]
    fn a_customer_without_an_external_id_and_data_without_a_message_add_nothing() {
        let mut data = serde_json::json!({"customer": {"id": "u1", "external_id": null}});
        let Some(map) = data.as_object_mut() else {
            panic!("an object")
        };
        with_flat_message_fields(map);
        assert_eq!(
            data,
            serde_json::json!({"customer": {"id": "u1", "external_id": null}, "external_id": null})
        );
    }
}
