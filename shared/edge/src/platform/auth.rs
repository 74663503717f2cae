//! Who is calling: a business identified by its `x-api-key` (or by a console session, which can do
//! what the key can: `console`), or the operator with the admin token.
//!
//! Key lookups are cached in KV. Each cached answer carries the time it was read from D1 and is
//! trusted for at most [`CACHE_FRESHNESS_MS`] after that, however long KV's own edge caches keep
//! it: a revoked key stops working within a minute everywhere, and at once where the revoke ran.
//! A lookup that caches a key reads D1 once more after writing the cache; a revoke updates D1 and
//! then deletes the cache entry. Whichever way the two interleave, either the lookup sees the
//! revoke and deletes its own entry, or the revoke's delete comes after the lookup's write.
//!
//! Only known keys go to KV. Unknown ones are remembered by the isolate alone (a few thousand at
//! most, for a minute), so a client trying random keys costs one indexed D1 read per new key and
//! cannot fill KV.

use crate::Env;
use crate::runtime::Internal;
use crate::runtime::Request;
use crate::{AUTH_CACHE, runtime};
use domain::api_key::{self, ApiKeyHash};
use domain::audit::Actor;
use domain::error::ApiError;
use domain::tenant::Tenant;
use domain::time::Timestamp;

pub const API_KEY_HEADER: &str = "x-api-key";
pub const CACHE_FRESHNESS_MS: i64 = 60_000;
/// KV's shortest allowed expiry.
const CACHE_TTL_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
struct CachedKey {
    verified_at_ms: i64,
    /// `None`: no active key has this hash (unknown or revoked).
    tenant: Option<CachedTenant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CachedTenant {
    business_id: String,
    default_country: Option<String>,
}

impl CachedKey {
    fn is_fresh(&self, now: Timestamp) -> bool {
        let age = now.millis() - self.verified_at_ms;
        (0..CACHE_FRESHNESS_MS).contains(&age)
    }

    /// A known key as KV keeps it: `<verified_at_ms> <business_id>[ <default_country>]`. Words,
    /// not JSON, so that the key check, which every keyed request makes, carries no JSON reader
    /// or writer of its own. `None` for an unknown key: only known keys go to KV.
    fn to_text(&self) -> Option<String> {
        let tenant = self.tenant.as_ref()?;
        let verified_at_ms = self.verified_at_ms;
        Some(match &tenant.default_country {
            Some(country) => format!("{verified_at_ms} {} {country}", tenant.business_id),
            None => format!("{verified_at_ms} {}", tenant.business_id),
        })
    }

