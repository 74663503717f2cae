//! The partners crm-edge calls, as scripts that speak their real protocols (paths, payloads,
//! auth, signatures, error shapes), and the requests partners make to it, signed as they sign them.

pub mod chatwoot;
pub mod crm_pages;
pub mod embedder;
pub mod form;
pub mod hubspot;
pub mod krayin;
pub mod kustomer;
pub mod mailgun;
pub mod media_host;
pub mod meta;
pub mod salesforce;
pub mod script;
pub mod send_api;
pub mod twilio;
pub mod webhook_endpoint;

use base64::Engine;
use edge::runtime::native::{Outbound, Reply};
use serde::Serialize;
use sha2::Digest;
use std::sync::atomic::{AtomicU64, Ordering};

/// `body` as JSON with `status`.
pub fn json_reply(status: u16, body: &impl Serialize) -> Reply {
    Reply::json(status, body)
}

/// HMAC-SHA256 of `message` under `key`, computed here rather than with the code under test.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|error| panic!("{error}"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The user and password of a call's `Authorization: Basic`, decoded here.
pub fn basic_credentials(call: &Outbound) -> Option<(String, String)> {
    let encoded = call.header("authorization")?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The fields of a call's `application/x-www-form-urlencoded` body, in order, decoded.
pub fn form_fields(call: &Outbound) -> Vec<(String, String)> {
    form::read_url_encoded(&call.body)
}

/// HMAC-SHA1 of `message` under `key` (Twilio's signature), computed here as well.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|error| panic!("{error}"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `length` hex digits no other call in this process returns: a provider's message id, a
/// signing token.
pub fn unique_hex(length: usize) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hex = String::new();
    let seed = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut round = 0u64;
    while hex.len() < length {
        let block = sha2::Sha256::new()
            .chain_update(seed.to_le_bytes())
            .chain_update(round.to_le_bytes())
            .finalize();
        hex.push_str(&hex::encode(block));
        round += 1;
    }
    hex.truncate(length);
    hex
}

/// Milliseconds between consecutive calls a partner received.
pub fn gaps(calls: &[Outbound]) -> Vec<i64> {
    calls
        .windows(2)
        .map(|pair| pair[1].at_ms - pair[0].at_ms)
        .collect()
}
