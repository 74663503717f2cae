//! `POST /api-sso-generate-token` and `POST /api-sso-revoke-token`: a CRM, with its API key,
//! gets a short-lived token that opens the embedded inbox of one customer, and can revoke it.

mod tokens;

use domain::api_legacy::{self as api, Operation, Routed};
use domain::error::ApiError;
use domain::tenant::Tenant;
use edge::Env;
use edge::http;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::SSO_TOKEN, req, env, sso).await
}

async fn sso(req: Request, env: Env, routed: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    match routed.operation() {
        Operation::GenerateSsoToken => tokens::generate(req, env, tenant).await,
        Operation::RevokeSsoToken => tokens::revoke(req, env, tenant).await,
        _ => Err(routed.not_served(&api::SSO_TOKEN)),
    }
}
