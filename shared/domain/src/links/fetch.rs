//! How a link is fetched and what each answer does to it: the next page to read, and the state,
//! message and next fetch time that a failure leaves behind. The clock is passed in.
//!
//! The guide's error handling, made exact:
//! - **429**: the CRM's `Retry-After` is honoured (one second to an hour; a minute when it says
//!   nothing), doubling while 429s repeat; the data already indexed stays searchable.
//! - **5xx, timeouts, no answer**: the data stays as it was and the link stays active; it is
//!   tried again after a backoff (1, 2, 4 … minutes), never later than its own interval.
//! - **401, 403, 404 and other refusals**, and answers we cannot index (too large, unreadable):
//!   the link is marked failing with the reason, for the dashboard to show; its data stays, and
//!   it is tried again at its interval in case the CRM was fixed.

use crate::time::Timestamp;

/// One page's body at most: past this a link is refused, not cut short. A CRM's data of any
/// size is read page by page, each page held alone.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
pub const TIMEOUT_MS: u64 = 10_000;

/// A fetch of many pages runs in slices, one invocation each, so that none nears Cloudflare's
/// per-invocation limits whatever the data's size: a slice stops after this many pages (steps), or this
/// many seconds, or this much of the invocation's D1 queries and subrequests
/// (`domain::platform`), and hands the rest to the next slice. Everything a slice indexed is
/// committed before the next starts: a crash or a deploy loses at most the slice in flight, and
/// what that slice embedded is found in the vector store again, not embedded twice.
pub const SLICE_PAGES: usize = 20;
/// Pieces one step of a slice indexes at most; a slice is up to [`SLICE_PAGES`] steps, each a
/// page or the next part of one. A page may flatten to 50,000 one-line records, each its own
/// piece: indexed whole, its vectors alone would be 77 MB and its hashes, bound as one list,
/// over D1's 2,000,000-byte value. A step holds 1,000 pieces' vectors (1.5 MB), and the run's
/// state keeps where in the page the next step goes on.
pub const STEP_PIECES: usize = 1_000;
pub const SLICE_SECONDS: i64 = 20;
pub const SLICE_D1_QUERIES: u32 = crate::platform::D1_QUERIES / 2;
pub const SLICE_SUBREQUESTS: u32 = crate::platform::SUBREQUESTS / 2;
/// Pieces one link may hold: about 100,000 records of a few pieces each. Past it the link fails
/// with the reason, keeping what it indexed.
pub const MAX_PIECES_PER_LINK: u64 = 400_000;
/// A run not finished after this long (its next pages' cursors may have expired) starts over.
pub const STALE_RUN_SECONDS: i64 = 24 * 3600;
/// Pages one run reads at most: a CRM's data at the piece cap in pages of 40 records or more.
/// Past it, or when a next page repeats one the run read, the run ends and the link fails: a
/// CRM that names pages without end (each empty, or one naming itself) would otherwise keep
/// a run going for good, page after page.
pub const MAX_PAGES_PER_RUN: usize = 10_000;
/// A link whose run ended that way is tried again after this at the soonest (its interval if
/// longer), or when it is refreshed: each try reads up to [`MAX_PAGES_PER_RUN`] pages.
pub const ENDLESS_RETRY_SECONDS: i64 = 24 * 3600;

/// Where a run may go after the page at `current`, which made `read` pages read (itself
/// included), given the URL it kept (`mark`): the mark to keep with the next page, or why the
/// run stops there. A next page that repeats the page naming it, or the page kept, is a loop.
/// The page kept is the one read at each power of two (Brent's cycle detection: a loop of any
/// length is found within a few of its rounds, with one URL kept, whatever the run's length).
pub fn follow(read: usize, current: &str, next: &str, mark: Option<&str>) -> Result<Option<String>, Failure> {
    if next == current || mark == Some(next) {
        return Err(Failure::Endless(format!(
            "the CRM's pages loop: page {read} names {} as its next page, which this fetch read already; \
             fix the CRM's pagination (its next links); the data indexed before is kept",
            crate::links::link::redact_url(next)
        )));
    }
    if read >= MAX_PAGES_PER_RUN {
        return Err(Failure::Endless(format!(
            "the CRM's data runs past {MAX_PAGES_PER_RUN} pages: ask for larger pages (a limit parameter) or \
             split it into several links; the data indexed before is kept"
        )));
    }
    Ok(if read.is_power_of_two() {
        Some(current.to_owned())
    } else {
        mark.map(str::to_owned)
    })
}

