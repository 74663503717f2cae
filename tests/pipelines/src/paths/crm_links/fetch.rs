//! tests/e2e/links/fetch.test.mjs: a link's data is fetched on add, in the background (the POST
//! answers before the CRM is asked), Shopify's `Link` pagination and HubSpot's `paging.next`
//! followed to the end and later pages' records numbered on; CSV and text files; and the
//! scheduled refresh (the sweep picks a link up once its interval has passed), after which
//! exactly the CRM's current data is searchable and only the changed records were embedded.

use super::{
    Dashboard, add_page, custom_example, guide_crm, guide_john_doe, hubspot_example, shopify_example, with,
};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{
    CSV_PATH, Crm, HUBSPOT_PATH, SHOPIFY_PATH, Sizes, Source, TEXT_PATH, later_page, record_email, record_id,
    record_name,
};
use crate::partners::embedder::Embedder;
use crate::steps::api::is_rfc3339_utc;
use crate::steps::text;
use edge::runtime::Level;
use serde_json::{Value, json};
use std::time::Duration;

/// 8 Shopify customers, 3 a page (3 pages); 5 HubSpot contacts, 2 a page; 4 custom customers.
const STORE: Sizes = Sizes {
    shopify: 8,
    shopify_page: 3,
    hubspot: 5,
    hubspot_page: 2,
    custom: 4,
};

struct Fetched {
    business: Business,
    page: String,
    crm: Crm,
    embedder: Embedder,
    shopify: Value,
}

impl Fetched {
    fn url(&self) -> &str {
        self.shopify["url"].as_str().unwrap_or_default()
    }
}

/// The store and a page; the Shopify link added (and fetched, when `fetch`).
async fn shopify_linked(app: &App, fetch: bool) -> Fetched {
    let embedder = app.embedder();
    let crm = guide_crm(app, STORE);
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    let added = Dashboard::new(app, &business).add(shopify_example(&page)).await;
    if fetch {
        app.settle().await;
    }
    Fetched {
        business,
        page,
        crm,
        embedder,
        shopify: added["crm_link"].clone(),
    }
}

#[test]
fn adding_a_link_answers_at_once_before_the_crm_is_asked_and_its_data_becomes_searchable() {
    test(|app| async move {
        let fetched = shopify_linked(&app, false).await;
        assert!(
            fetched.crm.served().is_empty(),
            "the CRM had not been asked when the POST was answered"
        );
        assert_eq!(
            fetched.shopify["status"]["state"], "pending",
            "the new link is pending"
        );
        app.settle().await;
        let dashboard = Dashboard::new(&app, &fetched.business);
        let status = dashboard.status(&fetched.page, fetched.url(), "messenger").await;
        assert_eq!(
            (
                status["state"].as_str(),
                status["records"].as_u64(),
                status["chunks"].as_u64()
            ),
            (Some("ok"), Some(8), Some(8)),
            "one chunk per customer (each is well under a chunk): {status}"
        );
        let found = dashboard
            .results_of(
                &[
                    ("page_id", &fetched.page),
                    ("channel", "messenger"),
                    ("q", "Priya Nair"),
                    ("mode", "keyword"),
                ],
                &fetched.shopify["id"],
            )
            .await;
        assert!(
            found
                .first()
                .and_then(|top| top["text"].as_str())
                .is_some_and(|text| text.contains("customers[0].email: priya.nair@mailbox.example")),
            "Priya Nair's record is found first: {found:?}"
        );
    });
}

