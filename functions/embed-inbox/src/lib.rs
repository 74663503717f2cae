//! `GET /embed/inbox?token=`: the inbox a CRM puts in an iframe, showing one customer's
//! conversations on every channel, and the small JSON API the page itself calls
//! (`/embed/api/*`), authorised by the SSO token instead of an API key.

mod api;
mod page;

use domain::api_legacy::{EMBED_INBOX, Function, Miss, Operation};
use domain::error::ApiError;
use edge::Env;
use edge::http;
use worker::{Context, Request, Response, event};

const FUNCTION: &Function = &EMBED_INBOX;

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    let routed = match domain::api_legacy::route(FUNCTION, req.method().as_ref(), &path) {
        Ok(routed) => routed,
        Err(Miss::NotAllowed(allow)) if path.starts_with("/embed/api/") => {
            return http::error_response(&ApiError::method_not_allowed(allow));
        }
        Err(Miss::NotAllowed(_)) => return page::only_read(),
        Err(Miss::NotFound) => return page::not_found(),
    };
    match routed.operation() {
        Operation::GetEmbeddedInbox | Operation::HeadEmbeddedInbox => {
            let env = Env::new(env, "fetch");
            let page = page::inbox(&req, &env).await;
            env.report();
            page
        }
        Operation::GetEmbedAssetCss | Operation::HeadEmbedAssetCss => page::asset(page::Asset::Css),
        Operation::GetEmbedAssetJs | Operation::HeadEmbedAssetJs => page::asset(page::Asset::Js),
        Operation::GetEmbedTimeline => http::serve(req, env, api::timeline).await,
        Operation::PostEmbedReply => http::serve(req, env, api::reply).await,
        _ => http::error_response(&routed.not_served(FUNCTION)),
    }
}
