//! `GET /api/download-media?id=`: an attachment's bytes, only to the business that owns it:
//! with its `x-api-key`, or with a signed link (`expires`, `signature`) made for webhooks and
//! the embedded inbox, which works for one attachment until it expires.

use domain::api::messages::{DOWNLOAD_MEDIA, DownloadMedia};
use domain::error::ApiError;
use domain::ids::AttachmentId;
use domain::media;
use edge::Env;
use edge::messaging::media_store::ATTACHMENTS;
use edge::platform::call;
use edge::runtime::Internal;
use edge::runtime::{Bindings, Headers, Request, Response};
use edge::{db, platform::auth, platform::http, runtime};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &DOWNLOAD_MEDIA,
        req,
        bindings,
        async |operation, call| match operation {
            DownloadMedia::DownloadMedia => call.run(download).await,
        },
    )
    .await
}

/// Takes the request whole: its caller is checked here, by a signed link or an API key.
async fn download(req: Request, env: Env) -> Result<Response, ApiError> {
    let query = http::query(&req);
    let id = query.get("id").and_then(AttachmentId::parse).ok_or_else(|| {
        ApiError::invalid(
            "id",
            "id is the attachment id returned by the upload or a message",
        )
    })?;
    let not_found = || ApiError::not_found(format!("no attachment {id}"));
    let db = env.db()?;
    // The caller is checked before anything is read: a link by its expiry, a key by its lookup.
    let stored = match (query.get("signature"), query.get("expires")) {
        (Some(signature), Some(expires)) => {
            let refused = || {
                ApiError::new(
                    domain::error::ErrorCode::Forbidden,
                    "this download link is invalid or has expired",
                )
            };
            let expires = expires.trim().parse::<i64>().map_err(|_| refused())?;
            let now = runtime::now().seconds();
            if media::link_expired(expires, now) {
                return Err(refused());
            }
            let links = env.required_media_links()?;
            let stored = db::attachments::for_download(&db, &id).await?;
            let valid = stored
                .as_ref()
                .is_some_and(|stored| links.verify(&stored.business_id, &id, expires, signature, now));
            if !valid {
                return Err(refused());
            }
            stored
        }
        _ => {
            let tenant = auth::authenticate(&req, &env).await?.tenant;
            // Another business's attachment is as absent as one that does not exist.
            db::attachments::for_download(&db, &id)
                .await?
                .filter(|stored| stored.business_id == tenant.business_id)
        }
    };
    let stored = stored.ok_or_else(not_found)?;
    let object = env
        .bucket_read(ATTACHMENTS)
        .internal("R2")?
        .get(&stored.storage_key)
        .execute()
        .await
        .internal("R2")?
        .ok_or_else(not_found)?;
    let body = object
        .body()
        .ok_or_else(not_found)?
        .response_body()
        .internal("R2")?;
    let headers = Headers::new();
    headers
        .set("content-type", &stored.mime_type)
        .internal("setting a header")?;
    headers
        .set(
            "content-disposition",
            &media::content_disposition(&stored.filename),
        )
        .internal("setting a header")?;
    headers
        .set("cache-control", "private, no-store")
        .internal("setting a header")?;
    headers
        .set("x-content-type-options", "nosniff")
        .internal("setting a header")?;
    Ok(Response::from_body(body)
        .internal("making an answer")?
        .with_headers(headers))
}
