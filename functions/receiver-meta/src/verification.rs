//! The subscription handshake: Meta proves the callback URL is ours by sending the verify token
//! we gave it, and expects its challenge back as plain text.

use domain::error::ApiError;
use edge::runtime::{Headers, Response};

/// The challenge of a handshake whose verify token held (`edge::platform::signed::MetaHandshake`).
pub fn answer(challenge: String) -> Result<Response, ApiError> {
    let headers = Headers::new();
    headers.set("content-type", "text/plain; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    headers.set("x-content-type-options", "nosniff")?;
    Ok(Response::ok(challenge)?.with_headers(headers))
}
