//! tests/e2e/links/api.test.mjs: the guide's three curl examples work with only the base URL
//! changed (here not even that: the CRM answers at the guide's own hosts) and our own page id;
//! lists, per-channel lists and /all count a link on two channels as two entries; status
//! changes and deletes answer the guide's shapes; the documents view counts what was fetched;
//! credentials are `***` in every answer while the CRM receives the real ones, and a link whose URL
//! carries one is addressed by its id.

use super::{
    CUSTOM_HOST, Dashboard, EMBEDDER_ID, LINKS, add_page, custom_example, guide_crm, guide_john_doe,
    hubspot_example, query, shopify_example, sorted, sorted_field,
};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{CUSTOM_KEY, CUSTOM_PATH, Crm, HUBSPOT_PATH, SHOPIFY_PATH, Sizes};
use crate::partners::embedder::Embedder;
use crate::steps::api::{assert_error, is_rfc3339_utc};
use crate::steps::text;
use edge::runtime::Method;
use serde_json::{Value, json};

/// The guide's examples added on a business's first page (its second has none).
struct Guide {
    business: Business,
    page: String,
    empty_page: String,
    crm: Crm,
    _embedder: Embedder,
    /// The POST bodies, by source, and the links they made.
    bodies: [(&'static str, Value); 3],
    added: Vec<Value>,
}

impl Guide {
    async fn added(app: &App) -> Self {
        let embedder = app.embedder();
        let crm = guide_crm(app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(app, &business).await;
        let empty_page = add_page(app, &business).await;
        let bodies = [
            ("shopify", shopify_example(&page)),
            ("hubspot", hubspot_example(&page)),
            ("custom", custom_example(&page)),
        ];
        let dashboard = Dashboard::new(app, &business);
        let mut added = Vec::new();
        for (_, body) in &bodies {
            added.push(dashboard.add(body.clone()).await);
        }
        Self {
            business,
            page,
            empty_page,
            crm,
            _embedder: embedder,
            bodies,
            added,
        }
    }

    fn url(&self, source: &str) -> String {
        self.bodies
            .iter()
            .find(|(name, _)| *name == source)
            .map(|(_, body)| body["url"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    fn link(&self, source: &str) -> Value {
        let at = self
            .bodies
            .iter()
            .position(|(name, _)| *name == source)
            .unwrap_or(0);
        self.added[at]["crm_link"].clone()
    }
}

#[test]
fn the_three_example_bodies_are_added_as_the_guide_answers_them() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        for ((source, body), answer) in guide.bodies.iter().zip(&guide.added) {
            assert_eq!(answer["message"], "CRM link added successfully", "{source}");
            assert_eq!(answer["channels"], body["channels"], "{source}: channels");
            assert_eq!(answer["page_id"], guide.page.as_str(), "{source}: page_id");
            let link = &answer["crm_link"];
            assert!(link["id"].is_string(), "{source}: id");
            for field in ["name", "url", "type", "description"] {
                assert_eq!(link[field], body[field], "{source}: {field}");
            }
            assert!(
                body["channels"]
                    .as_array()
                    .is_some_and(|channels| channels.contains(&link["channel"])),
                "{source}: channel {} is one of the link's",
                link["channel"]
            );
            assert_eq!(
                sorted(&link["channels"]),
                sorted(&body["channels"]),
                "{source}: the entry's channels"
            );
            let api_key = if body["api_key"].is_null() {
                Value::Null
            } else {
                json!("***")
            };
            assert_eq!(link["api_key"], api_key, "{source}: api_key");
            assert_eq!(
                (
                    link["is_active"].as_bool(),
                    link["fetch_interval_minutes"].as_u64(),
                    link["fetchable"].as_bool()
                ),
                (Some(true), Some(30), Some(true)),
                "{source}: active, the default interval, fetchable"
            );
            assert_eq!(link["status"]["state"], "pending", "{source}: not fetched yet");
            assert!(
                is_rfc3339_utc(text(&link["created_at"])),
                "{source}: created_at {}",
                link["created_at"]
            );
            assert!(
                is_rfc3339_utc(text(&link["updated_at"])),
                "{source}: updated_at {}",
                link["updated_at"]
            );
            assert!(
                link.get("webhook_url").is_none(),
                "{source}: only webhook links have a webhook_url"
            );
        }
        assert_eq!(
            guide.link("shopify")["headers"],
            json!({ "X-Shopify-Access-Token": "***" }),
            "the Shopify token header is masked"
        );
        assert_eq!(
            guide.link("hubspot")["headers"],
            json!({ "Content-Type": "***" }),
            "a plain header is named, its value masked"
        );
        assert_eq!(
            guide.link("custom")["headers"],
            json!({ "X-API-Key": "***", "X-Client-ID": "***" }),
            "every header value is masked, whatever its name"
        );
    });
}

#[test]
fn each_link_is_fetched_with_its_key_as_a_bearer_token_and_its_headers_as_given() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let first = |path: &str| {
            guide
                .crm
                .served_at(path)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("nothing asked of {path}"))
        };
        let shopify = first(SHOPIFY_PATH);
        assert_eq!(
            shopify.call.header("authorization"),
            Some("Bearer shppa_1234567890"),
            "Shopify: api_key as a Bearer token"
        );
        assert_eq!(
            shopify.call.header("x-shopify-access-token"),
            Some("shppa_1234567890"),
            "Shopify: the access token header"
        );
        assert_eq!(shopify.status, 200, "Shopify accepted the request");
        let hubspot = first(HUBSPOT_PATH);
        assert_eq!(
            hubspot.call.header("authorization"),
            Some("Bearer pat-na1-1234567890"),
            "HubSpot: api_key as a Bearer token"
        );
        assert_eq!(hubspot.status, 200, "HubSpot accepted the request");
        let custom = first(CUSTOM_PATH);
        assert_eq!(
            custom.call.header("x-api-key"),
            Some("internal-key-123"),
            "custom: X-API-Key as given"
        );
        assert_eq!(
            custom.call.header("x-client-id"),
            Some("facebook-bot"),
            "custom: X-Client-ID as given"
        );
        assert_eq!(
            custom.call.header("authorization"),
            None,
            "custom: no api_key, so no Authorization"
        );
        assert_eq!(custom.status, 200, "the custom CRM accepted the request");
        assert_eq!(
            guide.crm.served_at(HUBSPOT_PATH).len(),
            1,
            "a link on two channels is fetched once"
        );
    });
}

