//! `conversations`: a customer's current one per channel (and the earlier ones it followed),
//! touched by every message in or out, and changed (status, assignee) through
//! `/api-conversations/{id}`. Every statement is scoped by the tenant.

use crate::db::Rows;
use crate::db::{self, Sql, text};
use crate::db::{Db, Statement};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::{ChannelAccountId, ConversationId, CustomerId, MessageId};
use domain::message::{Conversation, ConversationStatus, NewConversationAfter};
use domain::tenant::Tenant;
use serde_json::Value;

const COLUMNS: &str = "c.id, c.customer_id, c.channel, c.channel_account_id, \
     (CASE WHEN c.channel = 'whatsapp' THEN c.channel_account_id END) AS whatsapp_account_id, c.status, c.assignee, \
     c.last_message_at, c.created_at, c.updated_at, c.reopen_count, \
     (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count";

/// The statement that, before [`touch_for_inbound`] in the same batch, retires the customer's
/// current conversation on the channel when it is resolved or closed and has been quiet (no
/// message, not resolved again) for the business's [`NewConversationAfter`]: it points at
/// `new_id`, which the touch then creates as the current one. Nothing for a redelivery.
///
/// [`NewConversationAfter`]: domain::message::NewConversationAfter
#[allow(clippy::too_many_arguments)]
pub fn supersede_if_quiet(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    thread: &str,
    address: &str,
    new_id: &ConversationId,
    now: &str,
    provider_message_id: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            format!(
                "UPDATE conversations SET superseded_by = ?4, updated_at = ?5 \
                 WHERE business_id = ?1 AND channel = ?2 AND thread = ?7 AND superseded_by IS NULL \
                 AND customer_id = (SELECT customer_id FROM customer_identities \
                   WHERE business_id = ?1 AND channel = ?2 AND address = ?3) \
                 AND status IN ('resolved', 'closed') \
                 AND (julianday(?5) - julianday(max(COALESCE(last_message_at, created_at), COALESCE(resolved_at, created_at)))) * 24 \
                   >= COALESCE((SELECT new_conversation_after_hours FROM businesses WHERE id = ?1), {}) \
                 AND NOT EXISTS (SELECT 1 FROM messages WHERE business_id = ?1 AND channel = ?2 AND provider_message_id = ?6)",
                NewConversationAfter::DEFAULT.hours()
            ),
        )
        .bind(&[
            text(channel.as_str()),
            text(address),
            text(new_id.as_str()),
            text(now),
            text(provider_message_id),
            text(thread),
        ])?)
}

/// The statement that opens the customer's conversation on the channel for an inbound message
/// from `address` (the customer its identity names), or touches it; nothing when the provider's
/// message `provider_message_id` is stored already (a redelivery).
///
/// A conversation that was resolved or closed is reopened by the message: open again, without a
/// resolution time, its reopening counted and recorded against `message_id`, so that
/// [`reopened_by`] finds it in the same batch.
#[allow(clippy::too_many_arguments)]
pub fn touch_for_inbound(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    thread: &str,
    address: &str,
    new_id: &ConversationId,
    account: &ChannelAccountId,
    now: &str,
    provider_message_id: &str,
    message_id: &MessageId,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO conversations (id, business_id, customer_id, channel, thread, channel_account_id, status, last_message_at, created_at, updated_at) \
             SELECT ?4, ?1, customer_id, ?2, ?9, ?5, 'open', ?6, ?6, ?6 FROM customer_identities \
             WHERE business_id = ?1 AND channel = ?2 AND address = ?3 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE business_id = ?1 AND channel = ?2 AND provider_message_id = ?7) \
             ON CONFLICT (business_id, customer_id, channel, thread) WHERE superseded_by IS NULL DO UPDATE SET \
             last_message_at = excluded.last_message_at, updated_at = excluded.updated_at, \
             status = CASE WHEN conversations.status IN ('resolved', 'closed') THEN 'open' ELSE conversations.status END, \
             resolved_at = CASE WHEN conversations.status IN ('resolved', 'closed') THEN NULL ELSE conversations.resolved_at END, \
             reopen_count = conversations.reopen_count + (conversations.status IN ('resolved', 'closed')), \
             reopened_from = CASE WHEN conversations.status IN ('resolved', 'closed') THEN conversations.status \
               ELSE conversations.reopened_from END, \
             reopened_by = CASE WHEN conversations.status IN ('resolved', 'closed') THEN ?8 ELSE conversations.reopened_by END",
        )
        .bind(&[
            text(channel.as_str()),
            text(address),
            text(new_id.as_str()),
            text(account.as_str()),
            text(now),
            text(provider_message_id),
            text(message_id.as_str()),
            text(thread),
        ])?)
}

