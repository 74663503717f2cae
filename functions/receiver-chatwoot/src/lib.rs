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

use domain::api::receivers::{ChatwootReceivedOut, RECEIVER_CHATWOOT, ReceiverChatwoot};
use domain::error::ApiError;
use edge::crm::chatwoot;
use edge::db::crm_connectors::Connector;
use edge::platform::call::{self, Json};
use edge::platform::signed::{Chatwoot, ChatwootDelivery, ChatwootToken, Signed};
use edge::runtime::{Bindings, Request, Response};
use edge::{Env, messaging::held_inbound};

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

async fn receive(signed: Signed<Chatwoot>, env: Env) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    deliver(&env, &signed.owner, &signed.verified).await
}

async fn receive_with_token(
    signed: Signed<ChatwootToken>,
    env: Env,
) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    deliver(&env, &signed.owner, &signed.verified).await
}

/// A delivery whose proof held, recorded as work for its contact.
async fn deliver(
    env: &Env,
    connector: &Connector,
    delivery: &ChatwootDelivery,
) -> Result<Json<ChatwootReceivedOut>, ApiError> {
    let db = env.db()?;
    let (body, delivery) = (&delivery.body, &delivery.delivery);
    let outcome = match chatwoot::record(env, &db, connector, body, delivery).await {
        Ok(outcome) => outcome,
        // The business is being moved: Chatwoot does not deliver an account webhook twice, so
        // the delivery is kept and recorded after the move.
        Err(error) if held_inbound::being_moved(&error) => {
            held_inbound::keep_chatwoot(env, connector, body, delivery).await?;
            "kept: recorded once the business's move is over".to_owned()
        }
        Err(error) => return Err(error),
    };
    Ok(Json(ChatwootReceivedOut { outcome }))
}