#[test]
fn the_pages_list_counts_a_link_on_two_channels_as_two_entries_and_filters_by_channel() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let dashboard = Dashboard::new(&app, &guide.business);
        let all = dashboard.list(&guide.page, None).await;
        assert_eq!(all["page_id"], guide.page.as_str());
        assert!(all["channel"].is_null(), "channel is null when not given");
        assert_eq!(
            (
                all["total"].as_u64(),
                all["active_count"].as_u64(),
                all["inactive_count"].as_u64()
            ),
            (Some(4), Some(4), Some(0)),
            "Shopify (messenger), HubSpot (facebook, messenger), custom (facebook)"
        );
        let entries = all["crm_links"].as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len(), 4);
        let hubspot: Vec<&Value> = entries
            .iter()
            .filter(|entry| entry["url"] == guide.url("hubspot").as_str())
            .collect();
        let mut channels: Vec<&str> = hubspot
            .iter()
            .filter_map(|entry| entry["channel"].as_str())
            .collect();
        channels.sort_unstable();
        assert_eq!(
            channels,
            ["facebook", "messenger"],
            "HubSpot is one entry per channel"
        );
        for entry in &hubspot {
            assert_eq!(
                sorted(&entry["channels"]),
                ["facebook", "messenger"],
                "each entry names every channel of its url"
            );
        }
        for entry in &entries {
            let status = &entry["status"];
            let name = format!("{} ({})", entry["name"], entry["channel"]);
            assert_eq!(status["state"], "ok", "{name} was fetched");
            assert!(status["last_error"].is_null(), "{name}: no error");
            assert_eq!(status["last_http_status"], 200, "{name}: the CRM answered 200");
            assert!(
                is_rfc3339_utc(text(&status["last_fetched_at"])),
                "{name}: last_fetched_at"
            );
            assert!(
                is_rfc3339_utc(text(&status["next_fetch_at"])),
                "{name}: next_fetch_at"
            );
            let (records, chunks) = (
                status["records"].as_u64().unwrap_or(0),
                status["chunks"].as_u64().unwrap_or(0),
            );
            assert!(
                records > 0 && chunks >= records,
                "{name}: records {records}, chunks {chunks}"
            );
        }
        let messenger = dashboard.list(&guide.page, Some("messenger")).await;
        assert_eq!(messenger["channel"], "messenger");
        assert_eq!(
            sorted_field(&messenger["crm_links"], "name"),
            ["HubSpot Contacts", "Shopify Customers"],
            "messenger: Shopify and HubSpot"
        );
        assert_eq!(
            sorted_field(&messenger["crm_links"], "channel"),
            ["messenger", "messenger"],
            "messenger entries only"
        );
        assert_eq!(messenger["total"], 2);
        let facebook = dashboard.list(&guide.page, Some("facebook")).await;
        assert_eq!(
            sorted_field(&facebook["crm_links"], "name"),
            ["HubSpot Contacts", "Internal CRM"],
            "facebook: HubSpot and the custom CRM"
        );
        let instagram = dashboard.list(&guide.page, Some("instagram")).await;
        assert_eq!(
            (instagram["total"].as_u64(), &instagram["crm_links"]),
            (Some(0), &json!([])),
            "nothing on instagram"
        );
    });
}

