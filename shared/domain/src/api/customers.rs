//! The customer endpoints: the smart upsert, bulk import, lookups one at a time or many, and the
//! listing; their declarations and the shapes they take and answer with.

use crate::api::{Caller::*, get, post};
use crate::customer::{CustomerIn, CustomerOut};
use crate::error::{ErrorBody, ErrorCode};
use crate::ids::CustomerId;
use crate::upsert::{Action, ItemOutcome, MatchedBy};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use {
    crate::batch_lookup::{LookupIn, LookupOut},
    crate::time::Timestamp,
};

function! {
    /// The smart upsert.
    pub const CUSTOMERS_SYNC: Function<CustomersSync> = "customers-sync", tag "customers";
    /// The smart upsert
    ///
    /// Each customer is matched by external_id, then email, then normalised phone, and updated, or
    /// created when nothing matches. Fields left out keep their stored values. One invalid item
    /// fails alone (`success` false); over 1000 customers is 422 batch_too_large; over 4 MiB is
    /// 413. 409 when other requests kept changing the same customers.
    SyncCustomers = post("/api-customers-sync", ApiKey).idempotent().batch()
        => |c| c
            .json::<CustomersIn>()
            .example(serde_json::json!({ "customers": [{
                "external_id": "CRM-12345", "name": "John Doe", "email": "john@example.com",
                "phone": "+353871234567", "custom_fields": { "crm_segment": "enterprise" },
            }]}))
            .ok::<SyncOut>(200)
            .example(serde_json::json!({ "success": true, "results": {
                "total": 1, "created": 1, "updated": 0, "failed": 0,
                "details": [{ "index": 0, "external_id": "CRM-12345",
                    "customer_id": "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f", "action": "created", "matched_by": null }],
            }}))
            .links(serde_json::json!({
                "GetSyncedCustomer": { "operationId": "getCustomer",
                    "parameters": { "id": "$response.body#/results/details/0/customer_id" } },
                "ConversationsOfSyncedCustomer": { "operationId": "getConversationsByCustomer",
                    "parameters": { "customer_id": "$response.body#/results/details/0/customer_id" } },
                "TokenForSyncedCustomer": { "operationId": "generateSsoToken",
                    "requestBody": { "customer_id": "$response.body#/results/details/0/customer_id" } },
            }));
}

function! {
    /// Bulk import.
    pub const CUSTOMERS_BULK_CREATE: Function<CustomersBulkCreate> = "customers-bulk-create", tag "customers";
    /// Import customers
    ///
    /// Each customer is matched as the sync matches it (external_id, then email, then phone) and
    /// updated, or created; a match to a customer linked to another external_id fails the item
    /// (two CRM records are not merged). At most 1000 per request.
    BulkCreateCustomers = post("/api-customers-bulk-create", ApiKey).idempotent().batch()
        => |c| c
            .json::<CustomersIn>()
            .example(serde_json::json!({ "customers": [{
                "external_id": "SF-1", "external_system": "salesforce", "name": "Ann", "email": "ann@example.com",
            }]}))
            .ok::<BulkOut>(200)
            .example(serde_json::json!({
                "success": true, "total": 1, "created": 1, "updated": 0, "failed": 0,
                "customers": [{ "index": 0, "external_id": "SF-1",
                    "customer_id": "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f", "action": "created", "matched_by": null }],
                "errors": [],
            }))
            .links(serde_json::json!({
                "GetImportedCustomer": { "operationId": "getCustomer",
                    "parameters": { "id": "$response.body#/customers/0/customer_id" } },
            }));
}

function! {
    /// Customers one at a time, or a page of them.
    pub const CUSTOMERS: Function<Customers> = "customers", tag "customers";
    /// One customer by one of its keys, or a page of the business's customers
    ///
    /// With one of id, external_id, email, phone (normalised as on write): that customer, 404 when
    /// no customer of the business matches. With none of them: the business's customers, newest
    /// first (created_at, then id), a page at a time: `limit` (1-500, default 100) and `cursor`
    /// (the previous page's next_cursor), optionally narrowed by `tag`, `external_system` and
    /// `updated_since`. Any other parameter is 422.
    GetCustomer = get("/api-customers", ApiKey)
        => |c| c.query::<CustomerQuery>().ok::<OneOrPage>(200).errors(&[404]);
}