/// Whether a next page may be sent the link's credentials: only on the link's own origin
/// (scheme, host and port). A next page elsewhere, named by a `Link` header or a body the CRM or
/// a third party controls, is fetched without them.
pub fn same_origin(link: &str, next: &str) -> bool {
    match (url::Url::parse(link), url::Url::parse(next)) {
        (Ok(link), Ok(next)) => link.origin() == next.origin(),
        _ => false,
    }
}

/// Where a link stands, as the dashboard shows it (`status.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Active and waiting for its first fetch.
    Pending,
    Ok,
    Failing,
    /// A type that is never fetched (`database`).
    NotFetched,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ok => "ok",
            Self::Failing => "failing",
            Self::NotFetched => "not_fetched",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Ok, Self::Failing, Self::NotFetched]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// Why a fetch did not produce data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    RateLimited {
        retry_after_seconds: Option<u32>,
    },
    /// A 5xx or 408.
    Unavailable {
        status: u16,
    },
    TimedOut,
    Unreachable(String),
    /// Any other answer that is not a 2xx; `detail` is the start of the CRM's body.
    Refused {
        status: u16,
        detail: String,
    },
    TooLarge,
    /// The answer could not be indexed (malformed JSON, nesting too deep, a redirect).
    Unreadable(String),
    /// The data was read but could not be embedded: our side failed, not the CRM.
    Embedding(String),
    /// The CRM's pages do not end: past [`MAX_PAGES_PER_RUN`], or a loop.
    Endless(String),
}

/// What a failure leaves on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// None: the state stays as it was (the data is still good).
    pub state: Option<State>,
    pub http_status: Option<u16>,
    pub error: String,
    pub next_fetch_at: Timestamp,
}

