//! Sending a message through whichever provider carries it: the calls to make ([`requests`]),
//! what an answer or its absence means ([`classify`], [`unreachable`]), and what then becomes of
//! the message ([`decide`]): sent, tried again later, or failed with the provider's reason.

use super::api::{Outcome, Outgoing, ProviderRequest, Sender, truncate};
use super::{Provider, mailgun::api as mailgun, meta::api as meta, twilio::api as twilio};

/// How long one call to a provider may take before it is abandoned and counted as a failure
/// worth retrying. A provider that has not answered in this time is overloaded or unreachable.
pub const SEND_TIMEOUT_MS: u64 = 10_000;

/// How much of a provider's answer is read: its documented answers (an id, or an error object)
/// are a few hundred bytes; anything past this is not read, and the transfer is cancelled.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The delivery attempt on which a message that still cannot be sent is given up as failed.
/// The queue allows one delivery more (`max_retries = 5`), so a message whose final status
/// could not be written is still settled on that last delivery rather than left queued.
pub const MAX_ATTEMPTS: u32 = 5;

/// The longest a retry is put off, whatever a provider's `Retry-After` asks: Queues' own limit.
pub const MAX_RETRY_DELAY_SECONDS: u32 = 43_200;

/// How long the signed download link a provider fetches an attachment from stays valid. Meta
/// and Twilio fetch at send time; an hour covers their own queues.
pub const PROVIDER_LINK_LIFETIME_SECONDS: i64 = 60 * 60;
/// Email is read later: a file linked from an email (one too large to attach) stays there a week.
pub const EMAIL_LINK_LIFETIME_SECONDS: i64 = 7 * 24 * 60 * 60;

/// The calls that send `outgoing` from `sender`, in order. Most messages are one call; Meta
/// takes one call per attachment (its messages carry one medium each). `boundary` separates the
/// parts of a multipart body (random, so that no attachment can contain it).
pub fn requests(sender: &Sender, outgoing: &Outgoing<'_>, boundary: &str) -> Vec<ProviderRequest> {
    match sender {
        Sender::Meta {
            base_url,
            sender_id,
            access_token,
        } => meta::requests(base_url, sender_id, access_token, outgoing),
        Sender::Twilio {
            base_url,
            account_sid,
            auth_token,
            from,
        } => vec![twilio::request(base_url, account_sid, auth_token, from, outgoing)],
        Sender::Mailgun {
            base_url,
            domain,
            api_key,
            from,
        } => vec![mailgun::request(
            base_url, domain, api_key, from, outgoing, boundary,
        )],
    }
}

/// The call that answers the Facebook comment `comment_id` with `text` from `sender`: in public
/// under it, or `privately` into its author's Messenger. Err: why it cannot be sent.
pub fn comment_reply(
    sender: &Sender,
    comment_id: &str,
    privately: bool,
    text: &str,
) -> Result<ProviderRequest, meta::Uncallable> {
    if privately {
        meta::private_reply_request(sender, comment_id, text)
    } else {
        meta::comment_reply_request(sender, comment_id, text)
    }
}

/// Reads a provider's answer: 2xx is sent; 429 and 5xx are transient; any other status is a
/// rejection carrying the provider's own error message. Providers that report throttling in a
/// 4xx body (Meta) are read as transient too.
pub fn classify(provider: Provider, status: u16, retry_after: Option<u32>, body: &[u8]) -> Outcome {
    match provider {
        Provider::Meta => meta::classify(status, retry_after, body),
        Provider::Twilio => twilio::classify(status, retry_after, body),
        Provider::Mailgun => mailgun::classify(status, retry_after, body),
    }
}

/// The outcome of a call that got no answer: always worth another try.
pub fn unreachable(provider: Provider, timed_out: bool, error: &str) -> Outcome {
    let reason = if timed_out {
        format!(
            "{} did not answer within {} s",
            provider.as_str(),
            SEND_TIMEOUT_MS / 1000
        )
    } else {
        format!("{} could not be reached: {error}", provider.as_str())
    };
    Outcome::Transient {
        reason: truncate(&reason),
        retry_after: None,
    }
}

