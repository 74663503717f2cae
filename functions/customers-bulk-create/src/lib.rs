//! `POST /api-customers-bulk-create`: imports up to 1000 customers per request. A customer whose
//! external_id is already stored is updated; every other one is created.

use domain::api::{self, Routed};
use domain::error::{ApiError, ErrorBody, ErrorCode};
use domain::ids::CustomerId;
use domain::tenant::Tenant;
use domain::upsert::{Action, MatchPolicy};
use edge::Env;
use edge::customer_upsert::{self, ItemOutcome};
use edge::{http, idempotency};
use serde::Serialize;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::CUSTOMERS_BULK_CREATE, req, env, bulk_create).await
}

async fn bulk_create(req: Request, env: Env, _: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    idempotency::once(req, &env, &tenant, http::BATCH_BODY_LIMIT, async |req| {
        import(req, &env, &tenant).await
    })
    .await
}

async fn import(mut req: Request, env: &Env, tenant: &Tenant) -> Result<Response, ApiError> {
    let body = http::read_batch_json(&mut req, http::BATCH_BODY_LIMIT).await?;
    let outcomes = customer_upsert::run(
        env,
        tenant,
        &http::origin(&req, env)?,
        MatchPolicy::ExternalIdOnly,
        body,
    )
    .await?;
    http::json(200, &BulkOut::from(outcomes))
}

/// The fields the seed's `importCustomers` reads (`created`, `updated`, `failed`, `errors`), and
/// the id of every stored customer so the CRM can keep its id mapping.
#[derive(Serialize)]
struct BulkOut {
    success: bool,
    total: usize,
    created: usize,
    updated: usize,
    failed: usize,
    customers: Vec<StoredOut>,
    errors: Vec<ErrorOut>,
}

#[derive(Serialize)]
struct StoredOut {
    index: usize,
    external_id: Option<String>,
    customer_id: CustomerId,
    action: Action,
}

#[derive(Serialize)]
struct ErrorOut {
    index: usize,
    external_id: Option<String>,
    code: ErrorCode,
    message: String,
    field: Option<String>,
}

impl From<Vec<ItemOutcome>> for BulkOut {
    fn from(outcomes: Vec<ItemOutcome>) -> Self {
        let total = outcomes.len();
        let mut customers = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for outcome in outcomes {
            match outcome.result {
                Ok(decision) => customers.push(StoredOut {
                    index: outcome.index,
                    external_id: outcome.external_id,
                    customer_id: decision.customer_id().clone(),
                    action: decision.action(),
                }),
                Err(ErrorBody { code, message, field }) => errors.push(ErrorOut {
                    index: outcome.index,
                    external_id: outcome.external_id,
                    code,
                    message,
                    field,
                }),
            }
        }
        let created = customers.iter().filter(|c| c.action == Action::Created).count();
        Self {
            success: errors.is_empty(),
            total,
            created,
            updated: customers.len() - created,
            failed: errors.len(),
            customers,
            errors,
        }
    }
}
