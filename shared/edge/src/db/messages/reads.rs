//! Messages read in the business's order: those after a poller's cursor, the latest of each of
//! some conversations, one customer's (their latest, or those after a cursor), and some by id.

use super::{MESSAGE_COLUMNS, MessageRow, to_messages};
use crate::db::Rows;
use crate::db::{self, Db, number};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::message::{Cursor, Message};
use domain::tenant::Tenant;

/// Up to `limit` messages created after the cursor, oldest first.
pub async fn since(db: &Db, tenant: &Tenant, after: Cursor, limit: usize) -> Result<Vec<Message>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND created_us > ?2 ORDER BY created_us LIMIT ?3"
        ))
        .bind(&[
            number(after.after_us),
            number(limit as i64),
        ])?
        .all()
        .await?;
    to_messages(result.rows::<MessageRow>()?)
}

/// The latest `limit` messages of each conversation, oldest first.
pub async fn of_conversations(
    db: &Db,
    tenant: &Tenant,
    conversation_ids: &[&ConversationId],
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {MESSAGE_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY created_us DESC) AS n \
             FROM messages WHERE business_id = ?1 AND conversation_id IN (SELECT value FROM json_each(?2))) \
             WHERE n <= ?3 ORDER BY created_us"
        ))
        .bind(&[
            db::json_list(conversation_ids.iter().map(|id| id.as_str())),
            number(limit as i64),
        ])?
        .all()
        .await?;
    to_messages(result.rows::<MessageRow>()?)
}

/// One customer's messages on every channel, oldest first: the latest `limit` of them, or with
/// `after`, up to `limit` created after that cursor (the embedded inbox's first load and polls).
pub async fn of_customer(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Vec<Message>, ApiError> {
    let (sql, after_us) = match after {
        Some(cursor) => (
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND customer_id = ?2 AND created_us > ?3 \
                 ORDER BY created_us LIMIT ?4"
            ),
            cursor.after_us,
        ),
        None => (
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM (SELECT * FROM messages WHERE business_id = ?1 AND customer_id = ?2 \
                 AND created_us > ?3 ORDER BY created_us DESC LIMIT ?4) ORDER BY created_us"
            ),
            0,
        ),
    };
    let result = db
        .scoped(tenant, sql)
        .bind(&[
            db::text(customer_id.as_str()),
            number(after_us),
            number(limit as i64),
        ])?
        .all()
        .await?;
    to_messages(result.rows::<MessageRow>()?)
}

/// The customer's messages among `ids` (a page asking how its queued replies are doing).
pub async fn of_customer_by_ids(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    ids: &[&MessageId],
) -> Result<Vec<Message>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND customer_id = ?2 \
             AND id IN (SELECT value FROM json_each(?3)) ORDER BY created_us"
            ),
        )
        .bind(&[
            db::text(customer_id.as_str()),
            db::json_list(ids.iter().map(|id| id.as_str())),
        ])?
        .all()
        .await?;
    to_messages(result.rows::<MessageRow>()?)
}

/// The tenant's messages among `ids`, in the business's message order.
pub async fn by_ids(db: &Db, tenant: &Tenant, ids: &[&MessageId]) -> Result<Vec<Message>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2)) \
             ORDER BY created_us"
        ))
        .bind(&[db::json_list(ids.iter().map(|id| id.as_str()))])?
        .all()
        .await?;
    to_messages(result.rows::<MessageRow>()?)
}

#[cfg(test)]
mod tests {
    use super::super::on_data::{ids, sent_ids, shop};
    use super::*;
    use crate::testing::{Fixture, Must};
    use domain::channel::{Channel, Direction};
    use domain::time::Timestamp;

    #[test]
    fn messages_are_read_in_the_business_order_by_cursor_customer_and_conversation() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, sms, ann) = shop(&fixture, "Acme", 0).await;
            let email = fixture.account(&acme, Channel::Email).await;
            let bob = fixture.customer(&acme, "Bob").await;
            let a1 = fixture.send(&acme, &ann, Channel::Sms, &sms, "a1").await;
            let b1 = fixture.send(&acme, &bob, Channel::Sms, &sms, "b1").await;
            let a2 = fixture.send(&acme, &ann, Channel::Email, &email, "a2").await;
            let a3 = fixture.send(&acme, &ann, Channel::Sms, &sms, "a3").await;
            let a4 = fixture.send(&acme, &ann, Channel::Sms, &sms, "a4").await;

            let first = since(&fixture.db, &acme, Cursor { after_us: 0 }, 2).await.must();
            assert_eq!(ids(&first), sent_ids(&[&a1, &b1]));
            let next = since(
                &fixture.db,
                &acme,
                Cursor {
                    after_us: first[1].created_us,
                },
                2,
            )
            .await
            .must();
            assert_eq!(
                ids(&next),
                sent_ids(&[&a2, &a3]),
                "after the cursor, never again before it"
            );
            let read = of_customer(&fixture.db, &acme, &ann, None, 3).await.must();
            assert_eq!(
                ids(&read),
                sent_ids(&[&a2, &a3, &a4]),
                "the latest three, oldest first, every channel"
            );
            let polled = of_customer(
                &fixture.db,
                &acme,
                &ann,
                Some(Cursor {
                    after_us: a1.created_us,
                }),
                2,
            )
            .await
            .must();
            assert_eq!(
                ids(&polled),
                sent_ids(&[&a2, &a3]),
                "a poll after a cursor, oldest first"
            );
            let latest = of_conversations(&fixture.db, &acme, &[&a1.conversation_id, &b1.conversation_id], 2)
                .await
                .must();
            assert_eq!(
                ids(&latest),
                sent_ids(&[&b1, &a3, &a4]),
                "the latest two of each conversation"
            );
            let asked = of_customer_by_ids(&fixture.db, &acme, &ann, &[&a4.id, &b1.id, &a1.id])
                .await
                .must();
            assert_eq!(ids(&asked), sent_ids(&[&a1, &a4]), "only the customer's own");
            let message = &read[0];
            assert_eq!(
                (message.channel, message.direction, message.content.as_str()),
                (Channel::Email, Direction::Outbound, "a2")
            );
            assert_eq!(
                message.created_at,
                Timestamp::from_micros(a2.created_us).to_rfc3339_micros()
            );
        });
    }
}
