//! The CRM's own records, asked through a connector by the business or the operator: the
//! Kustomer guide's "Testing the Integration" (`findCustomer(email)`, `createConversation(customerId,
//! title, channel)`), called now and kept nowhere.

use crate::connectors::kustomer_connector;
use domain::api::admin::{CrmConversationIn, CrmConversationOut, CrmCustomerOut};
use domain::crm::kustomer::api::TitledConversation;
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::query::Query;
use edge::Env;
use edge::crm::kustomer::{self, Kustomer};
use edge::platform::call::{Created, Json, Path, Scope};

/// What another CRM's connector answers 404 for.
const CALLS: &str = "a customer lookup and titled conversations";

/// `GET …/crm-customers?email=`: Kustomer's customer with the address, or null.
pub async fn customer(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    query: Query,
) -> Result<Json<CrmCustomerOut>, ApiError> {
    let email = query
        .get("email")
        .ok_or_else(|| ApiError::invalid("email", "email is required (?email=jane@example.com)"))?;
    let email = Email::parse(email).map_err(|error| ApiError::invalid("email", error.to_string()))?;
    let connector = kustomer_connector(&env, &scope, &id, CALLS).await?;
    let db = env.db()?;
    let kustomer =
        Kustomer::new(&env, &db, &connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    Ok(Json(CrmCustomerOut {
        customer: kustomer::customer_by_email(&kustomer, email.as_str()).await?,
    }))
}

/// `POST …/crm-conversations`: a titled conversation opened on a Kustomer customer.
pub async fn conversation(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    Json(input): Json<CrmConversationIn>,
) -> Result<Created<CrmConversationOut>, ApiError> {
    let asked = TitledConversation::parse(&input.customer_id, &input.title, input.channel.as_deref())?;
    let connector = kustomer_connector(&env, &scope, &id, CALLS).await?;
    let db = env.db()?;
    let kustomer =
        Kustomer::new(&env, &db, &connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    Ok(Created(CrmConversationOut {
        conversation: kustomer::open_titled_conversation(&kustomer, &asked).await?,
    }))
}
