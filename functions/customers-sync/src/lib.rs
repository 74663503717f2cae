//! `POST /api-customers-sync`: the smart upsert. Each customer is matched by external_id, then
//! email, then phone, and updated, or created when nothing matches.

use domain::api::customers::{CUSTOMERS_SYNC, CustomersSync, SyncOut};
use domain::error::ApiError;
use domain::tenant::Tenant;
use edge::Env;
use edge::messaging::customer_upsert::{self, CustomersIn};
use edge::platform::call::{self, Batch, Json, Origin};
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &CUSTOMERS_SYNC,
        req,
        bindings,
        async |operation, call| match operation {
            CustomersSync::SyncCustomers => call.run(sync).await,
        },
    )
    .await
}

async fn sync(
    tenant: Tenant,
    env: Env,
    Origin(origin): Origin,
    Batch(body): Batch<CustomersIn>,
) -> Result<Json<SyncOut>, ApiError> {
    let outcomes = customer_upsert::run(&env, &tenant, &origin, body).await?;
    Ok(Json(SyncOut::from(outcomes)))
}
