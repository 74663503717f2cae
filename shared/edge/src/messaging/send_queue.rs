//! Accepting a message for sending: find the customer's address on the channel, the business's
//! account on it, and the attachments; store the message `queued`; hand it to the dispatcher
//! over the outbound queue.
//!
//! `/api-send-message` and the embedded inbox's reply box both send through [`accept`], so a
//! reply typed in a CRM's iframe is checked, stored and delivered exactly like one sent by API.
//! The endpoint and the dispatcher talk through a queue whose messages name only the business
//! and the message ([`QueuedSend`]); everything else is read back from D1, scoped by the business.

use crate::Env;
use crate::console_error;
use crate::db::channel_accounts::ChannelAccount;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{self, Violation};
use crate::db::{Batch, Db};
use crate::{events::outbox, messaging::message_status, runtime};
use domain::channel::{AddressKind, Channel, Direction, MessageStatus};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::{AttachmentId, BusinessId, ChannelAccountId, ConversationId, EventId, MessageId};
use domain::lookup::CustomerKey;
use domain::message::Message;
use domain::outgoing::{OutgoingMessage, address_on_record, no_address_message};
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::{Deserialize, Serialize};

/// The queue binding (producer in send-message and embed-inbox, consumer in message-dispatcher).
pub const OUTBOUND: &str = "OUTBOUND";

/// What the endpoint hands the dispatcher. Only what D1 does not hold travels here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedSend {
    pub business_id: BusinessId,
    pub message_id: MessageId,
    /// The email subject the client gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// This deployment's public origin (`https://crm.example.com`): providers fetch attachments
    /// from its `/api/download-media` with a signed link, and so do webhook receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_base_url: Option<String>,
    /// The provider accepted the message already, in an attempt that could not record it (its
    /// business was being moved): this delivery records it, and sends nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
}

/// What the provider answered a send that its attempt could not record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
}

impl crate::platform::queue::Work for QueuedSend {
    const QUEUE: &'static str = OUTBOUND;

    fn business(&self) -> Option<BusinessId> {
        Some(self.business_id.clone())
    }
}

/// The account a message on `channel` goes from, or the 422 that says the business has none. A
/// caller that still has the customer to read reads both at once.
pub async fn sending_account(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
) -> Result<ChannelAccountId, ApiError> {
    let found = db::channel_accounts::sending_account_id_of(db, tenant, channel)?
        .run()
        .await?;
    account_or_refusal(found, channel)
}

/// The customer the request names and the account a message on `channel` goes from, read in one
/// round trip; when both are missing, the customer's 404 is the answer.
pub async fn customer_and_account(
    db: &Db,
    tenant: &Tenant,
    keys: &[CustomerKey],
    named_by: &str,
    channel: Channel,
) -> Result<(Customer, ChannelAccountId), ApiError> {
    let mut batch = Batch::default();
    let customer: Vec<_> = db::customers::named_by(db, tenant, keys)?
        .into_iter()
        .map(|read| batch.read(read))
        .collect();
    let account = batch.read(db::channel_accounts::sending_account_id_of(db, tenant, channel)?);
    let answers = batch.run(db).await?;
    let customer = db::customers::first_of(answers.take_each(customer)?, named_by)?;
    Ok((customer, account_or_refusal(answers.take(account)?, channel)?))
}

/// The account found, or the 422 that says the business has none on `channel`.
fn account_or_refusal(
    found: Option<ChannelAccountId>,
    channel: Channel,
) -> Result<ChannelAccountId, ApiError> {
    found.ok_or_else(|| {
        ApiError::invalid(
            "channel",
            format!("this business has no {channel} account to send from; an administrator adds one first"),
        )
    })
}

/// Stores `outgoing` as a `queued` message to `customer` from `account_id` (see
/// [`sending_account`]) and puts it on the outbound queue. `origin` is the deployment as the
/// client reached it: providers fetch attachments from there.
pub async fn accept(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    account_id: &ChannelAccountId,
    outgoing: &OutgoingMessage,
    origin: &str,
) -> Result<Message, ApiError> {
    let accepting = Accepting {
        account_id,
        message_id: MessageId::generate(runtime::random()?),
    };
    accept_as(env, db, tenant, customer, accepting, outgoing, origin).await
}

