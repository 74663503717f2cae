//! Accepting a message: find the customer and their address on the channel, the business's
//! account on it, and the attachments; store the message `queued`; hand it to the dispatcher.

use crate::request::{SendIn, SendRequest};
use serde::Serialize;
use shared::customer::Customer;
use shared::edge::auth::{self, Tenant};
use shared::edge::outbound::{self, NewOutbound, OUTBOUND, QueuedSend};
use shared::edge::{DB, attachments, channel_accounts, customers_repo, http};
use shared::error::ApiError;
use shared::message::Message;
use worker::{D1Database, Env, Method, Request, Response, console_error};

#[derive(Serialize)]
struct SentOut {
    success: bool,
    message: Message,
}

pub async fn send_message(mut req: Request, env: Env) -> Result<Response, ApiError> {
    http::require_method(&req, Method::Post, "POST")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let input: SendIn = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let request = SendRequest::parse(input, tenant.default_country)?;
    let db = env.d1(DB)?;

    let customer = find_customer(&db, &tenant, &request).await?;
    let channel = request.channel;
    let account = channel_accounts::find_for_sending(&db, &tenant, channel)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "channel",
                format!(
                    "this business has no {channel} account to send from; an administrator adds one first"
                ),
            )
        })?;
    if outbound::recipient(&db, &tenant, &customer, channel)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid(
            "channel",
            outbound::no_address_message(channel),
        ));
    }
    check_attachments(&db, &tenant, &request.attachments).await?;

    let attachment_ids: Vec<&str> = request.attachments.iter().map(String::as_str).collect();
    let mut message = outbound::store_queued(
        &db,
        &tenant,
        &NewOutbound {
            customer_id: customer.id.as_str(),
            channel,
            channel_account_id: &account.id,
            content: &request.content,
            attachment_ids: &attachment_ids,
        },
    )
    .await?;
    if !attachment_ids.is_empty() {
        message.attachments = Some(attachments::of_messages(&db, &tenant, &[message.id.as_str()]).await?);
    }

    let job = QueuedSend {
        business_id: tenant.business_id.to_string(),
        message_id: message.id.clone(),
        subject: request.subject.clone(),
        // Providers fetch attachments from this deployment, as the client reached it.
        media_base_url: if attachment_ids.is_empty() {
            None
        } else {
            Some(http::origin(&req)?)
        },
    };
    if let Err(error) = enqueue(&env, job).await {
        // A queued message that no dispatcher will ever see would wait forever: it fails now.
        console_error!("message {} could not be queued for sending: {error}", message.id);
        let reason = "the message could not be queued for sending; nothing was sent";
        outbound::mark_failed(&db, &tenant, &message.id, reason).await?;
        return Err(ApiError::unavailable(
            "the message could not be queued for sending and was not sent; try again shortly",
            5,
        ));
    }
    http::json(
        202,
        &SentOut {
            success: true,
            message,
        },
    )
}

async fn enqueue(env: &Env, job: QueuedSend) -> worker::Result<()> {
    env.queue(OUTBOUND)?.send(job).await
}

/// The first of the request's keys that names a stored customer of the tenant.
async fn find_customer(
    db: &D1Database,
    tenant: &Tenant,
    request: &SendRequest,
) -> Result<Customer, ApiError> {
    for key in &request.customer_keys {
        if let Some(customer) = customers_repo::find_one(db, tenant, key).await? {
            return Ok(customer);
        }
    }
    Err(ApiError::not_found(format!(
        "no customer with {}",
        request.customer_named_by
    )))
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
