//! Reading a link's data one page at a time: a page of its URL for `api` and `file` links (the
//! next page named by a `Link` header or HubSpot's `paging`), the last pushed body for `webhook`
//! links. Each answer is judged by `domain::links::fetch`; each page's body is held in memory
//! alone (counted by the invocation, `crate::env`), never the whole data at once.

use crate::bounded_fetch::{self, Failure as Unanswered};
use crate::env::Held;
use crate::runtime::{Bucket, Method};
use crate::{Env, media_store};
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::document::BodyKind;
use domain::links::fetch::{Failure, MAX_PAGE_BYTES, TIMEOUT_MS, next_page, same_origin};
use domain::links::link::{Link, redact_url};

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
        .bucket(crate::knowledge::PUSHED)
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
