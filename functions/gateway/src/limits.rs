//! Rate limits at the one public entry (docs/limits.md, "Rate limits").
//!
//! - Each API key, and each console session, has a token bucket in a Durable Object of its own
//!   (`RateLimiter`, named by the secret's hash), so every isolate and location counts against the
//!   same bucket; a session is held to its business's policy as a key is, so the console is no
//!   way around the operator's limit. An isolate takes a
//!   few tokens at a time (a lease, `domain::rate_limit::Lease`: a tenth of the burst, at most 50)
//!   and spends them itself, asking for the next lease in the background when half is spent, so a
//!   request rarely waits on the object; a key never gets more than its limit. A key whose burst is
//!   under 20 leases one token at a time: every request asks its bucket, as a small limit must. The
//!   object (the `rate-limiter` function's) reads the key's business's policy from D1 and keeps
//!   it a minute, so a changed limit applies within a minute. Every response to a request with a
//!   key or a session carries `X-RateLimit-Limit`, `-Remaining` and `-Reset`; a request over the limit is
//!   answered 429 with `Retry-After` here, without reaching its function.
//! - Failed authentications (401 and 403: a bad key or admin token, a bad webhook signature, a
//!   bad SSO token) are counted per client address in a Durable Object named by the address (an
//!   IPv6 client by its /64, and also in its /48's, which holds sixteen clients' budgets).
//!   Once an address has used its budget, this isolate refuses its requests with 429 without
//!   forwarding them, so they cost no D1 read. The count is exact; the refusal is learnt by each
//!   isolate from the first failure it forwards itself, so across many isolates a few more
//!   requests get through before all of them refuse.
//! - A limiter that cannot be reached lets the request through (logged): an outage of the
//!   limiter must not become an outage of the API.

use domain::api_key;
use domain::console;
use domain::error::ApiError;
use domain::rate_limit::{self, Answer, Ask, Decision, Holder, Lease, Returned};
use edge::Env;
use edge::console_error;
use edge::runtime::Context;
use edge::runtime::Internal;
use edge::runtime::{Body, Headers, Method, Request, Response};
use edge::{platform::auth, platform::http, runtime};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// The `rate-limiter` function's objects, bound to the gateway.
pub const BINDING: &str = "RATE_LIMITER";
/// Addresses this isolate refuses, at most: past it, the expired go first.
const MAX_BLOCKED: usize = 10_000;

