//! A CRM link, end to end: a business links its Shopify store's customers to a Facebook page
//! through the dashboard API; the fetcher reads the store's pages over several queue invocations
//! (a slice of 20 pages each, as production's per-invocation limits require), embeds every
//! customer with the local embedder and publishes the whole run at its end; search by meaning
//! finds the asked-about customer first. Then 1% of the customers change at the CRM, the link
//! falls due one interval later, the cron's sweep hands it to the fetcher, and the refresh embeds
//! only the changed customers and replaces their old text.

use super::crm_links::{Dashboard, SHOPIFY_HOST, add_page, shopify_example};
use crate::app::{EMBEDDER_HOST, test};
use crate::partners::crm_pages::{Crm, SHOPIFY_PATH, Sizes, Source, record_id, record_name};
use serde_json::{Value, json};
use std::time::Duration;

/// 25 pages of 4: more than the 20 pages a slice reads.
const CUSTOMERS: usize = 100;
const PAGE_SIZE: usize = 4;
const PAGES: usize = CUSTOMERS / PAGE_SIZE;
/// The customer who moves (1% of them), on the eleventh page.
const WESTPORT: usize = 42;

fn first_text(answer: &Value) -> String {
    answer["results"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_crm_link_is_indexed_in_slices_searched_by_meaning_and_refreshed_embedding_only_what_changed() {
    test(|app| async move {
        let embedder = app.embedder();
        let business = app.business("Acme").await;
        let page_id = add_page(&app, &business).await;
        let page = page_id.as_str();
        let crm = Crm::install(
            &app.stack,
            SHOPIFY_HOST,
            Sizes {
                shopify: CUSTOMERS,
                shopify_page: PAGE_SIZE,
                ..Sizes::SMALL
            },
        );
        let dashboard = Dashboard::new(&app, &business);
        let added = dashboard.add(shopify_example(page)).await;
        let url = added["crm_link"]["url"].as_str().unwrap_or_default().to_owned();
        assert_eq!(added["crm_link"]["status"]["state"], "pending", "{added}");
        assert!(
            crm.served().is_empty(),
            "the POST answers before the CRM is asked"
        );

        assert_eq!(app.deliver_once("KNOWLEDGE").await, 1, "the first slice");
        let status = dashboard.status(page, &url, "messenger").await;
        assert_eq!(crm.served().len(), 20, "a slice reads 20 pages");
        assert_eq!(
            (
                status["indexing"]["pages_read"].as_u64(),
                status["indexing"]["records_seen"].as_u64(),
                status["indexing"]["records_without_key"].as_u64()
            ),
            (Some(20), Some(20 * PAGE_SIZE as u64), Some(0)),
            "the run's progress shows while it goes on: {status}"
        );
        assert_eq!(
            (status["state"].as_str(), status["chunks"].as_u64()),
            (Some("pending"), Some(0)),
            "nothing is published before the run ends: {status}"
        );
        let customers = crm.records(Source::Shopify);
        let priya = dashboard
            .search(&[("page_id", page), ("channel", "messenger"), ("q", "Priya Nair")])
            .await;
        assert_eq!(priya["count"], 0, "half a run is never searchable: {priya}");

        let slices = app.settle().await;
        assert!(slices >= 1, "the run was handed to a next slice");
        let status = dashboard.status(page, &url, "messenger").await;
        assert_eq!(
            (
                status["state"].as_str(),
                status["records"].as_u64(),
                status["chunks"].as_u64(),
                status["last_embedded"].as_u64()
            ),
            (
                Some("ok"),
                Some(CUSTOMERS as u64),
                Some(CUSTOMERS as u64),
                Some(CUSTOMERS as u64)
            ),
            "{status}"
        );
        assert!(status["indexing"].is_null(), "the run is over: {status}");
        assert_eq!(crm.served_at(SHOPIFY_PATH).len(), PAGES, "each page read once");
        assert_eq!(
            embedder.texts_embedded(),
            CUSTOMERS + 1,
            "each customer embedded once (and the question)"
        );
        assert_eq!(embedder.vectors(), CUSTOMERS);

        let found = dashboard
            .search(&[
                ("page_id", page),
                ("channel", "messenger"),
                ("q", "What is Priya Nair's email address?"),
            ])
            .await;
        assert_eq!(found["mode"], "semantic");
        assert!(
            first_text(&found).contains("].email: priya.nair@mailbox.example"),
            "Priya's record first: {found}"
        );
        let late = &customers[CUSTOMERS - 5];
        let question = format!("{}'s plan", record_name(late));
        let found = dashboard
            .search(&[("page_id", page), ("channel", "messenger"), ("q", &question)])
            .await;
        let index = CUSTOMERS - 5;
        assert_eq!(
            found["results"][0]["record"],
            format!("customers[{index}]"),
            "a customer of the second slice's pages, under its own number: {found}"
        );

        // 1% of the customers change.
        let changed = [(WESTPORT, "Moved to Westport; leave parcels at the marina.")];
        for (at, note) in changed {
            crm.update(
                Source::Shopify,
                &record_id(&customers[at]),
                json!({ "note": note }),
            );
        }
        let asked = crm.served().len();
        let embedded = embedder.texts_embedded();
        let calls = app.stack.calls_to(EMBEDDER_HOST).len();

        app.stack.advance(Duration::from_secs(29 * 60));
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            crm.served().len(),
            asked,
            "29 minutes on, the link is not due yet"
        );

        app.stack.advance(Duration::from_secs(2 * 60));
        app.sweep().await;
        app.settle().await;
        let refreshed = dashboard.status(page, &url, "messenger").await;
        assert_eq!(
            (
                refreshed["state"].as_str(),
                refreshed["records"].as_u64(),
                refreshed["chunks"].as_u64()
            ),
            (Some("ok"), Some(CUSTOMERS as u64), Some(CUSTOMERS as u64)),
            "{refreshed}"
        );
        assert!(
            refreshed["last_fetched_at"].as_str() > status["last_fetched_at"].as_str(),
            "fetched again: {refreshed}"
        );
        assert_eq!(crm.served().len() - asked, PAGES, "every page read again");
        let texts: Vec<String> = embedder.embedded().concat().split_off(embedded);
        assert_eq!(
            texts.len(),
            changed.len(),
            "only the changed customers are embedded again: {texts:?}"
        );
        for (text, (_, note)) in texts.iter().zip(changed) {
            assert!(
                text.contains(note),
                "each with its new note, in list order: {texts:?}"
            );
        }
        assert_eq!(
            (
                refreshed["last_embedded"].as_u64(),
                refreshed["last_removed"].as_u64()
            ),
            (Some(1), Some(1)),
            "{refreshed}"
        );
        assert_eq!(embedder.vectors(), CUSTOMERS, "the old vectors are gone");
        let looked_up: usize = app.stack.calls_to(EMBEDDER_HOST)[calls..]
            .iter()
            .filter(|call| call.path().ends_with("/get_by_ids"))
            .map(|call| call.json()["ids"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(
            looked_up,
            changed.len(),
            "an unchanged piece is known from D1: the vector store is asked only about the new one"
        );

        let found = dashboard
            .search(&[
                ("page_id", page),
                ("channel", "messenger"),
                ("q", "who moved to Westport and wants parcels left at the marina?"),
            ])
            .await;
        assert_eq!(
            found["results"][0]["record"],
            format!("customers[{WESTPORT}]"),
            "{found}"
        );
        assert!(first_text(&found).contains("Moved to Westport"), "{found}");
        let record = dashboard
            .texts_containing(
                page,
                "messenger",
                &format!("customers[{WESTPORT}]."),
                &record_name(&customers[WESTPORT]),
            )
            .await;
        assert!(!record.is_empty(), "the customer is found by name");
        assert!(
            record.iter().all(|result| result["text"]
                .as_str()
                .is_some_and(|text| text.contains("Moved to Westport"))),
            "only with the new note: the old text is gone: {record:?}"
        );
    });
}

#[test]
fn a_slice_that_dies_after_writing_vectors_is_resumed_by_the_sweep_and_embeds_nothing_twice() {
    test(|app| async move {
        let embedder = app.embedder();
        let business = app.business("Acme").await;
        let page_id = add_page(&app, &business).await;
        let page = page_id.as_str();
        let _crm = Crm::install(
            &app.stack,
            SHOPIFY_HOST,
            Sizes {
                shopify: 60,
                shopify_page: PAGE_SIZE,
                ..Sizes::SMALL
            },
        );
        let dashboard = Dashboard::new(&app, &business);
        let added = dashboard.add(shopify_example(page)).await;
        let url = added["crm_link"]["url"].as_str().unwrap_or_default().to_owned();

        // The first page's vectors are written; then the worker dies before it records the page:
        // its database does not answer again.
        let stack = app.stack.clone();
        embedder.after_next("upsert", move || {
            for shard in stack.shard_bindings() {
                stack.outage(&shard, "D1_ERROR: Network connection lost.");
            }
        });
        app.settle().await;
        for shard in app.stack.shard_bindings() {
            app.stack.restore(&shard);
        }
        assert_eq!(
            (embedder.texts_embedded(), embedder.vectors()),
            (PAGE_SIZE, PAGE_SIZE),
            "the first page was embedded and its vectors written"
        );

        // The dead slice's lease runs out; its run, untouched for ten minutes, is handed on by
        // the sweep and goes on from the page it was reading.
        app.settle_within(Duration::from_secs(11 * 60)).await;
        app.stack.advance(Duration::from_secs(11 * 60));
        app.sweep().await;
        app.settle().await;
        let status = dashboard.status(page, &url, "messenger").await;
        assert_eq!(
            (
                status["state"].as_str(),
                status["records"].as_u64(),
                status["chunks"].as_u64()
            ),
            (Some("ok"), Some(60), Some(60)),
            "{status}"
        );
        assert_eq!(
            (embedder.texts_embedded(), embedder.vectors()),
            (60, 60),
            "the first page's vectors were found in the store, not made again"
        );
        let found = dashboard
            .search(&[("page_id", page), ("channel", "messenger"), ("q", "Priya Nair")])
            .await;
        assert!(
            first_text(&found).contains("priya.nair@mailbox.example"),
            "{found}"
        );
    });
}