#[test]
fn shopify_link_pagination_is_followed_to_the_end_and_later_pages_customers_keep_their_numbers() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let requests = fetched.crm.served_at(SHOPIFY_PATH);
        assert_eq!(requests.len(), 3, "the first page and two more");
        let follow_ups: Vec<_> = requests
            .iter()
            .filter(|served| later_page(&served.call))
            .collect();
        let mut cursors: Vec<String> = follow_ups
            .iter()
            .filter_map(|served| served.call.query().get("page_info").map(str::to_owned))
            .collect();
        cursors.dedup();
        assert_eq!(cursors.len(), 2, "each page once, by two distinct cursors");
        for served in &follow_ups {
            let call = &served.call;
            let mut names: Vec<&str> = call.url.split_once('?').map_or(Vec::new(), |(_, query)| {
                query
                    .split('&')
                    .filter_map(|pair| pair.split('=').next())
                    .collect()
            });
            names.sort_unstable();
            assert_eq!(
                names,
                ["limit", "page_info"],
                "the follow-up is the Link URL as given"
            );
            assert_eq!(
                call.header("x-shopify-access-token"),
                Some("shppa_1234567890"),
                "follow-ups carry the custom headers"
            );
            assert_eq!(
                call.header("authorization"),
                Some("Bearer shppa_1234567890"),
                "and the Bearer key"
            );
        }
        let dashboard = Dashboard::new(&app, &fetched.business);
        let customers = fetched.crm.records(Source::Shopify);
        for index in [6, 7] {
            let email = record_email(&customers[index]);
            let found = dashboard
                .results_of(
                    &[
                        ("page_id", &fetched.page),
                        ("channel", "messenger"),
                        ("q", &email),
                        ("mode", "keyword"),
                    ],
                    &fetched.shopify["id"],
                )
                .await;
            let hit = found
                .iter()
                .find(|result| {
                    result["text"]
                        .as_str()
                        .is_some_and(|text| text.contains(&format!("customers[{index}].email: {email}")))
                })
                .unwrap_or_else(|| {
                    panic!("customer {index} (page 3) is searchable as customers[{index}]: {found:?}")
                });
            assert_eq!(
                hit["record"],
                format!("customers[{index}]"),
                "its record continues the numbering"
            );
        }
    });
}

#[test]
fn hubspot_paging_next_link_is_followed_to_the_end() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let dashboard = Dashboard::new(&app, &fetched.business);
        let added = dashboard
            .add(with(
                hubspot_example(&fetched.page),
                json!({ "channels": ["messenger"] }),
            ))
            .await;
        app.settle().await;
        let requests = fetched.crm.served_at(HUBSPOT_PATH);
        assert_eq!(
            requests
                .iter()
                .filter(|served| served.call.query().get("after").is_some())
                .count(),
            2,
            "two follow-ups with after"
        );
        assert!(
            requests
                .iter()
                .all(|served| served.call.header("authorization") == Some("Bearer pat-na1-1234567890")),
            "every page with the Bearer key"
        );
        let last = &fetched.crm.records(Source::Hubspot)[4];
        let email = record_email(last);
        let found = dashboard
            .results_of(
                &[
                    ("page_id", &fetched.page),
                    ("channel", "messenger"),
                    ("q", &email),
                    ("mode", "keyword"),
                ],
                &added["crm_link"]["id"],
            )
            .await;
        let hit = found
            .iter()
            .filter_map(|result| result["text"].as_str())
            .find(|text| text.contains(&format!("results[4].properties.email: {email}")))
            .unwrap_or_else(|| panic!("the last contact (page 3) is searchable as results[4]: {found:?}"));
        assert!(hit.contains("results[4].id: 505"), "with its own id line: {hit}");
    });
}