/// Where a message is accepted from, and its id.
struct Accepting<'a> {
    account_id: &'a ChannelAccountId,
    message_id: MessageId,
}

async fn accept_as(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    accepting: Accepting<'_>,
    outgoing: &OutgoingMessage,
    origin: &str,
) -> Result<Message, ApiError> {
    let Accepting {
        account_id,
        message_id,
    } = accepting;
    let channel = outgoing.channel;
    if recipient(db, tenant, customer, channel).await?.is_none() {
        return Err(ApiError::invalid("channel", no_address_message(channel)));
    }
    check_attachments(db, tenant, &outgoing.attachments).await?;

    let (mut message, event_ids) =
        store_queued(db, tenant, customer, outgoing, account_id, origin, message_id).await?;
    outbox::publish(env, tenant, event_ids).await;
    if !outgoing.attachments.is_empty() {
        message.attachments = Some(db::attachments::of_messages(db, tenant, &[&message.id]).await?);
    }

    let job = QueuedSend {
        business_id: tenant.business_id.clone(),
        message_id: message.id.clone(),
        subject: outgoing.subject.clone(),
        media_base_url: Some(origin.to_owned()),
        accepted: None,
    };
    let queued = match env.queue(OUTBOUND, 1) {
        Ok(queue) => queue.send(job).await,
        Err(error) => Err(error),
    };
    if let Err(error) = queued {
        // A queued message that no dispatcher will ever see would wait forever: it fails now.
        console_error!("message {} could not be queued for sending: {error}", message.id);
        let reason = "the message could not be queued for sending; nothing was sent";
        message_status::mark_failed(db, tenant, &message.id, reason).await?;
        return Err(ApiError::unavailable(
            "the message could not be queued for sending and was not sent; try again shortly",
            5,
        ));
    }
    Ok(message)
}

/// [`accept`] from the business's account on the message's channel, read first: for callers that
/// already hold the customer.
pub async fn accept_on_channel(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    outgoing: &OutgoingMessage,
    origin: &str,
) -> Result<Message, ApiError> {
    let account = sending_account(db, tenant, outgoing.channel).await?;
    accept(env, db, tenant, customer, &account, outgoing, origin).await
}

/// [`accept_on_channel`] as the message `id`, once: None when a message `id` was accepted before
/// (a repeated request that must not send again; its id derived from what it answers).
pub async fn accept_once_on_channel(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    outgoing: &OutgoingMessage,
    origin: &str,
    id: MessageId,
) -> Result<Option<Message>, ApiError> {
    let account = sending_account(db, tenant, outgoing.channel).await?;
    accept_once(env, db, tenant, customer, &account, outgoing, origin, id).await
}

/// [`accept`] as the message `id`, once: None when a message `id` was accepted before.
#[allow(clippy::too_many_arguments, reason = "accept's, and the id")]
pub async fn accept_once(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    account_id: &ChannelAccountId,
    outgoing: &OutgoingMessage,
    origin: &str,
    id: MessageId,
) -> Result<Option<Message>, ApiError> {
    if !db::messages::by_ids(db, tenant, &[&id]).await?.is_empty() {
        return Ok(None);
    }
    let accepting = Accepting {
        account_id,
        message_id: id,
    };
    Ok(Some(
        accept_as(env, db, tenant, customer, accepting, outgoing, origin).await?,
    ))
}

/// Where a message to `customer` on `channel` goes, or None when they cannot be reached there.
pub async fn recipient(
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    channel: Channel,
) -> Result<Option<String>, ApiError> {
    if channel.address_kind() != AddressKind::PageScopedId {
        return Ok(address_on_record(channel, customer).map(str::to_owned));
    }
    db::customer_identities::latest_address(db, tenant, &customer.id, channel).await
}

/// The channels a message to `customer` can go on, in [`Channel::ALL`]'s order: the business has
/// an account there and the customer an address (as [`recipient`] finds it), read in one round trip.
pub async fn sendable_channels(
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
) -> Result<Vec<Channel>, ApiError> {
    let mut batch = Batch::default();
    let accounts = batch.read(db::channel_accounts::channels(db, tenant)?);
    let identities = batch.read(db::customer_identities::channels_of(db, tenant, &customer.id)?);
    let answers = batch.run(db).await?;
    let (accounts, identities) = (answers.take(accounts)?, answers.take(identities)?);
    Ok(Channel::ALL
        .into_iter()
        .filter(|channel| accounts.contains(channel))
        .filter(|&channel| match channel.address_kind() {
            AddressKind::PageScopedId => identities.contains(&channel),
            _ => address_on_record(channel, customer).is_some(),
        })
        .collect())
}

