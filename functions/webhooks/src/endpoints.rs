//! Registering endpoints: create, list, read, change, delete, and rotate the signing secret.
//! The secret is shown once, when it is made; reads never include it.

use domain::api::webhooks::{
    RotateIn, WebhookIn, WebhookOut, WebhookView, WebhookWithSecretOut, WebhooksOut,
};
use domain::audit::Action;
use domain::error::{ApiError, ErrorCode};
use domain::ids::EndpointId;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::WebhookSecret;
use domain::webhooks::{self as policy, EndpointUrl, RetrySchedule};
use edge::Env;
use edge::db::webhook_endpoints::{self, Endpoint};
use edge::platform::audit::Audit;
use edge::platform::call::{Call, Created, FromCall, Json, NoContent, OptionalJson, Path};
use edge::runtime;

/// Longest endpoint name.
const MAX_NAME_CHARS: usize = 100;

/// An endpoint as the API shows it: everything but the secrets.
pub fn view(endpoint: &Endpoint, now: Timestamp) -> WebhookView {
    WebhookView {
        id: endpoint.id.clone(),
        name: endpoint.name.clone(),
        url: endpoint.url.clone(),
        events: endpoint.events.iter().map(|event| event.as_str()).collect(),
        enabled: endpoint.enabled,
        disabled_reason: endpoint.disabled_reason.clone(),
        retry_schedule: endpoint.retry_schedule,
        timeout_seconds: endpoint.timeout_seconds,
        disable_after_seconds: endpoint.disable_after_seconds,
        failing_since: endpoint
            .failing_since_us
            .map(|us| Timestamp::from_micros(us).to_rfc3339()),
        previous_secret_expires_at: endpoint
            .previous_secret_until_us
            .filter(|until| endpoint.previous_secret.is_some() && *until > now.micros())
            .map(|until| Timestamp::from_micros(until).to_rfc3339()),
        created_at: endpoint.created_at.clone(),
        updated_at: endpoint.updated_at.clone(),
    }
}

fn new_secret() -> Result<WebhookSecret, ApiError> {
    Ok(WebhookSecret::generate(runtime::random()?))
}

/// Applies the request's fields to `endpoint`, checking each.
fn apply(endpoint: &mut Endpoint, input: WebhookIn, env: &Env) -> Result<(), ApiError> {
    if let Some(name) = input.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::invalid(
                "name",
                format!("name must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        endpoint.name = name.to_owned();
    }
    if let Some(url) = input.url {
        endpoint.url = EndpointUrl::parse(&url, edge::platform::http::allows_loopback(env))
            .map_err(|reason| ApiError::invalid("url", reason))?
            .as_str()
            .to_owned();
    }
    if let Some(names) = input.events {
        endpoint.events = policy::parse_subscription(Some(&names))?;
    }
    if let Some(name) = input.retry_schedule {
        endpoint.retry_schedule = RetrySchedule::parse(&name)
            .ok_or_else(|| ApiError::invalid("retry_schedule", "retry_schedule is standard or extended"))?;
    }
    endpoint.timeout_seconds = policy::bounded(
        "timeout_seconds",
        input.timeout_seconds,
        endpoint.timeout_seconds,
        1,
        policy::MAX_TIMEOUT_SECONDS,
    )?;
    endpoint.disable_after_seconds = policy::bounded(
        "disable_after_seconds",
        input.disable_after_seconds,
        endpoint.disable_after_seconds,
        policy::MIN_DISABLE_AFTER_SECONDS,
        policy::MAX_DISABLE_AFTER_SECONDS,
    )?;
    if let Some(enabled) = input.enabled {
        // Turning an endpoint on again forgets why it was off and how long it had been failing.
        if enabled && !endpoint.enabled {
            endpoint.disabled_reason = None;
            endpoint.failing_since_us = None;
        }
        if !enabled && endpoint.enabled {
            endpoint.disabled_reason = Some(domain::webhooks::DISABLED_BY_BUSINESS.to_owned());
        }
        endpoint.enabled = enabled;
    }
    Ok(())
}

pub async fn create(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Json(input): Json<WebhookIn>,
) -> Result<Created<WebhookWithSecretOut>, ApiError> {
    if input.name.is_none() {
        return Err(ApiError::invalid("name", "name is required"));
    }
    if input.url.is_none() {
        return Err(ApiError::invalid("url", "url is required"));
    }
    let now = runtime::now();
    let events = policy::parse_subscription(input.events.as_deref())?;
    let mut endpoint = Endpoint {
        id: EndpointId::generate(runtime::random()?),
        name: String::new(),
        url: String::new(),
        events,
        secret: new_secret()?,
        previous_secret: None,
        previous_secret_until_us: None,
        enabled: true,
        disabled_reason: None,
        retry_schedule: RetrySchedule::Standard,
        timeout_seconds: policy::DEFAULT_TIMEOUT_SECONDS,
        disable_after_seconds: policy::DEFAULT_DISABLE_AFTER_SECONDS,
        failing_since_us: None,
        created_at: now.to_rfc3339(),
        updated_at: now.to_rfc3339(),
        revision: 0,
        seed_signs_new: true,
    };
    apply(&mut endpoint, input, &env)?;
    if !webhook_endpoints::insert(&env.db()?, &*env.keyring()?, &tenant, &endpoint).await? {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "a business may register at most {} webhook endpoints: delete one first",
                webhook_endpoints::MAX_PER_BUSINESS
            ),
        ));
    }
    let detail = serde_json::json!({ "name": endpoint.name, "url": endpoint.url });
    audit
        .record(
            &env,
            &tenant.business_id,
            Action::WebhookCreated,
            Some(endpoint.id.as_str()),
            detail,
        )
        .await;
    Ok(Created(with_secret(&endpoint, now)))
}

