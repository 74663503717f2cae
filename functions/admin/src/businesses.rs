//! Businesses: the tenants. Created by the operator; everything else belongs to one.

use domain::audit::Action;
use domain::error::{ApiError, ErrorCode};
use domain::ids::BusinessId;
use domain::phone::Country;
use domain::rate_limit::Policy;
use domain::sso::FrameAncestors;
use edge::Env;
use edge::audit::Audit;
use edge::db::businesses::Business;
use edge::{DB, db, http, runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{Request, Response};

#[derive(Deserialize)]
struct BusinessIn {
    name: Option<String>,
    default_country: Option<String>,
}

pub async fn create(mut req: Request, env: &Env, audit: &Audit) -> Result<Response, ApiError> {
    let body: BusinessIn = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let name = body.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid(
            "name",
            "name is required (at most 200 characters)",
        ));
    }
    let default_country = match body
        .default_country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(code) => {
            Some(Country::parse(code).map_err(|e| ApiError::invalid("default_country", e.to_string()))?)
        }
    };
    let business = Business {
        id: BusinessId::generate(runtime::random()?),
        name: name.to_owned(),
        default_country: default_country.map(|country| country.code().to_owned()),
        created_at: runtime::now().to_rfc3339(),
        embed_frame_ancestors: Vec::new(),
        rate_limit: Policy::DEFAULT_KEY,
    };
    db::businesses::create(&env.d1(DB)?, &business).await?;
    let detail = serde_json::json!({ "name": business.name, "default_country": business.default_country });
    audit
        .record(
            env,
            &business.id,
            Action::BusinessCreated,
            Some(business.id.as_str()),
            detail,
        )
        .await;
    http::json(201, &business)
}

/// The business, or 404.
pub async fn find(env: &Env, id: &BusinessId) -> Result<Business, ApiError> {
    db::businesses::find(&env.d1(DB)?, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no business {id}")))
}

pub async fn get(env: &Env, id: &BusinessId) -> Result<Response, ApiError> {
    http::json(200, &find(env, id).await?)
}

#[derive(Deserialize, Serialize)]
struct BusinessPatch {
    embed_frame_ancestors: Option<Vec<String>>,
    rate_limit: Option<Value>,
}

/// Changes what may be changed after creation: the sites allowed to frame the embedded inbox, and
/// the rate limit of the business's API keys.
pub async fn update(
    mut req: Request,
    env: &Env,
    id: &BusinessId,
    audit: &Audit,
) -> Result<Response, ApiError> {
    let patch: BusinessPatch = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    if patch.embed_frame_ancestors.is_none() && patch.rate_limit.is_none() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "nothing to change: give embed_frame_ancestors (a list of origins, like https://crm.example.com) \
             or rate_limit ({\"per_minute\": 600, \"burst\": 100})",
        ));
    }
    let current = find(env, id).await?;
    let ancestors = patch
        .embed_frame_ancestors
        .as_deref()
        .map(FrameAncestors::parse)
        .transpose()?;
    let rate_limit = patch
        .rate_limit
        .as_ref()
        .map(|given| Policy::parse(given, current.rate_limit))
        .transpose()?;
    let db = env.d1(DB)?;
    let gone = || ApiError::not_found(format!("no business {id}"));
    if let Some(ancestors) = &ancestors
        && !db::businesses::set_frame_ancestors(&db, id, ancestors).await?
    {
        return Err(gone());
    }
    if let Some(policy) = rate_limit
        && !db::businesses::set_rate_limit(&db, id, policy).await?
    {
        return Err(gone());
    }
    audit
        .record_update(env, id, Action::BusinessUpdated, id.as_str(), &patch)
        .await;
    get(env, id).await
}