/// What one delivery of a queued message needs, read in one round trip: the message with its
/// attachments, its customer, the business's account on its channel (secrets opened) and the
/// customer's latest page-scoped address there.
pub struct ToDeliver {
    pub message: Message,
    pub customer: Option<Customer>,
    pub account: Option<ChannelAccount>,
    /// The Facebook comment it answers (its id, and whether privately), when it answers one.
    pub reply: Option<(String, bool)>,
    latest_address: Option<String>,
}

impl ToDeliver {
    /// Where the message goes, as [`recipient`] decides, or None when the customer cannot be
    /// reached there (or no longer exists).
    pub fn recipient(&self) -> Option<String> {
        let customer = self.customer.as_ref()?;
        let channel = self.message.channel;
        if channel.address_kind() == AddressKind::PageScopedId {
            return self.latest_address.clone();
        }
        address_on_record(channel, customer).map(str::to_owned)
    }
}

/// The tenant's outbound message `id` and what delivering it needs ([`ToDeliver`]), or None.
pub async fn to_deliver(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &MessageId,
) -> Result<Option<ToDeliver>, ApiError> {
    let of_message = |column| db::messages::outbound_column(id, column);
    let mut batch = Batch::default();
    let message = batch.read(db::messages::outbound(db, tenant, id)?);
    let attachments = batch.read(db::attachments::of_messages_read(db, tenant, &[id])?);
    let customer = batch.read(db::customers::with_id_read(
        db,
        tenant,
        of_message("customer_id"),
    )?);
    let account = batch.read(db::channel_accounts::sending_on_read(
        db,
        tenant,
        of_message("channel"),
    )?);
    let latest_address = batch.read(db::customer_identities::latest_address_read(
        db,
        tenant,
        of_message("customer_id"),
        of_message("channel"),
    )?);
    let reply = batch.read(db::messages::reply(db, tenant, id)?);
    let answers = batch.run(db).await?;
    let Some(mut message) = answers.take(message)? else {
        return Ok(None);
    };
    message.attachments = Some(answers.take(attachments)?);
    Ok(Some(ToDeliver {
        message,
        customer: answers.take(customer)?,
        account: db::channel_accounts::opened(db, keys, answers.take(account)?).await?,
        latest_address: answers.take(latest_address)?,
        reply: answers.take(reply)?,
    }))
}