/// How often a change is re-applied when the endpoint keeps changing under it.
const WRITE_TRIES: usize = 5;

/// Reads the endpoint, applies `change` and writes it back if nobody wrote it meanwhile;
/// otherwise reads it again and re-applies, so a change is never made to a stale copy (a PATCH
/// cannot re-enable an endpoint disabled meanwhile, a rotation cannot be overwritten).
async fn change(
    env: &Env,
    tenant: &Tenant,
    id: &EndpointId,
    mut change: impl FnMut(&mut Endpoint, Timestamp) -> Result<(), ApiError>,
) -> Result<(Endpoint, Timestamp), ApiError> {
    let db = env.db()?;
    let keys = env.keyring()?;
    for _ in 0..WRITE_TRIES {
        let mut endpoint = find(env, tenant, id).await?;
        let now = runtime::now();
        change(&mut endpoint, now)?;
        endpoint.updated_at = now.to_rfc3339();
        if webhook_endpoints::update(&db, &keys, tenant, &endpoint).await? {
            endpoint.revision += 1;
            return Ok((endpoint, now));
        }
    }
    Err(ApiError::conflict(format!(
        "webhook {id} kept changing while this request was applied; send it again"
    )))
}

/// The endpoint with its secret: only when the secret was just made.
fn with_secret(endpoint: &Endpoint, now: Timestamp) -> WebhookWithSecretOut {
    WebhookWithSecretOut {
        webhook: view(endpoint, now),
        secret: endpoint.secret.as_str().to_owned(),
    }
}

fn without_secret(endpoint: &Endpoint, now: Timestamp) -> WebhookOut {
    WebhookOut {
        webhook: view(endpoint, now),
    }
}

pub async fn list(tenant: Tenant, env: Env) -> Result<Json<WebhooksOut>, ApiError> {
    let now = runtime::now();
    let endpoints = webhook_endpoints::list(&env.db()?, &*env.keyring()?, &tenant).await?;
    Ok(Json(WebhooksOut {
        webhooks: endpoints.iter().map(|e| view(e, now)).collect(),
    }))
}

/// The tenant's endpoint, or 404 (also for another business's).
pub async fn find(env: &Env, tenant: &Tenant, id: &EndpointId) -> Result<Endpoint, ApiError> {
    webhook_endpoints::find(&env.db()?, &*env.keyring()?, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {id}")))
}

/// The business's endpoint the path names, as a handler's parameter: found (or 404) before the
/// parameters after it are read, so an unknown webhook is 404 whatever its body says.
pub struct Webhook(pub Endpoint);

impl FromCall for Webhook {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        let Path(id) = Path::<EndpointId>::from_call(call).await?;
        find(call.env(), &call.tenant()?, &id).await.map(Webhook)
    }
}

pub async fn get(tenant: Tenant, env: Env, Path(id): Path<EndpointId>) -> Result<Json<WebhookOut>, ApiError> {
    let endpoint = find(&env, &tenant, &id).await?;
    Ok(Json(without_secret(&endpoint, runtime::now())))
}

pub async fn update(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Path(id): Path<EndpointId>,
    Json(input): Json<WebhookIn>,
) -> Result<Json<WebhookOut>, ApiError> {
    let (endpoint, now) = change(&env, &tenant, &id, |endpoint, _| {
        apply(endpoint, input.clone(), &env)
    })
    .await?;
    audit
        .record_update(
            &env,
            &tenant.business_id,
            Action::WebhookUpdated,
            id.as_str(),
            &input,
        )
        .await;
    Ok(Json(without_secret(&endpoint, now)))
}

/// Removes the endpoint with its deliveries and their log, in one transaction.
pub async fn delete(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Path(id): Path<EndpointId>,
) -> Result<NoContent, ApiError> {
    let db = env.db()?;
    if !webhook_endpoints::delete(&db, &tenant, &id).await? {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    audit
        .record(
            &env,
            &tenant.business_id,
            Action::WebhookDeleted,
            Some(id.as_str()),
            serde_json::json!({}),
        )
        .await;
    Ok(NoContent)
}

/// A new secret signs from now on; the old one keeps signing beside it for the grace period,
/// so receivers can switch without losing a delivery.
pub async fn rotate_secret(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Path(id): Path<EndpointId>,
    OptionalJson(input): OptionalJson<RotateIn>,
) -> Result<Json<WebhookWithSecretOut>, ApiError> {
    let grace = policy::bounded(
        "grace_seconds",
        input.grace_seconds,
        policy::DEFAULT_ROTATION_GRACE_SECONDS,
        0,
        policy::MAX_ROTATION_GRACE_SECONDS,
    )?;
    let secret = new_secret()?;
    let (endpoint, now) = change(&env, &tenant, &id, |endpoint, now| {
        let old = std::mem::replace(&mut endpoint.secret, secret.clone());
        (endpoint.previous_secret, endpoint.previous_secret_until_us) = if grace > 0 {
            (Some(old), Some(now.plus_seconds(i64::from(grace)).micros()))
        } else {
            (None, None)
        };
        // Until the receiver accepts the new secret, first attempts sign the seed header with
        // the old one (webhook_signing::seed_signs_with_previous).
        endpoint.seed_signs_new = grace == 0;
        Ok(())
    })
    .await?;
    let detail = serde_json::json!({ "grace_seconds": grace });
    audit
        .record(
            &env,
            &tenant.business_id,
            Action::WebhookSecretRotated,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(Json(with_secret(&endpoint, now)))
}
