//! What an API key's requests were (docs/limits.md, "Usage per key"). The gateway counts each
//! request of a key in its isolate (a [`Tally`] per key), and now and then hands the counts to the
//! key's limiter object as a [`Report`], a line of words like the limiter's other asks
//! (`rate_limit::Ask::Usage`); the object adds them to the key's rows of `api_key_usage`, one
//! per hour and endpoint, and sets when, from where and at what the key was last used. So a
//! request waits on nothing for its count, and D1 is written once per report (its rows, one per
//! hour and endpoint the report holds), not once per request.

use crate::error::ApiError;
use crate::ids::ApiKeyId;
use crate::query::Query;
use std::net::IpAddr;

/// An hour, in milliseconds: the rows' period.
pub const HOUR_MS: i64 = 3_600_000;
/// A day, in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Hours and endpoints one tally holds at most; requests to any other are counted as
/// [`OVERFLOW`]'s, so a report stays one line of bounded length and one bounded write.
pub const MAX_ENTRIES: usize = 64;
/// The endpoint a tally counts requests under once it holds [`MAX_ENTRIES`].
pub const OVERFLOW: &str = "ANY /*";
/// How long usage rows are kept: the API reads 30 days back at most.
pub const KEPT_DAYS: i64 = 35;

/// Requests by what they were answered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub status_2xx: u32,
    pub status_3xx: u32,
    pub status_4xx: u32,
    pub status_5xx: u32,
    /// Refused by the key's rate limit (429 at the gateway): counted in `status_4xx` too.
    pub rate_limited: u32,
}

impl Counts {
    /// One request answered `status` (`rate_limited`: refused by the key's limit).
    pub fn count(&mut self, status: u16, rate_limited: bool) {
        let class = match status {
            0..=299 => &mut self.status_2xx,
            300..=399 => &mut self.status_3xx,
            400..=499 => &mut self.status_4xx,
            _ => &mut self.status_5xx,
        };
        *class = class.saturating_add(1);
        if rate_limited {
            self.rate_limited = self.rate_limited.saturating_add(1);
        }
    }

    /// Every request counted.
    pub fn requests(&self) -> u64 {
        [self.status_2xx, self.status_3xx, self.status_4xx, self.status_5xx]
            .iter()
            .map(|count| u64::from(*count))
            .sum()
    }

    fn words(&self) -> [u32; 5] {
        [
            self.status_2xx,
            self.status_3xx,
            self.status_4xx,
            self.status_5xx,
            self.rate_limited,
        ]
    }
}

/// An endpoint as usage names it: the request's method and the route that served it, a route
/// with an id in it by the prefix it is under (`DELETE /api-keys/*`). Methods other than the
/// API's are `OTHER`, so that a client cannot make up endpoints.
pub fn endpoint(method: &str, route: &str, below: bool) -> String {
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let method = METHODS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER");
    if below {
        format!("{method} {route}*")
    } else {
        format!("{method} {route}")
    }
}

/// Whether `endpoint` is one [`endpoint`] makes: a method word, then a route (a path with no
/// white space), at most 120 characters.
fn is_endpoint(endpoint: &str) -> bool {
    let Some((method, route)) = endpoint.split_once(' ') else {
        return false;
    };
    endpoint.len() <= 120
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && route.starts_with('/')
        && route.bytes().all(|b| b.is_ascii_graphic())
}

/// The key's latest request: when (ms), from which address, to which endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    pub at_ms: i64,
    pub address: Option<String>,
    pub endpoint: String,
}

/// One key's requests counted in an isolate since its last report: a list of at most
/// [`MAX_ENTRIES`] and the overflow (a map would weigh more in the gateway's bundle than its
/// lookups save over a short list).
#[derive(Debug, Default)]
pub struct Tally {
    counts: Vec<Entry>,
    last: Option<LastUse>,
}

