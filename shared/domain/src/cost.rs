//! What each business costs to run (docs/limits.md, "What each business costs"): the units its
//! invocations used, by UTC day and by kind, priced at [`crate::pricing`]'s table.
//!
//! Each invocation counts what it uses (`edge::platform::meter`) and which businesses it served: the
//! business of each scoped statement it ran, and the one a gateway request was answered for.
//! D1's rows go to the business whose statement read or wrote them, exactly. What names no
//! business (the request itself, KV, queue, R2 and Durable Object operations, the rows of a lookup
//! across businesses) is shared equally among the businesses the invocation served ([`share`]);
//! an invocation that served none (a sweep with nothing to do) is the operator's own cost.
//!
//! Counted per business are the units an invocation can count ([`COUNTED`]). Not counted: CPU
//! time (a Worker cannot read its own; the cost run bounds it per operation), Workers AI's
//! neurons and Vectorize's dimensions (the bot's and the CRM links' cost per answer and per
//! search are in BENCHMARKS.md), storage, and the plan's fee and allowances, which are the
//! account's, not a business's ([`Bill`] for the operator).

use crate::ids::BusinessId;
use crate::platform::Usage;
use crate::pricing::{Meter, Money, PRICES_AS_OF, Units};
use crate::time::Timestamp;
use serde::Serialize;

/// What a business's usage counts, in the order `business_usage` keeps them.
pub const COUNTED: [Meter; 9] = [
    Meter::WorkerRequests,
    Meter::D1RowsRead,
    Meter::D1RowsWritten,
    Meter::KvReads,
    Meter::KvWrites,
    Meter::QueueOperations,
    Meter::R2ClassA,
    Meter::R2ClassB,
    Meter::DurableObjectRequests,
];

/// How many days of usage are kept: a year and a month.
pub const KEPT_DAYS: i64 = 400;

const DAY_MS: i64 = 86_400_000;

/// The share of `count` units of the `at`th of `parts` businesses: equal shares, the first ones
/// taking one more each until the remainder is gone, so that the shares add up to `count`.
pub fn share(count: u64, parts: u64, at: u64) -> u64 {
    if parts == 0 {
        return 0;
    }
    count / parts + u64::from(at < count % parts)
}

/// A business an invocation served, with the D1 rows its own statements read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub business: BusinessId,
    pub rows_read: u64,
    pub rows_written: u64,
}

/// What each business an invocation started by `entry` and that `served` them used of its
/// `usage`: its own statements' rows, and an equal [`share`] of what names no business (what
/// Cloudflare bills of the invocation itself, [`invocation`]; the other rows; KV, queue, R2 and
/// Durable Object operations). An invocation that served no business is nobody's.
pub fn attribute(usage: &Usage, entry: &str, served: &[Served]) -> Vec<(BusinessId, Units)> {
    let b = usage.billed;
    let (requests, object_requests) = invocation(entry);
    let (own_read, own_written) = served
        .iter()
        .fold((0, 0), |(r, w), s| (r + s.rows_read, w + s.rows_written));
    let unnamed = [
        (Meter::WorkerRequests, requests),
        (Meter::D1RowsRead, usage.d1_rows_read.saturating_sub(own_read)),
        (
            Meter::D1RowsWritten,
            usage.d1_rows_written.saturating_sub(own_written),
        ),
        (Meter::KvReads, u64::from(b.kv_reads)),
        (Meter::KvWrites, u64::from(b.kv_writes)),
        (Meter::QueueOperations, u64::from(b.queue_operations)),
        (Meter::R2ClassA, u64::from(b.r2_class_a)),
        (Meter::R2ClassB, u64::from(b.r2_class_b)),
        (
            Meter::DurableObjectRequests,
            u64::from(b.do_requests) + object_requests,
        ),
    ];
    let parts = served.len() as u64;
    served
        .iter()
        .zip(0..)
        .map(|(s, at)| {
            let own = Units::default()
                .with(Meter::D1RowsRead, s.rows_read)
                .with(Meter::D1RowsWritten, s.rows_written);
            let units = unnamed.iter().fold(own, |units, (meter, count)| {
                units.with(*meter, share(*count, parts, at))
            });
            (s.business.clone(), units)
        })
        .collect()
}

