//! The receivers endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, Signature, get, post};

function! {
    /// `receiver-meta`.
    pub const RECEIVER_META: Function<ReceiverMeta> = "receiver-meta", tag "receivers";
    /// Meta's subscription handshake
    ///
    /// hub.mode=subscribe, hub.verify_token (the account's verify_token: 403 otherwise) and
    /// hub.challenge.
    VerifyMetaWebhook = get("/webhooks/meta/{account_id}", ProofInRequest)
        => |c| c;
    /// A Meta notification (WhatsApp, Messenger, Instagram)
    ///
    /// Signed by Meta with the account's app_secret (X-Hub-Signature-256: sha256=<hex>). A
    /// malformed entry is counted in rejected, the good ones are stored.
    ReceiveMetaWebhook = post("/webhooks/meta/{account_id}", Signed(Signature::Meta))
        => |c| c;
}

function! {
    /// `receiver-twilio`.
    pub const RECEIVER_TWILIO: Function<ReceiverTwilio> = "receiver-twilio", tag "receivers";
    /// A Twilio message or status callback
    ///
    /// application/x-www-form-urlencoded, signed with the account's auth_token over the public URL
    /// and every parameter.
    ReceiveTwilioWebhook = post("/webhooks/twilio/{account_id}", Signed(Signature::Twilio))
        => |c| c;
}

function! {
    /// `receiver-email`.
    pub const RECEIVER_EMAIL: Function<ReceiverEmail> = "receiver-email", tag "receivers";
    /// A mail forwarded by a Mailgun route
    ///
    /// multipart/form-data or URL-encoded, up to 25 MiB. Authenticated by the form's own fields
    /// (Mailgun signs no header): signature = hex HMAC-SHA256 of timestamp + token with the
    /// account's signing_key, the timestamp within 5 minutes, the token not used before; otherwise
    /// 401.
    ReceiveMailgunWebhook = post("/webhooks/mailgun/{account_id}", ProofInRequest)
        => |c| c;
}

function! {
    /// `receiver-kustomer`.
    pub const RECEIVER_KUSTOMER: Function<ReceiverKustomer> = "receiver-kustomer", tag "receivers";
    /// A Kustomer webhook delivery
    ///
    /// X-Kustomer-Webhook-Signature: lowercase hex HMAC-SHA256 of the body with the connector's
    /// webhook_secret; at most 1 MiB.
    ReceiveKustomerWebhook = post("/api/webhooks/kustomer/{connector_id}", Signed(Signature::Kustomer))
        => |c| c;
}

function! {
    /// `receiver-chatwoot`.
    pub const RECEIVER_CHATWOOT: Function<ReceiverChatwoot> = "receiver-chatwoot", tag "receivers";
    /// A Chatwoot webhook for a Krayin connector
    ///
    /// X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "{X-Chatwoot-Timestamp}.{body}"> with the
    /// connector's webhook_secret, the timestamp within 5 minutes. A redelivery (same
    /// X-Chatwoot-Delivery) answers duplicate.
    ReceiveChatwootWebhook = post("/webhooks/chatwoot/{connector_id}", Signed(Signature::Chatwoot))
        => |c| c;
}