impl Tally {
    /// Counts one request, made at `at_ms` from `address` to `endpoint` and answered `status`.
    pub fn count(
        &mut self,
        at_ms: i64,
        address: Option<&str>,
        endpoint: &str,
        status: u16,
        rate_limited: bool,
    ) {
        let hour_ms = at_ms - at_ms.rem_euclid(HOUR_MS);
        let find = |counts: &[Entry], endpoint: &str| {
            counts
                .iter()
                .position(|entry| entry.hour_ms == hour_ms && entry.endpoint == endpoint)
        };
        let at = find(&self.counts, endpoint).or_else(|| {
            let endpoint = if self.counts.len() < MAX_ENTRIES {
                endpoint
            } else {
                OVERFLOW
            };
            find(&self.counts, endpoint).or_else(|| {
                self.counts.push(Entry {
                    hour_ms,
                    endpoint: endpoint.to_owned(),
                    counts: Counts::default(),
                });
                Some(self.counts.len() - 1)
            })
        });
        if let Some(entry) = at.and_then(|at| self.counts.get_mut(at)) {
            entry.counts.count(status, rate_limited);
        }
        if self.last.as_ref().is_none_or(|last| last.at_ms <= at_ms) {
            self.last = Some(LastUse {
                at_ms,
                address: address
                    .filter(|address| address.parse::<IpAddr>().is_ok())
                    .map(str::to_owned),
                endpoint: endpoint.to_owned(),
            });
        }
    }

    /// Whether nothing was counted since the last report.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// The report of what was counted, which empties the tally; `None` when nothing was.
    pub fn take(&mut self) -> Option<Report> {
        let last = self.last.take()?;
        let counts = std::mem::take(&mut self.counts);
        Some(Report { last, counts })
    }
}

/// One hour's requests to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hour_ms: i64,
    pub endpoint: String,
    pub counts: Counts,
}

/// A key's requests since its last report, by hour and endpoint, and its latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub last: LastUse,
    pub counts: Vec<Entry>,
}

impl Report {
    /// `<last at> <last address or -> <last endpoint>`, then for each entry `<hour> <endpoint>
    /// <2xx> <3xx> <4xx> <5xx> <rate limited>` (an endpoint is two words).
    pub fn to_words(&self) -> String {
        let mut line = format!(
            "{} {} {}",
            self.last.at_ms,
            self.last.address.as_deref().unwrap_or("-"),
            self.last.endpoint
        );
        for entry in &self.counts {
            line.push_str(&format!(" {} {}", entry.hour_ms, entry.endpoint));
            for count in entry.counts.words() {
                line.push_str(&format!(" {count}"));
            }
        }
        line
    }

