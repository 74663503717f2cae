//! A connector's request budget: how many calls its CRM allows per sliding minute, per sliding
//! second and per UTC day, and how long to wait when it is spent. The counting happens in D1 (so
//! every worker shares one budget); this is the arithmetic.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const MINUTE_US: i64 = 60_000_000;
pub const SECOND_US: i64 = 1_000_000;
pub const DAY_US: i64 = 86_400_000_000;
/// The most a budget may allow per window: beyond it, say "no limit".
const MAX_PER_WINDOW: u32 = 1_000_000;

/// Limits; `None` is no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Budget {
    pub per_minute: Option<u32>,
    pub per_second: Option<u32>,
    pub per_day: Option<u32>,
}

impl Budget {
    /// Kustomer's limits as our setup guide states them: 100 requests a minute, bursts of 10 a
    /// second, 10,000 a day. Real organisations get 300 to 2,000 a minute by plan, which is why
    /// the budget is configurable per connector.
    pub const KUSTOMER: Budget = Budget {
        per_minute: Some(100),
        per_second: Some(10),
        per_day: Some(10_000),
    };

    /// Krayin's API as `throttle:api` limits it by default: 60 requests a minute per user, counted
    /// over one minute from the first; no per-second or daily limit.
    pub const KRAYIN: Budget = Budget {
        per_minute: Some(60),
        per_second: None,
        per_day: None,
    };

    /// `base` with the limits `input` names replaced (a number, or null for no limit). Paths are
    /// under `rate_limit`.
    pub fn merged(base: Budget, input: &Map<String, Value>) -> Result<Budget, ApiError> {
        let mut budget = base;
        for (key, value) in input {
            let slot = match key.as_str() {
                "per_minute" => &mut budget.per_minute,
                "per_second" => &mut budget.per_second,
                "per_day" => &mut budget.per_day,
                _ => {
                    return Err(ApiError::invalid(
                        format!("rate_limit.{key}"),
                        "the rate limit has per_minute, per_second and per_day",
                    ));
                }
            };
            *slot = match value {
                Value::Null => None,
                Value::Number(number) => Some(
                    number
                        .as_u64()
                        .filter(|n| (1..=u64::from(MAX_PER_WINDOW)).contains(n))
                        .map(|n| n as u32)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                format!("rate_limit.{key}"),
                                format!("a whole number from 1 to {MAX_PER_WINDOW}, or null for no limit"),
                            )
                        })?,
                ),
                _ => {
                    return Err(ApiError::invalid(
                        format!("rate_limit.{key}"),
                        "a whole number, or null for no limit",
                    ));
                }
            };
        }
        Ok(budget)
    }
}

/// The start of the UTC day `now_us` is in.
pub fn day_start(now_us: i64) -> i64 {
    now_us - now_us.rem_euclid(DAY_US)
}

/// What D1 counted when a grant was refused: per sliding window, the requests in it and the time
/// of the one whose leaving frees a place (the `limit`-th newest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Spent {
    pub minute_count: u32,
    pub minute_frees_at_us: Option<i64>,
    pub second_count: u32,
    pub second_frees_at_us: Option<i64>,
    pub day_start_us: i64,
    pub day_count: u32,
    pub paused_until_us: Option<i64>,
}

/// How long, in milliseconds, until a request could be granted (at least 1: it was refused).
pub fn wait_ms(budget: &Budget, spent: &Spent, now_us: i64) -> i64 {
    let mut until = now_us;
    if let Some(paused) = spent.paused_until_us {
        until = until.max(paused);
    }
    let window = |limit: Option<u32>, count: u32, frees_at: Option<i64>, length: i64| match (limit, frees_at)
    {
        (Some(limit), Some(at)) if count >= limit => at + length,
        _ => now_us,
    };
    until = until.max(window(
        budget.per_minute,
        spent.minute_count,
        spent.minute_frees_at_us,
        MINUTE_US,
    ));
    until = until.max(window(
        budget.per_second,
        spent.second_count,
        spent.second_frees_at_us,
        SECOND_US,
    ));
    if let Some(limit) = budget.per_day
        && spent.day_start_us == day_start(now_us)
        && spent.day_count >= limit
    {
        until = until.max(spent.day_start_us + DAY_US);
    }
    ((until - now_us) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(input: Value) -> Result<Budget, u16> {
        let Value::Object(map) = input else {
            return Err(0);
        };
        Budget::merged(Budget::KUSTOMER, &map).map_err(|error| error.status())
    }

    #[test]
    fn limits_are_replaced_one_by_one_or_lifted_with_null() {
        assert_eq!(
            merged(json!({ "per_minute": 300, "per_day": null })),
            Ok(Budget {
                per_minute: Some(300),
                per_second: Some(10),
                per_day: None,
            })
        );
        let refused = [
            json!({ "per_minute": 0 }),
            json!({ "per_minute": -5 }),
            json!({ "per_minute": 1.5 }),
            json!({ "per_minute": "100" }),
            json!({ "per_minute": 1e12 }),
            json!({ "per_hour": 10 }),
        ];
        for input in refused {
            assert_eq!(merged(input.clone()), Err(422), "{input}");
        }
    }

    #[test]
    fn a_full_minute_waits_for_its_oldest_counted_request_to_leave() {
        let now = 100 * MINUTE_US;
        let spent = Spent {
            minute_count: 100,
            minute_frees_at_us: Some(now - 45 * SECOND_US),
            ..Spent::default()
        };
        assert_eq!(wait_ms(&Budget::KUSTOMER, &spent, now), 15_000);
    }

    #[test]
    fn the_longest_of_the_waits_wins() {
        let now = 100 * MINUTE_US + 5;
        let spent = Spent {
            second_count: 10,
            second_frees_at_us: Some(now - 400_000),
            paused_until_us: Some(now + 2 * SECOND_US),
            ..Spent::default()
        };
        assert_eq!(wait_ms(&Budget::KUSTOMER, &spent, now), 2_000, "the pause");
        let burst = Spent {
            paused_until_us: None,
            ..spent
        };
        assert_eq!(wait_ms(&Budget::KUSTOMER, &burst, now), 600, "the second's burst");
    }

    #[test]
    fn a_spent_day_waits_for_midnight_utc_and_yesterday_does_not_count() {
        let now = 3 * DAY_US + 10 * 3_600_000_000;
        let today = Spent {
            day_start_us: day_start(now),
            day_count: 10_000,
            ..Spent::default()
        };
        assert_eq!(wait_ms(&Budget::KUSTOMER, &today, now), 14 * 3_600_000);
        let yesterday = Spent {
            day_start_us: day_start(now) - DAY_US,
            ..today
        };
        assert_eq!(wait_ms(&Budget::KUSTOMER, &yesterday, now), 1);
    }
}
