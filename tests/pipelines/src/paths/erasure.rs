//! A customer erased on request: nothing of them is left in any table, file or index, each
//! connected CRM deletes their contact (Kustomer and Krayin delete it, HubSpot deletes it for good
//! under the GDPR), the tombstone names no one, a later message from the same number is a new
//! customer's, a customers link's next fetch leaves their record out, and a customer with
//! 100,000 messages is erased in steps that each stay within one invocation's limits.

use super::crm_links::{Dashboard, add_page, guide_crm, shopify_example};
use super::krayin::{Connect, connector_body};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::Sizes;
use crate::partners::hubspot::HubSpot;
use crate::partners::krayin::Krayin;
use crate::partners::media_host::MediaHost;
use crate::steps::channels::{WhatsApp, receive_whatsapp, receive_whatsapp_image, whatsapp_account};
use crate::steps::crms::kustomer::{SETTLE_HORIZON, connected_business};
use crate::steps::crms::no_budget;
use crate::steps::store::{execute, select, select_values};
use crate::steps::{text, unique, unique_phone};
use domain::bot::subject::{KeyKind, token};
use edge::runtime::Method;
use serde_json::{Value, json};

/// The customer whose phone is `phone`, by id.
async fn customer_by_phone(app: &App, business: &Business, phone: &str) -> String {
    let found = app
        .api(
            &business.key,
            Method::Get,
            &format!("/api-customers?phone={}", phone.replace('+', "%2B")),
            None,
        )
        .await
        .expect(200)
        .json();
    text(&found["id"]).to_owned()
}

/// Asks for the customer's erasure with the business's key.
async fn erase(app: &App, business: &Business, customer: &str) -> (u16, Value) {
    let answer = app
        .api(
            &business.key,
            Method::Delete,
            &format!("/api-customers/{customer}"),
            None,
        )
        .await;
    (answer.status, answer.json())
}

/// Every row of every table of the store, as text, that holds `needle`: what a leak looks like.
fn rows_holding(app: &App, needle: &str) -> Vec<String> {
    let tables = select_values(
        app,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE 'knowledge_fts%' AND name NOT LIKE '_cf_%'",
        &[],
    );
    let mut found = Vec::new();
    for table in tables {
        let name = table[0].as_str().unwrap_or_default().to_owned();
        for row in select(app, &format!("SELECT * FROM \"{name}\""), &[]) {
            let row = Value::Object(row).to_string();
            if row.contains(needle) {
                found.push(format!("{name}: {row}"));
            }
        }
    }
    found
}

/// Connects a HubSpot account of its own to the business too.
async fn connect_hubspot(app: &App, business: &Business) -> HubSpot {
    let token = unique("pat-na1-");
    let hubspot = HubSpot::install(&app.stack, &token);
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/connectors", business.id),
        Some(json!({
            "kind": "hubspot",
            "settings": {},
            "secrets": { "access_token": token },
            "rate_limit": no_budget(),
        })),
    )
    .await
    .expect(201);
    hubspot
}

