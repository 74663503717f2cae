//! Files in R2, under their business: the bytes of uploads and of media received with messages.
//! Their rows are `db::attachments`.

use crate::db;
use crate::runtime;
use domain::error::ApiError;
use domain::ids::{AttachmentId, MessageId};
use domain::media::clean_filename;
use domain::message::Attachment;
use domain::tenant::Tenant;
use worker::{Bucket, D1Database, D1PreparedStatement, HttpMetadata};

pub const ATTACHMENTS: &str = "ATTACHMENTS";
/// The seed's limit: "Verify file size is under 10MB".
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

pub fn storage_key(tenant: &Tenant, attachment_id: &AttachmentId) -> String {
    format!("businesses/{}/attachments/{attachment_id}", tenant.business_id)
}

/// Writes the bytes to R2 and returns the statement that records them, to run in the caller's
/// batch (so the row exists only if the caller's transaction commits).
pub async fn store(
    bucket: &Bucket,
    db: &D1Database,
    tenant: &Tenant,
    message_id: Option<&MessageId>,
    filename: &str,
    mime_type: &str,
    bytes: Vec<u8>,
) -> Result<(Attachment, D1PreparedStatement), ApiError> {
    let attachment = Attachment {
        id: AttachmentId::generate(runtime::random()?),
        message_id: message_id.cloned(),
        filename: clean_filename(filename),
        mime_type: mime_type.to_owned(),
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        created_at: runtime::now().to_rfc3339(),
        download_url: None,
    };
    let key = storage_key(tenant, &attachment.id);
    bucket
        .put(&key, bytes)
        .http_metadata(HttpMetadata {
            content_type: Some(attachment.mime_type.clone()),
            ..HttpMetadata::default()
        })
        .execute()
        .await?;
    let statement = db::attachments::insert(db, tenant, &attachment, &key)?;
    Ok((attachment, statement))
}