    /// The report `words` say, or `None` for words that are not one (an entry out of shape, more
    /// than [`MAX_ENTRIES`] and the overflow's, an hour that is not one).
    pub fn parse_words(words: &[&str]) -> Option<Self> {
        let [at, address, method, route, rest @ ..] = words else {
            return None;
        };
        let last_endpoint = format!("{method} {route}");
        let address = match *address {
            "-" => None,
            given => Some(given.parse::<IpAddr>().ok()?.to_string()),
        };
        if !is_endpoint(&last_endpoint) || rest.len() % 8 != 0 || rest.len() / 8 > MAX_ENTRIES + 1 {
            return None;
        }
        let number = |word: &str| word.parse::<u32>().ok();
        let counts = rest
            .chunks(8)
            .map(|entry| {
                let hour_ms = entry[0]
                    .parse::<i64>()
                    .ok()
                    .filter(|hour| hour.rem_euclid(HOUR_MS) == 0)?;
                let endpoint = format!("{} {}", entry[1], entry[2]);
                is_endpoint(&endpoint).then_some(())?;
                Some(Entry {
                    hour_ms,
                    endpoint,
                    counts: Counts {
                        status_2xx: number(entry[3])?,
                        status_3xx: number(entry[4])?,
                        status_4xx: number(entry[5])?,
                        status_5xx: number(entry[6])?,
                        rate_limited: number(entry[7])?,
                    },
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Report {
            last: LastUse {
                at_ms: at.parse().ok()?,
                address,
                endpoint: last_endpoint,
            },
            counts,
        })
    }
}

/// How usage is read: by the hour over the last two days, or by the day over the last 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    /// `hour` or `day`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    pub fn millis(self) -> i64 {
        match self {
            Period::Hour => HOUR_MS,
            Period::Day => DAY_MS,
        }
    }

    /// How many periods are read, the current one included.
    pub fn count(self) -> i64 {
        match self {
            Period::Hour => 48,
            Period::Day => 30,
        }
    }

    /// The start of the period `at_ms` is in (UTC days).
    pub fn start_of(self, at_ms: i64) -> i64 {
        at_ms - at_ms.rem_euclid(self.millis())
    }

    /// The starts of the periods read at `now_ms`, oldest first.
    pub fn starts(self, now_ms: i64) -> Vec<i64> {
        let current = self.start_of(now_ms);
        (0..self.count())
            .rev()
            .map(|back| current - back * self.millis())
            .collect()
    }
}

/// What `GET /api-usage` reads: by hour or day (`by`, default day), of one key (`key_id`) or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub by: Period,
    pub key_id: Option<ApiKeyId>,
}

