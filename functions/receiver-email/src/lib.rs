//! `/webhooks/mailgun/{account_id}`: the forward action of a Mailgun inbound route. Each POST is
//! one email to the account's address, signed with the account's webhook signing key.

mod form;
mod mail;

use domain::api::receivers::{RECEIVER_EMAIL, ReceiverEmail};
use domain::error::ApiError;
use edge::Env;
use edge::platform::call::{self, Origin};
use edge::platform::signed::{Mailgun, Signed};
use edge::runtime::{Bindings, Request, Response};

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

async fn receive(signed: Signed<Mailgun>, env: Env, Origin(origin): Origin) -> Result<Response, ApiError> {
    mail::receive(&env, &signed.owner, signed.verified, &origin).await
}
