//! `POST /webhooks/chatwoot/{connector_id}`: the account webhooks of a business's Chatwoot,
//! feeding its Krayin connector. A delivery is checked against the connector's
//! `webhook_secret` (Chatwoot's `X-Chatwoot-Signature` over `"{timestamp}.{body}"`, the
//! timestamp within five minutes), then recorded as work for its contact and handed to the sync
//! consumer (`edge::crm::chatwoot`): nothing here waits for Krayin. A redelivery (the same
//! `X-Chatwoot-Delivery`) is acknowledged and records nothing; a delivery while the business is
//! being moved is kept and recorded after the move.

use domain::api::Params;
use domain::api::receivers::{ChatwootReceivedOut, RECEIVER_CHATWOOT, ReceiverChatwoot};
use domain::crm::chatwoot::webhook;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use edge::Env;
use edge::call::Json;
use edge::crm::chatwoot;
use edge::db::crm_connectors;
use edge::runtime::{Bindings, Request, Response};
use edge::{DB, call, held_inbound, http, runtime, secrets_key};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_CHATWOOT,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverChatwoot::ReceiveChatwootWebhook => call.run(receive).await,
        },
    )
    .await
}

async fn receive(params: Params, mut req: Request, env: Env) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    let not_found = || ApiError::not_found("no Krayin connector at this webhook path");
    let id = ConnectorId::parse(params.get("connector_id")?).ok_or_else(not_found)?;
    let db = env.d1(DB)?;
    let connector = crm_connectors::find_any(&db, &secrets_key::keyring(&env)?, &id)
        .await?
        .filter(|connector| connector.kind == ConnectorKind::Krayin)
        .ok_or_else(not_found)?;
    let body = http::read_body(&mut req, webhook::BODY_LIMIT).await?;
    let header =
        |name: &str| -> Result<String, ApiError> { Ok(req.headers().get(name)?.unwrap_or_default()) };
    let secret = connector.secrets.webhook_secret().unwrap_or_default();
    webhook::verify(
        secret.as_bytes(),
        &header(webhook::TIMESTAMP_HEADER)?,
        &body,
        &header(webhook::SIGNATURE_HEADER)?,
        runtime::now().seconds(),
    )
    .map_err(|refusal| ApiError::unauthorized(refusal.to_string()))?;
    let delivery = header(webhook::DELIVERY_HEADER)?;
    let outcome = match chatwoot::record(&env, &db, &connector, &body, &delivery).await {
        Ok(outcome) => outcome,
        // The business is being moved: Chatwoot does not deliver an account webhook twice, so
        // the delivery is kept and recorded after the move.
        Err(error) if held_inbound::being_moved(&error) => {
            held_inbound::keep_chatwoot(&env, &connector, &body, &delivery).await?;
            "kept: recorded once the business's move is over".to_owned()
        }
        Err(error) => return Err(error),
    };
    Ok(Json(ChatwootReceivedOut { outcome }))
}
