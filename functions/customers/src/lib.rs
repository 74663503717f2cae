//! `GET /api-customers?id=|external_id=|email=|phone=`: one customer, or 404. Without any of
//! them, the business's customers, newest first, a page at a time (`limit`, `cursor`, and the
//! optional filters `tag`, `external_system`, `updated_since`): the guide's "Test
//! Authentication" call lists.

use domain::api::customers::{CUSTOMERS, Customers, PageOut};
use domain::customer::{Customer, CustomerOut};
use domain::customer_list::{ListCursor, ListQuery};
use domain::error::ApiError;
use domain::identify::{Name, identify};
use domain::ids::CustomerId;
use domain::query::Query;
use domain::tenant::Tenant;
use edge::Env;
use edge::db::Db;
use edge::db::crm_contacts::CrmId;
use edge::platform::call;
use edge::runtime::{Bindings, Request, Response};
use edge::{db, platform::http};
use std::collections::HashMap;

/// The ways a request may name its one customer.
const NAMES: [Name; 4] = [Name::Id, Name::ExternalId, Name::Email, Name::Phone];

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &CUSTOMERS,
        req,
        bindings,
        async |operation, call| match operation {
            Customers::GetCustomer => call.run(get_customers).await,
        },
    )
    .await
}

async fn get_customers(tenant: Tenant, env: Env, query: Query) -> Result<Response, ApiError> {
    let db = env.db()?;
    // An identifier given blank is a mistake to report, not a request to list.
    if NAMES.iter().any(|name| query.get(name.field()).is_some()) {
        one(&db, &tenant, &query).await
    } else {
        list(&db, &tenant, &query).await
    }
}

async fn one(db: &Db, tenant: &Tenant, query: &Query) -> Result<Response, ApiError> {
    let phone = query.phone("phone");
    let named = identify(
        &NAMES.map(|name| {
            let value = match name {
                Name::Phone => phone.as_deref(),
                _ => query.get(name.field()),
            };
            (name, value)
        }),
        tenant.default_country,
    )?;
    let (customer, crm_ids) =
        db::customers::first_named_with_crm_ids(db, tenant, &named.keys, &named.named_by).await?;
    http::json(200, &CustomerOut { customer, crm_ids })
}

async fn list(db: &Db, tenant: &Tenant, query: &Query) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query)?;
    // One more than asked for tells whether there is more without a count.
    let mut customers = db::customers::list(db, tenant, &query, query.limit + 1).await?;
    let has_more = customers.len() > query.limit;
    customers.truncate(query.limit);
    let next_cursor = customers.last().filter(|_| has_more).map(|last| {
        ListCursor {
            created_at: last.created_at.clone(),
            id: last.id.clone(),
        }
        .encode()
    });
    http::json(
        200,
        &PageOut {
            customers: with_crm_ids(db, tenant, customers).await?,
            has_more,
            next_cursor,
        },
    )
}

/// The customers with the ids every connector's CRM keeps them by, in one read.
async fn with_crm_ids(
    db: &Db,
    tenant: &Tenant,
    customers: Vec<Customer>,
) -> Result<Vec<CustomerOut>, ApiError> {
    let ids: Vec<_> = customers.iter().map(|customer| &customer.id).collect();
    let mut by_customer: HashMap<CustomerId, Vec<CrmId>> = HashMap::new();
    for crm_id in db::crm_contacts::crm_ids(db, tenant, &ids).await? {
        by_customer
            .entry(crm_id.customer_id.clone())
            .or_default()
            .push(crm_id);
    }
    Ok(customers
        .into_iter()
        .map(|customer| CustomerOut {
            crm_ids: by_customer.remove(&customer.id).unwrap_or_default(),
            customer,
        })
        .collect())
}