impl UsageQuery {
    pub fn parse(query: &Query) -> Result<Self, ApiError> {
        let by = match query.get("by") {
            None => Period::Day,
            Some(by) => Period::parse(by).ok_or_else(|| ApiError::invalid("by", "by is hour or day"))?,
        };
        let key_id = match query.get("key_id") {
            None => None,
            Some(id) => Some(ApiKeyId::parse(id).ok_or_else(|| {
                ApiError::not_found(format!("no API key {}", id.chars().take(64).collect::<String>()))
            })?),
        };
        Ok(Self { by, key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: i64 = 1_795_694_400_000;

    #[test]
    fn statuses_are_counted_by_class_and_a_refusal_by_the_limit_also_as_rate_limited() {
        let mut counts = Counts::default();
        for status in [200, 201, 204, 302, 400, 404, 422, 500, 503] {
            counts.count(status, false);
        }
        counts.count(429, true);
        assert_eq!(
            counts,
            Counts {
                status_2xx: 3,
                status_3xx: 1,
                status_4xx: 4,
                status_5xx: 2,
                rate_limited: 1,
            }
        );
        assert_eq!(counts.requests(), 10);
    }

    #[test]
    fn an_endpoint_is_its_method_and_route_and_a_method_the_api_has_not_is_other() {
        assert_eq!(
            endpoint("post", "/api-customers-sync", false),
            "POST /api-customers-sync"
        );
        assert_eq!(endpoint("DELETE", "/api-keys/", true), "DELETE /api-keys/*");
        assert_eq!(endpoint("BREW", "/api-customers", false), "OTHER /api-customers");
    }

    #[test]
    fn a_tally_counts_by_hour_and_endpoint_and_keeps_the_latest_request() {
        let mut tally = Tally::default();
        let sync = "POST /api-customers-sync";
        let lookup = "GET /api-customers";
        tally.count(NOON + 10, Some("203.0.113.7"), sync, 200, false);
        tally.count(NOON + 20, Some("203.0.113.7"), sync, 422, false);
        tally.count(NOON + HOUR_MS + 5, Some("2001:db8::1"), lookup, 200, false);
        tally.count(NOON + 30, Some("198.51.100.1"), lookup, 429, true);
        let report = tally.take().unwrap_or_else(|| panic!("counted"));
        assert_eq!(
            report.last,
            LastUse {
                at_ms: NOON + HOUR_MS + 5,
                address: Some("2001:db8::1".to_owned()),
                endpoint: lookup.to_owned(),
            }
        );
        let entries: Vec<(i64, &str, u64)> = report
            .counts
            .iter()
            .map(|entry| (entry.hour_ms, entry.endpoint.as_str(), entry.counts.requests()))
            .collect();
        assert_eq!(
            entries,
            vec![(NOON, sync, 2), (NOON + HOUR_MS, lookup, 1), (NOON, lookup, 1)],
            "in the order first counted"
        );
        assert!(tally.take().is_none(), "a report empties the tally");
    }

    #[test]
    fn past_its_bound_a_tally_counts_new_endpoints_as_the_overflow() {
        let mut tally = Tally::default();
        for n in 0..MAX_ENTRIES + 10 {
            tally.count(NOON, None, &format!("GET /route-{n}"), 200, false);
        }
        tally.count(NOON, None, "GET /route-0", 200, false);
        let report = tally.take().unwrap_or_else(|| panic!("counted"));
        assert_eq!(report.counts.len(), MAX_ENTRIES + 1);
        let overflow = report
            .counts
            .iter()
            .find(|entry| entry.endpoint == OVERFLOW)
            .unwrap_or_else(|| panic!("overflow"));
        assert_eq!(overflow.counts.requests(), 10);
        let first = report
            .counts
            .iter()
            .find(|entry| entry.endpoint == "GET /route-0")
            .unwrap_or_else(|| panic!("first"));
        assert_eq!(first.counts.requests(), 2);
        let line = report.to_words();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(Report::parse_words(&words), Some(report));
    }

    #[test]
    fn a_report_reads_back_as_it_was_written() {
        let mut tally = Tally::default();
        tally.count(NOON, Some("203.0.113.7"), "GET /api-customers", 200, false);
        tally.count(NOON + 1, None, "DELETE /api-keys/*", 500, false);
        let report = tally.take().unwrap_or_else(|| panic!("counted"));
        let line = report.to_words();
        assert!(
            line.starts_with(&format!("{} - DELETE /api-keys/*", NOON + 1)),
            "{line}"
        );
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(Report::parse_words(&words), Some(report));
    }

    #[test]
    fn words_that_are_no_report_are_refused() {
        let refused = [
            "",
            "1 - GET",
            "x - GET /a",
            "1 not-an-address GET /a",
            "1 - get /a",
            "1 - GET a",
            "1 - GET /a 0 GET /a 1 0 0 0",
            "1 - GET /a 5 GET /a 1 0 0 0 0",
            "1 - GET /a 0 GET /a 1 0 0 0 -1",
        ];
        for line in refused {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(Report::parse_words(&words), None, "{line:?}");
        }
        let too_many = (0..=MAX_ENTRIES + 1)
            .map(|n| format!("0 GET /r{n} 1 0 0 0 0"))
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("1 - GET /a {too_many}");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(Report::parse_words(&words), None);
    }

    #[test]
    fn the_periods_read_end_with_the_current_one() {
        let starts = Period::Hour.starts(NOON + 90 * 60_000);
        assert_eq!(starts.len(), 48);
        assert_eq!(starts.last(), Some(&(NOON + HOUR_MS)));
        assert_eq!(starts[0], NOON + HOUR_MS - 47 * HOUR_MS);
        let days = Period::Day.starts(NOON);
        assert_eq!(days.len(), 30);
        assert_eq!(days.last(), Some(&(NOON - 12 * HOUR_MS)));
        assert_eq!(Period::parse("week"), None);
    }

    #[test]
    fn a_usage_query_is_by_day_unless_it_says_hour_and_refuses_anything_else() {
        let parse = |text: &str| UsageQuery::parse(&Query::parse(Some(text)));
        assert_eq!(parse("").map(|q| q.by), Ok(Period::Day));
        assert_eq!(parse("by=hour").map(|q| q.by), Ok(Period::Hour));
        assert_eq!(parse("by=week").map_err(|e| e.status()), Err(422));
        assert_eq!(parse("key_id=nope").map_err(|e| e.status()), Err(404));
    }
}
