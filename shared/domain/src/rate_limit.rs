//! Rate limits: how many requests an API key may make, and how many failed authentications a
//! client address may cause, as token buckets. The buckets live in a Durable Object each (the
//! gateway's `RateLimiter`); this module is the arithmetic and the policy, run natively by tests.
//!
//! A bucket holds up to `burst` tokens and refills at `per_minute` tokens a minute; each request
//! takes one, and a request that finds less than one is refused until one has refilled.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Sustained requests a minute.
    pub per_minute: u32,
    /// Requests that may come at once, after a quiet spell.
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

    fn per_ms(self) -> f64 {
        f64::from(self.per_minute) / 60_000.0
    }
}

/// One bucket's state. A new bucket is full.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// What taking a token decided, in the terms of the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl Bucket {
    pub fn full(policy: Policy, now_ms: i64) -> Self {
        Self {
            tokens: f64::from(policy.burst),
            at_ms: now_ms,
        }
    }

    /// Refills for the time passed, then takes one token if there is one.
    pub fn take(&mut self, policy: Policy, now_ms: i64) -> Decision {
        let burst = f64::from(policy.burst);
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * policy.per_ms()).min(burst);
        self.at_ms = now_ms.max(self.at_ms);
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        let seconds_until = |tokens: f64| ((tokens / policy.per_ms()) / 1000.0).ceil().max(0.0) as u32;
        Decision {
            allowed,
            limit: policy.burst,
            remaining: self.tokens.floor() as u32,
            reset_seconds: seconds_until(burst - self.tokens),
            retry_after_seconds: if allowed {
                0
            } else {
                seconds_until(1.0 - self.tokens).max(1)
            },
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
