//! `GET /embed/inbox?token=`: the inbox a CRM puts in an iframe, showing one customer's
//! conversations on every channel, and the small JSON API the page itself calls
//! (`/embed/api/*`), authorised by the SSO token instead of an API key.

mod api;
mod page;

use edge::Env;
use edge::http;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    let path = req.path();
    match path.trim_end_matches('/') {
        "/embed/inbox" => {
            let env = Env::new(env, "fetch");
            let page = page::inbox(&req, &env).await;
            env.report();
            page
        }
        "/embed/assets/inbox.css" => page::asset(&req, page::Asset::Css),
        "/embed/assets/inbox.js" => page::asset(&req, page::Asset::Js),
        "/embed/api/timeline" => http::serve(req, env, api::timeline).await,
        "/embed/api/reply" => http::serve(req, env, api::reply).await,
        _ => page::not_found(),
    }
}
