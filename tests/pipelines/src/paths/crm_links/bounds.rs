//! Every bound of a link's run holds whatever the CRM serves: one page that flattens to 50,000
//! records is indexed over as many queue invocations as it needs, each within the
//! per-invocation limits the native meter enforces, and searchable once done; a CRM whose pages
//! loop (a page naming itself) or never end (empty pages, each naming a next) ends the run with
//! the reason on the link, which is not fetched again within a day.

use super::{Dashboard, add_page};
use crate::app::{App, Business, test};
use edge::runtime::native::Reply;
use serde_json::{Value, json};
use std::time::Duration;

/// A CRM with one link on a new page of the business; the link's id and URL.
async fn linked(app: &App, business: &Business, url: &str) -> (String, Value) {
    let page = add_page(app, business).await;
    let added = Dashboard::new(app, business)
        .add(json!({
            "page_id": page,
            "channels": ["messenger"],
            "name": "Export",
            "url": url,
            "type": "api",
            "is_active": true,
            "holds": { "type": "general" }
        }))
        .await;
    (page, added["crm_link"].clone())
}

/// Queue invocations of the link fetcher until none is due.
async fn invocations(app: &App) -> usize {
    let mut count = 0;
    while app.deliver_once("KNOWLEDGE").await > 0 {
        count += 1;
    }
    count
}

#[test]
fn a_page_of_50000_records_is_indexed_over_several_invocations_each_within_the_limits() {
    const RECORDS: usize = 50_000;
    test(|app| async move {
        let embedder = app.embedder();
        let records: Vec<Value> = (1..=RECORDS).map(|n| json!({ "a": n })).collect();
        let body = serde_json::to_string(&records).unwrap_or_default();
        app.stack.partner("export.example.com", move |_| {
            Reply::text(200, &body).header("content-type", "application/json")
        });
        let business = app.business("Acme").await;
        let (page, link) = linked(&app, &business, "https://export.example.com/records.json").await;
        let url = link["url"].as_str().unwrap_or_default().to_owned();

        let used = invocations(&app).await;
        assert!(
            used >= 3,
            "50 steps of 1,000 pieces, 20 a slice: {used} invocations"
        );
        let dashboard = Dashboard::new(&app, &business);
        let status = dashboard.status(&page, &url, "messenger").await;
        assert_eq!(
            (
                status["state"].as_str(),
                status["records"].as_u64(),
                status["chunks"].as_u64(),
                status["last_error"].as_str()
            ),
            (Some("ok"), Some(RECORDS as u64), Some(RECORDS as u64), None),
            "every record indexed, none twice: {status}"
        );
        assert_eq!(embedder.texts_embedded(), RECORDS, "each record embedded once");
        let found = dashboard
            .search(&[
                ("page_id", &page),
                ("channel", "messenger"),
                ("q", "49999"),
                ("mode", "keyword"),
            ])
            .await;
        let texts: Vec<&str> = found["results"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .filter_map(|result| result["text"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            texts.contains(&"[49998].a: 49999"),
            "a record of the last step is searchable: {found}"
        );
    });
}

#[test]
fn a_crm_whose_page_names_itself_fails_the_link_with_the_reason_and_is_not_fetched_again_for_a_day() {
    test(|app| async move {
        let _ = app.embedder();
        app.stack.partner("loop.example.com", |call| {
            Reply::json(200, &json!({ "customers": [{ "id": 1, "name": "Ann Byrne" }] }))
                .header("link", &format!("<{}>; rel=\"next\"", call.url))
        });
        let business = app.business("Acme").await;
        let (page, link) = linked(
            &app,
            &business,
            "https://loop.example.com/customers?api_token=s3cret",
        )
        .await;
        let url = link["url"].as_str().unwrap_or_default().to_owned();
        app.settle().await;
        let dashboard = Dashboard::new(&app, &business);
        let status = dashboard.status(&page, &url, "messenger").await;
        assert_eq!(status["state"], "failing", "{status}");
        let error = status["last_error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(
                "the CRM's pages loop: page 1 names https://loop.example.com/customers?api_token=***"
            ),
            "the reason, without the credential: {status}"
        );
        assert!(
            status.get("indexing").is_none_or(Value::is_null),
            "no run goes on: {status}"
        );
        assert_eq!(app.stack.calls_to("loop.example.com").len(), 1);

        // The sweep runs every minute; a day later the link is due again.
        for _ in 0..3 {
            app.stack.advance(Duration::from_secs(8 * 3600 - 60));
            app.sweep().await;
            app.settle().await;
        }
        assert_eq!(
            app.stack.calls_to("loop.example.com").len(),
            1,
            "not within a day"
        );
        app.stack.advance(Duration::from_secs(200));
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            app.stack.calls_to("loop.example.com").len(),
            2,
            "a day later, once"
        );
    });
}

#[test]
fn a_crm_of_empty_pages_that_loop_fails_the_link_within_a_few_rounds() {
    // An endless run of empty pages, each with a `Link: rel=next`: here three pages naming each
    // other in turn (the page bound itself, 10,000 pages, is the fetcher's unit test's).
    test(|app| async move {
        let _ = app.embedder();
        app.stack.partner("empty.example.com", |call| {
            let page: usize = call
                .url
                .split_once("page=")
                .and_then(|(_, page)| page.parse().ok())
                .unwrap_or(0);
            Reply::json(200, &json!({ "customers": [] })).header(
                "link",
                &format!(
                    "<https://empty.example.com/customers?page={}>; rel=\"next\"",
                    (page + 1) % 3
                ),
            )
        });
        let business = app.business("Acme").await;
        let (page, link) = linked(&app, &business, "https://empty.example.com/customers?page=0").await;
        let url = link["url"].as_str().unwrap_or_default().to_owned();
        app.settle().await;
        let status = Dashboard::new(&app, &business)
            .status(&page, &url, "messenger")
            .await;
        assert_eq!(status["state"], "failing", "{status}");
        assert!(
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.starts_with("the CRM's pages loop")),
            "{status}"
        );
        let served = app.stack.calls_to("empty.example.com").len();
        assert!(served <= 6, "found within two rounds of the loop: {served} pages");
    });
}
