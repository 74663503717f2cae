//! CRM connectors: a business's connections to its CRMs, their connection test, sync log, status
//! and replay, managed by the operator or by the business itself with its key. Secrets go in and are never shown again; responses list only which are set.

use domain::api::Params;
use domain::api::admin::{
    AuthorizationIn, AuthorizationOut, AuthorizedIn, ConnectorDeletedOut, ConnectorIn, ConnectorOut,
    ConnectorPatch, ConnectorStatus, ConnectorsOut, KrayinContact, PipelineOut, PipelinesOut, ReplayIn,
    ReplayOut, StageOut, SyncLogEntry, SyncLogOut,
};
use domain::audit::Action;
use domain::crm::ConnectionTest;
use domain::crm::budget::Budget;
use domain::crm::config;
use domain::crm::health::{Health, WINDOW_HOURS, Window};
use domain::crm::kustomer::api::Team;
use domain::crm::oauth::{self, Pending};
use domain::crm::rollout::Rollout;
use domain::crm::work::{ConnectorKind, ContactKey, JobStatus};
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::query::Query;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use edge::Env;
use edge::crm::krayin::{self, Krayin};
use edge::crm::kustomer::{self, Kustomer};
use edge::crm::sync;
use edge::db::Db;
use edge::db::crm_call_minutes;
use edge::db::crm_connectors::{self, Connector, Fields};
use edge::db::crm_contacts;
use edge::db::crm_sync_jobs::{self, Filter, Job, Summary};
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, Origin, Path, Scope};
use edge::{platform::http, runtime};
use serde::Serialize;
use serde_json::{Value, json};

const MAX_NAME_CHARS: usize = domain::api::admin::MAX_NAME_CHARS;
/// An OAuth app's client id or secret is at most this long.
const MAX_OAUTH_CLIENT_CHARS: usize = 256;
/// Where a CRM's consent page sends people back: the console, which finishes the authorisation
/// with its session.
const CONSOLE_PATH: &str = "/console";
/// Writes to one connector that lose a race with another are tried this often.
const WRITE_TRIES: usize = 5;
/// The status's success rate and health look back this far.
const STATUS_WINDOW_SECONDS: i64 = WINDOW_HOURS as i64 * 3600;

fn status_out(connector: &Connector, summary: Summary, calls: &Window, now: Timestamp) -> ConnectorStatus {
    let attempted = summary.succeeded + summary.failed + summary.dead;
    ConnectorStatus {
        backlog: summary.pending,
        oldest_pending_at: summary.oldest_pending_us.map(Timestamp::from_micros),
        success_rate: (attempted > 0).then(|| summary.succeeded as f64 / attempted as f64),
        last_24h: summary,
        last_error: connector.last_error.clone(),
        last_error_at: connector.last_error_us.map(Timestamp::from_micros),
        last_success_at: connector.last_success_us.map(Timestamp::from_micros),
        key_expires_at: connector.key_expires_us.map(Timestamp::from_micros),
        paused_until: connector
            .paused_until_us
            .filter(|until| *until > now.micros())
            .map(Timestamp::from_micros),
        calls_today: connector.calls_today(now.micros()),
        health: Health::of(calls, WINDOW_HOURS),
    }
}

async fn out(env: &Env, connector: Connector) -> Result<ConnectorOut, ApiError> {
    let now = runtime::now();
    let db = env.db()?;
    let since = now.plus_seconds(-STATUS_WINDOW_SECONDS);
    let summary = crm_sync_jobs::summary(
        &db,
        &connector.tenant,
        &connector.id,
        since.micros(),
        now.micros() + 1,
    )
    .await?;
    let calls =
        crm_call_minutes::window(&db, &connector.tenant, connector.id.as_str(), since.millis()).await?;
    Ok(ConnectorOut {
        status: status_out(&connector, summary, &calls, now),
        secrets_set: connector.secrets.names(),
        webhook_path: config::webhook_path(connector.kind, connector.id.as_str()),
        id: connector.id,
        business_id: connector.tenant.business_id,
        kind: connector.kind,
        name: connector.name,
        enabled: connector.enabled,
        rollout_percent: connector.rollout.percent(),
        settings: connector.settings,
        rate_limit: connector.budget,
        created_at: connector.created_at,
        updated_at: connector.updated_at,
    })
}