thread_local! {
    /// Failure budgets (of an address, or an IPv6 site) this isolate refuses, by name, until when
    /// (ms).
    static BLOCKED: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
    /// Keys no business has and sessions that are not live, as their limiter objects said, by
    /// the holder's name, until when (ms).
    static UNKNOWN_HOLDERS: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
    /// The tokens this isolate holds of each key's or session's bucket, by the holder's name.
    static LEASES: RefCell<HashMap<String, Lease>> = RefCell::new(HashMap::new());
    /// Holders whose lease this isolate is asking for: a request meanwhile asks for its own
    /// token only, so that a crowd of first requests does not lease a crowd of leases.
    static ASKING: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// The failure budgets the client's address spends from (`rate_limit::failure_budgets`: its own,
/// by its /64 for IPv6, and its IPv6 site's), each by its limiter's name; none for an address the
/// limits do not apply to: none at all, or loopback (the local stack and its tests; Cloudflare
/// never reports one).
pub fn failure_budgets(req: &Request) -> Vec<(String, bool)> {
    let Some(address) = http::client_ip(req) else {
        return Vec::new();
    };
    let loopback = address
        .parse::<std::net::IpAddr>()
        .map_or(true, |ip| ip.is_loopback() || ip.is_unspecified());
    if loopback {
        return Vec::new();
    }
    rate_limit::failure_budgets(&address)
}

/// 429 when this isolate knows the address, or its site, used its failure budget.
pub fn refuse_blocked(budgets: &[(String, bool)]) -> Result<(), ApiError> {
    let now = runtime::now().millis();
    let until = BLOCKED.with(|blocked| {
        let blocked = blocked.borrow();
        budgets
            .iter()
            .filter_map(|(name, _)| blocked.get(name).copied())
            .max()
    });
    match until {
        Some(until) if until > now => Err(ApiError::rate_limited(
            "too many failed authentications from this address; try again later",
            u32::try_from((until - now + 999) / 1000).unwrap_or(u32::MAX),
        )),
        _ => Ok(()),
    }
}

/// Counts a failed authentication in each of the address's budgets, and blocks the budget here
/// once it is used.
pub async fn failed_authentication(env: &Env, budgets: &[(String, bool)]) {
    for (name, site) in budgets {
        let asked = ask(env, name, &Ask::FailedAuthentication { site: *site }).await;
        match asked.map(|answer| answer.grant.map(|grant| grant.decision)) {
            Ok(Some(decision)) if !decision.allowed => {
                let until = runtime::now().millis() + i64::from(decision.retry_after_seconds) * 1000;
                BLOCKED.with(|blocked| {
                    let mut blocked = blocked.borrow_mut();
                    if blocked.len() >= MAX_BLOCKED {
                        let now = runtime::now().millis();
                        blocked.retain(|_, until| *until > now);
                    }
                    if blocked.len() < MAX_BLOCKED {
                        blocked.insert(name.clone(), until);
                    }
                });
            }
            Ok(_) => {}
            Err(error) => console_error!("the rate limiter of an address failed: {error:?}"),
        }
    }
}

/// Whose bucket a request counts against: the API key it presents, if one of the right shape (as
/// `x-api-key`, or `Authorization: Bearer` where keys are taken so), else the console session its
/// cookie carries. A request with both is its key's, as the functions read it.
pub fn holder_of(req: &Request) -> Option<Holder> {
    if let Some(hash) = auth::presented_key(req).and_then(|key| api_key::parse_presented(&key)) {
        return Some(Holder::Key(hash.as_str().to_owned()));
    }
    let cookies = req.headers().get("cookie").ok()??;
    let (_, hash) = console::session_in_cookies(&cookies)?;
    Some(Holder::Session(hash.as_str().to_owned()))
}

/// Takes a token from the bucket of the request's key or session ([`holder_of`]): from this
/// isolate's lease when it holds one (asking for the next in the background, through `ctx`, when
/// it runs low), else from the holder's bucket. `None`: neither, a key or session that is not
/// valid (its function answers 401), or a limiter that failed.
pub async fn take_for_holder(env: &Env, ctx: &Context, holder: Option<&Holder>) -> Option<Decision> {
    let holder = holder?;
    let name = holder.name();
    let name = name.as_str();
    let now = runtime::now().millis();
    if UNKNOWN_HOLDERS.with(|unknown| unknown.borrow().get(name).is_some_and(|until| *until > now)) {
        return None;
    }
    let (spent, refill, returned) = LEASES.with(|leases| {
        let mut leases = leases.borrow_mut();
        let Some(lease) = leases.get_mut(name) else {
            return (None, false, Returned::NONE);
        };
        match lease.spend(now) {
            Some(decision) => (Some(decision), lease.should_refill(), Returned::NONE),
            None => (None, false, lease.take_unspent(now)),
        }
    });
    if let Some(decision) = spent {
        if refill {
            ctx.wait_until(refill_lease(env.clone(), holder.clone()));
        }
        return Some(decision);
    }
    let answer = ask_for_lease(env, holder, returned).await?;
    let grant = answer.grant?;
    // The grant joins whatever this isolate holds now (a lease that came back meanwhile), and the
    // request spends from that: refused only when the isolate holds nothing either.
    let now = runtime::now().millis();
    LEASES.with(|leases| {
        let mut leases = leases.borrow_mut();
        if leases.len() >= MAX_BLOCKED {
            leases.retain(|_, lease| !lease.is_old(now));
        }
        let lease = leases
            .entry(name.to_owned())
            .and_modify(|held| held.add(grant, answer.lease_size, now))
            .or_insert_with(|| Lease::new(grant, answer.lease_size, now));
        Some(lease.spend(now).unwrap_or(grant.decision))
    })
}

/// Asks a holder's bucket for a lease (or for one token while another ask of this isolate is on
/// its way), giving back `returned` unspent tokens. `None`: the key or session is unknown
/// (remembered here for a while) or the limiter failed (logged).
async fn ask_for_lease(env: &Env, holder: &Holder, returned: Returned) -> Option<Answer> {
    let name = holder.name();
    let name = name.as_str();
    let asking = Asking::start(name);
    let asked = Ask::Lease {
        holder: holder.clone(),
        returned,
        one: asking.is_none(),
    };
    let answer = ask(env, name, &asked).await;
    drop(asking);
    match answer {
        Ok(answer) if answer.grant.is_none() => {
            // No such key or live session: its function answers 401 and the address's failure
            // budget counts it. Its limiter object is not asked again for a while from this
            // isolate, so that junk keys cost one object's D1 read each, not one per request.
            let now = runtime::now().millis();
            UNKNOWN_HOLDERS.with(|unknown| {
                let mut unknown = unknown.borrow_mut();
                if unknown.len() >= MAX_BLOCKED {
                    unknown.retain(|_, until| *until > now);
                }
                if unknown.len() < MAX_BLOCKED {
                    unknown.insert(name.to_owned(), now + rate_limit::UNKNOWN_KEY_FRESH_MS);
                }
            });
            None
        }
        Ok(answer) => Some(answer),
        Err(error) => {
            console_error!("the rate limiter of a key or session failed: {error:?}");
            None
        }
    }
}

/// This isolate asking for a key's lease, from [`Asking::start`] until dropped.
struct Asking(String);

impl Asking {
    /// `None` when the isolate is already asking for this key's lease.
    fn start(hash: &str) -> Option<Self> {
        ASKING
            .with(|asking| asking.borrow_mut().insert(hash.to_owned()))
            .then(|| Self(hash.to_owned()))
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        ASKING.with(|asking| asking.borrow_mut().remove(&self.0));
    }
}

/// The next lease of a holder whose lease runs low, asked for after the response.
async fn refill_lease(env: Env, holder: Holder) {
    let answer = ask_for_lease(&env, &holder, Returned::NONE).await;
    let now = runtime::now().millis();
    LEASES.with(|leases| {
        let mut leases = leases.borrow_mut();
        let answered = answer.and_then(|answer| Some((answer.grant?, answer.lease_size)));
        match (leases.get_mut(&holder.name()), answered) {
            (Some(lease), Some((grant, size))) => lease.add(grant, size, now),
            (Some(lease), None) => lease.refill_failed(),
            (None, _) => {}
        }
    });
}

async fn ask(env: &Env, name: &str, ask: &Ask) -> Result<Answer, ApiError> {
    let (status, line) = send(env, name, ask).await?;
    Answer::parse_line(&line).ok_or_else(|| {
        ApiError::internal(
            "asking the rate limiter",
            format!("it answered {status}: {line:.200}"),
        )
    })
}

/// Tells a limiter object something it answers only whether it took (`Ask::Usage`).
pub async fn tell(env: &Env, name: &str, ask: &Ask) -> Result<(), ApiError> {
    match send(env, name, ask).await? {
        (200, _) => Ok(()),
        (status, text) => Err(ApiError::internal(
            "telling the rate limiter",
            format!("it answered {status}: {text:.200}"),
        )),
    }
}

/// One ask's line to the object named `name`, and its answer's status and text.
async fn send(env: &Env, name: &str, ask: &Ask) -> Result<(u16, String), ApiError> {
    let stub = env
        .durable_object(BINDING)
        .internal("the rate limiter's binding")?
        .get_by_name(name)
        .internal("the rate limiter's object")?;
    let asked = ask.to_line();
    let request = runtime::outgoing(
        Method::Post,
        "https://rate-limiter/",
        None,
        Some(Body::Text(&asked)),
    )
    .internal("asking the rate limiter")?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .internal("asking the rate limiter")?;
    let text = response
        .text()
        .await
        .internal("reading the rate limiter's answer")?;
    Ok((response.status_code(), text))
}

/// The rate-limit headers of a decision, set on `headers`.
pub fn set_headers(headers: &Headers, decision: &Decision) -> Result<(), ApiError> {
    headers
        .set("x-ratelimit-limit", &decision.limit.to_string())
        .internal("setting a header")?;
    headers
        .set("x-ratelimit-remaining", &decision.remaining.to_string())
        .internal("setting a header")?;
    headers
        .set("x-ratelimit-reset", &decision.reset_seconds.to_string())
        .internal("setting a header")?;
    Ok(())
}

/// The 429 of a key or session over its limit, with its headers.
pub fn over_limit(decision: &Decision) -> Result<Response, ApiError> {
    let error = ApiError::rate_limited(
        format!(
            "this API key or console session is over its limit of {} requests at once; retry after {} s",
            decision.limit, decision.retry_after_seconds
        ),
        decision.retry_after_seconds,
    );
    let response = http::error_response(&error).internal("making an answer")?;
    set_headers(response.headers(), decision)?;
    Ok(response)
}
