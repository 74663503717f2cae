//! Calls to the local embedding server (`tools/embedder`), the local stack's stand-in for Workers
//! AI and Vectorize: it speaks their REST paths and answers in Cloudflare's envelope
//! (`{"result": …, "errors": […]}`).

use crate::Env;
use crate::bounded_fetch;
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
            "the local {part} answered {}: {:?}",
            reply.status, answer.errors
        )),
    }
}
