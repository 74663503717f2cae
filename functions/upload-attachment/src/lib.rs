//! `POST /api-upload-attachment` (multipart, field `file`): stores a file of at most 10 MB in R2
//! under the business and returns the attachment, whose `file_url` can be sent with a message.

use domain::api_legacy::{self as api, Routed};
use domain::error::{ApiError, ErrorCode};
use domain::ids::AttachmentId;
use domain::media::media_type_of;
use domain::tenant::Tenant;
use edge::Env;
use edge::media_store::{self, ATTACHMENTS, MAX_ATTACHMENT_BYTES};
use edge::{DB, http, idempotency};
use serde::Serialize;
use worker::wasm_bindgen::JsValue;
use worker::{Context, FormEntry, Method, Request, RequestInit, Response, event};

/// Room for the multipart boundaries and part headers around a file at the limit.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
const BODY_LIMIT: usize = MAX_ATTACHMENT_BYTES + MULTIPART_OVERHEAD;

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::UPLOAD_ATTACHMENT, req, env, upload).await
}

#[derive(Serialize)]
struct UploadOut {
    success: bool,
    attachment: AttachmentOut,
}

#[derive(Serialize)]
struct AttachmentOut {
    id: AttachmentId,
    file_url: String,
    filename: String,
    #[serde(rename = "type")]
    mime_type: String,
    size: i64,
    created_at: String,
}

/// A body over the limit, said of the file it carries.
fn file_too_large(error: ApiError) -> ApiError {
    if error.code() != ErrorCode::PayloadTooLarge {
        return error;
    }
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("files are at most {} MB", MAX_ATTACHMENT_BYTES / (1024 * 1024)),
    )
    .at("file")
}

async fn upload(req: Request, env: Env, _: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the file as multipart/form-data in a field named file",
        ));
    }
    idempotency::once(req, &env, &tenant, BODY_LIMIT, async |req| {
        store(req, &env, &tenant, &content_type).await
    })
    .await
    .map_err(file_too_large)
}

async fn store(
    mut req: Request,
    env: &Env,
    tenant: &Tenant,
    content_type: &str,
) -> Result<Response, ApiError> {
    let body = http::read_body(&mut req, BODY_LIMIT)
        .await
        .map_err(file_too_large)?;
    let form = parse_form(req.url()?.as_ref(), content_type, body).await?;
    let Some(FormEntry::File(file)) = form.get("file") else {
        return Err(ApiError::invalid(
            "file",
            "the form has no file in a field named file",
        ));
    };
    let bytes = file.bytes().await?;
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(file_too_large(ApiError::payload_too_large(MAX_ATTACHMENT_BYTES)));
    }
    let mime_type = media_type_of(&file.type_(), &file.name(), &bytes)
        .map_err(|error| ApiError::new(ErrorCode::UnsupportedMediaType, error.to_string()).at("file"))?;
    let db = env.d1(DB)?;
    let attachment = media_store::store(
        &env.bucket(ATTACHMENTS)?,
        &db,
        tenant,
        None,
        &file.name(),
        mime_type,
        bytes,
    )
    .await?;
    let attachment = attachment.with_download_url(&http::origin(&req, env)?);
    http::json(
        201,
        &UploadOut {
            success: true,
            attachment: AttachmentOut {
                file_url: attachment.download_url.unwrap_or_default(),
                id: attachment.id,
                filename: attachment.filename,
                mime_type: attachment.mime_type,
                size: attachment.size,
                created_at: attachment.created_at,
            },
        },
    )
}

/// Parses a multipart body already read within the limit (the runtime's parser takes a request).
async fn parse_form(url: &str, content_type: &str, body: Vec<u8>) -> Result<worker::FormData, ApiError> {
    let headers = worker::Headers::new();
    headers.set("content-type", content_type)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from(worker::js_sys::Uint8Array::from(
            body.as_slice(),
        ))));
    Request::new_with_init(url, &init)?
        .form_data()
        .await
        .map_err(|_| ApiError::malformed("the multipart body could not be parsed"))
}
