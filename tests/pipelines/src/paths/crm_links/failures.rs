//! tests/e2e/links/failures.test.mjs: a 401 or 404 marks the link failing with the reason; a 429
//! is reported as such, its Retry-After honoured, and the data fetched before stays searchable; a
//! 500, a timeout, a page over 4 MiB and a CRM that is down keep the previous data and record the
//! error; the link recovers on a later run. A failure mid-pagination never leaves half a refresh
//! behind. Pages are read one at a time, so only a page is bounded, not the data.

use super::{Dashboard, add_page, guide_crm, shopify_example};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{
    ALWAYS, Crm, Fault, SHOPIFY_PATH, Sizes, Source, later_page, record_email, record_id,
};
use edge::runtime::Level;
use serde_json::{Value, json};
use std::time::Duration;

/// Six customers, two a page: three pages, so a failure can hit a later page.
const CUSTOMERS: usize = 6;

/// A Shopify store linked on a page and fetched once.
struct Store {
    business: Business,
    page: String,
    url: String,
    link: Value,
    crm: Crm,
}

async fn fetched_store(app: &App) -> Store {
    let _ = app.embedder();
    let crm = guide_crm(
        app,
        Sizes {
            shopify: CUSTOMERS,
            shopify_page: 2,
            ..Sizes::SMALL
        },
    );
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    let added = Dashboard::new(app, &business).add(shopify_example(&page)).await;
    app.settle().await;
    let link = added["crm_link"].clone();
    let store = Store {
        url: link["url"].as_str().unwrap_or_default().to_owned(),
        link,
        business,
        page,
        crm,
    };
    let status = Dashboard::new(app, &store.business)
        .status(&store.page, &store.url, "messenger")
        .await;
    assert_eq!(
        (status["state"].as_str(), status["records"].as_u64()),
        (Some("ok"), Some(6)),
        "{status}"
    );
    // A later fetch's times are distinct from this one's.
    app.stack.advance(Duration::from_secs(1));
    store
}

impl Store {
    async fn status(&self, app: &App) -> Value {
        Dashboard::new(app, &self.business)
            .status(&self.page, &self.url, "messenger")
            .await
    }

    async fn refresh(&self, app: &App) {
        Dashboard::new(app, &self.business)
            .refresh(&self.page, &self.url)
            .await;
        app.settle().await;
    }

    /// The data of the last good fetch is what search and the documents view show.
    async fn assert_previous_data_kept(&self, app: &App, description: &str) {
        let dashboard = Dashboard::new(app, &self.business);
        let last = &self.crm.records(Source::Shopify)[CUSTOMERS - 1];
        let email = record_email(last);
        let found = dashboard
            .texts_containing(
                &self.page,
                "messenger",
                &format!("customers[{}].email: {email}", CUSTOMERS - 1),
                &email,
            )
            .await;
        assert!(
            !found.is_empty(),
            "{description}: a customer of the last page is still searchable"
        );
        let document = dashboard
            .document_of(&self.page, &self.link["id"])
            .await
            .unwrap_or_default();
        assert_eq!(
            (
                document["records"].as_u64(),
                document["chunks"].as_u64(),
                document["embeddings"].as_u64()
            ),
            (Some(6), Some(6), Some(6)),
            "{description}: the documents view still counts the previous data"
        );
    }
}

#[test]
fn a_401_marks_the_link_failing_with_the_reason_and_it_recovers_once_the_crm_accepts_again() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        store.crm.fail(Fault::status(401).times(ALWAYS));
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(
            (status["state"].as_str(), status["last_http_status"].as_u64()),
            (Some("failing"), Some(401)),
            "{status}"
        );
        let error = status["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("401 Unauthorized"),
            "last_error gives the reason: {error}"
        );
        assert!(error.contains("check the API key"), "and what to do: {error}");
        store.assert_previous_data_kept(&app, "while refused").await;
        store.crm.clear_faults();
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(
            (status["state"].as_str(), &status["last_error"]),
            (Some("ok"), &Value::Null),
            "the link recovered: {status}"
        );
        // Its fetches in the checklist's KPIs: the refused one failed, the others were answered.
        let health = &status["health"];
        let calls = health["calls"].as_u64().unwrap_or(0);
        assert!(
            calls >= 3,
            "the first fetch, the refused one, the recovery: {health}"
        );
        assert_eq!(health["failed_calls"], 1, "{health}");
        assert_eq!(
            health["error_rate"].as_f64(),
            Some(1.0 / calls as f64),
            "{health}"
        );
        assert_eq!(health["targets"]["uptime"], 0.995);
    });
}

