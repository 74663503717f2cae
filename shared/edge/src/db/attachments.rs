//! `attachments`: the rows of files kept in R2 (`media_store` writes the bytes). A file is
//! uploaded alone, then linked to the one message it is sent with; files received with a message
//! are linked at once. Every statement is scoped by the tenant, but for the lookup of a signed
//! download link, whose signature names the business.

use crate::db::{self, Sql, number, text};
use domain::error::ApiError;
use domain::ids::{AttachmentId, BusinessId, MessageId};
use domain::message::{Attachment, Message};
use domain::tenant::Tenant;
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

/// The statement that records a stored file; run it in the caller's batch, so the row exists
/// only if the caller's transaction commits.
pub fn insert(
    db: &D1Database,
    tenant: &Tenant,
    attachment: &Attachment,
    storage_key: &str,
) -> Result<D1PreparedStatement, ApiError> {
    Ok(db
        .prepare(
            "INSERT INTO attachments (id, business_id, message_id, filename, mime_type, size, storage_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&[
            text(attachment.id.as_str()),
            text(tenant.business_id.as_str()),
            db::optional_text(attachment.message_id.as_ref().map(MessageId::as_str)),
            text(&attachment.filename),
            text(&attachment.mime_type),
            number(attachment.size),
            text(storage_key),
            text(&attachment.created_at),
        ])?)
}

/// The attachments of the given messages, in creation order.
pub async fn of_messages(
    db: &D1Database,
    tenant: &Tenant,
    message_ids: &[&MessageId],
) -> Result<Vec<Attachment>, ApiError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .prepare(
            "SELECT id, message_id, filename, mime_type AS \"type\", size, created_at FROM attachments \
             WHERE business_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) ORDER BY created_at, id",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            db::json_list(message_ids.iter().map(|id| id.as_str())),
        ])?
        .all()
        .await?;
    Ok(result.results::<Attachment>()?)
}

/// Fills in each message's attachments (one query for all of them), with download links under
/// the deployment's `origin`.
pub async fn attach_to(
    db: &D1Database,
    tenant: &Tenant,
    origin: &str,
    messages: &mut [Message],
) -> Result<(), ApiError> {
    let ids: Vec<&MessageId> = messages.iter().map(|message| &message.id).collect();
    let mut found = of_messages(db, tenant, &ids).await?;
    for message in messages.iter_mut() {
        let (mine, rest): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|attachment| attachment.message_id.as_ref() == Some(&message.id));
        message.attachments = Some(
            mine.into_iter()
                .map(|attachment| attachment.with_download_url(origin))
                .collect(),
        );
        found = rest;
    }
    Ok(())
}

/// An attachment a client named, as stored: its owner message, if it has one already.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub id: AttachmentId,
    pub message_id: Option<MessageId>,
}

/// The tenant's attachments among `ids` (the others do not exist for this business).
pub async fn find(db: &D1Database, tenant: &Tenant, ids: &[&AttachmentId]) -> Result<Vec<Named>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .prepare(
            "SELECT id, message_id FROM attachments WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            db::json_list(ids.iter().map(|id| id.as_str())),
        ])?
        .all()
        .await?;
    Ok(result.results::<Named>()?)
}

/// The statement that links the named uploads, those not sent with another message yet, to
/// `message_id`. Pair it with [`all_linked`] to refuse a send whose uploads another took first.
pub fn link(
    db: &D1Database,
    tenant: &Tenant,
    message_id: &MessageId,
    ids: &[&AttachmentId],
) -> Result<D1PreparedStatement, ApiError> {
    Ok(db
        .prepare(
            "UPDATE attachments SET message_id = ?2 WHERE business_id = ?1 AND message_id IS NULL \
             AND id IN (SELECT value FROM json_each(?3))",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(message_id.as_str()),
            db::json_list(ids.iter().map(|id| id.as_str())),
        ])?)
}

/// The condition that exactly `count` attachments are linked to `message_id`.
pub fn all_linked(message_id: &MessageId, count: usize) -> Sql {
    Sql::new(
        "(SELECT COUNT(*) FROM attachments WHERE business_id = :business AND message_id = :linked_message) \
         = :linked_count",
    )
    .bind("linked_message", text(message_id.as_str()))
    .bind("linked_count", number(count as i64))
}

/// What a download needs of a stored file.
#[derive(Debug, Deserialize)]
pub struct Download {
    pub business_id: BusinessId,
    pub filename: String,
    pub mime_type: String,
    pub storage_key: String,
}

/// The file `id` of whatever business, for a download whose link or key is checked against
/// `business_id` next.
pub async fn for_download(db: &D1Database, id: &AttachmentId) -> Result<Option<Download>, ApiError> {
    Ok(db
        .prepare("SELECT business_id, filename, mime_type, storage_key FROM attachments WHERE id = ?1")
        .bind(&[text(id.as_str())])?
        .first::<Download>(None)
        .await?)
}
