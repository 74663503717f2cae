//! API keys: issued once in clear, stored as a hash, listed by prefix, revoked by id.

use crate::businesses;
use serde::{Deserialize, Serialize};
use domain::api_key::{self, ApiKeyHash};
use edge::{DB, auth, d1, http, runtime};
use domain::error::ApiError;
use domain::ids::{ApiKeyId, BusinessId};
use worker::{Env, Request, Response};

#[derive(Deserialize, Default)]
struct KeyIn {
    name: Option<String>,
}

/// A key as listed: never the key itself, only its prefix.
#[derive(Serialize, Deserialize)]
struct KeyOut {
    id: String,
    business_id: String,
    name: Option<String>,
    prefix: String,
    created_at: String,
    revoked_at: Option<String>,
}

#[derive(Serialize)]
struct IssuedOut {
    #[serde(flatten)]
    listed: KeyOut,
    /// The key in clear, shown in this response only.
    key: String,
}

pub async fn issue(mut req: Request, env: &Env, business_id: &BusinessId) -> Result<Response, ApiError> {
    let body = http::read_body(&mut req, http::SMALL_BODY_LIMIT).await?;
    let input: KeyIn = if body.iter().all(u8::is_ascii_whitespace) {
        KeyIn::default()
    } else {
        domain::json::from_json(&body)?
    };
    let name = input.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::invalid("name", "name is at most 200 characters"));
    }
    businesses::find(env, business_id).await?;
    let issued = api_key::issue(runtime::random()?);
    let listed = KeyOut {
        id: ApiKeyId::generate(runtime::random()?).to_string(),
        business_id: business_id.to_string(),
        name,
        prefix: issued.prefix,
        created_at: runtime::now().to_rfc3339(),
        revoked_at: None,
    };
    env.d1(DB)?
        .prepare("INSERT INTO api_keys (id, business_id, name, prefix, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(&[
            d1::text(&listed.id),
            d1::text(&listed.business_id),
            d1::optional_text(listed.name.as_deref()),
            d1::text(&listed.prefix),
            d1::text(issued.hash.as_str()),
            d1::text(&listed.created_at),
        ])?
        .run()
        .await?;
    http::json(
        201,
        &IssuedOut {
            listed,
            key: issued.plaintext,
        },
    )
}

pub async fn list(env: &Env, business_id: &BusinessId) -> Result<Response, ApiError> {
    businesses::find(env, business_id).await?;
    let result = env
        .d1(DB)?
        .prepare(
            "SELECT id, business_id, name, prefix, created_at, revoked_at FROM api_keys \
             WHERE business_id = ?1 ORDER BY created_at, id",
        )
        .bind(&[d1::text(business_id.as_str())])?
        .all()
        .await?;
    http::json(
        200,
        &serde_json::json!({ "api_keys": result.results::<KeyOut>()? }),
    )
}

/// Revoking is idempotent: revoking a revoked key answers with its original revocation time.
pub async fn revoke(env: &Env, id: &ApiKeyId) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct Revoked {
        #[serde(flatten)]
        listed: KeyOut,
        key_hash: String,
    }
    let db = env.d1(DB)?;
    let now = runtime::now().to_rfc3339();
    let revoked = db
        .prepare(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1 \
             RETURNING id, business_id, name, prefix, created_at, revoked_at, key_hash",
        )
        .bind(&[d1::text(id.as_str()), d1::text(&now)])?
        .first::<Revoked>(None)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no API key {id}")))?;
    auth::forget_cached_key(env, &ApiKeyHash::from_stored(revoked.key_hash)).await?;
    http::json(200, &revoked.listed)
}
