//! Rate limits: how many requests an API key may make, and how many failed authentications a
//! client address may cause, as token buckets. The buckets live in a Durable Object each (the
//! `rate-limiter` function's `RateLimiter`); this module is the arithmetic, the policy and what
//! the gateway and the objects say to each other, run natively by tests.
//!
//! A bucket holds up to `burst` tokens and refills at `per_minute` tokens a minute; each request
//! takes one, and a request that finds less than one is refused until one has refilled.
//!
//! A gateway isolate does not ask the bucket for every request of a key: it takes a [`Lease`] of a
//! few tokens at once ([`Policy::lease_size`]) and spends them itself, asking for the next lease in
//! the background when it runs low. Tokens leased are taken from the bucket, and the bucket does
//! not refill the room they took while they may still be spent ([`Bucket::LEASED_FOR_MS`]), so a
//! key never gets more than its limit; what an isolate holds unspent is given back once the lease
//! is older than [`Lease::LIFETIME_MS`], so another isolate may be refused at most that many
//! tokens early for at most that long.

use crate::error::ApiError;
use crate::key_usage::Report;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;

/// A bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "KeyRateLimit", example = Policy::DEFAULT_KEY))]
pub struct Policy {
    /// Sustained requests a minute (the bucket refills at this rate).
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = Policy::MAX_PER_MINUTE)))]
    pub per_minute: u32,
    /// Requests that may come at once (the bucket's size).
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = Policy::MAX_BURST)))]
    pub burst: u32,
}

impl Policy {
    /// An API key's limit unless its business set one: a CRM sync job sending 1000-customer
    /// batches, polling every few seconds and sending messages stays far below it, and a runaway
    /// loop is held to 10 requests a second.
    pub const DEFAULT_KEY: Self = Self {
        per_minute: 600,
        burst: 100,
    };
    /// Failed authentications a client address may cause (a bad key, a bad admin token, a bad
    /// webhook signature, a bad SSO token) before its requests are refused without a lookup.
    pub const FAILED_AUTHENTICATIONS: Self = Self {
        per_minute: 60,
        burst: 120,
    };
    /// Failed authentications an IPv6 site (a /48: 65,536 /64s, each a budget of its own) may
    /// cause together: sixteen clients' budgets, so that rotating /64s buys little.
    pub const FAILED_AUTHENTICATIONS_PER_SITE: Self = Self {
        per_minute: 960,
        burst: 1_920,
    };
    pub const MAX_PER_MINUTE: u32 = 100_000;
    pub const MAX_BURST: u32 = 10_000;

    /// The admin API's `rate_limit` object: `per_minute` (1–100,000) and `burst`
    /// (1–10,000), either of which may be left out to keep `current`'s.
    pub fn parse(value: &Value, current: Self) -> Result<Self, ApiError> {
        let Some(object) = value.as_object() else {
            return Err(ApiError::invalid(
                "rate_limit",
                "rate_limit is an object: {\"per_minute\": 600, \"burst\": 100}",
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !["per_minute", "burst"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid(
                format!("rate_limit.{unknown}"),
                "rate_limit has per_minute and burst only",
            ));
        }
        let field = |name: &str, current: u32, max: u32| -> Result<u32, ApiError> {
            match object.get(name) {
                None => Ok(current),
                Some(value) => value
                    .as_u64()
                    .filter(|n| (1..=u64::from(max)).contains(n))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            format!("rate_limit.{name}"),
                            format!("rate_limit.{name} is a whole number from 1 to {max}"),
                        )
                    }),
            }
        };
        Ok(Self {
            per_minute: field("per_minute", current.per_minute, Self::MAX_PER_MINUTE)?,
            burst: field("burst", current.burst, Self::MAX_BURST)?,
        })
    }

    /// A stored policy; `None` columns (never set) are the default's.
    pub fn stored(per_minute: Option<i64>, burst: Option<i64>) -> Self {
        let within = |value: Option<i64>, default: u32| {
            value
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        Self {
            per_minute: within(per_minute, Self::DEFAULT_KEY.per_minute),
            burst: within(burst, Self::DEFAULT_KEY.burst),
        }
    }

    /// How many tokens an isolate takes from the bucket at a time: a tenth of the burst, from 1
    /// (every request asks the bucket: exact, as a small limit must be) to [`Self::MAX_LEASE`].
    pub fn lease_size(self) -> u32 {
        (self.burst / 10).clamp(1, Self::MAX_LEASE)
    }

    /// The largest lease: what one isolate may hold of a key's bucket.
    pub const MAX_LEASE: u32 = 50;

    fn per_ms(self) -> f64 {
        f64::from(self.per_minute) / 60_000.0
    }
}

