//! What providers deliver: an inbound message stored in its sender's conversation, once however
//! often the provider retries it, and only from an address the business knows; and its text
//! changed when the provider says it was edited (or removed).

use super::next_created_us;
use crate::db::{self, Db, Statement, number, text};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::MessageId;
use domain::tenant::Tenant;
use domain::time::Timestamp;

/// The statement that stores an inbound message in its sender's conversation (both resolved
/// from the sender's `address` by the statements before it in the batch), once: a message whose
/// provider id is stored already is not stored again. It returns the new message's id.
#[allow(clippy::too_many_arguments)]
pub fn insert_inbound(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    thread: &str,
    address: &str,
    id: &MessageId,
    content: &str,
    provider_message_id: &str,
    now: Timestamp,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, format!(
            "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             provider_message_id, created_us, updated_at) \
             SELECT ?4, ?1, c.id, c.customer_id, ?2, 'inbound', ?5, 'received', ?6, {}, ?8 \
             FROM customer_identities i JOIN conversations c \
               ON c.business_id = i.business_id AND c.customer_id = i.customer_id AND c.channel = i.channel \
               AND c.thread = ?9 AND c.superseded_by IS NULL \
             WHERE i.business_id = ?1 AND i.channel = ?2 AND i.address = ?3 \
             ON CONFLICT DO NOTHING RETURNING id",
            next_created_us(7, 1)
        ))
        .bind(&[
            text(channel.as_str()),
            text(address),
            text(id.as_str()),
            text(content),
            text(provider_message_id),
            number(now.micros()),
            text(&now.to_rfc3339()),
            text(thread),
        ])?)
}

/// Gives the stored inbound message `provider_message_id` on `channel` its new `content` (an
/// edited comment's text; empty for a removed one); whether one changed.
pub async fn edit_inbound(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    provider_message_id: &str,
    content: &str,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE messages SET content = ?4, updated_at = ?5 WHERE business_id = ?1 AND channel = ?2 \
             AND provider_message_id = ?3 AND direction = 'inbound' AND content <> ?4",
        )
        .bind(&[
            text(channel.as_str()),
            text(provider_message_id),
            text(content),
            text(&now.to_rfc3339()),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};
    use serde_json::json;

    #[test]
    fn an_inbound_message_is_stored_once_and_only_from_a_known_address() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Whatsapp).await;
            let stored = fixture
                .receive(
                    &acme,
                    Channel::Whatsapp,
                    &account,
                    "+353871234567",
                    "hi",
                    "wamid.1",
                )
                .await;
            assert!(stored.is_some());
            let again = fixture
                .receive(
                    &acme,
                    Channel::Whatsapp,
                    &account,
                    "+353871234567",
                    "hi",
                    "wamid.1",
                )
                .await;
            assert_eq!(again, None, "a provider's retry");
            let now = fixture.now();
            let stranger = insert_inbound(
                &fixture.db,
                &acme,
                Channel::Whatsapp,
                "",
                "+353879999999",
                &MessageId::generate(crate::testing::random()),
                "who?",
                "wamid.2",
                now,
            )
            .must();
            assert_eq!(
                fixture.changes(stranger).await,
                0,
                "no identity, no conversation: nothing"
            );
            let rows = fixture.rows("messages", "created_us");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["status"], json!("received"));
            assert_eq!(rows[0]["provider_message_id"], json!("wamid.1"));
        });
    }
}
