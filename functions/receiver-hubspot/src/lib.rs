//! `POST /api/webhooks/hubspot/{connector_id}`: HubSpot's webhooks for one connector, signed with
//! the app's client secret (the connector's `client_secret`, `X-HubSpot-Signature-v3`, the
//! timestamp within five minutes). A ticket an escalation made, moved in HubSpot to a closed stage
//! of its pipeline, resolves the conversation it was made for; moved back to an open stage, it
//! reopens it (with our events, which are not sent back to HubSpot). A contact deleted in
//! HubSpot is forgotten (the customer's next work makes it again), and contacts merged keep our
//! customers on the merged one. Each event acts once, however often HubSpot delivers it, and only
//! an event of the account (`portalId`) the connector's credentials reach acts at all.

use domain::api::receivers::{HubSpotEventOut, HubSpotReceivedOut, RECEIVER_HUBSPOT, ReceiverHubSpot};
use domain::crm::hubspot::api::Pipeline;
use domain::crm::hubspot::webhook::{self, Event, Followed};
use domain::error::ApiError;
use edge::Env;
use edge::crm::followed;
use edge::db::Db;
use edge::db::crm_connectors::Connector;
use edge::db::crm_inbound_events;
use edge::platform::call;
use edge::platform::call::Json;
use edge::platform::signed::{HubSpot, Signed};
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_HUBSPOT,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverHubSpot::ReceiveHubSpotWebhook => call.run(receive).await,
        },
    )
    .await
}

async fn receive(signed: Signed<HubSpot>, env: Env) -> Result<Json<HubSpotReceivedOut>, ApiError> {
    let Signed {
        owner: connector,
        verified: body,
    } = signed;
    let db = env.db()?;
    let events = webhook::parse(&body).map_err(ApiError::malformed)?;
    // One app's secret signs the events of every account that installed it: only those of the
    // account the connector's credentials reach are this connector's.
    let portal = match connector.enabled && !events.is_empty() {
        true => Some(edge::crm::hubspot::portal_id(&env, &db, &connector).await?),
        false => None,
    };
    let mut stages = Stages::default();
    let mut out = Vec::with_capacity(events.len());
    for event in &events {
        let outcome = if !connector.enabled {
            "ignored: the connector is disabled"
        } else if event.portal_id != portal {
            "ignored: an event of another HubSpot account than the one this connector's credentials reach"
        } else {
            // Claimed before anything is done: a delivery made twice (or at once) acts once, and a
            // failure on our side lets the claim go, so HubSpot's retry acts.
            crm_inbound_events::once(
                &db,
                &connector.tenant,
                &connector.id,
                &format!("hubspot:{}", event.event_id),
                act(&env, &db, &connector, event, &mut stages),
            )
            .await?
            .unwrap_or("duplicate: already handled")
        };
        out.push(HubSpotEventOut {
            event_id: event.event_id,
            outcome: outcome.to_owned(),
        });
    }
    Ok(Json(HubSpotReceivedOut { events: out }))
}

/// The account's ticket pipelines, read from HubSpot once per delivery, when an event needs them.
#[derive(Default)]
struct Stages(Option<Vec<Pipeline>>);

impl Stages {
    /// Whether `stage` is a closed stage; None when no pipeline has it.
    async fn closed(
        &mut self,
        env: &Env,
        db: &Db,
        connector: &Connector,
        stage: &str,
    ) -> Result<Option<bool>, ApiError> {
        if self.0.is_none() {
            self.0 = Some(edge::crm::hubspot::ticket_pipelines(env, db, connector).await?);
        }
        Ok(self
            .0
            .iter()
            .flatten()
            .flat_map(|pipeline| &pipeline.stages)
            .find(|known| known.id == stage)
            .map(|known| known.closed))
    }
}

async fn act(
    env: &Env,
    db: &Db,
    connector: &Connector,
    event: &Event,
    stages: &mut Stages,
) -> Result<&'static str, ApiError> {
    let (ticket, stage) = match event.followed() {
        Followed::TicketStage { ticket, stage } => (ticket, stage),
        Followed::ContactDeleted { contact } => {
            return followed::contact_deleted(db, connector, &contact).await;
        }
        Followed::ContactsMerged { into, from } => {
            return followed::contacts_merged(db, connector, &from, &into).await;
        }
        Followed::Other => return Ok("ignored: not an event crm-edge follows"),
    };
    let Some(ours) = followed::conversation_of(db, connector, &ticket).await? else {
        return Ok("ignored: not a ticket crm-edge made");
    };
    let Some(closed) = stages.closed(env, db, connector, &stage).await? else {
        return Ok("ignored: a stage none of HubSpot's ticket pipelines lists");
    };
    followed::ticket_state(env, db, connector, &ours, closed).await
}