/// One bucket's state. A new bucket is full.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at_ms: i64,
    /// Tokens granted lately, and when: an isolate may still spend them, so the bucket refills
    /// only up to its size less these until they are too old to spend ([`Bucket::LEASED_FOR_MS`]).
    /// What the bucket holds and what isolates may still spend never add up to more than its size.
    leased: VecDeque<(i64, u32)>,
}

/// What taking a token decided, in the terms of the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `X-RateLimit-Limit`: the bucket's size.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: whole tokens left after this request.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: seconds until the bucket is full again.
    pub reset_seconds: u32,
    /// `Retry-After` of a refusal: seconds until a token is back (at least 1).
    pub retry_after_seconds: u32,
}

/// Whole tokens taken from a bucket at once, and the bucket's state after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// 0 when the bucket has no whole token: `decision` is then the refusal.
    pub tokens: u32,
    pub decision: Decision,
}

impl Bucket {
    /// How long tokens granted to a lease count against the bucket: the lease's lifetime, the
    /// second in which its unspent tokens come back as still counted ([`Returned::counted`]), and
    /// a second for the answer's way to the isolate and for clocks that differ.
    pub const LEASED_FOR_MS: i64 = Lease::COUNTED_FOR_MS + 1_000;

    pub fn full(policy: Policy, now_ms: i64) -> Self {
        Self {
            tokens: f64::from(policy.burst),
            at_ms: now_ms,
            leased: VecDeque::new(),
        }
    }

    /// Refills for the time passed, then takes one token if there is one, spent on the spot.
    pub fn take(&mut self, policy: Policy, now_ms: i64) -> Decision {
        self.take_up_to(policy, now_ms, 1).decision
    }

    /// Refills for the time passed, then takes as many whole tokens as there are, up to `want`,
    /// for a lease: they count against the bucket until they are too old to spend. A grant of one
    /// token is spent by the request that asked for it (a small limit's lease, or a request
    /// while its isolate's lease is on its way), so it is counted as spent at once: a small limit
    /// stays exact.
    pub fn grant(&mut self, policy: Policy, now_ms: i64, want: u32) -> Grant {
        let grant = self.take_up_to(policy, now_ms, want);
        if want > 1 && grant.tokens > 0 {
            self.leased.push_back((now_ms, grant.tokens));
        }
        grant
    }

    /// Puts back tokens a lease did not spend (never beyond what the bucket may hold). Tokens whose
    /// grant still counts against the bucket stop counting first, the oldest grants' first: else
    /// the room they take would refuse them, and a lease that aged out before it was spent (a slow
    /// isolate) would lose its tokens for as long as the bucket takes to refill them.
    pub fn give_back(&mut self, policy: Policy, now_ms: i64, returned: Returned) {
        if returned.counted {
            let mut left = returned.tokens;
            for (_, leased) in &mut self.leased {
                let released = left.min(*leased);
                *leased -= released;
                left -= released;
            }
            self.leased.retain(|(_, leased)| *leased > 0);
        }
        self.refill(policy, now_ms);
        self.tokens = (self.tokens + f64::from(returned.tokens)).min(self.room(policy, now_ms));
    }

    fn take_up_to(&mut self, policy: Policy, now_ms: i64, want: u32) -> Grant {
        self.refill(policy, now_ms);
        let tokens = (self.tokens.floor() as u32).min(want);
        self.tokens -= f64::from(tokens);
        let allowed = tokens > 0;
        let burst = f64::from(policy.burst);
        let seconds_until = |tokens: f64| ((tokens / policy.per_ms()) / 1000.0).ceil().max(0.0) as u32;
        Grant {
            tokens,
            decision: Decision {
                allowed,
                limit: policy.burst,
                remaining: self.tokens.floor() as u32,
                reset_seconds: seconds_until(burst - self.tokens),
                retry_after_seconds: if allowed {
                    0
                } else {
                    seconds_until(1.0 - self.tokens).max(1)
                },
            },
        }
    }

