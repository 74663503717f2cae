//! `POST /api-customers-batch-lookup`: many customers in one call, by any mix of keys, saying
//! which keys matched nothing and which could not be a key at all.

mod keys;

use domain::api::{self, Routed};
use domain::error::ApiError;
use domain::tenant::Tenant;
use edge::Env;
use edge::{DB, db, http};
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::CUSTOMERS_BATCH_LOOKUP, req, env, batch_lookup).await
}

async fn batch_lookup(mut req: Request, env: Env, _: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    let body: keys::LookupIn = http::read_json(&mut req, http::BATCH_BODY_LIMIT).await?;
    let request = keys::parse(body, tenant.default_country)?;
    let customers = db::customers::find_many(&env.d1(DB)?, &tenant, &request.keys()).await?;
    http::json(200, &request.answer(customers))
}
