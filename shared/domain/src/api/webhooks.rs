//! The webhook subscription endpoints: a business registers endpoints, rotates their secrets,
//! sends a test event, reads its deliveries and the attempt log, and replays dead deliveries;
//! their declarations and the shapes they take and answer with.

use crate::api::{Caller::*, delete, get, patch, post};
use crate::ids::{DeliveryId, EndpointId, EventId};
use crate::webhooks::RetrySchedule;
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use {crate::webhooks as policy, crate::webhooks::EventType, serde_json::json};

function! {
    /// The webhook subscription API.
    pub const WEBHOOKS: Function<Webhooks> = "webhooks", tag "webhooks";
    /// Register a webhook endpoint
    ///
    /// name and url are required; at most 16 endpoints per business (422).
    CreateWebhook = post("/api-webhooks", ApiKey).console().idempotent()
        => |c| c
            .json::<NewWebhookIn>()
            .example(json!({
                "name": "My CRM Webhook", "url": "https://your-crm.com/webhooks/crm-edge",
                "events": ["message.received", "customer.created"],
            }))
            .ok::<WebhookWithSecretOut>(201)
            .links(json!({
                "GetWebhook": { "operationId": "getWebhook", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
                "UpdateWebhook": { "operationId": "updateWebhook", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
                "RotateWebhookSecret": { "operationId": "rotateWebhookSecret", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
                "TestWebhook": { "operationId": "testWebhook", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
                "ListWebhookDeliveries": { "operationId": "listWebhookDeliveries", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
                "ListWebhookAttempts": { "operationId": "listWebhookAttempts", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
                "DeleteWebhook": { "operationId": "deleteWebhook", "parameters": { "webhook_id": "$response.body#/webhook/id" } },
            }));
    /// The business's webhook endpoints
    ListWebhooks = get("/api-webhooks", ApiKey).console()
        => |c| c.ok::<WebhooksOut>(200);
    /// One webhook endpoint
    GetWebhook = get("/api-webhooks/{webhook_id}", ApiKey).console()
        => |c| c.ok::<WebhookOut>(200);
    /// Change a webhook endpoint
    ///
    /// PATCH {"enabled": true} enables a disabled endpoint again. 409 when it kept changing
    /// meanwhile.
    UpdateWebhook = patch("/api-webhooks/{webhook_id}", ApiKey).console()
        => |c| c.json::<WebhookIn>().example(json!({ "enabled": true })).ok::<WebhookOut>(200).errors(&[409]);
    /// Delete a webhook endpoint with its deliveries
    DeleteWebhook = delete("/api-webhooks/{webhook_id}", ApiKey).console()
        => |c| c.ok_empty(204).described("Deleted");
    /// A new signing secret
    ///
    /// The old secret keeps signing beside the new one for grace_seconds (default 86400, at most
    /// 604800; 0 ends it now).
    RotateWebhookSecret = post("/api-webhooks/{webhook_id}/rotate-secret", ApiKey).console()
        => |c| c
            .optional_json::<RotateIn>()
            .example(json!({ "grace_seconds": 86400 }))
            .ok::<WebhookWithSecretOut>(200)
            .errors(&[409]);
    /// Send a webhook.test event now
    ///
    /// Answers with the receiver's status, body (first 1 KiB), duration or error. At most 10 per
    /// endpoint a minute (429).
    TestWebhook = post("/api-webhooks/{webhook_id}/test", ApiKey).console()
        => |c| c.ok::<TestOut>(200);
    /// The endpoint's deliveries, newest first
    ///
    /// status=dead is the dead-letter list.
    ListWebhookDeliveries = get("/api-webhooks/{webhook_id}/deliveries", ApiKey).console()
        => |c| c.query::<DeliveriesParameters>().ok::<DeliveriesOut>(200);
    /// Deliver again
    ///
    /// One delivery (delivery_id), or every dead delivery whose event happened in [from, to). Each
    /// starts a new round of attempts. 409 while the endpoint is disabled.
    ReplayWebhookDeliveries = post("/api-webhooks/{webhook_id}/replay", ApiKey).console()
        => |c| c
            .json::<ReplayIn>()
            .example(json!({ "from": "2025-11-04T00:00:00Z", "to": "2025-11-05T00:00:00Z" }))
            .ok::<ReplayOut>(202)
            .errors(&[409]);
    /// The attempt log, newest first
    ///
    /// By webhook_id, event_id or delivery_id (at least one).
    ListWebhookAttempts = get("/api-webhook-attempts", ApiKey).console()
        => |c| c.query::<AttemptsParameters>().ok::<AttemptsOut>(200);
}

/// A webhook endpoint's settings as a request gives them: on a change, only those given change.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "WebhookIn"))]
pub struct WebhookIn {
    #[cfg_attr(feature = "openapi", schemars(length(min = 1, max = 100)))]
    pub name: Option<String>,
    /// https, no credentials, a public host.
    #[cfg_attr(feature = "openapi", schemars(length(max = policy::MAX_URL_LENGTH)))]
    pub url: Option<String>,
    /// Absent: every event.
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "Option<Vec<EventType>>", length(min = 1))
    )]
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    #[cfg_attr(feature = "openapi", schemars(with = "Option<RetrySchedule>"))]
    pub retry_schedule: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = policy::MAX_TIMEOUT_SECONDS)))]
    pub timeout_seconds: Option<u32>,
    #[cfg_attr(
        feature = "openapi",
        schemars(range(min = policy::MIN_DISABLE_AFTER_SECONDS, max = policy::MAX_DISABLE_AFTER_SECONDS))
    )]
    pub disable_after_seconds: Option<u32>,
}

