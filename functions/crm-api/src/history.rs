//! `GET /api-crm-history?customer_id=|external_id=&connector_id=`: a customer's past conversations
//! as the CRM has them (the seed's "Customer Found → loads history and context"), read from the
//! CRM now, within the connector's budget.

use domain::api::crm::HistoryOut;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::identify::{Name, identify};
use domain::query::Query;
use domain::tenant::Tenant;
use edge::Env;
use edge::crm::kustomer::{self, Kustomer};
use edge::db::{self, crm_connectors};
use edge::platform::call::Json;

pub async fn load(tenant: Tenant, env: Env, query: Query) -> Result<Json<HistoryOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let named = identify(
        &[
            (Name::CustomerId, query.get("customer_id")),
            (Name::ExternalId, query.get("external_id")),
        ],
        tenant.default_country,
    )?;
    let db = env.db()?;
    let customer = db::customers::first_named(&db, tenant, &named.keys, &named.named_by).await?;
    let connectors = crm_connectors::list(&db, &*env.keyring()?, tenant, true).await?;
    let only = query.get("connector_id");
    // Kustomer keeps conversations; Krayin keeps leads and activities, no conversation history.
    let connector = connectors
        .iter()
        .filter(|connector| connector.kind == ConnectorKind::Kustomer)
        .find(|connector| only.is_none_or(|id| connector.id.as_str() == id.trim()))
        .ok_or_else(|| {
            ApiError::invalid(
                "connector_id",
                "this business has no enabled Kustomer connector to load history from \
                 (Krayin keeps no conversation history)",
            )
        })?;
    let kustomer = Kustomer::new(env, &db, connector).map_err(ApiError::crm_failed)?;
    let history = kustomer::history(&kustomer, &customer).await?;
    let Some((crm_customer_id, conversations)) = history else {
        return Err(ApiError::not_found(format!(
            "customer {} is not in the CRM (not synced, and not found by email)",
            customer.id
        )));
    };
    Ok(Json(HistoryOut {
        customer_id: customer.id,
        connector_id: connector.id.clone(),
        crm_customer_id,
        conversations,
    }))
}
