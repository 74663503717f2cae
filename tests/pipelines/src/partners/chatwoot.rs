//! Chatwoot's outbound account webhooks, ported from `tests/e2e/crm/chatwoot.mjs`: the payloads
//! Chatwoot (v4) posts for `contact_created`, `contact_updated`, `conversation_created`,
//! `conversation_updated`, `conversation_status_changed` and `message_created`, and the delivery
//! as Chatwoot signs it.
//!
//! Shapes, as Chatwoot builds them: the payload is the record's `webhook_data` merged with
//! `event` (and `changed_attributes` for updates, a list of `{attribute: {previous_value,
//! current_value}}`). A contact is `{account, additional_attributes, avatar, custom_attributes,
//! email, id, identifier, name, phone_number, thumbnail, blocked}`. A conversation is its push
//! data: `id` is the display id (the number agents see), `channel` the inbox's channel class
//! (`Channel::Email`, `Channel::TwilioSms`, `Channel::Whatsapp`, `Channel::WebWidget`,
//! `Channel::Api`, …), `meta: {sender, assignee, team, hmac_verified}`, times as Unix seconds. A
//! message has `message_type` `incoming` | `outgoing` | `activity` | `template`, `private`,
//! `sender` (a contact's or a user's webhook data), `conversation` (the conversation's push
//! data), `inbox: {id, name}`, `account: {id, name}` and `created_at` as an ISO 8601 time.
//!
//! Delivery: a POST of the JSON as Rails encodes it (`<`, `>`, `&`, U+2028 and U+2029 escaped as
//! `\uXXXX`) with `Content-Type: application/json`, `Accept: application/json`,
//! `X-Chatwoot-Delivery: <uuid>` (kept across retries), `X-Chatwoot-Timestamp: <Unix seconds>`
//! and, when the webhook has a secret, `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of
//! "{timestamp}.{raw body}">`, computed here with our own HMAC, not the receiver's code.

use super::hmac_sha256;
use domain::time::Timestamp;
use edge::runtime::native;
use serde_json::{Map, Value, json};
use std::cell::Cell;

pub const ACCOUNT_ID: u64 = 1;
pub const ACCOUNT_NAME: &str = "Acme Support";

/// An inbox of the account: its id, name and channel class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbox {
    pub id: u64,
    pub name: &'static str,
    pub channel: &'static str,
}

pub const WEB: Inbox = Inbox {
    id: 1,
    name: "Website",
    channel: "Channel::WebWidget",
};
pub const EMAIL: Inbox = Inbox {
    id: 2,
    name: "Support Email",
    channel: "Channel::Email",
};
pub const WHATSAPP: Inbox = Inbox {
    id: 3,
    name: "WhatsApp",
    channel: "Channel::Whatsapp",
};
/// Twilio SMS.
pub const SMS: Inbox = Inbox {
    id: 4,
    name: "SMS",
    channel: "Channel::TwilioSms",
};
pub const API: Inbox = Inbox {
    id: 5,
    name: "API",
    channel: "Channel::Api",
};

/// A Chatwoot agent (a user).
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: u64,
    pub name: String,
    pub email: String,
}

/// The account's agent the tests reply as: Priya Raman.
pub fn agent() -> Agent {
    Agent {
        id: 3,
        name: "Priya Raman".to_owned(),
        email: "priya@acme.example".to_owned(),
    }
}

impl Agent {
    /// As a message's `sender` (webhook data) has it.
    fn webhook_data(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "email": self.email, "type": "user" })
    }

    /// As a conversation's `meta.assignee` (push data) has it.
    fn push_data(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "available_name": self.name, "avatar_url": "",
                "type": "user", "availability_status": "online", "thumbnail": "" })
    }
}

/// A Chatwoot contact. The integration guide's CRM fields go in `additional_attributes`:
/// `job_title`, `company_name`, `company_address`, `company_city`, `company_state`,
/// `company_country`, `company_zipcode`, `lead_value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub identifier: Option<String>,
    pub additional_attributes: Map<String, Value>,
    pub custom_attributes: Map<String, Value>,
    pub blocked: bool,
}

