//! Issuing and revoking SSO tokens. A token is random, stored only as a hash, bound to the
//! business of the API key that asked for it and to one of its customers, and carries nothing
//! of the key: holding a token reveals nothing and allows only what its scope says.

use domain::api::embed::{RevokeIn, RevokedOut, TokenOut};
use domain::audit::Action;
use domain::error::ApiError;
use domain::ids::SsoTokenId;
use domain::sso::{TokenIn, TokenRequest};
use domain::tenant::Tenant;
use edge::Env;
use edge::db::sso_tokens::{self, NewToken, Revoked};
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Origin};
use edge::{db, runtime};

pub async fn generate(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Json(input): Json<TokenIn>,
    Origin(origin): Origin,
) -> Result<Created<TokenOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
    let request = TokenRequest::parse(input)?;
    let db = env.db()?;
    let customer =
        db::customers::first_named(&db, tenant, &request.customer.keys, &request.customer.named_by).await?;

    let issued = domain::sso::issue(runtime::random()?);
    let id = SsoTokenId::generate(runtime::random()?);
    let created_at = runtime::now();
    let expires_at = created_at.plus_seconds(request.lifetime_seconds);
    sso_tokens::insert(
        &db,
        tenant,
        &NewToken {
            id: &id,
            customer_id: &customer.id,
            scope: request.scope,
            issued: &issued,
            created_at,
            expires_at,
        },
    )
    .await?;
    let detail = serde_json::json!({
        "customer_id": customer.id,
        "scope": request.scope.as_str(),
        "expires_at": expires_at.to_rfc3339(),
    });
    audit
        .record(
            env,
            &tenant.business_id,
            Action::SsoTokenIssued,
            Some(id.as_str()),
            detail,
        )
        .await;
    let embed_url = format!("{origin}/embed/inbox?token={}", issued.plaintext);
    Ok(Created(TokenOut {
        token: issued.plaintext,
        token_id: id,
        customer_id: customer.id,
        scope: request.scope.as_str(),
        expires_in: request.lifetime_seconds,
        expires_at: expires_at.to_rfc3339(),
        embed_url,
    }))
}

/// Revokes a token named by itself (`token`) or by its `token_id`. Idempotent.
pub async fn revoke(
    tenant: Tenant,
    env: Env,
    audit: Audit,
    Json(input): Json<RevokeIn>,
) -> Result<Json<RevokedOut>, ApiError> {
    let given = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let db = env.db()?;
    let now = runtime::now();
    let not_found = || ApiError::not_found("this business issued no such token");
    let revoked = match (given(&input.token), given(&input.token_id)) {
        (Some(token), None) => match domain::sso::parse_presented(&token) {
            Some(hash) => sso_tokens::revoke(&db, &tenant, Revoked::ByToken(&hash), now).await?,
            None => None,
        },
        (None, Some(id)) => {
            let id = SsoTokenId::parse(&id).ok_or_else(|| {
                ApiError::invalid("token_id", "token_id is the token_id the token was issued with")
            })?;
            sso_tokens::revoke(&db, &tenant, Revoked::ById(&id), now).await?
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "token",
                "name the token to revoke: token or token_id",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "token",
                "name the token once: token or token_id, not both",
            ));
        }
    };
    let id = revoked.ok_or_else(not_found)?;
    audit
        .record(
            &env,
            &tenant.business_id,
            Action::SsoTokenRevoked,
            Some(id.as_str()),
            serde_json::json!({}),
        )
        .await;
    Ok(Json(RevokedOut {
        revoked: true,
        token_id: id,
    }))
}
