//! Reading a link's data: its URL's pages for `api` and `file` links, the last pushed body for
//! `webhook` links. Each answer is judged by `domain::links::fetch`; the text becomes lines by
//! `domain::links::document`.

use crate::bounded_fetch::{self, Failure as Unanswered};
use crate::media_store;
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::document::{BodyKind, Pages};
use domain::links::fetch::{Failure, MAX_BYTES, MAX_PAGES, TIMEOUT_MS, next_page};
use domain::links::flatten::Limits;
use domain::links::link::Link;
use worker::{Bucket, Method};

const ACCEPT: &str = "application/json, text/csv;q=0.9, text/plain;q=0.8, */*;q=0.5";

/// Where the last body pushed to a webhook link is kept.
pub fn pushed_key(source: &SourceId) -> String {
    format!("knowledge/{source}/pushed")
}

/// Every page of the link's URL, following `rel="next"` links and HubSpot's paging, as one list.
pub async fn pages(link: &Link, allow_loopback: bool) -> Result<Pages, Failure> {
    let limits = Limits {
        max_bytes: MAX_BYTES,
        ..Limits::default()
    };
    let mut headers: Vec<(String, String)> = link.request_headers();
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
    let mut pages = Pages::default();
    let mut url = link.url.as_str().to_owned();
    let mut read = 0;
    for _ in 0..MAX_PAGES {
        let exchange = bounded_fetch::send(
            Method::Get,
            &url,
            &headers,
            None,
            TIMEOUT_MS,
            MAX_BYTES - read + 1,
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
        read += reply.body.len();
        if read > MAX_BYTES {
            return Err(Failure::TooLarge);
        }
        let body = String::from_utf8_lossy(&reply.body);
        let kind = BodyKind::of(reply.content_type.as_deref(), &url);
        pages
            .add(&body, kind, &limits)
            .map_err(|error| unreadable(&error))?;
        let Some(next) = next_page(&url, reply.link.as_deref(), &body) else {
            return Ok(pages);
        };
        // A next page is a URL like any other the link could name: never inside our network.
        url = Destination::parse("next page", &next, allow_loopback)
            .map_err(|why| {
                Failure::Unreadable(format!("the CRM's next page {next} cannot be fetched: {why}"))
            })?
            .as_str()
            .to_owned();
    }
    Err(Failure::Unreadable(format!(
        "the CRM's data runs over more than {MAX_PAGES} pages: ask it for larger pages"
    )))
}

/// The last body pushed to a webhook link, as lines; None when nothing was pushed yet.
pub async fn pushed(bucket: &Bucket, source: &SourceId, link: &Link) -> Result<Option<Pages>, Failure> {
    let object = bucket
        .get(pushed_key(source))
        .execute()
        .await
        .map_err(|error| Failure::Embedding(format!("reading the pushed data: {error}")))?;
    let Some(object) = object else {
        return Ok(None);
    };
    let content_type = object.http_metadata().content_type;
    let Some(body) = object.body() else {
        return Ok(None);
    };
    let bytes = body
        .bytes()
        .await
        .map_err(|error| Failure::Embedding(format!("reading the pushed data: {error}")))?;
    let mut pages = Pages::default();
    let limits = Limits {
        max_bytes: MAX_BYTES,
        ..Limits::default()
    };
    let kind = BodyKind::of(content_type.as_deref(), link.url.as_str());
    pages
        .add(&String::from_utf8_lossy(&bytes), kind, &limits)
        .map_err(|error| unreadable(&error))?;
    Ok(Some(pages))
}

/// Keeps a pushed body for the fetcher.
pub async fn keep_pushed(
    bucket: &Bucket,
    source: &SourceId,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), ApiError> {
    media_store::put(bucket, &pushed_key(source), content_type, body).await
}

/// Data over a limit of lines or text, or that is not what it claims to be: refused whole, with
/// the reason.
fn unreadable(error: &ApiError) -> Failure {
    Failure::Unreadable(format!(
        "the CRM's data cannot be indexed: {}",
        error.body.message
    ))
}
