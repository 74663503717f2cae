//! `idempotency_keys`: each key a business sent with a POST that creates or sends, the request it
//! came with (by fingerprint), and the first response once there is one. `edge::idempotency`
//! holds the rules; this module only the SQL.

use crate::db::Db;
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
pub async fn delete_created_before(db: &Db, before_us: i64, limit: usize) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys \
             WHERE created_us < ?1 ORDER BY created_us LIMIT ?2)",
        )
        .bind(&[number(before_us), number(limit as i64)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