    /// What [`CachedKey::to_text`] wrote; `None` for anything else (read as a miss).
    fn from_text(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let verified_at_ms = words.next()?.parse().ok()?;
        let business_id = words.next().filter(|id| !id.is_empty())?.to_owned();
        let default_country = words.next().map(str::to_owned);
        words.next().is_none().then_some(Self {
            verified_at_ms,
            tenant: Some(CachedTenant {
                business_id,
                default_country,
            }),
        })
    }
}

impl CachedTenant {
    fn into_tenant(self) -> Option<Tenant> {
        Tenant::from_stored(&self.business_id, self.default_country.as_deref()).ok()
    }
}

pub fn cache_key(hash: &ApiKeyHash) -> String {
    format!("api-key:v2:{}", hash.as_str())
}

/// A business that a request authenticated as, and who acted for it (the key, or the console
/// session, which is kept for the console's own endpoints).
pub struct Authenticated {
    pub tenant: Tenant,
    pub actor: Actor,
    pub console: Option<crate::platform::console::Session>,
}

/// Resolves `x-api-key` to its business, or answers 401 for a missing, unknown or revoked key.
pub async fn authenticate(req: &Request, env: &Env) -> Result<Authenticated, ApiError> {
    match key_header(req)? {
        Some(presented) => by_key(env, &presented).await,
        None => Err(ApiError::unauthorized(MISSING_KEY)),
    }
}

/// As [`authenticate`], also taking the key as `Authorization: Bearer <key>`, as the CRM links
/// guide's dashboard calls send it.
pub async fn authenticate_bearer_or_key(req: &Request, env: &Env) -> Result<Authenticated, ApiError> {
    match presented_key(req) {
        Some(presented) => by_key(env, &presented).await,
        None => Err(ApiError::unauthorized(MISSING_KEY_OR_BEARER)),
    }
}

/// As [`authenticate`], else the console session the request's cookie carries (for an endpoint
/// the console uses); 401 for an ended session.
pub async fn authenticate_or_session(req: &Request, env: &Env) -> Result<Authenticated, ApiError> {
    match key_header(req)? {
        Some(presented) => by_key(env, &presented).await,
        None => by_console_session(req, env, MISSING_KEY).await,
    }
}

/// As [`authenticate_bearer_or_key`], else the console session the request's cookie carries.
pub async fn authenticate_bearer_key_or_session(req: &Request, env: &Env) -> Result<Authenticated, ApiError> {
    match presented_key(req) {
        Some(presented) => by_key(env, &presented).await,
        None => by_console_session(req, env, MISSING_KEY_OR_BEARER).await,
    }
}

const MISSING_KEY: &str = "missing x-api-key header";
const MISSING_KEY_OR_BEARER: &str = "missing API key: send it as x-api-key or as Authorization: Bearer <key>";

fn key_header(req: &Request) -> Result<Option<String>, ApiError> {
    Ok(req
        .headers()
        .get(API_KEY_HEADER)
        .internal("reading a header")?
        .filter(|key| !key.trim().is_empty()))
}

async fn by_key(env: &Env, presented: &str) -> Result<Authenticated, ApiError> {
    Ok(Authenticated {
        tenant: tenant_of_key(env, presented).await?,
        actor: Actor::key(presented),
        console: None,
    })
}

/// The console session the request's cookie carries, for the console's own endpoints: 401
/// without one.
pub async fn authenticate_console(req: &Request, env: &Env) -> Result<Authenticated, ApiError> {
    by_console_session(req, env, "not signed in to the console: open a console link").await
}

async fn by_console_session(req: &Request, env: &Env, missing: &str) -> Result<Authenticated, ApiError> {
    match crate::platform::console::from_request(req, env).await? {
        Some(session) => Ok(Authenticated {
            tenant: session.live.tenant.clone(),
            actor: Actor::Console(session.live.id.clone()),
            console: Some(session),
        }),
        None => Err(ApiError::unauthorized(missing)),
    }
}

/// The API key a request presents, unchecked: `x-api-key`, else `Authorization: Bearer <key>`
/// (which only the endpoints of [`authenticate_bearer_or_key`] accept).
pub fn presented_key(req: &Request) -> Option<String> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    if let Some(key) = header(API_KEY_HEADER).filter(|key| !key.trim().is_empty()) {
        return Some(key);
    }
    let authorization = header("authorization")?;
    let (scheme, key) = authorization.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty()).then(|| key.trim().to_owned())
}

async fn tenant_of_key(env: &Env, presented: &str) -> Result<Tenant, ApiError> {
    let rejected = || ApiError::unauthorized("invalid or revoked API key");
    let hash = api_key::parse_presented(presented).ok_or_else(rejected)?;
    let cached = lookup(env, &hash).await?;
    cached
        .tenant
        .and_then(CachedTenant::into_tenant)
        .ok_or_else(rejected)
}

