//! An inbound WhatsApp message, end to end: Meta delivers it signed to the receiver, it is stored
//! once however often Meta retries, its `message.received` reaches the business's endpoint
//! signed, and the Kustomer connector writes the customer, the conversation and the message on
//! the Kustomer timeline.

use crate::app::{App, test};
use crate::partners::kustomer::Kustomer;
use crate::partners::meta;
use crate::partners::webhook_endpoint::Endpoint;
use edge::runtime::Method;
use serde_json::json;

const PHONE_NUMBER_ID: &str = "106540352242922";
const APP_SECRET: &str = "meta-app-secret";

/// A WhatsApp number of the business, and the path Meta is told to call.
async fn whatsapp_account(app: &App, business_id: &str) -> String {
    let account = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{business_id}/channel-accounts"),
            Some(json!({
                "channel": "whatsapp",
                "provider": "meta",
                "address": PHONE_NUMBER_ID,
                "settings": {},
                "secrets": { "app_secret": APP_SECRET, "verify_token": "verify-me", "access_token": "meta-access" }
            })),
        )
        .await
        .expect(201)
        .json();
    account["webhook_path"].as_str().unwrap_or_default().to_owned()
}

/// Meta's delivery of `notification` to `path`, signed with the app's secret.
async fn deliver(app: &App, path: &str, notification: &serde_json::Value) -> serde_json::Value {
    let body = serde_json::to_vec(notification).unwrap_or_default();
    let signature = meta::signature(APP_SECRET, &body);
    app.request(
        Method::Post,
        path,
        &[
            ("content-type", "application/json"),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
    .await
    .expect(200)
    .json()
}

/// A business with an endpoint for its webhooks, a Kustomer connector and a WhatsApp number.
struct Acme {
    business: crate::app::Business,
    endpoint: Endpoint,
    kustomer: Kustomer,
    /// The path Meta is told to call.
    path: String,
}

async fn acme(app: &App) -> Acme {
    let business = app.business("Acme").await;
    let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
    let created = app
        .api(
            &business.key,
            Method::Post,
            "/api-webhooks",
            Some(json!({ "name": "CRM", "url": endpoint.url() })),
        )
        .await
        .expect(201)
        .json();
    endpoint.knows_secret(created["secret"].as_str().unwrap_or_default());
    let kustomer = Kustomer::install(&app.stack, "acme", "kustomer-api-key");
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/connectors", business.id),
        Some(json!({
            "kind": "kustomer",
            "settings": { "subdomain": "acme" },
            "secrets": { "api_key": "kustomer-api-key" },
            "rate_limit": { "per_minute": null, "per_second": null, "per_day": null }
        })),
    )
    .await
    .expect(201);
    let path = whatsapp_account(app, &business.id).await;
    Acme {
        business,
        endpoint,
        kustomer,
        path,
    }
}

#[test]
fn a_signed_whatsapp_message_is_stored_once_delivered_signed_and_written_to_kustomer() {
    test(|app| async move {
        let Acme {
            business,
            endpoint,
            kustomer,
            path,
        } = acme(&app).await;

        let notification = meta::whatsapp_text(
            PHONE_NUMBER_ID,
            "353871234567",
            "Ada Lovelace",
            "wamid.first",
            "Where is my order?",
        );
        let stored = deliver(&app, &path, &notification).await;
        assert_eq!(stored["stored"], 1, "{stored}");
        let retried = deliver(&app, &path, &notification).await;
        assert_eq!(
            (retried["stored"].as_u64(), retried["duplicates"].as_u64()),
            (Some(0), Some(1)),
            "{retried}"
        );
        app.settle().await;

        let messages = app
            .api(
                &business.key,
                Method::Get,
                "/api-messages-since?since=1970-01-01T00:00:00Z",
                None,
            )
            .await
            .expect(200)
            .json();
        let messages = messages["messages"].as_array().cloned().unwrap_or_default();
        assert_eq!(messages.len(), 1, "stored once: {messages:?}");
        assert_eq!(messages[0]["content"], "Where is my order?");

        let received = endpoint.of_event("message.received");
        assert_eq!(received.len(), 1, "delivered once: {:?}", endpoint.deliveries());
        assert!(
            received[0].signed,
            "both signatures verify: {:?}",
            received[0].call.headers
        );
        let data = &received[0].body["data"];
        assert_eq!(data["message"]["content"], "Where is my order?", "{data}");
        assert_eq!(data["message"]["channel"], "whatsapp", "{data}");
        assert_eq!(received[0].body["business_id"], business.id.as_str());

        let customers = kustomer.customers();
        assert_eq!(customers.len(), 1, "one Kustomer customer: {customers:?}");
        let phones = customers[0]["attributes"].to_string();
        assert!(
            phones.contains("+353871234567"),
            "the customer's number is in Kustomer: {phones}"
        );
        let conversations = kustomer.conversations();
        assert_eq!(conversations.len(), 1, "one conversation: {conversations:?}");
        let timeline = kustomer.messages(conversations[0]["id"].as_str().unwrap_or_default());
        assert_eq!(
            timeline.len(),
            1,
            "the message on the timeline once: {timeline:?}"
        );
        let message = &timeline[0]["attributes"];
        assert_eq!(
            (message["direction"].as_str(), message["channel"].as_str()),
            (Some("in"), Some("whatsapp")),
            "{message}"
        );
        assert_eq!(message["preview"], "Where is my order?", "{message}");
    });
}

#[test]
fn a_customer_back_after_the_businesss_quiet_window_gets_a_new_conversation_in_kustomer_and_at_the_endpoint()
{
    test(|app| async move {
        let Acme {
            business,
            endpoint,
            kustomer,
            path,
        } = acme(&app).await;

        let shown = app
            .api(&business.key, Method::Get, "/api-business", None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            shown["new_conversation_after_hours"], 96,
            "four days unless set: {shown}"
        );
        for (bad, why) in [
            (json!(-1), "negative"),
            (json!(8761), "over a year"),
            (json!("24"), "text"),
            (json!(1.5), "a fraction"),
        ] {
            let refused = app
                .api(
                    &business.key,
                    Method::Patch,
                    "/api-business",
                    Some(json!({ "new_conversation_after_hours": bad })),
                )
                .await;
            assert_eq!(refused.status, 422, "{why}: {}", refused.text());
            assert!(
                refused.text().contains("new_conversation_after_hours"),
                "{why}: the field is named: {}",
                refused.text()
            );
        }
        let set = app
            .api(
                &business.key,
                Method::Patch,
                "/api-business",
                Some(json!({ "new_conversation_after_hours": 24 })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(set["new_conversation_after_hours"], 24, "{set}");

        let first = meta::whatsapp_text(
            PHONE_NUMBER_ID,
            "353871234567",
            "Ada Lovelace",
            "wamid.first",
            "Where is my order?",
        );
        deliver(&app, &path, &first).await;
        app.settle().await;
        let opened = endpoint.of_event("conversation.created");
        assert_eq!(opened.len(), 1, "{:?}", endpoint.deliveries());
        let first_id = opened[0].body["data"]["conversation"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        app.api(
            &business.key,
            Method::Patch,
            &format!("/api-conversations/{first_id}"),
            Some(json!({ "status": "resolved" })),
        )
        .await
        .expect(200);
        app.settle().await;

        app.stack.advance(std::time::Duration::from_secs(25 * 3600));
        let back = meta::whatsapp_text(
            PHONE_NUMBER_ID,
            "353871234567",
            "Ada Lovelace",
            "wamid.back",
            "A new order, a new question",
        );
        deliver(&app, &path, &back).await;
        app.settle().await;

        let opened = endpoint.of_event("conversation.created");
        assert_eq!(
            opened.len(),
            2,
            "the return opens a conversation: {:?}",
            endpoint.deliveries()
        );
        let second_id = opened[1].body["data"]["conversation"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_ne!(
            second_id, first_id,
            "a new conversation, not the old one reopened"
        );
        assert!(
            endpoint
                .of_event("conversation.status_changed")
                .iter()
                .all(|event| event.body["data"]["conversation"]["status"] != "open"),
            "nothing was reopened: {:?}",
            endpoint.deliveries()
        );
        let received = endpoint.of_event("message.received");
        assert_eq!(
            received
                .last()
                .map(|event| event.body["data"]["conversation_id"].clone()),
            Some(json!(second_id))
        );

        let listed = app
            .api(
                &business.key,
                Method::Get,
                &format!(
                    "/api-conversations-by-customer?customer_id={}",
                    received[0].body["data"]["customer_id"]
                        .as_str()
                        .unwrap_or_default()
                ),
                None,
            )
            .await
            .expect(200)
            .json();
        let statuses: Vec<_> = listed["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|conversation| (conversation["id"].clone(), conversation["status"].clone()))
            .collect();
        assert_eq!(
            statuses.len(),
            2,
            "both conversations are the customer's: {listed}"
        );
        assert!(
            statuses.contains(&(json!(first_id), json!("resolved"))),
            "{listed}"
        );
        assert!(statuses.contains(&(json!(second_id), json!("open"))), "{listed}");

        let conversations = kustomer.conversations();
        assert_eq!(
            conversations.len(),
            2,
            "Kustomer has a conversation for each: {conversations:?}"
        );
        let latest = kustomer.messages(conversations[1]["id"].as_str().unwrap_or_default());
        assert_eq!(
            latest.len(),
            1,
            "the return is on the new one's timeline: {latest:?}"
        );
        assert_eq!(latest[0]["attributes"]["preview"], "A new order, a new question");
    });
}
