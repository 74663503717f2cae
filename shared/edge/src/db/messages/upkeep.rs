//! The messages looked after from outside a send: the sweep's lost sends (of any business),
//! each taken once per bound and re-queued a bounded number of times, then left to be failed; a
//! restore's quarantine, which fails what was queued in the backup; and an erasure's steps.

use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{Db, Sql, Statement, number, text};
use domain::error::ApiError;
use domain::ids::{BusinessId, CustomerId, MessageId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// Which `queued` outbound messages count as lost: last written (accepted, or a retry noted,
/// which is what `status_reason` holds while queued) before `unnoted_before` without a retry
/// note, or before `noted_before` with one. `updated_at` is written with fixed-width
/// milliseconds, so comparing it as text compares times.
fn lost_send(unnoted_before: Timestamp, noted_before: Timestamp) -> Sql {
    Sql::new(
        "direction = 'outbound' AND status = 'queued' AND ((status_reason IS NULL AND updated_at < :unnoted_before) \
         OR updated_at < :noted_before)",
    )
    .bind("unnoted_before", text(&unnoted_before.to_rfc3339()))
    .bind("noted_before", text(&noted_before.to_rfc3339()))
}

/// A lost send the sweep put back on the queue, with what it was accepted with.
#[derive(Debug, Deserialize)]
pub struct RequeuedSend {
    pub business_id: BusinessId,
    pub id: MessageId,
    pub send_subject: Option<String>,
    pub send_media_base_url: Option<String>,
}

/// Takes up to `limit` lost sends (of any business) that were re-queued fewer than
/// `max_requeues` times: each is counted and stamped `now` in the one statement that selects
/// it, so two sweeps never take the same message, and the next sweep waits the whole bound
/// again before it counts the message lost once more.
pub async fn take_lost_sends(
    db: &Db,
    moving: &Moving,
    unnoted_before: Timestamp,
    noted_before: Timestamp,
    max_requeues: u32,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<RequeuedSend>, ApiError> {
    let result = lost_send(unnoted_before, noted_before)
        .within(
            "UPDATE messages SET send_requeues = send_requeues + 1, updated_at = :now WHERE id IN \
             (SELECT id FROM messages WHERE {sql} AND send_requeues < :max_requeues \
             AND business_id NOT IN (SELECT value FROM json_each(:moving)) ORDER BY updated_at LIMIT :limit) \
             RETURNING business_id, id, send_subject, send_media_base_url",
        )
        .bind("moving", moving.param())
        .bind("now", text(&now.to_rfc3339()))
        .bind("max_requeues", number(i64::from(max_requeues)))
        .bind("limit", number(limit as i64))
        .unscoped(db)?
        .all()
        .await?;
    Ok(result.rows::<RequeuedSend>()?)
}

/// Up to `limit` lost sends (of any business) already re-queued `max_requeues` times: the
/// sweep fails them rather than loop.
pub async fn lost_beyond_requeues(
    db: &Db,
    moving: &Moving,
    unnoted_before: Timestamp,
    noted_before: Timestamp,
    max_requeues: u32,
    limit: usize,
) -> Result<Vec<(BusinessId, MessageId)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: MessageId,
    }
    let result = lost_send(unnoted_before, noted_before)
        .within(
            "SELECT business_id, id FROM messages WHERE {sql} AND send_requeues >= :max_requeues \
             AND business_id NOT IN (SELECT value FROM json_each(:moving)) ORDER BY updated_at LIMIT :limit",
        )
        .bind("moving", moving.param())
        .bind("max_requeues", number(i64::from(max_requeues)))
        .bind("limit", number(limit as i64))
        .unscoped(db)?
        .all()
        .await?;
    Ok(result
        .rows::<Row>()?
        .into_iter()
        .map(|row| (row.business_id, row.id))
        .collect())
}

/// A restore's quarantine: the business's outbound messages still `queued` in the backup are
/// failed with `reason`, never sent: the backup is of another moment, and what was queued then
/// may have been sent since, or no longer be wanted.
pub fn fail_queued(db: &Db, tenant: &Tenant, reason: &str, now: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE messages SET status = 'failed', status_reason = ?2, updated_at = ?3 \
             WHERE business_id = ?1 AND direction = 'outbound' AND status = 'queued'",
        )
        .bind(&[text(reason), text(now)])?)
}

/// Up to `limit` ids of the customer's messages, oldest first (an erasure's next step).
pub async fn ids_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
    limit: usize,
) -> Result<Vec<MessageId>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: MessageId,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT id FROM messages WHERE business_id = ?1 AND customer_id = ?2 ORDER BY created_us LIMIT ?3",
        )
        .bind(&[text(customer.as_str()), number(limit as i64)])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The statement that deletes the messages `ids` selects: after everything that names them.
