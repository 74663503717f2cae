//! The rate limits' token buckets: a Durable Object each (`RateLimiter`), one per API key and one
//! per console session (named by the secret's hash; a session is limited by its business's policy
//! as a key is) and one per client address's failed authentications (named by the address).
//! The gateway asks them (`functions/gateway/src/limits.rs`, docs/limits.md "Rate limits"); the
//! arithmetic is `domain::rate_limit`. A bucket lives in its object's memory: a limit is a rate,
//! and an object that restarts starts full, as a new key does.
//!
//! They live in a function of their own so that the gateway, which every request passes through,
//! carries neither D1 nor a JSON reader: an object reads its key's policy from D1 and keeps it a
//! minute (a changed limit applies within a minute), and it speaks to the gateway in lines of words
//! (`domain::rate_limit::{Ask, Answer}`).
//!
//! A key's object also stores what the gateway's isolates counted of the key's requests
//! (`Ask::Usage`, `domain::key_usage`): one D1 round trip per report, under the business and key
//! id it read with the policy.

use domain::api_key::ApiKeyHash;
use domain::console::SecretHash;
use domain::error::ApiError;
use domain::ids::ApiKeyId;
use domain::key_usage::Report;
use domain::rate_limit::{self, Answer, Ask, Bucket, Grant, Holder, Policy};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use edge::runtime::{Bindings, Request, Response};
use edge::{Env, db, runtime};
use std::cell::RefCell;

/// How long an object keeps its key's policy before reading it again.
const POLICY_FRESH_MS: i64 = 60_000;

/// The Durable Object class, as the runtime knows it: a [`Limiter`] per object.
#[cfg(target_arch = "wasm32")]
mod object {
    use worker::{DurableObject, Request, Response, State, durable_object};

    #[durable_object(fetch)]
    pub struct RateLimiter(super::Limiter);

    impl DurableObject for RateLimiter {
        fn new(_state: State, env: worker::Env) -> Self {
            Self(super::Limiter::new(env.into()))
        }

        async fn fetch(&self, req: Request) -> worker::Result<Response> {
            self.0.answer(req).await
        }
    }
}

/// The class natively: a test registers it under the gateway's binding.
#[cfg(not(target_arch = "wasm32"))]
impl edge::runtime::native::DurableObject for Limiter {
    fn fetch(&self, request: Request) -> edge::runtime::native::LocalBoxFuture<'_, worker::Result<Response>> {
        Box::pin(self.answer(request))
    }
}

/// One object: the token bucket of one key (or address), and its key's policy, in memory.
pub struct Limiter {
    bindings: Bindings,
    bucket: RefCell<Option<Bucket>>,
    /// What was read of the key or session, and when ([`Known`]).
    known: RefCell<Option<(Known, i64)>>,
}

/// What an object read of its key or session: its policy (`None`: an unknown or revoked key, or
/// a session that is not live) and, for a key, whose it is.
#[derive(Clone, Default)]
struct Known {
    policy: Option<Policy>,
    key: Option<(Tenant, ApiKeyId)>,
}

impl Limiter {
    pub fn new(bindings: Bindings) -> Self {
        Self {
            bindings,
            bucket: RefCell::new(None),
            known: RefCell::new(None),
        }
    }

