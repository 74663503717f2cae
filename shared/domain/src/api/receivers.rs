//! The receivers of partners' webhooks: channel providers (Meta, Twilio, Mailgun) delivering
//! messages, and CRMs (Kustomer, HubSpot, Salesforce, Chatwoot for Krayin) delivering their events. Each checks its
//! partner's proof over the raw body itself, within its own body limit, so their bodies are
//! described here as the partners send them; their declarations and answers.

use crate::api::{Caller::*, Signature, get, post};
use crate::inbound::IngestReport;
use serde::Serialize;
#[cfg(feature = "openapi")]
use serde_json::json;

function! {
    /// Meta's callback.
    pub const RECEIVER_META: Function<ReceiverMeta> = "receiver-meta", tag "receivers";
    /// Meta's subscription handshake
    ///
    /// hub.mode=subscribe, hub.verify_token (the account's verify_token: 403 otherwise) and
    /// hub.challenge.
    VerifyMetaWebhook = get("/webhooks/meta/{account_id}", ProofInRequest)
        => |c| c
            .query::<MetaHandshake>()
            .ok_media(200, "text/plain", json!({ "type": "string" }))
            .described("hub.challenge echoed")
            .errors(&[400, 403]);
    /// A Meta notification (WhatsApp, Messenger, Instagram)
    ///
    /// Signed by Meta with the account's app_secret (X-Hub-Signature-256: `sha256=<hex>`). A
    /// malformed entry is counted in rejected, the good ones are stored.
    ReceiveMetaWebhook = post("/webhooks/meta/{account_id}", Signed(Signature::Meta))
        .limit(crate::providers::meta::webhook::BODY_LIMIT)
        => |c| c
            .raw_literal("application/json", json!({ "type": "object" }))
            .ok::<MetaReceivedOut>(200)
            .errors(&[400, 413, 422, 503]);
}

function! {
    /// Twilio's messaging webhook.
    pub const RECEIVER_TWILIO: Function<ReceiverTwilio> = "receiver-twilio", tag "receivers";
    /// A Twilio message or status callback
    ///
    /// application/x-www-form-urlencoded, signed with the account's auth_token over the public URL
    /// and every parameter.
    ReceiveTwilioWebhook = post("/webhooks/twilio/{account_id}", Signed(Signature::Twilio))
        .limit(crate::providers::twilio::webhook::BODY_LIMIT)
        => |c| c
            .raw_literal("application/x-www-form-urlencoded", json!({
                "type": "object", "additionalProperties": { "type": "string" },
            }))
            .ok_media(200, "text/xml", json!({ "type": "string" }))
            .described("Empty TwiML")
            .errors(&[400, 413, 415, 422, 503]);
}

function! {
    /// Mailgun's inbound routes.
    pub const RECEIVER_EMAIL: Function<ReceiverEmail> = "receiver-email", tag "receivers";
    /// A mail forwarded by a Mailgun route
    ///
    /// multipart/form-data or URL-encoded, up to 25 MiB. Authenticated by the form's own fields
    /// (Mailgun signs no header): signature = hex HMAC-SHA256 of timestamp + token with the
    /// account's signing_key, the timestamp within 5 minutes, the token not used before; otherwise
    /// 401.
    ReceiveMailgunWebhook = post("/webhooks/mailgun/{account_id}", ProofInRequest)
        .limit(crate::providers::mailgun::webhook::BODY_LIMIT)
        => |c| c
            .raw_literal("multipart/form-data", json!({
                "type": "object",
                "properties": {
                    "timestamp": { "type": "string" }, "token": { "type": "string" },
                    "signature": { "type": "string" }, "recipient": { "type": "string" },
                    "sender": { "type": "string" }, "subject": { "type": "string" },
                    "body-plain": { "type": "string" },
                },
                "required": ["timestamp", "token", "signature"],
            }))
            .raw_literal("application/x-www-form-urlencoded", json!({
                "type": "object",
                "properties": {
                    "timestamp": { "type": "string" }, "token": { "type": "string" }, "signature": { "type": "string" },
                },
                "required": ["timestamp", "token", "signature"],
            }))
            .ok::<MailReceivedOut>(200)
            .errors(&[400, 401, 413, 415, 422, 503]);
}

