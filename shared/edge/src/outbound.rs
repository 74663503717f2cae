//! Outbound messages in D1: stored `queued` by `/api-send-message` together with their
//! conversation and attachments, loaded again by the dispatcher, and settled `sent` or `failed`.
//!
//! The endpoint and the dispatcher talk through a queue whose messages name only the business
//! and the message ([`QueuedSend`]); everything else is read back from D1, scoped by the business.
//! Status changes follow the rank of [`MessageStatus`]: a message never moves backwards, so a
//! late or repeated delivery of the queue message cannot undo what a status webhook recorded.

use domain::channel::{AddressKind, Channel, Direction, MessageStatus};
use domain::customer::Customer;
use crate::auth::Tenant;
use crate::events::{self, Guard, NewEvent};
use crate::{attachments, d1, messages_repo, runtime};
use domain::error::ApiError;
use domain::message::{Attachment, Message};
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// The queue binding (producer in send-message, consumer in message-dispatcher).
pub const OUTBOUND: &str = "OUTBOUND";

/// What the endpoint hands the dispatcher. Only what D1 does not hold travels here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedSend {
    pub business_id: String,
    pub message_id: String,
    /// The email subject the client gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// This deployment's public origin (`https://crm.example.com`): providers fetch attachments
    /// from its `/api/download-media` with a signed link, and so do webhook receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_base_url: Option<String>,
}

/// The customer's address on `channel` held on the customer record itself: WhatsApp number
/// (else phone) for WhatsApp, phone for SMS, email for email. Page-scoped ids live in
/// `customer_identities` instead (see [`recipient`]).
pub fn address_on_record(channel: Channel, customer: &Customer) -> Option<&str> {
    let value = match channel {
        Channel::Whatsapp => customer.whatsapp_number.as_deref().or(customer.phone.as_deref()),
        Channel::Sms => customer.phone.as_deref(),
        Channel::Email => customer.email.as_deref(),
        Channel::Facebook | Channel::Instagram => None,
    };
    value.filter(|value| !value.trim().is_empty())
}

/// Why a customer cannot be reached on `channel`, for the client.
pub fn no_address_message(channel: Channel) -> String {
    match channel {
        Channel::Whatsapp => {
            "the customer has no whatsapp_number or phone to send a WhatsApp message to".to_owned()
        }
        Channel::Sms => "the customer has no phone to send an SMS to".to_owned(),
        Channel::Email => "the customer has no email address".to_owned(),
        Channel::Facebook | Channel::Instagram => format!(
            "the customer has no {channel} id yet: {channel} lets a business message only people who have \
             messaged its page first, and this customer has not"
        ),
    }
}

/// Where a message to `customer` on `channel` goes, or None when they cannot be reached there.
pub async fn recipient(
    db: &D1Database,
    tenant: &Tenant,
    customer: &Customer,
    channel: Channel,
) -> Result<Option<String>, ApiError> {
    if channel.address_kind() != AddressKind::PageScopedId {
        return Ok(address_on_record(channel, customer).map(str::to_owned));
    }
    #[derive(Deserialize)]
    struct Row {
        address: String,
    }
    // A customer who wrote to several pages has an id per page; the latest one is used.
    let row = db
        .prepare(
            "SELECT address FROM customer_identities WHERE business_id = ?1 AND customer_id = ?2 AND channel = ?3 \
             ORDER BY rowid DESC LIMIT 1",
        )
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::text(customer.id.as_str()),
            d1::text(channel.as_str()),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.map(|row| row.address))
}

/// An attachment a client named, as stored: its owner message, if it has one already.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredAttachment {
    pub id: String,
    pub message_id: Option<String>,
}

/// The tenant's attachments among `ids` (the others do not exist for this business).
pub async fn find_attachments(
    db: &D1Database,
    tenant: &Tenant,
    ids: &[&str],
) -> Result<Vec<StoredAttachment>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .prepare(
            "SELECT id, message_id FROM attachments WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[d1::text(tenant.business_id.as_str()), d1::json_list(ids.iter().copied())])?
        .all()
        .await?;
    Ok(result.results::<StoredAttachment>()?)
}

/// A message to store as queued.
pub struct NewOutbound<'a> {
    pub customer_id: &'a str,
    pub channel: Channel,
    pub channel_account_id: &'a str,
    pub content: &'a str,
    /// Verified to be the tenant's and not yet sent with another message.
    pub attachment_ids: &'a [&'a str],
}

