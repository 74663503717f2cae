//! Meta: the webhook notifications of the WhatsApp Cloud API, Messenger and Instagram, signed as
//! Meta signs them (`X-Hub-Signature-256: sha256=<hex HMAC of the raw body under the app
//! secret>`), and the Graph API's send endpoint (`POST /{version}/{sender id}/messages`, WhatsApp's
//! and the Messenger Platform's) as a partner script.

use super::send_api::{Provider, SendApi};
use super::{hmac_sha256, json_reply, unique_hex};
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::{Value, json};

/// The Graph API's host.
pub const GRAPH_HOST: &str = "graph.facebook.com";

/// A WhatsApp Cloud API notification for the business number `phone_number_id`: a text from
/// `from` (E.164 without its `+`) named `name`, with Meta's message id `wamid`.
pub fn whatsapp_text(phone_number_id: &str, from: &str, name: &str, wamid: &str, text: &str) -> Value {
    whatsapp_notification(
        phone_number_id,
        json!({
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": "1700000000", "type": "text", "text": { "body": text } }]
        }),
    )
}

/// A WhatsApp Cloud API notification for the business number `phone_number_id`, its `value`
/// carrying `contacts`, `messages` and/or `statuses` as Meta sends them.
pub fn whatsapp_notification(phone_number_id: &str, value: Value) -> Value {
    let mut change = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550001111", "phone_number_id": phone_number_id }
    });
    if let (Some(change), Some(value)) = (change.as_object_mut(), value.as_object()) {
        change.extend(value.clone());
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA-ID", "changes": [{ "field": "messages", "value": change }] }]
    })
}

/// A Messenger (`object` `page`) or Instagram (`instagram`) notification for the page or account
/// `id`, with its `messaging` events.
pub fn messaging_notification(object: &str, id: &str, events: Vec<Value>) -> Value {
    json!({ "object": object, "entry": [{ "id": id, "time": 1_700_000_000_000_i64, "messaging": events }] })
}

/// A Messenger or Instagram message event: `text` from `sender` to `recipient`, with Meta's id `mid`.
pub fn messaging_text(sender: &str, recipient: &str, mid: &str, text: &str) -> Value {
    json!({
        "sender": { "id": sender },
        "recipient": { "id": recipient },
        "timestamp": 1_700_000_000_000_i64,
        "message": { "mid": mid, "text": text }
    })
}

/// A message id of Meta's (`{prefix}` and hex digits) no other call returns.
pub fn mid(prefix: &str) -> String {
    format!("{prefix}{}", unique_hex(24))
}

/// A numeric Meta id (a phone number id, page id, Instagram account id, page-scoped id) no other
/// call returns.
pub fn numeric_id() -> String {
    let digits: String = unique_hex(30)
        .bytes()
        .map(|byte| char::from(b'0' + byte % 10))
        .take(15)
        .collect();
    format!("1{digits}")
}

/// `X-Hub-Signature-256` of `body` under the app's secret.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(app_secret.as_bytes(), body)))
}

/// The Graph API's send endpoint: answers each send with a `wamid` (WhatsApp) or a `message_id`
/// (Messenger, Instagram), or with the replies a test scripted for the next sends.
pub type Graph = SendApi<GraphApi>;

/// What the Graph API's send endpoint answers by itself.
pub struct GraphApi;

impl Provider for GraphApi {
    fn accepted(&self, call: &Outbound, nth: u64) -> Reply {
        let sent = call.json();
        if sent["messaging_product"] != "whatsapp" {
            // The Messenger Platform's Send API (Messenger and Instagram) answers differently.
            return json_reply(
                200,
                &json!({ "recipient_id": sent["recipient"]["id"], "message_id": format!("m_sent{nth:06}") }),
            );
        }
        let to = sent["to"].as_str().unwrap_or_default().to_owned();
        json_reply(
            200,
            &json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": to, "wa_id": to }],
                "messages": [{ "id": format!("wamid.sent{nth:06}") }]
            }),
        )
    }
}

impl Graph {
    /// The Graph API at `https://graph.facebook.com`.
    pub fn install(stack: &Stack) -> Self {
        Self::serve(stack, GRAPH_HOST, GraphApi)
    }

    /// The texts the API was asked to send to the WhatsApp number `to` (E.164).
    pub fn texts_sent_to(&self, to: &str) -> Vec<String> {
        let digits = to.trim_start_matches('+');
        self.sends()
            .iter()
            .map(Outbound::json)
            .filter(|send| send["to"] == digits)
            .map(|send| send["text"]["body"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A Graph API error as Meta answers one (`{"error": {message, type, code, fbtrace_id}}`).
pub fn graph_error(status: u16, code: u32, message: &str) -> Reply {
    json_reply(
        status,
        &json!({ "error": { "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Atrace" } }),
    )
}
