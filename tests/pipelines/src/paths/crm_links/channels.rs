//! tests/e2e/links/channels.test.mjs: a link switched off on one channel is not searchable there
//! but still is on its other channel; switched off everywhere it is searchable nowhere and the
//! schedule does not fetch it; deleted, nothing of it is searchable, listed or counted.

use super::{Dashboard, LINKS, add_page, custom_example, guide_crm, shopify_example, with};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{CUSTOM_PATH, Crm, SHOPIFY_PATH, Sizes};
use edge::runtime::Method;
use serde_json::json;
use std::time::Duration;

/// The custom CRM and the Shopify store, each on facebook and messenger, fetched.
struct Linked {
    business: Business,
    page: String,
    custom: String,
    shopify: String,
    crm: Crm,
}

async fn linked(app: &App) -> Linked {
    let _ = app.embedder();
    let crm = guide_crm(app, Sizes::SMALL);
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    let dashboard = Dashboard::new(app, &business);
    let both = json!({ "channels": ["facebook", "messenger"] });
    let custom = dashboard.add(with(custom_example(&page), both.clone())).await;
    let shopify = dashboard.add(with(shopify_example(&page), both)).await;
    app.settle().await;
    let url = |added: &serde_json::Value| added["crm_link"]["url"].as_str().unwrap_or_default().to_owned();
    Linked {
        custom: url(&custom),
        shopify: url(&shopify),
        business,
        page,
        crm,
    }
}

#[test]
fn both_channels_find_it_while_it_is_active() {
    test(|app| async move {
        let linked = linked(&app).await;
        let dashboard = Dashboard::new(&app, &linked.business);
        for channel in ["facebook", "messenger"] {
            assert!(
                dashboard
                    .finds_anything_of(&linked.page, channel, &linked.custom, "John Doe")
                    .await,
                "{channel} finds John Doe"
            );
        }
    });
}

#[test]
fn inactive_on_facebook_nothing_of_it_is_found_on_facebook_and_messenger_still_finds_it() {
    test(|app| async move {
        let linked = linked(&app).await;
        let dashboard = Dashboard::new(&app, &linked.business);
        let (page, custom) = (linked.page.as_str(), linked.custom.as_str());
        let answer = dashboard
            .set_active(page, custom, false, Some(&["facebook"]))
            .await;
        assert_eq!(answer["updated_count"], 1, "one entry changed");
        assert!(
            !dashboard
                .finds_anything_of(page, "facebook", custom, "John Doe")
                .await,
            "facebook finds nothing of the inactive link"
        );
        assert!(
            !dashboard
                .finds_anything_of(page, "facebook", custom, "What plan is John Doe on?")
                .await,
            "not even by meaning"
        );
        assert!(
            dashboard
                .finds_anything_of(page, "messenger", custom, "John Doe")
                .await,
            "messenger still finds it"
        );
        assert!(
            dashboard
                .finds_anything_of(page, "facebook", &linked.shopify, "Priya Nair")
                .await,
            "the other link on facebook is untouched"
        );
        let documents = dashboard.documents(page).await;
        let document = documents["documents"]
            .as_array()
            .and_then(|documents| {
                documents
                    .iter()
                    .find(|document| document["link"]["url"] == custom)
                    .cloned()
            })
            .unwrap_or_default();
        assert_eq!(
            document["active_channels"],
            json!(["messenger"]),
            "the documents view shows where it is active"
        );
    });
}

#[test]
fn active_again_on_facebook_it_is_found_there_again() {
    test(|app| async move {
        let linked = linked(&app).await;
        let dashboard = Dashboard::new(&app, &linked.business);
        let (page, custom) = (linked.page.as_str(), linked.custom.as_str());
        dashboard
            .set_active(page, custom, false, Some(&["facebook"]))
            .await;
        dashboard
            .set_active(page, custom, true, Some(&["facebook"]))
            .await;
        assert!(
            dashboard
                .finds_anything_of(page, "facebook", custom, "John Doe")
                .await,
            "facebook finds it again"
        );
    });
}

#[test]
fn inactive_on_every_channel_found_nowhere_and_not_fetched_by_the_sweep_even_when_due() {
    test(|app| async move {
        let linked = linked(&app).await;
        let dashboard = Dashboard::new(&app, &linked.business);
        let (page, custom) = (linked.page.as_str(), linked.custom.as_str());
        let answer = dashboard.set_active(page, custom, false, None).await;
        assert_eq!(answer["updated_count"], 2, "channels omitted means every channel");
        assert_eq!(
            super::sorted(&answer["channels"]),
            ["facebook", "messenger"],
            "the answer names them"
        );
        for channel in ["facebook", "messenger"] {
            assert!(
                !dashboard
                    .finds_anything_of(page, channel, custom, "John Doe")
                    .await,
                "{channel} finds nothing of it"
            );
        }
        let asked = linked.crm.served_at(CUSTOM_PATH).len();
        let shopify_asked = linked.crm.served_at(SHOPIFY_PATH).len();
        app.stack.advance(Duration::from_secs(31 * 60));
        app.sweep().await;
        app.settle().await;
        assert_eq!(
            linked.crm.served_at(CUSTOM_PATH).len(),
            asked,
            "an inactive link is not fetched"
        );
        assert!(
            linked.crm.served_at(SHOPIFY_PATH).len() > shopify_asked,
            "while the active link on the page, due too, was fetched again"
        );
        let list = dashboard.list(page, None).await;
        assert_eq!(
            (list["active_count"].as_u64(), list["inactive_count"].as_u64()),
            (Some(2), Some(2)),
            "the counts"
        );
    });
}

#[test]
fn a_deleted_link_nothing_of_it_is_searchable_listed_or_counted_on_any_channel() {
    test(|app| async move {
        let linked = linked(&app).await;
        let dashboard = Dashboard::new(&app, &linked.business);
        let (page, shopify) = (linked.page.as_str(), linked.shopify.as_str());
        assert!(
            dashboard
                .finds_anything_of(page, "messenger", shopify, "Priya Nair")
                .await,
            "found before it is deleted"
        );
        let answer = dashboard
            .call(
                Method::Delete,
                LINKS,
                Some(json!({ "page_id": page, "url": shopify })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(answer["deleted_count"], 2, "channels omitted means every channel");
        for channel in ["facebook", "messenger"] {
            assert!(
                !dashboard
                    .finds_anything_of(page, channel, shopify, "Priya Nair")
                    .await,
                "{channel} finds nothing of it"
            );
            assert!(
                !dashboard
                    .finds_anything_of(page, channel, shopify, "which customers spent the most?")
                    .await,
                "{channel} finds nothing of it by meaning"
            );
            assert!(
                dashboard.entry(page, shopify, channel).await.is_none(),
                "{channel} lists no entry"
            );
        }
        let view = dashboard.documents(page).await;
        let documents = view["documents"].as_array().cloned().unwrap_or_default();
        assert!(
            !documents
                .iter()
                .any(|document| document["link"]["url"] == shopify),
            "the documents view has no document for it"
        );
        let chunks: u64 = documents
            .iter()
            .filter_map(|document| document["chunks"].as_u64())
            .sum();
        assert_eq!(view["total_chunks"], chunks, "the totals count only what is left");
    });
}
