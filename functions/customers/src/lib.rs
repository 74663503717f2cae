//! `GET /api-customers?id=|external_id=|email=|phone=`: one customer, or 404.

use edge::{DB, auth, customers_repo, http};
use domain::error::ApiError;
use domain::lookup;
use worker::{Context, Env, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, get_customer).await
}

async fn get_customer(req: Request, env: Env) -> Result<Response, ApiError> {
    http::require_method(&req, Method::Get, "GET")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let key = lookup::key_from_query(&http::query_pairs(&req)?, tenant.default_country)?;
    match customers_repo::find_one(&env.d1(DB)?, &tenant, &key).await? {
        Some(customer) => http::json(200, &customer),
        None => Err(ApiError::not_found(format!(
            "no customer with {} {}",
            key.kind().name(),
            key.as_str()
        ))),
    }
}
