//! `sso_tokens`: tokens that open the embedded inbox for one customer. Only their SHA-256 is
//! stored; they are read on every request (never cached), so a revoke applies at once. Retention
//! deletes expired tokens of every business.

use crate::db::Db;
use crate::db::{self, number, text};
use domain::error::ApiError;
use domain::ids::{CustomerId, SsoTokenId};
use domain::sso::{IssuedToken, Scope, TokenHash};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// A token as stored: whose it is, what it allows, and until when.
pub struct NewToken<'a> {
    pub id: &'a SsoTokenId,
    pub customer_id: &'a CustomerId,
    pub scope: Scope,
    pub issued: &'a IssuedToken,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

pub async fn insert(db: &Db, tenant: &Tenant, token: &NewToken<'_>) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO sso_tokens (id, business_id, customer_id, token_hash, scope, created_at, expires_ms) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&[
        text(token.id.as_str()),
        text(token.customer_id.as_str()),
        text(token.issued.hash.as_str()),
        text(token.scope.as_str()),
        text(&token.created_at.to_rfc3339()),
        number(token.expires_at.millis()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// A stored token with what a session needs of its business.
pub struct StoredToken {
    pub tenant: Tenant,
    pub frame_ancestors: Vec<String>,
    pub customer_id: CustomerId,
    pub scope: Scope,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

/// The token with this hash, whatever its state, or None when it was never issued.
pub async fn find(db: &Db, hash: &TokenHash) -> Result<Option<StoredToken>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        business_id: String,
        default_country: Option<String>,
        embed_frame_ancestors: String,
        customer_id: CustomerId,
        scope: String,
        expires_ms: i64,
        revoked_at: Option<String>,
    }
    let row = db
        .unscoped(
            "SELECT t.id, t.business_id, b.default_country, b.embed_frame_ancestors, t.customer_id, t.scope, \
             t.expires_ms, t.revoked_at FROM sso_tokens t JOIN businesses b ON b.id = t.business_id \
             WHERE t.token_hash = ?1",
        )
        .bind(&[text(hash.as_str())])?
        .first::<Row>(None)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(StoredToken {
        tenant: Tenant::from_stored(&row.business_id, row.default_country.as_deref())?,
        frame_ancestors: serde_json::from_str(&row.embed_frame_ancestors)
            .map_err(|_| db::corrupt("businesses", &row.business_id, "embed_frame_ancestors"))?,
        scope: Scope::parse(&row.scope).ok_or_else(|| db::corrupt("sso_tokens", &row.id, "scope"))?,
        customer_id: row.customer_id,
        expires_at: Timestamp::from_millis(row.expires_ms),
        revoked: row.revoked_at.is_some(),
    }))
}

/// How a revoke names its token.
pub enum Revoked<'a> {
    ByToken(&'a TokenHash),
    ById(&'a SsoTokenId),
}

/// Revokes one of the tenant's tokens; `Ok(None)` when the tenant has no such token. Revoking
/// twice is harmless and keeps the first revocation's time.
pub async fn revoke(
    db: &Db,
    tenant: &Tenant,
    which: Revoked<'_>,
    now: Timestamp,
) -> Result<Option<SsoTokenId>, ApiError> {
    let (column, value) = match which {
        Revoked::ByToken(hash) => ("token_hash", hash.as_str()),
        Revoked::ById(id) => ("id", id.as_str()),
    };
    #[derive(Deserialize)]
    struct Row {
        id: SsoTokenId,
    }
    let row = db
        .scoped(tenant, format!(
            "UPDATE sso_tokens SET revoked_at = COALESCE(revoked_at, ?3) WHERE business_id = ?1 AND {column} = ?2 \
             RETURNING id"
        ))
        .bind(&[
            text(value),
            text(&now.to_rfc3339()),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.map(|row| row.id))
}

/// Deletes up to `limit` tokens that expired before `before`, across businesses. How many went.
pub async fn delete_expired_before(db: &Db, before: Timestamp, limit: usize) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM sso_tokens WHERE id IN (SELECT id FROM sso_tokens WHERE expires_ms < ?1 \
             ORDER BY expires_ms LIMIT ?2)",
        )
        .bind(&[number(before.millis()), number(limit as i64)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
