//! `messages`: every message in and out, in one order per business (`created_us`). Inbound
//! messages are stored once however often a provider retries them; outbound ones move
//! `queued → sent → delivered → read` (or `failed`) and never back. Every statement is scoped by
//! the tenant, but for the sweep's, which look for lost sends across businesses.
//!
//! This file holds the row, the business's order and the status ranks, and a message's
//! snapshot; `inbound` stores what providers deliver, `sending` is an outbound message's life
//! (queued, claimed, retried, partly sent, moved forward by us or its provider), `reads` reads
//! messages in the business's order, and `upkeep` is the lost-send sweep, a restore's quarantine
//! and an erasure's steps.

mod inbound;
mod reads;
mod sending;
mod upkeep;

pub use inbound::{edit_inbound, insert_inbound};
pub use reads::{by_ids, of_conversations, of_customer, of_customer_by_ids, since};
pub use sending::{
    InsertedOutbound, SendOptions, SendProgress, advance, apply_provider_status, claim_send, insert_outbound,
    moved_to, note_retry, outbound, outbound_column, record_parts_sent, reply, send_progress,
};
pub use upkeep::{RequeuedSend, erase, fail_queued, ids_of_customer, lost_beyond_requeues, take_lost_sends};

use crate::db;
use domain::channel::{Channel, Direction, MessageStatus};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::message::Message;
use domain::time::Timestamp;
use serde::Deserialize;

/// The SQL expression that gives a new message of business `?{business}` its `created_us`:
/// the current time `?{now}` in microseconds, or one more than the business's latest message if
/// that is later. D1 runs one statement at a time, so every message gets a distinct value and
/// values increase in commit order: a poller that has seen one message has seen every earlier one.
pub(super) fn next_created_us(now: u8, business: u8) -> String {
    format!(
        "MAX(?{now}, COALESCE((SELECT MAX(created_us) FROM messages WHERE business_id = ?{business}), 0) + 1)"
    )
}

/// The rank of a message's stored `status`, as [`MessageStatus::rank`] defines it, in SQL: a
/// status update applies only where it ranks higher, so late or repeated updates never move a
/// message back.
pub(super) fn stored_status_rank() -> String {
    status_rank("status")
}

/// The SQL expression for the rank of the status held in `column` (see `MessageStatus::rank`).
pub fn status_rank(column: &str) -> String {
    let arms: Vec<String> = MessageStatus::ALL
        .into_iter()
        .map(|status| format!("WHEN '{}' THEN {}", status.as_str(), status.rank()))
        .collect();
    format!("(CASE {column} {} ELSE 0 END)", arms.join(" "))
}

pub(super) const MESSAGE_COLUMNS: &str = "id, conversation_id, customer_id, content, channel, direction, status, status_reason, \
                               created_us, updated_at";

#[derive(Deserialize)]
pub(super) struct MessageRow {
    id: MessageId,
    conversation_id: ConversationId,
    customer_id: CustomerId,
    content: String,
    channel: String,
    direction: String,
    status: String,
    status_reason: Option<String>,
    created_us: i64,
    updated_at: String,
}

impl MessageRow {
    fn into_message(self) -> Result<Message, ApiError> {
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("message", &id, what);
        let channel = Channel::parse(&self.channel).ok_or_else(|| corrupt("channel"))?;
        let direction = match self.direction.as_str() {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => return Err(corrupt("direction")),
        };
        let status = MessageStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?;
        Ok(Message {
            created_at: Timestamp::from_micros(self.created_us).to_rfc3339_micros(),
            created_us: self.created_us,
            platform: channel,
            channel,
            direction,
            status,
            id: self.id,
            conversation_id: self.conversation_id,
            customer_id: self.customer_id,
            content: self.content,
            status_reason: self.status_reason,
            updated_at: self.updated_at,
            attachments: None,
        })
    }
}

pub(super) fn to_messages(rows: Vec<MessageRow>) -> Result<Vec<Message>, ApiError> {
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// SQL for `{"message", "customer"}` of the tenant's message whose id is `id_expression`, as
/// stored at the moment the statement runs; [`from_snapshot`] reads the message back.
pub fn snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('message', {}, 'customer', json({})) FROM messages m \
         WHERE m.business_id = :business AND m.id = {id_expression})",
        db::customers::json_object_of(MESSAGE_COLUMNS, "m"),
        db::customers::snapshot_sql("m.customer_id")
    )
}

