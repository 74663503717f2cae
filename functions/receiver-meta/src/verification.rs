//! The subscription handshake: Meta proves the callback URL is ours by sending the verify token
//! we gave it, and expects its challenge back as plain text.

use domain::error::ApiError;
use domain::providers::meta::webhook as meta;
use edge::db::channel_accounts::ChannelAccount;
use edge::http;
use edge::runtime::{Headers, Request, Response};

pub fn answer(req: &Request, account: &ChannelAccount) -> Result<Response, ApiError> {
    let verify_token = account.required_secret("verify_token")?;
    let challenge = meta::answer_handshake(&http::query(req), verify_token)?;
    let headers = Headers::new();
    headers.set("content-type", "text/plain; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    headers.set("x-content-type-options", "nosniff")?;
    Ok(Response::ok(challenge)?.with_headers(headers))
}