impl Contact {
    pub fn new(id: u64, name: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            email: None,
            phone_number: None,
            identifier: None,
            additional_attributes: Map::new(),
            custom_attributes: Map::new(),
            blocked: false,
        }
    }

    /// Chatwoot keeps emails lowercased.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_lowercase());
        self
    }

    pub fn phone(mut self, phone_number: &str) -> Self {
        self.phone_number = Some(phone_number.to_owned());
        self
    }

    /// An `additional_attributes` entry.
    pub fn attribute(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.additional_attributes.insert(name.to_owned(), value.into());
        self
    }

    pub fn named(&self, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..self.clone()
        }
    }

    /// The contact's `webhook_data`.
    pub fn webhook_data(&self) -> Value {
        json!({
            "account": { "id": ACCOUNT_ID, "name": ACCOUNT_NAME },
            "additional_attributes": self.additional_attributes,
            "avatar": "",
            "custom_attributes": self.custom_attributes,
            "email": self.email,
            "id": self.id,
            "identifier": self.identifier,
            "name": self.name,
            "phone_number": self.phone_number,
            "thumbnail": "",
            "blocked": self.blocked,
        })
    }

    /// The contact as a conversation's `meta.sender` carries it (its push data).
    fn push_data(&self) -> Value {
        json!({
            "additional_attributes": self.additional_attributes,
            "custom_attributes": self.custom_attributes,
            "email": self.email,
            "id": self.id,
            "identifier": self.identifier,
            "name": self.name,
            "phone_number": self.phone_number,
            "thumbnail": "",
            "blocked": self.blocked,
            "type": "contact",
        })
    }
}

/// A conversation, as its push data has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The display id.
    pub id: u64,
    pub inbox: Inbox,
    pub contact: Contact,
    pub assignee: Option<Agent>,
    /// `open`, `resolved`, `pending` or `snoozed`.
    pub status: &'static str,
    /// On the stack's clock.
    pub created_at_ms: i64,
}

impl Conversation {
    /// An open conversation of `contact` in `inbox`, started now.
    pub fn new(id: u64, inbox: Inbox, contact: &Contact) -> Self {
        Self {
            id,
            inbox,
            contact: contact.clone(),
            assignee: None,
            status: "open",
            created_at_ms: native::now_ms(),
        }
    }

    pub fn assigned(mut self, agent: Agent) -> Self {
        self.assignee = Some(agent);
        self
    }

    pub fn with_status(&self, status: &'static str) -> Self {
        Self {
            status,
            ..self.clone()
        }
    }

    fn source_id(&self) -> String {
        let phone = self.contact.phone_number.as_deref().unwrap_or("+14155550123");
        match self.inbox.channel {
            "Channel::Email" => self
                .contact
                .email
                .clone()
                .unwrap_or_else(|| "jane@example.com".to_owned()),
            "Channel::Whatsapp" => phone.trim_start_matches('+').to_owned(),
            "Channel::TwilioSms" | "Channel::Sms" => phone.to_owned(),
            _ => "0c7bd4a5-5b6f-4d2e-9f8a-3e1c2b7d9a10".to_owned(),
        }
    }

    fn additional_attributes(&self) -> Value {
        match self.inbox.channel {
            "Channel::Email" => json!({ "mail_subject": "Question about pricing" }),
            "Channel::WebWidget" => json!({
                "browser": { "device_name": "Unknown", "browser_name": "Chrome", "platform_name": "macOS",
                             "browser_version": "131.0.0.0", "platform_version": "10.15.7" },
                "referer": "https://acme.example/pricing",
                "initiated_at": { "timestamp": "Mon Nov 23 2026 12:00:00 GMT+0000 (Coordinated Universal Time)" },
                "browser_language": "en",
            }),
            _ => json!({}),
        }
    }

