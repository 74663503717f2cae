//! One call to a provider, bounded in time: a provider that does not answer within
//! [`SEND_TIMEOUT_MS`] is abandoned (its request aborted) and the attempt counts as transient.

use domain::providers::Provider;
use domain::providers::api::{Outcome, ProviderRequest};
use domain::providers::sending::{self, MAX_ANSWER_BYTES, SEND_TIMEOUT_MS};
use edge::Env;
use edge::bounded_fetch::{self, Failure};
use edge::runtime;

/// What came of a call: the outcome, the HTTP status if there was an answer, and how long it took.
pub struct Answer {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub millis: u64,
}

pub async fn send(env: &Env, request: &ProviderRequest, provider: Provider) -> Answer {
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
            sending::classify(
                provider,
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
