//! `POST /api-customers-batch-lookup`: many customers in one call, by any mix of keys, saying
//! which keys matched nothing and which could not be a key at all (`domain::batch_lookup`).

use domain::api::customers::{CUSTOMERS_BATCH_LOOKUP, CustomersBatchLookup};
use domain::batch_lookup::{self, LookupIn, LookupOut};
use domain::error::ApiError;
use domain::tenant::Tenant;
use edge::platform::call::{self, Json};
use edge::runtime::{Bindings, Request, Response};
use edge::{Env, db};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &CUSTOMERS_BATCH_LOOKUP,
        req,
        bindings,
        async |operation, call| match operation {
            CustomersBatchLookup::BatchLookupCustomers => call.run(batch_lookup).await,
        },
    )
    .await
}

async fn batch_lookup(
    tenant: Tenant,
    env: Env,
    Json(body): Json<LookupIn>,
) -> Result<Json<LookupOut>, ApiError> {
    let request = batch_lookup::parse(body, tenant.default_country)?;
    let customers = db::customers::find_many(&env.db()?, &tenant, &request.keys()).await?;
    Ok(Json(request.answer(customers)))
}
