//! Webhook endpoints through the API as the paths drive it (the end-to-end suite's
//! `webhook-api.mjs`): registering one for a scripted receiver, which learns its secret, and
//! reading its deliveries and the attempt log.

use crate::app::App;
use crate::partners::webhook_endpoint::Endpoint;
use edge::runtime::Method;
use serde_json::{Value, json};

/// Every event an endpoint can subscribe to.
pub const EVENTS: [&str; 10] = [
    "message.received",
    "message.sent",
    "conversation.created",
    "conversation.assigned",
    "conversation.status_changed",
    "customer.created",
    "customer.updated",
    "customer.erased",
    "alert.raised",
    "alert.resolved",
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
