//! `api_keys`: the keys a business's CRM calls with, stored only as a SHA-256 hash.

use crate::db::Db;
use crate::db::Rows;
use crate::db::{self, text};
use domain::api_key::ApiKeyHash;
use domain::error::ApiError;
use domain::ids::ApiKeyId;
use domain::rate_limit::Policy;
use domain::tenant::Tenant;
use serde::Deserialize;

pub use domain::api::admin::ApiKey;

const COLUMNS: &str = "id, business_id, name, prefix, created_at, revoked_at, last_used_at, last_used_address, last_used_endpoint";

/// Stores the tenant's new key (`key.business_id` is the tenant's).
pub async fn insert(db: &Db, tenant: &Tenant, key: &ApiKey, hash: &ApiKeyHash) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO api_keys (id, business_id, name, prefix, key_hash, created_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
            text(key.id.as_str()),
            db::optional_text(key.name.as_deref()),
            text(&key.prefix),
            text(hash.as_str()),
            text(&key.created_at),
        ])?
        .run()
        .await?;
    Ok(())
}

pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<ApiKey>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!("SELECT {COLUMNS} FROM api_keys WHERE business_id = ?1 ORDER BY created_at, id"),
        )
        .all()
        .await?;
    Ok(result.rows::<ApiKey>()?)
}

/// Revokes the tenant's key (once: a second revoke keeps the first time); the key and its hash,
/// or None when the tenant has no such key.
pub async fn revoke(
    db: &Db,
    tenant: &Tenant,
    id: &ApiKeyId,
    now: &str,
) -> Result<Option<(ApiKey, ApiKeyHash)>, ApiError> {
    #[derive(Deserialize)]
    struct Revoked {
        #[serde(flatten)]
        key: ApiKey,
        key_hash: String,
    }
    let revoked = db
        .scoped(
            tenant,
            format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE business_id = ?1 AND id = ?2 \
                 RETURNING {COLUMNS}, key_hash"
            ),
        )
        .bind(&[text(id.as_str()), text(now)])?
        .first::<Revoked>(None)
        .await?;
    Ok(revoked.map(|row| (row.key, ApiKeyHash::from_stored(row.key_hash))))
}

/// The business of key `id`, for the operator, whose path names only the key.
pub async fn owner(db: &Db, id: &ApiKeyId) -> Result<Option<Tenant>, ApiError> {
    db::owner(
        db.unscoped(
            "SELECT b.id AS business_id, b.default_country FROM api_keys k \
             JOIN businesses b ON b.id = k.business_id WHERE k.id = ?1",
        )
        .bind(&[text(id.as_str())])?,
    )
    .await
}

/// An active key as its limiter object knows it: its business's rate limit, the business and
/// the key's id (under which its usage is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub policy: Policy,
    pub tenant: Tenant,
    pub key_id: ApiKeyId,
}

/// The active key with this hash, as its limiter knows it ([`Limited`]), or None for an unknown
/// or revoked key.
pub async fn limited(db: &Db, hash: &ApiKeyHash) -> Result<Option<Limited>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: ApiKeyId,
        business_id: String,
        default_country: Option<String>,
        rate_limit_per_minute: Option<i64>,
        rate_limit_burst: Option<i64>,
    }
    let row = db
        .unscoped(
            "SELECT k.id, k.business_id, b.default_country, b.rate_limit_per_minute, b.rate_limit_burst \
             FROM api_keys k JOIN businesses b ON b.id = k.business_id \
             WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
        )
        .bind(&[text(hash.as_str())])?
        .first::<Row>(None)
        .await?;
    row.map(|row| {
        Ok(Limited {
            policy: Policy::stored(row.rate_limit_per_minute, row.rate_limit_burst),
            tenant: Tenant::from_stored(&row.business_id, row.default_country.as_deref())?,
            key_id: row.id,
        })
    })
    .transpose()
}

/// The business an active key with this hash belongs to, or None for an unknown or revoked key.
pub async fn tenant_of(db: &Db, hash: &ApiKeyHash) -> Result<Option<Tenant>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: String,
        default_country: Option<String>,
    }
    let row = db
        .unscoped(
            "SELECT k.business_id, b.default_country FROM api_keys k \
             JOIN businesses b ON b.id = k.business_id \
             WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
        )
        .bind(&[text(hash.as_str())])?
        .first::<Row>(None)
        .await?;
    row.map(|row| Tenant::from_stored(&row.business_id, row.default_country.as_deref()))
        .transpose()
}

/// A restore's: every key of the business the backup held is revoked (a restore never widens
/// access: a key revoked after the backup was taken would otherwise work again). It returns the
/// keys' hashes, whose cached lookups the restore then forgets.
pub fn revoke_all(db: &Db, tenant: &Tenant, now: &str) -> Result<crate::db::Read<Vec<ApiKeyHash>>, ApiError> {
    let statement = db
        .scoped(
            tenant,
            "UPDATE api_keys SET revoked_at = ?2 WHERE business_id = ?1 AND revoked_at IS NULL \
             RETURNING key_hash",
        )
        .bind(&[text(now)])?;
    Ok(crate::db::Read::new(statement, read_revoked_hashes))
}

