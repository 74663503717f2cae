//! `POST /api/webhooks/kustomer/{connector_id}`: Kustomer's webhooks for one connector, signed with
//! the hook's token (the connector's `webhook_secret`). An agent's reply in Kustomer goes to the
//! customer on their channel; status and assignment changes update our conversation (and emit our
//! events, which are not sent back to Kustomer); satisfaction results are kept. A delivery made
//! twice acts once.
//!
//! `POST /api/webhooks/kustomer` takes the integration guide's own body (`{event, data}`) for the
//! one Kustomer connector of the business its API key names, signed the same way.

mod event;

use domain::api::receivers::{KustomerReceivedOut, RECEIVER_KUSTOMER, ReceiverKustomer};
use domain::crm::kustomer::webhook;
use domain::error::ApiError;
use edge::Env;
use edge::db::Db;
use edge::db::crm_connectors::Connector;
use edge::platform::call::{self, Json};
use edge::platform::signed::{Kustomer, KustomerGuide, Signed};
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_KUSTOMER,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverKustomer::ReceiveKustomerWebhook => call.run(receive).await,
            ReceiverKustomer::ReceiveKustomerGuideWebhook => call.run(receive_guides).await,
        },
    )
    .await
}

async fn receive(signed: Signed<Kustomer>, env: Env) -> Result<Json<KustomerReceivedOut>, ApiError> {
    let event = &signed.verified;
    let inbound = webhook::parse(event.name.as_deref(), &event.body).map_err(ApiError::malformed)?;
    act(&env, &env.db()?, &signed.owner, inbound).await
}

/// `POST /api/webhooks/kustomer`: the guide's body, for the one Kustomer connector of the
/// business the API key names.
async fn receive_guides(
    signed: Signed<KustomerGuide>,
    env: Env,
) -> Result<Json<KustomerReceivedOut>, ApiError> {
    let inbound = webhook::parse_guide(&signed.verified.body).map_err(ApiError::malformed)?;
    act(&env, &env.db()?, &signed.owner, inbound).await
}

async fn act(
    env: &Env,
    db: &Db,
    connector: &Connector,
    inbound: webhook::InboundEvent,
) -> Result<Json<KustomerReceivedOut>, ApiError> {
    let outcome = event::handle(env, db, connector, &inbound).await?;
    Ok(Json(KustomerReceivedOut {
        event: inbound.id,
        outcome: outcome.to_owned(),
    }))
}
