//! `POST /api-customers-batch-lookup`: many customers in one call, by any mix of keys, saying
//! which keys matched nothing and which could not be a key at all.

mod keys;

use domain::error::ApiError;
use edge::Env;
use edge::{DB, auth, db, http};
use worker::{Context, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, batch_lookup).await
}

async fn batch_lookup(mut req: Request, env: Env) -> Result<Response, ApiError> {
    http::require_method(&req, Method::Post, "POST")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let body: keys::LookupIn = http::read_json(&mut req, http::BATCH_BODY_LIMIT).await?;
    let request = keys::parse(body, tenant.default_country)?;
    let customers = db::customers::find_many(&env.d1(DB)?, &tenant, &request.keys()).await?;
    http::json(200, &request.answer(customers))
}
