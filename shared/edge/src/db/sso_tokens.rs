//! `sso_tokens`: tokens that open the embedded inbox for one customer. Only their SHA-256 is
//! stored; they are read on every request (never cached), so a revoke applies at once. Retention
//! deletes expired tokens of every business.

use crate::db::Db;
use crate::db::directory::Moving;
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
pub async fn delete_expired_before(
    db: &Db,
    moving: &Moving,
    before: Timestamp,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM sso_tokens WHERE id IN (SELECT id FROM sso_tokens WHERE expires_ms < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY expires_ms LIMIT ?2)",
        )
        .bind(&[number(before.millis()), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// A restore's: every embedding token of the business the backup held is revoked.
pub fn revoke_all(db: &Db, tenant: &Tenant, now: &str) -> Result<crate::db::Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE sso_tokens SET revoked_at = ?2 WHERE business_id = ?1 AND revoked_at IS NULL",
        )
        .bind(&[text(now)])?)
}

/// The statement that deletes the customer's SSO tokens, revoked or not (an erasure's first).
pub fn erase_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
) -> Result<crate::db::Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM sso_tokens WHERE business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::sso::{SECRET_BYTES, issue};
    use std::time::Duration;

    async fn token(
        fixture: &Fixture,
        tenant: &Tenant,
        customer: &CustomerId,
        lifetime: i64,
    ) -> (SsoTokenId, IssuedToken) {
        let id = SsoTokenId::generate(random());
        let issued = issue(crate::runtime::random::<SECRET_BYTES>().must());
        let now = fixture.now();
        let new = NewToken {
            id: &id,
            customer_id: customer,
            scope: Scope::InboxReply,
            issued: &issued,
            created_at: now,
            expires_at: now.plus_seconds(lifetime),
        };
        insert(&fixture.db, tenant, &new).await.must();
        (id, issued)
    }

    #[test]
    fn a_token_is_found_by_its_hash_whatever_its_state() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let ancestors =
                domain::sso::FrameAncestors::parse(&["https://crm.example.com".to_owned()]).must();
            let changes = crate::db::businesses::Changes {
                frame_ancestors: Some(&ancestors),
                ..Default::default()
            };
            crate::db::businesses::update(&fixture.db, &acme.business_id, &changes)
                .await
                .must();
            let ann = fixture.customer(&acme, "Ann").await;
            let (_, issued) = token(&fixture, &acme, &ann, 3600).await;
            let found = find(&fixture.db, &issued.hash)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(
                (found.tenant, found.customer_id, found.scope, found.revoked),
                (acme.clone(), ann, Scope::InboxReply, false)
            );
            assert_eq!(found.expires_at, fixture.now().plus_seconds(3600));
            assert_eq!(found.frame_ancestors, ["https://crm.example.com"]);
            assert!(
                find(&fixture.db, &TokenHash::of("never issued"))
                    .await
                    .must()
                    .is_none()
            );
            fixture.stack.advance(Duration::from_secs(3601));
            let expired = find(&fixture.db, &issued.hash)
                .await
                .must()
                .unwrap_or_else(|| panic!("still found"));
            assert!(
                expired.expires_at < fixture.now(),
                "found expired: the caller refuses it"
            );
        });
    }

    #[test]
    fn a_token_is_revoked_by_its_business_once_by_id_or_by_token() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let (by_id, first) = token(&fixture, &acme, &ann, 3600).await;
            let (by_token, second) = token(&fixture, &acme, &ann, 3600).await;
            let now = fixture.now();
            assert_eq!(
                revoke(&fixture.db, &globex, Revoked::ById(&by_id), now)
                    .await
                    .must(),
                None
            );
            assert_eq!(
                revoke(&fixture.db, &globex, Revoked::ByToken(&second.hash), now)
                    .await
                    .must(),
                None
            );
            assert!(
                !find(&fixture.db, &first.hash)
                    .await
                    .must()
                    .is_some_and(|t| t.revoked)
            );
            assert_eq!(
                revoke(&fixture.db, &acme, Revoked::ById(&by_id), now)
                    .await
                    .must(),
                Some(by_id.clone())
            );
            assert_eq!(
                revoke(&fixture.db, &acme, Revoked::ByToken(&second.hash), now)
                    .await
                    .must(),
                Some(by_token)
            );
            fixture.stack.advance(Duration::from_secs(5));
            assert_eq!(
                revoke(&fixture.db, &acme, Revoked::ById(&by_id), fixture.now())
                    .await
                    .must(),
                Some(by_id),
                "harmless twice"
            );
            let rows = fixture.rows("sso_tokens", "created_at");
            assert!(
                rows.iter()
                    .all(|row| row["revoked_at"] == serde_json::json!(now.to_rfc3339())),
                "{rows:?}"
            );
            assert!(
                find(&fixture.db, &first.hash)
                    .await
                    .must()
                    .is_some_and(|t| t.revoked)
            );
        });
    }

    #[test]
    fn expired_tokens_are_deleted_on_each_shard_oldest_first() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let bob = fixture.customer(&globex, "Bob").await;
            let (short, _) = token(&fixture, &acme, &ann, 60).await;
            let (medium, _) = token(&fixture, &acme, &ann, 120).await;
            let (long, _) = token(&fixture, &acme, &ann, 86_400).await;
            token(&fixture, &globex, &bob, 60).await;
            fixture.stack.advance(Duration::from_secs(600));
            let shards = fixture.db.each_shard();
            assert_eq!(
                delete_expired_before(&shards[0], &Moving::NONE, fixture.now(), 1)
                    .await
                    .must(),
                1
            );
            let left: Vec<String> = fixture
                .rows("sso_tokens", "expires_ms")
                .iter()
                .map(|row| row["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            assert_eq!(
                left[..2],
                [medium.to_string(), long.to_string()],
                "the first to expire went first"
            );
            assert!(!left.contains(&short.to_string()));
            assert_eq!(
                delete_expired_before(&shards[0], &Moving::NONE, fixture.now(), 10)
                    .await
                    .must(),
                1
            );
            assert_eq!(
                delete_expired_before(&shards[1], &Moving::NONE, fixture.now(), 10)
                    .await
                    .must(),
                1
            );
            assert_eq!(
                fixture.rows("sso_tokens", "id").len(),
                1,
                "the token still valid stays"
            );
        });
    }
}
