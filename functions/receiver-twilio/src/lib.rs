//! `/webhooks/twilio/{account_id}`: the messaging webhook of a Twilio number, SMS or WhatsApp.
//! Incoming messages and status callbacks arrive here alike, signed with the auth token.

mod webhook;

use domain::api_legacy::{self as api, Routed};
use domain::error::ApiError;
use domain::providers::Provider;
use edge::Env;
use edge::{DB, db, http, secrets_key};
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_open(&api::RECEIVER_TWILIO, req, env, receive).await
}

async fn receive(req: Request, env: Env, _: Routed) -> Result<Response, ApiError> {
    let account = db::channel_accounts::for_webhook(
        &env.d1(DB)?,
        &secrets_key::keyring(&env)?,
        &req.path(),
        Provider::Twilio,
    )
    .await?;
    webhook::receive(req, &env, &account).await
}
