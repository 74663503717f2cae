//! Handing a conversation to a person, without waiting for any CRM: the escalation is recorded
//! (analytics count it), the customer is told at once on the conversation's channel, and each
//! connector's part (Kustomer's ticket, Krayin's note) is sync work done when its CRM answers, so
//! a CRM that is down delays the ticket, never the hand-off (the guide's "Fallback Mode").
//!
//! An escalation is asked for through the API, or by the customer in one of a Kustomer
//! connector's escalation phrases; the phrases are checked when the message's events are planned
//! into CRM work, whatever the connector's Conversation Sync says.

use crate::Env;
use crate::console_error;
use crate::db::Db;
use crate::db::crm_connectors::Enabled;
use crate::db::crm_sync_jobs::{self, Job, Requested};
use crate::db::escalations::{self, NewEscalation, Trigger};
use crate::{db, http, runtime, send_queue};
use domain::crm::kustomer::escalation::asks_for_human;
use domain::crm::kustomer::settings::{DEFAULT_HANDOFF_MESSAGE, KustomerSettings};
use domain::crm::work::{ConnectorKind, Operation};
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId, CustomerId, EscalationId, MessageId, SyncJobId};
use domain::lookup::CustomerKey;
use domain::message::{Conversation, Message};
use domain::outgoing::OutgoingMessage;
use domain::tenant::Tenant;
use serde_json::json;

/// An escalation asked for: of which conversation (and its customer), why, and how.
pub struct Escalation<'a> {
    pub conversation_id: &'a ConversationId,
    pub customer_id: &'a CustomerId,
    pub reason: &'a str,
    pub trigger: Trigger,
    /// The customer's message that asked for a person, when one did.
    pub message_id: Option<&'a MessageId>,
}

/// What was recorded of an escalation.
pub struct Recorded {
    pub id: EscalationId,
    /// The connectors' work, one piece each.
    pub work: Vec<Job>,
}

/// Records the escalation and its work for each of `connectors`, and tells the customer that a
/// person will take over in `handoff`; None when its message escalated already.
pub async fn request(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    connectors: &[ConnectorId],
    asked: &Escalation<'_>,
    handoff: &str,
) -> Result<Option<Recorded>, ApiError> {
    let id = EscalationId::generate(runtime::random()?);
    let now = runtime::now().micros();
    let recorded = escalations::insert(
        db,
        tenant,
        &NewEscalation {
            id: &id,
            conversation_id: asked.conversation_id,
            customer_id: asked.customer_id,
            reason: asked.reason,
            trigger: asked.trigger,
            message_id: asked.message_id,
        },
        now,
    )
    .await?;
    if !recorded {
        return Ok(None);
    }
    let input = json!({ "escalation_id": id, "reason": asked.reason });
    let mut work = Vec::new();
    for connector_id in connectors {
        let requested = Requested {
            connector_id,
            customer_id: asked.customer_id,
            operation: Operation::Escalate,
            subject_id: asked.conversation_id.as_str(),
            input: &input,
        };
        work.push(
            crm_sync_jobs::insert_requested(
                db,
                tenant,
                &SyncJobId::generate(runtime::random()?),
                &requested,
                now,
            )
            .await?,
        );
    }
    hand_off(env, db, tenant, &id, asked.conversation_id, handoff).await?;
    Ok(Some(Recorded { id, work }))
}

/// What the customer is told when the API escalates: the hand-off message of the business's
/// first Kustomer connector that makes tickets, else the default one.
pub fn handoff_message(env: &Env, connectors: &[Enabled]) -> String {
    connectors
        .iter()
        .filter_map(|connector| kustomer_settings(env, connector))
        .find(|settings| settings.ticket_creation)
        .map_or_else(
            || DEFAULT_HANDOFF_MESSAGE.to_owned(),
            |settings| settings.handoff_message,
        )
}

fn kustomer_settings(env: &Env, connector: &Enabled) -> Option<KustomerSettings> {
    (connector.kind == ConnectorKind::Kustomer)
        .then(|| KustomerSettings::parse(&connector.settings, http::allows_loopback(env)).ok())
        .flatten()
}

/// Escalates the conversation of the customer's `message` when it says one of the escalation
/// phrases of a Kustomer connector that makes tickets: the first connector whose phrase it says
/// tells the customer, and every such connector makes its ticket.
pub async fn escalate_if_asked(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    connectors: &[Enabled],
    message: &Message,
) -> Result<(), ApiError> {
    let mut asking = Vec::new();
    let mut first: Option<(String, String)> = None;
    for connector in connectors {
        let Some(settings) = kustomer_settings(env, connector).filter(|settings| settings.ticket_creation)
        else {
            continue;
        };
        let Some(phrase) = asks_for_human(&message.content, &settings.escalation_phrases) else {
            continue;
        };
        asking.push(connector.id.clone());
        if first.is_none() {
            first = Some((phrase.to_owned(), settings.handoff_message));
        }
    }
    let Some((phrase, handoff)) = first else {
        return Ok(());
    };
    let reason = format!("the customer asked for a person (\"{phrase}\")");
    let asked = Escalation {
        conversation_id: &message.conversation_id,
        customer_id: &message.customer_id,
        reason: &reason,
        trigger: Trigger::Phrase,
        message_id: Some(&message.id),
    };
    request(env, db, tenant, &asking, &asked, &handoff).await?;
    Ok(())
}

/// Tells the customer, once per escalation, that a person will take over: on the conversation's
/// channel, through the normal send path. A customer who cannot be reached there (no account on
/// the channel) leaves the escalation standing; that is logged.
async fn hand_off(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    escalation_id: &EscalationId,
    conversation_id: &ConversationId,
    text: &str,
) -> Result<(), ApiError> {
    if !escalations::take_handoff(db, tenant, escalation_id, runtime::now().micros()).await? {
        return Ok(());
    }
    let Some(conversation): Option<Conversation> = db::conversations::by_ids(db, tenant, &[conversation_id])
        .await?
        .pop()
    else {
        return Ok(());
    };
    let Some(customer) =
        db::customers::find_one(db, tenant, &CustomerKey::Id(conversation.customer_id.clone())).await?
    else {
        return Ok(());
    };
    let outgoing = OutgoingMessage {
        channel: conversation.channel,
        content: text.to_owned(),
        subject: None,
        attachments: Vec::new(),
    };
    let origin = http::configured_origin(env)?.unwrap_or_default();
    if let Err(error) = send_queue::accept_on_channel(env, db, tenant, &customer, &outgoing, &origin).await {
        console_error!(
            "escalation {escalation_id}: the hand-off message was not sent: {}",
            error.body.message
        );
    }
    Ok(())
}
