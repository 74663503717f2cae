//! The batch upsert behind `/api-customers-sync` and `/api-customers-bulk-create`.
//!
//! Two D1 round trips per attempt whatever the batch size: one read of the stored customers
//! that share a key with the batch, one write batch (a single transaction). If a concurrent
//! request takes one of our new keys between the two, the unique indexes reject our whole write,
//! and we plan again against what is now stored: the second request updates the customer the
//! first created instead of creating a twin.

use domain::customer::{self, CustomerDraft};
use crate::auth::Tenant;
use crate::customers_repo::{self, PlannedWrite, WriteOutcome};
use crate::{DB, events, runtime};
use domain::error::{ApiError, ErrorBody, ErrorCode};
use domain::ids::CustomerId;
use domain::phone::Country;
use domain::upsert::{self, Decision, MatchPolicy};
use serde::Deserialize;
use serde_json::Value;
use worker::Env;

/// The most customers one request may carry.
pub const MAX_BATCH: usize = 1000;
const ATTEMPTS: usize = 3;

#[derive(Debug, Deserialize)]
pub struct CustomersIn {
    pub customers: Vec<Value>,
    /// Overrides the business's default country for phones in national form, for this request.
    #[serde(default)]
    pub default_country: Option<String>,
}

/// What happened to one item of the batch, at its position in the request.
#[derive(Debug)]
pub struct ItemOutcome {
    pub index: usize,
    pub external_id: Option<String>,
    pub result: Result<Decision, ErrorBody>,
}

/// Checks the envelope: item count and the optional country override.
pub fn check_batch(body: &CustomersIn, tenant: &Tenant) -> Result<Option<Country>, ApiError> {
    if body.customers.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "at most {MAX_BATCH} customers per request, got {}; send them in batches",
                body.customers.len()
            ),
        )
        .at("customers"));
    }
    match body
        .default_country
        .as_deref()
        .map(str::trim)
        .filter(|code| !code.is_empty())
    {
        None => Ok(tenant.default_country),
        Some(code) => Country::parse(code)
            .map(Some)
            .map_err(|error| ApiError::invalid("default_country", error.to_string())),
    }
}

/// Plans and writes the batch, then publishes the `customer.*` events it recorded.
/// `base_url`: the deployment's public origin.
pub async fn run(
    env: &Env,
    tenant: &Tenant,
    base_url: &str,
    policy: MatchPolicy,
    body: CustomersIn,
) -> Result<Vec<ItemOutcome>, ApiError> {
    let db = &env.d1(DB)?;
    let country = check_batch(&body, tenant)?;
    let external_ids: Vec<Option<String>> = body.customers.iter().map(customer::external_id_of).collect();
    let drafts: Vec<Result<CustomerDraft, ErrorBody>> = body
        .customers
        .into_iter()
        .map(|raw| customer::parse(raw, country))
        .collect();
    let valid: Vec<&CustomerDraft> = drafts.iter().filter_map(|draft| draft.as_ref().ok()).collect();
    let fresh_ids = drafts
        .iter()
        .map(|_| runtime::random::<16>().map(CustomerId::generate))
        .collect::<Result<Vec<_>, _>>()?;

    for _ in 0..ATTEMPTS {
        let known = customers_repo::find_known(db, tenant, &valid).await?;
        let plan = upsert::plan(policy, known, &drafts, &fresh_ids);
        let writes: Vec<PlannedWrite> = plan
            .decisions
            .iter()
            .zip(&plan.steps)
            .zip(&drafts)
            .filter_map(|((decision, &step), draft)| {
                let (decision, draft) = (decision.as_ref().ok()?, draft.as_ref().ok()?);
                let is_new = matches!(decision, Decision::Create(_));
                Some(PlannedWrite {
                    step,
                    id: decision.customer_id(),
                    draft,
                    is_new,
                })
            })
            .collect();
        match customers_repo::write(db, tenant, runtime::now(), Some(base_url), &writes).await? {
            WriteOutcome::KeyTaken => continue,
            WriteOutcome::Written(event_ids) => {
                events::publish(env, tenant, event_ids).await;
                return Ok(plan
                    .decisions
                    .into_iter()
                    .zip(external_ids)
                    .enumerate()
                    .map(|(index, (result, external_id))| ItemOutcome {
                        index,
                        external_id,
                        result,
                    })
                    .collect());
            }
        }
    }
    Err(ApiError::conflict(
        "these customers were being changed by other requests at the same time; retry the request",
    ))
}