/// SQL selecting the conversation (as `subject_id`) that the inbound message `message_id` from
/// `address` on `channel` reopened, with the status it had (as `detail`,
/// `{"previous_status": …, "reopened_by": "customer_message"}`); no row when the message reopened
/// none.
pub fn reopened_by(channel: Channel, address: &str, message_id: &MessageId) -> Sql {
    Sql::new(
        "SELECT c.id AS subject_id, json_object('previous_status', c.reopened_from, 'reopened_by', 'customer_message') AS detail \
         FROM conversations c WHERE c.business_id = :business AND c.channel = :reopen_channel \
         AND c.customer_id = (SELECT customer_id FROM customer_identities \
           WHERE business_id = :business AND channel = :reopen_channel AND address = :reopen_address) \
         AND c.reopened_by = :reopen_message",
    )
    .bind("reopen_channel", text(channel.as_str()))
    .bind("reopen_address", text(address))
    .bind("reopen_message", text(message_id.as_str()))
}

/// The statement that opens the customer's conversation on the channel for a message we send,
/// or touches it (keeping the account it was opened with).
#[allow(clippy::too_many_arguments)]
pub fn touch_for_outbound(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    channel: Channel,
    thread: &str,
    new_id: &ConversationId,
    account: &ChannelAccountId,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO conversations (id, business_id, customer_id, channel, thread, channel_account_id, status, \
             last_message_at, created_at, updated_at) VALUES (?4, ?1, ?2, ?3, ?7, ?5, 'open', ?6, ?6, ?6) \
             ON CONFLICT (business_id, customer_id, channel, thread) WHERE superseded_by IS NULL DO UPDATE SET \
             channel_account_id = COALESCE(conversations.channel_account_id, excluded.channel_account_id), \
             last_message_at = excluded.last_message_at, updated_at = excluded.updated_at",
        )
        .bind(&[
            text(customer_id.as_str()),
            text(channel.as_str()),
            text(new_id.as_str()),
            text(account.as_str()),
            text(now),
            text(thread),
        ])?)
}

/// The statement that sets status and assignee, only if the conversation still holds what
/// `current` read (a compare-and-set): 0 rows changed means someone else changed it first.
pub fn change(
    db: &Db,
    tenant: &Tenant,
    current: &Conversation,
    status: ConversationStatus,
    assignee: Option<&str>,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE conversations SET status = ?5, assignee = ?6, updated_at = ?7, \
             resolved_at = CASE WHEN ?5 NOT IN ('resolved', 'closed') THEN NULL \
               WHEN status IN ('resolved', 'closed') THEN resolved_at ELSE ?7 END \
             WHERE business_id = ?1 AND id = ?2 AND status = ?3 AND assignee IS ?4",
        )
        .bind(&[
            text(current.id.as_str()),
            text(current.status.as_str()),
            db::optional_text(current.assignee.as_deref()),
            text(status.as_str()),
            db::optional_text(assignee),
            text(now),
        ])?)
}

/// The condition that the conversation holds what [`change`] wrote at `now`: true exactly when
/// that change applied.
pub fn changed_to(id: &ConversationId, status: ConversationStatus, assignee: Option<&str>, now: &str) -> Sql {
    Sql::new(
        "EXISTS (SELECT 1 FROM conversations WHERE business_id = :business AND id = :conversation_id \
         AND status = :conversation_status AND assignee IS :conversation_assignee AND updated_at = :conversation_at)",
    )
    .bind("conversation_id", text(id.as_str()))
    .bind("conversation_status", text(status.as_str()))
    .bind("conversation_assignee", db::optional_text(assignee))
    .bind("conversation_at", text(now))
}

/// What the analytics read of one conversation: when it began and was resolved, its assignee,
/// and when the customer first wrote and was first answered after that.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Timing {
    pub assignee: Option<String>,
    /// How often the customer reopened it after it was resolved or closed.
    pub reopen_count: i64,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub first_inbound_us: Option<i64>,
    pub first_response_us: Option<i64>,
}

