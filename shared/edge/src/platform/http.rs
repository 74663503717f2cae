//! Requests in, responses out: a function's entry ([`http_function!`](crate::http_function)),
//! bounded body reading, JSON responses, and the one place where an `ApiError` becomes an HTTP
//! response.

use crate::Env;
use crate::console_error;
use crate::runtime::Internal;
use crate::runtime::{self, Bindings, Headers, Request, Response};
use domain::error::{ApiError, ErrorEnvelope};
use domain::platform::REQUEST_BODY_BYTES;
use domain::query::Query;
use domain::request_url::{self, RequestUrl};
use futures_util::StreamExt;
use serde::Serialize;

pub use domain::api::{BATCH_BODY_LIMIT, SMALL_BODY_LIMIT};

/// Runs a handler as one invocation (its bindings counted, `crate::platform::meter`) and turns its error, if
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
                let path = domain::request_url::loggable_path(&path);
                console_error!("{method} {path} failed (ref {reference}): {detail}");
                // A store out of reach (503) keeps its message: what the client may do about it.
                error.body.message = format!("{} (ref {reference})", error.body.message);
            }
            error_response(&error)
        }
    };
    crate::platform::invocation::end(&env).await;
    env.report();
    env.after_report().await;
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
    headers
        .set("content-type", "application/json")
        .internal("setting a header")?;
    headers
        .set("cache-control", "no-store")
        .internal("setting a header")?;
    Ok(Response::ok(text)
        .internal("making an answer")?
        .with_status(status)
        .with_headers(headers))
}