#[test]
fn all_shows_every_facebook_page_of_the_business_with_its_links_grouped_by_channel() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let dashboard = Dashboard::new(&app, &guide.business);
        let all = dashboard
            .call(Method::Get, &format!("{LINKS}/all"), None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            all["company_id"],
            guide.business.id.as_str(),
            "company_id is the business"
        );
        assert_eq!(all["company_name"], "Acme");
        assert_eq!(all["total_pages"], 2, "both pages, the one without links too");
        assert_eq!(
            (
                all["total_crm_links"].as_u64(),
                all["total_active"].as_u64(),
                all["total_inactive"].as_u64()
            ),
            (Some(4), Some(4), Some(0)),
            "entries over all pages"
        );
        let page_of = |id: &str| {
            all["pages_data"]
                .as_array()
                .and_then(|pages| pages.iter().find(|page| page["page_id"] == id).cloned())
                .unwrap_or_else(|| panic!("page {id} is not listed: {all}"))
        };
        let ours = page_of(&guide.page);
        assert_eq!(
            sorted_field(&ours["facebook_crm_links"], "name"),
            ["HubSpot Contacts", "Internal CRM"],
            "facebook group"
        );
        assert_eq!(
            sorted_field(&ours["messenger_crm_links"], "name"),
            ["HubSpot Contacts", "Shopify Customers"],
            "messenger group"
        );
        for group in ["instagram_crm_links", "whatsapp_crm_links", "legacy_crm_links"] {
            assert_eq!(ours[group], json!([]), "{group}");
        }
        assert_eq!(
            (ours["total_active"].as_u64(), ours["total_inactive"].as_u64()),
            (Some(4), Some(0))
        );
        let empty = page_of(&guide.empty_page);
        assert_eq!(
            (
                &empty["facebook_crm_links"],
                &empty["messenger_crm_links"],
                empty["total_active"].as_u64(),
                empty["total_inactive"].as_u64()
            ),
            (&json!([]), &json!([]), Some(0), Some(0)),
            "the page without links is listed, empty"
        );
    });
}