#[test]
fn an_erased_customer_leaves_nothing_here_and_each_crm_deletes_their_contact() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let business = &setup.business;
        let hubspot = connect_hubspot(&app, business).await;
        let krayin = Krayin::install(&app.stack, "crm.krayin.example");
        app.admin(
            Method::Post,
            &format!("/admin/businesses/{}/connectors", business.id),
            Some(connector_body(&krayin, &Connect::default())),
        )
        .await
        .expect(201);
        let media = MediaHost::install(&app.stack, "media.meta.test");
        media.serve_png();
        let whatsapp: WhatsApp = whatsapp_account(&app, &business.id, Some(&media.api_base_url())).await;
        let (ann, bob) = (unique_phone(), unique_phone());
        receive_whatsapp(&app, &whatsapp, &ann, "my order number is zq4471").await;
        receive_whatsapp_image(&app, &whatsapp, &ann, "the receipt", "media-1").await;
        receive_whatsapp(&app, &whatsapp, &bob, "hello from bob").await;
        app.settle_within(SETTLE_HORIZON).await;
        let ann_id = customer_by_phone(&app, business, &ann).await;
        let ann_digits = ann.trim_start_matches('+');
        assert!(
            !rows_holding(&app, ann_digits).is_empty(),
            "her number is stored before"
        );
        assert_eq!(
            setup.kustomer.customers().len(),
            2,
            "both customers are in Kustomer"
        );
        assert_eq!(hubspot.contacts().len(), 2, "and in HubSpot");
        assert_eq!(krayin.persons().len(), 2, "and in Krayin");
        let attachments = app.stack.r2_keys("ATTACHMENTS");
        assert_eq!(attachments.len(), 1, "her image is stored: {attachments:?}");

        let (status, erased) = erase(&app, business, &ann_id).await;
        assert_eq!(
            status, 200,
            "a customer of three messages is erased at once: {erased}"
        );
        assert_eq!(erased["status"], "erased");
        assert_eq!(erased["customer_id"], ann_id.as_str());
        assert_eq!(
            erased["deleted"],
            json!({ "messages": 2, "conversations": 1, "attachments": 1, "knowledge_pieces": 0 }),
            "{erased}"
        );
        assert!(text(&erased["requested_by"]).starts_with("key:"), "{erased}");
        let crm = erased["crm"].as_array().cloned().unwrap_or_default();
        let mut actions: Vec<(&str, &str)> = crm
            .iter()
            .map(|part| (text(&part["crm"]), text(&part["action"])))
            .collect();
        actions.sort();
        assert_eq!(
            actions,
            [
                ("hubspot", "gdpr_delete"),
                ("krayin", "delete"),
                ("kustomer", "delete")
            ],
            "{erased}"
        );
        assert!(
            crm.iter().all(|part| part["status"] == "pending"),
            "not done yet: {erased}"
        );

        assert_eq!(
            rows_holding(&app, ann_digits),
            Vec::<String>::new(),
            "no row holds her number"
        );
        // Her words, by a token no generated id can hold (ids are hex and digits).
        assert!(
            rows_holding(&app, "zq4471").is_empty(),
            "nor her words: {:#?}",
            rows_holding(&app, "zq4471")
        );
        let kept = [
            "customer_erasures",
            "crm_sync_jobs",
            "crm_contacts",
            "webhook_events",
            "audit_log",
        ];
        let holding_id: Vec<String> = rows_holding(&app, &ann_id)
            .into_iter()
            .filter(|row| !kept.iter().any(|table| row.starts_with(&format!("{table}: "))))
            .collect();
        assert!(
            holding_id.is_empty(),
            "her id is left in the tombstone, its CRM work and event, and the audit log only: {holding_id:#?}"
        );
        assert!(app.stack.r2_keys("ATTACHMENTS").is_empty(), "her file is deleted");
        for lookup in [
            format!("id={ann_id}"),
            format!("phone={}", ann.replace('+', "%2B")),
        ] {
            app.api(
                &business.key,
                Method::Get,
                &format!("/api-customers?{lookup}"),
                None,
            )
            .await
            .expect(404);
        }
        let events = select(
            &app,
            "SELECT type, snapshot FROM webhook_events WHERE subject_id = ?1",
            &[&ann_id],
        );
        assert_eq!(
            events.len(),
            1,
            "only the erasure's event is about her: {events:#?}"
        );
        assert_eq!(events[0]["type"], "customer.erased");
        let snapshot: Value =
            serde_json::from_str(events[0]["snapshot"].as_str().unwrap_or("null")).unwrap_or_default();
        assert_eq!(snapshot["erasure"]["customer_id"], ann_id.as_str(), "{snapshot}");
        assert_eq!(snapshot["erasure"]["deleted"]["messages"], 2, "{snapshot}");

        app.settle_within(SETTLE_HORIZON).await;
        let left: Vec<Value> = setup.kustomer.customers();
        assert_eq!(left.len(), 1, "Kustomer deleted her: {left:#?}");
        assert_eq!(hubspot.gdpr_deleted().len(), 1, "HubSpot deleted her for good");
        assert_eq!(hubspot.contacts().len(), 1, "Bob's contact stays");
        assert_eq!(krayin.persons().len(), 1, "Krayin deleted her person");
        let (status, again) = erase(&app, business, &ann_id).await;
        assert_eq!(status, 200, "asked again, it says where it stands: {again}");
        assert!(
            again["crm"]
                .as_array()
                .is_some_and(|parts| parts.iter().all(|part| part["status"] == "succeeded")),
            "each CRM's part succeeded: {again}"
        );
        let audit = select(
            &app,
            "SELECT actor FROM audit_log WHERE business_id = ?1 AND action = 'customer.erased'",
            &[&business.id],
        );
        assert_eq!(audit.len(), 1, "the audit log says who asked, once: {audit:#?}");
        assert_eq!(
            audit[0]["actor"],
            format!("key:{}", domain::api_key::accepted_prefix(&business.key)),
            "{audit:#?}"
        );

        receive_whatsapp(&app, &whatsapp, &ann, "my order number is zq4471").await;
        let again = customer_by_phone(&app, business, &ann).await;
        let theirs = select(
            &app,
            "SELECT content FROM messages WHERE customer_id = ?1",
            &[&again],
        );
        assert_eq!(
            theirs.len(),
            1,
            "a message from her number afterwards is a new customer's (its id derived from the number, as before), \
             with none of the old: {theirs:#?}"
        );
        let (status, anew) = erase(&app, business, &again).await;
        assert_eq!(status, 200, "and that customer is erased anew: {anew}");
        assert_eq!(anew["deleted"]["messages"], 1, "{anew}");
        app.api(
            &business.key,
            Method::Get,
            &format!("/api-customers?id={again}"),
            None,
        )
        .await
        .expect(404);
        let bob_id = customer_by_phone(&app, business, &bob).await;
        let bobs = select(&app, "SELECT id FROM messages WHERE customer_id = ?1", &[&bob_id]);
        assert_eq!(bobs.len(), 1, "Bob's message is untouched");
    });
}

