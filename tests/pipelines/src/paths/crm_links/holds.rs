//! Whose data a link is, and changing a link in place: the guide's customer links added as the
//! guide writes them are refused (422 naming `holds`, with the field their records name customers
//! by); added with `holds`, the bot answers each customer from their own record only; a link whose
//! `holds` was never said is nobody's knowledge until a fetch has seen it name no customer, and
//! one whose pushed records name customers is listed for the business to confirm; a link's key,
//! interval and `holds` change without deleting it, and a change of `holds` embeds nothing again.

use super::{
    Dashboard, LINKS, add_page, custom_example, guide_crm, hubspot_example, shopify_example,
    standard_webhook_headers, with,
};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{CUSTOM_KEY, CUSTOM_PATH, SHOPIFY_PATH, Sizes};
use crate::steps::api::assert_error;
use edge::runtime::Method;
use serde_json::{Value, json};

/// `body` without its `holds`: as the guide writes it.
fn as_written(mut body: Value) -> Value {
    if let Some(body) = body.as_object_mut() {
        body.remove("holds");
    }
    body
}

#[test]
fn the_guides_customer_links_as_written_are_refused_naming_holds_and_the_field_found() {
    test(|app| async move {
        let _ = app.embedder();
        let crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        for (example, field) in [
            (shopify_example(&page), "email"),
            (hubspot_example(&page), "properties.email"),
            (custom_example(&page), "email"),
        ] {
            let refused = dashboard
                .call(Method::Post, LINKS, Some(as_written(example.clone())))
                .await;
            assert_error(
                &refused,
                422,
                "validation_failed",
                "a customer link without holds",
            );
            let error = &refused.json()["error"];
            assert_eq!(error["field"], "holds", "{error}");
            let proposed = format!("{{\"field\":\"{field}\",\"key\":\"email\",\"type\":\"customers\"}}");
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|message| message.contains(&proposed)),
                "the holds to say, with the field found: {error}"
            );
            dashboard.add(example).await;
        }
        let listed = dashboard.list(&page, None).await;
        assert_eq!(listed["total"], 4, "each added once, with its holds: {listed}");
        assert!(crm.served().len() >= 3, "the refusals read the CRM's first page");
    });
}

