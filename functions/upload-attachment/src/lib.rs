//! `POST /api-upload-attachment` (multipart, field `file`): stores a file of at most 10 MB in R2
//! under the business and returns the attachment, whose `file_url` can be sent with a message.

use domain::api::messages::{UPLOAD_ATTACHMENT, UploadAttachment, UploadOut, UploadedOut};
use domain::error::{ApiError, ErrorCode};
use domain::media::{MAX_ATTACHMENT_BYTES, media_type_of};
use domain::tenant::Tenant;
use edge::Env;
use edge::messaging::media_store::{self, ATTACHMENTS};
use edge::platform::call::{self, Body, ContentType, Created, Origin};
use edge::runtime::Internal;
use edge::runtime::{Bindings, FormEntry, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &UPLOAD_ATTACHMENT,
        req,
        bindings,
        async |operation, call| match operation {
            UploadAttachment::UploadAttachment => {
                // Refused before the Idempotency-Key is claimed: a retry with the right type runs.
                multipart_only(call.request()?)?;
                call.run(upload).await.map_err(file_too_large)
            }
        },
    )
    .await
}

fn multipart_only(req: &Request) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get("content-type")
        .internal("reading a request header")?
        .unwrap_or_default();
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "send the file as multipart/form-data in a field named file",
    ))
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

async fn upload(
    tenant: Tenant,
    env: Env,
    Origin(origin): Origin,
    ContentType(content_type): ContentType,
    Body(body): Body,
) -> Result<Created<UploadOut>, ApiError> {
    let form = edge::runtime::parse_form(&origin, &content_type.unwrap_or_default(), body)
        .await
        .map_err(|_| ApiError::malformed("the multipart body could not be parsed"))?;
    let Some(FormEntry::File(file)) = form.get("file") else {
        return Err(ApiError::invalid(
            "file",
            "the form has no file in a field named file",
        ));
    };
    let bytes = file.bytes().await.internal("reading the request's body")?;
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(file_too_large(ApiError::payload_too_large(MAX_ATTACHMENT_BYTES)));
    }
    let mime_type = media_type_of(&file.type_(), &file.name(), &bytes)
        .map_err(|error| ApiError::new(ErrorCode::UnsupportedMediaType, error.to_string()).at("file"))?;
    let db = env.db()?;
    let attachment = media_store::store(
        &env.bucket_write(ATTACHMENTS).internal("R2")?,
        &db,
        &tenant,
        None,
        &file.name(),
        mime_type,
        bytes,
    )
    .await?;
    let attachment = attachment.with_download_url(&origin);
    Ok(Created(UploadOut {
        success: true,
        attachment: UploadedOut {
            file_url: attachment.download_url.unwrap_or_default(),
            id: attachment.id,
            filename: attachment.filename,
            mime_type: attachment.mime_type,
            size: attachment.size,
            created_at: attachment.created_at,
        },
    }))
}
