//! `POST /webhooks/chatwoot/{connector_id}`: the account webhooks of a business's Chatwoot,
//! feeding its Krayin connector. A delivery is checked against the connector's
//! `webhook_secret` (Chatwoot's `X-Chatwoot-Signature` over `"{timestamp}.{body}"`, the
//! timestamp within five minutes), then recorded as work for its contact and handed to the sync
//! consumer (`edge::crm::chatwoot`): nothing here waits for Krayin. A redelivery (the same
//! `X-Chatwoot-Delivery`) is acknowledged and records nothing; a delivery while the business is
//! being moved is kept and recorded after the move.
//!
//! `POST /webhooks/chatwoot/{connector_id}/{token}` takes a Chatwoot before 4.11.2, which signs
//! nothing: the token is the connector's `webhook_token`, and the same body twice is recorded once.

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
            ReceiverChatwoot::ReceiveChatwootWebhookWithToken => call.run(receive_with_token).await,
        },
    )
    .await
}

async fn receive(params: Params, req: Request, env: Env) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    deliver(params, req, env, Proof::Signature).await
}

async fn receive_with_token(
    params: Params,
    req: Request,
    env: Env,
) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    deliver(params, req, env, Proof::Token).await
}

/// What a delivery must show: the signature, or the URL's token (and a signature if it has one).
#[derive(Clone, Copy, PartialEq)]
enum Proof {
    Signature,
    Token,
}

async fn deliver(
    params: Params,
    mut req: Request,
    env: Env,
    proof: Proof,
) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    let not_found = || ApiError::not_found("no Krayin connector at this webhook path");
    let id = ConnectorId::parse(params.get("connector_id")?).ok_or_else(not_found)?;
    let db = env.d1(DB)?;
    let connector = crm_connectors::find_any(&db, &secrets_key::keyring(&env)?, &id)
        .await?
        .filter(|connector| connector.kind == ConnectorKind::Krayin)
        .ok_or_else(not_found)?;
    let refused = |refusal: webhook::Refusal| ApiError::unauthorized(refusal.to_string());
    if proof == Proof::Token {
        webhook::verify_token(connector.secrets.webhook_token(), params.get("token")?).map_err(refused)?;
    }
    let body = http::read_body(&mut req, webhook::BODY_LIMIT).await?;
    let header =
        |name: &str| -> Result<String, ApiError> { Ok(req.headers().get(name)?.unwrap_or_default()) };
    let secret = connector.secrets.webhook_secret().unwrap_or_default();
    let signed = !header(webhook::SIGNATURE_HEADER)?.trim().is_empty();
    if proof == Proof::Signature || (signed && !secret.is_empty()) {
        webhook::verify(
            secret.as_bytes(),
            &header(webhook::TIMESTAMP_HEADER)?,
            &body,
            &header(webhook::SIGNATURE_HEADER)?,
            runtime::now().seconds(),
        )
        .map_err(refused)?;
    }
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
