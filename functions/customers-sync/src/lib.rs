//! `POST /api-customers-sync`: the smart upsert. Each customer is matched by external_id, then
//! email, then phone, and updated, or created when nothing matches.

use domain::api::{self, Routed};
use domain::error::{ApiError, ErrorBody};
use domain::ids::CustomerId;
use domain::tenant::Tenant;
use domain::upsert::{Action, MatchPolicy, MatchedBy};
use edge::Env;
use edge::customer_upsert::{self, ItemOutcome};
use edge::{http, idempotency};
use serde::Serialize;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::CUSTOMERS_SYNC, req, env, sync).await
}

async fn sync(req: Request, env: Env, _: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    idempotency::once(req, &env, &tenant, http::BATCH_BODY_LIMIT, async |req| {
        upsert(req, &env, &tenant).await
    })
    .await
}

async fn upsert(mut req: Request, env: &Env, tenant: &Tenant) -> Result<Response, ApiError> {
    let body = http::read_batch_json(&mut req, http::BATCH_BODY_LIMIT).await?;
    let outcomes = customer_upsert::run(
        env,
        tenant,
        &http::origin(&req, env)?,
        MatchPolicy::ExternalIdThenEmailThenPhone,
        body,
    )
    .await?;
    http::json(200, &SyncOut::from(outcomes))
}

/// The seed's response: `success`, then `results` with counts and one detail per item.
#[derive(Serialize)]
struct SyncOut {
    /// True when every item was stored.
    success: bool,
    results: ResultsOut,
}

#[derive(Serialize)]
struct ResultsOut {
    total: usize,
    created: usize,
    updated: usize,
    failed: usize,
    details: Vec<DetailOut>,
}

#[derive(Serialize)]
struct DetailOut {
    index: usize,
    external_id: Option<String>,
    customer_id: Option<CustomerId>,
    action: Action,
    matched_by: Option<MatchedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

impl From<Vec<ItemOutcome>> for SyncOut {
    fn from(outcomes: Vec<ItemOutcome>) -> Self {
        let details: Vec<DetailOut> = outcomes
            .into_iter()
            .map(|outcome| match outcome.result {
                Ok(decision) => DetailOut {
                    index: outcome.index,
                    external_id: outcome.external_id,
                    customer_id: Some(decision.customer_id().clone()),
                    action: decision.action(),
                    matched_by: decision.matched_by(),
                    error: None,
                },
                Err(error) => DetailOut {
                    index: outcome.index,
                    external_id: outcome.external_id,
                    customer_id: None,
                    action: Action::Failed,
                    matched_by: None,
                    error: Some(error),
                },
            })
            .collect();
        let count = |action: Action| details.iter().filter(|detail| detail.action == action).count();
        let (created, updated, failed) = (
            count(Action::Created),
            count(Action::Updated),
            count(Action::Failed),
        );
        Self {
            success: failed == 0,
            results: ResultsOut {
                total: details.len(),
                created,
                updated,
                failed,
                details,
            },
        }
    }
}