#[test]
fn a_csv_file_is_read_as_rows_and_a_text_file_as_text() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let dashboard = Dashboard::new(&app, &fetched.business);
        let file = |name: &str, path: &str, holds: Value| json!({ "page_id": fetched.page, "channels": ["messenger"], "name": name, "url": fetched.crm.url(path), "type": "file", "is_active": true, "holds": holds });
        let customers = json!({ "type": "customers", "field": "email", "key": "email" });
        let csv = dashboard.add(file("Customer export", CSV_PATH, customers)).await;
        let text = dashboard
            .add(file("Returns policy", TEXT_PATH, json!({ "type": "general" })))
            .await;
        app.settle().await;
        let status = dashboard
            .status(&fetched.page, &fetched.crm.url(CSV_PATH), "messenger")
            .await;
        assert_eq!(
            (status["state"].as_str(), status["records"].as_u64()),
            (Some("ok"), Some(4)),
            "{status}"
        );
        let rows = dashboard
            .results_of(
                &[
                    ("page_id", &fetched.page),
                    ("channel", "messenger"),
                    ("q", "John Doe"),
                    ("mode", "keyword"),
                ],
                &csv["crm_link"]["id"],
            )
            .await;
        assert_eq!(
            rows.first().map(|row| row["text"].clone()),
            Some(json!(guide_john_doe(0).replace("customers[0]", "rows[0]"))),
            "the CSV row is one line per column"
        );
        let policy = dashboard
            .results_of(
                &[
                    ("page_id", &fetched.page),
                    ("channel", "messenger"),
                    ("q", "how long do I have to return an item?"),
                ],
                &text["crm_link"]["id"],
            )
            .await;
        assert!(
            policy.iter().any(|result| result["text"]
                .as_str()
                .is_some_and(|text| text.contains("within 30 days of delivery"))),
            "the text file is searchable as written: {policy:?}"
        );
    });
}

#[test]
fn a_custom_api_with_only_an_x_api_key_header_is_fetched_as_the_guide_shows() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let dashboard = Dashboard::new(&app, &fetched.business);
        let added = dashboard
            .add(with(
                custom_example(&fetched.page),
                json!({ "channels": ["messenger"] }),
            ))
            .await;
        app.settle().await;
        let url = added["crm_link"]["url"].as_str().unwrap_or_default();
        let status = dashboard.status(&fetched.page, url, "messenger").await;
        assert_eq!(status["records"], 4, "{status}");
        let found = dashboard
            .results_of(
                &[
                    ("page_id", &fetched.page),
                    ("channel", "messenger"),
                    ("q", "John Doe"),
                    ("mode", "keyword"),
                ],
                &added["crm_link"]["id"],
            )
            .await;
        assert_eq!(
            found.first().map(|top| top["text"].clone()),
            Some(json!(guide_john_doe(0))),
            "the guide's processed text"
        );
    });
}

#[test]
fn a_link_is_not_fetched_again_before_it_is_due_and_is_due_one_interval_after_its_fetch() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let status = Dashboard::new(&app, &fetched.business)
            .status(&fetched.page, fetched.url(), "messenger")
            .await;
        assert!(
            is_rfc3339_utc(text(&status["next_fetch_at"])),
            "next_fetch_at: {status}"
        );
        let seconds = |field: &str| {
            status[field]
                .as_str()
                .and_then(domain::time::Timestamp::parse_rfc3339)
                .map(|time| time.seconds())
                .unwrap_or_default()
        };
        let due = seconds("next_fetch_at") - seconds("last_fetched_at");
        assert!(
            (due - 30 * 60).abs() <= 60,
            "next_fetch_at is 30 minutes after the fetch ({due} s)"
        );
        let asked = fetched.crm.served().len();
        app.stack.advance(Duration::from_secs(29 * 60));
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            fetched.crm.served().len(),
            asked,
            "the sweep did not fetch a link that is not due"
        );
    });
}

/// One customer changed, the last removed, two added at the end; the link refreshed by the sweep.
/// The changed customer, the removed one, the added ones, and how many texts were embedded before.
async fn changed_and_refreshed(app: &App, fetched: &Fetched) -> (Value, Value, Vec<Value>, usize) {
    let crm = &fetched.crm;
    let customers = crm.records(Source::Shopify);
    let changed = crm.update(
        Source::Shopify,
        &record_id(&customers[2]),
        json!({ "note": "Moved to Kinsale; deliver to the harbour office.", "tags": "gold-support" }),
    );
    let removed = crm.remove(Source::Shopify, &record_id(&customers[7]));
    let added = crm.add(Source::Shopify, 2);
    assert_eq!(crm.records(Source::Shopify).len(), 9);
    let embedded = fetched.embedder.texts_embedded();
    app.stack.advance(Duration::from_secs(31 * 60));
    app.sweep().await;
    app.settle().await;
    (changed, removed, added, embedded)
}