#[test]
fn search_finds_the_guides_john_doe_in_the_guides_processed_text_format() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let dashboard = Dashboard::new(&app, &guide.business);
        let page = guide.page.as_str();
        let found = dashboard
            .search(&[
                ("page_id", page),
                ("channel", "facebook"),
                ("q", "John Doe"),
                ("mode", "keyword"),
            ])
            .await;
        assert_eq!(
            (
                found["query"].as_str(),
                found["page_id"].as_str(),
                found["channel"].as_str(),
                found["mode"].as_str()
            ),
            (Some("John Doe"), Some(page), Some("facebook"), Some("keyword"))
        );
        assert_eq!(found["embedder"], super::EMBEDDER_ID);
        assert_eq!(
            found["count"].as_u64(),
            found["results"].as_array().map(|results| results.len() as u64)
        );
        let top = &found["results"][0];
        assert_eq!(
            top["text"],
            guide_john_doe(0),
            "the guide's five lines for John Doe, the custom CRM's first record"
        );
        assert_eq!(
            (top["record"].as_str(), top["part"].as_u64()),
            (Some("customers[0]"), Some(0))
        );
        assert!(top["score"].is_number());
        assert_eq!(
            top["link"],
            json!({ "id": guide.link("custom")["id"], "name": "Internal CRM", "url": guide.url("custom"), "type": "api" }),
            "the result names its link"
        );
        let semantic = dashboard
            .search(&[
                ("page_id", page),
                ("channel", "facebook"),
                ("q", "What plan is John Doe on?"),
            ])
            .await;
        assert_eq!(semantic["mode"], "semantic", "semantic is the default mode");
        assert_eq!(
            semantic["results"][0]["text"],
            guide_john_doe(0),
            "semantic search finds him first too"
        );
        let messenger = dashboard
            .search(&[
                ("page_id", page),
                ("channel", "messenger"),
                ("q", "John Doe"),
                ("top_k", "20"),
                ("mode", "keyword"),
            ])
            .await;
        assert!(
            !messenger["results"].as_array().is_some_and(|results| results
                .iter()
                .any(|result| result["link"]["url"] == guide.url("custom").as_str())),
            "the custom CRM is not linked on messenger: {messenger}"
        );
    });
}

#[test]
fn the_documents_view_counts_records_chunks_and_embeddings_of_each_link() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let view = Dashboard::new(&app, &guide.business).documents(&guide.page).await;
        assert_eq!(
            (view["page_id"].as_str(), view["source"].as_str()),
            (Some(guide.page.as_str()), Some("crm"))
        );
        assert_eq!(view["vector_store"]["store"], "local");
        let documents = view["documents"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            (documents.len(), view["total_documents"].as_u64()),
            (3, Some(3)),
            "one document per linked url"
        );
        let (mut chunks, mut embeddings) = (0, 0);
        for document in &documents {
            let name = &document["link"]["name"];
            assert_eq!(document["state"], "ok", "{name}: state");
            assert!(document["last_error"].is_null(), "{name}: last_error");
            assert_eq!(
                document["embeddings"], document["chunks"],
                "{name}: every chunk embedded"
            );
            let (records, pieces) = (
                document["records"].as_u64().unwrap_or(0),
                document["chunks"].as_u64().unwrap_or(0),
            );
            assert!(
                records > 0 && pieces >= records,
                "{name}: {records} records, {pieces} chunks"
            );
            assert_eq!(document["embedder"], EMBEDDER_ID, "{name}: embedder");
            chunks += pieces;
            embeddings += document["embeddings"].as_u64().unwrap_or(0);
        }
        let named = |name: &str| {
            documents
                .iter()
                .find(|document| document["link"]["name"] == name)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            named("Shopify Customers")["records"],
            Sizes::SMALL.shopify,
            "Shopify: one record per customer"
        );
        assert_eq!(
            named("Internal CRM")["records"],
            Sizes::SMALL.custom,
            "custom: one record per customer"
        );
        assert_eq!(
            sorted(&named("HubSpot Contacts")["channels"]),
            ["facebook", "messenger"],
            "HubSpot channels"
        );
        assert_eq!(
            sorted(&named("HubSpot Contacts")["active_channels"]),
            ["facebook", "messenger"],
            "HubSpot active channels"
        );
        assert_eq!(view["total_chunks"], chunks, "total_chunks");
        assert_eq!(view["total_embeddings"], embeddings, "total_embeddings");
    });
}