/// Stores the message as `queued` in one D1 batch (one transaction): the conversation of the
/// customer on the channel (created, or touched), the message, and its attachments linked to it.
///
/// An attachment that another send claimed between our check and this batch fails the whole
/// batch (a guard statement breaks the message's CHECK constraint when fewer attachments than
/// named were linked): 409, nothing stored.
///
/// A conversation created here records `conversation.created` in the same batch; the ids of
/// recorded events come back for [`events::publish`]. `base_url`: the deployment's origin.
pub async fn store_queued(
    db: &D1Database,
    tenant: &Tenant,
    new: &NewOutbound<'_>,
    base_url: &str,
) -> Result<(Message, Vec<String>), ApiError> {
    let now = runtime::now();
    let now_text = now.to_rfc3339();
    let message_id = domain::ids::uuid_v4(runtime::random()?);
    let conversation_id = domain::ids::uuid_v4(runtime::random()?);
    let business = d1::text(tenant.business_id.as_str());
    let customer = d1::text(new.customer_id);
    let channel = d1::text(new.channel.as_str());

    let upsert_conversation = db
        .prepare(
            "INSERT INTO conversations (id, business_id, customer_id, channel, channel_account_id, status, \
             last_message_at, created_at, updated_at) VALUES (?4, ?1, ?2, ?3, ?5, 'open', ?6, ?6, ?6) \
             ON CONFLICT (business_id, customer_id, channel) DO UPDATE SET \
             channel_account_id = COALESCE(conversations.channel_account_id, excluded.channel_account_id), \
             last_message_at = excluded.last_message_at, updated_at = excluded.updated_at",
        )
        .bind(&[
            business.clone(),
            customer.clone(),
            channel.clone(),
            d1::text(&conversation_id),
            d1::text(new.channel_account_id),
            d1::text(&now_text),
        ])?;
    let insert_message = db
        .prepare(format!(
            "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             created_us, updated_at) \
             SELECT ?4, ?1, c.id, c.customer_id, c.channel, 'outbound', ?5, 'queued', {}, ?7 FROM conversations c \
             WHERE c.business_id = ?1 AND c.customer_id = ?2 AND c.channel = ?3 \
             RETURNING id, conversation_id, created_us",
            messages_repo::next_created_us(6, 1)
        ))
        .bind(&[
            business.clone(),
            customer,
            channel,
            d1::text(&message_id),
            d1::text(new.content),
            JsValue::from_f64(now.micros() as f64),
            d1::text(&now_text),
        ])?;
    // The fresh id exists only if the conversation was created by this batch.
    let conversation_created = events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &[NewEvent::new(EventType::ConversationCreated, &conversation_id)?],
        Guard::SubjectStored,
    )?;
    let mut statements = vec![upsert_conversation, insert_message, conversation_created];
    if !new.attachment_ids.is_empty() {
        let ids = d1::json_list(new.attachment_ids.iter().copied());
        statements.push(
            db.prepare(
                "UPDATE attachments SET message_id = ?2 WHERE business_id = ?1 AND message_id IS NULL \
                 AND id IN (SELECT value FROM json_each(?3))",
            )
            .bind(&[business.clone(), d1::text(&message_id), ids])?,
        );
        // The guard: if a concurrent send claimed one of these attachments first, fewer than
        // asked were linked above, and this update breaks the `direction` CHECK constraint on
        // purpose, which rolls back the whole batch (D1 has no RAISE outside triggers).
        statements.push(
            db.prepare(
                "UPDATE messages SET direction = 'attachment taken' WHERE business_id = ?1 AND id = ?2 \
                 AND (SELECT COUNT(*) FROM attachments WHERE business_id = ?1 AND message_id = ?2) <> ?3",
            )
            .bind(&[
                business,
                d1::text(&message_id),
                JsValue::from_f64(new.attachment_ids.len() as f64),
            ])?,
        );
    }
    let results = match db.batch(statements).await {
        Ok(results) => results,
        Err(error) if error.to_string().contains("CHECK constraint failed") => {
            return Err(ApiError::conflict(
                "an attachment was sent with another message at the same moment; upload it again to send it here",
            ));
        }
        Err(error) => return Err(ApiError::internal("storing outbound message", error)),
    };
    #[derive(Deserialize)]
    struct Inserted {
        id: String,
        conversation_id: String,
        created_us: i64,
    }
    let inserted = results
        .get(1)
        .map(|result| result.results::<Inserted>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| ApiError::internal("storing outbound message", "the insert returned no row"))?;
    let event_ids = events::recorded(&results, 2)?;
    let message = Message {
        id: inserted.id,
        conversation_id: inserted.conversation_id,
        customer_id: new.customer_id.to_owned(),
        content: new.content.to_owned(),
        platform: new.channel,
        channel: new.channel,
        direction: Direction::Outbound,
        status: MessageStatus::Queued,
        status_reason: None,
        created_at: Timestamp::from_micros(inserted.created_us).to_rfc3339_micros(),
        updated_at: now_text,
        attachments: None,
        created_us: inserted.created_us,
    };
    Ok((message, event_ids))
}

