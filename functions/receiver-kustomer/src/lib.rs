//! `POST /api/webhooks/kustomer/{connector_id}`: Kustomer's webhooks for one connector, signed with
//! the hook's token (the connector's `webhook_secret`). An agent's reply in Kustomer goes to the
//! customer on their channel; status and assignment changes update our conversation (and emit our
//! events, which are not sent back to Kustomer); satisfaction results are kept. A delivery made
//! twice acts once.
//!
//! `POST /api/webhooks/kustomer` takes the integration guide's own body (`{event, data}`) for the
//! one Kustomer connector of the business its API key names, signed the same way.

mod event;

use domain::api::Params;
use domain::api::receivers::{KustomerReceivedOut, RECEIVER_KUSTOMER, ReceiverKustomer};
use domain::crm::kustomer::webhook;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;
use edge::Env;
use edge::call::Json;
use edge::db::Db;
use edge::db::crm_connectors::{self, Connector};
use edge::runtime::{Bindings, Request, Response};
use edge::{DB, call, http, secrets_key};

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

async fn receive(params: Params, mut req: Request, env: Env) -> Result<Json<KustomerReceivedOut>, ApiError> {
    let not_found = || ApiError::not_found("no Kustomer connector at this webhook path");
    let id = ConnectorId::parse(params.get("connector_id")?).ok_or_else(not_found)?;
    let db = env.d1(DB)?;
    let connector = crm_connectors::find_any(&db, &secrets_key::keyring(&env)?, &id)
        .await?
        .filter(|connector| connector.kind == ConnectorKind::Kustomer)
        .ok_or_else(not_found)?;
    let body = http::read_body(&mut req, webhook::BODY_LIMIT).await?;
    verify(&req, &connector, &body)?;
    let name = req.headers().get(webhook::EVENT_HEADER)?;
    let inbound = webhook::parse(name.as_deref(), &body).map_err(ApiError::malformed)?;
    act(&env, &db, &connector, inbound).await
}

/// `POST /api/webhooks/kustomer`: the guide's body, for the one Kustomer connector of the
/// business the API key names.
async fn receive_guides(
    tenant: Tenant,
    mut req: Request,
    env: Env,
) -> Result<Json<KustomerReceivedOut>, ApiError> {
    let none = || ApiError::not_found("this business has no enabled Kustomer connector");
    let db = env.d1(DB)?;
    let kustomer: Vec<ConnectorId> = crm_connectors::enabled(&db, &tenant)
        .await?
        .into_iter()
        .filter(|connector| connector.kind == ConnectorKind::Kustomer)
        .map(|connector| connector.id)
        .collect();
    let id = match kustomer.as_slice() {
        [id] => id,
        [] => return Err(none()),
        several => {
            return Err(ApiError::conflict(format!(
                "this business has {} enabled Kustomer connectors: send each one's webhooks to its own \
                 webhook_path (/api/webhooks/kustomer/{{connector_id}})",
                several.len()
            )));
        }
    };
    let connector = crm_connectors::find(&db, &secrets_key::keyring(&env)?, &tenant, id)
        .await?
        .ok_or_else(none)?;
    let body = http::read_body(&mut req, webhook::BODY_LIMIT).await?;
    verify(&req, &connector, &body)?;
    let inbound = webhook::parse_guide(&body).map_err(ApiError::malformed)?;
    act(&env, &db, &connector, inbound).await
}

/// The body signed with the connector's webhook secret, as Kustomer signs it.
fn verify(req: &Request, connector: &Connector, body: &[u8]) -> Result<(), ApiError> {
    let Some(secret) = connector.secrets.webhook_secret() else {
        return Err(ApiError::unauthorized(
            "this connector has no webhook_secret: set it to the token of the Kustomer webhook",
        ));
    };
    let signature = req.headers().get(webhook::SIGNATURE_HEADER)?.unwrap_or_default();
    if !webhook::verify(secret.as_bytes(), body, &signature) {
        return Err(ApiError::unauthorized(format!(
            "the {} signature is missing or does not match this connector's webhook_secret",
            webhook::SIGNATURE_HEADER
        )));
    }
    Ok(())
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
