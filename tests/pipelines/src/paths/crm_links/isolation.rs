//! tests/e2e/links/isolation.test.mjs: two businesses, and two pages of one business, never see
//! each other's links or pieces, even when they link the very same CRM url; switching a url off
//! or deleting it on one page leaves the same url on every other page alone.

use super::{
    CUSTOM_HOST, DETAILS, Dashboard, LINKS, SEARCH, add_page, custom_example, guide_crm, hubspot_example,
    query, with,
};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::Sizes;
use crate::steps::api::assert_error;
use edge::runtime::Method;
use serde_json::{Value, json};

const QUERIES: [&str; 4] = [
    "John Doe",
    "Sofia Marquez",
    "Which support plan is Rafael Oliveira on?",
    "What plan is John Doe on?",
];

/// A1: the custom CRM on the first business's first page; A2: HubSpot and the same custom CRM
/// url on its second page; B1: the custom CRM on the other business's page. Link ids by place.
struct Tenancy {
    first: Business,
    first_pages: [String; 2],
    second: Business,
    second_page: String,
    a1_custom: Value,
    a2_custom: Value,
    a2_hubspot: Value,
    b1_custom: Value,
    custom_url: String,
    hubspot_url: String,
}

async fn tenancy(app: &App) -> Tenancy {
    let _ = app.embedder();
    let _crm = guide_crm(app, Sizes::SMALL);
    let first = app.business("First").await;
    let first_pages = [add_page(app, &first).await, add_page(app, &first).await];
    let second = app.business("Second").await;
    let second_page = add_page(app, &second).await;
    let messenger = json!({ "channels": ["messenger"] });
    let link = async |business: &Business, body: Value| {
        Dashboard::new(app, business)
            .add(with(body, messenger.clone()))
            .await["crm_link"]["id"]
            .clone()
    };
    let a1_custom = link(&first, custom_example(&first_pages[0])).await;
    let a2_hubspot = link(&first, hubspot_example(&first_pages[1])).await;
    let a2_custom = link(&first, custom_example(&first_pages[1])).await;
    let b1_custom = link(&second, custom_example(&second_page)).await;
    app.settle().await;
    Tenancy {
        custom_url: custom_example("")["url"].as_str().unwrap_or_default().to_owned(),
        hubspot_url: hubspot_example("")["url"].as_str().unwrap_or_default().to_owned(),
        first,
        first_pages,
        second,
        second_page,
        a1_custom,
        a2_custom,
        a2_hubspot,
        b1_custom,
    }
}

/// Every result of every search on `page` (by keyword and by meaning, for each query).
async fn all_results(app: &App, business: &Business, page: &str, queries: &[&str]) -> Vec<Value> {
    let dashboard = Dashboard::new(app, business);
    let mut results = Vec::new();
    for q in queries {
        for mode in ["keyword", "semantic"] {
            let found = dashboard
                .search(&[
                    ("page_id", page),
                    ("channel", "messenger"),
                    ("q", q),
                    ("top_k", "20"),
                    ("mode", mode),
                ])
                .await;
            results.extend(found["results"].as_array().cloned().unwrap_or_default());
        }
    }
    results
}

fn link_ids(results: &[Value]) -> Vec<Value> {
    let mut ids: Vec<Value> = Vec::new();
    for result in results {
        if !ids.contains(&result["link"]["id"]) {
            ids.push(result["link"]["id"].clone());
        }
    }
    ids
}

