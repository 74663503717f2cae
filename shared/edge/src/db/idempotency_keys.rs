//! `idempotency_keys`: each key a business sent with a POST that creates or sends, the request it
//! came with (by fingerprint), and the first response once there is one. `edge::platform::idempotency`
//! holds the rules; this module only the SQL.

use crate::db::Db;
use crate::db::directory::Moving;
use crate::db::{self, number, optional_text, text};
use domain::error::ApiError;
use domain::idempotency::IdempotencyKey;
use domain::tenant::Tenant;
use serde::Deserialize;

/// A run's claim on a key.
pub struct Claim<'a> {
    pub key: &'a IdempotencyKey,
    pub fingerprint: &'a str,
    pub claim: &'a str,
    pub now_us: i64,
    pub lease_until_us: i64,
    /// Rows created before this are forgotten: the key is free again.
    pub expired_before_us: i64,
}

/// A key as stored.
#[derive(Deserialize)]
pub struct Stored {
    pub fingerprint: String,
    pub claim: String,
    pub state: String,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Option<String>,
}

/// Claims the key for this run: true when it was free, expired, or held by a run of the same
/// request whose lease ran out. Otherwise the key's row is left as it is.
pub async fn claim(db: &Db, tenant: &Tenant, claim: &Claim<'_>) -> Result<bool, ApiError> {
    let result = db
        .scoped(tenant, "INSERT INTO idempotency_keys (business_id, key, fingerprint, claim, state, created_us, lease_until_us) \
             VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6) \
             ON CONFLICT (business_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, claim = excluded.claim, \
             state = 'running', status = NULL, content_type = NULL, body = NULL, created_us = excluded.created_us, \
             lease_until_us = excluded.lease_until_us \
             WHERE idempotency_keys.created_us < ?7 OR (idempotency_keys.state = 'running' \
             AND idempotency_keys.lease_until_us < ?5 AND idempotency_keys.fingerprint = excluded.fingerprint)",
        )
        .bind(&[
            text(claim.key.as_str()),
            text(claim.fingerprint),
            text(claim.claim),
            number(claim.now_us),
            number(claim.lease_until_us),
            number(claim.expired_before_us),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

pub async fn find(db: &Db, tenant: &Tenant, key: &IdempotencyKey) -> Result<Option<Stored>, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT fingerprint, claim, state, status, content_type, body FROM idempotency_keys \
             WHERE business_id = ?1 AND key = ?2",
        )
        .bind(&[text(key.as_str())])?
        .first::<Stored>(None)
        .await?)
}

/// Keeps the run's response for replay.
pub async fn complete(
    db: &Db,
    tenant: &Tenant,
    key: &IdempotencyKey,
    claim: &str,
    status: u16,
    content_type: Option<&str>,
    sealed_body: &str,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE idempotency_keys SET state = 'done', status = ?4, content_type = ?5, body = ?6 \
         WHERE business_id = ?1 AND key = ?2 AND claim = ?3",
    )
    .bind(&[
        text(key.as_str()),
        text(claim),
        number(i64::from(status)),
        optional_text(content_type),
        text(sealed_body),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Frees the key after a run that decided nothing (a server error): the next retry runs again.
pub async fn release(db: &Db, tenant: &Tenant, key: &IdempotencyKey, claim: &str) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "DELETE FROM idempotency_keys WHERE business_id = ?1 AND key = ?2 AND claim = ?3",
    )
    .bind(&[text(key.as_str()), text(claim)])?
    .run()
    .await?;
    Ok(())
}

/// Extends the lease of the run `claim` while it still holds the key and runs.
pub async fn extend(
    db: &Db,
    tenant: &Tenant,
    key: &IdempotencyKey,
    claim: &str,
    lease_until_us: i64,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE idempotency_keys SET lease_until_us = ?4 WHERE business_id = ?1 AND key = ?2 AND claim = ?3 \
         AND state = 'running'",
    )
    .bind(&[text(key.as_str()), text(claim), number(lease_until_us)])?
    .run()
    .await?;
    Ok(())
}

