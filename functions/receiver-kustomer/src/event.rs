//! What one Kustomer event does here. Each is acknowledged with what came of it; one already
//! claimed (the same event id, delivered again or at the same time) does nothing, and one about a
//! conversation we never synced is acknowledged and left alone.

use domain::crm::kustomer::api;
use domain::crm::kustomer::webhook::{InboundEvent, KustomerEvent, our_status, reply_message_id};
use domain::crm::work::LinkKind;
use domain::error::ApiError;
use domain::ids::MessageId;
use domain::lookup::CustomerKey;
use domain::outgoing::{OutgoingMessage, max_content_chars};
use edge::Env;
use edge::crm::followed;
use edge::db::Db;
use edge::db::crm_connectors::Connector;
use edge::db::crm_satisfaction::{self, Rating};
use edge::db::{self, crm_inbound_events, crm_links};
use edge::messaging::conversation_change::{self, Change, Source};
use edge::{messaging::send_queue, platform::http, runtime};

pub async fn handle(
    env: &Env,
    db: &Db,
    connector: &Connector,
    inbound: &InboundEvent,
) -> Result<&'static str, ApiError> {
    let tenant = &connector.tenant;
    if !connector.enabled {
        return Ok("ignored: the connector is disabled");
    }
    // Claimed before anything is done: two deliveries of it at once (a retry of a slow answer)
    // act once, and a failure on our side lets the claim go, so the CRM's next delivery acts.
    let acted = crm_inbound_events::once(
        db,
        tenant,
        &connector.id,
        &inbound.id,
        act(env, db, connector, inbound),
    );
    Ok(acted.await?.unwrap_or("duplicate: already handled"))
}

async fn act(
    env: &Env,
    db: &Db,
    connector: &Connector,
    inbound: &InboundEvent,
) -> Result<&'static str, ApiError> {
    let tenant = &connector.tenant;
    Ok(match &inbound.event {
        KustomerEvent::Message {
            conversation_id,
            message_id,
            direction,
            text,
            external_id,
            channel,
            ..
        } => {
            if direction != "out" {
                "ignored: not an agent's reply"
            } else if external_id.as_deref().and_then(MessageId::parse).is_some()
                || crm_links::local_id(db, tenant, &connector.id, LinkKind::Message, message_id)
                    .await?
                    .is_some()
            {
                "ignored: a message crm-edge put on the timeline"
            } else {
                reply(
                    env,
                    db,
                    connector,
                    conversation_id,
                    message_id,
                    text,
                    channel.as_deref(),
                )
                .await?
            }
        }
        KustomerEvent::Conversation {
            conversation_id,
            status,
            assigned_users,
            satisfaction,
            ..
        } => {
            let Some(ours) = followed::conversation_of(db, connector, conversation_id).await? else {
                return Ok("ignored: not a conversation crm-edge synced");
            };
            let change = Change {
                status: status.as_deref().and_then(our_status),
                assignee: assigned_users.as_ref().map(|users| users.first().cloned()),
            };
            if change.status.is_some() || change.assignee.is_some() {
                let source = Source {
                    origin: None,
                    connector: Some(&connector.id),
                };
                conversation_change::apply(env, db, tenant, &ours, &change, &source).await?;
            }
            if let Some(rating) = satisfaction {
                crm_satisfaction::record(
                    db,
                    tenant,
                    &connector.id,
                    &ours,
                    &Rating {
                        score: rating.score,
                        level: rating.level.as_deref(),
                        comment: rating.comment.as_deref(),
                    },
                    runtime::now().micros(),
                )
                .await?;
            }
            "applied"
        }
        KustomerEvent::Other => "ignored: not an event crm-edge follows",
    })
}

/// Sends an agent's reply in Kustomer to the customer on the conversation's channel, through the
/// normal send path, and links it to the Kustomer message so it is not put on the timeline again.
/// A reply on another channel than the conversation's (Kustomer's own email, say) is Kustomer's
/// to deliver, not ours.
async fn reply(
    env: &Env,
    db: &Db,
    connector: &Connector,
    kustomer_conversation: &str,
    kustomer_message: &str,
    text: &str,
    channel: Option<&str>,
) -> Result<&'static str, ApiError> {
    let tenant = &connector.tenant;
    let Some(conversation_id) = followed::conversation_of(db, connector, kustomer_conversation).await? else {
        return Ok("ignored: not a conversation crm-edge synced");
    };
    let Some(conversation) = db::conversations::by_ids(db, tenant, &[&conversation_id])
        .await?
        .pop()
    else {
        return Ok("ignored: the conversation is gone");
    };
    if channel.is_some_and(|channel| channel != api::channel_of(conversation.channel)) {
        return Ok("ignored: a reply on another channel, which Kustomer delivers");
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok("ignored: an empty reply");
    }
    let Some(customer) =
        db::customers::find_one(db, tenant, &CustomerKey::Id(conversation.customer_id.clone())).await?
    else {
        return Ok("ignored: the customer is gone");
    };
    let content: String = text
        .chars()
        .take(max_content_chars(conversation.channel))
        .collect();
    let outgoing = OutgoingMessage {
        channel: conversation.channel,
        content,
        subject: None,
        attachments: Vec::new(),
        reply: None,
    };
    let origin = http::configured_origin(env)?.unwrap_or_default();
    // The message's id is derived from the Kustomer message: a delivery handled again after it
    // was accepted (the link below failed, and the claim was let go) does not send it again.
    let id = reply_message_id(&connector.id, kustomer_message);
    let accepted =
        send_queue::accept_once_on_channel(env, db, tenant, &customer, &outgoing, &origin, id.clone())
            .await?;
    crm_links::link(
        db,
        tenant,
        &connector.id,
        LinkKind::Message,
        id.as_str(),
        kustomer_message,
        runtime::now().micros(),
    )
    .await?;
    Ok(match accepted {
        Some(_) => "sent to the customer",
        None => "sent to the customer before",
    })
}