/// Reads the body, keeping at most `limit` bytes: a hostile client cannot make us buffer more,
/// whatever `content-length` claims. A body past the limit is refused with 413 once it has been
/// read through (up to what Cloudflare hands a Worker at all, [`REQUEST_BODY_BYTES`]), never while
/// its client is still sending: an answer sent mid-upload makes the connection's end a race
/// between the client's next write and the server's close, which the client may lose as a reset,
/// and a proxy in between (wrangler dev's) as a 503, instead of the 413.
pub async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .internal("reading a header")?
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > REQUEST_BODY_BYTES) {
        return Err(ApiError::payload_too_large(limit));
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::malformed("the request body could not be read"))?;
        read = read.saturating_add(chunk.len());
        if read > REQUEST_BODY_BYTES {
            break;
        }
        if read <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    if read > limit || declared.is_some_and(|length| length > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    Ok(body)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Level, Method};
    use crate::testing::Fixture;
    use domain::error::ErrorCode;
    use serde_json::{Value, json};

    fn request(method: Method, url: &str) -> Request {
        Request::new(url, method).unwrap_or_else(|error| panic!("{error}"))
    }

    fn header(response: &Response, name: &str) -> Option<String> {
        response.headers().get(name).unwrap_or_default()
    }

    async fn body(response: &mut Response) -> Value {
        let text = response.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text}"))
    }

    #[test]
    fn every_error_is_one_json_shape_that_is_never_cached() {
        let fixture = Fixture::new();
        let cases = [
            (
                ApiError::invalid("customers[3].email", "not an email"),
                422,
                json!({ "error": { "code": "validation_failed", "message": "not an email", "field": "customers[3].email" } }),
                None,
                None,
            ),
            (
                ApiError::rate_limited("slow down", 17),
                429,
                json!({ "error": { "code": "rate_limited", "message": "slow down" } }),
                Some("17"),
                None,
            ),
            (
                ApiError::method_not_allowed("GET, POST"),
                405,
                json!({ "error": { "code": "method_not_allowed", "message": "this endpoint accepts GET, POST" } }),
                None,
                Some("GET, POST"),
            ),
        ];
        fixture.run(async {
            for (error, status, expected, retry_after, allow) in cases {
                let mut response = error_response(&error).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(response.status_code(), status, "{expected}");
                assert_eq!(
                    header(&response, "content-type").as_deref(),
                    Some("application/json")
                );
                assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
                assert_eq!(
                    header(&response, "retry-after").as_deref(),
                    retry_after,
                    "{expected}"
                );
                assert_eq!(header(&response, "allow").as_deref(), allow, "{expected}");
                assert_eq!(body(&mut response).await, expected);
            }
        });
    }

    #[test]
    fn an_internal_error_is_answered_opaquely_with_the_reference_its_log_line_carries() {
        let fixture = Fixture::new();
        let mut response = fixture
            .run(serve(
                request(Method::Post, "https://api.example/api-things"),
                fixture.stack.clone(),
                async |_, _| Err(ApiError::internal("writing things", "D1 said no: secret row 42")),
            ))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status_code(), 500);
        let answered = fixture.run(body(&mut response));
        let message = answered["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let reference = message
            .strip_prefix("internal error (ref ")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{message}"));
        assert_eq!(reference.len(), 12, "six random bytes in hex: {message}");
        assert!(!answered.to_string().contains("secret row"), "{answered}");
        let logged = fixture.stack.logged(Level::Error, &format!("(ref {reference})"));
        assert_eq!(logged.len(), 1, "{:?}", fixture.stack.logs());
        assert!(
            logged[0].starts_with("POST /api-things failed")
                && logged[0].contains("D1 said no: secret row 42"),
            "{}",
            logged[0]
        );
    }

    #[test]
    fn a_clients_error_keeps_its_message_and_is_not_logged_and_every_invocation_reports_its_usage() {
        let fixture = Fixture::new();
        let mut response = fixture
            .run(serve(
                request(Method::Get, "https://api.example/api-things"),
                fixture.stack.clone(),
                async |_, _| Err(ApiError::not_found("no thing t_1")),
            ))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status_code(), 404);
        assert_eq!(
            fixture.run(body(&mut response)),
            json!({ "error": { "code": "not_found", "message": "no thing t_1" } })
        );
        assert!(fixture.stack.logged(Level::Error, "").is_empty());
        assert_eq!(fixture.stack.logged(Level::Log, "[usage] native fetch ").len(), 1);
    }

    #[test]
    fn a_store_that_did_not_answer_is_a_503_that_says_when_to_retry() {
        let fixture = Fixture::new();
        let response = fixture
            .run(serve(
                request(Method::Get, "https://api.example/api-things"),
                fixture.stack.clone(),
                async |_, _| {
                    Err(ApiError::from(crate::db::Error::Unanswered {
                        shard: 0,
                        cause: "D1 DB is overloaded".to_owned(),
                    })
                    .doing("reading things"))
                },
            ))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status_code(), 503);
        assert_eq!(header(&response, "retry-after").as_deref(), Some("10"));
    }

    #[test]
    fn a_body_is_read_up_to_its_limit_and_refused_past_it_whatever_its_length_claims() {
        let fixture = Fixture::new();
        let post = |body: &str, length: Option<&str>| {
            let request = request(Method::Post, "https://api.example/x").with_body(body.as_bytes().to_vec());
            match length {
                Some(length) => request.with_header("content-length", length),
                None => request,
            }
        };
        let cases = [
            ("0123456789", None, Ok(10), "exactly the limit"),
            (
                "01234567890",
                None,
                Err(413),
                "one byte past it, no length declared",
            ),
            (
                "01234567890",
                Some("5"),
                Err(413),
                "one byte past it, a smaller length declared",
            ),
            ("0", Some("11"), Err(413), "a declared length past it"),
            ("", None, Ok(0), "nothing"),
        ];
        fixture.run(async {
            for (sent, length, expected, description) in cases {
                let mut req = post(sent, length);
                let read = read_body(&mut req, 10).await;
                let read = read.map(|bytes| bytes.len()).map_err(|error| error.status());
                assert_eq!(read, expected, "{description}");
            }
        });
        let refused = fixture
            .run(read_body(&mut post("01234567890", None), 10))
            .err()
            .map(|error| (error.code(), error.body.message));
        assert_eq!(
            refused,
            Some((
                ErrorCode::PayloadTooLarge,
                "request body is larger than the limit of 10 bytes".to_owned()
            ))
        );
    }

    #[test]
    fn the_public_origin_is_public_base_url_where_it_is_set_else_the_requests() {
        let cases = [
            (None, "https://worker.example.workers.dev"),
            (Some("https://api.acme.example/"), "https://api.acme.example"),
            (Some("HTTPS://api.acme.example:443"), "https://api.acme.example"),
            (Some("http://localhost:8787"), "http://localhost:8787"),
            (Some("   "), "https://worker.example.workers.dev"),
        ];
        for (configured, expected) in cases {
            let fixture = Fixture::new();
            if let Some(value) = configured {
                fixture.stack.set_var(PUBLIC_BASE_URL, value);
            }
            let req = request(
                Method::Get,
                "https://worker.example.workers.dev/api-customers?email=a%40b.ie",
            );
            assert_eq!(
                origin(&req, &fixture.env).ok().as_deref(),
                Some(expected),
                "{configured:?}"
            );
            assert_eq!(
                public_url(&req, &fixture.env).ok(),
                Some(format!("{expected}/api-customers?email=a%40b.ie")),
                "{configured:?}"
            );
        }
    }

    #[test]
    fn a_public_base_url_that_is_not_an_origin_is_our_misconfiguration() {
        for value in [
            "api.acme.example",
            "https://api.acme.example/v1",
            "ftp://api.acme.example",
        ] {
            let fixture = Fixture::new();
            fixture.stack.set_secret(PUBLIC_BASE_URL, value);
            let req = request(Method::Get, "https://worker.example/x");
            let error = origin(&req, &fixture.env).err();
            assert_eq!(error.map(|error| error.status()), Some(500), "{value}");
            let consumer = configured_origin(&fixture.env).err();
            assert!(
                consumer.is_some(),
                "{value}: a consumer, which has no request, refuses it too"
            );
        }
    }

    #[test]
    fn json_is_application_json_or_a_json_based_type_whatever_its_parameters() {
        let cases = [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/problem+json", true),
            ("application/vnd.api+json;v=2", true),
            ("text/json", false),
            ("application/jsonp", false),
            ("text/plain", false),
            ("multipart/form-data; boundary=x", false),
            ("", false),
        ];
        for (content_type, json) in cases {
            assert_eq!(is_json(content_type), json, "{content_type:?}");
        }
    }

    #[test]
    fn the_query_is_decoded_and_the_client_ip_is_cloudflares() {
        let _fixture = Fixture::new();
        let req = request(
            Method::Get,
            "https://api.example/x?email=a%40b.ie&name=Ada+L&empty=",
        )
        .with_header("cf-connecting-ip", "203.0.113.7");
        let query = query(&req);
        assert_eq!(query.get("email"), Some("a@b.ie"));
        assert_eq!(query.get("name"), Some("Ada L"));
        assert_eq!(client_ip(&req).as_deref(), Some("203.0.113.7"));
        let without = request(Method::Get, "https://api.example/x");
        assert_eq!(client_ip(&without), None);
    }

    #[test]
    fn loopback_destinations_are_allowed_only_where_the_local_stack_says_true() {
        for (value, allowed) in [
            (Some("true"), true),
            (Some("1"), false),
            (Some("TRUE"), false),
            (None, false),
        ] {
            let fixture = Fixture::new();
            if let Some(value) = value {
                fixture.stack.set_var("ALLOW_LOOPBACK_WEBHOOKS", value);
            }
            assert_eq!(allows_loopback(&fixture.env), allowed, "{value:?}");
        }
    }
}
