//! `/webhooks/twilio/{account_id}`: the messaging webhook of a Twilio number, SMS or WhatsApp.
//! Incoming messages and status callbacks arrive here alike, signed with the auth token.

mod webhook;

use domain::api::receivers::{RECEIVER_TWILIO, ReceiverTwilio};
use domain::error::ApiError;
use domain::providers::Provider;
use edge::Env;
use edge::runtime::{Bindings, Request, Response};
use edge::{DB, call, db, secrets_key};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_TWILIO,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverTwilio::ReceiveTwilioWebhook => call.run(receive).await,
        },
    )
    .await
}

async fn receive(req: Request, env: Env) -> Result<Response, ApiError> {
    let account = db::channel_accounts::for_webhook(
        &env.d1(DB)?,
        &secrets_key::keyring(&env)?,
        &req.path(),
        Provider::Twilio,
    )
    .await?;
    webhook::receive(req, &env, &account).await
}
