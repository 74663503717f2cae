//! One call to a provider, bounded in time: a provider that does not answer within
//! [`SEND_TIMEOUT_MS`] is abandoned (its request aborted) and the attempt counts as transient.

use futures_util::future::{Either, select};
use shared::channel::Provider;
use shared::outbound_clients::{self, Outcome, ProviderRequest, SEND_TIMEOUT_MS};
use std::pin::pin;
use std::time::Duration;
use worker::js_sys::Uint8Array;
use worker::{AbortController, AbortSignal, Date, Delay, Fetch, Headers, Method, Request, RequestInit};

/// What came of a call: the outcome, the HTTP status if there was an answer, and how long it took.
pub struct Answer {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub millis: u64,
}

pub async fn send(request: &ProviderRequest, provider: Provider) -> Answer {
    let started = Date::now().as_millis();
    let controller = AbortController::default();
    let call = pin!(call(request, controller.signal()));
    let deadline = pin!(Delay::from(Duration::from_millis(SEND_TIMEOUT_MS)));
    let (outcome, status) = match select(call, deadline).await {
        Either::Left((Ok((status, retry_after, body)), _)) => (
            outbound_clients::classify(provider, status, retry_after.as_deref(), &body),
            Some(status),
        ),
        Either::Left((Err(error), _)) => (
            outbound_clients::unreachable(provider, false, &error.to_string()),
            None,
        ),
        Either::Right(_) => {
            controller.abort();
            (outbound_clients::unreachable(provider, true, ""), None)
        }
    };
    Answer {
        outcome,
        status,
        millis: Date::now().as_millis().saturating_sub(started),
    }
}

/// POSTs the request and reads the whole answer (status, `Retry-After`, body).
async fn call(
    request: &ProviderRequest,
    signal: AbortSignal,
) -> worker::Result<(u16, Option<String>, Vec<u8>)> {
    let headers = Headers::new();
    for (name, value) in &request.headers {
        headers.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(Uint8Array::from(request.body.as_slice()).into()));
    let outgoing = Request::new_with_init(&request.url, &init)?;
    let mut response = Fetch::Request(outgoing).send_with_signal(&signal).await?;
    let status = response.status_code();
    let retry_after = response.headers().get("retry-after")?;
    let body = response.bytes().await?;
    Ok((status, retry_after, body))
}