    /// The conversation's push data.
    pub fn push_data(&self) -> Value {
        let created = rails_time(self.created_at_ms);
        let seconds = self.created_at_ms / 1000;
        json!({
            "additional_attributes": self.additional_attributes(),
            "can_reply": true,
            "channel": self.inbox.channel,
            "contact_inbox": {
                "id": 201, "contact_id": self.contact.id, "inbox_id": self.inbox.id,
                "source_id": self.source_id(), "created_at": created, "updated_at": created,
                "hmac_verified": false, "pubsub_token": "pQw8sWk2yJ3nYbT7rVfL1mZc",
            },
            "id": self.id,
            "inbox_id": self.inbox.id,
            "messages": [],
            "labels": [],
            "meta": {
                "sender": self.contact.push_data(),
                "assignee": self.assignee.as_ref().map(Agent::push_data),
                "team": null,
                "hmac_verified": false,
            },
            "status": self.status,
            "custom_attributes": {},
            "snoozed_until": null,
            "unread_count": 0,
            "first_reply_created_at": null,
            "priority": null,
            "waiting_since": 0,
            "agent_last_seen_at": 0,
            "contact_last_seen_at": 0,
            "last_activity_at": seconds,
            "timestamp": seconds,
            "created_at": seconds,
            "updated_at": self.created_at_ms as f64 / 1000.0,
            "account_id": ACCOUNT_ID,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Incoming,
    Outgoing,
    Activity,
    Template,
}

impl MessageType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Incoming => "incoming",
            Self::Outgoing => "outgoing",
            Self::Activity => "activity",
            Self::Template => "template",
        }
    }
}

/// Who a message is from, as its `sender`.
#[derive(Debug, Clone, PartialEq)]
pub enum Sender {
    Contact(Contact),
    Agent(Agent),
    /// Chatwoot's own activity messages have none.
    Nobody,
}

/// A message in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: u64,
    pub content: String,
    pub message_type: MessageType,
    pub private: bool,
    pub conversation: Conversation,
    pub sender: Sender,
    /// `{id, file_type, data_url, thumb_url}`.
    pub attachments: Vec<Value>,
    pub created_at_ms: i64,
}

impl Message {
    /// The contact writes.
    pub fn incoming(id: u64, conversation: &Conversation, content: &str) -> Self {
        Self {
            id,
            content: content.to_owned(),
            message_type: MessageType::Incoming,
            private: false,
            sender: Sender::Contact(conversation.contact.clone()),
            conversation: conversation.clone(),
            attachments: Vec::new(),
            created_at_ms: native::now_ms(),
        }
    }

    /// The agent ([`agent`]) replies.
    pub fn outgoing(id: u64, conversation: &Conversation, content: &str) -> Self {
        Self {
            message_type: MessageType::Outgoing,
            sender: Sender::Agent(agent()),
            ..Self::incoming(id, conversation, content)
        }
    }

    /// Chatwoot's own note in the conversation ("Conversation was resolved by …").
    pub fn activity(id: u64, conversation: &Conversation, content: &str) -> Self {
        Self {
            message_type: MessageType::Activity,
            sender: Sender::Nobody,
            ..Self::incoming(id, conversation, content)
        }
    }

    /// An agents' note, never shown to the contact.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    pub fn attachment(mut self, file_type: &str, url: &str) -> Self {
        let id = self.attachments.len() + 1;
        self.attachments
            .push(json!({ "id": id, "file_type": file_type, "data_url": url, "thumb_url": url }));
        self
    }

    /// The message's `webhook_data`.
    pub fn webhook_data(&self) -> Value {
        let sender = match &self.sender {
            Sender::Contact(contact) => contact.webhook_data(),
            Sender::Agent(agent) => agent.webhook_data(),
            Sender::Nobody => Value::Null,
        };
        let inbox = self.conversation.inbox;
        let mut data = json!({
            "account": { "id": ACCOUNT_ID, "name": ACCOUNT_NAME },
            "additional_attributes": {},
            "content_attributes": {},
            "content_type": "text",
            "content": self.content,
            "conversation": self.conversation.push_data(),
            "created_at": rails_time(self.created_at_ms),
            "id": self.id,
            "inbox": { "id": inbox.id, "name": inbox.name },
            "message_type": self.message_type.as_str(),
            "private": self.private,
            "sender": sender,
            "source_id": null,
        });
        if !self.attachments.is_empty() {
            data["attachments"] = json!(self.attachments);
        }
        data
    }
}

/// Rails encodes times in JSON as ISO 8601 with milliseconds, in UTC for Chatwoot.
fn rails_time(ms: i64) -> String {
    Timestamp::from_millis(ms).to_rfc3339()
}

fn with_event(mut data: Value, event: &str) -> Value {
    data["event"] = json!(event);
    data
}

