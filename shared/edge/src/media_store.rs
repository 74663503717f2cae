//! Files in R2, under their business: the bytes of uploads and of media received with messages.
//! Their rows are `db::attachments`.

use crate::console_error;
use crate::db;
use crate::db::Db;
use crate::runtime;
use crate::runtime::{Bucket, Data, HttpMetadata};
use domain::error::ApiError;
use domain::ids::{AttachmentId, MessageId};
use domain::media::clean_filename;
use domain::message::{Attachment, AttachmentStatus};
use domain::tenant::Tenant;

pub const ATTACHMENTS: &str = "ATTACHMENTS";
pub use domain::media::MAX_ATTACHMENT_BYTES;

pub fn storage_key(tenant: &Tenant, attachment_id: &AttachmentId) -> String {
    format!("businesses/{}/attachments/{attachment_id}", tenant.business_id)
}

/// Writes the bytes to R2, then records them. When the record cannot be written, the object is
/// deleted again (best effort, logged), so that no stored object is left without its row.
pub async fn store(
    bucket: &Bucket,
    db: &Db,
    tenant: &Tenant,
    message_id: Option<&MessageId>,
    filename: &str,
    mime_type: &str,
    bytes: Vec<u8>,
) -> Result<Attachment, ApiError> {
    let attachment = Attachment {
        id: AttachmentId::generate(runtime::random()?),
        message_id: message_id.cloned(),
        filename: clean_filename(filename),
        mime_type: mime_type.to_owned(),
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        created_at: runtime::now().to_rfc3339(),
        status: AttachmentStatus::Stored,
        status_reason: None,
        download_url: None,
    };
    let key = storage_key(tenant, &attachment.id);
    put(bucket, &key, &attachment.mime_type, bytes).await?;
    let recorded = match db::attachments::insert(db, tenant, &attachment, &key) {
        Ok(statement) => statement.run().await.map(|_| ()).map_err(ApiError::from),
        Err(error) => Err(error),
    };
    if let Err(error) = recorded {
        if let Err(cleanup) = bucket.delete(&key).await {
            console_error!("object {key} is left without a row: {cleanup}");
        }
        return Err(error);
    }
    Ok(attachment)
}

/// Writes `body` (bytes, or a stream of known length) to R2 under `key`, with its content type.
pub async fn put(bucket: &Bucket, key: &str, mime_type: &str, body: impl Into<Data>) -> Result<(), ApiError> {
    bucket
        .put(key, body)
        .http_metadata(HttpMetadata {
            content_type: Some(mime_type.to_owned()),
            ..HttpMetadata::default()
        })
        .execute()
        .await?;
    Ok(())
}
