//! CRM connectors at runtime: calling a CRM within its budget (`client`), the sync pipeline from
//! our events to a contact's ordered work (`sync`), and each CRM's side of that work (one module
//! per CRM: `kustomer`).

pub mod client;
pub mod kustomer;
pub mod sync;

use crate::db::crm_connectors::Connector;
use crate::db::crm_sync_jobs::Job;
use client::Refusal;
pub use domain::crm::settle::Outcome;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use worker::{D1Database, Env};

/// The outcome of a call that was refused, or our own failure.
pub fn outcome_of(refusal: Refusal) -> Result<Outcome, ApiError> {
    match refusal {
        Refusal::Failed(failure) => Ok(Outcome::Failed(failure)),
        Refusal::Budget { wait_ms } => Ok(Outcome::Budget { wait_ms }),
        Refusal::Ours(error) => Err(error),
    }
}

/// Does `job` with the connector's CRM.
pub async fn perform(
    env: &Env,
    db: &D1Database,
    connector: &Connector,
    job: &Job,
) -> Result<Outcome, ApiError> {
    match connector.kind {
        ConnectorKind::Kustomer => kustomer::perform(env, db, connector, job).await,
    }
}

/// Whether the debug log is on for connectors of `kind` (`KUSTOMER_DEBUG=true`): bodies are
/// logged, redacted.
pub fn debug(env: &Env, kind: ConnectorKind) -> bool {
    let name = format!("{}_DEBUG", kind.as_str().to_ascii_uppercase());
    env.var(&name)
        .map(|value| value.to_string().trim().eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}
