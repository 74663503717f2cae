//! API keys: issued once in clear, stored as a hash, listed by prefix, revoked by id.

use crate::businesses;
use domain::api_key;
use domain::audit::Action;
use domain::error::ApiError;
use domain::ids::{ApiKeyId, BusinessId};
use edge::Env;
use edge::audit::Audit;
use edge::db::api_keys::ApiKey;
use edge::{DB, auth, db, http, runtime};
use serde::{Deserialize, Serialize};
use worker::{Request, Response};

#[derive(Deserialize, Default)]
struct KeyIn {
    name: Option<String>,
}

/// A key as listed: never the key itself, only its prefix.
#[derive(Serialize)]
struct IssuedOut {
    #[serde(flatten)]
    listed: ApiKey,
    /// The key in clear, shown in this response only.
    key: String,
}

pub async fn issue(
    mut req: Request,
    env: &Env,
    business_id: &BusinessId,
    audit: &Audit,
) -> Result<Response, ApiError> {
    let input: KeyIn = http::read_optional_json(&mut req, http::SMALL_BODY_LIMIT).await?;
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
    http::json(
        201,
        &IssuedOut {
            listed,
            key: issued.plaintext,
        },
    )
}

pub async fn list(env: &Env, business_id: &BusinessId) -> Result<Response, ApiError> {
    let tenant = businesses::find(env, business_id).await?.tenant()?;
    let keys = db::api_keys::list(&env.d1(DB)?, &tenant).await?;
    http::json(200, &serde_json::json!({ "api_keys": keys }))
}

pub async fn revoke(env: &Env, id: &ApiKeyId, audit: &Audit) -> Result<Response, ApiError> {
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
    http::json(200, &key)
}
