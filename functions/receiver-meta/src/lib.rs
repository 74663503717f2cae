//! `/webhooks/meta/{account_id}`: the callback of a WhatsApp Cloud API number, a Messenger page
//! or an Instagram account. `GET` answers Meta's subscription handshake; `POST` receives signed
//! notifications and hands their messages and statuses to ingestion.

mod notification;
mod verification;

use domain::api_legacy::{self as api, Operation, Routed};
use domain::error::ApiError;
use domain::providers::Provider;
use edge::Env;
use edge::{DB, db, http, secrets_key};
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_open(&api::RECEIVER_META, req, env, receive).await
}

async fn receive(req: Request, env: Env, routed: Routed) -> Result<Response, ApiError> {
    let account = || async {
        db::channel_accounts::for_webhook(
            &env.d1(DB)?,
            &secrets_key::keyring(&env)?,
            &req.path(),
            Provider::Meta,
        )
        .await
    };
    match routed.operation() {
        Operation::VerifyMetaWebhook => verification::answer(&req, &account().await?),
        Operation::ReceiveMetaWebhook => {
            let account = account().await?;
            notification::receive(req, &env, &account).await
        }
        _ => Err(routed.not_served(&api::RECEIVER_META)),
    }
}