/// Every named attachment must be one of the tenant's uploads, not yet sent with a message.
async fn check_attachments(db: &Db, tenant: &Tenant, named: &[AttachmentId]) -> Result<(), ApiError> {
    let ids: Vec<&AttachmentId> = named.iter().collect();
    let stored = db::attachments::find(db, tenant, &ids).await?;
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

/// Stores the message as `queued` in one D1 batch (one transaction): the conversation of the
/// customer on the channel (created, or touched), the message, and its attachments linked to it.
/// An attachment that another send claimed between our check and this batch rolls the whole
/// batch back: 409, nothing stored. A conversation created here records `conversation.created`
/// in the same batch; the ids of recorded events come back with the message, for publishing.
async fn store_queued(
    db: &Db,
    tenant: &Tenant,
    customer: &Customer,
    outgoing: &OutgoingMessage,
    account: &ChannelAccountId,
    base_url: &str,
    message_id: MessageId,
) -> Result<(Message, Vec<EventId>), ApiError> {
    let now = runtime::now();
    let now_text = now.to_rfc3339();
    let conversation_id = ConversationId::generate(runtime::random()?);
    let channel = outgoing.channel;
    let mut batch = Batch::default();
    batch.push([db::conversations::touch_for_outbound(
        db,
        tenant,
        &customer.id,
        channel,
        outgoing.reply.as_ref().map_or("", |reply| reply.post_id.as_str()),
        &conversation_id,
        account,
        &now_text,
    )?]);
    let inserted = batch.read(db::messages::insert_outbound(
        db,
        tenant,
        &customer.id,
        channel,
        &message_id,
        &outgoing.content,
        &db::messages::SendOptions {
            subject: outgoing.subject.as_deref(),
            media_base_url: Some(base_url),
            reply: outgoing.reply.as_ref(),
        },
        now,
    )?);
    // The fresh id exists only if the conversation was created by this batch.
    let recorded = batch.read(webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &[NewEvent::new(
            EventId::generate(runtime::random()?),
            EventType::ConversationCreated,
            &conversation_id,
        )],
        Guard::SubjectStored,
    )?);
    if !outgoing.attachments.is_empty() {
        let ids: Vec<&AttachmentId> = outgoing.attachments.iter().collect();
        // Another send may have claimed one of the uploads between our check and this batch.
        batch.push([
            db::attachments::link(db, tenant, &message_id, &ids)?,
            db::abort_unless(db::attachments::all_linked(&message_id, ids.len())).scoped(db, tenant)?,
        ]);
    }
    let answers = match batch.run(db).await {
        Ok(answers) => answers,
        Err(error) if error.violation() == Some(&Violation::Aborted) => {
            return Err(ApiError::conflict(
                "an attachment was sent with another message at the same moment; upload it again to send it here",
            ));
        }
        Err(error) => return Err(ApiError::from(error).doing("storing outbound message")),
    };
    let inserted = answers
        .take(inserted)?
        .ok_or_else(|| ApiError::internal("storing outbound message", "the insert returned no row"))?;
    let event_ids = answers.take(recorded)?;
    let message = Message {
        id: inserted.id,
        conversation_id: inserted.conversation_id,
        customer_id: customer.id.clone(),
        content: outgoing.content.clone(),
        platform: channel,
        channel,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_send_is_small_on_the_wire_and_reads_back() {
        let plain = QueuedSend {
            business_id: BusinessId::generate([1; 16]),
            message_id: MessageId::generate([2; 16]),
            subject: None,
            media_base_url: None,
            accepted: None,
        };
        let wire = r#"{"business_id":"01010101-0101-4101-8101-010101010101","message_id":"02020202-0202-4202-8202-020202020202"}"#;
        assert_eq!(serde_json::to_string(&plain).unwrap_or_default(), wire);
        let read: Option<QueuedSend> = serde_json::from_str(wire).ok();
        assert_eq!(read, Some(plain));
        let forged: Result<QueuedSend, _> = serde_json::from_str(r#"{"business_id":"b","message_id":"m"}"#);
        assert!(
            forged.is_err(),
            "a body whose ids are not ids is refused when read"
        );
    }

    mod native {
        use super::super::*;
        use crate::messaging::media_store::{self, ATTACHMENTS};
        use crate::testing::{ADA_PHONE, Fixture, ORIGIN};
        use domain::error::ErrorCode;
        use domain::platform::{Resource, SUBREQUESTS};
        use domain::providers::Provider;
        use serde_json::json;

        /// A business that sends WhatsApp, with an endpoint taking every event, and Ada, whom it
        /// knows by phone only.
        async fn business(fixture: &Fixture) -> (Tenant, ChannelAccount, Customer) {
            let (tenant, account) = fixture.whatsapp_business().await;
            let ada = fixture.ada(&tenant).await;
            (tenant, account, ada)
        }

        /// `outgoing` for `customer`, as the send API takes it at [`ORIGIN`].
        async fn accept_for(
            fixture: &Fixture,
            tenant: &Tenant,
            customer: &Customer,
            outgoing: &OutgoingMessage,
        ) -> Result<Message, ApiError> {
            accept_on_channel(&fixture.env, &fixture.db, tenant, customer, outgoing, ORIGIN).await
        }

        fn outgoing(channel: Channel, attachments: Vec<AttachmentId>) -> OutgoingMessage {
            OutgoingMessage {
                channel,
                content: "Your order is on its way".to_owned(),
                subject: Some("Order 42".to_owned()),
                attachments,
                reply: None,
            }
        }

        async fn upload(fixture: &Fixture, tenant: &Tenant) -> AttachmentId {
            let bucket = fixture
                .env
                .bucket_write(ATTACHMENTS)
                .unwrap_or_else(|error| panic!("{error}"));
            media_store::store(
                &bucket,
                &fixture.db,
                tenant,
                None,
                "label.pdf",
                "application/pdf",
                b"%PDF".to_vec(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .id
        }

        #[test]
        fn an_accepted_message_is_stored_queued_in_its_conversation_and_handed_to_the_dispatcher() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, account, ada) = business(&fixture).await;
                let message = accept_for(&fixture, &tenant, &ada, &outgoing(Channel::Whatsapp, Vec::new()))
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(
                    (message.status, message.direction),
                    (MessageStatus::Queued, Direction::Outbound)
                );
                let rows = fixture.rows("messages", "created_us");
                assert_eq!(rows.len(), 1);
                assert_eq!(
                    (
                        rows[0]["id"].as_str(),
                        rows[0]["status"].as_str(),
                        rows[0]["send_subject"].as_str(),
                        rows[0]["send_media_base_url"].as_str()
                    ),
                    (
                        Some(message.id.as_str()),
                        Some("queued"),
                        Some("Order 42"),
                        Some(ORIGIN)
                    )
                );
                let conversations = fixture.rows("conversations", "id");
                assert_eq!(conversations.len(), 1);
                assert_eq!(conversations[0]["channel_account_id"], account.id.as_str());
                assert_eq!(conversations[0]["id"], message.conversation_id.as_str());
                assert_eq!(
                    fixture.queued::<QueuedSend>(OUTBOUND),
                    vec![QueuedSend {
                        business_id: tenant.business_id.clone(),
                        message_id: message.id.clone(),
                        subject: Some("Order 42".to_owned()),
                        media_base_url: Some(ORIGIN.to_owned()),
                        accepted: None,
                    }]
                );
                let second = accept_for(&fixture, &tenant, &ada, &outgoing(Channel::Whatsapp, Vec::new()))
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(
                    second.conversation_id, message.conversation_id,
                    "the same conversation"
                );
                let created = fixture
                    .rows("webhook_events", "created_us")
                    .iter()
                    .filter(|row| row["type"] == "conversation.created")
                    .count();
                assert_eq!(created, 1);
            });
        }

        #[test]
        fn a_message_that_cannot_go_is_refused_before_anything_is_stored() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, _, ada) = business(&fixture).await;
                let elsewhere = fixture
                    .channel_account(
                        &tenant,
                        Channel::Email,
                        Provider::Mailgun,
                        "support@acme.example",
                        json!({ "api_key": "k" }),
                    )
                    .await;
                let never_uploaded = AttachmentId::generate([5; 16]);
                let cases = [
                    (
                        Channel::Sms,
                        Vec::new(),
                        "channel",
                        "this business has no sms account to send from; an administrator adds one first",
                        "no account on the channel",
                    ),
                    (
                        Channel::Email,
                        Vec::new(),
                        "channel",
                        "the customer has no email address",
                        "no address on the channel",
                    ),
                    (
                        Channel::Whatsapp,
                        vec![never_uploaded.clone()],
                        "attachments[0]",
                        "",
                        "an attachment never uploaded",
                    ),
                ];
                for (channel, attachments, field, message, description) in cases {
                    let error = accept_for(&fixture, &tenant, &ada, &outgoing(channel, attachments))
                        .await
                        .err()
                        .unwrap_or_else(|| panic!("{description}: accepted"));
                    assert_eq!(
                        (error.code(), error.body.field.as_deref()),
                        (ErrorCode::ValidationFailed, Some(field)),
                        "{description}"
                    );
                    assert!(
                        error.body.message.contains(message),
                        "{description}: {}",
                        error.body.message
                    );
                }
                let _ = elsewhere;
                assert!(fixture.rows("messages", "id").is_empty());
                assert!(fixture.queued::<QueuedSend>(OUTBOUND).is_empty());
            });
        }

        #[test]
        fn an_upload_goes_with_one_message_only() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, _, ada) = business(&fixture).await;
                let file = upload(&fixture, &tenant).await;
                let message = accept_for(
                    &fixture,
                    &tenant,
                    &ada,
                    &outgoing(Channel::Whatsapp, vec![file.clone()]),
                )
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
                let listed: Vec<AttachmentId> = message
                    .attachments
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
                assert_eq!(listed, vec![file.clone()]);
                assert_eq!(
                    fixture.rows("attachments", "id")[0]["message_id"],
                    message.id.as_str()
                );
                let again = accept_for(&fixture, &tenant, &ada, &outgoing(Channel::Whatsapp, vec![file]))
                    .await
                    .err();
                assert_eq!(
                    again.map(|error| (
                        error.body.field,
                        error.body.message.contains("already sent with another message")
                    )),
                    Some((Some("attachments[0]".to_owned()), true))
                );
            });
        }

        #[test]
        fn another_businesss_upload_is_not_found() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, _, ada) = business(&fixture).await;
                let other = fixture.business("Globex").await;
                let theirs = upload(&fixture, &other).await;
                let error = accept_for(
                    &fixture,
                    &tenant,
                    &ada,
                    &outgoing(Channel::Whatsapp, vec![theirs]),
                )
                .await
                .err();
                assert_eq!(
                    error.and_then(|error| error.body.field),
                    Some("attachments[0]".to_owned())
                );
            });
        }

        #[test]
        fn a_message_the_queue_refuses_fails_at_once_and_the_client_is_told_to_retry() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, _, ada) = business(&fixture).await;
                let env = crate::Env::new(fixture.stack.clone(), "fetch");
                // Room for one more subrequest, which publishing the conversation's event takes:
                // the outbound queue then refuses the send.
                env.charge(Resource::Subrequest, SUBREQUESTS - 1)
                    .unwrap_or_else(|error| panic!("{error}"));
                let error = accept_on_channel(
                    &env,
                    &fixture.db,
                    &tenant,
                    &ada,
                    &outgoing(Channel::Whatsapp, Vec::new()),
                    ORIGIN,
                )
                .await
                .err()
                .unwrap_or_else(|| panic!("accepted"));
                assert_eq!((error.status(), error.retry_after_seconds), (503, Some(5)));
                let rows = fixture.rows("messages", "id");
                assert_eq!(rows[0]["status"], "failed");
                assert_eq!(
                    rows[0]["status_reason"],
                    "the message could not be queued for sending; nothing was sent"
                );
            });
        }

        #[test]
        fn a_customer_can_be_sent_to_where_the_business_has_an_account_and_they_an_address() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, _, ada) = business(&fixture).await;
                fixture
                    .channel_account(
                        &tenant,
                        Channel::Sms,
                        Provider::Twilio,
                        "+15005550006",
                        json!({ "account_sid": "AC1", "auth_token": "t" }),
                    )
                    .await;
                fixture
                    .channel_account(
                        &tenant,
                        Channel::Facebook,
                        Provider::Meta,
                        "1029384756",
                        json!({ "app_secret": "s", "verify_token": "v", "access_token": "t" }),
                    )
                    .await;
                let channels = sendable_channels(&fixture.db, &tenant, &ada)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(
                    channels,
                    vec![Channel::Whatsapp, Channel::Sms],
                    "no page-scoped id, no email"
                );
                let grace = fixture
                    .customers(
                        &tenant,
                        json!([{ "name": "Grace", "email": "grace@example.com" }]),
                    )
                    .await;
                let channels = sendable_channels(&fixture.db, &tenant, &grace[0])
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert!(channels.is_empty(), "no email account, no phone: {channels:?}");
            });
        }

        #[test]
        fn what_a_delivery_needs_is_read_back_scoped_to_its_business() {
            let fixture = Fixture::new();
            fixture.run(async {
                let (tenant, account, ada) = business(&fixture).await;
                let message = accept_for(&fixture, &tenant, &ada, &outgoing(Channel::Whatsapp, Vec::new()))
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                let keys = fixture.keys();
                let found = to_deliver(&fixture.db, &keys, &tenant, &message.id)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"))
                    .unwrap_or_else(|| panic!("the message is found"));
                assert_eq!(found.message.content, "Your order is on its way");
                assert_eq!(found.recipient().as_deref(), Some(ADA_PHONE));
                let sending = found.account.unwrap_or_else(|| panic!("an account"));
                assert_eq!(sending.id, account.id);
                assert_eq!(
                    sending.secret("access_token"),
                    Some("meta-token"),
                    "its secrets opened"
                );
                let other = fixture.business("Globex").await;
                let theirs = to_deliver(&fixture.db, &keys, &other, &message.id)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert!(theirs.is_none(), "another business's message is not found");
            });
        }
    }
}
