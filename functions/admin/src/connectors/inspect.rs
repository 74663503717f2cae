//! What a connector shows of its CRM and its work: the connection test, Kustomer's teams, Krayin's
//! pipelines, a contact's records, the sync log, and replaying dead or failed work.

use super::{find, kustomer_connector};
use domain::api::Params;
use domain::api::admin::{
    KrayinContact, PipelineOut, PipelinesOut, ReplayIn, ReplayOut, StageOut, SyncLogEntry, SyncLogOut,
};
use domain::crm::ConnectionTest;
use domain::crm::kustomer::api::Team;
use domain::crm::work::{ConnectorKind, ContactKey, JobStatus};
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::query::Query;
use domain::time::Timestamp;
use edge::Env;
use edge::crm::krayin::{self, Krayin};
use edge::crm::kustomer::{self, Kustomer};
use edge::crm::sync;
use edge::db::crm_contacts;
use edge::db::crm_sync_jobs::{self, Filter, Job};
use edge::platform::call::{Json, Path, Scope};
use edge::runtime;
use serde::Serialize;

/// The seed's "Test the connection": what the CRM said of the connector's key.
pub async fn test(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
) -> Result<Json<ConnectionTest>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    let db = env.db()?;
    let result = edge::crm::test_connection(env, &db, &connector).await?;
    Ok(Json(result))
}

/// The CRM's teams, for choosing the default team (Kustomer's).
/// Kustomer's teams as the API shows them.
#[derive(Serialize)]
pub struct TeamsOut {
    teams: Vec<Team>,
}

pub async fn teams(env: Env, scope: Scope, Path(id): Path<ConnectorId>) -> Result<Json<TeamsOut>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = kustomer_connector(env, &scope, id, "teams").await?;
    let db = env.db()?;
    let kustomer =
        Kustomer::new(env, &db, &connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    Ok(Json(TeamsOut {
        teams: kustomer::teams(&kustomer).await?,
    }))
}

/// Krayin's pipelines and their stages, read now (and kept for the sync): for choosing the
/// pipeline and the stage ids of stage progression.
pub async fn pipelines(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
) -> Result<Json<PipelinesOut>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    if connector.kind != ConnectorKind::Krayin {
        return Err(ApiError::not_found(format!(
            "connector {id} is not a Krayin connector: only Krayin has pipelines"
        )));
    }
    let db = env.db()?;
    let krayin = Krayin::new(env, &db, &connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    let pipelines = krayin
        .read_pipelines()
        .await
        .map_err(|refusal| edge::crm::refusal_error("Krayin", refusal))?;
    let pipelines = pipelines
        .into_iter()
        .map(|pipeline| PipelineOut {
            id: pipeline.id.0,
            name: pipeline.name,
            is_default: pipeline.is_default,
            stages: pipeline
                .stages
                .into_iter()
                .map(|stage| StageOut {
                    id: stage.id.0,
                    name: stage.name,
                    code: stage.code,
                    sort_order: stage.sort_order,
                })
                .collect(),
        })
        .collect();
    Ok(Json(PipelinesOut { pipelines }))
}

/// A contact of the connector with its records in the CRM: `key` is one of our customer ids, or
/// `chatwoot:<contact id>`.
pub async fn contact(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    params: Params,
) -> Result<Json<KrayinContact>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    let key = params.get("contact_key")?.replace("%3A", ":").replace("%3a", ":");
    let none = || ApiError::not_found(format!("connector {id} has no contact {key}"));
    let parsed = ContactKey::parse(&key).ok_or_else(none)?;
    let kept = crm_contacts::kept(&env.db()?, &connector.tenant, id, &parsed)
        .await?
        .ok_or_else(none)?;
    Ok(Json(krayin::contact_out(&kept)))
}