/// A new connector of `kind` with `fields` (checked by its CRM's rules): its settings checked
/// against the CRM, stored, and audited.
async fn make(
    env: &Env,
    audit: &Audit,
    tenant: &Tenant,
    kind: ConnectorKind,
    fields: &Fields<'_>,
) -> Result<Connector, ApiError> {
    let id = ConnectorId::generate(runtime::random()?);
    let now = runtime::now();
    let db = env.db()?;
    let to_be = Connector {
        id: id.clone(),
        tenant: tenant.clone(),
        kind,
        name: fields.name.to_owned(),
        settings: fields.settings.clone(),
        secrets: fields.secrets.clone(),
        enabled: fields.enabled,
        rollout: fields.rollout,
        budget: fields.budget,
        paused_until_us: None,
        last_error: None,
        last_error_us: None,
        last_success_us: None,
        crm_cache: None,
        crm_cache_us: None,
        key_expires_us: None,
        revision: 0,
        created_at: now.to_rfc3339(),
        updated_at: now.to_rfc3339(),
        day_start_us: 0,
        day_count: 0,
    };
    let read = edge::crm::check_settings(env, &db, &to_be).await?;
    let keys = env.keyring()?;
    let connector = crm_connectors::insert(&db, &keys, tenant, &id, kind, fields, &now.to_rfc3339()).await?;
    keep_read(&db, &connector, connector.revision, read).await?;
    edge::crm::read_key_expiry(env, &db, &connector).await?;
    let detail = json!({ "kind": kind.as_str(), "name": connector.name, "secrets": fields.secrets.names() });
    audit
        .record(
            env,
            &tenant.business_id,
            Action::ConnectorCreated,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(connector)
}

/// `POST /api-connector-authorizations`: the CRM's consent page for a connector to be
/// authorised with OAuth, its settings checked first and the pending authorisation sealed, bound
/// to the business, as the page's state.
pub async fn authorize(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Origin(origin): Origin,
    Json(input): Json<AuthorizationIn>,
) -> Result<Created<AuthorizationOut>, ApiError> {
    let env = &env;
    let kind = kind_of(input.kind.as_deref())?;
    let name = name_of(input.name.as_deref(), kind)?;
    let allow_loopback = http::allows_loopback(env);
    let settings = object_or_empty(input.settings);
    let app = config::oauth_app(kind, &settings, allow_loopback)?.ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!(
                "{} connects with a token, not with OAuth: POST /api-connectors",
                kind.display_name()
            ),
        )
    })?;
    let credential = |field: &str, value: Option<String>| {
        value
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty() && value.len() <= MAX_OAUTH_CLIENT_CHARS)
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!("{field} is required: the OAuth app's, as {} shows it (at most {MAX_OAUTH_CLIENT_CHARS} characters)", kind.display_name()),
                )
            })
    };
    let client_id = credential("client_id", input.client_id)?;
    let client_secret = credential("client_secret", input.client_secret)?;
    let now = runtime::now();
    let expires_ms = now.millis() + oauth::PENDING_MS;
    let redirect_uri = format!("{origin}{CONSOLE_PATH}");
    let pending = Pending {
        kind,
        name: Some(name),
        settings: config::settings(kind, &settings, allow_loopback)?,
        client_id,
        client_secret,
        redirect_uri: redirect_uri.clone(),
        expires_ms,
        nonce: edge::crm::oauth::nonce()?,
        started_by: audit.actor().label(),
    };
    let state = edge::crm::oauth::seal_state(env, &tenant.business_id, &pending).await?;
    edge::db::oauth_states::start(&env.db()?, &tenant, &pending.nonce, expires_ms).await?;
    Ok(Created(AuthorizationOut {
        authorize_url: app.authorize(&pending.client_id, &redirect_uri, &state),
        redirect_uri,
        state,
        expires_at: Timestamp::from_millis(expires_ms),
    }))
}