#[test]
fn put_status_deactivates_the_channels_given_with_the_guides_answer() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let dashboard = Dashboard::new(&app, &guide.business);
        let url = guide.url("hubspot");
        let answer = dashboard
            .set_active(&guide.page, &url, false, Some(&["facebook"]))
            .await;
        assert_eq!(
            answer,
            json!({ "message": "CRM link status updated successfully", "updated_count": 1, "url": url, "channels": ["facebook"], "is_active": false })
        );
        let facebook = dashboard
            .entry(&guide.page, &url, "facebook")
            .await
            .unwrap_or_default();
        let messenger = dashboard
            .entry(&guide.page, &url, "messenger")
            .await
            .unwrap_or_default();
        assert_eq!(facebook["is_active"], false, "facebook is inactive");
        assert_eq!(messenger["is_active"], true, "messenger stays active");
        let list = dashboard.list(&guide.page, None).await;
        assert_eq!(
            (
                list["total"].as_u64(),
                list["active_count"].as_u64(),
                list["inactive_count"].as_u64()
            ),
            (Some(4), Some(3), Some(1)),
            "the counts"
        );
        let all = dashboard
            .call(Method::Get, &format!("{LINKS}/all"), None)
            .await
            .json();
        assert_eq!(
            (
                all["total_crm_links"].as_u64(),
                all["total_active"].as_u64(),
                all["total_inactive"].as_u64()
            ),
            (Some(4), Some(3), Some(1)),
            "/all counts"
        );
    });
}

#[test]
fn delete_removes_the_link_from_the_channels_given_with_the_guides_answer() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let dashboard = Dashboard::new(&app, &guide.business);
        let url = guide.url("hubspot");
        let body = json!({ "page_id": guide.page, "url": url, "channels": ["facebook", "messenger"] });
        let answer = dashboard
            .call(Method::Delete, LINKS, Some(body.clone()))
            .await
            .expect(200)
            .json();
        assert_eq!(
            answer,
            json!({ "message": "CRM link deleted successfully", "deleted_count": 2, "url": url, "channels": ["facebook", "messenger"] })
        );
        let list = dashboard.list(&guide.page, None).await;
        assert_eq!(
            (
                list["total"].as_u64(),
                list["active_count"].as_u64(),
                list["inactive_count"].as_u64()
            ),
            (Some(2), Some(2), Some(0)),
            "Shopify and the custom CRM are left"
        );
        let all = dashboard
            .call(Method::Get, &format!("{LINKS}/all"), None)
            .await
            .json();
        assert_eq!(all["total_crm_links"], 2, "/all agrees");
        let again = dashboard.call(Method::Delete, LINKS, Some(body)).await;
        assert_eq!(again.status, 404, "deleting it again: {}", again.text());
    });
}

#[test]
fn a_database_link_is_stored_but_never_fetched() {
    test(|app| async move {
        let guide = Guide::added(&app).await;
        app.settle().await;
        let dashboard = Dashboard::new(&app, &guide.business);
        let url = format!("https://{CUSTOM_HOST}/db/customers");
        let added = dashboard
            .add(json!({ "page_id": guide.page, "channels": ["messenger"], "name": "Warehouse DB", "url": url, "type": "database", "is_active": true }))
            .await;
        let link = &added["crm_link"];
        assert_eq!(
            (
                link["type"].as_str(),
                link["fetchable"].as_bool(),
                link["status"]["state"].as_str()
            ),
            (Some("database"), Some(false), Some("not_fetched"))
        );
        app.settle().await;
        app.stack.advance(std::time::Duration::from_secs(2 * 3600));
        app.sweep().await;
        app.settle().await;
        assert!(
            guide.crm.served_at("/db/customers").is_empty(),
            "never called, not even by the schedule"
        );
        let status = dashboard.status(&guide.page, &url, "messenger").await;
        assert_eq!(status["state"], "not_fetched", "still not fetched");
    });
}

/// A credential under a name that does not look like one (Supabase's `apikey`): still masked.
const SECRETS: [&str; 5] = [
    "sk-live-key-7c1e",
    "hdr-apikey-93ab",
    "session=cookie-51f0",
    "cs-secret-0d2e",
    "sb-apikey-66c4",
];