#[test]
fn a_404_marks_the_link_failing_with_the_reason() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        store.crm.fail(Fault::status(404).times(ALWAYS));
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(
            (status["state"].as_str(), status["last_http_status"].as_u64()),
            (Some("failing"), Some(404)),
            "{status}"
        );
        let error = status["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("404 Not Found") && error.contains("check the URL"),
            "last_error gives the reason: {error}"
        );
    });
}

#[test]
fn a_429_on_a_later_page_says_429_honours_retry_after_and_keeps_the_previous_data_searchable() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        store
            .crm
            .fail(Fault::throttled("30").times(ALWAYS).when(later_page));
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(status["last_http_status"], 429, "{status}");
        assert!(
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("429 Too Many Requests")),
            "last_error says 429 Too Many Requests: {status}"
        );
        let served = store.crm.served();
        let throttled = served
            .iter()
            .find(|served| served.status == 429)
            .unwrap_or_else(|| panic!("the CRM answered 429: {served:?}"));
        let next = edge_seconds(&status["next_fetch_at"]);
        assert!(
            next * 1000 >= throttled.call.at_ms + 29_000,
            "the next fetch ({}) is not before Retry-After (30 s after {} ms)",
            status["next_fetch_at"],
            throttled.call.at_ms
        );
        app.settle_within(Duration::from_secs(29)).await;
        assert_eq!(
            store.crm.served().len(),
            served.len(),
            "nothing was asked of the CRM within Retry-After"
        );
        store.assert_previous_data_kept(&app, "after the 429").await;
        assert!(
            !app.stack
                .logged(Level::Warn, "Failed to fetch CRM data: 429 Too Many Requests")
                .is_empty(),
            "the log says so: {:?}",
            app.stack.logs()
        );

        // Once the CRM lets it, the run goes on from the page that was refused, not from the start.
        store.crm.clear_faults();
        let first_pages = first_page_requests(&store.crm);
        app.settle_within(Duration::from_secs(60)).await;
        let status = store.status(&app).await;
        assert_eq!(
            (status["state"].as_str(), &status["last_error"]),
            (Some("ok"), &Value::Null),
            "{status}"
        );
        assert_eq!(
            first_page_requests(&store.crm),
            first_pages,
            "the first page was not read again"
        );
    });
}

fn first_page_requests(crm: &Crm) -> usize {
    crm.served_at(SHOPIFY_PATH)
        .iter()
        .filter(|served| !later_page(&served.call))
        .count()
}

/// An RFC 3339 time in Unix seconds.
fn edge_seconds(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(domain::time::Timestamp::parse_rfc3339)
        .map(|time| time.seconds())
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

#[test]
fn a_500_on_a_later_page_keeps_the_previous_data_and_the_next_run_takes_the_new_data() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        let dashboard = Dashboard::new(&app, &store.business);
        let first = store.crm.records(Source::Shopify)[0].clone();
        let old_note = first["note"].as_str().unwrap_or_default().to_owned();
        let new_note = "Now buys for four boutiques.";
        store
            .crm
            .update(Source::Shopify, &record_id(&first), json!({ "note": new_note }));
        store.crm.fail(Fault::status(500).times(ALWAYS).when(later_page));
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(status["last_http_status"], 500, "{status}");
        assert!(
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("500")),
            "{status}"
        );
        assert_eq!(status["state"], "ok", "the data is still good: {status}");
        assert!(
            dashboard
                .texts_containing(&store.page, "messenger", new_note, new_note)
                .await
                .is_empty(),
            "the first page of the failed refresh was not published"
        );
        assert!(
            !dashboard
                .texts_containing(
                    &store.page,
                    "messenger",
                    &format!("customers[0].note: {old_note}"),
                    &old_note
                )
                .await
                .is_empty(),
            "the old note is still searchable"
        );
        store.assert_previous_data_kept(&app, "after the 500").await;

        store.crm.clear_faults();
        app.stack.advance(Duration::from_secs(31 * 60));
        app.sweep().await;
        app.settle().await;
        let status = store.status(&app).await;
        assert_eq!(
            (status["state"].as_str(), &status["last_error"]),
            (Some("ok"), &Value::Null),
            "the next run succeeded: {status}"
        );
        assert!(
            !dashboard
                .texts_containing(&store.page, "messenger", new_note, new_note)
                .await
                .is_empty(),
            "the next run took the new note"
        );
    });
}