/// The timings of the tenant's conversations that began in [from, to), at most `limit`.
pub async fn timings(
    db: &Db,
    tenant: &Tenant,
    from: domain::time::Timestamp,
    to: domain::time::Timestamp,
    limit: usize,
) -> Result<Vec<Timing>, ApiError> {
    let first_inbound = "(SELECT min(m.created_us) FROM messages m WHERE m.business_id = c.business_id \
                         AND m.conversation_id = c.id AND m.direction = 'inbound')";
    let result = db
        .scoped(tenant, format!(
            "SELECT c.assignee, c.reopen_count, c.created_at, c.resolved_at, {first_inbound} AS first_inbound_us, \
             (SELECT min(m.created_us) FROM messages m WHERE m.business_id = c.business_id \
              AND m.conversation_id = c.id AND m.direction = 'outbound' AND m.created_us > {first_inbound}) \
             AS first_response_us FROM conversations c \
             WHERE c.business_id = ?1 AND c.created_at >= ?2 AND c.created_at < ?3 ORDER BY c.created_at LIMIT ?4"
        ))
        .bind(&[
            text(&from.to_rfc3339()),
            text(&to.to_rfc3339()),
            db::number(limit as i64),
        ])?
        .all()
        .await?;
    Ok(result.rows::<Timing>()?)
}

/// The customer's conversations, the latest active first.
pub async fn of_customer(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
) -> Result<Vec<Conversation>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM conversations c WHERE c.business_id = ?1 AND c.customer_id = ?2 \
             ORDER BY c.last_message_at DESC, c.created_at DESC"
            ),
        )
        .bind(&[text(customer_id.as_str())])?
        .all()
        .await?;
    Ok(result.rows::<Conversation>()?)
}

/// The tenant's conversations among `ids`.
pub async fn by_ids(
    db: &Db,
    tenant: &Tenant,
    ids: &[&ConversationId],
) -> Result<Vec<Conversation>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM conversations c \
             WHERE c.business_id = ?1 AND c.id IN (SELECT value FROM json_each(?2))"
            ),
        )
        .bind(&[db::json_list(ids.iter().map(|id| id.as_str()))])?
        .all()
        .await?;
    Ok(result.rows::<Conversation>()?)
}

/// SQL for `{"conversation", "customer"}` of the tenant's conversation whose id is
/// `id_expression`, as stored at the moment the statement runs.
pub fn snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('conversation', {}, 'customer', json({})) FROM conversations c \
         WHERE c.business_id = :business AND c.id = {id_expression})",
        db::customers::json_object_of(COLUMNS, "c"),
        db::customers::snapshot_sql("c.customer_id")
    )
}

/// A conversation from the JSON [`snapshot_sql`] made.
pub fn from_snapshot(value: Value) -> Result<Conversation, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::internal("reading a conversation snapshot", e))
}

/// Up to `limit` ids of the customer's conversations (an erasure's next step, once their
/// messages are gone).
pub async fn ids_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
    limit: usize,
) -> Result<Vec<ConversationId>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Row {
        id: ConversationId,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT id FROM conversations WHERE business_id = ?1 AND customer_id = ?2 LIMIT ?3",
        )
        .bind(&[text(customer.as_str()), db::number(limit as i64)])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The statement that deletes the conversations `ids` selects: after their messages and