async fn lookup(env: &Env, hash: &ApiKeyHash) -> Result<CachedKey, ApiError> {
    let now = runtime::now();
    let unknown = || CachedKey {
        verified_at_ms: now.millis(),
        tenant: None,
    };
    if UNKNOWN_KEYS.with(|unknown| unknown.borrow().contains(hash.as_str(), now.millis())) {
        return Ok(unknown());
    }
    // One KV handle per operation, each counted (`Env::kv`): the read, and on a miss the write.
    let key = cache_key(hash);
    if let Ok(Some(text)) = env.kv(AUTH_CACHE).internal("KV")?.text(&key).await
        && let Some(cached) = CachedKey::from_text(&text)
        && cached.is_fresh(now)
    {
        return Ok(cached);
    }
    let db = env.db()?;
    let Some(tenant) = crate::db::api_keys::tenant_of(&db, hash).await? else {
        UNKNOWN_KEYS.with(|unknown| unknown.borrow_mut().insert(hash.as_str(), now.millis()));
        return Ok(unknown());
    };
    let fresh = CachedKey {
        verified_at_ms: now.millis(),
        tenant: Some(CachedTenant {
            business_id: tenant.business_id.to_string(),
            default_country: tenant.default_country.map(|country| country.code().to_owned()),
        }),
    };
    // A failed cache write costs only a later D1 read; the answer is still right.
    if let Some(text) = fresh.to_text()
        && let Ok(cache) = env.kv_write(AUTH_CACHE)
    {
        let _ = cache.put_expiring(&key, &text, CACHE_TTL_SECONDS).await;
    }
    // A revoke that ran while this lookup was writing: see the module's comment.
    if crate::db::api_keys::tenant_of(&db, hash).await?.is_none() {
        if let Ok(cache) = env.kv_write(AUTH_CACHE) {
            let _ = cache.delete(&key).await;
        }
        return Ok(unknown());
    }
    Ok(fresh)
}

thread_local! {
    /// Unknown keys this isolate has looked up lately.
    static UNKNOWN_KEYS: std::cell::RefCell<RecentSet> = std::cell::RefCell::new(RecentSet::default());
}

/// How many unknown keys an isolate remembers; past this, those added in the older half of the
/// time the set spans are forgotten.
const MAX_UNKNOWN_KEYS: usize = 4096;

/// A bounded set of strings, each remembered for [`CACHE_FRESHNESS_MS`] after it was added.
#[derive(Default)]
struct RecentSet {
    added_ms: std::collections::HashMap<String, i64>,
}

impl RecentSet {
    fn contains(&self, item: &str, now_ms: i64) -> bool {
        self.added_ms
            .get(item)
            .is_some_and(|added| (0..CACHE_FRESHNESS_MS).contains(&(now_ms - added)))
    }

    fn insert(&mut self, item: &str, now_ms: i64) {
        self.added_ms
            .retain(|_, added| (0..CACHE_FRESHNESS_MS).contains(&(now_ms - *added)));
        if self.added_ms.len() >= MAX_UNKNOWN_KEYS {
            // The older half of the span the set covers is forgotten (at least its oldest entry);
            // a midpoint, not a median, so that no sorting code comes into every keyed function.
            let oldest = self.added_ms.values().copied().min().unwrap_or(now_ms);
            let newest = self.added_ms.values().copied().max().unwrap_or(now_ms);
            let cut = oldest + (newest - oldest) / 2;
            self.added_ms.retain(|_, added| *added > cut);
        }
        self.added_ms.insert(item.to_owned(), now_ms);
    }
}

/// Forgets a key's cached answer, so that a revoke takes effect at once where it ran.
pub async fn forget_cached_key(env: &Env, hash: &ApiKeyHash) -> Result<(), ApiError> {
    env.kv_write(AUTH_CACHE)
        .internal("KV")?
        .delete(&cache_key(hash))
        .await
        .internal("KV")?;
    Ok(())
}