/// What Cloudflare bills of an invocation started by `entry` itself, as a business's usage counts
/// it: Workers requests and Durable Object requests.
/// - A queue consumer's or cron's invocation is a request.
/// - A function's fetch is the gateway's request in front of it: the gateway hands every request
///   from outside to one function over a service binding (which is not billed again), and keeps
///   no tally of its own (it stores nothing), so the function counts it. A request the gateway
///   answers itself (a 429 from its lease, `/health`) is in no business's usage.
/// - A rate limiter object's invocation is the Durable Object request the gateway made of it.
pub fn invocation(entry: &str) -> (u64, u64) {
    match entry {
        "queue" | "cron" | "fetch" => (1, 0),
        "object" => (0, 1),
        _ => (0, 0),
    }
}

/// The UTC day `at` falls on: `2026-11-29`.
pub fn day_of(at: Timestamp) -> String {
    let mut day = at.to_rfc3339();
    day.truncate(10);
    day
}

/// A calendar month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    year: i64,
    /// 1 to 12.
    month: i64,
}

impl Month {
    /// The month `at` falls in.
    pub fn of(at: Timestamp) -> Month {
        let day = day_of(at);
        let number = |range: std::ops::Range<usize>| day.get(range).and_then(|n| n.parse().ok());
        Month {
            year: number(0..4).unwrap_or(1970),
            month: number(5..7).unwrap_or(1),
        }
    }

    /// `2026-11`.
    pub fn name(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// Its first day, as `business_usage` names days: `2026-11-01`.
    pub fn first_day(self) -> String {
        format!("{}-01", self.name())
    }

    /// When it starts.
    pub fn start(self) -> Timestamp {
        Timestamp::parse_rfc3339(&format!("{}T00:00:00Z", self.first_day()))
            .unwrap_or(Timestamp::from_millis(0))
    }

    /// The month after it.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                month: self.month + 1,
                ..self
            }
        }
    }

    /// How many days it has.
    pub fn days(self) -> u64 {
        u64::try_from((self.next().start().millis() - self.start().millis()) / DAY_MS).unwrap_or(30)
    }

    /// What `so_far` (used from its start until `now`) comes to over the whole month at the same
    /// pace; `so_far` itself when less than an hour of the month has gone.
    pub fn projected(self, so_far: Money, now: Timestamp) -> Money {
        let gone = now.millis() - self.start().millis();
        let whole = self.next().start().millis() - self.start().millis();
        if gone < 3_600_000 || gone >= whole {
            return so_far;
        }
        let scaled = u128::from(so_far.picos()) * whole as u128 / gone as u128;
        Money::from_picos(u64::try_from(scaled).unwrap_or(u64::MAX))
    }
}

/// An amount, exact and as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Cost {
    /// In picodollars (10⁻¹² US dollars): exact.
    pub picodollars: u64,
    /// In US dollars, to three significant digits: `$0.0441`.
    pub usd: String,
}

impl From<Money> for Cost {
    fn from(money: Money) -> Self {
        Cost {
            picodollars: money.picos(),
            usd: money.to_string(),
        }
    }
}

/// One kind of unit: how many were used and what they cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UnitsUsed {
    /// `worker_requests`, `d1_rows_read`, `d1_rows_written`, `kv_reads`, `kv_writes`,
    /// `queue_operations`, `r2_class_a`, `r2_class_b`, `do_requests`.
    pub meter: String,
    pub count: u64,
    pub cost: Cost,
}

/// Each kind of unit used (none at zero), and what they come to at the margin.
fn used(units: &Units) -> (Vec<UnitsUsed>, Money) {
    let lines = units
        .lines()
        .map(|(meter, count, cost)| UnitsUsed {
            meter: meter.name().to_owned(),
            count,
            cost: cost.into(),
        })
        .collect();
    (lines, units.marginal())
}

/// One day of a business's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DayCost {
    /// `2026-11-29` (UTC).
    pub day: String,
    pub cost: Cost,
    pub units: Vec<UnitsUsed>,
}

/// A business's cost this month: what its invocations used, priced at the margin (each unit at
/// its price, as if the plan's allowances were spent by others: what this business adds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CostOut {
    pub business_id: BusinessId,
    /// `2026-11` (UTC).
    pub month: String,
    /// The day the prices were read from Cloudflare's pages.
    pub prices_as_of: String,
    pub month_to_date: Cost,
    /// The month to date at the same pace over the whole month.
    pub projected: Cost,
    /// This month's units, by kind.
    pub units: Vec<UnitsUsed>,
    /// Each day of the month so far that has usage, oldest first.
    pub days: Vec<DayCost>,
}

