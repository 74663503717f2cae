//! `/webhooks/mailgun/{account_id}`: the forward action of a Mailgun inbound route. Each POST is
//! one email to the account's address, signed with the account's webhook signing key.

mod form;
mod mail;

use domain::api::receivers::{RECEIVER_EMAIL, ReceiverEmail};
use domain::error::ApiError;
use domain::providers::Provider;
use edge::Env;
use edge::runtime::{Bindings, Request, Response};
use edge::{DB, call, db, secrets_key};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_EMAIL,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverEmail::ReceiveMailgunWebhook => call.run(receive).await,
        },
    )
    .await
}

async fn receive(req: Request, env: Env) -> Result<Response, ApiError> {
    let account = db::channel_accounts::for_webhook(
        &env.d1(DB)?,
        &secrets_key::keyring(&env)?,
        &req.path(),
        Provider::Mailgun,
    )
    .await?;
    mail::receive(req, &env, &account).await
}