/// `changes`: (attribute, previous, current) → Chatwoot's `changed_attributes` list.
pub fn changed_attributes(changes: &[(&str, Value, Value)]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|(name, previous, current)| {
                json!({ *name: { "previous_value": previous, "current_value": current } })
            })
            .collect(),
    )
}

pub fn contact_created(contact: &Contact) -> Value {
    with_event(contact.webhook_data(), "contact_created")
}

/// Chatwoot sends no `contact_updated` without a change.
pub fn contact_updated(contact: &Contact, changes: &[(&str, Value, Value)]) -> Value {
    assert!(
        !changes.is_empty(),
        "chatwoot: contact_updated needs at least one change"
    );
    let mut payload = with_event(contact.webhook_data(), "contact_updated");
    payload["changed_attributes"] = changed_attributes(changes);
    payload
}

pub fn conversation_created(conversation: &Conversation) -> Value {
    with_event(conversation.push_data(), "conversation_created")
}

pub fn conversation_updated(conversation: &Conversation, changes: &[(&str, Value, Value)]) -> Value {
    let mut payload = with_event(conversation.push_data(), "conversation_updated");
    payload["changed_attributes"] = changed_attributes(changes);
    payload
}

/// `conversation.status` is the new status; the change is from `previous`.
pub fn conversation_status_changed(conversation: &Conversation, previous: &str) -> Value {
    let mut payload = with_event(conversation.push_data(), "conversation_status_changed");
    payload["changed_attributes"] =
        changed_attributes(&[("status", json!(previous), json!(conversation.status))]);
    payload
}

pub fn message_created(message: &Message) -> Value {
    with_event(message.webhook_data(), "message_created")
}

/// JSON as Rails' `to_json` writes it: compact, with HTML-significant characters escaped.
pub fn rails_json(value: &Value) -> String {
    let mut text = String::new();
    for c in value.to_string().chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => text.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => text.push(c),
        }
    }
    text
}

/// The value of `X-Chatwoot-Signature` for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), &signed)))
}

thread_local! {
    static DELIVERIES: Cell<u64> = const { Cell::new(0) };
}

/// A new `X-Chatwoot-Delivery` id (a UUID, as Chatwoot's).
pub fn delivery_id() -> String {
    let n = DELIVERIES.with(|count| {
        count.set(count.get() + 1);
        count.get()
    });
    format!("6f1c2a9e-{:04x}-4000-8000-{n:012x}", n % 0xffff)
}

/// A delivery as Chatwoot makes it: headers and the raw body the signature covers.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    /// `payload` delivered now (on the stack's clock) under a new delivery id, signed with
    /// `secret` (None: a webhook without a secret, no signature).
    pub fn of(secret: Option<&str>, payload: &Value) -> Self {
        Self::raw(secret, &rails_json(payload))
    }

    /// A body given as text, delivered now under a new delivery id.
    pub fn raw(secret: Option<&str>, body: &str) -> Self {
        Self::signed_at(secret, body, native::now_ms() / 1000, &delivery_id())
    }

    /// A body delivered at `timestamp` (Unix seconds) under `delivery` (reuse one to replay a
    /// retry).
    pub fn signed_at(secret: Option<&str>, body: &str, timestamp: i64, delivery: &str) -> Self {
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
            ("x-chatwoot-delivery".to_owned(), delivery.to_owned()),
            ("x-chatwoot-timestamp".to_owned(), timestamp.to_string()),
        ];
        if let Some(secret) = secret {
            headers.push((
                "x-chatwoot-signature".to_owned(),
                signature(secret, timestamp, body.as_bytes()),
            ));
        }
        Self {
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The same delivery with `name` set to `value` (or removed, with None).
    pub fn with_header(mut self, name: &str, value: Option<&str>) -> Self {
        self.headers
            .retain(|(known, _)| !known.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        }
        self
    }

    /// The same headers over another body (a body changed after signing).
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_escapes_html_characters_and_the_signature_covers_timestamp_and_body() {
        assert_eq!(
            rails_json(&json!({ "a": "<b>&\u{2028}" })),
            r#"{"a":"\u003cb\u003e\u0026\u2028"}"#
        );
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac secret`
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
