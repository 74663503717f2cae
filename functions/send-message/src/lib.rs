//! `POST /api-send-message`: a CRM sends a message to one of its customers on a channel.
//!
//! The message is stored `queued` and handed to the dispatcher over a queue; the answer (202)
//! comes before any provider is called, so a slow or failing provider never holds up the CRM.
//! The client follows the message to `sent` or `failed` through `/api-messages-since`.

mod request;
mod send;

use shared::edge::http;
use worker::{Context, Env, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, send::send_message).await
}
