//! Idempotency keys: what a valid key is, and what makes two requests "the same request".
//!
//! A POST that creates or sends may carry `Idempotency-Key`. Retried with the same key and the
//! same request within [`RETENTION_SECONDS`], it gets the first response again; with the same key
//! and another request it is refused. Two requests are the same when their method, path and body
//! are: a multipart body is compared without its boundary, which HTTP clients pick at random on
//! every attempt.

use crate::crypto::sha256_hex;
use crate::error::ApiError;

pub const HEADER: &str = "Idempotency-Key";
/// How long a key is remembered.
pub const RETENTION_SECONDS: i64 = 24 * 60 * 60;
/// How long a run holds its key before a retry may take it over (the run's worker died).
pub const LEASE_SECONDS: i64 = 60;
const MAX_LEN: usize = 255;

/// A client's key: 1 to 255 visible ASCII characters (a UUID, typically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` when the header is absent; an error when it is present and not a key.
    pub fn from_header(value: Option<&str>) -> Result<Option<Self>, ApiError> {
        let Some(value) = value else { return Ok(None) };
        let valid = (1..=MAX_LEN).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Some(Self(value.to_owned())))
        } else {
            Err(ApiError::malformed(format!(
                "{HEADER} must be 1 to {MAX_LEN} visible ASCII characters, such as a UUID"
            ))
            .at(HEADER))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of a request: SHA-256 over who sent it (`caller`: the audit log's name of a key,
/// session or the operator), its method, path and body, hex encoded. A key's replay is its
/// caller's alone: an answer that hands out a secret once (a new webhook's signing secret, an
/// SSO token) is not handed again to another key or session of the business.
pub fn fingerprint(
    caller: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> String {
    let mut input = Vec::with_capacity(caller.len() + method.len() + path.len() + body.len() + 3);
    input.extend_from_slice(caller.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(method.as_bytes());
    input.push(b' ');
    input.extend_from_slice(path.as_bytes());
    input.push(b'\n');
    match content_type.and_then(multipart_boundary) {
        Some(boundary) => input.extend(without(body, format!("--{boundary}").as_bytes())),
        None => input.extend_from_slice(body),
    }
    sha256_hex(&input)
}

/// The boundary parameter of a `multipart/*` content type.
fn multipart_boundary(content_type: &str) -> Option<&str> {
    let mut parts = content_type.split(';');
    let media_type = parts.next()?.trim();
    if !media_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    parts.find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        let value = value.trim().trim_matches('"');
        (name.trim().eq_ignore_ascii_case("boundary") && !value.is_empty()).then_some(value)
    })
}

/// `body` with every occurrence of `needle` removed.
fn without(body: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.windows(needle.len()).position(|window| window == needle) {
        kept.extend_from_slice(&rest[..at]);
        rest = &rest[at + needle.len()..];
    }
    kept.extend_from_slice(rest);
    kept
}

/// Whether a response is kept for replay: every answer the request itself decided. Server
/// errors are not (a retry should run again), nor is a rate limit (it says nothing about the
/// request).
pub fn keeps(status: u16) -> bool {
    status < 500 && status != 429
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert_eq!(IdempotencyKey::from_header(None), Ok(None));
        let uuid = "5f0c6b2e-8a4d-4c1e-9b7a-2d3e4f5a6b7c";
        assert_eq!(
            IdempotencyKey::from_header(Some(uuid)).map(|k| k.map(|k| k.as_str().to_owned())),
            Ok(Some(uuid.to_owned()))
        );
        assert!(IdempotencyKey::from_header(Some(&"k".repeat(255))).is_ok());
        for bad in ["", "has space", "tab\there", "é", &"k".repeat(256)] {
            let error = IdempotencyKey::from_header(Some(bad)).err();
            assert_eq!(error.as_ref().map(ApiError::status), Some(400), "{bad:?}");
            assert_eq!(error.and_then(|e| e.body.field).as_deref(), Some(HEADER));
        }
    }

    const CALLER: &str = "key:cek_1a2b3c4d";

    /// A request's fingerprint, sent by [`CALLER`].
    fn request(method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> String {
        fingerprint(CALLER, method, path, content_type, body)
    }

    #[test]
    fn the_same_request_has_the_same_fingerprint_and_any_difference_changes_it() {
        let base = request(
            "POST",
            "/api-send-message",
            Some("application/json"),
            b"{\"a\":1}",
        );
        assert_eq!(
            base,
            request(
                "POST",
                "/api-send-message",
                Some("application/json"),
                b"{\"a\":1}"
            )
        );
        assert_ne!(base, request("POST", "/api-send-message", None, b"{\"a\":2}"));
        assert_ne!(base, request("POST", "/api-webhooks", None, b"{\"a\":1}"));
        assert_ne!(base, request("PUT", "/api-send-message", None, b"{\"a\":1}"));
        for other in ["key:cek_9z8y7x6w", "console:c0ffee", "admin"] {
            let sent = fingerprint(
                other,
                "POST",
                "/api-send-message",
                Some("application/json"),
                b"{\"a\":1}",
            );
            assert_ne!(base, sent, "the same request sent by {other}");
        }
        // The separator keeps method, path and body apart.
        assert_ne!(
            request("POST", "/a", None, b"b"),
            request("POST", "/ab", None, b"")
        );
    }

    #[test]
    fn a_multipart_body_is_compared_without_its_random_boundary() {
        let body = |boundary: &str, content: &str| {
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n{content}\r\n--{boundary}--\r\n"
            )
        };
        let first = request(
            "POST",
            "/api-upload-attachment",
            Some("multipart/form-data; boundary=----one"),
            body("----one", "hello").as_bytes(),
        );
        let retry = request(
            "POST",
            "/api-upload-attachment",
            Some("multipart/form-data; boundary=\"----two\""),
            body("----two", "hello").as_bytes(),
        );
        let other_file = request(
            "POST",
            "/api-upload-attachment",
            Some("multipart/form-data; boundary=----three"),
            body("----three", "world").as_bytes(),
        );
        assert_eq!(first, retry);
        assert_ne!(first, other_file);
    }

    #[test]
    fn server_errors_and_rate_limits_are_not_replayed() {
        assert!(keeps(200) && keeps(201) && keeps(202) && keeps(404) && keeps(422));
        assert!(!keeps(429) && !keeps(500) && !keeps(503));
    }
}