/// A new endpoint: its settings, with its name and url.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(extend("allOf" = [{ "$ref": "#/components/schemas/WebhookIn" }, { "required": ["name", "url"] }]))]
#[allow(dead_code, reason = "describes the body for the contract")]
struct NewWebhookIn {}

/// An endpoint as the API shows it: everything but the secrets.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "Webhook"))]
pub struct WebhookView {
    pub id: EndpointId,
    pub name: String,
    pub url: String,
    #[cfg_attr(feature = "openapi", schemars(with = "Vec<EventType>"))]
    pub events: Vec<&'static str>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub retry_schedule: RetrySchedule,
    pub timeout_seconds: u32,
    pub disable_after_seconds: u32,
    pub failing_since: Option<String>,
    /// While a rotated-out secret still signs beside the current one: until when.
    pub previous_secret_expires_at: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
}

/// An endpoint, without its secret: what a read or a change answers.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WebhookOut {
    pub webhook: WebhookView,
}

/// An endpoint with its signing secret: the secret is shown only when it is made, with the
/// endpoint or by a rotation, and never read back.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WebhookWithSecretOut {
    pub webhook: WebhookView,
    /// whsec_…, shown only here and on rotation.
    pub secret: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WebhooksOut {
    pub webhooks: Vec<WebhookView>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RotateIn {
    #[cfg_attr(feature = "openapi", schemars(range(min = 0, max = policy::MAX_ROTATION_GRACE_SECONDS)))]
    pub grace_seconds: Option<u32>,
}

/// What the receiver said to the test event.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TestOut {
    pub delivered: bool,
    pub event_id: EventId,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// The parameters of the delivery list.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct DeliveriesParameters {
    /// pending, delivered or dead.
    status: Option<DeliveryStatus>,
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
}

/// Where a delivery is.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "describes a field for the contract")]
enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DeliveryOut {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    #[cfg_attr(feature = "openapi", schemars(with = "DeliveryStatus"))]
    pub status: String,
    pub attempts: u32,
    pub replays: u32,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// RFC 3339 time.
    pub event_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DeliveriesOut {
    pub deliveries: Vec<DeliveryOut>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReplayIn {
    pub delivery_id: Option<String>,
    /// RFC 3339 time.
    pub from: Option<String>,
    /// RFC 3339 time.
    pub to: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReplayOut {
    pub replayed: usize,
    pub delivery_ids: Vec<DeliveryId>,
}

/// The parameters of the attempt log: one of the first three is required.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct AttemptsParameters {
    /// A webhook endpoint.
    webhook_id: Option<EndpointId>,
    /// An event.
    event_id: Option<EventId>,
    /// A delivery.
    delivery_id: Option<String>,
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
}

/// How an attempt ended.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "describes a field for the contract")]
enum AttemptOutcome {
    Delivered,
    Retrying,
    Dead,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AttemptOut {
    pub id: i64,
    pub webhook_id: EndpointId,
    pub delivery_id: Option<DeliveryId>,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: u32,
    pub replay: u32,
    pub url: String,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub duration_ms: i64,
    pub error: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(with = "AttemptOutcome"))]
    pub outcome: String,
    /// RFC 3339 time.
    pub attempted_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AttemptsOut {
    pub attempts: Vec<AttemptOut>,
}
