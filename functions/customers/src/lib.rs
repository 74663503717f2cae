//! `GET /api-customers?id=|external_id=|email=|phone=`: one customer, or 404.

use domain::crm::work::ContactKey;
use domain::error::ApiError;
use domain::identify::{Name, identify};
use edge::{DB, auth, db, http};
use worker::{Context, Env, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, get_customer).await
}

async fn get_customer(req: Request, env: Env) -> Result<Response, ApiError> {
    http::require_method(&req, Method::Get, "GET")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let query = http::query(&req)?;
    let phone = query.phone("phone");
    let named = identify(
        &[
            (Name::Id, query.get("id")),
            (Name::ExternalId, query.get("external_id")),
            (Name::Email, query.get("email")),
            (Name::Phone, phone.as_deref()),
        ],
        tenant.default_country,
    )?;
    let db = env.d1(DB)?;
    let customer = db::customers::first_named(&db, &tenant, &named.keys, &named.named_by).await?;
    // Where a CRM connector keeps the customer's records (Krayin's `krayin:person:…|…`): shown
    // when there are any.
    let crm_ids =
        db::crm_contacts::external_ids(&db, &tenant, &ContactKey::Customer(customer.id.clone())).await?;
    let mut shown = serde_json::to_value(&customer)?;
    if let (Some(fields), false) = (shown.as_object_mut(), crm_ids.is_empty()) {
        fields.insert("crm_ids".to_owned(), serde_json::to_value(&crm_ids)?);
    }
    http::json(200, &shown)
}
