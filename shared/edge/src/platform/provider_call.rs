//! One call to a channel provider (a message's send, an alert's email), bounded in time: a
//! provider that does not answer within [`SEND_TIMEOUT_MS`] is abandoned (its request aborted)
//! and the attempt counts as transient. The caller reads the answer with the provider's own
//! `classify`, so that a function sending through one provider holds no other's code.

use crate::Env;
use crate::platform::bounded_fetch::{self, Failure};
use crate::runtime;
use domain::providers::Provider;
use domain::providers::api::{Outcome, ProviderRequest};
use domain::providers::sending::{self, MAX_ANSWER_BYTES, SEND_TIMEOUT_MS};

/// What came of a call: the outcome, the HTTP status if there was an answer, and how long it took.
pub struct Answer {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub millis: u64,
}

/// Makes `request` to `provider`, its answer (status, `Retry-After` in seconds, body) read by
/// `classify`.
pub async fn send(
    env: &Env,
    request: &ProviderRequest,
    provider: Provider,
    classify: impl Fn(u16, Option<u32>, &[u8]) -> Outcome,
) -> Answer {
    let exchange = bounded_fetch::post(
        env,
        &request.url,
        &request.headers,
        &request.body,
        SEND_TIMEOUT_MS,
        MAX_ANSWER_BYTES,
    )
    .await;
    let (outcome, status) = match exchange.result {
        Ok(reply) => (
            classify(
                reply.status,
                reply
                    .retry_after
                    .as_deref()
                    .and_then(|value| domain::retry_after::seconds(value, runtime::now())),
                &reply.body,
            ),
            Some(reply.status),
        ),
        Err(Failure::Unreachable(error)) => (sending::unreachable(provider, false, &error), None),
        Err(Failure::TimedOut) => (sending::unreachable(provider, true, ""), None),
    };
    Answer {
        outcome,
        status,
        millis: exchange.millis,
    }
}
