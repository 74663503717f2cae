//! `POST /api/webhooks/salesforce/{connector_id}/{token}`: the Outbound Messages of one
//! connector's org. Salesforce signs nothing, so the URL's last segment is the secret (the
//! connector's `outbound_token`), and a message from any org but the connector's is refused.
//!
//! Each notification acts once by its id, however often Salesforce sends the message (it does
//! until it gets an `Ack`, for 24 hours, and may send it twice or out of order). A Case's status is
//! read from Salesforce as it is now rather than taken from the notification, so one that comes
//! late cannot undo a newer one: a Case an escalation made, closed, resolves its conversation, and
//! reopened reopens it. A Contact deleted is forgotten (the customer's next work makes it again);
//! a Contact merged keeps our customer on the one it went into. Any failure on our side answers
//! 503 without an `Ack` and lets the notifications' claims go, so Salesforce's next try applies
//! them.

use domain::api::receivers::{RECEIVER_SALESFORCE, ReceiverSalesforce};
use domain::crm::salesforce::SalesforceId;
use domain::crm::salesforce::outbound::{self, Change, Notification, OutboundMessage};
use domain::error::ApiError;
use edge::Env;
use edge::crm::followed;
use edge::db::crm_connectors::Connector;
use edge::db::{Db, crm_inbound_events};
use edge::platform::call;
use edge::platform::signed::{SalesforceOutbound, Signed};
use edge::runtime::Internal;
use edge::runtime::{Bindings, Headers, Request, Response};
use std::collections::HashMap;

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &RECEIVER_SALESFORCE,
        req,
        bindings,
        async |operation, call| match operation {
            ReceiverSalesforce::ReceiveSalesforceOutboundMessage => call.run(receive).await,
        },
    )
    .await
}

async fn receive(signed: Signed<SalesforceOutbound>, env: Env) -> Result<Response, ApiError> {
    let Signed {
        owner: connector,
        verified: body,
    } = signed;
    let db = env.db()?;
    if !connector.enabled {
        // Acknowledged, so that the org stops sending it; nothing is applied.
        return soap(200, outbound::ACK);
    }
    let organization = edge::crm::salesforce::organization_id(&env, &db, &connector).await?;
    let message = match OutboundMessage::parse(&body, &organization) {
        Ok(message) => message,
        Err(refusal) => return soap(refusal.status(), &outbound::fault(&refusal)),
    };
    let mut cases = Cases::default();
    for notification in &message.notifications {
        let key = format!("salesforce:{}", notification.id);
        let outcome = crm_inbound_events::once(
            &db,
            &connector.tenant,
            &connector.id,
            &key,
            apply(&env, &db, &connector, notification, &mut cases),
        )
        .await?;
        edge::console_log!(
            "salesforce {}: notification {} {}",
            connector.id,
            notification.id,
            outcome.unwrap_or("duplicate: already applied")
        );
    }
    soap(200, outbound::ACK)
}

/// A SOAP answer.
fn soap(status: u16, xml: &str) -> Result<Response, ApiError> {
    let headers = Headers::new();
    headers
        .set("content-type", outbound::CONTENT_TYPE)
        .internal("setting a header")?;
    headers
        .set("cache-control", "no-store")
        .internal("setting a header")?;
    Ok(Response::ok(xml)
        .internal("making an answer")?
        .with_status(status)
        .with_headers(headers))
}

/// The Cases read from Salesforce for one message: each once, however many notifications it has.
#[derive(Default)]
struct Cases(HashMap<SalesforceId, Option<bool>>);

impl Cases {
    /// Whether the Case is closed now, as Salesforce says; None when it is gone.
    async fn closed(
        &mut self,
        env: &Env,
        db: &Db,
        connector: &Connector,
        case: &SalesforceId,
    ) -> Result<Option<bool>, ApiError> {
        if let Some(known) = self.0.get(case) {
            return Ok(*known);
        }
        let state = edge::crm::salesforce::case_state(env, db, connector, case).await?;
        let closed = state.map(|state| state.closed);
        self.0.insert(case.clone(), closed);
        Ok(closed)
    }
}

async fn apply(
    env: &Env,
    db: &Db,
    connector: &Connector,
    notification: &Notification,
    cases: &mut Cases,
) -> Result<&'static str, ApiError> {
    let case = match notification.change() {
        Change::CaseChanged { case, .. } => case,
        Change::ContactDeleted { contact } => {
            return followed::contact_deleted(db, connector, contact.as_str()).await;
        }
        Change::ContactMerged { contact, into } => {
            let from = [contact.as_str().to_owned()];
            return followed::contacts_merged(db, connector, &from, into.as_str()).await;
        }
        Change::ContactChanged { .. } => {
            return Ok(
                "ignored: crm-edge keeps its own customer's details; it follows a contact's deletion and merge",
            );
        }
        Change::Emptied => return Ok("ignored: the record was deleted before the message was sent"),
    };
    let Some(ours) = followed::conversation_of(db, connector, case.as_str()).await? else {
        return Ok("ignored: not a Case crm-edge made");
    };
    let Some(closed) = cases.closed(env, db, connector, &case).await? else {
        return Ok("ignored: the Case is no longer in Salesforce");
    };
    followed::ticket_state(env, db, connector, &ours, closed).await
}
