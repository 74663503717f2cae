//! The API over HTTP: one blocking agent, the credentials, and the retry rule every command
//! shares (a 429 waits its `Retry-After`; a 5xx, a timeout or a refused connection backs off
//! 1, 2, 4 … 30 s; a 4xx is the answer).

use domain::api::{Caller, Function, Operation};
use serde_json::Value;
use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Why a command failed, which its exit code tells scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Bad usage, configuration or input file: exit 2.
    Usage(String),
    /// The API answered with an error: exit 3.
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The API could not be reached, or kept failing, through every retry: exit 4.
    Unreachable(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Api { .. } => 3,
            Self::Unreachable(_) => 4,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(why) | Self::Unreachable(why) => f.write_str(why),
            Self::Api {
                status,
                code,
                message,
            } => write!(f, "{status} {code}: {message}"),
        }
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    ApiKey,
    Admin,
}

pub struct Client {
    agent: ureq::Agent,
    base_url: String,
    api_key: Option<String>,
    admin_token: Option<String>,
    /// How long one request is retried before its failure is the command's.
    pub patience: Duration,
}

/// An answer of the API: its status and JSON body (`Value::Null` when it had none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The failure of a non-2xx answer, read from the API's error shape.
    pub fn failure(&self) -> Failure {
        let error = &self.body["error"];
        Failure::Api {
            status: self.status,
            code: error["code"].as_str().unwrap_or("http_error").to_owned(),
            message: error["message"]
                .as_str()
                .map_or_else(|| format!("HTTP {}", self.status), str::to_owned),
        }
    }

    /// The body of a 2xx answer, else its failure.
    pub fn success(self) -> Result<Value, Failure> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(self.failure())
        }
    }
}

const MAX_BACKOFF_SECONDS: u64 = 30;

impl Client {
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        admin_token: Option<String>,
        patience: Duration,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            // A redirect is an answer, not a place to send the key to.
            .max_redirects(0)
            .build()
            .new_agent();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            admin_token,
            patience,
        }
    }

    /// Sends a request and reads a 2xx answer's body; any other answer is the failure.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        credential: Credential,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        self.send(method, path, credential, body, None)?.success()
    }

    /// Sends a request, retrying what may be retried: a 429, or a 409 with `Retry-After` (a
    /// request with the same `Idempotency-Key` still running), after the wait it names; a 5xx,
    /// a timeout or a refused connection after a backoff. `Err` once `patience` is spent.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        credential: Credential,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base_url);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let (wait, why) = match self.once(method, &url, credential, body, idempotency_key)? {
                Ok((answer, Some(wait))) if matches!(answer.status, 409 | 429) => {
                    (wait, answer.failure().to_string())
                }
                Ok((answer, _)) if answer.status < 500 && answer.status != 429 => return Ok(answer),
                Ok((answer, retry_after)) => (
                    retry_after.unwrap_or_else(|| backoff(attempt)),
                    answer.failure().to_string(),
                ),
                Err(error) => (backoff(attempt), error),
            };
            if started.elapsed() + wait > self.patience {
                return Err(Failure::Unreachable(format!(
                    "{method} {path}: gave up after {} attempts in {:.0} s; the last: {why}",
                    attempt + 1,
                    started.elapsed().as_secs_f64()
                )));
            }
            sleep(wait);
            attempt += 1;
        }
    }

    fn once(
        &self,
        method: &str,
        url: &str,
        credential: Credential,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Result<(Answer, Option<Duration>), String>, Failure> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        match credential {
            Credential::ApiKey => {
                let key = self.api_key.as_deref().ok_or_else(|| {
                    Failure::Usage("no API key: pass --api-key, set CRM_EDGE_API_KEY or use a profile".into())
                })?;
                request = request.header("x-api-key", key);
            }
            Credential::Admin => {
                let token = self.admin_token.as_deref().ok_or_else(|| {
                    Failure::Usage(
                        "no admin token: pass --admin-token, set CRM_EDGE_ADMIN_TOKEN or use a profile"
                            .into(),
                    )
                })?;
                request = request.header("authorization", format!("Bearer {token}"));
            }
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let payload = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                serde_json::to_vec(body).map_err(|e| Failure::Usage(e.to_string()))?
            }
            None => Vec::new(),
        };
        let request = request
            .body(payload)
            .map_err(|e| Failure::Usage(format!("{url}: {e}")))?;
        Ok(self.exchange(request))
    }

    /// One exchange; `Err` is a transport failure (refused, reset, timed out), which is retried.
    fn exchange(&self, request: ureq::http::Request<Vec<u8>>) -> Result<(Answer, Option<Duration>), String> {
        let mut response = self.agent.run(request).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.clamp(1, 3600)));
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((Answer { status, body }, retry_after))
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.min(5)).min(MAX_BACKOFF_SECONDS))
}

/// An id as a path segment: ids are letters, digits, `-` and `_`; anything else is refused here
/// rather than sent as another path.
pub fn segment(id: &str) -> Result<&str, Failure> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        Ok(id)
    } else {
        Err(Failure::Usage(format!("{id:?} is not an id")))
    }
}

/// The method and path by which `caller` reaches `operation` of `function`, as the endpoint's
/// declaration states them, each `{name}` of the path one of `ids`, in order (each checked to be
/// an id).
pub fn endpoint<O: Operation>(
    function: &'static Function<O>,
    operation: O,
    caller: Caller,
    ids: &[&str],
) -> Result<(&'static str, String), Failure> {
    let route = function
        .route_for(operation, caller)
        .ok_or_else(|| Failure::Usage(format!("{} is not served to {caller:?}", operation.name())))?;
    let ids = ids.iter().map(|id| segment(id)).collect::<Result<Vec<_>, _>>()?;
    let path = route
        .path_with(&ids)
        .ok_or_else(|| Failure::Usage(format!("{} takes the ids of {}", operation.name(), route.path)))?;
    Ok((route.method.as_str(), path))
}

/// A query string of the parameters that have a value, percent-encoded.
pub fn query(parameters: &[(&str, Option<String>)]) -> String {
    let pairs: Vec<String> = parameters
        .iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", encode(value.as_deref()?))))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Percent-encodes all but the unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_queries_cannot_reach_another_path() {
        assert!(segment("7f0c-aa_1").is_ok());
        assert!(segment("../admin").is_err());
        assert!(segment("a?b").is_err());
        assert_eq!(
            query(&[
                ("status", Some("dead".into())),
                ("event_id", None),
                ("x", Some("a b&c".into()))
            ]),
            "?status=dead&x=a%20b%26c"
        );
        assert_eq!(
            encode("2026-11-01T00:00:00+01:00"),
            "2026-11-01T00%3A00%3A00%2B01%3A00"
        );
    }
}
