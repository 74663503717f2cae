//! `/webhooks/meta/{account_id}`: the callback of a WhatsApp Cloud API number, a Messenger page
//! or an Instagram account. `GET` answers Meta's subscription handshake; `POST` receives signed
//! notifications and hands their messages and statuses to ingestion.

mod notification;
mod verification;

use domain::api::receivers::{RECEIVER_META, ReceiverMeta};
use domain::error::ApiError;
use domain::providers::Provider;
use edge::Env;
use edge::db::channel_accounts::ChannelAccount;
use edge::runtime::{Bindings, Request, Response};
use edge::{DB, call, db, secrets_key};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_META,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverMeta::VerifyMetaWebhook => call.run(verify).await,
            ReceiverMeta::ReceiveMetaWebhook => call.run(receive).await,
        },
    )
    .await
}

/// The channel account whose webhook path the request was sent to.
async fn account(req: &Request, env: &Env) -> Result<ChannelAccount, ApiError> {
    let keys = secrets_key::keyring(env)?;
    db::channel_accounts::for_webhook(&env.d1(DB)?, &keys, &req.path(), Provider::Meta).await
}

async fn verify(req: Request, env: Env) -> Result<Response, ApiError> {
    verification::answer(&req, &account(&req, &env).await?)
}

async fn receive(req: Request, env: Env) -> Result<Response, ApiError> {
    let account = account(&req, &env).await?;
    notification::receive(req, &env, &account).await
}
