//! The partners crm-edge calls, as scripts that speak their real protocols (paths, payloads,
//! auth, signatures, error shapes), and the requests partners make to it, signed as they sign them.

pub mod chatwoot;
pub mod crm_pages;
pub mod embedder;
pub mod krayin;
pub mod kustomer;
pub mod meta;
pub mod webhook_endpoint;

use edge::runtime::native::Reply;
use serde::Serialize;

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