/// An outbound message as the dispatcher needs it.
#[derive(Debug, Clone)]
pub struct PendingMessage {
    pub id: String,
    pub customer_id: String,
    pub channel: Channel,
    pub status: MessageStatus,
    pub content: String,
    pub attachments: Vec<Attachment>,
}

/// The tenant's outbound message `message_id`, or None.
pub async fn load_pending(
    db: &D1Database,
    tenant: &Tenant,
    message_id: &str,
) -> Result<Option<PendingMessage>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        customer_id: String,
        channel: String,
        status: String,
        content: String,
    }
    let row = db
        .prepare(
            "SELECT id, customer_id, channel, status, content FROM messages \
             WHERE business_id = ?1 AND id = ?2 AND direction = 'outbound'",
        )
        .bind(&[d1::text(tenant.business_id.as_str()), d1::text(message_id)])?
        .first::<Row>(None)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let corrupt = |what: &str| {
        ApiError::internal(
            "reading outbound message",
            format!("stored {what} of {} is not valid", row.id),
        )
    };
    let channel = Channel::parse(&row.channel).ok_or_else(|| corrupt("channel"))?;
    let status: MessageStatus = serde_json::from_value(serde_json::Value::String(row.status.clone()))
        .map_err(|_| corrupt("status"))?;
    let attachments = attachments::of_messages(db, tenant, &[row.id.as_str()]).await?;
    Ok(Some(PendingMessage {
        id: row.id,
        customer_id: row.customer_id,
        channel,
        status,
        content: row.content,
        attachments,
    }))
}

/// Moves the message to `status` unless it is already there or further along; true if it moved.
/// With `event`, the move records that event in the same batch (written only if the move applies).
async fn advance(
    db: &D1Database,
    tenant: &Tenant,
    message_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
    provider_message_id: Option<&str>,
    event: Option<(EventType, Option<&str>)>,
) -> Result<Advanced, ApiError> {
    let now = runtime::now();
    let sql = format!(
        "UPDATE messages SET status = ?3, status_reason = ?4, provider_message_id = COALESCE(?5, provider_message_id), \
         updated_at = ?6 WHERE business_id = ?1 AND id = ?2 AND direction = 'outbound' AND {} < ?7",
        messages_repo::stored_status_rank()
    );
    // The event follows the update, so its snapshot shows the message as moved. It is written
    // only if this update moved it (the message carries this call's time), and only once.
    let guard = "EXISTS (SELECT 1 FROM messages WHERE business_id = ?1 AND id = ?5 AND status = ?6 AND updated_at = ?7) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_events WHERE business_id = ?1 AND subject_id = ?5 AND type = ?8)";
    let statements = |provider_message_id: Option<&str>| -> Result<Vec<D1PreparedStatement>, ApiError> {
        let mut statements = vec![db.prepare(&sql).bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::text(message_id),
            d1::text(status.as_str()),
            d1::optional_text(reason),
            d1::optional_text(provider_message_id),
            d1::text(&now.to_rfc3339()),
            JsValue::from_f64(f64::from(status.rank())),
        ])?];
        if let Some((kind, base_url)) = event {
            statements.push(events::record(
                db,
                tenant,
                base_url,
                now,
                &[NewEvent::new(kind, message_id)?],
                Guard::When(
                    guard,
                    vec![
                        d1::text(message_id),
                        d1::text(status.as_str()),
                        d1::text(&now.to_rfc3339()),
                        d1::text(kind.as_str()),
                    ],
                ),
            )?);
        }
        Ok(statements)
    };
    let results = match db.batch(statements(provider_message_id)?).await {
        Ok(results) => results,
        // The provider reused an id we hold for another message: the status still counts.
        Err(error) if d1::is_unique_violation(&error) => db.batch(statements(None)?).await?,
        Err(error) => return Err(ApiError::internal("updating outbound message", error)),
    };
    let changed = results
        .first()
        .and_then(|result| result.meta().ok().flatten())
        .and_then(|meta| meta.changes)
        .unwrap_or(0);
    Ok(Advanced {
        moved: changed > 0,
        event_ids: if event.is_some() {
            events::recorded(&results, 1)?
        } else {
            Vec::new()
        },
    })
}