impl CostOut {
    /// The business's month to `now` from its `days` of this month (day and units, any order).
    pub fn new(business_id: BusinessId, mut days: Vec<(String, Units)>, now: Timestamp) -> Self {
        days.sort_by(|a, b| a.0.cmp(&b.0));
        let month = Month::of(now);
        let mut total = Units::default();
        let days = days
            .into_iter()
            .map(|(day, units)| {
                for (meter, count, _) in units.lines() {
                    total.add(meter, count);
                }
                let (units, cost) = used(&units);
                DayCost {
                    day,
                    cost: cost.into(),
                    units,
                }
            })
            .collect();
        let (units, month_to_date) = used(&total);
        CostOut {
            business_id,
            month: month.name(),
            prices_as_of: PRICES_AS_OF.to_owned(),
            month_to_date: month_to_date.into(),
            projected: month.projected(month_to_date, now).into(),
            units,
            days,
        }
    }
}

/// One business's line of the operator's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BusinessCost {
    pub business_id: BusinessId,
    pub month_to_date: Cost,
    pub projected: Cost,
}

/// The operator's month: every business's units together, the account's bill for them (the
/// plan's fee, and each kind of unit past its allowance), and the businesses that cost most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Bill {
    /// `2026-11` (UTC).
    pub month: String,
    pub prices_as_of: String,
    /// Every business's units at the margin, added up.
    pub month_to_date: Cost,
    pub projected: Cost,
    /// The account's bill for the month at this pace: the Workers Paid fee ($5) and what the
    /// projected units come to past the plan's allowances. Counts only what businesses' usage
    /// counts (no CPU time, Workers AI, Vectorize or storage), so the real bill is higher.
    pub projected_bill: Cost,
    pub units: Vec<UnitsUsed>,
    /// Businesses with usage this month.
    pub businesses_counted: usize,
    /// The businesses that cost most this month, at most 100, the most first.
    pub businesses: Vec<BusinessCost>,
}

/// The most businesses the operator's total names.
pub const BILL_NAMES: usize = 100;

impl Bill {
    /// The operator's month to `now` from each business's units of it.
    pub fn new(businesses: Vec<(BusinessId, Units)>, now: Timestamp) -> Self {
        let month = Month::of(now);
        let mut total = Units::default();
        let mut costs: Vec<BusinessCost> = businesses
            .iter()
            .map(|(business_id, units)| {
                for (meter, count, _) in units.lines() {
                    total.add(meter, count);
                }
                let cost = units.marginal();
                BusinessCost {
                    business_id: business_id.clone(),
                    month_to_date: cost.into(),
                    projected: month.projected(cost, now).into(),
                }
            })
            .collect();
        costs.sort_by(|a, b| {
            (b.month_to_date.picodollars, a.business_id.as_str())
                .cmp(&(a.month_to_date.picodollars, b.business_id.as_str()))
        });
        costs.truncate(BILL_NAMES);
        let mut projected_units = Units::default();
        for (meter, count, _) in total.lines() {
            let scaled = month.projected(Money::from_picos(count), now).picos();
            projected_units.add(meter, scaled);
        }
        let (units, month_to_date) = used(&total);
        Bill {
            month: month.name(),
            prices_as_of: PRICES_AS_OF.to_owned(),
            month_to_date: month_to_date.into(),
            projected: month.projected(month_to_date, now).into(),
            projected_bill: projected_units.monthly_bill(month.days()).into(),
            units,
            businesses_counted: businesses.len(),
            businesses: costs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).unwrap_or_else(|| panic!("{rfc3339}"))
    }

