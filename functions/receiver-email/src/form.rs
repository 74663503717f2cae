//! The POST as a form, parsed by the runtime's own `FormData` once its signature held (the
//! signature fields are scanned from the raw body before: `edge::platform::signed::Mailgun`).

use domain::error::ApiError;
use domain::providers::mailgun::webhook::{self as mailgun, Attachment, Fields};
use edge::runtime::Internal;
use edge::runtime::{FormData, FormEntry};

/// The whole form of a POST whose signature held, parsed by the runtime.
pub async fn parse(content_type: &str, body: Vec<u8>, url: &str) -> Result<FormData, ApiError> {
    edge::runtime::parse_form(url, content_type, body)
        .await
        .map_err(|_| ApiError::malformed("the request body is not a well-formed form"))
}

/// The text fields Mailgun's format defines (files and unknown fields are left in the form).
pub fn fields(form: &FormData) -> Fields {
    mailgun::FIELDS
        .iter()
        .filter_map(|name| form.get_field(name).map(|value| (*name, value)))
        .collect()
}

/// The `count` files `attachment-1` .. `attachment-{count}`; each must be there and be a file.
pub async fn attachments(form: &FormData, count: usize) -> Result<Vec<Attachment>, ApiError> {
    let mut files = Vec::with_capacity(count);
    for number in 1..=count {
        let field = mailgun::attachment_field(number);
        let Some(FormEntry::File(file)) = form.get(&field) else {
            return Err(ApiError::malformed(format!(
                "attachment-count is {count} but {field} is not a file"
            ))
            .at(field));
        };
        files.push(Attachment {
            filename: file.name(),
            content_type: file.type_(),
            bytes: file.bytes().await.internal("reading a form's file")?,
        });
    }
    Ok(files)
}
