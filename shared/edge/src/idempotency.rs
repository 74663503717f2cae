//! `Idempotency-Key` on the POSTs that create or send: a retry of the same request gets the first
//! response again and does nothing twice (docs/api.md, "Retrying safely"). The words are in
//! `domain::idempotency`, the SQL in `db::idempotency_keys`.
//!
//! What holds, and how: the first request with a key claims it in D1 with one conditional insert,
//! so of two concurrent requests exactly one runs and the other is told to retry (409 with
//! `Retry-After: 1`); D1 is one database, so this holds across isolates and locations. The
//! response is kept once the run ends. A server error releases the key (the retry runs again),
//! and a run whose worker died holds its key for [`LEASE_SECONDS`] at most, after which a retry of
//! the same request takes it over (a live run renews its lease, however long it takes). Keys are forgotten 24 hours after their first use. A kept
//! response is sealed with the `SECRETS_KEY` keyring, which every function that takes keys holds.

use crate::Env;
use crate::console_error;
use crate::db::Db;
use crate::runtime::{Delay, Headers, Request, Response};
use crate::secrets_key;
use crate::{DB, db, http, runtime};
use domain::error::ApiError;
use domain::idempotency::{self, HEADER, IdempotencyKey, LEASE_SECONDS, RETENTION_SECONDS};
use domain::sealed::Place;
use domain::tenant::Tenant;
use futures_util::future::{Either, select};
use std::pin::pin;
use std::time::Duration;

/// The response header that marks a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The request's `Idempotency-Key`, if it carries one (400 when it is malformed).
pub fn key_of(req: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    IdempotencyKey::from_header(req.headers().get(HEADER)?.as_deref())
}

/// What makes two requests with one key the same request: method, path, content type and body.
pub fn fingerprint(req: &Request, body: &[u8]) -> Result<String, ApiError> {
    let content_type = req.headers().get("content-type")?;
    Ok(idempotency::fingerprint(
        req.method().as_ref(),
        &req.path(),
        content_type.as_deref(),
        body,
    ))
}

/// Runs `run` if this request claims `key` first; otherwise answers as the run that holds or
/// held it answered, or tells the client to wait.
pub async fn guarded(
    env: &Env,
    tenant: &Tenant,
    key: &IdempotencyKey,
    fingerprint: &str,
    run: std::pin::Pin<Box<dyn Future<Output = Result<Response, ApiError>> + '_>>,
) -> Result<Response, ApiError> {
    let db = env.d1(DB)?;
    let now_us = runtime::now().micros();
    let claim = hex::encode(runtime::random::<16>()?);
    let claimed = db::idempotency_keys::claim(
        &db,
        tenant,
        &db::idempotency_keys::Claim {
            key,
            fingerprint,
            claim: &claim,
            now_us,
            lease_until_us: now_us + LEASE_SECONDS * 1_000_000,
            expired_before_us: now_us - RETENTION_SECONDS * 1_000_000,
        },
    )
    .await?;
    if !claimed {
        return replay(
            env,
            db::idempotency_keys::find(&db, tenant, key).await?,
            fingerprint,
        )
        .await;
    }

    // The lease is renewed while the run lives, so that a slow run (a large batch) is never taken
    // over by a retry and run twice; a run whose worker died stops renewing it.
    let renewing = pin!(renew_lease(&db, tenant, key, &claim));
    let outcome = match select(run, renewing).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(((), _)) => Err(ApiError::internal("renewing a lease", "it ended before its run")),
    };
    let response = match outcome {
        Ok(response) => response,
        Err(error) if idempotency::keeps(error.status()) => http::error_response(&error)?,
        Err(error) => {
            release(&db, tenant, key, &claim).await;
            return Err(error);
        }
    };
    if !idempotency::keeps(response.status_code()) {
        release(&db, tenant, key, &claim).await;
        return Ok(response);
    }
    keep(env, tenant, key, &claim, response).await
}

/// Renews the lease of the run `claim` every third of a lease, for as long as it is polled.
async fn renew_lease(db: &Db, tenant: &Tenant, key: &IdempotencyKey, claim: &str) {
    loop {
        Delay::from(Duration::from_secs((LEASE_SECONDS / 3) as u64)).await;
        let until = runtime::now().micros() + LEASE_SECONDS * 1_000_000;
        if let Err(error) = db::idempotency_keys::extend(db, tenant, key, claim, until).await {
            console_error!("renewing an idempotency lease failed: {}", error.body.message);
        }
    }
}

/// Where a kept response body is sealed: bound to the run that made it.
fn place(claim: &str) -> Place<'_> {
    Place {
        table: "idempotency_keys",
        column: "body",
        row_id: claim,
    }
}

/// The answer to a request whose key another run holds or held.
async fn replay(
    env: &Env,
    stored: Option<db::idempotency_keys::Stored>,
    fingerprint: &str,
) -> Result<Response, ApiError> {
    let in_progress = || {
        ApiError::conflict(format!(
            "a request with this {HEADER} is still running; retry in a second"
        ))
        .with_retry_after(1)
    };
    let Some(stored) = stored else {
        // Released or forgotten between the claim and this read: the retry will claim it.
        return Err(in_progress());
    };
    if stored.fingerprint != fingerprint {
        return Err(ApiError::invalid(
            HEADER,
            format!(
                "this {HEADER} was already used with a different request; use a new key for a new request"
            ),
        ));
    }
    match (stored.state.as_str(), stored.status, stored.body) {
        ("done", Some(status), Some(sealed)) => {
            let body = secrets_key::open(&secrets_key::keyring(env)?, &place(&stored.claim), &sealed)
                .await?
                .secret;
            let headers = Headers::new();
            headers.set(
                "content-type",
                stored.content_type.as_deref().unwrap_or("application/json"),
            )?;
            headers.set("cache-control", "no-store")?;
            headers.set(REPLAYED_HEADER, "true")?;
            Ok(Response::ok(body)?.with_status(status).with_headers(headers))
        }
        _ => Err(in_progress()),
    }
}

/// Keeps the response for replay, and returns it.
async fn keep(
    env: &Env,
    tenant: &Tenant,
    key: &IdempotencyKey,
    claim: &str,
    mut response: Response,
) -> Result<Response, ApiError> {
    let status = response.status_code();
    let headers = response.headers().clone();
    let body = response.text().await?;
    let content_type = headers.get("content-type")?;
    let kept = async {
        let sealed = secrets_key::seal(&secrets_key::keyring(env)?, &place(claim), &body).await?;
        let db = env.d1(DB)?;
        db::idempotency_keys::complete(&db, tenant, key, claim, status, content_type.as_deref(), &sealed)
            .await
    };
    if let Err(error) = kept.await {
        // The work is done and its answer goes out; a retry within the lease is told to wait,
        // and one after it runs again. Logged, as the one way a key can fail to hold.
        console_error!(
            "keeping the response of {HEADER} {} failed: {error:?}",
            key.as_str()
        );
    }
    Ok(Response::ok(body)?.with_status(status).with_headers(headers))
}

/// Frees the key; a failure only means the retry waits out the lease.
async fn release(db: &Db, tenant: &Tenant, key: &IdempotencyKey, claim: &str) {
    if let Err(error) = db::idempotency_keys::release(db, tenant, key, claim).await {
        console_error!("releasing {HEADER} {} failed: {error:?}", key.as_str());
    }
}
