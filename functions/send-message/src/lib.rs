//! `POST /api-send-message`: a CRM sends a message to one of its customers on a channel.
//!
//! The message is stored `queued` and handed to the dispatcher over a queue; the answer (202)
//! comes before any provider is called, so a slow or failing provider never holds up the CRM.
//! The client follows the message to `sent` or `failed` through `/api-messages-since`.
//! The sending itself lives in `edge::messaging::send_queue`, which the embedded inbox's reply box uses too.

use domain::api::messages::{SEND_MESSAGE, SendMessage, SentOut};
use domain::error::ApiError;
use domain::outgoing::{SendIn, SendRequest};
use domain::tenant::Tenant;
use edge::Env;
use edge::messaging::send_queue;
use edge::platform::call::{self, Accepted, Json, Origin};
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &SEND_MESSAGE,
        req,
        bindings,
        async |operation, call| match operation {
            SendMessage::SendMessage => call.run(send).await,
        },
    )
    .await
}

async fn send(
    tenant: Tenant,
    env: Env,
    Json(input): Json<SendIn>,
    Origin(origin): Origin,
) -> Result<Accepted<SentOut>, ApiError> {
    let request = SendRequest::parse(input, tenant.default_country)?;
    let db = env.db()?;
    let (customer, account) = send_queue::customer_and_account(
        &db,
        &tenant,
        &request.customer.keys,
        &request.customer.named_by,
        request.message.channel,
    )
    .await?;
    let message =
        send_queue::accept(&env, &db, &tenant, &customer, &account, &request.message, &origin).await?;
    Ok(Accepted(SentOut {
        success: true,
        message,
    }))
}