    #[test]
    fn shares_are_equal_and_add_up_to_the_count() {
        let shares: Vec<u64> = (0..3).map(|at| share(10, 3, at)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(share(2, 3, 2), 0);
        assert_eq!(share(7, 0, 0), 0, "no business: nobody's share");
    }

    #[test]
    fn an_invocation_is_shared_by_what_names_each_business_and_equally_by_the_rest() {
        let (a, b) = (BusinessId::generate([1; 16]), BusinessId::generate([2; 16]));
        let mut usage = Usage {
            d1_rows_read: 100,
            d1_rows_written: 11,
            ..Usage::default()
        };
        usage.billed.queue_operations = 3;
        usage.billed.kv_reads = 1;
        let served = [
            Served {
                business: a.clone(),
                rows_read: 60,
                rows_written: 10,
            },
            Served {
                business: b.clone(),
                rows_read: 30,
                rows_written: 0,
            },
        ];
        let bill = attribute(&usage, "queue", &served);
        let of = |at: usize, meter: Meter| bill[at].1.get(meter);
        assert_eq!(
            (of(0, Meter::D1RowsRead), of(1, Meter::D1RowsRead)),
            (65, 35),
            "10 unnamed rows halved"
        );
        assert_eq!(
            (of(0, Meter::D1RowsWritten), of(1, Meter::D1RowsWritten)),
            (11, 0)
        );
        assert_eq!(
            (of(0, Meter::QueueOperations), of(1, Meter::QueueOperations)),
            (2, 1)
        );
        assert_eq!(
            (of(0, Meter::WorkerRequests), of(1, Meter::WorkerRequests)),
            (1, 0)
        );
        assert_eq!((of(0, Meter::KvReads), of(1, Meter::KvReads)), (1, 0));
        assert!(
            attribute(&usage, "queue", &[]).is_empty(),
            "served none: the operator's own"
        );
    }

    #[test]
    fn an_invocation_is_billed_as_the_request_it_is_or_stands_for() {
        assert_eq!((invocation("queue"), invocation("cron")), ((1, 0), (1, 0)));
        assert_eq!(
            invocation("fetch"),
            (1, 0),
            "the gateway's request in front of it"
        );
        assert_eq!(
            invocation("object"),
            (0, 1),
            "the Durable Object request made of it"
        );
        assert_eq!(invocation("test"), (0, 0));
    }

    #[test]
    fn a_month_knows_its_days_and_its_first_day() {
        let november = Month::of(at("2026-11-29T02:00:00Z"));
        assert_eq!(
            (november.name(), november.first_day(), november.days()),
            ("2026-11".into(), "2026-11-01".into(), 30)
        );
        assert_eq!(Month::of(at("2028-02-10T00:00:00Z")).days(), 29, "a leap year");
        assert_eq!(Month::of(at("2026-12-31T23:59:59Z")).next().name(), "2027-01");
        assert_eq!(day_of(at("2026-11-29T23:59:59.999Z")), "2026-11-29");
    }

    #[test]
    fn the_projection_is_the_pace_so_far_over_the_whole_month() {
        let november = Month::of(at("2026-11-01T00:00:00Z"));
        let ten_days_in = at("2026-11-11T00:00:00Z");
        assert_eq!(
            november.projected(Money::from_micros(1_000), ten_days_in),
            Money::from_micros(3_000)
        );
        let minutes_in = at("2026-11-01T00:10:00Z");
        assert_eq!(
            november.projected(Money::from_micros(5), minutes_in),
            Money::from_micros(5),
            "too soon to tell"
        );
    }

    #[test]
    fn a_businesss_month_adds_its_days_and_prices_each_kind() {
        let day = |writes: u64| {
            Units::default()
                .with(Meter::D1RowsWritten, writes)
                .with(Meter::WorkerRequests, 10)
        };
        let out = CostOut::new(
            BusinessId::generate([7; 16]),
            vec![
                ("2026-11-02".into(), day(1_000)),
                ("2026-11-01".into(), day(3_000)),
            ],
            at("2026-11-16T00:00:00Z"),
        );
        assert_eq!(
            out.days.iter().map(|d| d.day.as_str()).collect::<Vec<_>>(),
            ["2026-11-01", "2026-11-02"]
        );
        // 4,000 rows written at $1 a million and 20 requests at $0.30 a million.
        assert_eq!(out.month_to_date.picodollars, 4_000 * 1_000_000 + 20 * 300_000);
        assert_eq!(out.month_to_date.usd, "$0.004", "three significant digits, cut");
        assert_eq!(out.projected.picodollars, out.month_to_date.picodollars * 2);
        let written = out
            .units
            .iter()
            .find(|u| u.meter == "d1_rows_written")
            .map(|u| u.count);
        assert_eq!(written, Some(4_000));
    }

    #[test]
    fn the_operators_bill_names_the_costliest_businesses_and_adds_the_plan() {
        let now = at("2026-11-30T12:00:00Z");
        let businesses = (0..150u8)
            .map(|n| {
                (
                    BusinessId::generate([n; 16]),
                    Units::default().with(Meter::D1RowsWritten, u64::from(n) * 1_000),
                )
            })
            .collect();
        let bill = Bill::new(businesses, now);
        assert_eq!(
            (bill.businesses_counted, bill.businesses.len()),
            (150, BILL_NAMES)
        );
        assert_eq!(
            bill.businesses[0].month_to_date.picodollars,
            149 * 1_000 * 1_000_000
        );
        // 11,175,000 rows written in the month so far: within the 50 million included, so the
        // bill is the plan's fee.
        assert_eq!(bill.projected_bill.usd, "$5.00");
    }
}
