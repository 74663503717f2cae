//! Making, listing, showing, changing and deleting a connector, and how its work goes (its
//! status: the summary of its jobs and its calls of the last hours).

use super::{find, kind_of, name_of, object_or_empty};
use domain::api::admin::{
    ConnectorDeletedOut, ConnectorIn, ConnectorOut, ConnectorPatch, ConnectorStatus, ConnectorsOut,
};
use domain::audit::Action;
use domain::crm::budget::Budget;
use domain::crm::config;
use domain::crm::health::{Health, WINDOW_HOURS, Window};
use domain::crm::rollout::Rollout;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use edge::Env;
use edge::db::Db;
use edge::db::crm_call_minutes;
use edge::db::crm_connectors::{self, Connector, Fields};
use edge::db::crm_sync_jobs::{self, Summary};
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, Path, Scope};
use edge::{platform::http, runtime};
use serde_json::{Value, json};

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

pub(super) async fn out(env: &Env, connector: Connector) -> Result<ConnectorOut, ApiError> {
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
pub(super) async fn make(
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

/// The rollout a request asks for, or `otherwise` when it names none.
fn rollout_of(percent: Option<i64>, otherwise: Rollout) -> Result<Rollout, ApiError> {
    percent.map_or(Ok(otherwise), |percent| {
        Rollout::parse("rollout_percent", percent)
    })
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