/// What becomes of the message after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    MarkSent {
        provider_message_id: Option<String>,
    },
    /// Leave it queued and deliver it again after `delay_seconds`.
    Retry {
        delay_seconds: u32,
        reason: String,
    },
    MarkFailed {
        reason: String,
    },
}

/// `attempt` counts deliveries of the message from 1. A transient failure is retried after the
/// provider's `Retry-After`, or else 2, 4, 8, 16 s (doubling per attempt), until the attempt
/// reaches [`MAX_ATTEMPTS`]; then the message fails with that last reason.
pub fn decide(outcome: Outcome, attempt: u32) -> Decision {
    match outcome {
        Outcome::Sent { provider_message_id } => Decision::MarkSent { provider_message_id },
        Outcome::Rejected { reason } => Decision::MarkFailed { reason },
        Outcome::Transient { reason, .. } if attempt >= MAX_ATTEMPTS => Decision::MarkFailed {
            reason: truncate(&format!("gave up after {attempt} attempts: {reason}")),
        },
        Outcome::Transient { reason, retry_after } => Decision::Retry {
            delay_seconds: retry_after
                .unwrap_or_else(|| backoff_seconds(attempt))
                .min(MAX_RETRY_DELAY_SECONDS),
            reason,
        },
    }
}

/// 2 s after the first attempt, doubling after each further one.
pub fn backoff_seconds(attempt: u32) -> u32 {
    2u32.saturating_pow(attempt.clamp(1, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_and_then_fail_with_the_last_reason() {
        let transient = |retry_after| Outcome::Transient {
            reason: "meta answered 500".to_owned(),
            retry_after,
        };
        let cases = [
            (
                transient(None),
                1,
                Decision::Retry {
                    delay_seconds: 2,
                    reason: "meta answered 500".into(),
                },
                "first attempt: 2 s",
            ),
            (
                transient(None),
                2,
                Decision::Retry {
                    delay_seconds: 4,
                    reason: "meta answered 500".into(),
                },
                "second: 4 s",
            ),
            (
                transient(None),
                4,
                Decision::Retry {
                    delay_seconds: 16,
                    reason: "meta answered 500".into(),
                },
                "fourth: 16 s",
            ),
            (
                transient(Some(1)),
                3,
                Decision::Retry {
                    delay_seconds: 1,
                    reason: "meta answered 500".into(),
                },
                "Retry-After wins",
            ),
            (
                transient(Some(999_999)),
                1,
                Decision::Retry {
                    delay_seconds: MAX_RETRY_DELAY_SECONDS,
                    reason: "meta answered 500".into(),
                },
                "Retry-After is capped",
            ),
            (
                transient(None),
                MAX_ATTEMPTS,
                Decision::MarkFailed {
                    reason: "gave up after 5 attempts: meta answered 500".into(),
                },
                "the last attempt fails",
            ),
            (
                transient(Some(1)),
                MAX_ATTEMPTS + 1,
                Decision::MarkFailed {
                    reason: "gave up after 6 attempts: meta answered 500".into(),
                },
                "a delivery past the last still fails",
            ),
            (
                Outcome::Rejected {
                    reason: "invalid number".into(),
                },
                1,
                Decision::MarkFailed {
                    reason: "invalid number".into(),
                },
                "a rejection fails at once",
            ),
            (
                Outcome::Sent {
                    provider_message_id: Some("SM1".into()),
                },
                3,
                Decision::MarkSent {
                    provider_message_id: Some("SM1".into()),
                },
                "sent on a retry",
            ),
        ];
        for (outcome, attempt, expected, description) in cases {
            assert_eq!(decide(outcome, attempt), expected, "{description}");
        }
    }

    #[test]
    fn no_answer_is_worth_another_try() {
        assert_eq!(
            unreachable(Provider::Twilio, true, ""),
            Outcome::Transient {
                reason: "twilio did not answer within 10 s".into(),
                retry_after: None
            }
        );
        assert!(matches!(
            unreachable(Provider::Mailgun, false, "connection refused"),
            Outcome::Transient { reason, .. } if reason.contains("connection refused")
        ));
    }
}