/// `POST /api-connector-authorizations/complete`: the code the consent page gave back traded for
/// tokens, and the connector the state describes made with them.
pub async fn authorized(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(input): Json<AuthorizedIn>,
) -> Result<Created<ConnectorOut>, ApiError> {
    let env = &env;
    let required = |field: &str, value: Option<String>| {
        value.filter(|value| !value.trim().is_empty()).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} is required: as the consent page gave it back"),
            )
        })
    };
    let state = required("state", input.state)?;
    let code = required("code", input.code)?;
    let pending = edge::crm::oauth::open_state(env, &tenant.business_id, &state).await?;
    pending.finished_by(&audit.actor().label())?;
    // Taken before the code is traded: a state finishes one authorisation, however often it is sent.
    let now_ms = runtime::now().millis();
    if !edge::db::oauth_states::take(&env.db()?, &tenant, &pending.nonce, now_ms).await? {
        return Err(ApiError::invalid(
            "state",
            "this authorisation was finished already (a state is good once): start it again",
        ));
    }
    let kind = pending.kind;
    let allow_loopback = http::allows_loopback(env);
    let app = config::oauth_app(kind, &pending.settings, allow_loopback)?.ok_or_else(oauth::not_ours)?;
    let tokens = edge::crm::oauth::trade_code(env, &app, &pending, code.trim()).await?;
    let secrets = pending.secrets(&tokens, runtime::now().millis());
    let (settings, secrets) = config::checked(kind, &pending.settings, &secrets, allow_loopback)?;
    let name = name_of(pending.name.as_deref(), kind)?;
    let fields = Fields {
        name: &name,
        settings: &settings,
        secrets: &secrets,
        enabled: true,
        rollout: Rollout::EVERYONE,
        budget: config::default_budget(kind),
    };
    let connector = make(env, &audit, &tenant, kind, &fields).await?;
    Ok(Created(out(env, connector).await?))
}

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

/// The rollout a request asks for, or `otherwise` when it names none.
fn rollout_of(percent: Option<i64>, otherwise: Rollout) -> Result<Rollout, ApiError> {
    percent.map_or(Ok(otherwise), |percent| {
        Rollout::parse("rollout_percent", percent)
    })
}

fn object_or_empty(value: Value) -> Value {
    if value.is_null() { json!({}) } else { value }
}

pub async fn create(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(input): Json<ConnectorIn>,
) -> Result<Created<ConnectorOut>, ApiError> {
    let env = &env;
    let kind = kind_of(input.kind.as_deref())?;
    let name = name_of(input.name.as_deref(), kind)?;
    let (settings, secrets) = config::checked(
        kind,
        &object_or_empty(input.settings),
        &object_or_empty(input.secrets),
        http::allows_loopback(env),
    )?;
    let budget = Budget::merged(config::default_budget(kind), &input.rate_limit)?;
    let fields = Fields {
        name: &name,
        settings: &settings,
        secrets: &secrets,
        enabled: input.enabled.unwrap_or(true),
        rollout: rollout_of(input.rollout_percent, Rollout::EVERYONE)?,
        budget,
    };
    let connector = make(env, &audit, &tenant, kind, &fields).await?;
    Ok(Created(out(env, connector).await?))
}

