//! What a change a CRM made to one of its records does here, whichever CRM said so (a webhook, an
//! Outbound Message): a ticket an escalation made, closed, resolves its conversation and, reopened,
//! reopens it; a contact deleted is forgotten (the customer's next work makes it again); contacts
//! merged keep our customers on the one they went into. Each answers what came of it, for the
//! CRM's log of its delivery.

use crate::Env;
use crate::db::crm_connectors::Connector;
use crate::db::{self, Db, crm_links};
use crate::messaging::conversation_change::{self, Change, Source};
use domain::crm::work::LinkKind;
use domain::error::ApiError;
use domain::ids::ConversationId;
use domain::message::ConversationStatus;

/// The conversation the CRM's record `crm_id` (a ticket, a Case, a conversation) was made for;
/// None when crm-edge made no such record.
pub async fn conversation_of(
    db: &Db,
    connector: &Connector,
    crm_id: &str,
) -> Result<Option<ConversationId>, ApiError> {
    Ok(crm_links::local_id(
        db,
        &connector.tenant,
        &connector.id,
        LinkKind::Conversation,
        crm_id,
    )
    .await?
    .and_then(|id| ConversationId::parse(&id)))
}

/// The conversation's ticket is `closed` in the CRM now (or open again): the conversation is
/// resolved (or reopened) to match, as a change the connector made, so it is not sent back.
pub async fn ticket_state(
    env: &Env,
    db: &Db,
    connector: &Connector,
    conversation: &ConversationId,
    closed: bool,
) -> Result<&'static str, ApiError> {
    let tenant = &connector.tenant;
    let Some(current) = db::conversations::by_ids(db, tenant, &[conversation])
        .await?
        .pop()
    else {
        return Ok("ignored: the conversation is gone");
    };
    let finished = matches!(
        current.status,
        ConversationStatus::Resolved | ConversationStatus::Closed
    );
    let status = match (closed, finished) {
        (true, false) => ConversationStatus::Resolved,
        (false, true) => ConversationStatus::Open,
        (true, true) => return Ok("ignored: the conversation is resolved already"),
        (false, false) => return Ok("ignored: the conversation is open already"),
    };
    let change = Change {
        status: Some(status),
        assignee: None,
    };
    let source = Source {
        origin: None,
        connector: Some(&connector.id),
    };
    conversation_change::apply(env, db, tenant, conversation, &change, &source).await?;
    Ok(if closed {
        "resolved the conversation"
    } else {
        "reopened the conversation"
    })
}

/// The CRM deleted the contact `crm_id`: a customer kept on it is forgotten there.
pub async fn contact_deleted(db: &Db, connector: &Connector, crm_id: &str) -> Result<&'static str, ApiError> {
    let forgotten =
        crm_links::forget_crm_id(db, &connector.tenant, &connector.id, LinkKind::Customer, crm_id).await?;
    Ok(if forgotten > 0 {
        "forgot the contact: the customer's next change or message makes it again"
    } else {
        "ignored: not a contact crm-edge keeps a customer on"
    })
}

/// The CRM merged the contacts `from` into `into`: customers kept on them are kept on `into`.
pub async fn contacts_merged(
    db: &Db,
    connector: &Connector,
    from: &[String],
    into: &str,
) -> Result<&'static str, ApiError> {
    let moved = crm_links::relink(
        db,
        &connector.tenant,
        &connector.id,
        LinkKind::Customer,
        from,
        into,
    )
    .await?;
    Ok(if moved > 0 {
        "followed the merge: the customer is kept on the merged contact"
    } else {
        "ignored: no contact merged was one crm-edge keeps a customer on"
    })
}
