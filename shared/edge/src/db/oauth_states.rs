//! `oauth_states`: the nonces of OAuth authorisations started and not yet finished. A state
//! (`edge::crm::oauth`) names its nonce; finishing the authorisation takes it, so a state is
//! good once.

use crate::db::directory::Moving;
use crate::db::{self, Db, number, text};
use domain::error::ApiError;
use domain::tenant::Tenant;

/// Records the nonce of an authorisation the tenant started, good until `expires_ms`.
pub async fn start(db: &Db, tenant: &Tenant, nonce: &str, expires_ms: i64) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO oauth_states (nonce, business_id, expires_ms) VALUES (?2, ?1, ?3)",
    )
    .bind(&[text(nonce), number(expires_ms)])?
    .run()
    .await?;
    Ok(())
}

/// Takes the tenant's nonce, unexpired at `now_ms`: true once, for the one completion that
/// uses it; false when it was taken already, expired, or is not the tenant's.
pub async fn take(db: &Db, tenant: &Tenant, nonce: &str, now_ms: i64) -> Result<bool, ApiError> {
    let result = db
        .scoped(
            tenant,
            "DELETE FROM oauth_states WHERE business_id = ?1 AND nonce = ?2 AND expires_ms >= ?3",
        )
        .bind(&[text(nonce), number(now_ms)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// The maintenance sweep's: deletes at most `limit` of the shard's nonces that expired before
/// `now_ms` unused, businesses being moved left out.
pub async fn delete_expired(db: &Db, moving: &Moving, now_ms: i64, limit: usize) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM oauth_states WHERE nonce IN (SELECT nonce FROM oauth_states WHERE expires_ms < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) LIMIT ?2)",
        )
        .bind(&[number(now_ms), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};

    #[test]
    fn a_nonce_is_taken_once_by_its_own_business_before_it_expires() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let globex = fixture.business("Globex").await;
            start(&fixture.db, &acme, "n1", 1_000).await.must();
            assert!(
                !take(&fixture.db, &globex, "n1", 0).await.must(),
                "not another business's"
            );
            assert!(take(&fixture.db, &acme, "n1", 1_000).await.must());
            assert!(!take(&fixture.db, &acme, "n1", 1_000).await.must(), "once");
            start(&fixture.db, &acme, "n2", 1_000).await.must();
            assert!(!take(&fixture.db, &acme, "n2", 1_001).await.must(), "expired");
            for shard in fixture.db.each_shard() {
                delete_expired(&shard, &Moving::NONE, 1_001, 10).await.must();
            }
            assert!(fixture.rows_on("DB", "oauth_states", "nonce").is_empty());
        });
    }
}
