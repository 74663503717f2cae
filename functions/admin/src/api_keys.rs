//! API keys: issued once in clear, stored as a hash, listed by prefix, revoked by id; by the
//! operator for any business, or by a business for itself with one of its keys; and their usage.

use domain::api::admin::{ApiKey, ApiKeysOut, IssuedApiKey, KeyIn, UsageOut};
use domain::api_key;
use domain::audit::Action;
use domain::error::ApiError;
use domain::ids::ApiKeyId;
use domain::key_usage::UsageQuery;
use domain::query::Query;
use edge::Env;
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, OptionalJson, Path, Scope};
use edge::{db, platform::auth, runtime};

pub async fn issue(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    OptionalJson(input): OptionalJson<KeyIn>,
) -> Result<Created<IssuedApiKey>, ApiError> {
    let (env, business_id) = (&env, &tenant.business_id);
    let name = input.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::invalid("name", "name is at most 200 characters"));
    }
    let issued = api_key::issue(runtime::random()?);
    let listed = ApiKey {
        id: ApiKeyId::generate(runtime::random()?),
        business_id: business_id.clone(),
        name,
        prefix: issued.prefix,
        created_at: runtime::now().to_rfc3339(),
        revoked_at: None,
        last_used_at: None,
        last_used_address: None,
        last_used_endpoint: None,
    };
    db::api_keys::insert(&env.db()?, &tenant, &listed, &issued.hash).await?;
    let detail = serde_json::json!({ "prefix": listed.prefix, "name": listed.name });
    audit
        .record(
            env,
            business_id,
            Action::ApiKeyIssued,
            Some(listed.id.as_str()),
            detail,
        )
        .await;
    Ok(Created(IssuedApiKey {
        listed,
        key: issued.plaintext,
    }))
}

pub async fn list(env: Env, Managed(tenant): Managed) -> Result<Json<ApiKeysOut>, ApiError> {
    let api_keys = db::api_keys::list(&env.db()?, &tenant).await?;
    Ok(Json(ApiKeysOut { api_keys }))
}

pub async fn revoke(
    env: Env,
    audit: Audit,
    scope: Scope,
    Path(id): Path<ApiKeyId>,
) -> Result<Json<ApiKey>, ApiError> {
    let (env, id) = (&env, &id);
    let db = env.db()?;
    let missing = || ApiError::not_found(format!("no API key {id}"));
    let tenant = scope
        .owner(async || db::api_keys::owner(&db, id).await, missing)
        .await?;
    let now = runtime::now().to_rfc3339();
    let (key, hash) = db::api_keys::revoke(&db, &tenant, id, &now)
        .await?
        .ok_or_else(missing)?;
    auth::forget_cached_key(env, &hash).await?;
    let detail = serde_json::json!({ "prefix": key.prefix });
    audit
        .record(
            env,
            &key.business_id,
            Action::ApiKeyRevoked,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(Json(key))
}

/// The business's API usage over the last 48 hours or 30 days (`domain::key_usage`), of all its
/// keys or of one.
pub async fn usage(env: Env, Managed(tenant): Managed, query: Query) -> Result<Json<UsageOut>, ApiError> {
    let query = UsageQuery::parse(&query)?;
    let db = env.db()?;
    if let Some(id) = &query.key_id
        && !db::api_keys::list(&db, &tenant)
            .await?
            .iter()
            .any(|key| key.id == *id)
    {
        return Err(ApiError::not_found(format!("no API key {id}")));
    }
    let usage =
        db::api_key_usage::read(&db, &tenant, query.key_id.as_ref(), query.by, runtime::now()).await?;
    Ok(Json(usage))
}