pub async fn list(env: Env, Managed(tenant): Managed) -> Result<Json<ConnectorsOut>, ApiError> {
    let connectors = crm_connectors::list(&env.db()?, &*env.keyring()?, &tenant, false).await?;
    let mut shown = Vec::with_capacity(connectors.len());
    for connector in connectors {
        shown.push(out(&env, connector).await?);
    }
    Ok(Json(ConnectorsOut { connectors: shown }))
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

pub async fn get(
    env: Env,
    scope: Scope,
    Path(id): Path<ConnectorId>,
) -> Result<Json<ConnectorOut>, ApiError> {
    Ok(Json(out(&env, find(&env, &scope, &id).await?).await?))
}

/// Changes a connector: settings and secrets merge into what is stored and are checked as a
/// whole; the write lands only on the revision it read.
pub async fn update(
    env: Env,
    audit: Audit,
    scope: Scope,
    Path(id): Path<ConnectorId>,
    Json(patch): Json<ConnectorPatch>,
) -> Result<Json<ConnectorOut>, ApiError> {
    let (env, id) = (&env, &id);
    let db = env.db()?;
    let keys = env.keyring()?;
    for _ in 0..WRITE_TRIES {
        let current = find(env, &scope, id).await?;
        let name = match patch.name.as_deref() {
            Some(name) => name_of(Some(name), current.kind)?,
            None => current.name.clone(),
        };
        let (settings, secrets) = config::checked(
            current.kind,
            &config::patched_settings(
                current.kind,
                &current.settings,
                &object_or_empty(patch.settings.clone()),
            ),
            &config::merged(
                &Value::Object(current.secrets.to_json()),
                &object_or_empty(patch.secrets.clone()),
            ),
            http::allows_loopback(env),
        )?;
        let fields = Fields {
            name: &name,
            settings: &settings,
            secrets: &secrets,
            enabled: patch.enabled.unwrap_or(current.enabled),
            rollout: rollout_of(patch.rollout_percent, current.rollout)?,
            budget: Budget::merged(current.budget, &patch.rate_limit)?,
        };
        let to_be = Connector {
            settings: settings.clone(),
            secrets: secrets.clone(),
            ..current.clone()
        };
        let read = edge::crm::check_settings(env, &db, &to_be).await?;
        let now = runtime::now().to_rfc3339();
        if crm_connectors::update(&db, &keys, &current.tenant, id, current.revision, &fields, &now).await? {
            keep_read(&db, &current, current.revision + 1, read).await?;
            if patch
                .secrets
                .as_object()
                .is_some_and(|secrets| !secrets.is_empty())
            {
                let saved = Connector {
                    revision: current.revision + 1,
                    ..to_be
                };
                edge::crm::read_key_expiry(env, &db, &saved).await?;
            }
            audit
                .record_update(
                    env,
                    &current.tenant.business_id,
                    Action::ConnectorUpdated,
                    id.as_str(),
                    &patch,
                )
                .await;
            return Ok(Json(out(env, find(env, &scope, id).await?).await?));
        }
    }
    Err(ApiError::conflict(format!(
        "connector {id} is being changed by another request; try again"
    )))
}

/// Deletes a connector: its waiting work is dropped rather than kept as dead, because nothing
/// could ever send it (the credential goes with the connector) and a sync log no one can open
/// (it lives under the connector's path) hides work instead of showing it. The answer and the
/// audit entry say how much was dropped; disabling the connector is how work is kept.
pub async fn delete(
    env: Env,
    audit: Audit,
    scope: Scope,
    Path(id): Path<ConnectorId>,
) -> Result<Json<ConnectorDeletedOut>, ApiError> {
    let (env, id) = (&env, &id);
    let connector = find(env, &scope, id).await?;
    let forgotten = crm_connectors::delete(&env.db()?, &connector.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connector {id}")))?;
    let deleted = ConnectorDeletedOut {
        id: connector.id,
        business_id: connector.tenant.business_id,
        kind: connector.kind,
        name: connector.name,
        dropped_work: forgotten.pending,
        sync_log_entries: forgotten.log,
        links: forgotten.links,
        contacts: forgotten.contacts,
    };
    // The audit entry says what the answer says.
    let detail = serde_json::to_value(&deleted).unwrap_or(Value::Null);
    audit
        .record(
            env,
            &deleted.business_id,
            Action::ConnectorDeleted,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(Json(deleted))
}

/// Keeps what the check read of the CRM, for the sync to use for the next hour.
async fn keep_read(
    db: &Db,
    connector: &Connector,
    revision: i64,
    read: Option<Value>,
) -> Result<(), ApiError> {
    match read {
        Some(read) => {
            crm_connectors::store_cache(
                db,
                &connector.tenant,
                &connector.id,
                revision,
                &read,
                runtime::now().micros(),
            )
            .await
        }
        None => Ok(()),
    }
}

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
