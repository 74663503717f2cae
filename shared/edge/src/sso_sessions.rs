//! SSO tokens in D1: issuing, resolving a presented token to the session it grants, revoking,
//! and each business's allowed frame ancestors. Every statement is scoped by the business.
//!
//! Tokens are looked up in D1 on every request rather than cached, so that a revoke is
//! immediate everywhere: the embedded page polls a few times a minute, which D1 handles easily.

use domain::customer::Customer;
use crate::auth::Tenant;
use crate::{customers_repo, d1};
use domain::error::{ApiError, ErrorCode};
use domain::ids::{BusinessId, CustomerId, is_uuid};
use domain::lookup::CustomerKey;
use domain::phone::Country;
use domain::sso::{FrameAncestors, IssuedToken, Scope, TokenHash};
use domain::time::Timestamp;
use serde::Deserialize;
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

/// The id of an issued token (a UUID), which names it for revocation without the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenId(String);

impl TokenId {
    pub fn generate(random: [u8; 16]) -> Self {
        Self(domain::ids::uuid_v4(random))
    }

    pub fn parse(candidate: &str) -> Option<Self> {
        let candidate = candidate.trim().to_ascii_lowercase();
        is_uuid(&candidate).then_some(Self(candidate))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A token as stored: whose it is, what it allows, and until when.
pub struct NewToken<'a> {
    pub id: &'a TokenId,
    pub customer_id: &'a CustomerId,
    pub scope: Scope,
    pub issued: &'a IssuedToken,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

pub async fn store(db: &D1Database, tenant: &Tenant, token: &NewToken<'_>) -> Result<(), ApiError> {
    db.prepare(
        "INSERT INTO sso_tokens (id, business_id, customer_id, token_hash, scope, created_at, expires_ms) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&[
        d1::text(tenant.business_id.as_str()),
        d1::text(token.id.as_str()),
        d1::text(token.customer_id.as_str()),
        d1::text(token.issued.hash.as_str()),
        d1::text(token.scope.as_str()),
        d1::text(&token.created_at.to_rfc3339()),
        JsValue::from_f64(token.expires_at.millis() as f64),
    ])?
    .run()
    .await?;
    Ok(())
}

/// What a valid token lets the embedded page do: act for one customer of one business.
pub struct Session {
    pub tenant: Tenant,
    pub customer: Customer,
    pub scope: Scope,
    pub expires_at: Timestamp,
    pub frame_ancestors: FrameAncestors,
}

/// Why a presented token grants nothing. The embedded page turns each into its own page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or one that was never issued (mistyped, truncated, forged).
    Unknown,
    Expired,
    Revoked,
    /// The token was valid but its customer is gone.
    CustomerGone,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Self::Unknown | Self::Expired => 401,
            Self::Revoked => 403,
            Self::CustomerGone => 404,
        }
    }

    pub fn into_error(self) -> ApiError {
        let (code, message) = match self {
            Self::Unknown => (ErrorCode::Unauthorized, "this link is not valid"),
            Self::Expired => (ErrorCode::Unauthorized, "this link has expired"),
            Self::Revoked => (ErrorCode::Forbidden, "this link was revoked"),
            Self::CustomerGone => (ErrorCode::NotFound, "this customer no longer exists"),
        };
        ApiError::new(code, message)
    }
}

#[derive(Deserialize)]
struct TokenRow {
    business_id: String,
    default_country: Option<String>,
    embed_frame_ancestors: String,
    customer_id: String,
    scope: String,
    expires_ms: i64,
    revoked_at: Option<String>,
}

/// The session a presented token grants at `now`, or why it grants none.
pub async fn resolve(
    db: &D1Database,
    presented: Option<&str>,
    now: Timestamp,
) -> Result<Result<Session, Refusal>, ApiError> {
    let Some(hash) = presented.and_then(domain::sso::parse_presented) else {
        return Ok(Err(Refusal::Unknown));
    };
    let row = db
        .prepare(
            "SELECT t.business_id, b.default_country, b.embed_frame_ancestors, t.customer_id, t.scope, \
             t.expires_ms, t.revoked_at FROM sso_tokens t JOIN businesses b ON b.id = t.business_id \
             WHERE t.token_hash = ?1",
        )
        .bind(&[d1::text(hash.as_str())])?
        .first::<TokenRow>(None)
        .await?;
    let Some(row) = row else {
        return Ok(Err(Refusal::Unknown));
    };
    if row.revoked_at.is_some() {
        return Ok(Err(Refusal::Revoked));
    }
    if now.millis() >= row.expires_ms {
        return Ok(Err(Refusal::Expired));
    }
    let corrupt =
        |what: &str| ApiError::internal("resolving an SSO token", format!("stored {what} is not valid"));
    let tenant = Tenant {
        business_id: BusinessId::parse(&row.business_id).ok_or_else(|| corrupt("business id"))?,
        default_country: match row.default_country.as_deref() {
            Some(code) => Some(Country::parse(code).map_err(|_| corrupt("country"))?),
            None => None,
        },
    };
    let scope = Scope::parse(&row.scope).ok_or_else(|| corrupt("scope"))?;
    let customer_id = CustomerId::parse(&row.customer_id).ok_or_else(|| corrupt("customer id"))?;
    let Some(customer) = customers_repo::find_one(db, &tenant, &CustomerKey::Id(customer_id)).await? else {
        return Ok(Err(Refusal::CustomerGone));
    };
    let stored: Vec<String> = serde_json::from_str(&row.embed_frame_ancestors).unwrap_or_default();
    Ok(Ok(Session {
        tenant,
        customer,
        scope,
        expires_at: Timestamp::from_millis(row.expires_ms),
        frame_ancestors: FrameAncestors::from_stored(&stored),
    }))
}

/// How a revoke names its token.
pub enum Revoked<'a> {
    ByToken(&'a TokenHash),
    ById(&'a TokenId),
}

/// Revokes one of the tenant's tokens; `Ok(None)` when the tenant has no such token. Revoking
/// twice is harmless and keeps the first revocation's time.
pub async fn revoke(
    db: &D1Database,
    tenant: &Tenant,
    which: Revoked<'_>,
    now: Timestamp,
) -> Result<Option<TokenId>, ApiError> {
    let (column, value) = match which {
        Revoked::ByToken(hash) => ("token_hash", hash.as_str()),
        Revoked::ById(id) => ("id", id.as_str()),
    };
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let row = db
        .prepare(format!(
            "UPDATE sso_tokens SET revoked_at = COALESCE(revoked_at, ?3) WHERE business_id = ?1 AND {column} = ?2 \
             RETURNING id"
        ))
        .bind(&[
            d1::text(tenant.business_id.as_str()),
            d1::text(value),
            d1::text(&now.to_rfc3339()),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.and_then(|row| TokenId::parse(&row.id)))
}

/// Replaces the business's allowed frame ancestors; `false` when there is no such business.
pub async fn set_frame_ancestors(
    db: &D1Database,
    business_id: &BusinessId,
    ancestors: &FrameAncestors,
) -> Result<bool, ApiError> {
    let json = serde_json::to_string(ancestors.origins())
        .map_err(|error| ApiError::internal("storing frame ancestors", error))?;
    let result = db
        .prepare("UPDATE businesses SET embed_frame_ancestors = ?2 WHERE id = ?1")
        .bind(&[d1::text(business_id.as_str()), d1::text(&json)])?
        .run()
        .await?;
    Ok(result
        .meta()?
        .and_then(|meta| meta.changes)
        .is_some_and(|changes| changes > 0))
}