function! {
    /// Many customers at once.
    pub const CUSTOMERS_BATCH_LOOKUP: Function<CustomersBatchLookup> = "customers-batch-lookup", tag "customers";
    /// Many customers by their keys
    ///
    /// Any mix of keys, at most 1000 in all (422 batch_too_large); each matching customer once.
    BatchLookupCustomers = post("/api-customers-batch-lookup", ApiKey).batch()
        => |c| c
            .json::<LookupIn>()
            .example(serde_json::json!({
                "external_ids": ["CRM-12345", "CRM-404"], "emails": ["ann@example.com"], "phones": ["087 123 4567"],
            }))
            .ok::<LookupOut>(200);
}

/// A batch of customers. The runtime reads each item as its text (`edge::messaging::customer_upsert`),
/// so that one that is wrong fails alone; the contract describes them as [`CustomerIn`].
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "CustomersIn"))]
pub struct CustomersIn<Item = CustomerIn> {
    #[cfg_attr(feature = "openapi", schemars(length(max = crate::upsert::MAX_BATCH)))]
    pub customers: Vec<Item>,
    /// ISO 3166 alpha-2; completes national phone numbers for this request.
    #[serde(default)]
    pub default_country: Option<String>,
}

/// The seed's answer to a sync: `success`, then `results` with counts and one detail per item.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncOut {
    /// True when every item was stored.
    pub success: bool,
    pub results: SyncResults,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncResults {
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    pub details: Vec<SyncDetail>,
}

/// What became of one item, at its position in the request.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncDetail {
    pub index: usize,
    pub external_id: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub action: Action,
    pub matched_by: Option<MatchedBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl From<Vec<ItemOutcome>> for SyncOut {
    fn from(outcomes: Vec<ItemOutcome>) -> Self {
        let details: Vec<SyncDetail> = outcomes
            .into_iter()
            .map(|outcome| match outcome.result {
                Ok(decision) => SyncDetail {
                    index: outcome.index,
                    external_id: outcome.external_id,
                    customer_id: Some(decision.customer_id().clone()),
                    action: decision.action(),
                    matched_by: decision.matched_by(),
                    error: None,
                },
                Err(error) => SyncDetail {
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
            results: SyncResults {
                total: details.len(),
                created,
                updated,
                failed,
                details,
            },
        }
    }
}

/// The fields the seed's `importCustomers` reads (`created`, `updated`, `failed`, `errors`), and
/// the id of every stored customer so the CRM can keep its id mapping.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BulkOut {
    pub success: bool,
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    pub customers: Vec<BulkStored>,
    pub errors: Vec<BulkError>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BulkStored {
    pub index: usize,
    pub external_id: Option<String>,
    pub customer_id: CustomerId,
    /// `created` or `updated`.
    pub action: Action,
    /// How an updated customer was found: `external_id`, or `email` or `phone` for a customer
    /// that was stored without this external_id (a duplicate the import joined); null when created.
    pub matched_by: Option<MatchedBy>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BulkError {
    pub index: usize,
    pub external_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl From<Vec<ItemOutcome>> for BulkOut {
    fn from(outcomes: Vec<ItemOutcome>) -> Self {
        let total = outcomes.len();
        let mut customers = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for outcome in outcomes {
            match outcome.result {
                Ok(decision) => customers.push(BulkStored {
                    index: outcome.index,
                    external_id: outcome.external_id,
                    customer_id: decision.customer_id().clone(),
                    action: decision.action(),
                    matched_by: decision.matched_by(),
                }),
                Err(ErrorBody { code, message, field }) => errors.push(BulkError {
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

/// The parameters of `GET /api-customers`: one of the first four names a customer; without
/// them, the rest page through the business's customers.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct CustomerQuery {
    /// Our customer id (a UUID).
    id: Option<CustomerId>,
    /// The CRM's id.
    #[schemars(example = &"CRM-12345")]
    external_id: Option<String>,
    /// An email address.
    email: Option<String>,
    /// A phone number; an unencoded + (a space) is understood.
    phone: Option<String>,
    /// Customers per page, 1 to 500 (default 100); listing only.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
    /// next_cursor of the previous page; listing only.
    cursor: Option<String>,
    /// Only customers with this tag; listing only.
    tag: Option<String>,
    /// Only customers from this system; listing only.
    #[schemars(example = &"salesforce")]
    external_system: Option<String>,
    /// Only customers created or changed after this RFC 3339 time; listing only.
    updated_since: Option<Timestamp>,
}

/// A page of the business's customers, newest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "CustomerPage"))]
pub struct PageOut {
    pub customers: Vec<CustomerOut>,
    pub has_more: bool,
    /// Pass back as `cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The answer of `GET /api-customers`: one customer, or a page of them.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "describes the answer for the contract")]
enum OneOrPage {
    One(Box<CustomerOut>),
    Page(PageOut),
}
