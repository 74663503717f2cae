//! `POST /api-sso-generate-token` and `POST /api-sso-revoke-token`: a CRM, with its API key,
//! gets a short-lived token that opens the embedded inbox of one customer, and can revoke it.

mod tokens;

use domain::error::ApiError;
use edge::Env;
use edge::http;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, route).await
}

async fn route(req: Request, env: Env) -> Result<Response, ApiError> {
    match req.path().trim_end_matches('/') {
        "/api-sso-generate-token" => tokens::generate(req, env).await,
        "/api-sso-revoke-token" => tokens::revoke(req, env).await,
        path => Err(ApiError::not_found(format!("no endpoint at {path}"))),
    }
}