/// everything else that names them.
pub fn erase(db: &Db, tenant: &Tenant, ids: Sql) -> Result<Statement, ApiError> {
    ids.within("DELETE FROM conversations WHERE business_id = :business AND id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};
    use domain::time::Timestamp;
    use serde_json::json;
    use std::time::Duration;

    const ANN: &str = "+353871234567";

    async fn one(fixture: &Fixture, tenant: &Tenant, id: &ConversationId) -> Conversation {
        let found = by_ids(&fixture.db, tenant, &[id]).await.must();
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("conversation {id}"))
    }

    /// The tenant's only conversation of `customer`.
    async fn of(fixture: &Fixture, tenant: &Tenant, customer: &CustomerId) -> Conversation {
        let found = of_customer(&fixture.db, tenant, customer).await.must();
        assert_eq!(found.len(), 1, "{found:?}");
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("a conversation"))
    }

    /// The customer the sender at `address` became.
    fn customer_of(fixture: &Fixture, address: &str) -> CustomerId {
        let rows = fixture.rows("customer_identities", "address");
        let row = rows
            .iter()
            .find(|row| row["address"] == json!(address))
            .unwrap_or_else(|| panic!("{address} is linked"));
        CustomerId::parse(row["customer_id"].as_str().unwrap_or_default()).unwrap_or_else(|| panic!("an id"))
    }

    /// Applies `change` to the conversation as it is now: whether it landed.
    async fn set(
        fixture: &Fixture,
        tenant: &Tenant,
        current: &Conversation,
        status: ConversationStatus,
        assignee: Option<&str>,
    ) -> bool {
        let now = fixture.now().to_rfc3339();
        let statement = change(&fixture.db, tenant, current, status, assignee, &now).must();
        fixture.changes(statement).await == 1
    }

    #[test]
    fn a_sender_has_one_conversation_per_channel_touched_by_each_message() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Whatsapp).await;
            fixture
                .receive(&acme, Channel::Whatsapp, &account, ANN, "hi", "wamid.1")
                .await;
            let ann = customer_of(&fixture, ANN);
            let opened = of(&fixture, &acme, &ann).await;
            let at = fixture.now().to_rfc3339();
            assert_eq!(
                (opened.status, opened.channel, opened.message_count),
                (ConversationStatus::Open, Channel::Whatsapp, 1)
            );
            assert_eq!(opened.channel_account_id.as_ref(), Some(&account));
            assert_eq!(
                (opened.created_at.as_str(), opened.last_message_at.as_deref()),
                (at.as_str(), Some(at.as_str()))
            );

            fixture.stack.advance(Duration::from_secs(5));
            fixture
                .receive(&acme, Channel::Whatsapp, &account, ANN, "again", "wamid.2")
                .await;
            let touched = of(&fixture, &acme, &ann).await;
            let later = fixture.now().to_rfc3339();
            assert_eq!(touched.id, opened.id);
            assert_eq!(touched.message_count, 2);
            assert_eq!(
                (touched.last_message_at.as_deref(), touched.updated_at.as_str()),
                (Some(later.as_str()), later.as_str())
            );
            assert_eq!(touched.created_at, at);

            // A redelivery touches nothing.
            fixture.stack.advance(Duration::from_secs(5));
            assert_eq!(
                fixture
                    .receive(&acme, Channel::Whatsapp, &account, ANN, "again", "wamid.2")
                    .await,
                None
            );
            assert_eq!(of(&fixture, &acme, &ann).await.updated_at, later);
        });
    }

    #[test]
    fn the_customers_next_message_reopens_a_resolved_conversation_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Whatsapp).await;
            fixture.receive(&acme, Channel::Whatsapp, &account, ANN, "hi", "wamid.1").await;
            let ann = customer_of(&fixture, ANN);
            let open = of(&fixture, &acme, &ann).await;
            assert!(set(&fixture, &acme, &open, ConversationStatus::Resolved, Some("agent")).await);
            let resolved_at = fixture.now().to_rfc3339();

            fixture.stack.advance(Duration::from_secs(60));
            let message = fixture.receive(&acme, Channel::Whatsapp, &account, ANN, "one more thing", "wamid.2").await;
            let message = message.unwrap_or_else(|| panic!("stored"));
            let reopened = of(&fixture, &acme, &ann).await;
            assert_eq!((reopened.status, reopened.reopen_count), (ConversationStatus::Open, 1));
            assert_eq!(reopened.assignee.as_deref(), Some("agent"), "the assignee stays");
            let row = fixture.rows("conversations", "id").into_iter().next().unwrap_or_default();
            assert_eq!(row["resolved_at"], json!(null));
            assert_eq!(row["reopened_from"], json!("resolved"));
            assert_eq!(row["reopened_by"], json!(message.as_str()));
            assert_ne!(json!(resolved_at), row["updated_at"]);

            // The statement that finds what the message reopened, for its event.
            let found = reopened_by(Channel::Whatsapp, ANN, &message)
                .scoped(&fixture.db, &acme)
                .must()
                .all()
                .await
                .must()
                .results::<serde_json::Value>()
                .must();
            assert_eq!(
                found,
                [json!({"subject_id": reopened.id.as_str(), "detail": "{\"previous_status\":\"resolved\",\"reopened_by\":\"customer_message\"}"})]
            );

            let next = fixture.receive(&acme, Channel::Whatsapp, &account, ANN, "thanks", "wamid.3").await;
            let next = next.unwrap_or_else(|| panic!("stored"));
            assert_eq!(of(&fixture, &acme, &ann).await.reopen_count, 1, "an open conversation is not reopened");
            let none = reopened_by(Channel::Whatsapp, ANN, &next).scoped(&fixture.db, &acme).must().all().await.must();
            assert!(none.results::<serde_json::Value>().must().is_empty());
        });
    }

    #[test]
    fn a_change_lands_only_on_what_it_read_and_keeps_the_resolution_time() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Sms).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            let read = one(&fixture, &acme, &sent.conversation_id).await;
            assert!(
                set(
                    &fixture,
                    &acme,
                    &read,
                    ConversationStatus::Pending,
                    Some("agent-1")
                )
                .await
            );
            assert!(
                !set(&fixture, &acme, &read, ConversationStatus::Closed, None).await,
                "a second change made from the same read loses"
            );
            let now = fixture.now().to_rfc3339();
            assert!(
                changed_exists(
                    &fixture,
                    &acme,
                    &read.id,
                    ConversationStatus::Pending,
                    Some("agent-1"),
                    &now
                )
                .await
            );
            assert!(!changed_exists(&fixture, &acme, &read.id, ConversationStatus::Closed, None, &now).await);

            let resolution =
                |fixture: &Fixture| fixture.rows("conversations", "id")[0]["resolved_at"].clone();
            let pending = one(&fixture, &acme, &read.id).await;
            assert_eq!(
                (pending.status, pending.assignee.as_deref()),
                (ConversationStatus::Pending, Some("agent-1"))
            );
            assert!(
                set(
                    &fixture,
                    &acme,
                    &pending,
                    ConversationStatus::Resolved,
                    Some("agent-1")
                )
                .await
            );
            let resolved_at = fixture.now().to_rfc3339();
            assert_eq!(resolution(&fixture), json!(resolved_at));
            fixture.stack.advance(Duration::from_secs(60));
            let resolved = one(&fixture, &acme, &read.id).await;
            assert!(
                set(
                    &fixture,
                    &acme,
                    &resolved,
                    ConversationStatus::Closed,
                    Some("agent-1")
                )
                .await
            );
            assert_eq!(
                resolution(&fixture),
                json!(resolved_at),
                "closing what was resolved keeps when"
            );
            let closed = one(&fixture, &acme, &read.id).await;
            assert!(set(&fixture, &acme, &closed, ConversationStatus::Open, None).await);
            assert_eq!(resolution(&fixture), json!(null), "opened again");
        });
    }

    async fn changed_exists(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &ConversationId,
        status: ConversationStatus,
        assignee: Option<&str>,
        now: &str,
    ) -> bool {
        #[derive(serde::Deserialize)]
        struct Row {
            held: i64,
        }
        let row = changed_to(id, status, assignee, now)
            .within("SELECT {sql} AS held")
            .scoped(&fixture.db, tenant)
            .must()
            .first::<Row>(None)
            .await
            .must();
        row.is_some_and(|row| row.held == 1)
    }

    #[test]
    fn a_send_keeps_the_account_its_conversation_was_opened_with() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let (first, second) = (
                fixture.account(&acme, Channel::Email).await,
                fixture.account(&acme, Channel::Email).await,
            );
            let ann = fixture.customer(&acme, "Ann").await;
            let opened = fixture.send(&acme, &ann, Channel::Email, &first, "one").await;
            fixture.stack.advance(Duration::from_secs(1));
            let again = fixture.send(&acme, &ann, Channel::Email, &second, "two").await;
            assert_eq!(again.conversation_id, opened.conversation_id);
            let conversation = one(&fixture, &acme, &opened.conversation_id).await;
            assert_eq!(conversation.channel_account_id, Some(first));
            assert_eq!(conversation.message_count, 2);
            assert_eq!(conversation.last_message_at, Some(fixture.now().to_rfc3339()));
            let sms = fixture.account(&acme, Channel::Sms).await;
            let other = fixture.send(&acme, &ann, Channel::Sms, &sms, "three").await;
            assert_ne!(
                other.conversation_id, opened.conversation_id,
                "one conversation per channel"
            );
        });
    }

    #[test]
    fn a_whatsapp_conversation_names_its_account_as_the_guide_does_and_no_other_channel_does() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let (whatsapp, sms) = (
                fixture.account(&acme, Channel::Whatsapp).await,
                fixture.account(&acme, Channel::Sms).await,
            );
            let ann = fixture.customer(&acme, "Ann").await;
            fixture
                .send(&acme, &ann, Channel::Whatsapp, &whatsapp, "one")
                .await;
            fixture.send(&acme, &ann, Channel::Sms, &sms, "two").await;
            let mut named: Vec<(Channel, Option<ChannelAccountId>, Option<ChannelAccountId>)> =
                of_customer(&fixture.db, &acme, &ann)
                    .await
                    .must()
                    .into_iter()
                    .map(|c| (c.channel, c.channel_account_id, c.whatsapp_account_id))
                    .collect();
            named.sort_by_key(|(channel, ..)| channel.as_str());
            assert_eq!(
                named,
                [
                    (Channel::Sms, Some(sms.clone()), None),
                    (Channel::Whatsapp, Some(whatsapp.clone()), Some(whatsapp.clone())),
                ]
            );
        });
    }

    #[test]
    fn a_customers_conversations_come_latest_active_first_and_only_to_their_business() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (email, sms) = (
                fixture.account(&acme, Channel::Email).await,
                fixture.account(&acme, Channel::Sms).await,
            );
            let ann = fixture.customer(&acme, "Ann").await;
            let by_email = fixture.send(&acme, &ann, Channel::Email, &email, "one").await;
            fixture.stack.advance(Duration::from_secs(1));
            let by_sms = fixture.send(&acme, &ann, Channel::Sms, &sms, "two").await;
            let ids = |found: Vec<Conversation>| found.into_iter().map(|c| c.id).collect::<Vec<_>>();
            assert_eq!(
                ids(of_customer(&fixture.db, &acme, &ann).await.must()),
                [by_sms.conversation_id.clone(), by_email.conversation_id.clone()]
            );
            fixture.stack.advance(Duration::from_secs(1));
            fixture.send(&acme, &ann, Channel::Email, &email, "three").await;
            assert_eq!(
                ids(of_customer(&fixture.db, &acme, &ann).await.must()),
                [by_email.conversation_id.clone(), by_sms.conversation_id.clone()]
            );

            assert!(of_customer(&fixture.db, &globex, &ann).await.must().is_empty());
            assert!(
                by_ids(&fixture.db, &globex, &[&by_email.conversation_id])
                    .await
                    .must()
                    .is_empty()
            );
            let read = one(&fixture, &acme, &by_email.conversation_id).await;
            assert!(
                !set(&fixture, &globex, &read, ConversationStatus::Closed, None).await,
                "another business's change"
            );
            assert_eq!(
                one(&fixture, &acme, &read.id).await.status,
                ConversationStatus::Open
            );
        });
    }

    #[test]
    fn timings_give_the_first_inbound_and_the_first_answer_after_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Whatsapp).await;
            let start = fixture.now();
            fixture
                .receive(&acme, Channel::Whatsapp, &account, ANN, "hi", "wamid.1")
                .await;
            let ann = customer_of(&fixture, ANN);
            let opened_us = fixture.rows("messages", "created_us")[0]["created_us"]
                .as_i64()
                .unwrap_or(0);
            fixture.stack.advance(Duration::from_secs(30));
            let answer = fixture
                .send(&acme, &ann, Channel::Whatsapp, &account, "hello")
                .await;
            fixture.stack.advance(Duration::from_secs(30));
            fixture
                .send(&acme, &ann, Channel::Whatsapp, &account, "anything else?")
                .await;
            let bob = fixture.customer(&acme, "Bob").await;
            fixture
                .send(&acme, &bob, Channel::Whatsapp, &account, "news")
                .await;

            let found = timings(&fixture.db, &acme, start, start.plus_seconds(3600), 10)
                .await
                .must();
            let got: Vec<(Option<i64>, Option<i64>)> = found
                .iter()
                .map(|timing| (timing.first_inbound_us, timing.first_response_us))
                .collect();
            assert_eq!(got, [(Some(opened_us), Some(answer.created_us)), (None, None)]);
            assert_eq!(found[0].created_at, start.to_rfc3339());
            assert_eq!(
                timings(&fixture.db, &acme, start, start.plus_seconds(3600), 1)
                    .await
                    .must()
                    .len(),
                1,
                "the limit"
            );
            let later = Timestamp::from_millis(start.millis() + 1);
            assert_eq!(
                timings(&fixture.db, &acme, later, later.plus_seconds(3600), 10)
                    .await
                    .must()
                    .len(),
                1,
                "Ann's began before"
            );
        });
    }
}
