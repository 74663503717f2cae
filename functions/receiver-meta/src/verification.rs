//! The subscription handshake: Meta proves the callback URL is ours by sending the verify token
//! we gave it, and expects its challenge back as plain text.

use domain::error::ApiError;
use edge::runtime::Internal;
use edge::runtime::{Headers, Response};

/// The challenge of a handshake whose verify token held (`edge::platform::signed::MetaHandshake`).
pub fn answer(challenge: String) -> Result<Response, ApiError> {
    let headers = Headers::new();
    headers
        .set("content-type", "text/plain; charset=utf-8")
        .internal("setting a header")?;
    headers
        .set("cache-control", "no-store")
        .internal("setting a header")?;
    headers
        .set("x-content-type-options", "nosniff")
        .internal("setting a header")?;
    Ok(Response::ok(challenge)
        .internal("making an answer")?
        .with_headers(headers))
}
