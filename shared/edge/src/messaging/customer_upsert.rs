//! The batch upsert behind `/api-customers-sync` and `/api-customers-bulk-create`.
//!
//! Two D1 round trips per attempt whatever the batch size: one read of the stored customers
//! that share a key with the batch, one write batch (a single transaction). If a concurrent
//! request takes one of our new keys between the two, the unique indexes reject our whole write,
//! and we plan again against what is now stored: the second request updates the customer the
//! first created instead of creating a twin.
//!
//! A small batch whose items would all be new makes its first write in the read's own batch, as
//! if the read found nothing, guarded by the same condition (`customers::create_unless_known`):
//! when nothing the batch names is stored, that one round trip is the whole sync; otherwise it
//! wrote nothing, and the sync goes on from what the read found. A CRM pushing one change at a
//! time (its webhook, a person's edit) creates customers this way in one round trip.

use crate::Env;
use crate::db::customers::{self, PlannedWrite};
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{self, Batch, Db, Read};
use crate::{events::outbox, runtime};
use domain::customer::{self, CustomerDraft};
use domain::error::{ApiError, ErrorBody, ErrorCode};
use domain::ids::CustomerId;
use domain::ids::EventId;
use domain::phone::Country;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::upsert::{self, Decision, ItemOutcome, KnownCustomer, Plan};
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
    body: CustomersIn,
) -> Result<Vec<ItemOutcome>, ApiError> {
    let db = &env.db()?;
    let country = check_batch(&body, tenant)?;
    let (external_ids, drafts) = read_items(&body, country)?;
    let valid: Vec<&CustomerDraft> = drafts.iter().filter_map(|draft| draft.as_ref().ok()).collect();
    let fresh_ids = fresh_ids(drafts.len())?;

    for attempt in 0..ATTEMPTS {
        let known = if attempt == 0 && drafts.len() <= WRITE_FIRST_ITEMS {
            match write_first(db, tenant, base_url, &drafts, &valid, &fresh_ids).await? {
                First::Created(plan, event_ids) => {
                    outbox::publish(env, tenant, event_ids).await;
                    return Ok(outcomes(plan, external_ids));
                }
                First::Known(known) => known,
            }
        } else {
            customers::find_known(db, tenant, &valid).await?
        };
        let plan = upsert::plan(known, &drafts, &fresh_ids);
        let writes = planned_writes(&plan, &drafts);
        match write(db, tenant, base_url, &writes).await? {
            Written::KeyTaken => continue,
            Written::With(event_ids) => {
                outbox::publish(env, tenant, event_ids).await;
                return Ok(outcomes(plan, external_ids));
            }
        }
    }
    Err(ApiError::conflict(
        "these customers were being changed by other requests at the same time; retry the request",
    ))
}

/// Each item of the batch as its external id (to name it in the answer even when it failed) and
/// its draft or what is wrong with it, in request order.
pub type Items = (Vec<Option<String>>, Vec<Result<CustomerDraft, ErrorBody>>);

/// Reads and validates every item of the batch on its own.
pub fn read_items(body: &CustomersIn, country: Option<Country>) -> Result<Items, ApiError> {
    Ok(body
        .customers
        .iter()
        .map(|raw| customer::parse_text(raw.get(), country))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip())
}

/// One id drawn for each item, taken by the item if it creates a customer.
pub fn fresh_ids(count: usize) -> Result<Vec<CustomerId>, ApiError> {
    Ok(runtime::randoms(count)?
        .into_iter()
        .map(CustomerId::generate)
        .collect())
}

/// The customers the plan writes, in request order, each with the step the plan gave it.
pub fn planned_writes<'a>(
    plan: &'a Plan,
    drafts: &'a [Result<CustomerDraft, ErrorBody>],
) -> Vec<PlannedWrite<'a>> {
    plan.decisions
        .iter()
        .zip(&plan.steps)
        .zip(&plan.rekeys)
        .zip(drafts)
        .filter_map(|(((decision, &step), &rekeys), draft)| {
            let (decision, draft) = (decision.as_ref().ok()?, draft.as_ref().ok()?);
            let is_new = matches!(decision, Decision::Create(_));
            Some(PlannedWrite {
                step,
                id: decision.customer_id(),
                draft,
                is_new,
                rekeys,
            })
        })
        .collect()
}