#[test]
fn a_due_link_is_fetched_by_the_sweep_and_exactly_the_crms_current_data_is_searchable() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let original = fetched.crm.records(Source::Shopify);
        let (changed, removed, added, _) = changed_and_refreshed(&app, &fetched).await;
        let dashboard = Dashboard::new(&app, &fetched.business);
        let page = fetched.page.as_str();
        let status = dashboard.status(page, fetched.url(), "messenger").await;
        assert_eq!(
            (
                status["state"].as_str(),
                status["records"].as_u64(),
                status["chunks"].as_u64()
            ),
            (Some("ok"), Some(9), Some(9)),
            "chunks follow the records: {status}"
        );
        assert_eq!(
            (status["last_embedded"].as_u64(), status["last_removed"].as_u64()),
            (Some(3), Some(2)),
            "the changed and the two new customers embedded; the changed one's old piece and the removed one's gone: {status}"
        );
        let removed_email = record_email(&removed);
        assert!(
            dashboard
                .texts_containing(page, "messenger", &removed_email, &removed_email)
                .await
                .is_empty(),
            "the removed customer's email is in no result"
        );
        let removed_first = removed["first_name"].as_str().unwrap_or_default();
        assert!(
            dashboard
                .texts_containing(page, "messenger", removed_first, &record_name(&removed))
                .await
                .is_empty(),
            "nor the removed name"
        );
        let old_note = original[2]["note"].as_str().unwrap_or_default();
        assert!(
            dashboard
                .texts_containing(page, "messenger", old_note, old_note)
                .await
                .is_empty(),
            "the old note is in no result"
        );
        let note = dashboard
            .texts_containing(
                page,
                "messenger",
                "customers[2].note: Moved to Kinsale; deliver to the harbour office.",
                "Kinsale harbour office",
            )
            .await;
        assert!(!note.is_empty(), "the changed note is searchable");
        assert!(
            note.iter().all(|result| result["text"]
                .as_str()
                .is_some_and(|text| text.contains("customers[2].tags: gold-support"))),
            "with the changed tags in the same chunk: {note:?}"
        );
        for (offset, customer) in added.iter().enumerate() {
            let index = 7 + offset;
            let email = record_email(customer);
            let found = dashboard
                .texts_containing(
                    page,
                    "messenger",
                    &format!("customers[{index}].email: {email}"),
                    &email,
                )
                .await;
            assert!(
                !found.is_empty(),
                "added customer {email} is searchable as customers[{index}]"
            );
        }
        let document = dashboard
            .document_of(page, &fetched.shopify["id"])
            .await
            .unwrap_or_default();
        assert_eq!(
            (
                document["records"].as_u64(),
                document["chunks"].as_u64(),
                document["embeddings"].as_u64()
            ),
            (Some(9), Some(9), Some(9)),
            "records, chunks and embeddings match the CRM"
        );
        assert_eq!(
            record_id(&changed),
            record_id(&original[2]),
            "the changed customer kept its id"
        );
    });
}

#[test]
fn a_refresh_embeds_only_the_changed_and_the_new_records_again() {
    test(|app| async move {
        let fetched = shopify_linked(&app, true).await;
        let (_, _, added, before) = changed_and_refreshed(&app, &fetched).await;
        let texts = fetched.embedder.embedded().concat().split_off(before);
        assert_eq!(
            texts.len(),
            3,
            "one changed and two new customers were embedded, not the six unchanged: {texts:?}"
        );
        assert!(
            texts[0].contains("Moved to Kinsale"),
            "the changed one: {}",
            texts[0]
        );
        for (text, customer) in texts[1..].iter().zip(&added) {
            assert!(text.contains(&record_email(customer)), "a new one: {text}");
        }
        let stored = app.stack.logged(Level::Log, "Stored ");
        assert!(
            stored
                .last()
                .is_some_and(|line| line.starts_with("Stored 3 embeddings from CRM data")),
            "the log says so: {stored:?}"
        );
    });
}