function! {
    /// Kustomer's webhooks.
    pub const RECEIVER_KUSTOMER: Function<ReceiverKustomer> = "receiver-kustomer", tag "receivers";
    /// A Kustomer webhook delivery
    ///
    /// X-Kustomer-Webhook-Signature: lowercase hex HMAC-SHA256 of the body with the connector's
    /// webhook_secret; at most 1 MiB.
    ReceiveKustomerWebhook = post("/api/webhooks/kustomer/{connector_id}", Signed(Signature::Kustomer))
        .limit(crate::crm::kustomer::webhook::BODY_LIMIT)
        => |c| c
            .header(crate::crm::kustomer::webhook::EVENT_HEADER, "The event's name", false)
            .raw_literal("application/json", json!({ "type": "object" }))
            .ok::<KustomerReceivedOut>(200)
            .errors(&[400, 413, 503]);
    /// The Kustomer guide's webhook
    ///
    /// The integration guide's `{"event": "conversation.updated", "data": {…the Kustomer
    /// conversation…}}` (or Kustomer's own envelope), for a business with one enabled Kustomer
    /// connector: the API key names the business, and the body is signed as Kustomer signs it
    /// (X-Kustomer-Webhook-Signature: hex HMAC-SHA256 of the body with the connector's
    /// webhook_secret). Acted on as the connector's own webhook path acts; the same body twice acts
    /// once. 409 when the business has several Kustomer connectors (each has its own path).
    ReceiveKustomerGuideWebhook = post("/api/webhooks/kustomer", ApiKey)
        .limit(crate::crm::kustomer::webhook::BODY_LIMIT)
        => |c| c
            .header(crate::crm::kustomer::webhook::SIGNATURE_HEADER, "hex HMAC-SHA256 of the body with the connector's webhook_secret", true)
            .raw_literal("application/json", json!({ "type": "object" }))
            .ok::<KustomerReceivedOut>(200)
            .errors(&[400, 404, 409, 413, 503]);
}

function! {
    /// HubSpot's webhooks.
    pub const RECEIVER_HUBSPOT: Function<ReceiverHubSpot> = "receiver-hubspot", tag "receivers";
    /// A HubSpot webhook delivery
    ///
    /// Up to 100 events (a JSON array), signed by HubSpot with the app's client secret (the
    /// connector's client_secret): X-HubSpot-Signature-v3 is base64 HMAC-SHA256 of the method, the
    /// URL called, the body and X-HubSpot-Request-Timestamp (milliseconds, within 5 minutes). A
    /// ticket an escalation made, moved to a closed stage, resolves its conversation; moved back
    /// to an open one, reopens it. A contact deleted is forgotten (made again by the customer's
    /// next work); contacts merged keep our customers on the merged one. Each event acts once
    /// however often it is delivered.
    ReceiveHubSpotWebhook = post("/api/webhooks/hubspot/{connector_id}", Signed(Signature::HubSpot))
        .limit(crate::crm::hubspot::webhook::BODY_LIMIT)
        => |c| c
            .header(crate::crm::hubspot::webhook::TIMESTAMP_HEADER, "Milliseconds since 1970", true)
            .raw_literal("application/json", json!({ "type": "array", "items": { "type": "object" } }))
            .ok::<HubSpotReceivedOut>(200)
            .errors(&[400, 401, 404, 413, 503]);
}

function! {
    /// Salesforce's Outbound Messages.
    pub const RECEIVER_SALESFORCE: Function<ReceiverSalesforce> = "receiver-salesforce", tag "receivers";
    /// A Salesforce Outbound Message
    ///
    /// The SOAP `notifications` a workflow rule or flow of the connector's org sends for Contact
    /// and Case changes, up to 100 `Notification`s. Salesforce signs nothing: the last segment of
    /// the URL is the connector's secrets.outbound_token (at least 32 characters), and a message
    /// from another org than the connector's is refused. Answered with the SOAP `Ack` once every
    /// notification is applied; anything else makes Salesforce send it again (for up to 24 hours).
    /// Each notification acts once by its id, however often it comes. A Case's status is read
    /// from Salesforce as it is now, so a notification that comes late cannot undo a newer one: a
    /// Case closed resolves the conversation its escalation made, reopened reopens it. A Contact
    /// deleted is forgotten (made again by the customer's next work); a Contact merged keeps our
    /// customer on the one it was merged into.
    ReceiveSalesforceOutboundMessage = post("/api/webhooks/salesforce/{connector_id}/{token}", ProofInRequest)
        .limit(crate::crm::salesforce::outbound::BODY_LIMIT)
        => |c| c
            .raw_literal("text/xml", json!({ "type": "string" }))
            .ok_media(200, "text/xml", json!({ "type": "string" }))
            .described("The SOAP answer that acknowledges every notification (notificationsResponse, Ack true)")
            .errors(&[400, 401, 403, 404, 413, 415, 422, 503]);
}