/// A business with the guide's Shopify and HubSpot links on Messenger (with their holds), its
/// customers known by the emails their records carry, and its Messenger bot on.
async fn shop_with_customers(app: &App) -> (Business, String, Vec<(String, &'static str)>) {
    let _ = app.embedder();
    let _crm = guide_crm(app, Sizes::SMALL);
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    let dashboard = Dashboard::new(app, &business);
    dashboard.add(shopify_example(&page)).await;
    dashboard
        .add(with(hubspot_example(&page), json!({ "channels": ["messenger"] })))
        .await;
    app.settle().await;
    let emails = [
        "priya.nair@mailbox.example",
        "declan.byrne@mailbox.example",
        "sofia.marquez@brightline.example",
        "oluwaseun@kestrel-analytics.example",
    ];
    let customers: Vec<Value> = emails
        .iter()
        .map(|email| json!({ "name": email.split('@').next(), "email": email }))
        .collect();
    let synced = app
        .api(
            &business.key,
            Method::Post,
            "/api-customers-sync",
            Some(json!({ "customers": customers })),
        )
        .await
        .expect(200)
        .json();
    let ids = synced["results"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(emails)
        .map(|(detail, email)| {
            (
                detail["customer_id"].as_str().unwrap_or_default().to_owned(),
                email,
            )
        })
        .collect();
    app.api(
        &business.key,
        Method::Put,
        "/api/dashboard/bots",
        Some(json!({ "page_id": page, "channel": "messenger", "settings": { "enabled": true, "min_score": 0.01 } })),
    )
    .await
    .expect(200);
    (business, page, ids)
}

#[test]
fn added_with_holds_the_guides_links_answer_each_customer_from_their_own_record_only() {
    test(|app| async move {
        let (business, page, customers) = shop_with_customers(&app).await;
        // Each customer's own value, and the others'.
        let questions = [
            ("How much have I spent in total?", ["1899.50", "240.00"]),
            ("How much have I spent in total?", ["240.00", "1899.50"]),
            ("What is my support plan?", ["Enterprise", "Standard"]),
            ("What is my support plan?", ["Standard", "Enterprise"]),
        ];
        for ((id, email), (question, [own, other])) in customers.iter().zip(questions) {
            let turn = app
                .api(
                    &business.key,
                    Method::Post,
                    "/api/dashboard/bots/try",
                    Some(json!({ "page_id": page, "channel": "messenger", "question": question, "customer_id": id })),
                )
                .await
                .expect(200)
                .json();
            let text = turn["text"].as_str().unwrap_or_default();
            assert_eq!(turn["action"], "reply", "{email}: {turn}");
            assert!(
                text.contains(own),
                "{email} is answered from their own record: {turn}"
            );
            assert!(!text.contains(other), "{email} gets nothing of another's: {turn}");
            let personal: Vec<&Value> = turn["pieces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|piece| piece["kind"] == "personal")
                .collect();
            assert!(!personal.is_empty(), "{turn}");
        }
    });
}

#[test]
fn a_link_whose_holds_was_never_said_is_nobodys_knowledge_until_a_fetch_sees_it_names_no_one() {
    test(|app| async move {
        let _ = app.embedder();
        let crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        // A webhook link's data is pushed: nothing can be read of it when it is added.
        let added = dashboard
            .add(json!({
                "page_id": page, "channels": ["messenger"], "name": "Pushed customers", "type": "webhook",
                "url": crm.url(CUSTOM_PATH), "is_active": true,
            }))
            .await;
        let link = &added["crm_link"];
        assert_eq!(link["holds"], json!({ "type": "unstated" }), "{link}");
        assert_eq!(
            link["status"]["holds_check"],
            json!({ "state": "unchecked" }),
            "{link}"
        );
        let secret = link["webhook_secret"].as_str().unwrap_or_default().to_owned();
        let path = link["webhook_url"]
            .as_str()
            .and_then(|url| url.find("/webhooks/").map(|at| url[at..].to_owned()))
            .unwrap_or_default();
        let body = json!({ "customers": [
            { "id": "c-1", "name": "Ann Byrne", "email": "ann.byrne@mail.example", "plan": "Gold" },
            { "id": "c-2", "name": "Bo Lee", "email": "bo.lee@mail.example", "plan": "Silver" },
        ]})
        .to_string();
        let headers = standard_webhook_headers(&secret, &body, "push-1", super::now_seconds(&app));
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        app.request(Method::Post, &path, &headers, body.into_bytes())
            .await
            .expect(202);
        app.settle().await;
        let listed = dashboard.list(&page, Some("messenger")).await;
        let status = &listed["crm_links"][0]["status"];
        assert_eq!(
            status["holds_check"],
            json!({ "state": "names_customers",
                    "proposed": { "type": "customers", "field": "email", "key": "email" } }),
            "listed for the business to confirm: {status}"
        );
        app.api(
            &business.key,
            Method::Put,
            "/api/dashboard/bots",
            Some(json!({ "page_id": page, "channel": "messenger", "settings": { "enabled": true, "min_score": 0.01 } })),
        )
        .await
        .expect(200);
        let ask = |question: &'static str| {
            let (app, business, page) = (&app, &business, &page);
            async move {
                app.api(
                    &business.key,
                    Method::Post,
                    "/api/dashboard/bots/try",
                    Some(json!({ "page_id": page, "channel": "messenger", "question": question })),
                )
                .await
                .expect(200)
                .json()
            }
        };
        let turn = ask("What plan is Ann Byrne on?").await;
        assert_eq!(turn["pieces"], json!([]), "nobody's knowledge: {turn}");
        assert_eq!(turn["action"], "handoff", "{turn}");
        // The business says whose the data is: each record is its customer's, and a customer with
        // no record is given none of it.
        let id = listed["crm_links"][0]["id"].clone();
        let changed = dashboard
            .call(
                Method::Patch,
                LINKS,
                Some(json!({ "page_id": page, "id": id, "holds": { "type": "customers", "field": "email", "key": "email" } })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(changed["changed"], json!(["holds"]), "{changed}");
        app.settle().await;
        let turn = ask("What plan is Ann Byrne on?").await;
        assert_eq!(
            turn["pieces"],
            json!([]),
            "no record of the asker's, and no general knowledge: {turn}"
        );
        let listed = dashboard.list(&page, Some("messenger")).await;
        assert!(
            listed["crm_links"][0]["status"].get("holds_check").is_none(),
            "said: {listed}"
        );
    });
}

#[test]
fn general_data_whose_holds_was_never_said_is_general_knowledge_once_a_fetch_has_read_it() {
    test(|app| async move {
        let _ = app.embedder();
        app.stack.partner("kb.example.com", |_| {
            crate::partners::json_reply(
                200,
                &json!({ "plans": [{ "name": "Gold", "price": "30 EUR" }, { "name": "Silver", "price": "15 EUR" }] }),
            )
        });
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        let added = dashboard
            .add(json!({
                "page_id": page, "channels": ["messenger"], "name": "Plans", "type": "api",
                "url": "https://kb.example.com/plans", "is_active": true,
            }))
            .await;
        assert_eq!(added["crm_link"]["status"]["holds_check"]["state"], "unchecked");
        app.settle().await;
        let listed = dashboard.list(&page, Some("messenger")).await;
        assert_eq!(
            listed["crm_links"][0]["status"]["holds_check"],
            json!({ "state": "general" }),
            "{listed}"
        );
        app.api(
            &business.key,
            Method::Put,
            "/api/dashboard/bots",
            Some(json!({ "page_id": page, "channel": "messenger", "settings": { "enabled": true, "min_score": 0.01 } })),
        )
        .await
        .expect(200);
        let turn = app
            .api(
                &business.key,
                Method::Post,
                "/api/dashboard/bots/try",
                Some(json!({ "page_id": page, "channel": "messenger", "question": "What is the price of the Gold plan?" })),
            )
            .await
            .expect(200)
            .json();
        assert!(
            turn["text"].as_str().is_some_and(|text| text.contains("30 EUR")),
            "general knowledge for every asker: {turn}"
        );
    });
}

#[test]
fn a_links_key_interval_and_holds_change_in_place_and_a_change_of_holds_embeds_nothing_again() {
    test(|app| async move {
        let embedder = app.embedder();
        let crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        let added = dashboard
            .add(with(custom_example(&page), json!({ "channels": ["messenger"] })))
            .await;
        app.settle().await;
        let id = added["crm_link"]["id"].clone();
        let embedded = embedder.texts_embedded();
        assert!(embedded > 0);

        // The CRM rotates its key: the link is given the new one, the data read again, unchanged.
        crm.require_custom_key("internal-key-456");
        let patch = |body: Value| {
            let (dashboard, page, id) = (&dashboard, &page, &id);
            async move {
                let mut change = json!({ "page_id": page, "id": id });
                if let (Some(change), Some(body)) = (change.as_object_mut(), body.as_object()) {
                    change.extend(body.clone());
                }
                dashboard
                    .call(Method::Patch, LINKS, Some(change))
                    .await
                    .expect(200)
                    .json()
            }
        };
        let rotated =
            patch(json!({ "headers": { "X-API-Key": "internal-key-456", "X-Client-ID": "***" } })).await;
        assert_eq!(rotated["changed"], json!(["headers"]), "{rotated}");
        assert_eq!(rotated["fetching"], true, "{rotated}");
        app.settle().await;
        let status = dashboard.status(&page, &crm.url(CUSTOM_PATH), "messenger").await;
        assert_eq!(status["state"], "ok", "fetched with the new key: {status}");
        assert_eq!(status["last_embedded"], 0, "nothing embedded again: {status}");
        let last = crm
            .served()
            .into_iter()
            .last()
            .unwrap_or_else(|| panic!("served"));
        assert_eq!(last.status, 200);
        assert_eq!(last.call.header("x-api-key"), Some("internal-key-456"));
        assert_eq!(
            last.call.header("x-client-id"),
            Some("facebook-bot"),
            "a masked value keeps its header's"
        );
        assert_ne!(CUSTOM_KEY, "internal-key-456");

        // Slower after the CRM's 429s: no fetch now, the next one an interval later.
        let slower = patch(json!({ "fetch_interval_minutes": 240 })).await;
        assert_eq!(slower["changed"], json!(["fetch_interval_minutes"]), "{slower}");
        assert_eq!(slower["fetching"], false);
        assert_eq!(slower["crm_links"][0]["fetch_interval_minutes"], 240);

        // Whose data it is: every piece gets its customer, from the store's vectors.
        let before = embedder.texts_embedded();
        let holds =
            patch(json!({ "holds": { "type": "customers", "field": "id", "key": "external_id" } })).await;
        assert_eq!(holds["changed"], json!(["holds"]), "{holds}");
        app.settle().await;
        let status = dashboard.status(&page, &crm.url(CUSTOM_PATH), "messenger").await;
        assert_eq!(status["state"], "ok", "{status}");
        assert_eq!(status["last_embedded"], 0, "re-tagged, not embedded: {status}");
        assert_eq!(embedder.texts_embedded(), before, "no text embedded again");
        assert!(
            status["chunks"].as_i64().is_some_and(|chunks| chunks > 0),
            "{status}"
        );

        // Audited, with what changed and never a value.
        let audit = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}/audit-log", business.id),
                None,
            )
            .await
            .expect(200)
            .text();
        assert!(
            audit.contains("crm_link.updated") && !audit.contains("internal-key-456"),
            "{audit}"
        );

        // A change names its link: another page's, or none, is refused.
        let other = dashboard
            .call(
                Method::Patch,
                LINKS,
                Some(json!({ "page_id": page, "id": "0b1f2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", "name": "x" })),
            )
            .await;
        assert_error(&other, 404, "not_found", "a link the page does not have");
        let unsaid = dashboard
            .call(
                Method::Patch,
                LINKS,
                Some(json!({ "page_id": page, "id": id, "holds": null })),
            )
            .await;
        assert_error(&unsaid, 422, "validation_failed", "holds cannot be unsaid");
    });
}

#[test]
fn the_first_page_of_a_links_data_is_shown_as_fields_for_a_form_to_choose_holds_from() {
    test(|app| async move {
        let _ = app.embedder();
        let crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        let shopify = as_written(shopify_example(&page));
        let mut preview = shopify.clone();
        if let Some(body) = preview.as_object_mut() {
            for name in ["channels", "name", "description", "is_active"] {
                body.remove(name);
            }
        }
        let shown = dashboard
            .call(Method::Post, &format!("{LINKS}/preview"), Some(preview))
            .await
            .expect(200)
            .json();
        assert_eq!(
            shown["proposed"],
            json!({ "type": "customers", "field": "email", "key": "email" }),
            "{shown}"
        );
        assert!(
            shown["records"].as_u64().is_some_and(|records| records > 0),
            "{shown}"
        );
        let email = shown["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|field| field["field"] == "email");
        assert_eq!(
            email.map(|field| field["key"].clone()),
            Some(json!("email")),
            "{shown}"
        );
        let text = shown.to_string();
        assert!(!text.contains("priya.nair"), "fields, never values: {text}");
        // A link already added is read with its own credentials, by its id.
        let added = dashboard.add(shopify_example(&page)).await;
        let by_id = dashboard
            .call(
                Method::Post,
                &format!("{LINKS}/preview"),
                Some(json!({ "page_id": page, "id": added["crm_link"]["id"] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(by_id["proposed"], shown["proposed"]);
        assert!(
            crm.served()
                .iter()
                .any(|served| served.call.path().starts_with(SHOPIFY_PATH))
        );
        // A CRM that refuses is said as 502, with its answer.
        let refused = dashboard
            .call(
                Method::Post,
                &format!("{LINKS}/preview"),
                Some(with(
                    shopify.clone(),
                    json!({ "api_key": "wrong", "headers": { "X-Shopify-Access-Token": "wrong" } }),
                ))
                .map(|mut body| {
                    if let Some(body) = body.as_object_mut() {
                        for name in ["channels", "name", "description", "is_active"] {
                            body.remove(name);
                        }
                    }
                    body
                }),
            )
            .await;
        assert_error(&refused, 502, "crm_failed", "a CRM that refuses the key");
    });
}