/// A link whose key and every header are credentials, added on two channels and fetched.
async fn secret_link(app: &App) -> (Business, String, String, Crm) {
    let _ = app.embedder();
    let crm = guide_crm(app, Sizes::SMALL);
    crm.require_custom_key(SECRETS[1]);
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    let url = crm.url(CUSTOM_PATH);
    let created = Dashboard::new(app, &business)
        .call(
            Method::Post,
            LINKS,
            Some(json!({
                "page_id": page,
                "channels": ["facebook", "messenger"],
                "name": "Secret CRM",
                "url": url,
                "type": "api",
                "api_key": SECRETS[0],
                "headers": {
                    "X-API-Key": SECRETS[1], "Cookie": SECRETS[2], "X-Client-Secret": SECRETS[3],
                    "X-Client-ID": "facebook-bot", "apikey": SECRETS[4]
                },
                "is_active": true,
                "holds": { "type": "customers", "field": "email", "key": "email" }
            })),
        )
        .await
        .expect(201);
    app.settle().await;
    for secret in SECRETS {
        assert!(!created.text().contains(secret), "POST shows a secret ({secret})");
    }
    (business, page, url, crm)
}

#[test]
fn the_key_and_every_header_value_are_masked_in_every_answer_the_header_names_as_given() {
    test(|app| async move {
        let (business, page, url, _crm) = secret_link(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        let masked = json!({ "X-API-Key": "***", "Cookie": "***", "X-Client-Secret": "***", "X-Client-ID": "***", "apikey": "***" });
        let calls = [
            (
                "GET list",
                Method::Get,
                format!("{LINKS}?{}", query(&[("page_id", &page)])),
                None,
            ),
            (
                "GET list of a channel",
                Method::Get,
                format!(
                    "{LINKS}?{}",
                    query(&[("page_id", &page), ("channel", "messenger")])
                ),
                None,
            ),
            ("GET /all", Method::Get, format!("{LINKS}/all"), None),
            (
                "documents",
                Method::Get,
                format!(
                    "{}?{}",
                    super::DETAILS,
                    query(&[("page_id", &page), ("source", "crm")])
                ),
                None,
            ),
            (
                "search",
                Method::Get,
                format!(
                    "{}?{}",
                    super::SEARCH,
                    query(&[
                        ("page_id", &page),
                        ("channel", "facebook"),
                        ("q", "John Doe"),
                        ("top_k", "20")
                    ])
                ),
                None,
            ),
            (
                "refresh",
                Method::Post,
                format!("{LINKS}/refresh"),
                Some(json!({ "page_id": page, "url": url })),
            ),
            (
                "PUT status",
                Method::Put,
                format!("{LINKS}/status"),
                Some(json!({ "page_id": page, "url": url, "channels": ["facebook"], "is_active": false })),
            ),
        ];
        let mut answers = Vec::new();
        for (what, method, path, body) in calls {
            let answer = dashboard.call(method, &path, body).await;
            assert!(answer.status < 300, "{what}: {} {}", answer.status, answer.text());
            answers.push((what, answer));
        }
        let list = answers[0].1.json();
        let entries = list["crm_links"].as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len(), 2);
        for entry in &entries {
            assert_eq!(
                (&entry["api_key"], &entry["headers"]),
                (&json!("***"), &masked),
                "list ({})",
                entry["channel"]
            );
        }
        let all = answers[2].1.json();
        let page_data = &all["pages_data"][0];
        for group in ["facebook_crm_links", "messenger_crm_links"] {
            for entry in page_data[group].as_array().cloned().unwrap_or_default() {
                assert_eq!(
                    (&entry["api_key"], &entry["headers"]),
                    (&json!("***"), &masked),
                    "/all ({group})"
                );
            }
        }
        for (what, answer) in &answers {
            for secret in SECRETS {
                assert!(
                    !answer.text().contains(secret),
                    "{what}: the answer shows a secret ({secret})"
                );
            }
        }
    });
}

#[test]
fn the_crm_received_the_real_key_as_a_bearer_token_and_the_real_headers() {
    test(|app| async move {
        let (_, _, _, crm) = secret_link(&app).await;
        let requests = crm.served_at(CUSTOM_PATH);
        assert!(!requests.is_empty(), "the CRM was called");
        for request in requests {
            let call = &request.call;
            assert_eq!(
                call.header("authorization"),
                Some(format!("Bearer {}", SECRETS[0]).as_str()),
                "Authorization: Bearer <api_key>"
            );
            assert_eq!(call.header("x-api-key"), Some(SECRETS[1]), "X-API-Key");
            assert_eq!(call.header("cookie"), Some(SECRETS[2]), "Cookie");
            assert_eq!(
                call.header("x-client-secret"),
                Some(SECRETS[3]),
                "X-Client-Secret"
            );
            assert_eq!(call.header("x-client-id"), Some("facebook-bot"), "X-Client-ID");
            assert_eq!(call.header("apikey"), Some(SECRETS[4]), "apikey");
            assert_eq!(request.status, 200, "the CRM accepted them");
        }
    });
}