    fn refill(&mut self, policy: Policy, now_ms: i64) {
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        let room = self.room(policy, now_ms);
        self.tokens = (self.tokens + elapsed * policy.per_ms()).min(room);
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// The most the bucket may hold now: its size, less what leases may still spend.
    fn room(&mut self, policy: Policy, now_ms: i64) -> f64 {
        while self
            .leased
            .front()
            .is_some_and(|(at, _)| now_ms - at >= Self::LEASED_FOR_MS)
        {
            self.leased.pop_front();
        }
        let leased: u32 = self.leased.iter().map(|(_, tokens)| tokens).sum();
        f64::from(policy.burst.saturating_sub(leased))
    }
}

/// Tokens of one key's bucket that an isolate holds and spends one per request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease {
    tokens: u32,
    /// The bucket's answer to the last grant: its limit, what it had left, when it is full.
    last: Decision,
    granted_at_ms: i64,
    /// A grant's size, to know when this lease runs low.
    size: u32,
    /// The next grant has been asked for and has not come back yet.
    refilling: bool,
}

impl Lease {
    /// How long unspent tokens are held before they go back to the bucket.
    pub const LIFETIME_MS: i64 = 2_000;
    /// Unspent tokens given back within this long of their grant (by this isolate's clock) still
    /// count against the bucket there ([`Bucket::LEASED_FOR_MS`] outlasts it by the answer's way).
    pub const COUNTED_FOR_MS: i64 = Self::LIFETIME_MS + 1_000;

    /// A lease of `grant`'s tokens; `size` is what was asked for.
    pub fn new(grant: Grant, size: u32, now_ms: i64) -> Self {
        Self {
            tokens: grant.tokens,
            last: grant.decision,
            granted_at_ms: now_ms,
            size: size.max(1),
            refilling: false,
        }
    }

    /// Spends one token: the decision to answer the request with (what the bucket had left at the
    /// last grant, plus what this lease still holds), or `None` when it holds none or is too old.
    pub fn spend(&mut self, now_ms: i64) -> Option<Decision> {
        if self.tokens == 0 || self.is_old(now_ms) {
            return None;
        }
        self.tokens -= 1;
        Some(Decision {
            allowed: true,
            remaining: self.last.remaining.saturating_add(self.tokens),
            retry_after_seconds: 0,
            ..self.last
        })
    }

    /// Whether to ask for the next grant now, in the background: the lease is down to half its
    /// size and none is on its way. A lease of one token never asks ahead: a small limit stays
    /// exact, each request asking the bucket itself. Asking marks the lease as refilling.
    pub fn should_refill(&mut self) -> bool {
        let due = self.size > 1 && !self.refilling && self.tokens * 2 <= self.size;
        self.refilling |= due;
        due
    }

    /// Adds a grant that came back (the bucket's state is now its), asked for as `size` tokens.
    /// Tokens still held from an earlier grant keep its age: the lease grows old with its oldest
    /// tokens, as the bucket counts them.
    pub fn add(&mut self, grant: Grant, size: u32, now_ms: i64) {
        if self.tokens == 0 {
            self.granted_at_ms = now_ms;
        }
        self.tokens += grant.tokens;
        self.size = self.size.max(size);
        self.last = grant.decision;
        self.refilling = false;
    }

    /// A background grant that failed: the next request asks the bucket itself once this is spent.
    pub fn refill_failed(&mut self) {
        self.refilling = false;
    }

    /// Takes the unspent tokens of a lease too old to spend, to give them back to the bucket.
    pub fn take_unspent(&mut self, now_ms: i64) -> Returned {
        if !self.is_old(now_ms) {
            return Returned::NONE;
        }
        Returned {
            tokens: std::mem::take(&mut self.tokens),
            counted: now_ms - self.granted_at_ms < Self::COUNTED_FOR_MS,
        }
    }

    /// Older than [`Self::LIFETIME_MS`]: not to be spent any more.
    pub fn is_old(&self, now_ms: i64) -> bool {
        now_ms - self.granted_at_ms >= Self::LIFETIME_MS
    }
}

/// Unspent tokens a lease gives back to its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Returned {
    pub tokens: u32,
    /// Given back soon enough that their grant still counts against the bucket (within
    /// [`Lease::COUNTED_FOR_MS`]): the bucket stops counting them as leased.
    pub counted: bool,
}

impl Returned {
    pub const NONE: Returned = Returned {
        tokens: 0,
        counted: false,
    };
}

/// How long a key no business has is known as such, by its limiter and by the gateway's isolates
/// (a key issued meanwhile is limited soon after).
pub const UNKNOWN_KEY_FRESH_MS: i64 = 10_000;

