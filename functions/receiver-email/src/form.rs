//! The POST as a form: its body read once (never more than Mailgun's limit), its signature
//! fields scanned from the bytes, and only after they were verified the whole form parsed by the
//! runtime's own `FormData`.

use domain::error::ApiError;
use domain::providers::mailgun::signed_fields::{self, FormType, SignatureFields};
use domain::providers::mailgun::webhook::{self as mailgun, Attachment, Fields, SignedToken};
use edge::http;
use edge::runtime::{FormData, FormEntry, Request};

/// A POST's body, read but not yet parsed.
pub struct RawForm {
    content_type: String,
    form_type: FormType,
    body: Vec<u8>,
}

/// Reads the body: 415 for anything but a form, before reading; 413 for a body over Mailgun's
/// limit, before reading when its length is declared and as soon as it passes the limit when not.
pub async fn read(req: &mut Request) -> Result<RawForm, ApiError> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let form_type = FormType::parse(&content_type)?;
    let body = http::read_body(req, mailgun::BODY_LIMIT).await?;
    Ok(RawForm {
        content_type,
        form_type,
        body,
    })
}

impl RawForm {
    /// The signature fields, found without parsing the form.
    pub fn signature_fields(&self) -> Result<SignatureFields, ApiError> {
        signed_fields::scan(&self.form_type, &self.body)
    }

    /// The whole form, parsed by the runtime. It takes the verified token so that it cannot be
    /// called before the signature was checked.
    pub async fn parse(self, url: &str, _verified: &SignedToken) -> Result<FormData, ApiError> {
        edge::runtime::parse_form(url, &self.content_type, self.body)
            .await
            .map_err(|_| ApiError::malformed("the request body is not a well-formed form"))
    }
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
            bytes: file.bytes().await?,
        });
    }
    Ok(files)
}
