//! A message sent from the CRM, end to end: accepted `queued` with 202, handed to the dispatcher
//! by the outbound queue, sent through the WhatsApp Cloud API as Meta documents it, and, when the
//! Graph API fails, retried after its `Retry-After` or the dispatcher's backoff until it is sent;
//! `message.sent` then reaches the business's endpoint once.

use crate::app::{App, Business, test};
use crate::partners::meta::{Graph, graph_error};
use crate::partners::webhook_endpoint::Endpoint;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const PHONE_NUMBER_ID: &str = "106540352242922";
const ACCESS_TOKEN: &str = "EAAGnative-access-token";

/// A WhatsApp number of the business, sending through the real Graph API's host.
async fn whatsapp_account(app: &App, business: &Business) {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/channel-accounts", business.id),
        Some(json!({
            "channel": "whatsapp",
            "provider": "meta",
            "address": PHONE_NUMBER_ID,
            "settings": {},
            "secrets": { "app_secret": "app-secret", "verify_token": "verify", "access_token": ACCESS_TOKEN }
        })),
    )
    .await
    .expect(201);
}

async fn message_of(app: &App, business: &Business, id: &str) -> Value {
    let page = app
        .api(
            &business.key,
            Method::Get,
            "/api-messages-since?since=1970-01-01T00:00:00Z",
            None,
        )
        .await
        .expect(200)
        .json();
    page["messages"]
        .as_array()
        .and_then(|messages| messages.iter().find(|message| message["id"] == id).cloned())
        .unwrap_or_else(|| panic!("message {id} is not listed: {page}"))
}

#[test]
fn a_send_the_provider_fails_twice_is_retried_as_it_asks_and_sent_once() {
    test(|app| async move {
        let business = app.business("Acme").await;
        whatsapp_account(&app, &business).await;
        let graph = Graph::install(&app.stack);
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let created = app
            .api(
                &business.key,
                Method::Post,
                "/api-webhooks",
                Some(json!({ "name": "CRM", "url": endpoint.url(), "events": ["message.sent"] })),
            )
            .await
            .expect(201)
            .json();
        endpoint.knows_secret(created["secret"].as_str().unwrap_or_default());
        app.api(
            &business.key,
            Method::Post,
            "/api-customers-sync",
            Some(
                json!({ "customers": [{ "external_id": "CRM-1", "name": "Ada", "phone": "087 123 4567" }] }),
            ),
        )
        .await
        .expect(200);
        graph.answer_next([
            graph_error(503, 2, "Service temporarily unavailable"),
            graph_error(429, 130429, "Rate limit hit").header("retry-after", "7"),
        ]);

        let accepted = app
            .api(
                &business.key,
                Method::Post,
                "/api-send-message",
                Some(json!({ "customer_id": "CRM-1", "channel": "whatsapp", "content": "Your order has shipped" })),
            )
            .await
            .expect(202)
            .json();
        let id = accepted["message"]["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(accepted["message"]["status"], "queued", "{accepted}");
        app.settle_within(Duration::from_secs(120)).await;

        let sends = graph.sends();
        assert_eq!(sends.len(), 3, "two failures, then the send: {sends:?}");
        let gaps: Vec<i64> = sends
            .windows(2)
            .map(|pair| pair[1].at_ms - pair[0].at_ms)
            .collect();
        assert!(
            gaps[0] >= 2_000 && gaps[0] < 7_000,
            "a 503 is retried after the backoff: {gaps:?}"
        );
        assert!(
            gaps[1] >= 7_000,
            "a 429 is retried after its Retry-After: {gaps:?}"
        );
        let sent = &sends[2];
        assert_eq!(sent.path(), format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
        assert_eq!(
            sent.header("authorization"),
            Some(format!("Bearer {ACCESS_TOKEN}").as_str())
        );
        assert_eq!(
            sent.json(),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "353871234567",
                "type": "text",
                "text": { "body": "Your order has shipped" }
            })
        );

        let message = message_of(&app, &business, &id).await;
        assert_eq!(message["status"], "sent", "{message}");
        let delivered = endpoint.of_event("message.sent");
        assert_eq!(
            delivered.len(),
            1,
            "message.sent once: {:?}",
            endpoint.deliveries()
        );
        assert!(delivered[0].signed);
        assert_eq!(delivered[0].body["data"]["message"]["id"], id.as_str());
        assert!(app.stack.dead_letters("OUTBOUND").is_empty());
    });
}

#[test]
fn a_send_that_keeps_failing_fails_on_its_fifth_attempt_with_the_providers_reason() {
    test(|app| async move {
        let business = app.business("Acme").await;
        whatsapp_account(&app, &business).await;
        let graph = Graph::install(&app.stack);
        app.api(
            &business.key,
            Method::Post,
            "/api-customers-sync",
            Some(
                json!({ "customers": [{ "external_id": "CRM-1", "name": "Ada", "phone": "087 123 4567" }] }),
            ),
        )
        .await
        .expect(200);
        graph.answer_next((0..10).map(|_| graph_error(500, 1, "An unknown error occurred")));
        let accepted = app
            .api(
                &business.key,
                Method::Post,
                "/api-send-message",
                Some(json!({ "customer_id": "CRM-1", "channel": "whatsapp", "content": "Hello" })),
            )
            .await
            .expect(202)
            .json();
        let id = accepted["message"]["id"].as_str().unwrap_or_default().to_owned();
        app.settle_within(Duration::from_secs(600)).await;
        assert_eq!(graph.sends().len(), 5, "five attempts, then no more");
        let message = message_of(&app, &business, &id).await;
        assert_eq!(message["status"], "failed", "{message}");
        let reason = message["status_reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("An unknown error occurred"),
            "the provider's last reason: {reason}"
        );
    });
}
