//! The webhook API as the whole paths drive it (the end-to-end suite's `webhook-api.mjs`):
//! registering an endpoint for a scripted receiver, reading its deliveries and the attempt log,
//! and the customers and inbound WhatsApp messages whose changes make events.

use crate::app::{App, Business};
use crate::partners::meta;
use crate::partners::webhook_endpoint::Endpoint;
use crate::steps::{id_of, unique, unique_number};
use edge::runtime::Method;
use serde_json::{Value, json};

/// Every event an endpoint can subscribe to.
pub const EVENTS: [&str; 7] = [
    "message.received",
    "message.sent",
    "conversation.created",
    "conversation.assigned",
    "conversation.status_changed",
    "customer.created",
    "customer.updated",
];

/// Registers an endpoint; checks the 201 and returns the webhook and its secret.
pub async fn create_webhook(app: &App, key: &str, fields: Value) -> (Value, String) {
    let mut body = json!({ "name": "hook" });
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    let created = app
        .api(key, Method::Post, "/api-webhooks", Some(body))
        .await
        .expect(201)
        .json();
    assert!(
        created["webhook"]["id"].is_string(),
        "the webhook has an id: {created}"
    );
    let secret = created["secret"].as_str().unwrap_or_default().to_owned();
    assert!(
        secret.starts_with("whsec_"),
        "the secret is shown once: {created}"
    );
    (created["webhook"].clone(), secret)
}

/// An endpoint of `key`'s business pointed at `endpoint`, which learns its secret.
pub async fn with_endpoint(app: &App, key: &str, endpoint: &Endpoint, fields: Value) -> (Value, String) {
    let mut all = json!({ "url": endpoint.url() });
    if let (Some(all), Some(fields)) = (all.as_object_mut(), fields.as_object()) {
        all.extend(fields.clone());
    }
    let (webhook, secret) = create_webhook(app, key, all).await;
    endpoint.knows_secret(&secret);
    (webhook, secret)
}

pub async fn get_webhook(app: &App, key: &str, id: &str) -> Value {
    app.api(key, Method::Get, &format!("/api-webhooks/{id}"), None)
        .await
        .expect(200)
        .json()["webhook"]
        .clone()
}

/// The deliveries of an endpoint, newest first (`query`: more parameters, `status=dead`).
pub async fn deliveries_of(app: &App, key: &str, webhook_id: &str, query: &str) -> Vec<Value> {
    let extra = if query.is_empty() {
        String::new()
    } else {
        format!("&{query}")
    };
    let listed = app
        .api(
            key,
            Method::Get,
            &format!("/api-webhooks/{webhook_id}/deliveries?limit=500{extra}"),
            None,
        )
        .await
        .expect(200)
        .json();
    listed["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no deliveries list: {listed}"))
}

/// The delivery of `event_id` to the endpoint.
pub async fn delivery_of_event(app: &App, key: &str, webhook_id: &str, event_id: &str) -> Value {
    let deliveries = deliveries_of(app, key, webhook_id, "").await;
    deliveries
        .iter()
        .find(|delivery| delivery["event_id"] == event_id)
        .cloned()
        .unwrap_or_else(|| panic!("no delivery of {event_id}: {deliveries:?}"))
}

/// The attempt log, newest first, for `filters` (`webhook_id=…`, `event_id=…`, `delivery_id=…`).
pub async fn attempts_of(app: &App, key: &str, filters: &str) -> Vec<Value> {
    let listed = app
        .api(
            key,
            Method::Get,
            &format!("/api-webhook-attempts?limit=500&{filters}"),
            None,
        )
        .await
        .expect(200)
        .json();
    listed["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no attempts list: {listed}"))
}

/// Syncs customers; checks the request itself was accepted.
pub async fn sync(app: &App, key: &str, customers: Value) -> Value {
    app.api(
        key,
        Method::Post,
        "/api-customers-sync",
        Some(json!({ "customers": customers })),
    )
    .await
    .expect(200)
    .json()
}

/// Syncs one new customer named `name` (a `customer.created` event); its id.
pub async fn new_customer(app: &App, key: &str, name: &str) -> String {
    let tag = unique("c");
    let result = sync(
        app,
        key,
        json!([{ "external_id": format!("CRM-{tag}"), "name": name, "email": format!("{tag}@example.com") }]),
    )
    .await;
    assert_eq!(result["results"]["created"], 1, "{result}");
    result["results"]["details"][0]["customer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every message of a business.
pub async fn messages_of(app: &App, key: &str) -> Vec<Value> {
    let page = app
        .api(
            key,
            Method::Get,
            "/api-messages-since?since=1970-01-01T00:00:00Z&limit=500",
            None,
        )
        .await
        .expect(200)
        .json();
    page["messages"].as_array().cloned().unwrap_or_default()
}

/// A WhatsApp (Meta) account of a business, as Meta is told to call it.
pub struct WhatsappAccount {
    pub id: String,
    pub address: String,
    pub app_secret: String,
    pub path: String,
}

/// A WhatsApp number of `business`, its Graph API at `api_base_url` when given.
pub async fn whatsapp_account(app: &App, business: &Business, api_base_url: Option<&str>) -> WhatsappAccount {
    let address = format!("1{:015}", 106_540_352_242_922u64 + unique_number());
    let app_secret = unique("app-secret");
    let settings = match api_base_url {
        Some(url) => json!({ "api_base_url": url }),
        None => json!({}),
    };
    let account = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", business.id),
            Some(json!({
                "channel": "whatsapp",
                "provider": "meta",
                "address": address,
                "settings": settings,
                "secrets": { "app_secret": app_secret, "verify_token": unique("verify"), "access_token": unique("access") }
            })),
        )
        .await
        .expect(201)
        .json();
    WhatsappAccount {
        id: id_of(&account),
        address,
        app_secret,
        path: account["webhook_path"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Meta posts one signed WhatsApp notification from `from` (E.164): a text, or an image with
/// `text` as its caption when `media_id` is given. Checks it was stored; the provider's id.
pub async fn receive_whatsapp(
    app: &App,
    account: &WhatsappAccount,
    from: &str,
    name: &str,
    text: &str,
    media_id: Option<&str>,
) -> String {
    let wamid = format!("wamid.{}", unique("m"));
    let wa_id = from.trim_start_matches('+');
    let mut notification = meta::whatsapp_text(&account.address, wa_id, name, &wamid, text);
    if let Some(media_id) = media_id {
        notification["entry"][0]["changes"][0]["value"]["messages"][0] = json!({
            "from": wa_id, "id": wamid, "timestamp": "1700000000", "type": "image",
            "image": { "id": media_id, "mime_type": "image/png", "sha256": "x", "caption": text }
        });
    }
    let body = serde_json::to_vec(&notification).unwrap_or_default();
    let signature = meta::signature(&account.app_secret, &body);
    let stored = app
        .request(
            Method::Post,
            &account.path,
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &signature),
            ],
            body,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(stored["stored"], 1, "the message is stored: {stored}");
    wamid
}
