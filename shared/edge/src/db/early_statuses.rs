//! `early_statuses`: provider status callbacks that arrived before the dispatcher recorded the
//! provider's id for the message (the callback overtook the answer to the send). Kept only
//! while no message holds the id; applied and removed by the statement that records it.

use crate::db::messages::status_rank;
use crate::db::{Db, Statement};
use crate::db::{number, optional_text, text};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::MessageId;
use domain::inbound::StatusUpdate;
use domain::tenant::Tenant;
use domain::time::Timestamp;

/// The statement that keeps `update` for later when no outbound message of the tenant on
/// `channel` holds its provider id yet (when one does, the status was applied to it directly).
pub fn keep_unmatched(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
    update: &StatusUpdate,
    now: Timestamp,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO early_statuses (business_id, channel, provider_message_id, status, reason, received_us) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM messages \
             WHERE business_id = ?1 AND channel = ?2 AND provider_message_id = ?3 AND direction = 'outbound') \
             ON CONFLICT DO NOTHING",
        )
        .bind(&[
            text(channel.as_str()),
            text(&update.provider_message_id),
            text(update.status.as_str()),
            optional_text(update.reason.as_deref()),
            number(now.micros()),
        ])?)
}

/// The statements that move message `id`, just recorded as `provider_message_id`, to the most
/// advanced status kept for that id (forward only), then forget what was kept for it.
pub fn apply_and_forget(
    db: &Db,
    tenant: &Tenant,
    id: &MessageId,
    provider_message_id: &str,
    now: &str,
) -> Result<[Statement; 2], ApiError> {
    let of_message = "business_id = ?1 AND provider_message_id = ?2 \
         AND channel = (SELECT channel FROM messages WHERE business_id = ?1 AND id = ?3)";
    let apply = db
        .scoped(
            tenant,
            format!(
                "UPDATE messages SET status = kept.status, status_reason = kept.reason, updated_at = ?4 \
             FROM (SELECT status, reason, {rank} AS rank FROM early_statuses WHERE {of_message} \
                   ORDER BY rank DESC LIMIT 1) AS kept \
             WHERE messages.business_id = ?1 AND messages.id = ?3 AND {message_rank} < kept.rank",
                rank = status_rank("status"),
                message_rank = status_rank("messages.status"),
            ),
        )
        .bind(&[text(provider_message_id), text(id.as_str()), text(now)])?;
    let forget = db
        .scoped(tenant, format!("DELETE FROM early_statuses WHERE {of_message}"))
        .bind(&[text(provider_message_id), text(id.as_str())])?;
    Ok([apply, forget])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, messages};
    use crate::testing::{Fixture, Must};
    use domain::channel::MessageStatus;
    use serde_json::json;

    fn update(provider_id: &str, status: MessageStatus, reason: Option<&str>) -> StatusUpdate {
        StatusUpdate {
            provider_message_id: provider_id.to_owned(),
            status,
            reason: reason.map(str::to_owned),
        }
    }

    async fn keep(fixture: &Fixture, tenant: &Tenant, channel: Channel, update: &StatusUpdate) -> usize {
        let statement = keep_unmatched(&fixture.db, tenant, channel, update, fixture.now()).must();
        fixture.changes(statement).await
    }

    #[test]
    fn statuses_that_overtook_the_send_are_applied_when_it_is_recorded_forward_only() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let account = fixture.account(&acme, Channel::Sms).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            assert_eq!(
                keep(
                    &fixture,
                    &acme,
                    Channel::Sms,
                    &update("SM1", MessageStatus::Delivered, None)
                )
                .await,
                1
            );
            assert_eq!(
                keep(
                    &fixture,
                    &acme,
                    Channel::Sms,
                    &update("SM1", MessageStatus::Sent, None)
                )
                .await,
                1
            );
            assert_eq!(
                keep(
                    &fixture,
                    &acme,
                    Channel::Sms,
                    &update("SM1", MessageStatus::Delivered, None)
                )
                .await,
                0,
                "kept once"
            );
            assert_eq!(
                keep(
                    &fixture,
                    &acme,
                    Channel::Whatsapp,
                    &update("SM1", MessageStatus::Read, None)
                )
                .await,
                1,
                "another channel's"
            );
            assert_eq!(
                keep(
                    &fixture,
                    &globex,
                    Channel::Sms,
                    &update("SM1", MessageStatus::Failed, Some("x"))
                )
                .await,
                1,
                "another business's"
            );

            // The dispatcher records the provider's id with `sent`, and applies what was kept.
            let now = fixture.now().to_rfc3339();
            let mut statements = vec![
                messages::advance(
                    &fixture.db,
                    &acme,
                    &sent.id,
                    MessageStatus::Sent,
                    None,
                    Some("SM1"),
                    &now,
                )
                .must(),
            ];
            statements.extend(apply_and_forget(&fixture.db, &acme, &sent.id, "SM1", &now).must());
            let results = db::write_together(&fixture.db, statements).await.must();
            assert_eq!(
                (results[1], results[2]),
                (1, 2),
                "the most advanced applied; both forgotten"
            );
            let found = messages::by_ids(&fixture.db, &acme, &[&sent.id]).await.must();
            assert_eq!(found[0].status, MessageStatus::Delivered);
            let left: Vec<(String, String)> = fixture
                .rows("early_statuses", "business_id")
                .iter()
                .map(|row| {
                    (
                        row["channel"].as_str().unwrap_or_default().to_owned(),
                        row["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                left.len(),
                2,
                "the other channel's and the other business's stay: {left:?}"
            );
            assert!(
                fixture
                    .rows("early_statuses", "business_id")
                    .iter()
                    .all(|row| row["business_id"] != json!(acme.business_id.as_str())
                        || row["channel"] == json!("whatsapp"))
            );

            // Once a message holds the id, nothing is kept for it.
            assert_eq!(
                keep(
                    &fixture,
                    &acme,
                    Channel::Sms,
                    &update("SM1", MessageStatus::Read, None)
                )
                .await,
                0
            );
        });
    }

    #[test]
    fn a_kept_status_behind_the_message_does_not_move_it_back() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Sms).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            keep(
                &fixture,
                &acme,
                Channel::Sms,
                &update("SM1", MessageStatus::Sent, None),
            )
            .await;
            let now = fixture.now().to_rfc3339();
            let mut statements = vec![
                messages::advance(
                    &fixture.db,
                    &acme,
                    &sent.id,
                    MessageStatus::Delivered,
                    None,
                    Some("SM1"),
                    &now,
                )
                .must(),
            ];
            statements.extend(apply_and_forget(&fixture.db, &acme, &sent.id, "SM1", &now).must());
            let results = db::write_together(&fixture.db, statements).await.must();
            assert_eq!((results[1], results[2]), (0, 1));
            let found = messages::by_ids(&fixture.db, &acme, &[&sent.id]).await.must();
            assert_eq!(found[0].status, MessageStatus::Delivered);
            assert!(fixture.rows("early_statuses", "business_id").is_empty());
        });
    }
}