    /// Answers one ask (a line of `domain::rate_limit`'s words) with one answer line.
    pub async fn answer(&self, mut req: Request) -> worker::Result<Response> {
        let line = req.text().await?;
        let Some(ask) = Ask::parse_line(&line) else {
            return Response::error("not an ask of a rate limiter", 400);
        };
        let now = runtime::now().millis();
        let env = Env::new(self.bindings.clone(), "object");
        // A failed authentication spends its token here; a lease's tokens are spent by the isolate.
        let (policy, lease) = match ask {
            Ask::Usage { holder, report } => {
                let stored = self.store_usage(&env, holder, &report, now).await;
                env.report();
                env.after_report().await;
                return match stored {
                    Ok(()) => Response::ok("stored"),
                    Err(error) => refused("storing a key's usage", &error),
                };
            }
            Ask::FailedAuthentication { site: false } => (Some(Policy::FAILED_AUTHENTICATIONS), None),
            Ask::FailedAuthentication { site: true } => (Some(Policy::FAILED_AUTHENTICATIONS_PER_SITE), None),
            Ask::Lease {
                holder,
                returned,
                one,
            } => {
                let known = match self.known(&env, holder, now).await {
                    Ok(known) => known,
                    Err(error) => return refused("reading a rate limit", &error),
                };
                // The key's business bears its lease (`edge::platform::bill`).
                if let Some((tenant, _)) = &known.key {
                    env.meter().serves(&tenant.business_id);
                }
                let policy = known.policy;
                let size = if one { None } else { policy.map(Policy::lease_size) };
                (policy, Some((returned, size.unwrap_or(1))))
            }
        };
        env.report();
        let grant = policy.map(|policy| {
            let mut bucket = self.bucket.borrow_mut();
            let bucket = bucket.get_or_insert_with(|| Bucket::full(policy, now));
            match lease {
                Some((returned, size)) => {
                    bucket.give_back(policy, now, returned);
                    bucket.grant(policy, now, size)
                }
                None => {
                    let decision = bucket.take(policy, now);
                    Grant {
                        tokens: u32::from(decision.allowed),
                        decision,
                    }
                }
            }
        });
        let lease_size = lease.map_or(1, |(_, size)| size);
        // The grant is taken: then the businesses' tally (`edge::platform::bill`), which opening D1 asks
        // for, so that the lease's business bears this request even when the key's policy was
        // not read now.
        if env.db().is_ok() {
            env.after_report().await;
        }
        Response::ok(Answer { grant, lease_size }.to_line())
    }

    /// What is known of the holder: as read within the last minute (within
    /// [`rate_limit::UNKNOWN_KEY_FRESH_MS`] of finding it unknown), or read again now.
    async fn known(&self, env: &Env, holder: Holder, now: i64) -> Result<Known, ApiError> {
        if let Some((known, read_at)) = &*self.known.borrow() {
            let fresh = if known.policy.is_some() {
                POLICY_FRESH_MS
            } else {
                rate_limit::UNKNOWN_KEY_FRESH_MS
            };
            if now - read_at < fresh {
                return Ok(known.clone());
            }
        }
        let db = env.db()?;
        let known = match holder {
            Holder::Key(hash) => {
                let limited = db::api_keys::limited(&db, &ApiKeyHash::from_stored(hash)).await?;
                limited.map_or_else(Known::default, |limited| Known {
                    policy: Some(limited.policy),
                    key: Some((limited.tenant, limited.key_id)),
                })
            }
            Holder::Session(hash) => {
                let at = Timestamp::from_millis(now);
                let policy =
                    db::console_sessions::rate_limit(&db, &SecretHash::from_stored(hash), at).await?;
                Known { policy, key: None }
            }
        };
        *self.known.borrow_mut() = Some((known.clone(), now));
        Ok(known)
    }

    /// Adds a report of the key's requests to its usage; a report of a key that is no longer
    /// active (revoked since) or of a session is dropped.
    async fn store_usage(
        &self,
        env: &Env,
        holder: Holder,
        report: &Report,
        now: i64,
    ) -> Result<(), ApiError> {
        let Some((tenant, key_id)) = self.known(env, holder, now).await?.key else {
            return Ok(());
        };
        let db = env.db()?;
        db::api_key_usage::record(&db, &tenant, &key_id, report).await
    }
}

/// What the object answers when it could not do what it was asked: the error's own status (a
/// 503 while D1 does not answer, never a 500 for it), and what it was doing, for the gateway's log.
fn refused(doing: &str, error: &ApiError) -> worker::Result<Response> {
    Response::error(format!("{doing}: {error}"), error.status())
}
