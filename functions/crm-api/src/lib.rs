//! The CRM API a business calls with its API key: hand a conversation to a person in its CRMs
//! (`POST /api-escalations`), add an internal note there (`POST /api-crm-notes`), load a
//! customer's history from the CRM (`GET /api-crm-history`) and read the support analytics
//! (`GET /api-crm-analytics`). Escalations and notes are CRM work like any other: recorded, then
//! done by the sync consumer, so a CRM that is down delays them and loses none.

mod analytics;
mod history;
mod work;

use domain::api_legacy::{self as api, Operation, Routed};
use domain::error::ApiError;
use domain::tenant::Tenant;
use edge::Env;
use edge::{http, idempotency};
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::CRM_API, req, env, crm_api).await
}

async fn crm_api(req: Request, env: Env, routed: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    match routed.operation() {
        Operation::EscalateConversation => {
            idempotency::once(req, &env, &tenant, http::SMALL_BODY_LIMIT, async |req| {
                work::escalate(req, &env, &tenant).await
            })
            .await
        }
        Operation::AddCrmNote => {
            idempotency::once(req, &env, &tenant, http::SMALL_BODY_LIMIT, async |req| {
                work::note(req, &env, &tenant).await
            })
            .await
        }
        Operation::GetCrmHistory => history::load(&req, &env, &tenant).await,
        Operation::GetCrmAnalytics => analytics::report(&req, &env, &tenant).await,
        _ => Err(routed.not_served(&api::CRM_API)),
    }
}