/// A `customer.created` or `customer.updated` event for each write, with the ids drawn for them.
pub fn events_of(writes: &[PlannedWrite<'_>], randoms: Vec<[u8; 16]>) -> Vec<NewEvent> {
    writes
        .iter()
        .zip(randoms)
        .map(|(w, random)| {
            let kind = if w.is_new {
                EventType::CustomerCreated
            } else {
                EventType::CustomerUpdated
            };
            NewEvent::new(EventId::generate(random), kind, w.id)
        })
        .collect()
}

/// Every item's fate at its position in the request, as the answer reports it.
pub fn outcomes(plan: Plan, external_ids: Vec<Option<String>>) -> Vec<ItemOutcome> {
    plan.decisions
        .into_iter()
        .zip(external_ids)
        .enumerate()
        .map(|(index, (result, external_id))| ItemOutcome {
            index,
            external_id,
            result,
        })
        .collect()
}

/// Batches of at most this many items make their first write before the stored customers are
/// known ([`write_first`]). When something is stored after all, that write cost the planning and
/// the statement of every item for nothing: microseconds for a few items, milliseconds for a
/// thousand.
const WRITE_FIRST_ITEMS: usize = 25;

enum First {
    /// Nothing the batch names was stored: every customer was created, these events recorded.
    Created(Plan, Vec<EventId>),
    /// Nothing was written; these customers share a key with the batch.
    Known(Vec<KnownCustomer>),
}

/// One D1 batch that reads the stored customers sharing a key with the batch and, unless it finds
/// any, creates every item's customer and records its `customer.created` event, as planned
/// against nothing stored. A plan that is not creates alone reads first, as a larger batch does.
async fn write_first(
    db: &Db,
    tenant: &Tenant,
    base_url: &str,
    drafts: &[Result<CustomerDraft, ErrorBody>],
    valid: &[&CustomerDraft],
    fresh_ids: &[CustomerId],
) -> Result<First, ApiError> {
    let plan = upsert::plan(Vec::new(), drafts, fresh_ids);
    let writes = planned_writes(&plan, drafts);
    let now = runtime::now();
    let Some(create) = customers::create_unless_known(db, tenant, now, &writes, valid)? else {
        return Ok(First::Known(customers::find_known(db, tenant, valid).await?));
    };
    let mut batch = Batch::default();
    let known = batch.read(customers::find_known_statement(db, tenant, valid)?);
    batch.push([create]);
    // None when the guard held: it records events of customers written now only.
    let recorded = batch.read(recording(db, tenant, base_url, now, &writes)?);
    let answers = match batch.run(db).await {
        Ok(answers) => answers,
        // Should a key clash all the same, nothing was written: read, then plan and write.
        Err(error) if key_taken(&error) => {
            return Ok(First::Known(customers::find_known(db, tenant, valid).await?));
        }
        Err(error) => return Err(ApiError::from(error).doing("writing customers")),
    };
    let known = answers.take(known)?;
    if !known.is_empty() {
        return Ok(First::Known(known));
    }
    Ok(First::Created(plan, answers.take(recorded)?))
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
    let statements = customers::write(db, tenant, now, writes)?;
    if statements.is_empty() {
        return Ok(Written::With(Vec::new()));
    }
    let mut batch = Batch::default();
    batch.push(statements);
    let recorded = batch.read(recording(db, tenant, base_url, now, writes)?);
    match batch.run(db).await {
        Ok(answers) => Ok(Written::With(answers.take(recorded)?)),
        Err(error) if key_taken(&error) => Ok(Written::KeyTaken),
        Err(error) => Err(ApiError::from(error).doing("writing customers")),
    }
}

/// The statement that records a `customer.created` or `customer.updated` event for each write,
/// of the customers its batch wrote at `now` only (`Guard::SubjectUpdatedAt`).
fn recording(
    db: &Db,
    tenant: &Tenant,
    base_url: &str,
    now: Timestamp,
    writes: &[PlannedWrite<'_>],
) -> Result<Read<Vec<EventId>>, ApiError> {
    let events = events_of(writes, runtime::randoms(writes.len())?);
    webhook_events::record(
        db,
        tenant,
        Some(base_url),
        now,
        &events,
        Guard::SubjectUpdatedAt(now.to_rfc3339()),
    )
}

/// Whether a write batch failed on a customer's unique key: it wrote nothing.
fn key_taken(error: &db::Error) -> bool {
    error.is_unique_on("customers")
}

#[cfg(test)]
mod cpu_profile;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::outbox::{WEBHOOKS, WebhookTask};
    use crate::testing::Fixture;
    use domain::upsert::MatchedBy;
    use serde_json::{Value, json};

    fn batch(body: Value) -> CustomersIn {
        serde_json::from_value(body).unwrap_or_else(|error| panic!("{error}"))
    }

    async fn sync(fixture: &Fixture, tenant: &Tenant, body: Value) -> Result<Vec<ItemOutcome>, ApiError> {
        run(&fixture.env, tenant, "https://api.example", batch(body)).await
    }

    /// Each item's decision, as the API reports it: created, updated (and by what), or the field
    /// at fault.
    fn decisions(outcomes: &[ItemOutcome]) -> Vec<String> {
        outcomes
            .iter()
            .map(|outcome| match &outcome.result {
                Ok(Decision::Create(_)) => "created".to_owned(),
                Ok(Decision::Update { matched_by, .. }) => format!("updated by {matched_by:?}"),
                Err(error) => format!("failed at {}", error.field.as_deref().unwrap_or_default()),
            })
            .collect()
    }

    /// A business with an endpoint for both `customer.*` events.
    async fn listened_to(fixture: &Fixture) -> Tenant {
        let tenant = fixture.business("Acme").await;
        fixture
            .webhook_endpoint(
                &tenant,
                "https://hooks.acme.example/",
                &[EventType::CustomerCreated, EventType::CustomerUpdated],
            )
            .await;
        tenant
    }

    #[test]
    fn a_batch_writes_each_customer_and_records_and_publishes_one_event_each() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = listened_to(&fixture).await;
            let outcomes = sync(
                &fixture,
                &tenant,
                json!({ "customers": [
                    { "name": "Ada", "email": "ADA@example.com", "external_id": 42 },
                    { "name": "Grace", "phone": "087 123 4567" },
                ]}),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(decisions(&outcomes), vec!["created", "created"]);
            assert_eq!(outcomes[0].external_id.as_deref(), Some("42"));
            let customers = fixture.rows("customers", "name");
            assert_eq!(customers.len(), 2);
            assert_eq!(customers[0]["email"], "ada@example.com");
            assert_eq!(
                customers[1]["phone"], "+353871234567",
                "national, completed with the business's country"
            );
            let events = fixture.rows("webhook_events", "subject_id");
            assert_eq!(events.len(), 2);
            assert!(
                events.iter().all(|event| event["type"] == "customer.created"),
                "{events:?}"
            );
            let queued: Vec<WebhookTask> = fixture.queued(WEBHOOKS);
            let ids: Vec<String> = match queued.as_slice() {
                [
                    WebhookTask::Dispatch {
                        business_id,
                        event_ids,
                    },
                ] if *business_id == tenant.business_id => {
                    event_ids.iter().map(|id| id.to_string()).collect()
                }
                other => panic!("one dispatch task of the business: {other:?}"),
            };
            let mut recorded: Vec<String> = events
                .iter()
                .map(|event| event["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            recorded.sort();
            let mut ids = ids;
            ids.sort();
            assert_eq!(ids, recorded);
        });
    }

    #[test]
    fn a_customer_synced_again_is_updated_by_its_key_not_created_twice() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            fixture
                .webhook_endpoint(
                    &tenant,
                    "https://hooks.acme.example/",
                    &[EventType::CustomerUpdated],
                )
                .await;
            sync(
                &fixture,
                &tenant,
                json!({ "customers": [{ "name": "Ada", "email": "ada@example.com" }] }),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            let again = sync(
                &fixture,
                &tenant,
                json!({ "customers": [
                    { "name": "Ada Lovelace", "email": "ada@example.com" },
                    { "name": "Ada L", "email": "Ada@Example.com", "external_id": "crm-1" },
                ]}),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                decisions(&again),
                vec![
                    format!("updated by {:?}", MatchedBy::Email),
                    format!("updated by {:?}", MatchedBy::Email)
                ]
            );
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers.len(), 1, "{customers:?}");
            assert_eq!(customers[0]["name"], "Ada L", "the later item of the batch wins");
            assert_eq!(customers[0]["external_id"], "crm-1");
            let events = fixture.rows("webhook_events", "created_us");
            assert!(
                events.iter().all(|event| event["type"] == "customer.updated"),
                "{events:?}"
            );
        });
    }

    /// Each item's decision and the D1 round trips of a sync of `body` on an invocation of its own.
    async fn trips(fixture: &Fixture, tenant: &Tenant, body: Value) -> (Vec<String>, u32) {
        let env = Env::new(fixture.stack.clone(), "test");
        let outcomes = run(&env, tenant, "https://api.example", batch(body))
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        (decisions(&outcomes), env.usage().d1_round_trips)
    }

    #[test]
    fn a_small_batch_of_new_customers_is_written_in_the_round_trip_that_reads_the_stored_ones() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = listened_to(&fixture).await;
            let created = || "created".to_owned();
            let by_email = format!("updated by {:?}", MatchedBy::Email);
            let ada = json!({ "customers": [{ "name": "Ada", "email": "ada@example.com" }] });
            assert_eq!(trips(&fixture, &tenant, ada).await, (vec![created()], 1));

            // A key is stored: the first write wrote nothing, and the sync went on from the read.
            let again = json!({ "customers": [
                { "name": "Ada L", "email": "ADA@example.com" },
                { "name": "Grace", "phone": "087 123 4567" },
            ]});
            assert_eq!(
                trips(&fixture, &tenant, again).await,
                (vec![by_email.clone(), created()], 2)
            );
            let names: Vec<Value> = fixture
                .rows("customers", "name")
                .into_iter()
                .map(|row| row["name"].clone())
                .collect();
            assert_eq!(names, vec![json!("Ada L"), json!("Grace")]);
            let mut kinds: Vec<String> = fixture
                .rows("webhook_events", "created_us")
                .into_iter()
                .map(|row| row["type"].as_str().unwrap_or_default().to_owned())
                .collect();
            kinds.sort();
            assert_eq!(
                kinds,
                ["customer.created", "customer.created", "customer.updated"],
                "one event for each customer written, none for the write that was not made"
            );

            // Two items naming one new customer: not creates alone, so the read comes first.
            let twice = json!({ "customers": [
                { "name": "Lin", "email": "lin@example.com" },
                { "name": "Lin Y", "email": "lin@example.com" },
            ]});
            assert_eq!(
                trips(&fixture, &tenant, twice).await,
                (vec![created(), by_email], 2)
            );
            // A batch past WRITE_FIRST_ITEMS reads first, whatever it holds.
            let many: Vec<Value> = (0..=WRITE_FIRST_ITEMS)
                .map(|n| json!({ "name": format!("c{n}"), "email": format!("c{n}@example.com") }))
                .collect();
            assert_eq!(
                trips(&fixture, &tenant, json!({ "customers": many })).await,
                (vec![created(); WRITE_FIRST_ITEMS + 1], 2)
            );
        });
    }

    #[test]
    fn an_item_that_is_wrong_fails_alone() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let outcomes = sync(
                &fixture,
                &tenant,
                json!({ "customers": [
                    { "name": "Ada", "email": "ada@example.com" },
                    { "name": "Bad", "email": "not an email" },
                    [1, 2],
                    { "name": "Grace", "email": "grace@example.com" },
                ]}),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                decisions(&outcomes),
                vec!["created", "failed at email", "failed at ", "created"]
            );
            assert_eq!(fixture.rows("customers", "id").len(), 2);
        });
    }

    #[test]
    fn a_batch_too_large_or_an_unknown_country_is_refused_whole() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let many: Vec<Value> = (0..=MAX_BATCH)
                .map(|n| json!({ "name": format!("c{n}"), "email": format!("c{n}@example.com") }))
                .collect();
            let cases = [
                (json!({ "customers": many }), ErrorCode::BatchTooLarge, "customers", "one past the most"),
                (
                    json!({ "customers": [{ "name": "Ada", "phone": "087 123 4567" }], "default_country": "XX" }),
                    ErrorCode::ValidationFailed,
                    "default_country",
                    "a country that is none",
                ),
            ];
            for (body, code, field, description) in cases {
                let error = sync(&fixture, &tenant, body)
                    .await
                    .err()
                    .unwrap_or_else(|| panic!("{description}: accepted"));
                assert_eq!(
                    (error.code(), error.body.field.as_deref()),
                    (code, Some(field)),
                    "{description}"
                );
            }
            assert!(fixture.rows("customers", "id").is_empty());
        });
    }

    #[test]
    fn the_requests_country_completes_national_numbers_in_place_of_the_businesss() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            sync(
                &fixture,
                &tenant,
                json!({ "customers": [{ "name": "Hans", "phone": "030 1234567" }], "default_country": "de" }),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            let customers = fixture.rows("customers", "id");
            assert_eq!(customers[0]["phone"], "+49301234567");
        });
    }

    #[test]
    fn without_a_subscriber_no_event_is_recorded_or_published() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            sync(
                &fixture,
                &tenant,
                json!({ "customers": [{ "name": "Ada", "email": "ada@example.com" }] }),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        });
        assert!(fixture.rows("webhook_events", "id").is_empty());
        assert!(fixture.stack.queued(WEBHOOKS).is_empty());
    }
}
