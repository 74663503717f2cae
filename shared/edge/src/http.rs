//! Requests in, responses out: a function's entry ([`http_function!`](crate::http_function)),
//! bounded body reading, JSON responses, and the one place where an `ApiError` becomes an HTTP
//! response.

use crate::Env;
use crate::console_error;
use crate::runtime::{self, Bindings, Headers, Request, Response};
use domain::error::{ApiError, ErrorEnvelope};
use domain::query::Query;
use domain::request_url::{self, RequestUrl};
use futures_util::StreamExt;
use serde::Serialize;

pub use domain::api::{BATCH_BODY_LIMIT, SMALL_BODY_LIMIT};

/// Runs a handler as one invocation (its bindings counted, `crate::meter`) and turns its error, if
/// any, into the common JSON error response. Internal errors are logged with a reference that the
/// client also receives.
pub async fn serve<H>(req: Request, bindings: Bindings, handler: H) -> worker::Result<Response>
where
    H: AsyncFnOnce(Request, Env) -> Result<Response, ApiError>,
{
    let method = req.method();
    let path = req.path();
    let env = Env::new(bindings, "fetch");
    let answer = match handler(req, env.clone()).await {
        Ok(response) => Ok(response),
        Err(mut error) => {
            if let Some(detail) = error.detail() {
                let reference = runtime::random::<6>().map(hex::encode).unwrap_or_default();
                console_error!("{method} {path} failed (ref {reference}): {detail}");
                // A store out of reach (503) keeps its message: what the client may do about it.
                error.body.message = format!("{} (ref {reference})", error.body.message);
            }
            error_response(&error)
        }
    };
    env.report();
    answer
}

pub fn error_response(error: &ApiError) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    if let Some(seconds) = error.retry_after_seconds {
        headers.set("retry-after", &seconds.to_string())?;
    }
    if let Some(allow) = &error.allow {
        headers.set("allow", allow)?;
    }
    let body = serde_json::to_string(&ErrorEnvelope { error: &error.body })?;
    Ok(Response::ok(body)?
        .with_status(error.status())
        .with_headers(headers))
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::internal("serialising response", e))?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(text)?.with_status(status).with_headers(headers))
}

/// Reads the body, refusing it as soon as it grows past `limit` bytes, whatever
/// `content-length` claims: a hostile client cannot make us buffer more than `limit`.
pub async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::malformed("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            // Answering while the client is still sending makes some proxies (wrangler dev's among
            // them) fail the connection's next request; reading on, without keeping, a bounded
            // amount more lets an honest oversized upload finish before it is refused.
            let mut discarded = body.len() + chunk.len();
            while discarded <= limit.saturating_add(DRAIN_LIMIT) {
                match stream.next().await {
                    Some(Ok(chunk)) => discarded += chunk.len(),
                    _ => break,
                }
            }
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How much more than the limit of an oversized body is read and thrown away before the refusal
/// is sent.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// The client's address as Cloudflare's edge reports it (`CF-Connecting-IP`).
pub fn client_ip(req: &Request) -> Option<String> {
    req.headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .filter(|ip| !ip.is_empty())
}

/// `application/json`, or a JSON-based type (`application/problem+json`), whatever its parameters.
pub fn is_json(content_type: &str) -> bool {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// The deployment setting that names the public origin of the API (`https://api.example.com`)
/// when the URL a function sees is not the one clients and providers call (a proxy, a custom
/// domain in front of a workers.dev route).
const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";

/// The headers of a page we serve (the embedded inbox, the console): its type, its
/// Content-Security-Policy, no type sniffing, and how much of its address may be passed on as a
/// referrer.
pub fn page_headers(content_type: &str, csp: &str, referrer_policy: &str) -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("content-security-policy", csp)?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("referrer-policy", referrer_policy)?;
    Ok(headers)
}

/// The public origin of the API, for links back into it (download links, `embed_url`, event
/// links) and for checking signatures made over the URL a provider called (Twilio's):
/// `PUBLIC_BASE_URL` where the deployment sets it, otherwise the origin of the request.
pub fn origin(req: &Request, env: &crate::Env) -> Result<String, ApiError> {
    origin_of(&RequestUrl::split(&runtime::request_url(req)), env)
}

/// [`origin`] for a request whose URL is already split.
fn origin_of(url: &RequestUrl, env: &crate::Env) -> Result<String, ApiError> {
    Ok(configured_origin(env)?.unwrap_or_else(|| url.origin()))
}

/// `PUBLIC_BASE_URL`, where the deployment sets it: the only origin work done outside a request
/// (a queue consumer) knows.
pub fn configured_origin(env: &crate::Env) -> Result<Option<String>, ApiError> {
    let configured = env
        .setting(PUBLIC_BASE_URL)
        .filter(|value| !value.trim().is_empty());
    configured
        .map(|value| {
            request_url::configured_origin(&value)
                .map_err(|reason| ApiError::internal("reading PUBLIC_BASE_URL", reason))
        })
        .transpose()
}

/// The URL a client called, as seen from the public origin: `origin(req, env)` followed by
/// the request's path and query.
pub fn public_url(req: &Request, env: &crate::Env) -> Result<String, ApiError> {
    let raw = runtime::request_url(req);
    let url = RequestUrl::split(&raw);
    let query = url.query.map(|query| format!("?{query}")).unwrap_or_default();
    Ok(format!("{}{}{query}", origin_of(&url, env)?, url.path))
}

/// The request's query string, decoded.
pub fn query(req: &Request) -> Query {
    Query::parse(RequestUrl::split(&runtime::request_url(req)).query)
}

/// True only in the local stack (`ALLOW_LOOPBACK_WEBHOOKS=true` in `.dev.vars`), where
/// destinations a business configures may be loopback test servers on this machine.
pub fn allows_loopback(env: &crate::Env) -> bool {
    const ALLOW_LOOPBACK: &str = "ALLOW_LOOPBACK_WEBHOOKS";
    env.setting(ALLOW_LOOPBACK).is_some_and(|value| value == "true")
}

/// Exports a function's fetch handler: each request the runtime hands the function is served by
/// `$serve(req, bindings)`, one invocation (`serve` makes its `Env`). Natively it exports
/// nothing: a test calls `$serve` with the stack as the bindings.
/// `with_context` hands `$serve` the invocation's context too, for work after the answer.
#[macro_export]
macro_rules! http_function {
    ($serve:path) => {
        #[cfg(target_arch = "wasm32")]
        #[::worker::event(fetch)]
        async fn fetch(
            req: ::worker::Request,
            env: ::worker::Env,
            _ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            $serve(req, env.into()).await
        }
    };
    ($serve:path, with_context) => {
        #[cfg(target_arch = "wasm32")]
        #[::worker::event(fetch)]
        async fn fetch(
            req: ::worker::Request,
            env: ::worker::Env,
            ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            $serve(req, env.into(), ctx).await
        }
    };
}
