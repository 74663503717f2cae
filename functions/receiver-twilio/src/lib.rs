//! `/webhooks/twilio/{account_id}`: the messaging webhook of a Twilio number, SMS or WhatsApp.
//! Incoming messages and status callbacks arrive here alike, signed with the auth token.

mod webhook;

use domain::api::receivers::{RECEIVER_TWILIO, ReceiverTwilio};
use domain::error::ApiError;
use edge::Env;
use edge::platform::call::{self, Origin};
use edge::platform::signed::{Signed, Twilio};
use edge::runtime::{Bindings, Request, Response};

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

async fn receive(signed: Signed<Twilio>, env: Env, Origin(origin): Origin) -> Result<Response, ApiError> {
    webhook::receive(&env, &signed.owner, &signed.verified, &origin).await
}