/// What the gateway asks a key's or an address's limiter (the `rate-limiter` function's object),
/// and what it answers. Both travel as one line of words: the gateway reads no JSON, which keeps
/// serde's deserializer (and the float formatting its messages bring) out of the one bundle every
/// request passes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Requests of this holder: grant a lease of tokens (one only when `one`: the isolate is
    /// already asking for a lease), after taking back `returned` unspent ones.
    Lease {
        holder: Holder,
        returned: Returned,
        one: bool,
    },
    /// An authentication from this address (or, `site`, from an address of this IPv6 /48) failed:
    /// take a token of its failure budget.
    FailedAuthentication { site: bool },
    /// What a key's requests were since this isolate last said (`key_usage`): to be stored.
    Usage { holder: Holder, report: Report },
}

/// Whose requests a bucket counts: an API key's, or a console session's (which its business's
/// policy limits as a key's: a session is not a way around the operator's limit). Each by the
/// SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Key(String),
    Session(String),
}

impl Holder {
    /// `key:<hash>` or `session:<hash>`: the name of its limiter object, and how an isolate
    /// files its lease.
    pub fn name(&self) -> String {
        match self {
            Holder::Key(hash) => format!("key:{hash}"),
            Holder::Session(hash) => format!("session:{hash}"),
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name.split_once(':')? {
            ("key", hash) if !hash.is_empty() => Some(Holder::Key(hash.to_owned())),
            ("session", hash) if !hash.is_empty() => Some(Holder::Session(hash.to_owned())),
            _ => None,
        }
    }
}

impl Ask {
    /// `lease <holder's name> <returned> <0|1> <counted 0|1>`, `failed-authentication [site]`, or
    /// `usage <holder's name> <report's words>`.
    pub fn to_line(&self) -> String {
        match self {
            Ask::Lease {
                holder,
                returned,
                one,
            } => {
                format!(
                    "lease {} {} {} {}",
                    holder.name(),
                    returned.tokens,
                    u8::from(*one),
                    u8::from(returned.counted)
                )
            }
            Ask::FailedAuthentication { site: false } => "failed-authentication".to_owned(),
            Ask::FailedAuthentication { site: true } => "failed-authentication site".to_owned(),
            Ask::Usage { holder, report } => format!("usage {} {}", holder.name(), report.to_words()),
        }
    }

    /// The ask a line says, or `None` for one that is not.
    pub fn parse_line(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            // An isolate of the deployment before counted returns says nothing of it.
            ["lease", holder, returned, one, counted @ ..] if counted.len() <= 1 => Some(Ask::Lease {
                holder: Holder::parse(holder)?,
                returned: Returned {
                    tokens: returned.parse().ok()?,
                    counted: match counted {
                        [counted] => flag(counted)?,
                        _ => false,
                    },
                },
                one: flag(one)?,
            }),
            ["failed-authentication"] => Some(Ask::FailedAuthentication { site: false }),
            ["failed-authentication", "site"] => Some(Ask::FailedAuthentication { site: true }),
            ["usage", holder, report @ ..] => Some(Ask::Usage {
                holder: Holder::parse(holder)?,
                report: Report::parse_words(report)?,
            }),
            _ => None,
        }
    }
}

/// A limiter's answer: `grant` is absent for a key that is not (or no longer) valid;
/// `lease_size` is the size of a lease of this key (what was asked of the bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub grant: Option<Grant>,
    pub lease_size: u32,
}

impl Answer {
    /// `none <lease size>`, or `grant <lease size> <tokens> <allowed 0|1> <limit> <remaining>
    /// <reset seconds> <retry-after seconds>`.
    pub fn to_line(&self) -> String {
        match self.grant {
            None => format!("none {}", self.lease_size),
            Some(Grant { tokens, decision }) => format!(
                "grant {} {tokens} {} {} {} {} {}",
                self.lease_size,
                u8::from(decision.allowed),
                decision.limit,
                decision.remaining,
                decision.reset_seconds,
                decision.retry_after_seconds
            ),
        }
    }

    /// The answer a line says, or `None` for one that is not.
    pub fn parse_line(line: &str) -> Option<Self> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |word: &str| word.parse::<u32>().ok();
        match words.as_slice() {
            ["none", size] => Some(Answer {
                grant: None,
                lease_size: number(size)?,
            }),
            ["grant", size, tokens, allowed, limit, remaining, reset, retry] => Some(Answer {
                grant: Some(Grant {
                    tokens: number(tokens)?,
                    decision: Decision {
                        allowed: flag(allowed)?,
                        limit: number(limit)?,
                        remaining: number(remaining)?,
                        reset_seconds: number(reset)?,
                        retry_after_seconds: number(retry)?,
                    },
                }),
                lease_size: number(size)?,
            }),
            _ => None,
        }
    }
}

