//! Accepting a message for sending: find the customer's address on the channel, the business's
//! account on it, and the attachments; store the message `queued`; hand it to the dispatcher.
//!
//! `/api-send-message` and the embedded inbox's reply box both send through [`accept`], so a
//! reply typed in a CRM's iframe is checked, stored and delivered exactly like one sent by API.


use domain::customer::Customer;
use crate::auth::Tenant;
use crate::outbound::{self, NewOutbound, OUTBOUND, QueuedSend};
use crate::{attachments, channel_accounts, events};
use domain::error::ApiError;
use domain::message::Message;
use domain::outgoing::OutgoingMessage;
use worker::{D1Database, Env, console_error};

/// Stores `outgoing` as a `queued` message to `customer` and puts it on the outbound queue.
/// `origin` is the deployment as the client reached it: providers fetch attachments from there.
pub async fn accept(
    env: &Env,
    db: &D1Database,
    tenant: &Tenant,
    customer: &Customer,
    outgoing: &OutgoingMessage,
    origin: &str,
) -> Result<Message, ApiError> {
    let channel = outgoing.channel;
    let account = channel_accounts::find_for_sending(db, tenant, channel)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "channel",
                format!(
                    "this business has no {channel} account to send from; an administrator adds one first"
                ),
            )
        })?;
    if outbound::recipient(db, tenant, customer, channel)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid(
            "channel",
            outbound::no_address_message(channel),
        ));
    }
    check_attachments(db, tenant, &outgoing.attachments).await?;

    let attachment_ids: Vec<&str> = outgoing.attachments.iter().map(String::as_str).collect();
    let (mut message, event_ids) = outbound::store_queued(
        db,
        tenant,
        &NewOutbound {
            customer_id: customer.id.as_str(),
            channel,
            channel_account_id: &account.id,
            content: &outgoing.content,
            attachment_ids: &attachment_ids,
        },
        origin,
    )
    .await?;
    events::publish(env, tenant, event_ids).await;
    if !attachment_ids.is_empty() {
        message.attachments = Some(attachments::of_messages(db, tenant, &[message.id.as_str()]).await?);
    }

    let job = QueuedSend {
        business_id: tenant.business_id.to_string(),
        message_id: message.id.clone(),
        subject: outgoing.subject.clone(),
        media_base_url: Some(origin.to_owned()),
    };
    if let Err(error) = enqueue(env, job).await {
        // A queued message that no dispatcher will ever see would wait forever: it fails now.
        console_error!("message {} could not be queued for sending: {error}", message.id);
        let reason = "the message could not be queued for sending; nothing was sent";
        outbound::mark_failed(db, tenant, &message.id, reason).await?;
        return Err(ApiError::unavailable(
            "the message could not be queued for sending and was not sent; try again shortly",
            5,
        ));
    }
    Ok(message)
}

async fn enqueue(env: &Env, job: QueuedSend) -> worker::Result<()> {
    env.queue(OUTBOUND)?.send(job).await
}

/// Every named attachment must be one of the tenant's uploads, not yet sent with a message.
async fn check_attachments(db: &D1Database, tenant: &Tenant, named: &[String]) -> Result<(), ApiError> {
    let ids: Vec<&str> = named.iter().map(String::as_str).collect();
    let stored = outbound::find_attachments(db, tenant, &ids).await?;
    for (at, id) in named.iter().enumerate() {
        let field = format!("attachments[{at}]");
        match stored.iter().find(|row| &row.id == id) {
            None => {
                return Err(ApiError::invalid(
                    field,
                    format!(
                        "no attachment {id} was uploaded by this business; upload it with /api-upload-attachment first"
                    ),
                ));
            }
            Some(row) if row.message_id.is_some() => {
                return Err(ApiError::invalid(
                    field,
                    format!("attachment {id} was already sent with another message"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
