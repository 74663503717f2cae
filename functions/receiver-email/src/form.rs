//! The POST as a form: multipart (a mail with files) or URL-encoded, never more than the body
//! limit, parsed by the runtime's own `FormData`.

use domain::error::{ApiError, ErrorCode};
use domain::providers::mailgun::webhook::{self as mailgun, Attachment, Fields};
use edge::http;
use worker::js_sys::Uint8Array;
use worker::{FormData, FormEntry, Headers, Method, Request, RequestInit};

/// Reads the form, refusing a body over Mailgun's limit. A declared length is checked before
/// anything is read and the runtime parses the body as it streams; a body of undeclared length
/// is read up to the limit first.
pub async fn read(req: &mut Request) -> Result<FormData, ApiError> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if kind != "multipart/form-data" && kind != "application/x-www-form-urlencoded" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Mailgun forwards mail as multipart/form-data or application/x-www-form-urlencoded",
        ));
    }
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|length| length.trim().parse::<usize>().ok());
    let form = match declared {
        Some(length) if length > mailgun::BODY_LIMIT => {
            return Err(ApiError::payload_too_large(mailgun::BODY_LIMIT));
        }
        Some(_) => req.form_data().await,
        None => {
            let body = http::read_body(req, mailgun::BODY_LIMIT).await?;
            let headers = Headers::new();
            headers.set("content-type", &content_type)?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_headers(headers)
                .with_body(Some(Uint8Array::from(body.as_slice()).into()));
            Request::new_with_init(req.url()?.as_str(), &init)?
                .form_data()
                .await
        }
    };
    form.map_err(|_| ApiError::malformed("the request body is not a well-formed form"))
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