fn flag(word: &str) -> Option<bool> {
    match word {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// The addresses one failure budget covers: an IPv4 address alone, and an IPv6 address by its /64,
/// the block one subscriber or host is given (a client may rotate within it at no cost). An IPv4
/// address written as IPv6 (`::ffff:a.b.c.d`) is that IPv4 address. None for what is not an address.
pub fn address_group(address: &str) -> Option<String> {
    match address.trim().parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => Some(v4.to_string()),
        std::net::IpAddr::V6(v6) => Some(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }),
    }
}

/// The failure budgets an address spends from, each with its name (its limiter object's) and
/// whether it is a site's: its own group's ([`address_group`]), and for IPv6 its /48's too, so
/// that a client rotating through the /64s of its site is held to a ceiling all the same.
pub fn failure_budgets(address: &str) -> Vec<(String, bool)> {
    let Some(group) = address_group(address) else {
        return Vec::new();
    };
    let mut budgets = vec![(format!("address:{group}"), false)];
    if let Ok(std::net::IpAddr::V6(v6)) = address.trim().parse::<std::net::IpAddr>()
        && v6.to_ipv4_mapped().is_none()
    {
        let s = v6.segments();
        budgets.push((format!("site:{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]), true));
    }
    budgets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_also_spends_from_its_sites_budget() {
        assert_eq!(
            failure_budgets("203.0.113.7"),
            vec![("address:203.0.113.7".to_owned(), false)]
        );
        assert_eq!(
            failure_budgets("::ffff:203.0.113.7"),
            vec![("address:203.0.113.7".to_owned(), false)]
        );
        let one = failure_budgets("2001:db8:1:2::1");
        assert_eq!(
            one,
            vec![
                ("address:2001:db8:1:2::/64".to_owned(), false),
                ("site:2001:db8:1::/48".to_owned(), true)
            ]
        );
        let rotated = failure_budgets("2001:db8:1:ffff::9");
        assert_ne!(rotated[0], one[0], "another /64 is another client");
        assert_eq!(rotated[1], one[1], "of the same site");
        assert_eq!(failure_budgets("nope"), Vec::<(String, bool)>::new());
    }

    #[test]
    fn an_ipv6_client_is_one_client_across_its_64_and_ipv4_stays_exact() {
        assert_eq!(address_group("203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(
            address_group("::ffff:203.0.113.7").as_deref(),
            Some("203.0.113.7")
        );
        let a = address_group("2001:db8:1:2:aaaa::1");
        assert_eq!(a.as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(address_group("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), a);
        assert_ne!(address_group("2001:db8:1:3::1"), a);
        assert_eq!(address_group("not an address"), None);
    }
    use serde_json::json;

    const POLICY: Policy = Policy {
        per_minute: 60,
        burst: 3,
    };

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_refuses_until_a_token_refills() {
        let mut bucket = Bucket::full(POLICY, 0);
        let taken: Vec<Decision> = (0..4).map(|_| bucket.take(POLICY, 0)).collect();
        assert_eq!(
            taken.iter().map(|d| d.allowed).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        assert_eq!(
            taken.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert_eq!(taken[3].retry_after_seconds, 1, "one token a second");
        assert_eq!(taken[3].reset_seconds, 3, "three seconds to full");
        assert_eq!(taken[0].limit, 3);
        // Half a second later there is still no whole token; a second later there is one.
        assert!(!bucket.take(POLICY, 500).allowed);
        let later = bucket.take(POLICY, 1_000);
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
    }

    #[test]
    fn a_quiet_spell_refills_the_bucket_but_never_beyond_its_size() {
        let mut bucket = Bucket::full(POLICY, 0);
        for _ in 0..3 {
            bucket.take(POLICY, 0);
        }
        let after_an_hour = bucket.take(POLICY, 3_600_000);
        assert_eq!(after_an_hour.remaining, 2, "full (3), less this request");
        assert_eq!(after_an_hour.reset_seconds, 1);
    }

    #[test]
    fn the_sustained_rate_is_the_policy_s() {
        let policy = Policy::DEFAULT_KEY;
        let mut bucket = Bucket::full(policy, 0);
        // A request every 10 ms for a minute: the burst, then 10 a second.
        let allowed = (0..6_000).filter(|i| bucket.take(policy, i * 10).allowed).count();
        assert!((695..=705).contains(&allowed), "{allowed}");
    }

    #[test]
    fn a_grant_takes_whole_tokens_up_to_what_was_asked_and_never_more_than_the_bucket_has() {
        let policy = Policy {
            per_minute: 60,
            burst: 25,
        };
        let mut bucket = Bucket::full(policy, 0);
        let first = bucket.grant(policy, 0, 10);
        assert_eq!((first.tokens, first.decision.remaining), (10, 15));
        assert!(first.decision.allowed);
        assert_eq!(bucket.grant(policy, 0, 10).tokens, 10);
        let last = bucket.grant(policy, 0, 10);
        assert_eq!((last.tokens, last.decision.remaining), (5, 0));
        let refused = bucket.grant(policy, 0, 10);
        assert_eq!(refused.tokens, 0);
        assert!(!refused.decision.allowed);
        assert_eq!(refused.decision.retry_after_seconds, 1);
        // Tokens given back while their grant still counts against the bucket stop counting as
        // leased: they can be granted again at once. Tokens whose grant aged out come back within
        // the room, and the bucket never holds more than its size.
        let back = |tokens, counted| Returned { tokens, counted };
        bucket.give_back(policy, 0, back(3, true));
        assert_eq!(bucket.grant(policy, 0, 10).tokens, 3);
        bucket.give_back(policy, 60_000, back(50, false));
        assert_eq!(bucket.grant(policy, 60_000, 100).tokens, 25);
    }

    #[test]
    fn leases_spread_over_isolates_never_admit_more_than_one_bucket_would() {
        let policy = Policy {
            per_minute: 600,
            burst: 100,
        };
        let size = policy.lease_size();
        assert_eq!(size, 10);
        let mut bucket = Bucket::full(policy, 0);
        let mut leases: Vec<Option<Lease>> = vec![None; 4];
        let mut admitted = 0;
        // 4 isolates, a request every ms in turn for 10 s: the bucket allows 100 + 10 a second.
        for ms in 0..10_000_i64 {
            let slot = &mut leases[(ms % 4) as usize];
            let spent = slot.as_mut().and_then(|lease| lease.spend(ms));
            let allowed = match spent {
                Some(_) => true,
                None => {
                    let unspent = slot
                        .as_mut()
                        .map_or(Returned::NONE, |lease| lease.take_unspent(ms));
                    bucket.give_back(policy, ms, unspent);
                    let grant = bucket.grant(policy, ms, size);
                    let mut lease = Lease::new(grant, size, ms);
                    let allowed = lease.spend(ms).is_some();
                    *slot = Some(lease);
                    allowed
                }
            };
            admitted += usize::from(allowed);
        }
        assert!(admitted <= 100 + 100, "{admitted}");
        assert!(
            admitted >= 100 + 100 - 4 * 10,
            "at most a lease per isolate held back: {admitted}"
        );
    }

    #[test]
    fn a_slow_isolate_whose_leases_age_out_unspent_still_lets_exactly_the_burst_through() {
        // A busy machine: a request every 300 ms, so each lease of 10 grows old before it is
        // spent and gives back what is left while its grant still counts. One refill a minute:
        // over 36 s the bucket allows its burst and no more, and none of it is lost.
        let policy = Policy {
            per_minute: 1,
            burst: 100,
        };
        let size = policy.lease_size();
        let mut bucket = Bucket::full(policy, 0);
        let mut lease: Option<Lease> = None;
        let mut admitted = 0;
        for step in 0..120_i64 {
            let ms = step * 300;
            let allowed = match lease.as_mut().and_then(|lease| lease.spend(ms)) {
                Some(_) => true,
                None => {
                    let unspent = lease
                        .as_mut()
                        .map_or(Returned::NONE, |lease| lease.take_unspent(ms));
                    bucket.give_back(policy, ms, unspent);
                    let mut granted = Lease::new(bucket.grant(policy, ms, size), size, ms);
                    let allowed = granted.spend(ms).is_some();
                    lease = Some(granted);
                    allowed
                }
            };
            admitted += usize::from(allowed);
        }
        assert_eq!(admitted, 100);
    }

    #[test]
    fn tokens_an_isolate_holds_are_not_refilled_behind_its_back() {
        // A lease of 50, a quiet second (the bucket alone would be full again), then a burst from
        // the lease and the bucket together: never more than the bucket's size.
        let policy = Policy {
            per_minute: 6_000,
            burst: 100,
        };
        let mut bucket = Bucket::full(policy, 0);
        let mut lease = Lease::new(bucket.grant(policy, 0, 50), 50, 0);
        let mut admitted = 0;
        while lease.spend(1_000).is_some() {
            admitted += 1;
        }
        while bucket.take(policy, 1_000).allowed {
            admitted += 1;
        }
        assert_eq!(admitted, 100);
        // Once the lease is too old to spend, what it held counts no more, and the bucket refills.
        let later = Bucket::LEASED_FOR_MS;
        assert_eq!(lease.spend(later), None);
        let refilled = (0..200).filter(|_| bucket.take(policy, later).allowed).count();
        assert_eq!(refilled, 100);
        // The headers never say more is left than the bucket's size.
        let mut bucket = Bucket::full(policy, 0);
        let mut lease = Lease::new(bucket.grant(policy, 0, 50), 50, 0);
        lease.spend(0);
        lease.add(bucket.grant(policy, 1_500, 50), 50, 1_500);
        let remaining = lease.spend(1_500).map(|decision| decision.remaining);
        assert!(
            remaining.is_some_and(|remaining| remaining < 100),
            "{remaining:?}"
        );
    }

    #[test]
    fn a_lease_grows_old_with_its_oldest_tokens() {
        let policy = Policy::DEFAULT_KEY;
        let mut bucket = Bucket::full(policy, 0);
        let mut lease = Lease::new(bucket.grant(policy, 0, 10), 10, 0);
        lease.spend(0);
        lease.add(bucket.grant(policy, 1_500, 10), 10, 1_500);
        assert_eq!(
            lease.spend(Lease::LIFETIME_MS),
            None,
            "the first grant's tokens are too old"
        );
        assert_eq!(lease.take_unspent(Lease::LIFETIME_MS).tokens, 19);
        // A lease whose tokens were all spent starts its age again with the next grant.
        let mut lease = Lease::new(bucket.grant(policy, 0, 1), 1, 0);
        lease.spend(0);
        lease.add(bucket.grant(policy, 1_500, 1), 1, 1_500);
        assert!(lease.spend(Lease::LIFETIME_MS).is_some());
    }

    #[test]
    fn a_lease_answers_what_the_bucket_had_plus_what_it_holds_and_asks_ahead_at_half() {
        let policy = Policy::DEFAULT_KEY;
        let mut bucket = Bucket::full(policy, 0);
        let mut lease = Lease::new(bucket.grant(policy, 0, 10), 10, 0);
        let first = lease
            .spend(0)
            .map(|decision| (decision.remaining, decision.limit));
        assert_eq!(first, Some((99, 100)), "90 in the bucket, 9 held");
        for _ in 0..3 {
            lease.spend(0);
            assert!(!lease.should_refill());
        }
        lease.spend(0);
        assert!(lease.should_refill(), "5 of 10 left");
        assert!(!lease.should_refill(), "already on its way");
        lease.add(bucket.grant(policy, 0, 10), 10, 0);
        assert_eq!(lease.spend(0).map(|d| d.remaining), Some(80 + 14));
    }

    #[test]
    fn an_old_lease_is_not_spent_and_gives_its_tokens_back() {
        let policy = Policy::DEFAULT_KEY;
        let mut bucket = Bucket::full(policy, 0);
        let mut lease = Lease::new(bucket.grant(policy, 0, 10), 10, 0);
        lease.spend(0);
        assert_eq!(lease.take_unspent(Lease::LIFETIME_MS - 1).tokens, 0);
        assert_eq!(lease.spend(Lease::LIFETIME_MS), None);
        assert_eq!(lease.take_unspent(Lease::LIFETIME_MS).tokens, 9);
        assert_eq!(lease.take_unspent(Lease::LIFETIME_MS).tokens, 0);
    }

    #[test]
    fn a_small_limit_refills_as_an_exact_bucket_does() {
        let small = Policy {
            per_minute: 60,
            burst: 2,
        };
        let mut leased = Bucket::full(small, 0);
        let mut exact = Bucket::full(small, 0);
        for ms in (0..10_000).step_by(250) {
            let by_lease = leased.grant(small, ms, small.lease_size()).decision;
            assert_eq!(by_lease, exact.take(small, ms), "at {ms} ms");
        }
    }

    #[test]
    fn a_lease_of_one_never_asks_ahead_so_a_small_limit_stays_exact() {
        let small = Policy {
            per_minute: 30,
            burst: 5,
        };
        assert_eq!(small.lease_size(), 1);
        assert_eq!(
            Policy {
                per_minute: 1,
                burst: 10_000
            }
            .lease_size(),
            Policy::MAX_LEASE
        );
        let mut bucket = Bucket::full(small, 0);
        let mut lease = Lease::new(bucket.grant(small, 0, 1), 1, 0);
        assert!(lease.spend(0).is_some());
        assert!(!lease.should_refill());
        assert_eq!(lease.spend(0), None);
    }

    #[test]
    fn a_clock_that_goes_back_does_not_mint_tokens() {
        let mut bucket = Bucket::full(POLICY, 10_000);
        for _ in 0..3 {
            bucket.take(POLICY, 10_000);
        }
        assert!(!bucket.take(POLICY, 5_000).allowed);
        assert!(!bucket.take(POLICY, 10_000).allowed);
    }

    #[test]
    fn the_admin_api_sets_either_number_within_bounds() {
        let current = Policy::DEFAULT_KEY;
        assert_eq!(
            Policy::parse(&json!({"per_minute": 1200}), current),
            Ok(Policy {
                per_minute: 1200,
                burst: 100
            })
        );
        assert_eq!(
            Policy::parse(&json!({"burst": 5, "per_minute": 30}), current),
            Ok(Policy {
                per_minute: 30,
                burst: 5
            })
        );
        for (bad, field) in [
            (json!(5), "rate_limit"),
            (json!({"burst": 0}), "rate_limit.burst"),
            (json!({"burst": 10_001}), "rate_limit.burst"),
            (json!({"per_minute": 1.5}), "rate_limit.per_minute"),
            (json!({"per_minute": "600"}), "rate_limit.per_minute"),
            (json!({"per_second": 1}), "rate_limit.per_second"),
        ] {
            let error = Policy::parse(&bad, current).err();
            assert_eq!(error.and_then(|e| e.body.field).as_deref(), Some(field), "{bad}");
        }
    }

    #[test]
    fn unset_columns_are_the_default() {
        assert_eq!(Policy::stored(None, None), Policy::DEFAULT_KEY);
        assert_eq!(
            Policy::stored(Some(50), None),
            Policy {
                per_minute: 50,
                burst: 100
            }
        );
        assert_eq!(Policy::stored(Some(0), Some(-1)), Policy::DEFAULT_KEY);
    }

    #[test]
    fn the_limiters_lines_say_what_was_asked_and_answered() {
        for ask in [
            Ask::Lease {
                holder: Holder::Key("ab12".into()),
                returned: Returned {
                    tokens: 7,
                    counted: true,
                },
                one: true,
            },
            Ask::Lease {
                holder: Holder::Session("cd34".into()),
                returned: Returned::NONE,
                one: false,
            },
            Ask::FailedAuthentication { site: false },
            Ask::FailedAuthentication { site: true },
            Ask::Usage {
                holder: Holder::Key("ab12".into()),
                report: {
                    let mut tally = crate::key_usage::Tally::default();
                    tally.count(7_200_000, Some("203.0.113.7"), "GET /api-customers", 200, false);
                    tally.take().unwrap_or_else(|| panic!("counted"))
                },
            },
        ] {
            assert_eq!(Ask::parse_line(&ask.to_line()), Some(ask));
        }
        for line in [
            "usage key:ab12",
            "usage nobody 1 - GET /a",
            "lease ab12 0 0",
            "lease key: 0 0",
            "lease other:ab12 0 0",
            "lease session:cd34 x 0",
        ] {
            assert_eq!(Ask::parse_line(line), None, "{line}");
        }
        let decision = Decision {
            allowed: false,
            limit: 100,
            remaining: 0,
            reset_seconds: 10,
            retry_after_seconds: 1,
        };
        for answer in [
            Answer {
                grant: None,
                lease_size: 1,
            },
            Answer {
                grant: Some(Grant { tokens: 0, decision }),
                lease_size: 10,
            },
            Answer {
                grant: Some(Grant {
                    tokens: 10,
                    decision: Decision {
                        allowed: true,
                        remaining: 89,
                        ..decision
                    },
                }),
                lease_size: 10,
            },
        ] {
            assert_eq!(Answer::parse_line(&answer.to_line()), Some(answer));
        }
        for junk in [
            "",
            "lease",
            "lease h 1",
            "lease h -1 0",
            "lease h 1 2",
            "grant 1 1 1 1 1 1",
            "grant 1 1 yes 1 1 1 1",
            "none",
            "none x",
            "<html>",
        ] {
            assert_eq!(Ask::parse_line(junk), None, "{junk}");
            assert_eq!(Answer::parse_line(junk), None, "{junk}");
        }
    }
}
