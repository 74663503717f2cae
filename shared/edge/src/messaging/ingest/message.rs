//! One inbound message stored, in one D1 batch whose statements resolve the customer and the
//! conversation themselves: the sender's customer (found by the address the channel knows them
//! by, else created with an id derived from it, so that racing first messages agree), their
//! identity linked, their conversation touched (a new one after a quiet resolved one, a closed one
//! reopened), the message once, its events, and the bot's turn when the page's bot is enabled.

use crate::db::bot_turns::{self, Commented, Turn};
use crate::db::channel_accounts::ChannelAccount;
use crate::db::customers::NewSender;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{self, Batch, Db, Read};
use crate::runtime;
use domain::bot::target::BotChannel;
use domain::channel::{AddressKind, Channel};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, EventId, MessageId};
use domain::inbound::InboundMessage;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
pub(super) struct StoredMessage {
    pub(super) id: MessageId,
    /// The events recorded with the message.
    #[serde(skip)]
    pub(super) event_ids: Vec<EventId>,
    /// Its `message.received`, held back while files are fetched.
    #[serde(skip)]
    pub(super) received_event: Option<EventId>,
    /// The bot's turn recorded with it, when the page's bot on its channel is enabled.
    #[serde(skip)]
    pub(super) turn: Option<Turn>,
}

/// A page's customer message or comment, for the page's bot on its channel.
pub(super) struct ForBot {
    pub(super) channel: BotChannel,
    pub(super) comment: Option<Commented>,
}

/// A customer created from a channel address gets an id derived from it, so that concurrent
/// first messages from one sender agree on who they are.
fn customer_id_for(account: &ChannelAccount, address: &str) -> CustomerId {
    let digest = Sha256::digest(format!(
        "customer|{}|{}|{address}",
        account.tenant.business_id, account.channel
    ));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    CustomerId::generate(bytes)
}

fn default_name(channel: Channel, message: &InboundMessage) -> String {
    message
        .sender_name
        .clone()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| match channel.address_kind() {
            AddressKind::Phone | AddressKind::Email => message.from.clone(),
            AddressKind::PageScopedId => format!("{} user {}", channel, message.from),
        })
}