#[test]
fn an_unknown_customer_is_404_and_another_business_cannot_erase_one() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let globex = app.business("Globex").await;
        let whatsapp = whatsapp_account(&app, &acme.id, None).await;
        let ann = unique_phone();
        receive_whatsapp(&app, &whatsapp, &ann, "hello").await;
        let ann_id = customer_by_phone(&app, &acme, &ann).await;
        let (status, body) = erase(&app, &globex, &ann_id).await;
        assert_eq!(status, 404, "another business's customer is not found: {body}");
        let (status, _) = erase(&app, &acme, "not-a-uuid").await;
        assert_eq!(status, 404, "a path that names no customer");
        let missing = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";
        let (status, _) = erase(&app, &acme, missing).await;
        assert_eq!(status, 404);
        customer_by_phone(&app, &acme, &ann).await;
        let operator = app
            .admin(
                Method::Delete,
                &format!("/admin/businesses/{}/customers/{ann_id}", acme.id),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(operator["requested_by"], "admin", "{operator}");
        app.api(
            &acme.key,
            Method::Get,
            &format!("/api-customers?id={ann_id}"),
            None,
        )
        .await
        .expect(404);
    });
}

#[test]
fn a_customer_with_a_hundred_thousand_messages_is_erased_in_steps_each_within_an_invocations_limits() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let whatsapp = whatsapp_account(&app, &business.id, None).await;
        let ann = unique_phone();
        receive_whatsapp(&app, &whatsapp, &ann, "the first of many").await;
        let ann_id = customer_by_phone(&app, &business, &ann).await;
        let added = execute(
            &app,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) \
             INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             created_us, updated_at) \
             SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' \
             || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), m.business_id, m.conversation_id, m.customer_id, m.channel, 'inbound', \
             'message ' || n.i, 'received', m.created_us + n.i, m.updated_at \
             FROM n, (SELECT * FROM messages WHERE customer_id = ?1) m",
            &[&ann_id],
        );
        assert_eq!(added, 99_999);

        let (status, erasing) = erase(&app, &business, &ann_id).await;
        assert_eq!(status, 202, "more than one invocation's share: {erasing}");
        let first = erasing["deleted"]["messages"].as_u64().unwrap_or_default();
        assert!(
            first > 0 && first < 100_000,
            "the request took its share: {erasing}"
        );
        app.api(
            &business.key,
            Method::Get,
            &format!("/api-customers?id={ann_id}"),
            None,
        )
        .await
        .expect(200);
        app.api(
            &business.key,
            Method::Get,
            &format!("/api-customers?phone={}", ann.replace('+', "%2B")),
            None,
        )
        .await
        .expect(404);

        let mut sweeps = 0;
        while select(&app, "SELECT 1 FROM customers WHERE id = ?1", &[&ann_id]).len() == 1 {
            assert!(sweeps < 20, "the sweep goes on with it, a share each run");
            app.sweep().await;
            sweeps += 1;
        }
        assert!(sweeps >= 2, "it took several invocations: {sweeps}");
        let (status, erased) = erase(&app, &business, &ann_id).await;
        assert_eq!(status, 200, "{erased}");
        assert_eq!(erased["deleted"]["messages"], 100_000, "{erased}");
        assert!(
            select(
                &app,
                "SELECT 1 FROM messages WHERE business_id = ?1",
                &[&business.id]
            )
            .is_empty(),
            "none of her messages is left"
        );
    });
}

