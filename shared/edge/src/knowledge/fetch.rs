//! Reading a link's data one page at a time: a page of its URL for `api` and `file` links (the
//! next page named by a `Link` header or HubSpot's `paging`), the last pushed body for `webhook`
//! links. Each answer is judged by `domain::links::fetch`; each page's body is held in memory
//! alone (counted by the invocation, `crate::platform::env`), never the whole data at once.

use crate::platform::bounded_fetch::{self, Failure as Unanswered};
use crate::platform::env::Held;
use crate::runtime::{Bucket, Method};
use crate::{Env, messaging::media_store};
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::document::{BodyKind, Numbering};
use domain::links::fetch::{Failure, MAX_PAGE_BYTES, TIMEOUT_MS, next_page, same_origin};
use domain::links::flatten::Limits;
use domain::links::identifiers::{Identified, identify};
use domain::links::link::{Link, LinkType, redact_url};

const ACCEPT: &str = "application/json, text/csv;q=0.9, text/plain;q=0.8, */*;q=0.5";

/// One page of the data.
pub struct Page {
    pub body: String,
    pub kind: BodyKind,
    /// The page after it, a URL a link could name (never inside our network); None on the last.
    pub next: Option<String>,
    /// The body, counted as held while the page lives.
    _held: Held,
}

/// Where a body pushed to a webhook link is kept: one object per push, so that two pushes at once
/// never overwrite each other (the source names the newest, `knowledge_sources::record_push`).
pub fn pushed_key(source: &SourceId, push_id: &str, seconds: i64) -> String {
    let safe: String = push_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(64)
        .collect();
    format!("knowledge/{source}/pushed/{seconds:012}-{safe}")
}

/// The page of the link's data at `url`. The link's credentials (its API key and headers) go
/// only to the link's own origin: a next page elsewhere is read without them.
pub async fn page(env: &Env, link: &Link, url: &str, allow_loopback: bool) -> Result<Page, Failure> {
    let mut headers: Vec<(String, String)> = if same_origin(link.url.as_str(), url) {
        link.request_headers()
    } else {
        Vec::new()
    };
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("accept"))
    {
        headers.push(("Accept".to_owned(), ACCEPT.to_owned()));
    }
    let headers: Vec<(&str, String)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let exchange = bounded_fetch::send(
        env,
        Method::Get,
        url,
        &headers,
        None,
        TIMEOUT_MS,
        MAX_PAGE_BYTES + 1,
    )
    .await;
    let reply = match exchange.result {
        Ok(reply) => reply,
        Err(Unanswered::TimedOut) => return Err(Failure::TimedOut),
        Err(Unanswered::Unreachable(why)) => return Err(Failure::Unreachable(why)),
    };
    if !(200..300).contains(&reply.status) {
        let retry_after = reply
            .retry_after
            .as_deref()
            .and_then(|value| domain::retry_after::seconds(value, crate::runtime::now()));
        return Err(Failure::of_status(reply.status, retry_after, &reply.body));
    }
    if reply.body.len() > MAX_PAGE_BYTES {
        return Err(Failure::TooLarge);
    }
    let held = env
        .hold(reply.body.len())
        .map_err(|error| Failure::Embedding(error.to_string()))?;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    let kind = BodyKind::of(reply.content_type.as_deref(), url);
    let next = next_page(url, reply.link.as_deref(), &body)
        .map(|next| {
            // A next page is a URL like any other the link could name: never inside our network.
            Destination::parse("next page", &next, allow_loopback)
                .map(|next| next.as_str().to_owned())
                .map_err(|why| {
                    Failure::Unreadable(format!(
                        "the CRM's next page {} cannot be fetched: {why}",
                        redact_url(&next)
                    ))
                })
        })
        .transpose()?;
    Ok(Page {
        body,
        kind,
        next,
        _held: held,
    })
}

/// The last body pushed to a webhook link (kept at `key`), as one page; None when nothing was
/// pushed yet.
pub async fn pushed(env: &Env, key: Option<&str>, link: &Link) -> Result<Option<Page>, Failure> {
    let storage = |error: worker::Error| Failure::Embedding(format!("reading the pushed data: {error}"));
    let Some(key) = key else {
        return Ok(None);
    };
    let object = env
        .bucket_read(crate::knowledge::PUSHED)
        .map_err(storage)?
        .get(key)
        .execute()
        .await
        .map_err(storage)?;
    let Some(object) = object else {
        return Ok(None);
    };
    let content_type = object.http_metadata().content_type;
    let Some(body) = object.body() else {
        return Ok(None);
    };
    let bytes = body.bytes().await.map_err(storage)?;
    let held = env
        .hold(bytes.len())
        .map_err(|error| Failure::Embedding(error.to_string()))?;
    Ok(Some(Page {
        body: String::from_utf8_lossy(&bytes).into_owned(),
        kind: BodyKind::of(content_type.as_deref(), link.url.as_str()),
        next: None,
        _held: held,
    }))
}

/// Keeps a pushed body at `key` for the fetcher.
pub async fn keep_pushed(
    bucket: &Bucket,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), ApiError> {
    media_store::put(bucket, key, content_type, body).await
}

