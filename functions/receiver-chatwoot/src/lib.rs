//! `POST /webhooks/chatwoot/{connector_id}`: the account webhooks of a business's Chatwoot,
//! feeding its Krayin connector. A delivery is checked against the connector's
//! `webhook_secret` (Chatwoot's `X-Chatwoot-Signature` over `"{timestamp}.{body}"`, the
//! timestamp within five minutes), then recorded as work for its contact and handed to the sync
//! consumer: nothing here waits for Krayin. A redelivery (the same `X-Chatwoot-Delivery`) is
//! acknowledged and records nothing.

use domain::api::Params;
use domain::api::receivers::{ChatwootReceivedOut, RECEIVER_CHATWOOT, ReceiverChatwoot};
use domain::crm::chatwoot::webhook;
use domain::crm::work::{ConnectorKind, ContactKey, Operation};
use domain::crypto::sha256_hex;
use domain::error::ApiError;
use domain::ids::{ConnectorId, SyncJobId};
use edge::Env;
use edge::call::Json;
use edge::crm::sync;
use edge::db::crm_sync_jobs::{self, Delivered};
use edge::db::{crm_connectors, crm_inbound_events};
use edge::runtime::{Bindings, Request, Response};
use edge::{DB, call, http, runtime, secrets_key};
use serde_json::Value;

/// A delivery id longer than this is not Chatwoot's (a UUID): the body's digest stands in.
const MAX_DELIVERY_CHARS: usize = 100;

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
    let event = webhook::parse(&body).map_err(ApiError::malformed)?;
    let outcome = if !connector.enabled {
        "ignored: the connector is disabled".to_owned()
    } else {
        match (event.topic(), event.contact(), event.subject()) {
            (Some(topic), Some(contact), Some(subject)) => {
                let delivery = header(webhook::DELIVERY_HEADER)?;
                let delivery = delivery.trim();
                // The delivery id is not signed: a captured delivery sent again under a new id is
                // the same signed body, which is claimed once. Older Chatwoots send no id at all.
                let body_id = format!("chatwoot:sha256:{}", sha256_hex(&body));
                let event_id = if delivery.is_empty() || delivery.chars().count() > MAX_DELIVERY_CHARS {
                    body_id.clone()
                } else {
                    format!("chatwoot:{delivery}")
                };
                let tenant = &connector.tenant;
                let record = async {
                    let input: Value = serde_json::from_slice(&body)
                        .map_err(|error| ApiError::malformed(error.to_string()))?;
                    let work = Delivered {
                        connector_id: &connector.id,
                        contact: &ContactKey::Chatwoot(contact.id),
                        operation: Operation::Chatwoot(topic),
                        subject_id: &subject,
                        event_id: &event_id,
                        input: &input,
                    };
                    let job = SyncJobId::generate(runtime::random()?);
                    crm_sync_jobs::insert_delivered(&db, tenant, &job, &work, runtime::now().micros()).await
                };
                let Some(recorded) =
                    crm_inbound_events::once(&db, tenant, &connector.id, &body_id, record).await?
                else {
                    return Ok(Json(ChatwootReceivedOut {
                        outcome: "duplicate: this body was delivered before".to_owned(),
                    }));
                };
                match recorded {
                    Some(contact) => {
                        sync::hand_over(&env, std::slice::from_ref(&contact), 0).await;
                        "queued".to_owned()
                    }
                    None => "duplicate".to_owned(),
                }
            }
            (None, ..) => format!(
                "ignored: {} is not synced",
                match &event {
                    webhook::ChatwootEvent::Other(name) => name.as_str(),
                    _ => "this event",
                }
            ),
            _ => "ignored: the event names no contact".to_owned(),
        }
    };
    Ok(Json(ChatwootReceivedOut { outcome }))
}
