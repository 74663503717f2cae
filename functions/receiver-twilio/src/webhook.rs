//! One Twilio request whose signature held (`edge::platform::signed::Twilio`, over the URL Twilio called and
//! every parameter): its message or status stored, and Twilio answered with TwiML that asks it to
//! do nothing more.

use domain::error::ApiError;
use domain::providers::twilio::webhook as twilio;
use edge::Env;
use edge::db::channel_accounts::ChannelAccount;
use edge::messaging::ingest;
use edge::runtime::Internal;
use edge::runtime::{Headers, Response};

/// An empty TwiML document: no reply is sent from here (replies go through the send API).
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

pub async fn receive(
    env: &Env,
    account: &ChannelAccount,
    params: &[(String, String)],
    origin: &str,
) -> Result<Response, ApiError> {
    let batch = twilio::parse(params, account.channel)?;
    ingest::ingest(env, account, batch, origin).await?;
    let headers = Headers::new();
    headers
        .set("content-type", "text/xml; charset=utf-8")
        .internal("setting a header")?;
    headers
        .set("cache-control", "no-store")
        .internal("setting a header")?;
    Ok(Response::ok(EMPTY_TWIML)
        .internal("making an answer")?
        .with_headers(headers))
}
