//! `GET /api-customers?id=|external_id=|email=|phone=`: one customer, or 404.

use domain::error::ApiError;
use domain::identify::{Name, identify};
use edge::{DB, auth, db, http};
use worker::{Context, Env, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, get_customer).await
}

async fn get_customer(req: Request, env: Env) -> Result<Response, ApiError> {
    http::require_method(&req, Method::Get, "GET")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let query = http::query(&req)?;
    let phone = query.phone("phone");
    let named = identify(
        &[
            (Name::Id, query.get("id")),
            (Name::ExternalId, query.get("external_id")),
            (Name::Email, query.get("email")),
            (Name::Phone, phone.as_deref()),
        ],
        tenant.default_country,
    )?;
    let customer = db::customers::first_named(&env.d1(DB)?, &tenant, &named.keys, &named.named_by).await?;
    http::json(200, &customer)
}