/// The connector's contact whose CRM external id is `?external_id=` (the whole string, or its
/// first record: `krayin:person:123`).
pub async fn find_contact(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    query: Query,
) -> Result<Json<KrayinContact>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    let external_id = query
        .get("external_id")
        .map(str::trim)
        .filter(|value| !value.is_empty() && value.len() <= 200)
        .ok_or_else(|| ApiError::invalid("external_id", "external_id is required (krayin:person:123)"))?;
    let kept = crm_contacts::by_external_id(&env.db()?, &connector.tenant, id, external_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("connector {id} has no contact {external_id}")))?;
    Ok(Json(krayin::contact_out(&kept)))
}

/// One entry of the sync log as the API shows it.
fn log_entry(job: Job) -> SyncLogEntry {
    SyncLogEntry {
        id: job.id.to_string(),
        seq: job.seq,
        operation: job.operation.as_str(),
        customer_id: job.contact.to_string(),
        record_id: job.subject_id,
        event_id: job.event_id,
        attempts: job.attempts,
        crm_id: job.crm_id,
        last_status: job.last_status,
        last_error: job.last_error,
        duration_ms: job.duration_ms,
        next_attempt_at: (job.status == JobStatus::Pending)
            .then(|| Timestamp::from_micros(job.next_attempt_us)),
        created_at: Timestamp::from_micros(job.created_us),
        updated_at: Timestamp::from_micros(job.updated_us),
        status: job.status,
    }
}

/// The sync log, newest first: `?status=`, `?record=` (a customer, conversation or message id),
/// `?limit=` (default 50, at most 100) and `?before=` (the `seq` the last page ended at).
pub async fn log(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    query: Query,
) -> Result<Json<SyncLogOut>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    let statuses = JobStatus::ALL.map(JobStatus::as_str).join(", ");
    let status = match query.get("status") {
        Some(name) => Some(
            JobStatus::parse(name)
                .ok_or_else(|| ApiError::invalid("status", format!("status is one of {statuses}")))?,
        ),
        None => None,
    };
    let before_seq = match query.get("before") {
        Some(value) => Some(
            value
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| ApiError::invalid("before", "before is the seq of a log entry"))?,
        ),
        None => None,
    };
    let filter = Filter {
        status,
        record: query.get("record"),
        before_seq,
        limit: query.limit()?,
    };
    let jobs = crm_sync_jobs::list(&env.db()?, &connector.tenant, id, &filter).await?;
    let next_before = (jobs.len() == filter.limit)
        .then(|| jobs.last().map(|job| job.seq))
        .flatten();
    let entries = jobs.into_iter().map(log_entry).collect();
    Ok(Json(SyncLogOut { entries, next_before }))
}

/// Puts dead (or failed) work created in a time range back to pending, with a fresh retry window,
/// and hands its contacts to the sync consumer.
pub async fn replay(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    Json(input): Json<ReplayIn>,
) -> Result<Json<ReplayOut>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    let statuses = match input.statuses {
        None => vec![JobStatus::Dead],
        Some(names) if names.is_empty() => {
            return Err(ApiError::invalid("statuses", "name dead and/or failed"));
        }
        Some(names) => names
            .iter()
            .map(|name| match JobStatus::parse(name) {
                Some(status @ (JobStatus::Dead | JobStatus::Failed)) => Ok(status),
                _ => Err(ApiError::invalid(
                    "statuses",
                    "only dead and failed work can be replayed",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let time = |field: &str, value: Option<&str>, default: i64| match value {
        Some(text) => Timestamp::parse_rfc3339(text)
            .map(Timestamp::micros)
            .ok_or_else(|| ApiError::invalid(field, format!("{field} is an RFC 3339 time"))),
        None => Ok(default),
    };
    let now = runtime::now();
    let from = time("from", input.from.as_deref(), 0)?;
    let to = time("to", input.to.as_deref(), now.micros() + 1)?;
    if from >= to {
        return Err(ApiError::invalid("to", "to is after from"));
    }
    let contacts = crm_sync_jobs::replay(
        &env.db()?,
        &connector.tenant,
        id,
        &statuses,
        from,
        to,
        now.micros(),
    )
    .await?;
    sync::hand_over(env, &contacts, 0).await;
    Ok(Json(ReplayOut {
        contacts: contacts.len(),
        statuses,
    }))
}