pub fn erase(db: &Db, tenant: &Tenant, ids: Sql) -> Result<Statement, ApiError> {
    ids.within("DELETE FROM messages WHERE business_id = :business AND id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::super::on_data::shop;
    use super::super::{advance, note_retry};
    use super::*;
    use crate::testing::{Fixture, Must};
    use domain::channel::{Channel, MessageStatus};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn the_sweep_takes_each_lost_send_once_per_bound_on_each_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let (globex, theirs, bob) = shop(&fixture, "Globex", 1).await;
            let quiet = fixture.send(&acme, &ann, Channel::Sms, &account, "quiet").await;
            let noted = fixture.send(&acme, &ann, Channel::Sms, &account, "noted").await;
            let done = fixture.send(&acme, &ann, Channel::Sms, &account, "done").await;
            let other = fixture.send(&globex, &bob, Channel::Sms, &theirs, "theirs").await;
            let at = fixture.now().to_rfc3339();
            note_retry(&fixture.db, &acme, &noted.id, "provider 503", &at)
                .await
                .must();
            fixture
                .changes(advance(&fixture.db, &acme, &done.id, MessageStatus::Sent, None, None, &at).must())
                .await;

            // Unnoted sends are lost after 5 minutes, noted ones after 30.
            fixture.stack.advance(Duration::from_secs(600));
            let now = fixture.now();
            let (unnoted, noted_bound) = (now.plus_seconds(-300), now.plus_seconds(-1800));
            let shards = fixture.db.each_shard();
            let taken = take_lost_sends(&shards[0], &Moving::NONE, unnoted, noted_bound, 3, now, 10)
                .await
                .must();
            let taken_ids: Vec<MessageId> = taken.iter().map(|send| send.id.clone()).collect();
            assert_eq!(
                taken_ids,
                std::slice::from_ref(&quiet.id),
                "the noted one waits longer; the sent one is not lost"
            );
            assert_eq!(taken[0].business_id, acme.business_id);
            assert_eq!(taken[0].send_media_base_url.as_deref(), Some("https://edge.test"));
            assert!(
                take_lost_sends(&shards[0], &Moving::NONE, unnoted, noted_bound, 3, now, 10)
                    .await
                    .must()
                    .is_empty(),
                "taken once: the next sweep waits the whole bound again"
            );
            let theirs_taken = take_lost_sends(&shards[1], &Moving::NONE, unnoted, noted_bound, 3, now, 10)
                .await
                .must();
            assert_eq!(
                theirs_taken
                    .iter()
                    .map(|send| send.id.clone())
                    .collect::<Vec<_>>(),
                std::slice::from_ref(&other.id)
            );

            fixture.stack.advance(Duration::from_secs(1800));
            let now = fixture.now();
            let (unnoted, noted_bound) = (now.plus_seconds(-300), now.plus_seconds(-1800));
            let again = take_lost_sends(&shards[0], &Moving::NONE, unnoted, noted_bound, 3, now, 1)
                .await
                .must();
            assert_eq!(again.len(), 1, "at most the limit");
            assert_eq!(again[0].id, noted.id, "the longest waiting first");
            let rows = fixture.rows("messages", "created_us");
            let requeues = |id: &MessageId| {
                rows.iter()
                    .find(|row| row["id"] == json!(id.as_str()))
                    .map(|row| row["send_requeues"].clone())
            };
            assert_eq!(requeues(&quiet.id), Some(json!(1)));
            assert_eq!(requeues(&noted.id), Some(json!(1)));
            assert_eq!(requeues(&done.id), Some(json!(0)));
        });
    }

    #[test]
    fn a_send_requeued_too_often_is_left_to_be_failed() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, account, ann) = shop(&fixture, "Acme", 0).await;
            let sent = fixture.send(&acme, &ann, Channel::Sms, &account, "hello").await;
            for round in 0..3 {
                fixture.stack.advance(Duration::from_secs(301));
                let now = fixture.now();
                let lost = lost_beyond_requeues(
                    &fixture.db,
                    &Moving::NONE,
                    now.plus_seconds(-300),
                    now.plus_seconds(-1800),
                    2,
                    10,
                )
                .await
                .must();
                let taken = take_lost_sends(
                    &fixture.db,
                    &Moving::NONE,
                    now.plus_seconds(-300),
                    now.plus_seconds(-1800),
                    2,
                    now,
                    10,
                )
                .await
                .must();
                if round < 2 {
                    assert!(lost.is_empty(), "round {round}");
                    assert_eq!(taken.len(), 1, "round {round}");
                } else {
                    assert_eq!(
                        lost,
                        [(acme.business_id.clone(), sent.id.clone())],
                        "round {round}"
                    );
                    assert!(taken.is_empty(), "round {round}: not requeued a third time");
                }
            }
        });
    }
}