/// The fewest characters an admin token may have: the failure budget is per address, so a
/// short token could be guessed from enough addresses (`scripts/dev` makes 48 random hex).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Checks `Authorization: Bearer <ADMIN_TOKEN>` in constant time. A deployment whose token is
/// missing or shorter than [`MIN_ADMIN_TOKEN_CHARS`] has no admin at all (500: misconfigured).
pub fn authorize_admin(req: &Request, env: &Env) -> Result<(), ApiError> {
    let expected = env
        .secret("ADMIN_TOKEN")
        .ok_or_else(|| ApiError::internal("admin auth", "the ADMIN_TOKEN secret is not configured"))?;
    if expected.chars().count() < MIN_ADMIN_TOKEN_CHARS {
        return Err(ApiError::internal(
            "admin auth",
            format!(
                "the ADMIN_TOKEN secret is shorter than {MIN_ADMIN_TOKEN_CHARS} characters: set a random one"
            ),
        ));
    }
    let header = req
        .headers()
        .get("authorization")
        .internal("reading a header")?
        .unwrap_or_default();
    let presented = header.strip_prefix("Bearer ").unwrap_or_default().trim();
    if presented.is_empty() || !domain::crypto::constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::unauthorized(
            "missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_answer_is_trusted_for_less_than_a_minute_after_it_was_read() {
        let cached = CachedKey {
            verified_at_ms: 1_000_000,
            tenant: None,
        };
        assert!(cached.is_fresh(Timestamp::from_millis(1_000_000)));
        assert!(cached.is_fresh(Timestamp::from_millis(1_059_999)));
        assert!(!cached.is_fresh(Timestamp::from_millis(1_060_000)));
        assert!(
            !cached.is_fresh(Timestamp::from_millis(999_000)),
            "an answer from the future is not trusted"
        );
    }

    #[test]
    fn unknown_keys_are_remembered_for_a_minute_and_never_more_than_the_bound() {
        let mut recent = RecentSet::default();
        recent.insert("a", 1_000);
        assert!(recent.contains("a", 1_000));
        assert!(recent.contains("a", 60_999));
        assert!(!recent.contains("a", 61_000), "forgotten after a minute");
        assert!(!recent.contains("b", 1_000));
        for n in 0..(MAX_UNKNOWN_KEYS as i64 * 3) {
            recent.insert(&n.to_string(), 2_000 + n / 1000);
        }
        assert!(recent.added_ms.len() <= MAX_UNKNOWN_KEYS, "bounded");
        let newest = (MAX_UNKNOWN_KEYS as i64 * 3 - 1).to_string();
        assert!(recent.contains(&newest, 20_000), "the newest are kept");
    }

    #[test]
    fn a_cached_tenant_with_a_corrupt_id_is_no_tenant() {
        let corrupt = CachedTenant {
            business_id: "nope".into(),
            default_country: None,
        };
        assert_eq!(corrupt.into_tenant(), None);
    }

    #[test]
    fn a_known_key_is_cached_as_words_and_read_back_as_it_was() {
        for country in [Some("DE".to_owned()), None] {
            let known = CachedKey {
                verified_at_ms: 1_764_000_000_000,
                tenant: Some(CachedTenant {
                    business_id: "biz_0123456789abcdef".into(),
                    default_country: country,
                }),
            };
            let read = known.to_text().and_then(|text| CachedKey::from_text(&text));
            assert_eq!(read, Some(known));
        }
    }

    #[test]
    fn anything_else_in_the_cache_is_a_miss() {
        for text in [
            "",
            "1764000000000",
            "1764000000000 ",
            "soon biz_1",
            "1764000000000 biz_1 DE extra",
            r#"{"verified_at_ms":1764000000000,"tenant":{"business_id":"biz_1","default_country":null}}"#,
        ] {
            assert_eq!(CachedKey::from_text(text), None, "{text:?}");
        }
    }

    mod native {
        use super::super::*;
        use crate::runtime::Method;
        use crate::runtime::native::Stack;
        use crate::testing::Fixture;
        use domain::error::ErrorCode;
        use std::time::Duration;

        fn keyed(key: &str) -> Request {
            Request::new("https://api.example/api-customers", Method::Get)
                .unwrap_or_else(|error| panic!("{error}"))
                .with_header(API_KEY_HEADER, key)
        }

        /// A new invocation on the stack, with its own count.
        fn invocation(stack: &Stack) -> Env {
            Env::new(stack.clone(), "fetch")
        }

        fn cached(fixture: &Fixture, key: &str) -> Option<String> {
            let hash = api_key::parse_presented(key).unwrap_or_else(|| panic!("{key}"));
            fixture.stack.kv_read(AUTH_CACHE, &cache_key(&hash))
        }

        async fn revoke(fixture: &Fixture, tenant: &Tenant, id: &domain::ids::ApiKeyId) -> ApiKeyHash {
            let revoked = crate::db::api_keys::revoke(&fixture.db, tenant, id, &runtime::now().to_rfc3339())
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            revoked
                .map(|(_, hash)| hash)
                .unwrap_or_else(|| panic!("no key {id}"))
        }

        #[test]
        fn a_key_is_found_by_its_hash_and_its_business_cached_under_the_hash_only() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (key, _) = fixture.api_key(&tenant).await;
                let env = invocation(&fixture.stack);
                let found = authenticate(&keyed(&key), &env)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(found.tenant, tenant);
                assert_eq!(found.actor, Actor::key(&key));
                assert_eq!(
                    cached(&fixture, &key),
                    Some(format!("{} {} IE", fixture.stack.now_ms(), tenant.business_id))
                );
                let hash = api_key::parse_presented(&key).unwrap_or_else(|| panic!("{key}"));
                assert_eq!(
                    cache_key(&hash),
                    format!("api-key:v2:{}", domain::crypto::sha256_hex(key.as_bytes()))
                );
                assert_eq!(
                    env.usage().d1_queries,
                    2 * 2,
                    "the lookup, and the check after the cache is written, each on both shards"
                );
            });
        }

        #[test]
        fn a_cached_key_is_answered_from_kv_without_d1_for_less_than_a_minute() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (key, _) = fixture.api_key(&tenant).await;
                authenticate(&keyed(&key), &invocation(&fixture.stack))
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                fixture.stack.advance(Duration::from_millis(59_999));
                let env = invocation(&fixture.stack);
                let found = authenticate(&keyed(&key), &env)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(found.tenant, tenant);
                assert_eq!((env.usage().d1_queries, env.usage().kv_operations), (0, 1));
                fixture.stack.advance(Duration::from_millis(1));
                let later = invocation(&fixture.stack);
                authenticate(&keyed(&key), &later)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(
                    later.usage().d1_queries,
                    2 * 2 + 1,
                    "a minute on, D1 is asked again (and the directory, whose minute ran out too, \
                     which shard's answer counts)"
                );
            });
        }

        #[test]
        fn a_key_revoked_where_the_request_lands_is_refused_at_once_though_its_cache_was_fresh() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (key, id) = fixture.api_key(&tenant).await;
                authenticate(&keyed(&key), &invocation(&fixture.stack))
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                let hash = revoke(&fixture, &tenant, &id).await;
                forget_cached_key(&fixture.env, &hash)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                fixture.stack.advance(Duration::from_secs(1));
                let refused = authenticate(&keyed(&key), &invocation(&fixture.stack))
                    .await
                    .err();
                assert_eq!(
                    refused.map(|error| (error.status(), error.body.message)),
                    Some((401, "invalid or revoked API key".to_owned()))
                );
                assert_eq!(cached(&fixture, &key), None, "nothing cached for a revoked key");
            });
        }

        #[test]
        fn a_key_revoked_elsewhere_works_until_a_minute_after_its_cache_was_read_and_never_after() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (key, id) = fixture.api_key(&tenant).await;
                authenticate(&keyed(&key), &invocation(&fixture.stack))
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                // Revoked where this location's KV has not heard of it: the cache stays.
                revoke(&fixture, &tenant, &id).await;
                fixture.stack.advance(Duration::from_secs(30));
                assert!(
                    authenticate(&keyed(&key), &invocation(&fixture.stack))
                        .await
                        .is_ok(),
                    "the cache is trusted while it is fresh"
                );
                fixture.stack.advance(Duration::from_secs(30));
                let refused = authenticate(&keyed(&key), &invocation(&fixture.stack))
                    .await
                    .err();
                assert_eq!(refused.map(|error| error.status()), Some(401));
            });
        }

        #[test]
        fn a_cache_entry_older_than_a_minute_is_not_trusted_however_long_kv_keeps_it() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (key, id) = fixture.api_key(&tenant).await;
                revoke(&fixture, &tenant, &id).await;
                let hash = api_key::parse_presented(&key).unwrap_or_else(|| panic!("{key}"));
                let stale = format!("{} {}", fixture.stack.now_ms() - 61_000, tenant.business_id);
                fixture
                    .env
                    .kv_write(AUTH_CACHE)
                    .unwrap_or_else(|error| panic!("{error}"))
                    .put_expiring(&cache_key(&hash), &stale, 3600)
                    .await
                    .unwrap_or_else(|error| panic!("{error}"));
                let refused = authenticate(&keyed(&key), &invocation(&fixture.stack))
                    .await
                    .err();
                assert_eq!(refused.map(|error| error.status()), Some(401));
            });
        }

        #[test]
        fn a_missing_malformed_unknown_or_revoked_key_is_a_401_that_says_which_header() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (revoked_key, id) = fixture.api_key(&tenant).await;
                revoke(&fixture, &tenant, &id).await;
                let unknown = domain::api_key::issue([9; 24]).plaintext;
                let plain = || {
                    Request::new("https://api.example/api-customers", Method::Get)
                        .unwrap_or_else(|error| panic!("{error}"))
                };
                let cases = [
                    (plain(), "missing x-api-key header", "no header"),
                    (keyed("   "), "missing x-api-key header", "a blank header"),
                    (
                        keyed("cek_short"),
                        "invalid or revoked API key",
                        "not a key's shape",
                    ),
                    (
                        keyed(&unknown),
                        "invalid or revoked API key",
                        "a key never issued",
                    ),
                    (keyed(&revoked_key), "invalid or revoked API key", "a revoked key"),
                    (
                        plain().with_header("authorization", &format!("Bearer {unknown}")),
                        "missing x-api-key header",
                        "a bearer token where only x-api-key is taken",
                    ),
                ];
                for (req, message, description) in cases {
                    let error = authenticate(&req, &invocation(&fixture.stack))
                        .await
                        .err()
                        .unwrap_or_else(|| panic!("{description}: accepted"));
                    assert_eq!(
                        (error.code(), error.body.message.as_str()),
                        (ErrorCode::Unauthorized, message),
                        "{description}"
                    );
                }
                assert!(
                    fixture
                        .stack
                        .kv_read(AUTH_CACHE, &cache_key(&ApiKeyHash::of(&unknown)))
                        .is_none(),
                    "unknown keys never reach KV"
                );
            });
        }

        #[test]
        fn an_unknown_key_is_remembered_by_the_isolate_for_a_minute_so_it_costs_one_d1_read() {
            let fixture = Fixture::new();
            fixture.run(async {
                let unknown = domain::api_key::issue([8; 24]).plaintext;
                let first = invocation(&fixture.stack);
                assert!(authenticate(&keyed(&unknown), &first).await.is_err());
                assert_eq!(first.usage().d1_queries, 2, "one read on each shard");
                let again = invocation(&fixture.stack);
                assert!(authenticate(&keyed(&unknown), &again).await.is_err());
                assert_eq!((again.usage().d1_queries, again.usage().kv_operations), (0, 0));
                fixture.stack.advance(Duration::from_secs(60));
                let later = invocation(&fixture.stack);
                assert!(authenticate(&keyed(&unknown), &later).await.is_err());
                assert_eq!(later.usage().d1_queries, 2, "forgotten after a minute");
            });
        }

        #[test]
        fn a_key_is_taken_as_a_bearer_token_only_where_the_endpoint_takes_one() {
            let fixture = Fixture::new();
            fixture.run(async {
                let tenant = fixture.business("Acme").await;
                let (key, _) = fixture.api_key(&tenant).await;
                let unknown = domain::api_key::issue([7; 24]).plaintext;
                let with = |authorization: &str| {
                    Request::new("https://api.example/api-links", Method::Get)
                        .unwrap_or_else(|error| panic!("{error}"))
                        .with_header("authorization", authorization)
                };
                let cases = [
                    (with(&format!("Bearer {key}")), Ok(()), "Bearer"),
                    (
                        with(&format!("bearer   {key}")),
                        Ok(()),
                        "the scheme in any case, spaces around",
                    ),
                    (
                        with(&format!("Basic {key}")),
                        Err(MISSING_KEY_OR_BEARER),
                        "another scheme",
                    ),
                    (with("Bearer "), Err(MISSING_KEY_OR_BEARER), "no token"),
                    (
                        keyed(&key).with_header("authorization", &format!("Bearer {unknown}")),
                        Ok(()),
                        "x-api-key first",
                    ),
                ];
                for (req, expected, description) in cases {
                    let answer = authenticate_bearer_or_key(&req, &invocation(&fixture.stack)).await;
                    match expected {
                        Ok(()) => assert_eq!(
                            answer.map(|found| found.tenant).ok().as_ref(),
                            Some(&tenant),
                            "{description}"
                        ),
                        Err(message) => assert_eq!(
                            answer.err().map(|error| error.body.message).as_deref(),
                            Some(message),
                            "{description}"
                        ),
                    }
                }
            });
        }

        #[test]
        fn the_admin_token_is_taken_only_as_itself_behind_bearer() {
            let fixture = Fixture::new();
            let token = fixture.stack.secret("ADMIN_TOKEN").unwrap_or_default();
            let with = |authorization: Option<String>| {
                let req = Request::new("https://api.example/admin/businesses", Method::Get)
                    .unwrap_or_else(|error| panic!("{error}"));
                match authorization {
                    Some(value) => req.with_header("authorization", &value),
                    None => req,
                }
            };
            let shorter = token[..token.len() - 1].to_owned();
            let cases = [
                (Some(format!("Bearer {token}")), true, "the token"),
                (Some(format!("Bearer {token}  ")), true, "spaces after it"),
                (None, false, "no header"),
                (Some("Bearer ".to_owned()), false, "no token"),
                (Some(format!("Bearer {shorter}")), false, "a prefix of the token"),
                (Some(format!("Bearer {token}x")), false, "the token and more"),
                (
                    Some(format!("bearer {token}")),
                    false,
                    "another spelling of the scheme",
                ),
                (Some(token.clone()), false, "no scheme"),
            ];
            for (authorization, accepted, description) in cases {
                let answer = authorize_admin(&with(authorization), &fixture.env);
                assert_eq!(answer.is_ok(), accepted, "{description}");
                if let Err(error) = answer {
                    assert_eq!(error.status(), 401, "{description}");
                }
            }
        }

        #[test]
        fn without_an_admin_token_configured_nothing_is_admin() {
            let stack = Stack::new();
            let short = "a".repeat(MIN_ADMIN_TOKEN_CHARS - 1);
            for (token, description) in [("", "an empty token"), (short.as_str(), "a token too short")] {
                stack.set_secret("ADMIN_TOKEN", token);
                let env = Env::new(stack.clone(), "fetch");
                let req = Request::new("https://api.example/admin", Method::Get)
                    .unwrap_or_else(|error| panic!("{error}"))
                    .with_header("authorization", &format!("Bearer {token}"));
                assert_eq!(
                    authorize_admin(&req, &env).err().map(|e| e.status()),
                    Some(500),
                    "{description} is a misconfigured deployment, even presented exactly"
                );
            }
            let req = Request::new("https://api.example/admin", Method::Get)
                .unwrap_or_else(|error| panic!("{error}"))
                .with_header("authorization", "Bearer ");
            stack.remove_secret("ADMIN_TOKEN");
            let unset = Env::new(stack, "fetch");
            assert_eq!(
                authorize_admin(&req, &unset).err().map(|e| e.status()),
                Some(500),
                "a deployment without the secret is misconfigured"
            );
        }
    }
}
