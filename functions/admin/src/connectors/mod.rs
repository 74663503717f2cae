//! CRM connectors: a business's connections to its CRMs, their connection test, sync log, status
//! and replay, managed by the operator or by the business itself with its key. Secrets go in and
//! are never shown again; responses list only which are set. Split by concern: making, changing
//! and showing one (`crud`), connecting with OAuth (`oauth`), and what it shows of its CRM and its
//! work (`inspect`); what they share is here.

mod crud;
mod inspect;
mod oauth;

pub use crud::{create, delete, get, list, update};
pub use inspect::{contact, find_contact, log, pipelines, replay, teams, test};
pub use oauth::{authorize, authorized};

use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use edge::Env;
use edge::db::crm_connectors::{self, Connector};
use edge::platform::call::Scope;
use serde_json::{Value, json};

const MAX_NAME_CHARS: usize = domain::api::admin::MAX_NAME_CHARS;

fn kind_of(kind: Option<&str>) -> Result<ConnectorKind, ApiError> {
    let kinds = ConnectorKind::ALL.map(ConnectorKind::as_str).join(", ");
    kind.and_then(ConnectorKind::parse)
        .ok_or_else(|| ApiError::invalid("kind", format!("kind is one of {kinds}")))
}

fn name_of(name: Option<&str>, kind: ConnectorKind) -> Result<String, ApiError> {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    match name {
        Some(name) if name.chars().count() > MAX_NAME_CHARS => Err(ApiError::invalid(
            "name",
            format!("name is at most {MAX_NAME_CHARS} characters"),
        )),
        Some(name) => Ok(name.to_owned()),
        None => Ok(kind.display_name().to_owned()),
    }
}

fn object_or_empty(value: Value) -> Value {
    if value.is_null() { json!({}) } else { value }
}

/// The connector a path names: the business's own, or for the operator any business's.
pub(crate) async fn find(env: &Env, scope: &Scope, id: &ConnectorId) -> Result<Connector, ApiError> {
    let (db, keys) = (env.db()?, env.keyring()?);
    let found = match scope {
        Scope::Operator => crm_connectors::find_any(&db, &keys, id).await?,
        Scope::Business(tenant) => crm_connectors::find(&db, &keys, tenant, id).await?,
    };
    found.ok_or_else(|| ApiError::not_found(format!("no connector {id}")))
}

/// The connector `id` when it is a Kustomer connector, for the calls only Kustomer has (`calls`,
/// named in the 404 of another CRM's connector).
pub(crate) async fn kustomer_connector(
    env: &Env,
    scope: &Scope,
    id: &ConnectorId,
    calls: &str,
) -> Result<Connector, ApiError> {
    let connector = find(env, scope, id).await?;
    if connector.kind != ConnectorKind::Kustomer {
        return Err(ApiError::not_found(format!(
            "connector {id} is not a Kustomer connector: only Kustomer has {calls}"
        )));
    }
    Ok(connector)
}
