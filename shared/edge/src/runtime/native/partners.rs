//! The partners a native stack calls (a CRM, a channel provider, a customer's webhook endpoint, a
//! CRM link's pages, the embedder): each host answered by a script the test writes, as a wiremock
//! per partner would. Every call is recorded, answered or not, so a test can assert on what was
//! sent: its method, URL, headers and body.

use super::Stack;
use serde::Serialize;
use std::time::Duration;

/// A call the code made.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub method: String,
    pub url: String,
    /// Names lowercased, sorted.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it was made, on the stack's clock.
    pub at_ms: i64,
}

impl Outbound {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `host[:port]` of the URL.
    pub fn host(&self) -> &str {
        host_of(&self.url)
    }

    /// The URL's path, without its query.
    pub fn path(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let path = rest.find('/').map_or("/", |at| &rest[at..]);
        path.split(['?', '#']).next().unwrap_or("/")
    }

    /// The query's parameters, decoded.
    pub fn query(&self) -> domain::query::Query {
        let query = self.url.split_once('?').map(|(_, query)| query);
        domain::query::Query::parse(query.map(|query| query.split('#').next().unwrap_or_default()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// `host[:port]` of a URL.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or(authority)
}

/// What a partner answers: a status, headers and a body, after a while, in chunks; or no answer
/// at all (a refused connection, a reset).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long the partner takes before its status line.
    pub delay_ms: u64,
    /// The body's chunks' size (0: one chunk) and the pause before each.
    pub chunk_size: usize,
    pub chunk_delay_ms: u64,
    /// The runtime's error instead of an answer.
    pub refused: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay_ms: 0,
            chunk_size: 0,
            chunk_delay_ms: 0,
            refused: None,
        }
    }

    /// `body` as JSON, with its content type.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        Self::status(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default())
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.as_bytes().to_vec())
    }

    /// The connection is refused: nothing listens there (a partner that is down).
    pub fn refused() -> Self {
        Self {
            refused: Some("Network connection lost: connection refused".to_owned()),
            ..Self::status(0)
        }
    }

    /// A partner that accepts the connection and never answers.
    pub fn never() -> Self {
        Self::status(200).after(Duration::from_secs(365 * 24 * 3600))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The answer comes after `wait`.
    pub fn after(mut self, wait: Duration) -> Self {
        self.delay_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The body comes `size` bytes at a time, each after `pause`.
    pub fn in_chunks(mut self, size: usize, pause: Duration) -> Self {
        self.chunk_size = size;
        self.chunk_delay_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self
    }

    pub(crate) fn chunks(&self) -> Vec<worker::Result<Vec<u8>>> {
        if self.body.is_empty() {
            return Vec::new();
        }
        let size = if self.chunk_size == 0 {
            self.body.len()
        } else {
            self.chunk_size
        };
        self.body.chunks(size).map(|chunk| Ok(chunk.to_vec())).collect()
    }
}

/// A partner's behaviour: the reply to each call, by whatever state it keeps.
pub type Script = Box<dyn FnMut(&Outbound) -> Reply>;

/// Records the call and asks the script of its host; a host without one refuses the connection.
pub(crate) fn answer(stack: &Stack, outbound: Outbound) -> Reply {
    stack.record(outbound.clone());
    stack
        .script_for(outbound.host(), |script| script(&outbound))
        .unwrap_or_else(Reply::refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_split_into_host_path_and_query() {
        let call = Outbound {
            method: "GET".into(),
            url: "https://user@api.kustomer.test:8443/v1/customers?email=a%40b.ie#top".into(),
            headers: vec![("x-a".into(), "1".into())],
            body: Vec::new(),
            at_ms: 0,
        };
        assert_eq!(call.host(), "api.kustomer.test:8443");
        assert_eq!(call.path(), "/v1/customers");
        assert_eq!(call.query().get("email"), Some("a@b.ie"));
        assert_eq!(call.header("X-A"), Some("1"));
    }

    #[test]
    fn a_body_comes_in_the_chunks_asked_for() {
        let reply = Reply::text(200, "abcdefg").in_chunks(3, Duration::ZERO);
        let chunks: Vec<Vec<u8>> = reply.chunks().into_iter().filter_map(Result::ok).collect();
        assert_eq!(chunks, vec![b"abc".to_vec(), b"def".to_vec(), b"g".to_vec()]);
    }
}