/// A message from the JSON [`snapshot_sql`] made.
pub fn from_snapshot(value: serde_json::Value) -> Result<Message, ApiError> {
    serde_json::from_value::<MessageRow>(value)
        .map_err(|e| ApiError::internal("reading a message snapshot", e))?
        .into_message()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_rank_agrees_with_the_status_ranks() {
        let sql = stored_status_rank();
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
}

#[cfg(test)]
mod on_data {
    use super::*;
    use crate::db::{Sql, text};
    use crate::testing::{Fixture, Must, Sent};
    use domain::ids::ChannelAccountId;
    use domain::message::Cursor;
    use domain::tenant::Tenant;
    use serde_json::json;
    use std::time::Duration;

    /// A business on the first shard with an SMS account and a customer.
    pub(super) async fn shop(
        fixture: &Fixture,
        name: &str,
        shard: u16,
    ) -> (Tenant, ChannelAccountId, CustomerId) {
        let tenant = fixture.business_on(name, shard).await;
        let account = fixture.account(&tenant, Channel::Sms).await;
        let customer = fixture.customer(&tenant, "Ann").await;
        (tenant, account, customer)
    }

    pub(super) async fn status_of(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &MessageId,
    ) -> (MessageStatus, Option<String>) {
        let found = by_ids(&fixture.db, tenant, &[id]).await.must();
        let message = found.into_iter().next().unwrap_or_else(|| panic!("message {id}"));
        (message.status, message.status_reason)
    }

    pub(super) fn ids(messages: &[Message]) -> Vec<MessageId> {
        messages.iter().map(|message| message.id.clone()).collect()
    }

    pub(super) fn sent_ids(sent: &[&Sent]) -> Vec<MessageId> {
        sent.iter().map(|sent| sent.id.clone()).collect()
    }

    #[test]
    fn messages_written_at_the_same_moment_still_follow_one_another() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let (globex, theirs, bob) = shop(&fixture, "Globex", 0).await;
            let now = fixture.now().micros();
            let first = fixture.send(&acme, &ann, Channel::Sms, &account, "one").await;
            let second = fixture.send(&acme, &ann, Channel::Sms, &account, "two").await;
            let other = fixture.send(&globex, &bob, Channel::Sms, &theirs, "theirs").await;
            let third = fixture.send(&acme, &ann, Channel::Sms, &account, "three").await;
            assert_eq!(
                [first.created_us, second.created_us, third.created_us],
                [now, now + 1, now + 2],
                "each after the business's latest"
            );
            assert_eq!(other.created_us, now, "another business's order is its own");
            fixture.stack.advance(Duration::from_secs(1));
            let later = fixture.send(&acme, &ann, Channel::Sms, &account, "four").await;
            assert_eq!(
                later.created_us,
                fixture.now().micros(),
                "the clock again once it is ahead"
            );
            let rows = fixture.rows("messages", "created_us");
            let row = rows
                .iter()
                .find(|row| row["id"] == json!(first.id.as_str()))
                .cloned()
                .unwrap_or_default();
            assert_eq!(row["status"], json!("queued"));
            assert_eq!(row["direction"], json!("outbound"));
            assert_eq!(row["content"], json!("one"));
            assert_eq!(row["send_media_base_url"], json!("https://edge.test"));
            assert_eq!(row["send_requeues"], json!(0));
        });
    }

    #[test]
    fn another_business_cannot_read_or_move_a_message() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let now = fixture.now().to_rfc3339();
            fixture
                .changes(
                    advance(
                        &fixture.db,
                        &acme,
                        &sent.id,
                        MessageStatus::Sent,
                        None,
                        Some("SM1"),
                        &now,
                    )
                    .must(),
                )
                .await;
            assert!(by_ids(&fixture.db, &globex, &[&sent.id]).await.must().is_empty());
            assert!(
                since(&fixture.db, &globex, Cursor { after_us: 0 }, 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_customer(&fixture.db, &globex, &ann, None, 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_conversations(&fixture.db, &globex, &[&sent.conversation_id], 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_customer_by_ids(&fixture.db, &globex, &ann, &[&sent.id])
                    .await
                    .must()
                    .is_empty()
            );
            let found = outbound(&fixture.db, &globex, &sent.id).must().run().await.must();
            assert!(found.is_none());
            for statement in [
                advance(
                    &fixture.db,
                    &globex,
                    &sent.id,
                    MessageStatus::Read,
                    None,
                    None,
                    &now,
                )
                .must(),
                apply_provider_status(
                    &fixture.db,
                    &globex,
                    Channel::Sms,
                    "SM1",
                    MessageStatus::Read,
                    None,
                    &now,
                )
                .must(),
            ] {
                assert_eq!(fixture.changes(statement).await, 0);
            }
            note_retry(&fixture.db, &globex, &sent.id, "theirs", &now)
                .await
                .must();
            record_parts_sent(&fixture.db, &globex, &sent.id, 3, Some("x"))
                .await
                .must();
            assert_eq!(
                status_of(&fixture, &acme, &sent.id).await,
                (MessageStatus::Sent, None)
            );
            assert_eq!(fixture.rows("messages", "created_us")[0]["parts_sent"], json!(0));
        });
    }

    #[test]
    fn a_snapshot_reads_back_as_the_message_and_its_customer() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let snapshot = Sql::new(format!("SELECT {} AS snapshot", snapshot_sql(":id")))
                .bind("id", text(sent.id.as_str()))
                .scoped(&fixture.db, &acme)
                .must()
                .first::<serde_json::Value>(None)
                .await
                .must()
                .unwrap_or_default();
            let value: serde_json::Value =
                serde_json::from_str(snapshot["snapshot"].as_str().unwrap_or_default()).must();
            let message = from_snapshot(value["message"].clone()).must();
            let read = outbound(&fixture.db, &acme, &sent.id)
                .must()
                .run()
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(message, read);
            let customer = crate::db::customers::from_snapshot(value["customer"].clone()).must();
            assert_eq!((customer.id, customer.name.as_str()), (ann, "Ann"));
        });
    }
}