/// Deletes up to `limit` keys created before `before_us`, across businesses. How many went.
pub async fn delete_created_before(
    db: &Db,
    moving: &Moving,
    before_us: i64,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys \
             WHERE created_us < ?1 AND business_id NOT IN (SELECT value FROM json_each(?3)) \
             ORDER BY created_us LIMIT ?2)",
        )
        .bind(&[number(before_us), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};
    use std::time::Duration;

    const SECOND_US: i64 = 1_000_000;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::from_header(Some(text))
            .must()
            .unwrap_or_else(|| panic!("a key"))
    }

    /// Claims `key` now for `run` with `fingerprint`, its lease 30 s, keys older than a day free.
    async fn take(
        fixture: &Fixture,
        tenant: &Tenant,
        key: &IdempotencyKey,
        fingerprint: &str,
        run: &str,
    ) -> bool {
        let now_us = fixture.now().micros();
        let claimed = Claim {
            key,
            fingerprint,
            claim: run,
            now_us,
            lease_until_us: now_us + 30 * SECOND_US,
            expired_before_us: now_us - 86_400 * SECOND_US,
        };
        claim(&fixture.db, tenant, &claimed).await.must()
    }

    async fn stored(fixture: &Fixture, tenant: &Tenant, key: &IdempotencyKey) -> Stored {
        find(&fixture.db, tenant, key)
            .await
            .must()
            .unwrap_or_else(|| panic!("stored"))
    }

    #[test]
    fn a_key_held_by_a_running_request_is_taken_over_only_once_its_lease_runs_out() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let order = key("order-1");
            assert!(take(&fixture, &acme, &order, "fp-a", "run-1").await, "a free key");
            assert!(
                !take(&fixture, &acme, &order, "fp-a", "run-2").await,
                "a retry while the first runs"
            );
            fixture.stack.advance(Duration::from_secs(31));
            assert!(
                !take(&fixture, &acme, &order, "fp-b", "run-2").await,
                "another request never takes it over"
            );
            assert!(
                take(&fixture, &acme, &order, "fp-a", "run-2").await,
                "the same request after its worker died"
            );
            let now = stored(&fixture, &acme, &order).await;
            assert_eq!((now.claim.as_str(), now.state.as_str()), ("run-2", "running"));

            // The first run's late answers land nowhere.
            complete(
                &fixture.db,
                &acme,
                &order,
                "run-1",
                201,
                Some("application/json"),
                "sealed-1",
            )
            .await
            .must();
            release(&fixture.db, &acme, &order, "run-1").await.must();
            let held = stored(&fixture, &acme, &order).await;
            assert_eq!(
                (held.claim.as_str(), held.state.as_str(), held.body),
                ("run-2", "running", None)
            );
        });
    }

    #[test]
    fn a_completed_key_keeps_its_first_response_until_it_expires() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let order = key("order-1");
            take(&fixture, &acme, &order, "fp-a", "run-1").await;
            complete(
                &fixture.db,
                &acme,
                &order,
                "run-1",
                201,
                Some("application/json"),
                "sealed-body",
            )
            .await
            .must();
            let done = stored(&fixture, &acme, &order).await;
            assert_eq!(
                (done.state.as_str(), done.status, done.content_type.as_deref()),
                ("done", Some(201), Some("application/json"))
            );
            assert_eq!(
                (done.fingerprint.as_str(), done.body.as_deref()),
                ("fp-a", Some("sealed-body"))
            );
            fixture.stack.advance(Duration::from_secs(3600));
            assert!(
                !take(&fixture, &acme, &order, "fp-a", "run-2").await,
                "done: replayed, not run again"
            );
            extend(
                &fixture.db,
                &acme,
                &order,
                "run-1",
                fixture.now().micros() + SECOND_US,
            )
            .await
            .must();
            assert_eq!(stored(&fixture, &acme, &order).await.state, "done");
            fixture.stack.advance(Duration::from_secs(86_400));
            assert!(
                take(&fixture, &acme, &order, "fp-b", "run-3").await,
                "a day later the key is free again"
            );
            let fresh = stored(&fixture, &acme, &order).await;
            assert_eq!(
                (
                    fresh.fingerprint.as_str(),
                    fresh.state.as_str(),
                    fresh.status,
                    fresh.body
                ),
                ("fp-b", "running", None, None)
            );
        });
    }

    #[test]
    fn a_released_key_runs_again_and_an_extended_lease_holds_it_longer() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let order = key("order-1");
            take(&fixture, &acme, &order, "fp-a", "run-1").await;
            release(&fixture.db, &acme, &order, "run-1").await.must();
            assert!(find(&fixture.db, &acme, &order).await.must().is_none());
            assert!(take(&fixture, &acme, &order, "fp-a", "run-2").await);
            extend(
                &fixture.db,
                &acme,
                &order,
                "run-2",
                fixture.now().micros() + 120 * SECOND_US,
            )
            .await
            .must();
            fixture.stack.advance(Duration::from_secs(60));
            assert!(
                !take(&fixture, &acme, &order, "fp-a", "run-3").await,
                "the lease was extended"
            );
            fixture.stack.advance(Duration::from_secs(61));
            assert!(take(&fixture, &acme, &order, "fp-a", "run-3").await);
        });
    }

    #[test]
    fn keys_are_each_business_own_and_expire_on_each_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let initech = fixture.business_on("Initech", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let order = key("order-1");
            assert!(take(&fixture, &acme, &order, "fp-a", "run-1").await);
            assert!(
                take(&fixture, &initech, &order, "fp-x", "run-x").await,
                "the same key of another business"
            );
            assert!(take(&fixture, &globex, &order, "fp-g", "run-g").await);
            complete(&fixture.db, &initech, &order, "run-1", 500, None, "theirs")
                .await
                .must();
            release(&fixture.db, &initech, &order, "run-1").await.must();
            assert_eq!(stored(&fixture, &acme, &order).await.state, "running");
            fixture.stack.advance(Duration::from_secs(60));
            let later = key("order-2");
            take(&fixture, &acme, &later, "fp", "run").await;
            let cutoff = fixture.now().micros();
            let shards = fixture.db.each_shard();
            assert_eq!(
                delete_created_before(&shards[0], &Moving::NONE, cutoff, 1)
                    .await
                    .must(),
                1,
                "to the limit"
            );
            assert_eq!(
                delete_created_before(&shards[0], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                1
            );
            assert_eq!(
                delete_created_before(&shards[0], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                0,
                "the newer key stays"
            );
            assert_eq!(
                delete_created_before(&shards[1], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                1
            );
            assert!(find(&fixture.db, &acme, &later).await.must().is_some());
        });
    }
}