#[test]
fn a_link_whose_url_carries_a_credential_is_switched_refreshed_and_deleted_by_its_id() {
    // Pipedrive-style: the key is a query parameter, so every view shows `api_token=***`; that
    // shown URL names no link, the link's id does.
    test(|app| async move {
        let _ = app.embedder();
        let crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        let added = dashboard
            .add(json!({
                "page_id": page,
                "channels": ["facebook", "messenger"],
                "name": "Pipedrive",
                "url": format!("{}?api_token=pd-s3cret-77", crm.url(CUSTOM_PATH)),
                "type": "api",
                "headers": { "X-API-Key": CUSTOM_KEY },
                "is_active": true,
                "holds": { "type": "customers", "field": "email", "key": "email" }
            }))
            .await;
        app.settle().await;
        let id = added["crm_link"]["id"].clone();
        let shown = added["crm_link"]["url"].as_str().unwrap_or_default().to_owned();
        assert!(shown.ends_with("?api_token=***"), "{shown}");
        let served = crm.served().len();

        let by_shown_url = dashboard
            .call(
                Method::Put,
                &format!("{LINKS}/status"),
                Some(json!({ "page_id": page, "url": shown, "is_active": false })),
            )
            .await;
        assert_error(&by_shown_url, 404, "not_found", "the masked URL names no link");

        let switched = dashboard
            .call(
                Method::Put,
                &format!("{LINKS}/status"),
                Some(json!({ "page_id": page, "id": id, "channels": ["messenger"], "is_active": false })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            (&switched["updated_count"], switched["url"].as_str()),
            (&json!(1), Some(shown.as_str())),
            "{switched}"
        );
        let messenger = dashboard
            .entry(&page, &shown, "messenger")
            .await
            .unwrap_or_default();
        assert_eq!(messenger["is_active"], false, "{messenger}");
        let facebook = dashboard
            .entry(&page, &shown, "facebook")
            .await
            .unwrap_or_default();
        assert_eq!(
            facebook["is_active"], true,
            "the other channel as it was: {facebook}"
        );

        let refreshed = dashboard
            .call(
                Method::Post,
                &format!("{LINKS}/refresh"),
                Some(json!({ "page_id": page, "id": id })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(refreshed["url"].as_str(), Some(shown.as_str()), "{refreshed}");
        app.settle().await;
        assert!(crm.served().len() > served, "fetched again");

        // The id names the link of its own page only.
        let second = add_page(&app, &business).await;
        let elsewhere = dashboard
            .call(
                Method::Post,
                &format!("{LINKS}/refresh"),
                Some(json!({ "page_id": second, "id": id })),
            )
            .await;
        assert_error(
            &elsewhere,
            404,
            "not_found",
            "the link's id on another page of the business",
        );

        // Another business names the link by its id on its own page, or on this one: 404.
        let other = app.business("Globex").await;
        let their_page = add_page(&app, &other).await;
        let theirs = Dashboard::new(&app, &other);
        for (description, target) in [
            ("on their own page", json!({ "page_id": their_page, "id": id })),
            ("on the owner's page", json!({ "page_id": page, "id": id })),
        ] {
            let answer = theirs.call(Method::Delete, LINKS, Some(target)).await;
            assert_error(&answer, 404, "not_found", description);
        }

        let deleted = dashboard
            .call(Method::Delete, LINKS, Some(json!({ "page_id": page, "id": id })))
            .await
            .expect(200)
            .json();
        assert_eq!(deleted["deleted_count"], 2, "both channels: {deleted}");
        assert_eq!(dashboard.list(&page, None).await["total"], 0, "the link is gone");
    });
}
