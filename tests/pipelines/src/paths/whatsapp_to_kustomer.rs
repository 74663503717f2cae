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

#[test]
fn a_signed_whatsapp_message_is_stored_once_delivered_signed_and_written_to_kustomer() {
    test(|app| async move {
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
        let path = whatsapp_account(&app, &business.id).await;

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
