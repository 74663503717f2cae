//! Businesses: the tenants. Created by the operator; everything else belongs to one. A business
//! reads and changes its own with its key (`/api-business`), the operator any by its id.

use domain::api::admin::{Business, BusinessIn, BusinessPatch};
use domain::audit::Action;
use domain::error::{ApiError, ErrorCode};
use domain::ids::BusinessId;
use domain::message::NewConversationAfter;
use domain::phone::Country;
use domain::rate_limit::Policy;
use domain::sso::FrameAncestors;
use edge::Env;
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, Scope};
use edge::{db, runtime};

pub async fn create(
    env: Env,
    audit: Audit,
    Json(body): Json<BusinessIn>,
) -> Result<Created<Business>, ApiError> {
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
        new_conversation_after_hours: NewConversationAfter::DEFAULT.hours(),
    };
    db::businesses::create(&env.db()?, &business).await?;
    let detail = serde_json::json!({ "name": business.name, "default_country": business.default_country });
    audit
        .record(
            &env,
            &business.id,
            Action::BusinessCreated,
            Some(business.id.as_str()),
            detail,
        )
        .await;
    Ok(Created(business))
}

/// The business, or 404.
pub async fn find(env: &Env, id: &BusinessId) -> Result<Business, ApiError> {
    db::businesses::find(&env.db()?, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no business {id}")))
}

pub async fn get(env: Env, Managed(tenant): Managed) -> Result<Json<Business>, ApiError> {
    find(&env, &tenant.business_id).await.map(Json)
}

/// Changes what may be changed after creation: the sites allowed to frame the embedded inbox, the
/// rate limit of the business's API keys, and when a returning customer gets a new conversation.
/// The limit is the operator's: a business cannot raise its own.
pub async fn update(
    env: Env,
    audit: Audit,
    scope: Scope,
    Managed(tenant): Managed,
    Json(patch): Json<BusinessPatch>,
) -> Result<Json<Business>, ApiError> {
    let (env, id) = (&env, &tenant.business_id);
    if matches!(scope, Scope::Business(_)) && patch.rate_limit.is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the rate limit of a business's keys is set by the operator of this deployment",
        )
        .at("rate_limit"));
    }
    if patch.embed_frame_ancestors.is_none()
        && patch.rate_limit.is_none()
        && patch.new_conversation_after_hours.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "nothing to change: give embed_frame_ancestors (a list of origins, like https://crm.example.com), \
             rate_limit ({\"per_minute\": 600, \"burst\": 100}) or new_conversation_after_hours (0 to 8760)",
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
    let window = patch
        .new_conversation_after_hours
        .map(|hours| NewConversationAfter::parse(hours, "new_conversation_after_hours"))
        .transpose()?;
    let db = env.db()?;
    let changes = db::businesses::Changes {
        frame_ancestors: ancestors.as_ref(),
        rate_limit,
        new_conversation_after: window,
    };
    if !db::businesses::update(&db, id, &changes).await? {
        return Err(ApiError::not_found(format!("no business {id}")));
    }
    audit
        .record_update(env, id, Action::BusinessUpdated, id.as_str(), &patch)
        .await;
    find(env, id).await.map(Json)
}
