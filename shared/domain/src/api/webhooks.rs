//! The webhooks endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, delete, get, patch, post};

function! {
    /// `webhooks`.
    pub const WEBHOOKS: Function<Webhooks> = "webhooks", tag "webhooks";
    /// Register a webhook endpoint
    ///
    /// name and url are required; at most 16 endpoints per business (422).
    CreateWebhook = post("/api-webhooks", ApiKey).idempotent()
        => |c| c;
    /// The business's webhook endpoints
    ListWebhooks = get("/api-webhooks", ApiKey)
        => |c| c;
    /// One webhook endpoint
    GetWebhook = get("/api-webhooks/{webhook_id}", ApiKey)
        => |c| c;
    /// Change a webhook endpoint
    ///
    /// PATCH {"enabled": true} enables a disabled endpoint again. 409 when it kept changing
    /// meanwhile.
    UpdateWebhook = patch("/api-webhooks/{webhook_id}", ApiKey)
        => |c| c;
    /// Delete a webhook endpoint with its deliveries
    DeleteWebhook = delete("/api-webhooks/{webhook_id}", ApiKey)
        => |c| c;
    /// A new signing secret
    ///
    /// The old secret keeps signing beside the new one for grace_seconds (default 86400, at most
    /// 604800; 0 ends it now).
    RotateWebhookSecret = post("/api-webhooks/{webhook_id}/rotate-secret", ApiKey)
        => |c| c;
    /// Send a webhook.test event now
    ///
    /// Answers with the receiver's status, body (first 1 KiB), duration or error. At most 10 per
    /// endpoint a minute (429).
    TestWebhook = post("/api-webhooks/{webhook_id}/test", ApiKey)
        => |c| c;
    /// The endpoint's deliveries, newest first
    ///
    /// status=dead is the dead-letter list.
    ListWebhookDeliveries = get("/api-webhooks/{webhook_id}/deliveries", ApiKey)
        => |c| c;
    /// Deliver again
    ///
    /// One delivery (delivery_id), or every dead delivery whose event happened in [from, to). Each
    /// starts a new round of attempts. 409 while the endpoint is disabled.
    ReplayWebhookDeliveries = post("/api-webhooks/{webhook_id}/replay", ApiKey)
        => |c| c;
    /// The attempt log, newest first
    ///
    /// By webhook_id, event_id or delivery_id (at least one).
    ListWebhookAttempts = get("/api-webhook-attempts", ApiKey)
        => |c| c;
}