/// The hashes of the keys [`revoke_all`] revoked.
fn read_revoked_hashes(answer: &crate::db::D1Result) -> Result<Vec<ApiKeyHash>, ApiError> {
    #[derive(Deserialize)]
    struct Revoked {
        key_hash: String,
    }
    Ok(crate::db::rows::<Revoked>(answer)?
        .into_iter()
        .map(|row| ApiKeyHash::from_stored(row.key_hash))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Violation;
    use crate::testing::{Fixture, Must, random, violation};
    use std::time::Duration;

    /// Issues a key for the tenant now: the key as listed, and its hash.
    async fn issue(fixture: &Fixture, tenant: &Tenant, name: &str) -> (ApiKey, ApiKeyHash) {
        let plaintext = format!("ck_live_{}", hex::encode(random::<16>()));
        let key = ApiKey {
            id: ApiKeyId::generate(random()),
            business_id: tenant.business_id.clone(),
            name: Some(name.to_owned()),
            prefix: plaintext[..12].to_owned(),
            created_at: fixture.now().to_rfc3339(),
            revoked_at: None,
            last_used_at: None,
            last_used_address: None,
            last_used_endpoint: None,
        };
        let hash = ApiKeyHash::of(&plaintext);
        insert(&fixture.db, tenant, &key, &hash).await.must();
        (key, hash)
    }

    #[test]
    fn a_key_names_its_business_until_it_is_revoked() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let (key, hash) = issue(&fixture, &acme, "crm").await;
            assert_eq!(
                tenant_of(&fixture.db, &hash).await.must(),
                Some(acme.clone()),
                "found by its hash on any shard"
            );
            assert_eq!(
                limited(&fixture.db, &hash).await.must(),
                Some(Limited {
                    policy: Policy::DEFAULT_KEY,
                    tenant: acme.clone(),
                    key_id: key.id.clone(),
                })
            );
            assert_eq!(owner(&fixture.db, &key.id).await.must(), Some(acme.clone()));
            fixture.stack.advance(Duration::from_secs(1));
            let first = fixture.now().to_rfc3339();
            let revoked = revoke(&fixture.db, &acme, &key.id, &first).await.must();
            let (listed, revoked_hash) = revoked.unwrap_or_else(|| panic!("revoked"));
            assert_eq!(
                (listed.revoked_at.as_deref(), revoked_hash),
                (Some(first.as_str()), hash.clone())
            );
            assert_eq!(tenant_of(&fixture.db, &hash).await.must(), None);
            assert_eq!(limited(&fixture.db, &hash).await.must(), None);
            fixture.stack.advance(Duration::from_secs(1));
            let again = revoke(&fixture.db, &acme, &key.id, &fixture.now().to_rfc3339())
                .await
                .must();
            assert_eq!(
                again.and_then(|(key, _)| key.revoked_at),
                Some(first),
                "the first revocation's time stays"
            );
            assert_eq!(
                tenant_of(&fixture.db, &ApiKeyHash::of("ck_live_unknown"))
                    .await
                    .must(),
                None
            );
        });
    }

    #[test]
    fn a_business_lists_and_revokes_only_its_own_keys() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (first, _) = issue(&fixture, &acme, "first").await;
            fixture.stack.advance(Duration::from_secs(1));
            let (second, hash) = issue(&fixture, &acme, "second").await;
            issue(&fixture, &globex, "theirs").await;
            let listed: Vec<(ApiKeyId, Option<String>)> = list(&fixture.db, &acme)
                .await
                .must()
                .into_iter()
                .map(|key| (key.id, key.name))
                .collect();
            assert_eq!(
                listed,
                [
                    (first.id.clone(), Some("first".to_owned())),
                    (second.id.clone(), Some("second".to_owned()))
                ]
            );
            let now = fixture.now().to_rfc3339();
            assert!(
                revoke(&fixture.db, &globex, &second.id, &now)
                    .await
                    .must()
                    .is_none()
            );
            assert_eq!(
                tenant_of(&fixture.db, &hash).await.must(),
                Some(acme),
                "still active"
            );
        });
    }

    #[test]
    fn a_hash_is_one_keys() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let (_, hash) = issue(&fixture, &acme, "first").await;
            let twin = ApiKey {
                id: ApiKeyId::generate(random()),
                business_id: acme.business_id.clone(),
                name: None,
                prefix: "ck_live_twin".to_owned(),
                created_at: fixture.now().to_rfc3339(),
                revoked_at: None,
                last_used_at: None,
                last_used_address: None,
                last_used_endpoint: None,
            };
            let refused = insert(&fixture.db, &acme, &twin, &hash).await;
            assert_eq!(
                violation(refused),
                Violation::Unique {
                    columns: vec!["api_keys.key_hash".to_owned()]
                }
            );
        });
    }
}
