//! Calls to the local embedding server (`tools/embedder`), the local stack's stand-in for Workers
//! AI and Vectorize: it speaks their REST paths and answers in Cloudflare's envelope
//! (`{"result": …, "errors": […]}`).

use crate::Env;
use crate::platform::bounded_fetch;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One POST of `body` as JSON to `{url}{path}`; `part` names what answers ("embedder", "vector
/// store") in the messages. The reply is at most `max_body` bytes.
pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
    env: &Env,
    part: &str,
    url: &str,
    path: &str,
    body: &B,
    timeout_ms: u64,
    max_body: usize,
) -> Result<T, String> {
    #[derive(serde::Deserialize)]
    struct Envelope<T> {
        result: Option<T>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let body = serde_json::to_vec(body).map_err(|error| error.to_string())?;
    let exchange = bounded_fetch::post(
        env,
        &format!("{url}{path}"),
        &[("content-type", "application/json".to_owned())],
        &body,
        timeout_ms,
        max_body,
    )
    .await;
    let reply = match exchange.result {
        Ok(reply) => reply,
        Err(bounded_fetch::Failure::TimedOut) => {
            return Err(format!("the local {part} at {url} did not answer in time"));
        }
        Err(bounded_fetch::Failure::Unreachable(why)) => {
            return Err(format!(
                "the local {part} at {url} is not reachable ({why}): is scripts/dev running the embedder?"
            ));
        }
    };
    let answer: Envelope<T> = serde_json::from_slice(&reply.body).map_err(|error| {
        format!(
            "the local {part} answered {} with a body that is not its JSON: {error}",
            reply.status
        )
    })?;
    match answer.result {
        Some(result) if reply.status == 200 => Ok(result),
        _ => Err(format!(
            "the local {part} answered {}: {}",
            reply.status,
            described(&answer.errors)
        )),
    }
}

/// Cloudflare's errors as a person reads them (`text: is required (5006)`), for a link's status
/// or a search's 503.
fn described(errors: &[serde_json::Value]) -> String {
    if errors.is_empty() {
        return "no result".to_owned();
    }
    errors
        .iter()
        .map(
            |error| match (error["message"].as_str(), error["code"].as_u64()) {
                (Some(message), Some(code)) => format!("{message} ({code})"),
                (Some(message), None) => message.to_owned(),
                _ => error.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use serde_json::json;

    const URL: &str = "http://embedder.test";

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Counted {
        count: u32,
    }

    #[test]
    fn the_result_is_read_from_cloudflares_envelope_and_a_failure_says_what_answered_and_why() {
        let cases: [(&str, Reply, Result<u32, &str>); 6] = [
            (
                "a result",
                Reply::json(
                    200,
                    &json!({ "result": { "count": 2 }, "success": true, "errors": [], "messages": [] }),
                ),
                Ok(2),
            ),
            (
                "an error in the envelope",
                Reply::json(
                    400,
                    &json!({ "result": null, "success": false, "errors": [{ "code": 5006, "message": "text: is required" }], "messages": [] }),
                ),
                Err("the local embedder answered 400: text: is required (5006)"),
            ),
            (
                "a 200 without a result",
                Reply::json(200, &json!({ "success": false, "errors": [] })),
                Err("the local embedder answered 200: no result"),
            ),
            (
                "a body that is not JSON",
                Reply::text(502, "Bad Gateway"),
                Err("the local embedder answered 502 with a body that is not its JSON"),
            ),
            (
                "nothing listening",
                Reply::refused(),
                Err("the local embedder at http://embedder.test is not reachable"),
            ),
            (
                "no answer in time",
                Reply::never(),
                Err("the local embedder at http://embedder.test did not answer in time"),
            ),
        ];
        let fixture = Fixture::new();
        for (description, reply, expected) in cases {
            fixture.stack.partner("embedder.test", move |_| reply.clone());
            let answer = fixture.run(post::<Counted, _>(
                &fixture.env,
                "embedder",
                URL,
                "/ai/run/all-minilm-l6-v2",
                &json!({ "text": ["a"] }),
                1_000,
                4_096,
            ));
            match (answer, expected) {
                (Ok(counted), Ok(count)) => assert_eq!(counted.count, count, "{description}"),
                (Err(why), Err(start)) => assert!(why.starts_with(start), "{description}: {why}"),
                (answer, expected) => panic!("{description}: {answer:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn the_body_is_posted_as_json_to_the_path_and_counted_as_a_subrequest() {
        let fixture = Fixture::new();
        fixture.stack.partner("embedder.test", |_| {
            Reply::json(200, &json!({ "result": { "count": 1 }, "errors": [] }))
        });
        let before = fixture.env.usage().subrequests;
        let answer = fixture.run(post::<Counted, _>(
            &fixture.env,
            "vector store",
            URL,
            "/vectorize/v2/indexes/i/upsert",
            &json!({ "vectors": [] }),
            1_000,
            4_096,
        ));
        assert_eq!(answer, Ok(Counted { count: 1 }));
        let calls = fixture.stack.calls_to("embedder.test");
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].method.as_str(), calls[0].url.as_str()),
            ("POST", "http://embedder.test/vectorize/v2/indexes/i/upsert")
        );
        assert_eq!(calls[0].header("content-type"), Some("application/json"));
        assert_eq!(calls[0].json(), json!({ "vectors": [] }));
        assert_eq!(fixture.env.usage().subrequests, before + 1);
    }
}
