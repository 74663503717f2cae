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
