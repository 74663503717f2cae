//! Files in R2, under their business: the bytes of uploads and of media received with messages.
//! Their rows are `db::attachments`.

use crate::console_error;
use crate::db;
use crate::db::Db;
use crate::runtime;
use crate::runtime::Internal;
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
        .await
        .internal("R2")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Level;
    use crate::testing::Fixture;

    async fn upload(
        fixture: &Fixture,
        tenant: &Tenant,
        message_id: Option<&MessageId>,
    ) -> Result<Attachment, ApiError> {
        let bucket = fixture
            .env
            .bucket_write(ATTACHMENTS)
            .unwrap_or_else(|error| panic!("{error}"));
        store(
            &bucket,
            &fixture.db,
            tenant,
            message_id,
            "../../etc/label.pdf",
            "application/pdf",
            b"%PDF-1.7".to_vec(),
        )
        .await
    }

    #[test]
    fn a_file_is_stored_under_its_business_with_its_type_and_recorded() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let attachment = upload(&fixture, &tenant, None)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let key = format!("businesses/{}/attachments/{}", tenant.business_id, attachment.id);
            assert_eq!(fixture.stack.r2_keys(ATTACHMENTS), vec![key.clone()]);
            assert_eq!(
                fixture.stack.r2_bytes(ATTACHMENTS, &key),
                Some(b"%PDF-1.7".to_vec())
            );
            let object = fixture
                .stack
                .r2_read(ATTACHMENTS, &key)
                .unwrap_or_else(|| panic!("stored"));
            assert_eq!(
                object.http_metadata().content_type.as_deref(),
                Some("application/pdf")
            );
            let rows = fixture.rows("attachments", "id");
            assert_eq!(rows.len(), 1);
            assert_eq!(
                (
                    rows[0]["id"].as_str(),
                    rows[0]["storage_key"].as_str(),
                    rows[0]["filename"].as_str(),
                    rows[0]["size"].as_i64(),
                    rows[0]["status"].as_str()
                ),
                (
                    Some(attachment.id.as_str()),
                    Some(key.as_str()),
                    Some(attachment.filename.as_str()),
                    Some(8),
                    Some("stored")
                )
            );
            assert!(
                !attachment.filename.contains('/'),
                "no path in a stored name: {}",
                attachment.filename
            );
            assert!(rows[0]["message_id"].is_null());
        });
    }

    #[test]
    fn an_object_whose_row_cannot_be_written_is_deleted_again() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let no_such_message = MessageId::generate([7; 16]);
            let error = upload(&fixture, &tenant, Some(&no_such_message)).await.err();
            assert_eq!(error.map(|error| error.status()), Some(500));
            assert!(
                fixture.stack.r2_keys(ATTACHMENTS).is_empty(),
                "no object left without its row"
            );
            assert!(fixture.rows("attachments", "id").is_empty());
        });
        assert!(
            fixture
                .stack
                .logged(Level::Error, "left without a row")
                .is_empty(),
            "the delete worked"
        );
    }

    #[test]
    fn a_database_that_does_not_answer_leaves_no_object_and_asks_the_client_to_retry() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            for shard in fixture.stack.shard_bindings() {
                fixture.stack.outage(&shard, "Network connection lost.");
            }
            let error = upload(&fixture, &tenant, None).await.err();
            assert_eq!(
                error.map(|error| (error.status(), error.retry_after_seconds)),
                Some((503, Some(10)))
            );
            assert!(fixture.stack.r2_keys(ATTACHMENTS).is_empty());
        });
    }
}
