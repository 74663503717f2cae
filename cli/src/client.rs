//! The API over HTTP: one blocking agent, the credentials, and the retry rule every command
//! shares (a 429 waits its `Retry-After`; a 5xx, a timeout or a refused connection backs off
//! 1, 2, 4 … 30 s; a 4xx is the answer).

use serde_json::Value;
use std::thread::sleep;
use std::time::Duration;

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    ApiKey,
    #[allow(dead_code)] // the admin commands, next
    Admin,
}

pub struct Client {
    agent: ureq::Agent,
    base_url: String,
    api_key: Option<String>,
    admin_token: Option<String>,
    /// Attempts of one request before its failure is the command's.
    pub attempts: u32,
}

/// An answer of the API: its status and JSON body (`Value::Null` when it had none).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The error message of a non-2xx answer, in the API's shape.
    pub fn error(&self) -> (String, String) {
        let error = &self.body["error"];
        (
            error["code"].as_str().unwrap_or("http_error").to_owned(),
            error["message"]
                .as_str()
                .map_or_else(|| format!("HTTP {}", self.status), str::to_owned),
        )
    }
}

const MAX_BACKOFF_SECONDS: u64 = 30;

impl Client {
    pub fn new(base_url: &str, api_key: Option<String>, admin_token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            admin_token,
            attempts: 8,
        }
    }

    /// Sends a request, retrying what may be retried; `Err` once the attempts are spent, with why.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        credential: Credential,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base_url);
        let mut last = String::new();
        for attempt in 0..self.attempts {
            let wait = match self.once(method, &url, credential, body, idempotency_key) {
                Ok((answer, _)) if answer.status < 500 && answer.status != 429 => return Ok(answer),
                Ok((answer, retry_after)) => {
                    last = format!("{} {}", answer.status, answer.error().1);
                    retry_after.unwrap_or_else(|| backoff(attempt))
                }
                Err(error) => {
                    last = error;
                    backoff(attempt)
                }
            };
            if attempt + 1 < self.attempts {
                sleep(wait);
            }
        }
        Err(format!(
            "{method} {path} failed {} times; the last: {last}",
            self.attempts
        ))
    }

    fn once(
        &self,
        method: &str,
        url: &str,
        credential: Credential,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(Answer, Option<Duration>), String> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        match credential {
            Credential::ApiKey => {
                let key = self
                    .api_key
                    .as_deref()
                    .ok_or("no API key: pass --api-key or set CRM_EDGE_API_KEY")?;
                request = request.header("x-api-key", key);
            }
            Credential::Admin => {
                let token = self
                    .admin_token
                    .as_deref()
                    .ok_or("no admin token: pass --admin-token or set CRM_EDGE_ADMIN_TOKEN")?;
                request = request.header("authorization", format!("Bearer {token}"));
            }
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let payload = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                serde_json::to_vec(body).map_err(|e| e.to_string())?
            }
            None => Vec::new(),
        };
        let request = request.body(payload).map_err(|e| e.to_string())?;
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