/// What the first page of `link`'s data holds (its URL's first page; for a webhook link, the last
/// body pushed to it, kept at `pushed`): its fields and whether its records name customers
/// (`domain::links::identifiers`). None for a webhook link nothing was pushed to yet. The link's
/// health does not count this read.
pub async fn identified(
    env: &Env,
    link: &Link,
    pushed: Option<&str>,
    allow_loopback: bool,
) -> Result<Option<Identified>, Failure> {
    let page = match link.link_type {
        LinkType::Webhook => match self::pushed(env, pushed, link).await? {
            Some(page) => page,
            None => return Ok(None),
        },
        LinkType::Api | LinkType::File => page(env, link, link.url.as_str(), allow_loopback).await?,
        LinkType::Database => return Ok(None),
    };
    let limits = Limits {
        max_bytes: MAX_PAGE_BYTES,
        ..Limits::default()
    };
    let lines = Numbering::default()
        .page(&page.body, page.kind, &limits)
        .map_err(|error| {
            Failure::Unreadable(format!("the CRM's data cannot be read: {}", error.body.message))
        })?;
    Ok(Some(identify(&lines)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::links::link::NewLink;
    use serde_json::json;
    use std::time::Duration;

    const URL: &str = "https://crm.example.com/api/customers";

    fn link(headers: serde_json::Value) -> Link {
        NewLink::parse(
            &json!({
                "page_id": "104729000007919", "channels": ["messenger"], "name": "CRM", "url": URL,
                "type": "api", "api_key": "key-123", "headers": headers, "is_active": true
            }),
            false,
        )
        .unwrap_or_else(|error| panic!("{error}"))
        .link
    }

    #[test]
    fn the_links_credentials_go_to_its_own_origin_only_and_an_accept_header_always() {
        let fixture = Fixture::new();
        for host in ["crm.example.com", "cdn.example.net"] {
            fixture
                .stack
                .partner(host, |_| Reply::json(200, &json!({ "customers": [] })));
        }
        let link = link(json!({ "X-Shopify-Access-Token": "token-456" }));
        fixture.run(async {
            for url in [
                URL,
                "https://crm.example.com/api/customers?page=2",
                "https://cdn.example.net/export/2",
            ] {
                page(&fixture.env, &link, url, false)
                    .await
                    .unwrap_or_else(|failure| panic!("{url}: {failure:?}"));
            }
        });
        let calls = fixture.stack.outbound();
        let sent = |at: usize| {
            (
                calls[at].header("authorization"),
                calls[at].header("x-shopify-access-token"),
                calls[at].header("accept").is_some(),
            )
        };
        assert_eq!(
            sent(0),
            (Some("Bearer key-123"), Some("token-456"), true),
            "the link's own URL"
        );
        assert_eq!(
            sent(1),
            (Some("Bearer key-123"), Some("token-456"), true),
            "a next page on its origin"
        );
        assert_eq!(
            sent(2),
            (None, None, true),
            "a next page elsewhere: no credentials"
        );
    }

    #[test]
    fn an_accept_header_the_link_gives_is_sent_as_given_and_alone() {
        let fixture = Fixture::new();
        fixture
            .stack
            .partner("crm.example.com", |_| Reply::text(200, "a,b\r\n1,2\r\n"));
        let link = link(json!({ "accept": "text/csv" }));
        let got = fixture.run(page(&fixture.env, &link, URL, false));
        assert!(got.is_ok_and(|page| page.kind == BodyKind::Text));
        let calls = fixture.stack.outbound();
        let accepts: Vec<&(String, String)> = calls[0]
            .headers
            .iter()
            .filter(|(name, _)| name == "accept")
            .collect();
        assert_eq!(accepts, [&("accept".to_owned(), "text/csv".to_owned())]);
    }

    #[test]
    fn each_answer_is_judged_by_its_status_size_and_timing() {
        let retry = |status: u16, value: &str| {
            Reply::json(status, &json!({ "errors": "slow down" })).header("retry-after", value)
        };
        let cases: Vec<(&str, Reply, Failure)> = vec![
            (
                "Shopify's 429",
                retry(429, "2.0"),
                Failure::RateLimited {
                    retry_after_seconds: Some(2),
                },
            ),
            (
                "a 429 without Retry-After",
                Reply::status(429),
                Failure::RateLimited {
                    retry_after_seconds: None,
                },
            ),
            (
                "a 503",
                Reply::text(503, "Service Unavailable"),
                Failure::Unavailable { status: 503 },
            ),
            (
                "a 401 with the CRM's reason",
                Reply::json(401, &json!({ "errors": "[API] Invalid API key" })),
                Failure::Refused {
                    status: 401,
                    detail: r#"{"errors":"[API] Invalid API key"}"#.to_owned(),
                },
            ),
            (
                "a redirect",
                Reply::status(301).header("location", "https://elsewhere.example/"),
                Failure::Unreadable(
                    "301 Moved Permanently: the CRM redirected; give the URL it redirects to".to_owned(),
                ),
            ),
            (
                "a page over 4 MiB",
                Reply::json(200, &json!({})).body(vec![b' '; MAX_PAGE_BYTES + 1]),
                Failure::TooLarge,
            ),
            ("a CRM that never answers", Reply::never(), Failure::TimedOut),
            (
                "a CRM slower than the timeout",
                Reply::json(200, &json!({})).after(Duration::from_millis(TIMEOUT_MS + 1_000)),
                Failure::TimedOut,
            ),
        ];
        let fixture = Fixture::new();
        let link = link(json!({}));
        for (description, reply, expected) in cases {
            fixture.stack.partner("crm.example.com", move |_| reply.clone());
            let got = fixture.run(page(&fixture.env, &link, URL, false));
            assert_eq!(got.err(), Some(expected), "{description}");
        }
        fixture.stack.partner("crm.example.com", |_| Reply::refused());
        let down = fixture.run(page(&fixture.env, &link, URL, false));
        assert!(
            matches!(down.err(), Some(Failure::Unreachable(_))),
            "a CRM that is down"
        );
    }

    #[test]
    fn the_next_page_is_named_by_the_link_header_or_hubspots_paging_and_is_never_inside_our_network() {
        let fixture = Fixture::new();
        let link = link(json!({}));
        // (what the CRM answers, the reply, the next page or the start of the refusal)
        type Case<'a> = (&'a str, Reply, Result<Option<&'a str>, &'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "Shopify's Link header",
                Reply::json(200, &json!({ "customers": [] })).header(
                    "link",
                    "<https://crm.example.com/api/customers?page_info=abc>; rel=\"previous\", <https://crm.example.com/api/customers?page_info=def>; rel=\"next\"",
                ),
                Ok(Some("https://crm.example.com/api/customers?page_info=def")),
            ),
            (
                "HubSpot's paging.next.link",
                Reply::json(200, &json!({ "results": [], "paging": { "next": { "after": "x", "link": "/api/customers?after=x" } } })),
                Ok(Some("https://crm.example.com/api/customers?after=x")),
            ),
            ("the last page", Reply::json(200, &json!({ "customers": [] })), Ok(None)),
            (
                "a next page on a private address",
                Reply::json(200, &json!({ "customers": [] })).header("link", "<https://10.0.0.1/customers?token=secret>; rel=\"next\""),
                Err("the CRM's next page https://10.0.0.1/customers?token=*** cannot be fetched: "),
            ),
        ];
        for (description, reply, expected) in cases {
            fixture.stack.partner("crm.example.com", move |_| reply.clone());
            let got = fixture.run(page(&fixture.env, &link, URL, false));
            match (got, expected) {
                (Ok(page), Ok(next)) => assert_eq!(page.next.as_deref(), next, "{description}"),
                (Err(Failure::Unreadable(why)), Err(start)) => {
                    assert!(why.starts_with(start), "{description}: {why}")
                }
                (got, _) => panic!("{description}: {:?}", got.map(|page| page.next)),
            }
        }
    }

    #[test]
    fn a_pushed_body_is_kept_and_read_back_as_one_page_of_its_own_kind() {
        let fixture = Fixture::new();
        let link = link(json!({}));
        let source = SourceId::generate([3; 16]);
        let key = pushed_key(&source, "msg_2f01", 1_764_000_000);
        fixture.run(async {
            let bucket = fixture
                .env
                .bucket_write(crate::knowledge::PUSHED)
                .unwrap_or_else(|error| panic!("{error}"));
            keep_pushed(&bucket, &key, "text/csv", b"id,name\r\n1,Ada\r\n".to_vec())
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let read = pushed(&fixture.env, Some(&key), &link)
                .await
                .unwrap_or_else(|failure| panic!("{failure:?}"))
                .unwrap_or_else(|| panic!("the push is not found"));
            assert_eq!(
                (read.body.as_str(), read.kind, read.next),
                ("id,name\r\n1,Ada\r\n", BodyKind::Csv, None)
            );
            assert!(
                pushed(&fixture.env, None, &link)
                    .await
                    .is_ok_and(|page| page.is_none()),
                "nothing pushed yet"
            );
            let gone = pushed_key(&source, "msg_gone", 1_764_000_001);
            assert!(
                pushed(&fixture.env, Some(&gone), &link)
                    .await
                    .is_ok_and(|page| page.is_none()),
                "a push deleted since"
            );
        });
    }

    #[test]
    fn a_pushed_key_keeps_64_safe_characters_of_the_push_id_after_the_time_it_was_signed() {
        let source = SourceId::generate([3; 16]);
        let cases = [
            ("msg_2f01", "msg_2f01"),
            ("../../other/key", "otherkey"),
            ("id with spaces/and?query", "idwithspacesandquery"),
            (&*"x".repeat(100), &*"x".repeat(64)),
        ];
        for (id, kept) in cases {
            assert_eq!(
                pushed_key(&source, id, 1_764_000_000),
                format!("knowledge/{source}/pushed/001764000000-{kept}"),
                "{id}"
            );
        }
    }
}