#[test]
fn a_customers_link_record_of_an_erased_customer_is_deleted_with_its_vector_and_not_indexed_again() {
    test(|app| async move {
        let embedder = app.embedder();
        let _crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        dashboard.add(shopify_example(&page)).await;
        app.settle().await;
        let email = "priya.nair@mailbox.example";
        let subject = token(KeyKind::Email.subject(email, None).as_deref());
        let pieces = |app: &App| {
            select(
                app,
                "SELECT id FROM knowledge_chunks WHERE subject = ?1",
                &[&subject],
            )
            .len()
        };
        let held = pieces(&app);
        assert!(held > 0, "her record is indexed");
        let vectors = embedder.vectors();
        let synced = app
            .api(
                &business.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [{ "name": "Priya", "email": email }] })),
            )
            .await
            .expect(200)
            .json();
        let priya = text(&synced["results"]["details"][0]["customer_id"]).to_owned();

        let (status, erased) = erase(&app, &business, &priya).await;
        assert_eq!(status, 200, "{erased}");
        assert_eq!(erased["deleted"]["knowledge_pieces"], held, "{erased}");
        assert_eq!(pieces(&app), 0, "her pieces are deleted");
        assert_eq!(embedder.vectors(), vectors - held, "with their vectors");
        let found = select(
            &app,
            "SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH 'priya'",
            &[],
        );
        assert!(found.is_empty(), "and from the full-text index: {found:?}");

        let url = text(&shopify_example(&page)["url"]).to_owned();
        dashboard
            .call(
                Method::Post,
                "/api/dashboard/crm-links/refresh",
                Some(json!({ "page_id": page, "url": url })),
            )
            .await
            .expect(202);
        app.settle().await;
        assert_eq!(pieces(&app), 0, "the link's next fetch leaves her record out");
        assert!(
            !select(
                &app,
                "SELECT 1 FROM knowledge_chunks WHERE business_id = ?1",
                &[&business.id]
            )
            .is_empty(),
            "the other customers' records are indexed again"
        );
    });
}
