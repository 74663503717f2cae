//! `POST /api-customers-bulk-create`: imports up to 1000 customers per request, matched as the
//! sync matches them (external_id, then email, then phone: the guide's duplicate detection), and
//! answered as an import: totals, every stored customer's id, every failed item's error.

use domain::api::customers::{BulkOut, CUSTOMERS_BULK_CREATE, CustomersBulkCreate};
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
        &CUSTOMERS_BULK_CREATE,
        req,
        bindings,
        async |operation, call| match operation {
            CustomersBulkCreate::BulkCreateCustomers => call.run(import).await,
        },
    )
    .await
}

async fn import(
    tenant: Tenant,
    env: Env,
    Origin(origin): Origin,
    Batch(body): Batch<CustomersIn>,
) -> Result<Json<BulkOut>, ApiError> {
    let outcomes = customer_upsert::run(&env, &tenant, &origin, body).await?;
    Ok(Json(BulkOut::from(outcomes)))
}
