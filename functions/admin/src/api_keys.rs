//! API keys: issued once in clear, stored as a hash, listed by prefix, revoked by id.

use crate::businesses;
use domain::api::admin::{ApiKey, ApiKeysOut, IssuedApiKey, KeyIn};
use domain::api_key;
use domain::audit::Action;
use domain::error::ApiError;
use domain::ids::{ApiKeyId, BusinessId};
use edge::Env;
use edge::audit::Audit;
use edge::call::{Created, Json, OptionalJson, Path};
use edge::{DB, auth, db, runtime};

pub async fn issue(
    env: Env,
    audit: Audit,
    Path(business_id): Path<BusinessId>,
    OptionalJson(input): OptionalJson<KeyIn>,
) -> Result<Created<IssuedApiKey>, ApiError> {
    let (env, business_id) = (&env, &business_id);
    let name = input.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::invalid("name", "name is at most 200 characters"));
    }
    let tenant = businesses::find(env, business_id).await?.tenant()?;
    let issued = api_key::issue(runtime::random()?);
    let listed = ApiKey {
        id: ApiKeyId::generate(runtime::random()?),
        business_id: business_id.clone(),
        name,
        prefix: issued.prefix,
        created_at: runtime::now().to_rfc3339(),
        revoked_at: None,
    };
    db::api_keys::insert(&env.d1(DB)?, &tenant, &listed, &issued.hash).await?;
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

pub async fn list(env: Env, Path(business_id): Path<BusinessId>) -> Result<Json<ApiKeysOut>, ApiError> {
    let tenant = businesses::find(&env, &business_id).await?.tenant()?;
    let api_keys = db::api_keys::list(&env.d1(DB)?, &tenant).await?;
    Ok(Json(ApiKeysOut { api_keys }))
}

pub async fn revoke(env: Env, audit: Audit, Path(id): Path<ApiKeyId>) -> Result<Json<ApiKey>, ApiError> {
    let (env, id) = (&env, &id);
    let now = runtime::now().to_rfc3339();
    let (key, hash) = db::api_keys::revoke(&env.d1(DB)?, id, &now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no API key {id}")))?;
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
