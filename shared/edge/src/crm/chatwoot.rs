//! A verified delivery of a business's Chatwoot account webhook, recorded as its Krayin
//! connector's work for the contact and handed to crm-sync: nothing here waits for Krayin. A
//! redelivery (the same `X-Chatwoot-Delivery`, or the same signed body) records nothing. While
//! the business is being moved, its receiver keeps the delivery (`held_inbound`) and it is
//! recorded here after the move (Chatwoot does not deliver an account webhook twice).

use crate::Env;
use crate::crm::sync;
use crate::db::Db;
use crate::db::crm_connectors::Connector;
use crate::db::crm_inbound_events;
use crate::db::crm_sync_jobs::{self, Delivered};
use crate::runtime;
use domain::crm::chatwoot::webhook;
use domain::crm::work::{ContactKey, Operation};
use domain::crypto::sha256_hex;
use domain::error::ApiError;
use domain::ids::SyncJobId;
use serde_json::Value;

/// A delivery id longer than this is not Chatwoot's (a UUID): the body's digest stands in.
const MAX_DELIVERY_CHARS: usize = 100;

/// Records the verified `body` (delivered as `delivery`, its `X-Chatwoot-Delivery`, maybe
/// empty) for `connector`: what came of it, as the receiver answers it.
pub async fn record(
    env: &Env,
    db: &Db,
    connector: &Connector,
    body: &[u8],
    delivery: &str,
) -> Result<String, ApiError> {
    let event = webhook::parse(body).map_err(ApiError::malformed)?;
    if !connector.enabled {
        return Ok("ignored: the connector is disabled".to_owned());
    }
    Ok(match (event.topic(), event.contact(), event.subject()) {
        (Some(_), Some(contact), Some(_))
            if !connector
                .rollout
                .includes_key(&connector.id, &ContactKey::Chatwoot(contact.id).to_string()) =>
        {
            "ignored: the contact is outside the connector's rollout (the share of contacts it works for)"
                .to_owned()
        }
        (Some(topic), Some(contact), Some(subject)) => {
            let delivery = delivery.trim();
            // The delivery id is not signed: a captured delivery sent again under a new id is
            // the same signed body, which is claimed once. Older Chatwoots send no id at all.
            let body_id = format!("chatwoot:sha256:{}", sha256_hex(body));
            let event_id = if delivery.is_empty() || delivery.chars().count() > MAX_DELIVERY_CHARS {
                body_id.clone()
            } else {
                format!("chatwoot:{delivery}")
            };
            let tenant = &connector.tenant;
            let record = async {
                let input: Value =
                    serde_json::from_slice(body).map_err(|error| ApiError::malformed(error.to_string()))?;
                let work = Delivered {
                    connector_id: &connector.id,
                    contact: &ContactKey::Chatwoot(contact.id),
                    operation: Operation::Chatwoot(topic),
                    subject_id: &subject,
                    event_id: &event_id,
                    input: &input,
                };
                let job = SyncJobId::generate(runtime::random()?);
                crm_sync_jobs::insert_delivered(db, tenant, &job, &work, runtime::now().micros()).await
            };
            let Some(recorded) =
                crm_inbound_events::once(db, tenant, &connector.id, &body_id, record).await?
            else {
                return Ok("duplicate: this body was delivered before".to_owned());
            };
            match recorded {
                Some(contact) => {
                    sync::hand_over(env, std::slice::from_ref(&contact), 0).await;
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
    })
}
