//! One Twilio request: its signature checked over the URL Twilio called and every parameter, then
//! its message or status stored, and Twilio answered with TwiML that asks it to do nothing more.

use domain::error::{ApiError, ErrorCode};
use domain::providers::twilio::webhook as twilio;
use edge::Env;
use edge::db::channel_accounts::ChannelAccount;
use edge::http;
use edge::ingest;
use edge::runtime::{Headers, Request, Response};

/// An empty TwiML document: no reply is sent from here (replies go through the send API).
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

pub async fn receive(mut req: Request, env: &Env, account: &ChannelAccount) -> Result<Response, ApiError> {
    let auth_token = account.required_secret("auth_token")?;
    require_form(&req)?;
    let body = http::read_body(&mut req, twilio::BODY_LIMIT).await?;
    let params = twilio::form_params(&body);
    // Twilio signs the URL it was configured with: the public URL of this request, which is not
    // the one the worker sees when a proxy or custom domain stands in front (PUBLIC_BASE_URL).
    let url = http::public_url(&req, env)?;
    let signature = req.headers().get(twilio::SIGNATURE_HEADER)?;
    twilio::verify_signature(auth_token, &url, &params, signature.as_deref())?;

    let batch = twilio::parse(&params, account.channel)?;
    ingest::ingest(env, account, batch, &http::origin(&req, env)?).await?;
    let headers = Headers::new();
    headers.set("content-type", "text/xml; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(EMPTY_TWIML)?.with_headers(headers))
}

/// Twilio posts its messaging webhooks as a form; anything else was not sent by Twilio.
fn require_form(req: &Request) -> Result<(), ApiError> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let is_form = content_type.split(';').next().is_some_and(|kind| {
        kind.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if is_form || content_type.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Twilio webhooks are application/x-www-form-urlencoded",
        ))
    }
}