pub(super) async fn store_message(
    db: &Db,
    account: &ChannelAccount,
    message: &InboundMessage,
    thread: &str,
    for_bot: Option<ForBot>,
    now: Timestamp,
    base_url: &str,
) -> Result<Option<StoredMessage>, ApiError> {
    let tenant = &account.tenant;
    let channel = account.channel;
    let address = message.from.as_str();
    let (email, phone, whatsapp) = match channel.address_kind() {
        AddressKind::Email => (Some(address), None, None),
        AddressKind::Phone if channel == Channel::Whatsapp => (None, Some(address), Some(address)),
        AddressKind::Phone => (None, Some(address), None),
        AddressKind::PageScopedId => (None, None, None),
    };
    let new_customer = customer_id_for(account, address);
    let now_text = now.to_rfc3339();
    let conversation_id = ConversationId::generate(runtime::random()?);
    let message_id = MessageId::generate(runtime::random()?);

    let name = default_name(channel, message);
    let sender = NewSender {
        id: &new_customer,
        name: &name,
        email,
        phone,
        whatsapp_number: whatsapp,
    };
    let create_customer =
        db::customers::create_sender(db, tenant, &sender, channel.as_str(), address, &now_text)?;
    // A sender's customer is new exactly when it exists now but their address is not linked
    // yet: both happen in this batch, together.
    let customer_created = webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &[NewEvent::new(
            EventId::generate(runtime::random()?),
            EventType::CustomerCreated,
            &new_customer,
        )],
        Guard::When(
            db::customer_identities::not_linked(channel.as_str(), address)
                .and(db::customers::exists(&new_customer)),
        ),
    )?;
    let link_identity =
        db::customer_identities::link(db, tenant, channel.as_str(), address, email, phone, &new_customer)?;
    // A resolved conversation that has been quiet long enough is followed by a new one.
    let supersede_quiet = db::conversations::supersede_if_quiet(
        db,
        tenant,
        channel,
        thread,
        address,
        &conversation_id,
        &now_text,
        &message.provider_message_id,
    )?;
    let touch_conversation = db::conversations::touch_for_inbound(
        db,
        tenant,
        channel,
        thread,
        address,
        &conversation_id,
        &account.id,
        &now_text,
        &message.provider_message_id,
        &message_id,
    )?;
    let insert_message = db::messages::insert_inbound(
        db,
        tenant,
        channel,
        thread,
        address,
        &message_id,
        &message.content,
        &message.provider_message_id,
        now,
    )?;
    // Both are about records given fresh ids above, which exist only if created here.
    let received_event = EventId::generate(runtime::random()?);
    let message_events = webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &[
            NewEvent::new(
                EventId::generate(runtime::random()?),
                EventType::ConversationCreated,
                &conversation_id,
            ),
            NewEvent::new(received_event.clone(), EventType::MessageReceived, &message_id),
        ],
        Guard::SubjectStored,
    )?;
    // A resolved or closed conversation the message reopened says so.
    let reopened_event = webhook_events::record_found(
        db,
        tenant,
        Some(base_url),
        now,
        &EventId::generate(runtime::random()?),
        EventType::ConversationStatusChanged,
        db::conversations::reopened_by(channel, address, &message_id),
    )?;
    let mut batch = Batch::default();
    batch.push([create_customer]);
    let customer_created = batch.read(customer_created);
    batch.push([link_identity, supersede_quiet, touch_conversation]);
    let stored = batch.read(Read::<Option<StoredMessage>>::first(insert_message));
    let message_events = batch.read(message_events);
    let reopened_event = batch.read(reopened_event);
    // The bot's turn, when the page's bot on the channel is enabled (the statement reads it).
    let turn = for_bot
        .map(|for_bot| {
            let turn = Turn {
                business_id: tenant.business_id.clone(),
                page_id: account.address.clone(),
                channel: for_bot.channel.as_str().to_owned(),
                message_id: message_id.clone(),
                comment: for_bot.comment,
            };
            bot_turns::pending(
                db,
                tenant,
                &turn.page_id,
                for_bot.channel,
                &message_id,
                turn.comment.as_ref(),
                now.millis(),
            )
            .map(|statement| (turn, batch.write(statement)))
        })
        .transpose()?;
    let answers = batch.run(db).await?;
    let Some(stored) = answers.take(stored)? else {
        return Ok(None);
    };
    let mut event_ids = answers.take(customer_created)?;
    event_ids.extend(answers.take(message_events)?);
    event_ids.extend(answers.take(reopened_event)?);
    let received_event = event_ids.contains(&received_event).then_some(received_event);
    Ok(Some(StoredMessage {
        event_ids,
        received_event,
        turn: turn.and_then(|(turn, pending)| (answers.changes(pending) == 1).then_some(turn)),
        ..stored
    }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{events, of, text};
    use super::*;
    use crate::testing::{ADA_PHONE, Fixture};
    use domain::providers::Provider;
    use serde_json::{Value, json};

    #[test]
    fn a_message_is_stored_once_however_often_the_provider_delivers_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, account) = fixture.whatsapp_business().await;
            let first = fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Where is my order?"))
                .await;
            assert_eq!((first.stored, first.duplicates), (1, 0));
            for _ in 0..2 {
                let again = fixture
                    .ingest_one(&account, text("wamid.1", ADA_PHONE, "Where is my order?"))
                    .await;
                assert_eq!((again.stored, again.duplicates), (0, 1));
            }
            let messages = fixture.rows("messages", "created_us");
            assert_eq!(messages.len(), 1);
            assert_eq!(
                (
                    messages[0]["direction"].as_str(),
                    messages[0]["status"].as_str(),
                    messages[0]["content"].as_str(),
                    messages[0]["provider_message_id"].as_str()
                ),
                (
                    Some("inbound"),
                    Some("received"),
                    Some("Where is my order?"),
                    Some("wamid.1")
                )
            );
            assert_eq!(
                events(&fixture),
                vec!["conversation.created", "customer.created", "message.received"],
                "nothing recorded twice (one delivery's events share its time, in order of type)"
            );
            assert_eq!(fixture.dispatched().len(), 3);
        });
    }

    #[test]
    fn a_new_sender_becomes_one_customer_with_one_conversation_on_the_channel() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let report = fixture
                .ingest(
                    &account,
                    of(vec![
                        text("wamid.1", ADA_PHONE, "Hello"),
                        text("wamid.2", ADA_PHONE, "Anyone there?"),
                    ]),
                )
                .await;
            assert_eq!(report.stored, 2);
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers.len(), 1, "{customers:?}");
            assert_eq!(
                (
                    customers[0]["name"].as_str(),
                    customers[0]["phone"].as_str(),
                    customers[0]["whatsapp_number"].as_str()
                ),
                (Some("Ada Lovelace"), Some(ADA_PHONE), Some(ADA_PHONE))
            );
            let identities = fixture.rows("customer_identities", "address");
            assert_eq!(identities.len(), 1);
            assert_eq!(
                (
                    identities[0]["channel"].as_str(),
                    identities[0]["address"].as_str()
                ),
                (Some("whatsapp"), Some(ADA_PHONE))
            );
            assert_eq!(identities[0]["customer_id"], customers[0]["id"]);
            let conversations = fixture.rows("conversations", "id");
            assert_eq!(conversations.len(), 1);
            assert_eq!(conversations[0]["channel_account_id"], account.id.as_str());
            let messages = fixture.rows("messages", "created_us");
            assert!(
                messages
                    .iter()
                    .all(|row| row["conversation_id"] == conversations[0]["id"]),
                "{messages:?}"
            );
            assert!(
                messages[0]["created_us"].as_i64() < messages[1]["created_us"].as_i64(),
                "the delivery's messages keep their order"
            );
            let created = events(&fixture)
                .iter()
                .filter(|kind| *kind == "customer.created")
                .count();
            assert_eq!(created, 1);
            let _ = tenant;
        });
    }

    #[test]
    fn a_sender_the_business_already_knows_by_phone_is_that_customer() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let known = fixture
                .customers(&tenant, json!([{ "name": "Ada (CRM)", "phone": ADA_PHONE }]))
                .await;
            fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Hi"))
                .await;
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers.len(), 1, "{customers:?}");
            assert_eq!(customers[0]["name"], "Ada (CRM)");
            assert_eq!(
                fixture.rows("messages", "id")[0]["customer_id"],
                known[0].id.as_str()
            );
            assert_eq!(
                events(&fixture)
                    .iter()
                    .filter(|kind| *kind == "customer.created")
                    .count(),
                1,
                "the sync's, not the message's"
            );
        });
    }

    #[test]
    fn the_customer_of_a_page_scoped_sender_is_named_after_the_channel() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let page = fixture
                .channel_account(
                    &tenant,
                    Channel::Facebook,
                    Provider::Meta,
                    "1029384756",
                    json!({ "app_secret": "s", "verify_token": "v", "access_token": "t" }),
                )
                .await;
            let mut message = text("m_1", "6655443322", "hi");
            message.sender_name = None;
            fixture.ingest_one(&page, message).await;
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers[0]["name"], "facebook user 6655443322");
            assert!(customers[0]["phone"].is_null() && customers[0]["email"].is_null());
        });
    }

    #[test]
    fn a_message_to_a_resolved_conversation_reopens_it_and_says_so() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, account) = fixture.whatsapp_business().await;
            fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Hi"))
                .await;
            fixture.execute("UPDATE conversations SET status = 'resolved'", &[]);
            fixture
                .ingest_one(&account, text("wamid.2", ADA_PHONE, "Me again"))
                .await;
            let conversations = fixture.rows("conversations", "id");
            assert_eq!(conversations[0]["status"], "open");
            let changed: Vec<_> = fixture
                .rows("webhook_events", "created_us")
                .into_iter()
                .filter(|row| row["type"] == "conversation.status_changed")
                .collect();
            assert_eq!(changed.len(), 1);
        });
    }

    /// Ada writes, her conversation is resolved, `quiet` passes, and she writes again (the
    /// business's window set to `window` hours unless None); the conversations and the
    /// `conversation.*` events that follow, in order.
    fn after_a_resolved_conversation(
        status: &str,
        window: Option<&str>,
        quiet: std::time::Duration,
    ) -> (Vec<serde_json::Map<String, Value>>, Vec<String>, Vec<Value>) {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, account) = fixture.whatsapp_business().await;
            if let Some(hours) = window {
                fixture.execute(
                    "UPDATE businesses SET new_conversation_after_hours = ?1",
                    &[hours],
                );
            }
            fixture
                .ingest_one(&account, text("wamid.1", ADA_PHONE, "Hi"))
                .await;
            fixture.execute(
                "UPDATE conversations SET status = ?1, resolved_at = last_message_at",
                &[status],
            );
            fixture.stack.advance(quiet);
            fixture
                .ingest_one(&account, text("wamid.2", ADA_PHONE, "Me again"))
                .await;
            // A redelivery of the same message changes nothing.
            fixture
                .ingest_one(&account, text("wamid.2", ADA_PHONE, "Me again"))
                .await;
            let events = fixture
                .rows("webhook_events", "created_us")
                .into_iter()
                .filter_map(|row| row["type"].as_str().map(str::to_owned))
                .filter(|kind| kind.starts_with("conversation."))
                .collect();
            let messages = fixture
                .rows("messages", "created_us")
                .into_iter()
                .map(|row| row["conversation_id"].clone())
                .collect();
            (fixture.rows("conversations", "created_at, id"), events, messages)
        })
    }

    #[test]
    fn a_customer_writing_after_the_quiet_window_gets_a_new_conversation_and_within_it_the_old_one_reopened()
    {
        #[derive(Debug, PartialEq)]
        enum Then {
            Reopened,
            Followed,
            Untouched,
        }
        let hour = std::time::Duration::from_secs(3600);
        for (status, window, quiet, then, why) in [
            (
                "resolved",
                None,
                hour * 95,
                Then::Reopened,
                "95 hours is within the default four days",
            ),
            (
                "resolved",
                None,
                hour * 97,
                Then::Followed,
                "97 hours is past the default four days",
            ),
            (
                "closed",
                None,
                hour * 97,
                Then::Followed,
                "a closed conversation is followed too",
            ),
            (
                "resolved",
                Some("0"),
                hour / 60,
                Then::Followed,
                "a window of 0: never reopened",
            ),
            (
                "resolved",
                Some("24"),
                hour * 23,
                Then::Reopened,
                "within the business's own day",
            ),
            (
                "resolved",
                Some("24"),
                hour * 25,
                Then::Followed,
                "past the business's own day",
            ),
            (
                "pending",
                Some("0"),
                hour * 500,
                Then::Untouched,
                "only an ended conversation is followed",
            ),
        ] {
            let (conversations, events, messages) = after_a_resolved_conversation(status, window, quiet);
            let first = &conversations[0];
            match then {
                Then::Reopened => {
                    assert_eq!(conversations.len(), 1, "{why}");
                    assert_eq!(
                        (first["status"].as_str(), first["reopen_count"].as_i64()),
                        (Some("open"), Some(1)),
                        "{why}"
                    );
                    assert_eq!(
                        events,
                        ["conversation.created", "conversation.status_changed"],
                        "{why}"
                    );
                }
                Then::Followed => {
                    assert_eq!(conversations.len(), 2, "{why}");
                    let next = &conversations[1];
                    assert_eq!(first["status"], status, "{why}: the old one keeps its status");
                    assert_eq!(
                        first["superseded_by"], next["id"],
                        "{why}: the old one points at the new"
                    );
                    assert_eq!(
                        (next["status"].as_str(), next["superseded_by"].is_null()),
                        (Some("open"), true),
                        "{why}"
                    );
                    assert_eq!(events, ["conversation.created", "conversation.created"], "{why}");
                    assert_eq!(
                        messages,
                        [first["id"].clone(), next["id"].clone()],
                        "{why}: the return is in the new one"
                    );
                }
                Then::Untouched => {
                    assert_eq!(conversations.len(), 1, "{why}");
                    assert_eq!(first["status"], status, "{why}");
                    assert_eq!(events, ["conversation.created"], "{why}");
                }
            }
        }
    }
}