#[test]
fn each_page_lists_only_its_own_links() {
    test(|app| async move {
        let tenancy = tenancy(&app).await;
        let dashboard = Dashboard::new(&app, &tenancy.first);
        let ids = |list: Value| {
            let mut ids: Vec<String> = list["crm_links"]
                .as_array()
                .map(|links| {
                    links
                        .iter()
                        .filter_map(|link| link["id"].as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids
        };
        let a1 = ids(dashboard.list(&tenancy.first_pages[0], None).await);
        let a2 = ids(dashboard.list(&tenancy.first_pages[1], None).await);
        assert_eq!(
            a1,
            [tenancy.a1_custom.as_str().unwrap_or_default()],
            "page 1: the custom CRM only"
        );
        let mut expected: Vec<String> = [&tenancy.a2_custom, &tenancy.a2_hubspot]
            .iter()
            .filter_map(|id| id.as_str())
            .map(str::to_owned)
            .collect();
        expected.sort();
        assert_eq!(a2, expected, "page 2: HubSpot and its own custom link");
        assert_ne!(
            tenancy.a1_custom, tenancy.a2_custom,
            "the same url on two pages is two links"
        );
    });
}

#[test]
fn a_pages_search_returns_only_its_own_links_pieces() {
    test(|app| async move {
        let tenancy = tenancy(&app).await;
        let a1 = all_results(&app, &tenancy.first, &tenancy.first_pages[0], &QUERIES).await;
        assert!(!a1.is_empty(), "page 1 finds something");
        assert_eq!(
            link_ids(&a1),
            std::slice::from_ref(&tenancy.a1_custom),
            "page 1 sees only its custom link, never page 2's HubSpot or custom pieces"
        );
        let a2 = all_results(&app, &tenancy.first, &tenancy.first_pages[1], &QUERIES).await;
        let ids = link_ids(&a2);
        assert!(
            ids.iter()
                .all(|id| *id == tenancy.a2_custom || *id == tenancy.a2_hubspot),
            "page 2 sees only its own links: {ids:?}"
        );
        assert!(ids.contains(&tenancy.a2_hubspot), "page 2 finds HubSpot contacts");
    });
}

#[test]
fn each_pages_documents_are_its_own() {
    test(|app| async move {
        let tenancy = tenancy(&app).await;
        let a1 = Dashboard::new(&app, &tenancy.first)
            .documents(&tenancy.first_pages[0])
            .await;
        let documents = a1["documents"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            documents
                .iter()
                .map(|document| document["link"]["id"].clone())
                .collect::<Vec<_>>(),
            std::slice::from_ref(&tenancy.a1_custom),
            "page 1"
        );
        assert_eq!(
            a1["total_chunks"], documents[0]["chunks"],
            "page 1 totals count page 1 only"
        );
    });
}

#[test]
fn switching_the_shared_url_off_on_one_page_leaves_it_on_the_other_and_deleting_it_too() {
    test(|app| async move {
        let tenancy = tenancy(&app).await;
        let dashboard = Dashboard::new(&app, &tenancy.first);
        let off = dashboard
            .set_active(&tenancy.first_pages[0], &tenancy.custom_url, false, None)
            .await;
        assert_eq!(off["updated_count"], 1, "one entry, on page 1");
        let john = ["John Doe"];
        assert!(
            link_ids(&all_results(&app, &tenancy.first, &tenancy.first_pages[1], &john).await)
                .contains(&tenancy.a2_custom),
            "page 2 still finds John Doe"
        );
        assert!(
            link_ids(&all_results(&app, &tenancy.second, &tenancy.second_page, &john).await)
                .contains(&tenancy.b1_custom),
            "the other business still finds John Doe"
        );
        let gone = dashboard
            .call(
                Method::Delete,
                LINKS,
                Some(json!({ "page_id": tenancy.first_pages[0], "url": tenancy.custom_url })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(gone["deleted_count"], 1, "one entry, on page 1");
        assert!(
            link_ids(&all_results(&app, &tenancy.first, &tenancy.first_pages[1], &john).await)
                .contains(&tenancy.a2_custom),
            "page 2 still finds John Doe after the delete"
        );
        assert!(
            link_ids(&all_results(&app, &tenancy.second, &tenancy.second_page, &john).await)
                .contains(&tenancy.b1_custom),
            "and so does the other business"
        );
        assert_eq!(
            dashboard.list(&tenancy.first_pages[1], None).await["total"],
            2,
            "page 2 keeps both links"
        );
    });
}

#[test]
fn a_businesss_search_lists_and_all_hold_only_its_own_links_even_for_the_same_url() {
    test(|app| async move {
        let tenancy = tenancy(&app).await;
        let b1 = all_results(&app, &tenancy.second, &tenancy.second_page, &QUERIES).await;
        assert!(!b1.is_empty(), "the second business finds its own data");
        assert_eq!(
            link_ids(&b1),
            std::slice::from_ref(&tenancy.b1_custom),
            "only its own link, never the first business's"
        );
        let all = Dashboard::new(&app, &tenancy.second)
            .call(Method::Get, &format!("{LINKS}/all"), None)
            .await
            .json();
        assert_eq!(
            all["pages_data"].as_array().map(|pages| pages
                .iter()
                .map(|page| page["page_id"].clone())
                .collect::<Vec<_>>()),
            Some(vec![json!(tenancy.second_page)]),
            "its /all lists only its page"
        );
        assert_eq!(all["total_crm_links"], 1);
        let first_all = Dashboard::new(&app, &tenancy.first)
            .call(Method::Get, &format!("{LINKS}/all"), None)
            .await
            .json();
        assert_eq!(
            super::sorted_field(&first_all["pages_data"], "page_id"),
            super::sorted(&json!(tenancy.first_pages)),
            "the first business's /all lists its two pages"
        );
        assert!(
            !first_all
                .to_string()
                .contains(tenancy.b1_custom.as_str().unwrap_or("?")),
            "and nothing of the second business's"
        );
    });
}

#[test]
fn one_businesss_key_cannot_read_or_change_the_others_page() {
    test(|app| async move {
        let tenancy = tenancy(&app).await;
        let page = tenancy.first_pages[1].as_str();
        let hubspot = tenancy.hubspot_url.as_str();
        let calls = [
            (
                Method::Get,
                format!("{LINKS}?{}", query(&[("page_id", page)])),
                None,
            ),
            (
                Method::Get,
                format!(
                    "{SEARCH}?{}",
                    query(&[("page_id", page), ("channel", "messenger"), ("q", "John Doe")])
                ),
                None,
            ),
            (
                Method::Get,
                format!("{DETAILS}?{}", query(&[("page_id", page), ("source", "crm")])),
                None,
            ),
            (
                Method::Put,
                format!("{LINKS}/status"),
                Some(json!({ "page_id": page, "url": hubspot, "is_active": false })),
            ),
            (
                Method::Delete,
                LINKS.to_owned(),
                Some(json!({ "page_id": page, "url": hubspot })),
            ),
            (
                Method::Post,
                format!("{LINKS}/refresh"),
                Some(json!({ "page_id": page, "url": hubspot })),
            ),
            (
                Method::Post,
                LINKS.to_owned(),
                Some(with(
                    custom_example(page),
                    json!({ "url": format!("https://{CUSTOM_HOST}/api/customers?intruder=1") }),
                )),
            ),
        ];
        let intruder = Dashboard::new(&app, &tenancy.second);
        for (method, path, body) in calls {
            let what = format!("{method:?} {path} with the other business's key");
            assert_error(&intruder.call(method, &path, body).await, 404, "not_found", &what);
        }
        let a2 = Dashboard::new(&app, &tenancy.first).list(page, None).await;
        assert!(
            a2["crm_links"]
                .as_array()
                .is_some_and(|links| links.iter().all(|link| link["is_active"] == true)),
            "the first business's links are unchanged: {a2}"
        );
        assert_eq!(a2["total"], 2);
    });
}