impl Failure {
    /// Whether the CRM failed the fetch (did not answer, or answered an error status), as its
    /// link's health counts a failed call; an answer we could not use (too large, unreadable, a
    /// redirect) or our own failure is not the CRM's.
    pub fn is_the_crms(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Unavailable { .. }
                | Self::TimedOut
                | Self::Unreachable(_)
                | Self::Refused { .. }
        )
    }

    /// Classifies an HTTP status that is not a success.
    pub fn of_status(status: u16, retry_after_seconds: Option<u32>, body: &[u8]) -> Self {
        match status {
            429 => Self::RateLimited { retry_after_seconds },
            408 | 500..=599 => Self::Unavailable { status },
            300..=399 => Self::Unreadable(format!(
                "{status} {}: the CRM redirected; give the URL it redirects to",
                reason(status)
            )),
            _ => {
                let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
                let detail: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                Self::Refused {
                    status,
                    detail: detail.chars().take(200).collect(),
                }
            }
        }
    }

    /// `failures` counts this one: 1 for the first failure in a row.
    pub fn verdict(&self, now: Timestamp, interval_minutes: u32, failures: u32) -> Verdict {
        let interval = i64::from(interval_minutes) * 60;
        let doubling = |base: i64| base.saturating_mul(1 << failures.saturating_sub(1).min(16));
        let (state, http_status, error, wait) = match self {
            Self::RateLimited { retry_after_seconds } => {
                let asked = retry_after_seconds.map(|seconds| i64::from(seconds).clamp(1, 3600));
                let wait = asked.unwrap_or_else(|| doubling(60).min(3600));
                let error = match retry_after_seconds {
                    Some(seconds) => format!("429 Too Many Requests (the CRM asked to wait {seconds} s)"),
                    None => "429 Too Many Requests".to_owned(),
                };
                (None, Some(429), error, wait)
            }
            Self::Unavailable { status } => (
                None,
                Some(*status),
                format!("{status} {}: the previous data is kept", reason(*status)),
                doubling(60).min(interval),
            ),
            Self::TimedOut => (
                None,
                None,
                format!(
                    "the CRM did not answer within {} s: the previous data is kept",
                    TIMEOUT_MS / 1000
                ),
                doubling(60).min(interval),
            ),
            Self::Unreachable(cause) => (
                None,
                None,
                format!("the CRM could not be reached ({cause}): the previous data is kept"),
                doubling(60).min(interval),
            ),
            Self::Refused { status, detail } => {
                let advice = match status {
                    401 | 403 => ": check the API key and the authentication headers",
                    404 => ": check the URL",
                    _ => "",
                };
                let said = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" (the CRM said: {detail})")
                };
                (
                    Some(State::Failing),
                    Some(*status),
                    format!("{status} {}{advice}{said}", reason(*status)),
                    interval,
                )
            }
            Self::TooLarge => (
                Some(State::Failing),
                None,
                format!(
                    "a page of the CRM's data is over {} MiB: ask for smaller pages (a limit parameter); the data indexed before is kept",
                    MAX_PAGE_BYTES / (1024 * 1024)
                ),
                interval,
            ),
            Self::Unreadable(cause) => (Some(State::Failing), None, cause.clone(), interval),
            Self::Endless(cause) => (
                Some(State::Failing),
                None,
                cause.clone(),
                interval.max(ENDLESS_RETRY_SECONDS),
            ),
            Self::Embedding(cause) => (
                None,
                None,
                format!("the data could not be embedded ({cause}): the previous data is kept"),
                doubling(60).min(interval),
            ),
        };
        Verdict {
            state,
            http_status,
            error,
            next_fetch_at: now.plus_seconds(wait),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The next page of a paginated answer: a `Link: <…>; rel="next"` header (Shopify, GitHub and
/// RFC 8288 style), else HubSpot's body `paging.next.link`. Relative references are resolved
/// against the page's own URL. The caller checks the result like any link URL.
pub fn next_page(current: &str, link_header: Option<&str>, body: &str) -> Option<String> {
    let from_header = link_header.and_then(|header| {
        header.split(',').find_map(|entry| {
            let (target, params) = entry.split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let is_next = params.split(';').any(|param| {
                let Some((name, value)) = param.split_once('=') else {
                    return false;
                };
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            });
            is_next.then(|| target.to_owned())
        })
    });
    let target = from_header.or_else(|| {
        let trimmed = body.trim_start();
        if !trimmed.starts_with('{') {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        value
            .pointer("/paging/next/link")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    })?;
    let base = url::Url::parse(current).ok()?;
    base.join(&target).ok().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn now() -> Timestamp {
        Timestamp::from_millis(NOW * 1000)
    }

    #[test]
    fn a_fetch_is_the_crms_failure_when_it_did_not_answer_or_answered_an_error() {
        for status in [401, 404, 408, 429, 503] {
            assert!(Failure::of_status(status, None, b"").is_the_crms(), "{status}");
        }
        assert!(Failure::TimedOut.is_the_crms());
        assert!(Failure::Unreachable("refused".into()).is_the_crms());
        for ours in [
            Failure::of_status(301, None, b""),
            Failure::TooLarge,
            Failure::Unreadable("bad JSON".into()),
            Failure::Embedding("model".into()),
            Failure::Endless("loop".into()),
        ] {
            assert!(!ours.is_the_crms(), "{ours:?}");
        }
    }

    fn wait(verdict: &Verdict) -> i64 {
        verdict.next_fetch_at.seconds() - NOW
    }

    /// A CRM's pages: the URL of page n (from 0, the link's).
    type Pages<'a> = Box<dyn Fn(usize) -> String + 'a>;

    /// Follows `pages` (each page's next) from the first: the pages read, or why the run stopped.
    fn walk(pages: impl Fn(usize) -> String) -> (usize, Result<(), Failure>) {
        let mut mark = None;
        let mut read = 1;
        loop {
            let (current, next) = (pages(read - 1), pages(read));
            match follow(read, &current, &next, mark.as_deref()) {
                Ok(kept) => mark = kept,
                Err(failure) => return (read, Err(failure)),
            }
            read += 1;
            if read > 3 * MAX_PAGES_PER_RUN {
                return (read, Ok(()));
            }
        }
    }

    fn endless(outcome: &Result<(), Failure>) -> &str {
        match outcome {
            Err(Failure::Endless(why)) => why,
            other => panic!("not stopped as endless: {other:?}"),
        }
    }

    #[test]
    fn a_run_stops_at_a_page_that_names_one_it_read_or_past_the_page_bound() {
        let url = |page: usize| format!("https://crm.example.com/c?page={page}&api_token=s3cret");
        let cases: [(&str, Pages<'_>, usize); 5] = [
            ("a page that names itself", Box::new(|_| url(1)), 1),
            ("two pages naming each other", Box::new(|page| url(page % 2)), 2),
            (
                "a loop of 7 pages after 5",
                Box::new(|page| url(if page < 5 { page } else { 5 + (page - 5) % 7 })),
                14,
            ),
            ("a loop of 300 pages", Box::new(|page| url(page % 300)), 811),
            ("pages without end", Box::new(url), MAX_PAGES_PER_RUN),
        ];
        for (description, pages, stopped_at) in cases {
            let (read, outcome) = walk(pages);
            assert_eq!(read, stopped_at, "{description}");
            let why = endless(&outcome);
            assert!(!why.contains("s3cret"), "{description}: {why}");
            let expected = if stopped_at == MAX_PAGES_PER_RUN {
                "past 10000 pages"
            } else {
                "the CRM's pages loop"
            };
            assert!(why.contains(expected), "{description}: {why}");
        }
        let verdict = Failure::Endless("loop".to_owned()).verdict(now(), 30, 1);
        assert_eq!(
            (verdict.state, wait(&verdict)),
            (Some(State::Failing), ENDLESS_RETRY_SECONDS),
            "failing, and not tried again within a day"
        );
    }

    #[test]
    fn a_429_waits_as_long_as_the_crm_asks_and_keeps_the_state() {
        let verdict = Failure::of_status(429, Some(120), b"").verdict(now(), 30, 1);
        assert_eq!(verdict.state, None, "the data indexed before stays searchable");
        assert_eq!(wait(&verdict), 120);
        assert!(
            verdict.error.starts_with("429 Too Many Requests"),
            "{}",
            verdict.error
        );
        let unsaid = Failure::of_status(429, None, b"").verdict(now(), 30, 3);
        assert_eq!(wait(&unsaid), 240, "without Retry-After: a minute, doubling");
        let absurd = Failure::of_status(429, Some(86_400), b"").verdict(now(), 30, 1);
        assert_eq!(wait(&absurd), 3600, "never more than an hour");
    }

    #[test]
    fn server_errors_back_off_within_the_interval_and_keep_the_data() {
        let first = Failure::of_status(503, None, b"").verdict(now(), 30, 1);
        assert_eq!((first.state, wait(&first)), (None, 60));
        let tenth = Failure::TimedOut.verdict(now(), 30, 10);
        assert_eq!(wait(&tenth), 30 * 60, "never later than the link's own interval");
        assert!(first.error.contains("previous data is kept"), "{}", first.error);
    }

    #[test]
    fn refusals_mark_the_link_failing_with_the_reason() {
        let verdict =
            Failure::of_status(401, None, b"{\"errors\":\n \"Invalid API key\"}").verdict(now(), 30, 1);
        assert_eq!(verdict.state, Some(State::Failing));
        assert_eq!(verdict.http_status, Some(401));
        assert_eq!(
            verdict.error,
            "401 Unauthorized: check the API key and the authentication headers (the CRM said: {\"errors\": \"Invalid API key\"})"
        );
        assert_eq!(wait(&verdict), 1800);
        let missing = Failure::of_status(404, None, b"").verdict(now(), 5, 1);
        assert_eq!(missing.error, "404 Not Found: check the URL");
        assert_eq!(wait(&missing), 300);
        assert_eq!(
            Failure::TooLarge.verdict(now(), 30, 1).state,
            Some(State::Failing)
        );
    }

    #[test]
    fn credentials_go_only_to_the_links_own_origin() {
        let link = "https://shop.test/admin/api/2024-01/customers.json";
        assert!(same_origin(
            link,
            "https://shop.test/admin/api/2024-01/customers.json?page_info=p2"
        ));
        for elsewhere in [
            "https://evil.test/collect",
            "http://shop.test/admin",
            "https://shop.test:8443/admin",
            "https://api.shop.test/admin",
            "not a url",
        ] {
            assert!(!same_origin(link, elsewhere), "{elsewhere}");
        }
    }

    #[test]
    fn the_next_page_comes_from_the_link_header_then_hubspot_paging() {
        let shopify = "<https://shop.test/admin/api/2024-01/customers.json?limit=50&page_info=p1>; rel=\"previous\", <https://shop.test/admin/api/2024-01/customers.json?limit=50&page_info=p3>; rel=\"next\"";
        assert_eq!(
            next_page("https://shop.test/a", Some(shopify), "{}").as_deref(),
            Some("https://shop.test/admin/api/2024-01/customers.json?limit=50&page_info=p3")
        );
        assert_eq!(
            next_page(
                "https://x.test/v1/items?page=1",
                Some("</v1/items?page=2>; rel=next"),
                ""
            )
            .as_deref(),
            Some("https://x.test/v1/items?page=2"),
            "relative references resolve against the page"
        );
        let hubspot = r#"{"results":[],"paging":{"next":{"after":"7","link":"https://api.hubapi.test/crm/v3/objects/contacts?after=7"}}}"#;
        assert_eq!(
            next_page("https://api.hubapi.test/crm/v3/objects/contacts", None, hubspot).as_deref(),
            Some("https://api.hubapi.test/crm/v3/objects/contacts?after=7")
        );
        assert_eq!(
            next_page("https://x.test/", Some("<https://x.test/p0>; rel=\"prev\""), "[]"),
            None
        );
        assert_eq!(next_page("https://x.test/", None, "plain text"), None);
    }
}
