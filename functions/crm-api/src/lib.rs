//! The CRM API a business calls with its API key: hand a conversation to a person in its CRMs
//! (`POST /api-escalations`), add an internal note there (`POST /api-crm-notes`), load a
//! customer's history from the CRM (`GET /api-crm-history`) and read the support analytics
//! (`GET /api-crm-analytics`). Escalations and notes are CRM work like any other: recorded, then
//! done by the sync consumer, so a CRM that is down delays them and loses none.

mod analytics;
mod history;
mod work;

use domain::error::ApiError;
use edge::Env;
use edge::{auth, http, idempotency};
use worker::{Context, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, crm_api).await
}

async fn crm_api(req: Request, env: Env) -> Result<Response, ApiError> {
    let path = req.path();
    let (method, allow) = match path.trim_end_matches('/') {
        "/api-escalations" | "/api-crm-notes" => (Method::Post, "POST"),
        "/api-crm-history" | "/api-crm-analytics" => (Method::Get, "GET"),
        _ => return Err(ApiError::not_found(format!("no such path: {path}"))),
    };
    http::require_method(&req, method, allow)?;
    let tenant = auth::authenticate(&req, &env).await?;
    match path.trim_end_matches('/') {
        "/api-escalations" => {
            idempotency::once(req, &env, &tenant, http::SMALL_BODY_LIMIT, async |req| {
                work::escalate(req, &env, &tenant).await
            })
            .await
        }
        "/api-crm-notes" => {
            idempotency::once(req, &env, &tenant, http::SMALL_BODY_LIMIT, async |req| {
                work::note(req, &env, &tenant).await
            })
            .await
        }
        "/api-crm-history" => history::load(&req, &env, &tenant).await,
        _ => analytics::report(&req, &env, &tenant).await,
    }
}