/// What [`advance`] did.
pub struct Advanced {
    pub moved: bool,
    /// Events recorded with the move, for [`events::publish`].
    pub event_ids: Vec<String>,
}

/// The provider accepted the message: it is `sent`, and `message.sent` is recorded.
/// `base_url`: the deployment's public origin, for the event's download links.
pub async fn mark_sent(
    db: &D1Database,
    tenant: &Tenant,
    message_id: &str,
    provider_message_id: Option<&str>,
    base_url: Option<&str>,
) -> Result<Advanced, ApiError> {
    advance(
        db,
        tenant,
        message_id,
        MessageStatus::Sent,
        None,
        provider_message_id,
        Some((EventType::MessageSent, base_url)),
    )
    .await
}

/// The message will not be sent; `reason` says why, for the client.
pub async fn mark_failed(
    db: &D1Database,
    tenant: &Tenant,
    message_id: &str,
    reason: &str,
) -> Result<bool, ApiError> {
    advance(
        db,
        tenant,
        message_id,
        MessageStatus::Failed,
        Some(reason),
        None,
        None,
    )
    .await
    .map(|advanced| advanced.moved)
}

/// Records why a still-queued message is waiting for another attempt.
pub async fn note_retry(
    db: &D1Database,
    tenant: &Tenant,
    message_id: &str,
    reason: &str,
) -> Result<(), ApiError> {
    db.prepare(
        "UPDATE messages SET status_reason = ?3, updated_at = ?4 \
         WHERE business_id = ?1 AND id = ?2 AND direction = 'outbound' AND status = 'queued'",
    )
    .bind(&[
        d1::text(tenant.business_id.as_str()),
        d1::text(message_id),
        d1::text(reason),
        d1::text(&runtime::now().to_rfc3339()),
    ])?
    .run()
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::CustomerId;

    fn customer(phone: Option<&str>, whatsapp: Option<&str>, email: Option<&str>) -> Customer {
        Customer {
            id: CustomerId::generate([7; 16]),
            name: "John Doe".into(),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            whatsapp_number: whatsapp.map(str::to_owned),
            first_name: None,
            last_name: None,
            address: None,
            notes: None,
            tags: Vec::new(),
            external_id: None,
            external_system: None,
            custom_fields: serde_json::Map::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn each_channel_reaches_the_customer_at_its_own_address() {
        let full = customer(
            Some("+353871234567"),
            Some("+353861111111"),
            Some("john@example.com"),
        );
        let phone_only = customer(Some("+353871234567"), None, None);
        let email_only = customer(None, None, Some("john@example.com"));
        let cases = [
            (
                Channel::Whatsapp,
                &full,
                Some("+353861111111"),
                "WhatsApp prefers the WhatsApp number",
            ),
            (
                Channel::Whatsapp,
                &phone_only,
                Some("+353871234567"),
                "else the phone",
            ),
            (Channel::Whatsapp, &email_only, None, "no number at all"),
            (
                Channel::Sms,
                &full,
                Some("+353871234567"),
                "SMS goes to the phone",
            ),
            (Channel::Sms, &email_only, None, "no phone"),
            (Channel::Email, &full, Some("john@example.com"), "email"),
            (Channel::Email, &phone_only, None, "no email"),
            (
                Channel::Facebook,
                &full,
                None,
                "page-scoped ids are not on the record",
            ),
            (Channel::Instagram, &full, None, "nor Instagram's"),
        ];
        for (channel, customer, expected, description) in cases {
            assert_eq!(address_on_record(channel, customer), expected, "{description}");
        }
    }

    #[test]
    fn a_missing_page_scoped_id_is_explained() {
        let message = no_address_message(Channel::Facebook);
        assert!(message.contains("messaged its page first"), "{message}");
    }

    #[test]
    fn the_stored_rank_agrees_with_the_status_ranks() {
        let sql = messages_repo::stored_status_rank();
        for (status, rank) in [
            ("queued", 0),
            ("sent", 1),
            ("delivered", 2),
            ("failed", 3),
            ("read", 4),
        ] {
            assert!(sql.contains(&format!("WHEN '{status}' THEN {rank}")), "{sql}");
        }
    }

    #[test]
    fn a_queued_send_is_small_on_the_wire_and_reads_back() {
        let plain = QueuedSend {
            business_id: "b".into(),
            message_id: "m".into(),
            subject: None,
            media_base_url: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap_or_default(),
            r#"{"business_id":"b","message_id":"m"}"#
        );
        let read: Option<QueuedSend> = serde_json::from_str(r#"{"business_id":"b","message_id":"m"}"#).ok();
        assert_eq!(read, Some(plain));
    }
}
