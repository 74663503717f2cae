//! One outbound call bounded in time and in what is read: a peer that does not answer within the
//! limit is abandoned (its request aborted), and of its answer only the first `max_body` bytes
//! are read before the rest of the transfer is cancelled, so a peer streaming gigabytes costs
//! nothing. Redirects are not followed; a 3xx is an answer like any other.

use crate::Env;
use crate::runtime::{self, AbortController, AbortSignal, Body, Delay, Fetch, Headers, Method};
use domain::platform::Resource;
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use std::pin::pin;
use std::time::Duration;

/// What the peer said.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    /// The `x-ratelimit-*` headers, names lowercased: how much of its budget the peer says is left.
    pub rate_limit: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// The `Link` header: where a paginated answer goes on.
    pub link: Option<String>,
    /// The first `max_body` bytes of the answer, or all of it when it is shorter.
    pub body: Vec<u8>,
}

/// What came of the call, and how long it took.
pub struct Exchange {
    pub result: Result<Reply, Failure>,
    pub millis: u64,
}

pub enum Failure {
    TimedOut,
    /// No answer: refused, reset, DNS, TLS; the runtime's message.
    Unreachable(String),
}

pub async fn post(
    env: &Env,
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout_ms: u64,
    max_body: usize,
) -> Exchange {
    send(env, Method::Post, url, headers, Some(body), timeout_ms, max_body).await
}

/// A call with any method; `body` None sends none (a GET). It is one subrequest of the
/// invocation, and what is read of the answer is held in memory until it is returned.
pub async fn send(
    env: &Env,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
    timeout_ms: u64,
    max_body: usize,
) -> Exchange {
    let started = runtime::now().millis();
    if let Err(error) = env.charge(Resource::Subrequest, 1) {
        return Exchange {
            result: Err(Failure::Unreachable(error.to_string())),
            millis: 0,
        };
    }
    let controller = AbortController::default();
    let call = pin!(call(method, url, headers, body, max_body, controller.signal()));
    let deadline = pin!(Delay::from(Duration::from_millis(timeout_ms)));
    let result = match select(call, deadline).await {
        Either::Left((Ok(reply), _)) => Ok(reply),
        Either::Left((Err(error), _)) => Err(Failure::Unreachable(error.to_string())),
        Either::Right(_) => Err(Failure::TimedOut),
    };
    // Whatever happened, nothing more of this exchange is wanted: cancel what is still in flight
    // (after a full answer this does nothing).
    controller.abort();
    Exchange {
        result,
        millis: u64::try_from(runtime::now().millis() - started).unwrap_or(0),
    }
}

async fn call(
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
    max_body: usize,
    signal: AbortSignal,
) -> worker::Result<Reply> {
    let outgoing_headers = Headers::new();
    for (name, value) in headers {
        outgoing_headers.set(name, value)?;
    }
    let outgoing = runtime::outgoing(method, url, Some(&outgoing_headers), body.map(Body::Bytes))?;
    let mut response = Fetch::Request(outgoing).send_with_signal(&signal).await?;
    let status = response.status_code();
    let retry_after = response.headers().get("retry-after")?;
    let content_type = response.headers().get("content-type")?;
    let link = response.headers().get("link")?;
    let rate_limit = response
        .headers()
        .entries()
        .filter(|(name, _)| name.to_ascii_lowercase().starts_with("x-ratelimit-"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .take(8)
        .collect();
    let mut kept = Vec::new();
    if let Ok(mut stream) = response.stream() {
        while kept.len() < max_body {
            match stream.next().await {
                Some(Ok(chunk)) => kept.extend_from_slice(&chunk[..chunk.len().min(max_body - kept.len())]),
                // A body cut short after the status line still answered: keep what came.
                Some(Err(_)) | None => break,
            }
        }
    }
    Ok(Reply {
        status,
        retry_after,
        rate_limit,
        content_type,
        link,
        body: kept,
    })
}