function! {
    /// Chatwoot's webhooks, for a Krayin connector.
    pub const RECEIVER_CHATWOOT: Function<ReceiverChatwoot> = "receiver-chatwoot", tag "receivers";
    /// A Chatwoot webhook for a Krayin connector
    ///
    /// X-Chatwoot-Signature: `sha256=<hex HMAC-SHA256 of "{X-Chatwoot-Timestamp}.{body}">` with the
    /// connector's webhook_secret, the timestamp within 5 minutes. A redelivery (same
    /// X-Chatwoot-Delivery) answers duplicate.
    ReceiveChatwootWebhook = post("/webhooks/chatwoot/{connector_id}", Signed(Signature::Chatwoot))
        .limit(crate::crm::chatwoot::webhook::BODY_LIMIT)
        => |c| c
            .header(crate::crm::chatwoot::webhook::TIMESTAMP_HEADER, "Unix seconds", false)
            .header(crate::crm::chatwoot::webhook::DELIVERY_HEADER, "The delivery id", false)
            .raw_literal("application/json", json!({ "type": "object" }))
            .ok::<ChatwootReceivedOut>(200)
            .errors(&[400, 413, 503]);
    /// A Chatwoot webhook for a Krayin connector, from a Chatwoot that signs nothing
    ///
    /// For a Chatwoot before 4.11.2: the last segment of the URL is the connector's
    /// secrets.webhook_token (weaker than a signature: it travels in the URL and proves nothing
    /// about the body). A delivery that does carry X-Chatwoot-Signature is checked as on the
    /// signed path when the connector has a webhook_secret. The same body delivered twice answers
    /// duplicate.
    ReceiveChatwootWebhookWithToken = post("/webhooks/chatwoot/{connector_id}/{token}", ProofInRequest)
        .limit(crate::crm::chatwoot::webhook::BODY_LIMIT)
        => |c| c
            .raw_literal("application/json", json!({ "type": "object" }))
            .ok::<ChatwootReceivedOut>(200)
            .errors(&[400, 401, 413, 503]);
}

/// The parameters of Meta's subscription handshake.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct MetaHandshake {
    /// subscribe.
    #[serde(rename = "hub.mode")]
    #[schemars(extend("enum" = ["subscribe"]))]
    mode: Option<String>,
    /// The account's verify token.
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    /// Echoed back.
    #[serde(rename = "hub.challenge")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    challenge: Option<String>,
}

/// What a Meta notification carried, and what of it was stored.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct MetaReceivedOut {
    /// Messages the notification carried for this account.
    pub received: usize,
    /// Status updates it carried.
    pub statuses: usize,
    /// Entries about another number, page or account of the same app, not taken.
    pub ignored: usize,
    /// Entries, changes, messages, statuses or contacts that could not be read and were skipped.
    pub rejected: usize,
    #[serde(flatten)]
    pub report: IngestReport,
}

/// The mails a forward carried, and what of them was stored.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct MailReceivedOut {
    pub received: usize,
    #[serde(flatten)]
    pub report: IngestReport,
}

/// What became of each event of a HubSpot delivery.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HubSpotReceivedOut {
    pub events: Vec<HubSpotEventOut>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HubSpotEventOut {
    /// HubSpot's `eventId`.
    pub event_id: u64,
    /// `resolved the conversation`, `reopened the conversation`, `duplicate: already handled`, or
    /// `ignored: …` with why.
    pub outcome: String,
}

/// What became of a Kustomer event.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KustomerReceivedOut {
    pub event: String,
    pub outcome: String,
}

/// What became of a Chatwoot delivery.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ChatwootReceivedOut {
    pub outcome: String,
}
