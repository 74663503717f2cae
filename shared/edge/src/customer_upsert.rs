//! The batch upsert behind `/api-customers-sync` and `/api-customers-bulk-create`.
//!
//! Two D1 round trips per attempt whatever the batch size: one read of the stored customers
//! that share a key with the batch, one write batch (a single transaction). If a concurrent
//! request takes one of our new keys between the two, the unique indexes reject our whole write,
//! and we plan again against what is now stored: the second request updates the customer the
//! first created instead of creating a twin.

use crate::Env;
use crate::db::Db;
use crate::db::Violation;
use crate::db::customers::{self, PlannedWrite};
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::{DB, outbox, runtime};
use domain::customer::{self, CustomerDraft};
use domain::error::{ApiError, ErrorBody, ErrorCode};
use domain::ids::CustomerId;
use domain::ids::EventId;
use domain::phone::Country;
use domain::tenant::Tenant;
use domain::upsert::{self, Decision, ItemOutcome, MatchPolicy};
use domain::webhooks::EventType;
use serde_json::value::RawValue;

pub use domain::upsert::MAX_BATCH;
const ATTEMPTS: usize = 3;

/// The batch as the request wrote it: each item kept as its text and parsed on its own
/// (`customer::parse_text`), so that one that is wrong fails alone.
pub type CustomersIn = domain::api::customers::CustomersIn<Box<RawValue>>;

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
    let (external_ids, drafts): (Vec<Option<String>>, Vec<Result<CustomerDraft, ErrorBody>>) = body
        .customers
        .iter()
        .map(|raw| customer::parse_text(raw.get(), country))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    let valid: Vec<&CustomerDraft> = drafts.iter().filter_map(|draft| draft.as_ref().ok()).collect();
    let fresh_ids: Vec<CustomerId> = runtime::randoms(drafts.len())?
        .into_iter()
        .map(CustomerId::generate)
        .collect();

    for _ in 0..ATTEMPTS {
        let known = customers::find_known(db, tenant, &valid).await?;
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
        match write(db, tenant, base_url, &writes).await? {
            Written::KeyTaken => continue,
            Written::With(event_ids) => {
                outbox::publish(env, tenant, event_ids).await;
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

enum Written {
    /// Everything was written; these `customer.*` events were recorded with it.
    With(Vec<EventId>),
    /// A unique key was taken by a concurrent writer after we read; nothing was written.
    KeyTaken,
}

/// Writes every planned customer and records a `customer.created` or `customer.updated` event
/// for each, in one D1 batch: one transaction and one round trip.
async fn write(
    db: &Db,
    tenant: &Tenant,
    base_url: &str,
    writes: &[PlannedWrite<'_>],
) -> Result<Written, ApiError> {
    let now = runtime::now();
    let mut statements = customers::write(db, tenant, now, writes)?;
    if statements.is_empty() {
        return Ok(Written::With(Vec::new()));
    }
    let events: Vec<NewEvent> = writes
        .iter()
        .zip(runtime::randoms(writes.len())?)
        .map(|(w, random)| {
            let kind = if w.is_new {
                EventType::CustomerCreated
            } else {
                EventType::CustomerUpdated
            };
            NewEvent::new(EventId::generate(random), kind, w.id)
        })
        .collect();
    let events_at = statements.len();
    statements.push(webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &events,
        Guard::SubjectUpdatedAt(now.to_rfc3339()),
    )?);
    match db.batch(statements).await {
        Ok(results) => Ok(Written::With(webhook_events::recorded(&results, events_at)?)),
        Err(error) if Violation::of(&error).is_some_and(|v| v.is_unique_on("customers")) => {
            Ok(Written::KeyTaken)
        }
        Err(error) => Err(ApiError::internal("writing customers", error)),
    }
}