#[test]
fn a_crm_slower_than_the_10_s_timeout_records_the_error_and_keeps_the_previous_data() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        store
            .crm
            .fail(Fault::slow(Duration::from_secs(12)).when(|call| call.path() == SHOPIFY_PATH));
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert!(
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("did not answer within 10 s")),
            "{status}"
        );
        store.assert_previous_data_kept(&app, "after the timeout").await;
    });
}

#[test]
fn a_page_over_4_mib_is_refused_with_a_clear_error_and_the_previous_data_kept() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        store.crm.fail(
            Fault::oversize(crate::partners::crm_pages::OVERSIZE_BYTES)
                .times(ALWAYS)
                .when(later_page),
        );
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(status["state"], "failing", "{status}");
        assert!(
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("4 MiB")),
            "last_error says the limit: {status}"
        );
        store
            .assert_previous_data_kept(&app, "after the oversized page")
            .await;
    });
}

#[test]
fn pages_that_are_each_under_4_mib_are_read_however_large_they_are_together() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        let before = store.status(&app).await;
        store.crm.fail(
            Fault::oversize(1_536 * 1024)
                .times(ALWAYS)
                .when(|call| call.path() == SHOPIFY_PATH),
        );
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert_eq!(
            (
                status["state"].as_str(),
                &status["last_error"],
                status["records"].as_u64()
            ),
            (Some("ok"), &Value::Null, Some(6)),
            "{status}"
        );
        assert!(
            status["last_fetched_at"].as_str() > before["last_fetched_at"].as_str(),
            "fetched again: {status}"
        );
        let served = store.crm.served_at(SHOPIFY_PATH);
        let pages = &served[served.len() - 3..];
        assert!(
            pages
                .iter()
                .all(|page| page.bytes > 1024 * 1024 && page.bytes < 4 * 1024 * 1024),
            "three pages of 1.5 MiB each were read: {:?}",
            pages.iter().map(|page| page.bytes).collect::<Vec<_>>()
        );
        store
            .assert_previous_data_kept(&app, "after pages over 4 MiB together")
            .await;
    });
}

#[test]
fn a_crm_that_is_down_fails_the_run_keeps_the_previous_data_and_a_later_run_recovers() {
    test(|app| async move {
        let store = fetched_store(&app).await;
        let earlier = store.status(&app).await;
        store.crm.down();
        store.refresh(&app).await;
        let status = store.status(&app).await;
        assert!(
            status["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("could not be reached")),
            "{status}"
        );
        store
            .assert_previous_data_kept(&app, "while the CRM is down")
            .await;
        store.crm.up();
        app.stack.advance(Duration::from_secs(31 * 60));
        app.sweep().await;
        app.settle().await;
        let recovered = store.status(&app).await;
        assert_eq!(
            (recovered["state"].as_str(), &recovered["last_error"]),
            (Some("ok"), &Value::Null),
            "{recovered}"
        );
        assert!(
            recovered["last_fetched_at"].as_str() > earlier["last_fetched_at"].as_str(),
            "a new fetch succeeded: {recovered}"
        );
        store.assert_previous_data_kept(&app, "after recovering").await;
    });
}
