//! A business's alerts and their rules (docs/alerts.md): `GET /api-alerts`, `GET` and `PATCH
//! /api-alert-settings`, and the operator's twins under `/admin/businesses/{id}/`. The rules run
//! in the maintenance sweep (`edge::ops::alerting`).

use domain::alerts::{AlertsOut, Settings, SettingsOut};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::providers::Provider;
use domain::query::Query;
use domain::tenant::Tenant;
use edge::db::Db;
use edge::db::alerts::{DEFAULT_LISTED, MAX_LISTED};
use edge::platform::call::{Json, Managed};
use edge::{Env, db, runtime};
use serde_json::Value;

pub async fn list(env: Env, Managed(tenant): Managed, query: Query) -> Result<Json<AlertsOut>, ApiError> {
    let open_only = match query.get("state") {
        None | Some("all") => false,
        Some("open") => true,
        Some(_) => return Err(ApiError::invalid("state", "state is open or all")),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LISTED,
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LISTED).contains(limit))
            .ok_or_else(|| ApiError::invalid("limit", format!("limit is a number from 1 to {MAX_LISTED}")))?,
    };
    let db = env.db()?;
    Ok(Json(db::alerts::list(&db, &tenant, open_only, limit).await?))
}

pub async fn settings(env: Env, Managed(tenant): Managed) -> Result<Json<SettingsOut>, ApiError> {
    let db = env.db()?;
    let settings = db::alert_settings::get(&db, &tenant).await?;
    Ok(Json(shown(&db, &tenant, &settings).await?))
}

pub async fn update(
    env: Env,
    Managed(tenant): Managed,
    Json(patch): Json<Value>,
) -> Result<Json<SettingsOut>, ApiError> {
    let db = env.db()?;
    let mut settings = db::alert_settings::get(&db, &tenant).await?;
    settings.apply(&patch)?;
    db::alert_settings::put(&db, &tenant, &settings, &runtime::now().to_rfc3339()).await?;
    Ok(Json(shown(&db, &tenant, &settings).await?))
}

/// The settings as the API shows them, with the address alert emails go from.
async fn shown(db: &Db, tenant: &Tenant, settings: &Settings) -> Result<SettingsOut, ApiError> {
    let email_from = db::channel_accounts::sending_address(db, tenant, Channel::Email)
        .await?
        .filter(|(provider, _)| *provider == Provider::Mailgun)
        .map(|(_, address)| address);
    Ok(SettingsOut {
        rules: settings.rules(),
        email_to: settings.email_to().to_vec(),
        email_from,
    })
}
