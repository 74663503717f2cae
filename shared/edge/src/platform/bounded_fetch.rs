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
    /// The `x-ratelimit-*` headers and Salesforce's `sforce-limit-info`, names lowercased: how much
    /// of its budget the peer says is left.
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
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            name.starts_with("x-ratelimit-") || name == "sforce-limit-info"
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::Reply as Answer;
    use crate::testing::Fixture;

    const PARTNER: &str = "partner.example";
    const URL: &str = "https://partner.example/hook";

    async fn get(fixture: &Fixture, timeout_ms: u64, max_body: usize) -> Exchange {
        send(&fixture.env, Method::Get, URL, &[], None, timeout_ms, max_body).await
    }

    #[test]
    fn a_post_sends_its_method_headers_and_body_and_reads_the_answer() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |_| {
            Answer::json(201, &serde_json::json!({ "ok": true }))
                .header("Retry-After", "30")
                .header("Link", "<https://partner.example/hook?page=2>; rel=\"next\"")
        });
        let exchange = fixture.run(post(
            &fixture.env,
            URL,
            &[
                ("content-type", "application/json".to_owned()),
                ("x-signature", "abc".to_owned()),
            ],
            br#"{"a":1}"#,
            5_000,
            1024,
        ));
        let calls = fixture.stack.calls_to(PARTNER);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].method, "POST");
        assert_eq!(calls[0].url, URL);
        assert_eq!(calls[0].header("x-signature"), Some("abc"));
        assert_eq!(calls[0].text(), r#"{"a":1}"#);
        let reply = exchange.result.unwrap_or_else(|_| panic!("no answer"));
        assert_eq!(reply.status, 201);
        assert_eq!(reply.body, br#"{"ok":true}"#);
        assert_eq!(reply.retry_after.as_deref(), Some("30"));
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            reply.link.as_deref(),
            Some("<https://partner.example/hook?page=2>; rel=\"next\"")
        );
        assert_eq!(fixture.env.usage().subrequests, 1);
    }

    #[test]
    fn a_partner_that_never_answers_is_abandoned_at_the_limit_on_the_clock() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |_| Answer::never());
        let started = fixture.stack.now_ms();
        let exchange = fixture.run(get(&fixture, 10_000, 1024));
        assert!(matches!(exchange.result, Err(Failure::TimedOut)));
        assert_eq!(exchange.millis, 10_000);
        assert_eq!(fixture.stack.now_ms() - started, 10_000);
    }

    #[test]
    fn an_answer_within_the_limit_is_taken_and_one_past_it_is_not() {
        for (delay_ms, answered) in [(9_999, true), (10_001, false)] {
            let fixture = Fixture::new();
            fixture.stack.partner(PARTNER, move |_| {
                Answer::text(200, "late").after(std::time::Duration::from_millis(delay_ms))
            });
            let exchange = fixture.run(get(&fixture, 10_000, 1024));
            assert_eq!(exchange.result.is_ok(), answered, "an answer after {delay_ms} ms");
        }
    }

    #[test]
    fn a_body_that_trickles_past_the_limit_times_out_the_whole_exchange() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |_| {
            Answer::text(200, &"x".repeat(100)).in_chunks(10, std::time::Duration::from_secs(2))
        });
        let exchange = fixture.run(get(&fixture, 5_000, 1024));
        assert!(matches!(exchange.result, Err(Failure::TimedOut)));
        assert_eq!(exchange.millis, 5_000);
    }

    #[test]
    fn of_a_long_answer_only_the_first_max_body_bytes_are_read_and_the_rest_is_not_waited_for() {
        let fixture = Fixture::new();
        let body: String = ('a'..='z').cycle().take(10_000).collect();
        let expected = body.as_bytes()[..25].to_vec();
        fixture.stack.partner(PARTNER, move |_| {
            Answer::text(200, &body).in_chunks(10, std::time::Duration::from_secs(1))
        });
        let exchange = fixture.run(get(&fixture, 60_000, 25));
        let reply = exchange.result.unwrap_or_else(|_| panic!("no answer"));
        assert_eq!(reply.body, expected);
        assert_eq!(
            exchange.millis, 3_000,
            "three chunks of ten were read, not a thousand"
        );
    }

    #[test]
    fn a_refused_connection_or_a_host_with_nothing_behind_it_is_unreachable_with_the_runtimes_words() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |_| Answer::refused());
        for url in [URL, "https://nobody.example/"] {
            let exchange = fixture.run(send(&fixture.env, Method::Get, url, &[], None, 5_000, 1024));
            match exchange.result {
                Err(Failure::Unreachable(why)) => assert!(why.contains("connection refused"), "{url}: {why}"),
                _ => panic!("{url}: not unreachable"),
            }
            assert_eq!(exchange.millis, 0, "{url}");
        }
    }

    #[test]
    fn the_rate_limit_headers_are_kept_lowercased_and_no_more_than_eight() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |call| {
            let answer = Answer::status(200)
                .header("X-RateLimit-Limit", "100")
                .header("X-RateLimit-Remaining", "7")
                .header("Sforce-Limit-Info", "api-usage=25/15000")
                .header("x-request-id", "r1");
            if call.path() == "/few" {
                return answer;
            }
            (0..10).fold(answer, |answer, n| {
                answer.header(&format!("x-ratelimit-extra-{n}"), "1")
            })
        });
        let read = |url: &'static str| {
            fixture
                .run(send(&fixture.env, Method::Get, url, &[], None, 5_000, 1024))
                .result
                .map(|reply| reply.rate_limit)
                .unwrap_or_else(|_| panic!("no answer"))
        };
        assert_eq!(
            read("https://partner.example/few"),
            vec![
                ("sforce-limit-info".to_owned(), "api-usage=25/15000".to_owned()),
                ("x-ratelimit-limit".to_owned(), "100".to_owned()),
                ("x-ratelimit-remaining".to_owned(), "7".to_owned()),
            ]
        );
        let many = read("https://partner.example/many");
        assert_eq!(many.len(), 8, "{many:?}");
        assert!(
            many.iter()
                .all(|(name, _)| name.starts_with("x-ratelimit-") || name == "sforce-limit-info"),
            "{many:?}"
        );
    }

    #[test]
    fn a_redirect_is_an_answer_like_any_other() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |_| {
            Answer::status(302).header("location", "https://elsewhere.example/")
        });
        let reply = fixture
            .run(get(&fixture, 5_000, 1024))
            .result
            .unwrap_or_else(|_| panic!("no answer"));
        assert_eq!(reply.status, 302);
        assert!(fixture.stack.calls_to("elsewhere.example").is_empty());
    }

    #[test]
    fn past_the_invocations_subrequests_no_call_is_made() {
        let fixture = Fixture::new();
        fixture.stack.partner(PARTNER, |_| Answer::status(200));
        fixture
            .env
            .charge(Resource::Subrequest, domain::platform::SUBREQUESTS)
            .unwrap_or_else(|error| panic!("{error}"));
        let exchange = fixture.run(get(&fixture, 5_000, 1024));
        assert!(matches!(exchange.result, Err(Failure::Unreachable(_))));
        assert!(fixture.stack.calls_to(PARTNER).is_empty());
    }
}
