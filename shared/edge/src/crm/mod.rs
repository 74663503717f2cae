//! CRM connectors at runtime: calling a CRM within its budget (`client`), the sync pipeline from
//! our events to a contact's ordered work (`sync`), and each CRM's side of that work (one module
//! per CRM: `kustomer`, `krayin`), with what their work has in common here.

pub mod client;
pub mod escalation;
pub mod krayin;
pub mod kustomer;
pub mod sync;

use crate::Env;
use crate::db::Db;
use crate::db::crm_sync_jobs::Job;
use crate::db::{self, crm_connectors::Connector};
use crate::{http, runtime, webhook_delivery};
use client::Refusal;
use domain::crm::retry::CallFailure;
pub use domain::crm::settle::Outcome;
use domain::crm::work::{ConnectorKind, Work};
use domain::error::ApiError;
use domain::message::Message;
use domain::tenant::Tenant;

/// The secret that signs attachment links in what connectors put in a CRM.
const MEDIA_LINK_SECRET: &str = "MEDIA_LINK_SECRET";

/// The outcome of a call that was refused, or our own failure.
pub fn outcome_of(refusal: Refusal) -> Result<Outcome, ApiError> {
    match refusal {
        Refusal::Failed(failure) => Ok(Outcome::Failed(failure)),
        Refusal::Budget { wait_ms } => Ok(Outcome::Budget { wait_ms }),
        Refusal::Ours(error) => Err(error),
    }
}

/// Does `job` with the connector's CRM.
pub async fn perform(env: &Env, db: &Db, connector: &Connector, job: &Job) -> Result<Outcome, ApiError> {
    let done = match connector.kind {
        ConnectorKind::Kustomer => kustomer::perform(env, db, connector, job).await,
        ConnectorKind::Krayin => krayin::perform(env, db, connector, job).await,
    };
    done.or_else(outcome_of)
}

/// Whether the debug log is on for connectors of `kind` (`KUSTOMER_DEBUG=true`, `KRAYIN_DEBUG=true`): bodies are
/// logged, redacted.
pub fn debug(env: &Env, kind: ConnectorKind) -> bool {
    let name = format!("{}_DEBUG", kind.as_str().to_ascii_uppercase());
    env.var(&name)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// A failure for a record of ours that is gone: nothing to send, retrying cannot help.
pub(crate) fn gone(reason: String) -> CallFailure {
    CallFailure::Status {
        status: 404,
        wait: None,
        reason,
    }
}

/// A CRM answer we could not read: retrying will not make it readable.
pub(crate) fn unreadable(crm: &str, reason: String) -> Refusal {
    Refusal::Failed(CallFailure::Status {
        status: 502,
        wait: None,
        reason: format!("{crm}'s answer could not be read: {reason}"),
    })
}

pub(crate) fn skipped(reason: &str) -> Result<Outcome, Refusal> {
    Ok(Outcome::Skipped(reason.to_owned()))
}

pub(crate) fn synced(crm_id: String) -> Result<Outcome, Refusal> {
    Ok(Outcome::Synced { crm_id: Some(crm_id) })
}

/// The job's work, read whole from its row: a row that is no work of its operation is damaged
/// (our fault).
pub(crate) fn work(job: &Job) -> Result<Work, Refusal> {
    Work::read(job.operation, &job.subject_id, job.input.as_ref())
        .map_err(|reason| Refusal::Ours(db::corrupt("sync job", job.id.as_str(), reason)))
}

/// The message's files as (name, signed download link); without a configured origin or signing
/// secret the names alone are listed.
pub(crate) async fn attachment_links(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    message: &Message,
) -> Result<Vec<(String, String)>, Refusal> {
    let files = db::attachments::of_messages(db, tenant, &[&message.id]).await?;
    let origin = http::configured_origin(env)?;
    let secret = env.secret(MEDIA_LINK_SECRET);
    let now = runtime::now();
    Ok(files
        .iter()
        .map(|file| {
            let link = webhook_delivery::signed_link(
                tenant,
                origin.as_deref(),
                secret.as_deref().map(str::as_bytes),
                &file.id,
                now,
            );
            (file.filename.clone(), link.unwrap_or_default())
        })
        .collect())
}

pub use domain::crm::ConnectionTest;

/// What a refused test call says; our own failure stays ours.
pub fn refused_test(crm: &str, refusal: Refusal) -> Result<ConnectionTest, ApiError> {
    Ok(match refusal {
        Refusal::Ours(error) => return Err(error),
        Refusal::Budget { wait_ms } => ConnectionTest::failed(
            None,
            format!(
                "the connector's request budget is spent; try again in {} s",
                wait_ms / 1000 + 1
            ),
        ),
        Refusal::Failed(CallFailure::Status { status, reason, .. }) => {
            ConnectionTest::failed(Some(status), reason)
        }
        Refusal::Failed(CallFailure::TimedOut) => ConnectionTest::failed(
            None,
            format!("{crm} did not answer within {} s", client::TIMEOUT_MS / 1000),
        ),
        Refusal::Failed(CallFailure::Unreachable(cause)) => ConnectionTest::failed(
            None,
            format!("{crm} could not be reached ({cause}); check the connector's address"),
        ),
    })
}

/// A refusal as the API's client sees it: the CRM's own failure is a 502 (or 503 while the
/// budget is spent), with what the CRM said.
pub fn refusal_error(crm: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Ours(error) => error,
        Refusal::Budget { wait_ms } => {
            let seconds = (wait_ms / 1000 + 1).clamp(1, i64::from(u32::MAX)) as u32;
            ApiError::rate_limited(
                format!(
                    "the connector's request budget for {crm} is spent; it allows the next call in {seconds} s"
                ),
                seconds,
            )
        }
        Refusal::Failed(failure) => ApiError::crm_failed(match failure {
            // The CRM's reason says "<CRM> answered <status>: …" itself.
            CallFailure::Status { reason, .. } => reason,
            CallFailure::TimedOut => format!("{crm} did not answer in time"),
            CallFailure::Unreachable(cause) => format!("{crm} could not be reached: {cause}"),
        }),
    }
}
