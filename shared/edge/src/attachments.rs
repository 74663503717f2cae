//! Attachment bytes in R2 under their business, and their rows in D1.

use crate::auth::Tenant;
use crate::{d1, runtime};
use domain::error::ApiError;
pub use domain::message::Attachment;
use worker::{Bucket, D1Database, D1PreparedStatement, HttpMetadata};

pub const ATTACHMENTS: &str = "ATTACHMENTS";
/// The seed's limit: "Verify file size is under 10MB".
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

pub fn storage_key(tenant: &Tenant, attachment_id: &str) -> String {
    format!("businesses/{}/attachments/{attachment_id}", tenant.business_id)
}

/// Keeps a filename usable in a Content-Disposition header and on any file system.
pub fn clean_filename(name: &str) -> String {
    let cleaned: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*'))
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "attachment".to_owned()
    } else {
        cleaned
    }
}

/// Writes the bytes to R2 and returns the statement that records them, to run in the caller's
/// batch (so the row exists only if the caller's transaction commits).
pub async fn store(
    bucket: &Bucket,
    db: &D1Database,
    tenant: &Tenant,
    message_id: Option<&str>,
    filename: &str,
    mime_type: &str,
    bytes: Vec<u8>,
) -> Result<(Attachment, D1PreparedStatement), ApiError> {
    let attachment = Attachment {
        id: domain::ids::uuid_v4(runtime::random()?),
        message_id: message_id.map(str::to_owned),
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
    let statement = db
        .prepare(
            "INSERT INTO attachments (id, business_id, message_id, filename, mime_type, size, storage_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&[
            d1::text(&attachment.id),
            d1::text(tenant.business_id.as_str()),
            d1::optional_text(attachment.message_id.as_deref()),
            d1::text(&attachment.filename),
            d1::text(&attachment.mime_type),
            worker::wasm_bindgen::JsValue::from_f64(attachment.size as f64),
            d1::text(&key),
            d1::text(&attachment.created_at),
        ])?;
    Ok((attachment, statement))
}

/// The attachments of the given messages, in creation order.
pub async fn of_messages(
    db: &D1Database,
    tenant: &Tenant,
    message_ids: &[&str],
) -> Result<Vec<Attachment>, ApiError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .prepare(
            "SELECT id, message_id, filename, mime_type AS \"type\", size, created_at FROM attachments \
             WHERE business_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) ORDER BY created_at, id",
        )
        .bind(&[d1::text(tenant.business_id.as_str()), d1::json_list(message_ids.iter().copied())])?
        .all()
        .await?;
    Ok(result.results::<Attachment>()?)
}

#[cfg(test)]
mod tests {
    use super::clean_filename;

    #[test]
    fn filenames_lose_paths_and_characters_that_break_headers() {
        let cases = [
            ("receipt.pdf", "receipt.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\x\\photo.jpg", "photo.jpg"),
            ("a\"b\r\n.txt", "ab.txt"),
            (".hidden", "hidden"),
            ("", "attachment"),
            ("///", "attachment"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean_filename(input), expected, "{input:?}");
        }
    }
}
