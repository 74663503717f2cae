//! `/webhooks/meta/{account_id}`: the callback of a WhatsApp Cloud API number, a Messenger page
//! or an Instagram account. `GET` answers Meta's subscription handshake; `POST` receives signed
//! notifications and hands their messages and statuses to ingestion.

mod notification;
mod verification;

use domain::api::receivers::{RECEIVER_META, ReceiverMeta};
use domain::error::ApiError;
use edge::Env;
use edge::platform::call::{self, Origin};
use edge::platform::signed::{Meta, MetaHandshake, Signed};
use edge::runtime::{Bindings, Request, Response};

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

async fn verify(handshake: Signed<MetaHandshake>) -> Result<Response, ApiError> {
    verification::answer(handshake.verified)
}

async fn receive(signed: Signed<Meta>, env: Env, Origin(origin): Origin) -> Result<Response, ApiError> {
    notification::receive(&env, &signed.owner, &signed.verified, &origin).await
}
