//! `GET /embed/inbox?token=`: the inbox a CRM puts in an iframe, showing one customer's
//! conversations on every channel, and the small JSON API the page itself calls
//! (`/embed/api/*`), authorised by the SSO token instead of an API key.
//!
//! The page and its assets answer as pages, misses included (a 404 or 405 page); the JSON API
//! answers as the API does.

mod api;
mod page;

use domain::api::Miss;
use domain::api::embed::{EMBED_INBOX, EmbedInbox};
use domain::error::ApiError;
use edge::platform::call;
use edge::runtime::Internal;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve_or(
        &EMBED_INBOX,
        req,
        bindings,
        missed,
        async |operation, call| match operation {
            EmbedInbox::GetEmbeddedInbox | EmbedInbox::HeadEmbeddedInbox => call.run(page::inbox).await,
            EmbedInbox::GetEmbedAssetCss | EmbedInbox::HeadEmbedAssetCss => {
                page::asset(page::Asset::Css).internal("making an answer")
            }
            EmbedInbox::GetEmbedAssetJs | EmbedInbox::HeadEmbedAssetJs => {
                page::asset(page::Asset::Js).internal("making an answer")
            }
            EmbedInbox::GetEmbedTimeline => call.run(api::timeline).await,
            EmbedInbox::PostEmbedReply => call.run(api::reply).await,
        },
    )
    .await
}

/// A method the JSON API does not take is the API's 405; any other miss is a page.
fn missed(miss: Miss, path: &str) -> Result<Response, ApiError> {
    match miss {
        Miss::NotAllowed(allow) if path.starts_with("/embed/api/") => {
            Err(ApiError::method_not_allowed(allow))
        }
        Miss::NotAllowed(_) => page::only_read().internal("making an answer"),
        Miss::NotFound => page::not_found().internal("making an answer"),
    }
}
