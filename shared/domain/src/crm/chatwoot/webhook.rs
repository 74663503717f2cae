//! Chatwoot's account webhooks: the signature every delivery carries (since v4.11.2) and the
//! contact, conversation and message events we act on.
//!
//! Chatwoot posts `{event, ...object}`: the object's `webhook_data` with the event name merged in
//! (`app/listeners/webhook_listener.rb`). It signs `"{timestamp}.{raw body}"` with HMAC-SHA256
//! keyed by the webhook's secret and sends `X-Chatwoot-Signature: sha256=<hex>`,
//! `X-Chatwoot-Timestamp: <unix seconds>` and `X-Chatwoot-Delivery: <uuid>`, the same on every
//! retry of one delivery, which is what the runtime deduplicates on.

use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::json::Malformed;
use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::fmt;

pub const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
pub const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";
pub const DELIVERY_HEADER: &str = "x-chatwoot-delivery";
/// The largest body we read; Chatwoot's payloads are a few kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How far a delivery's timestamp may be from our clock, either way: Chatwoot's guidance (five
/// minutes) and enough for its Sidekiq retries, which sign again with a fresh timestamp.
pub const TOLERANCE_SECONDS: i64 = 300;
const MAX_TEXT_CHARS: usize = 100_000;
const MAX_ATTACHMENTS: usize = 50;
const MAX_CUSTOM_ATTRIBUTES: usize = 100;

/// Why a delivery was refused, for the log and the 401's message. None says anything about the
/// secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The connector has no Chatwoot webhook secret: nothing can be verified.
    NoSecret,
    /// The header (its name) was absent or empty.
    Missing(&'static str),
    /// The header (its name) is not of Chatwoot's form.
    Garbled(&'static str),
    /// The timestamp is this many seconds away from our clock (negative: in the future).
    Stale { skew_seconds: i64 },
    /// Well formed, but not signed with this secret (or the body was changed).
    Wrong,
    /// A token URL was called, but the connector has no webhook token.
    NoToken,
    /// The token in the URL is not the connector's.
    WrongToken,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecret => {
                f.write_str("the Krayin connector has no Chatwoot webhook secret (secrets.webhook_secret)")
            }
            Self::Missing(header) => write!(f, "the {header} header is missing"),
            Self::Garbled(header) => write!(f, "the {header} header is not of Chatwoot's form"),
            Self::Stale { skew_seconds } => write!(
                f,
                "the delivery's timestamp is {} s away from our clock (at most {TOLERANCE_SECONDS} s)",
                skew_seconds.unsigned_abs()
            ),
            Self::Wrong => f.write_str(
                "the signature does not match: check that secrets.webhook_secret is this webhook's secret",
            ),
            Self::NoToken => f.write_str(
                "the Krayin connector has no webhook token (secrets.webhook_token) for this URL",
            ),
            Self::WrongToken => f.write_str(
                "the token in this URL is not the connector's secrets.webhook_token (it may have been rotated)",
            ),
        }
    }
}

/// Checks the token of a token URL (for a Chatwoot that signs nothing) against the connector's,
/// in constant time. Weaker than a signature: the token travels in every delivery's URL and
/// proves nothing about the body, which is why a signed delivery is preferred where Chatwoot
/// can sign.
pub fn verify_token(stored: Option<&str>, given: &str) -> Result<(), Refusal> {
    let stored = stored.filter(|token| !token.is_empty()).ok_or(Refusal::NoToken)?;
    if constant_time_eq(stored.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::WrongToken)
    }
}

/// Checks `X-Chatwoot-Signature` (`sha256=<hex>`, either case) over `"{timestamp}.{body}"`, in
/// constant time, and that `X-Chatwoot-Timestamp` is within [`TOLERANCE_SECONDS`] of
/// `now_seconds`, so that a captured delivery cannot be replayed later.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
    now_seconds: i64,
) -> Result<(), Refusal> {
    if secret.is_empty() {
        return Err(Refusal::NoSecret);
    }
    let timestamp = timestamp.trim();
    let signature_header = signature_header.trim();
    if timestamp.is_empty() {
        return Err(Refusal::Missing(TIMESTAMP_HEADER));
    }
    if signature_header.is_empty() {
        return Err(Refusal::Missing(SIGNATURE_HEADER));
    }
    let sent_at = (timestamp.len() <= 12 && timestamp.bytes().all(|b| b.is_ascii_digit()))
        .then(|| timestamp.parse::<i64>().ok())
        .flatten()
        .ok_or(Refusal::Garbled(TIMESTAMP_HEADER))?;
    let signature = signature_header
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("sha256="))
        .and_then(|_| signature_header.get(7..))
        .filter(|digest| digest.len() == 64)
        .and_then(|digest| hex::decode(digest).ok())
        .ok_or(Refusal::Garbled(SIGNATURE_HEADER))?;
    let skew_seconds = now_seconds.saturating_sub(sent_at);
    if skew_seconds.abs() > TOLERANCE_SECONDS {
        return Err(Refusal::Stale { skew_seconds });
    }
    let expected = hmac_sha256(secret, &[timestamp.as_bytes(), b".", body]);
    if constant_time_eq(&expected, &signature) {
        Ok(())
    } else {
        Err(Refusal::Wrong)
    }
}

/// What a delivery means for us.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatwootEvent {
    ContactCreated(ChatwootContact),
    ContactUpdated(ChatwootContact),
    ConversationCreated(ChatwootConversation),
    ConversationUpdated(ChatwootConversation),
    ConversationStatusChanged(ChatwootConversation),
    MessageCreated(ChatwootMessage),
    /// Any other event (its name): acknowledged and ignored.
    Other(String),
}

/// The events we act on: a piece of work each, named `chatwoot.<event>` in the sync log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    ContactCreated,
    ContactUpdated,
    ConversationCreated,
    ConversationUpdated,
    ConversationStatusChanged,
    MessageCreated,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Self::ContactCreated,
        Self::ContactUpdated,
        Self::ConversationCreated,
        Self::ConversationUpdated,
        Self::ConversationStatusChanged,
        Self::MessageCreated,
    ];

    /// The sync log's name of the work.
    pub fn operation(self) -> &'static str {
        match self {
            Self::ContactCreated => "chatwoot.contact_created",
            Self::ContactUpdated => "chatwoot.contact_updated",
            Self::ConversationCreated => "chatwoot.conversation_created",
            Self::ConversationUpdated => "chatwoot.conversation_updated",
            Self::ConversationStatusChanged => "chatwoot.conversation_status_changed",
            Self::MessageCreated => "chatwoot.message_created",
        }
    }

    pub fn from_operation(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|topic| topic.operation() == name)
    }
}

impl ChatwootEvent {
    /// The work the event is, or None for one we do not act on.
    pub fn topic(&self) -> Option<Topic> {
        Some(match self {
            Self::ContactCreated(_) => Topic::ContactCreated,
            Self::ContactUpdated(_) => Topic::ContactUpdated,
            Self::ConversationCreated(_) => Topic::ConversationCreated,
            Self::ConversationUpdated(_) => Topic::ConversationUpdated,
            Self::ConversationStatusChanged(_) => Topic::ConversationStatusChanged,
            Self::MessageCreated(_) => Topic::MessageCreated,
            Self::Other(_) => return None,
        })
    }

    /// The contact the event is about: whose work it is.
    pub fn contact(&self) -> Option<&ChatwootContact> {
        match self {
            Self::ContactCreated(contact) | Self::ContactUpdated(contact) => Some(contact),
            Self::ConversationCreated(conversation)
            | Self::ConversationUpdated(conversation)
            | Self::ConversationStatusChanged(conversation) => conversation.contact.as_ref(),
            Self::MessageCreated(message) => message.contact.as_ref(),
            Self::Other(_) => None,
        }
    }

    /// The record the event is about, as the sync log shows it: `chatwoot:contact:1`,
    /// `chatwoot:conversation:2` (its display id), `chatwoot:message:3`.
    pub fn subject(&self) -> Option<String> {
        Some(match self {
            Self::ContactCreated(contact) | Self::ContactUpdated(contact) => {
                format!("chatwoot:contact:{}", contact.id)
            }
            Self::ConversationCreated(conversation)
            | Self::ConversationUpdated(conversation)
            | Self::ConversationStatusChanged(conversation) => {
                format!("chatwoot:conversation:{}", conversation.id)
            }
            Self::MessageCreated(message) => format!("chatwoot:message:{}", message.id),
            Self::Other(_) => return None,
        })
    }
}

/// A Chatwoot contact as its `webhook_data`/`push_event_data` show it, with the attributes the
/// Krayin mapping reads pulled out of `additional_attributes` (where Chatwoot and the
/// integration's guide keep them) or else `custom_attributes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatwootContact {
    pub id: u64,
    pub name: Option<String>,
    pub email: Option<String>,
    /// As Chatwoot stores it: E.164 (`+14155550123`) for contacts it validated.
    pub phone_number: Option<String>,
    pub identifier: Option<String>,
    pub job_title: Option<String>,
    pub company_name: Option<String>,
    pub company_address: Option<String>,
    pub company_city: Option<String>,
    pub company_state: Option<String>,
    pub company_country: Option<String>,
    pub company_zipcode: Option<String>,
    pub lead_value: Option<f64>,
    /// `additional_attributes.description`, Chatwoot's own "about" field.
    pub description: Option<String>,
    pub custom_attributes: Map<String, Value>,
}

/// A conversation's inbox kind, from `channel` (`Channel::WebWidget`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatwootChannel {
    WebWidget,
    Api,
    Email,
    /// `Channel::Sms` (Bandwidth) and `Channel::TwilioSms` (Twilio SMS and Twilio WhatsApp).
    Sms,
    Whatsapp,
    FacebookPage,
    Instagram,
    Telegram,
    Line,
    /// Any other channel type, as Chatwoot named it.
    Other(String),
}

impl ChatwootChannel {
    pub fn parse(channel_type: &str) -> Self {
        let name = channel_type.trim();
        let name = name.strip_prefix("Channel::").unwrap_or(name);
        match name {
            "WebWidget" => Self::WebWidget,
            "Api" => Self::Api,
            "Email" => Self::Email,
            "Sms" | "TwilioSms" => Self::Sms,
            "Whatsapp" => Self::Whatsapp,
            "FacebookPage" => Self::FacebookPage,
            "Instagram" => Self::Instagram,
            "Telegram" => Self::Telegram,
            "Line" => Self::Line,
            _ => Self::Other(name.chars().take(64).collect()),
        }
    }
}

/// A conversation from a `conversation_*` event, or the one a message belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatwootConversation {
    /// The display id agents see (`#123`), which Chatwoot's payloads call `id`.
    pub id: u64,
    /// `open`, `resolved`, `pending` or `snoozed`.
    pub status: String,
    /// `meta.sender`.
    pub contact: Option<ChatwootContact>,
    /// `meta.assignee`'s name (or id when nameless).
    pub assignee: Option<String>,
    pub channel: ChatwootChannel,
    pub inbox_id: Option<u64>,
    /// `changed_attributes` of updates: the attribute, its previous and its current value.
    pub changed_attributes: Vec<ChangedAttribute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangedAttribute {
    pub name: String,
    pub previous: Value,
    pub current: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Incoming,
    Outgoing,
    Activity,
    Template,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatwootAttachment {
    /// `image`, `audio`, `video`, `file`, `location`…
    pub file_type: String,
    pub data_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatwootMessage {
    pub id: u64,
    pub content: String,
    pub message_type: MessageType,
    /// An agents' note, never shown to the contact.
    pub private: bool,
    pub sender_name: Option<String>,
    /// `contact`, `user` or `agent_bot`.
    pub sender_type: Option<String>,
    pub conversation_id: u64,
    pub conversation_status: Option<String>,
    pub channel: ChatwootChannel,
    /// The conversation's contact (`conversation.meta.sender`).
    pub contact: Option<ChatwootContact>,
    pub attachments: Vec<ChatwootAttachment>,
    pub created_at: Option<Timestamp>,
}

/// Reads a verified delivery. A body of the wrong shape is an Err saying what is wrong; nothing a
/// sender writes makes this panic (serde_json refuses nesting deeper than 128 levels).
pub fn parse(body: &[u8]) -> Result<ChatwootEvent, Malformed> {
    if body.len() > BODY_LIMIT {
        return Err(format!("the body is larger than {BODY_LIMIT} bytes").into());
    }
    let document: Value =
        serde_json::from_slice(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let payload = document.as_object().ok_or("the body is not a JSON object")?;
    let event = match payload.get("event") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim(),
        _ => return Err("the body has no event name".into()),
    };
    Ok(match event {
        "contact_created" => ChatwootEvent::ContactCreated(contact(payload)?),
        "contact_updated" => ChatwootEvent::ContactUpdated(contact(payload)?),
        "conversation_created" => ChatwootEvent::ConversationCreated(conversation(payload)?),
        "conversation_updated" => ChatwootEvent::ConversationUpdated(conversation(payload)?),
        "conversation_status_changed" => ChatwootEvent::ConversationStatusChanged(conversation(payload)?),
        "message_created" => ChatwootEvent::MessageCreated(message(payload)?),
        other => ChatwootEvent::Other(other.chars().take(64).collect()),
    })
}

/// A positive integer id; Chatwoot writes ids as JSON numbers.
fn id(value: Option<&Value>, what: &str) -> Result<u64, Malformed> {
    value
        .and_then(Value::as_u64)
        .filter(|id| *id > 0)
        .ok_or_else(|| Malformed::new(format!("{what} is missing or not a positive integer")))
}

/// A string that is not blank, bounded; anything else counts as absent: optional fields vary
/// between Chatwoot versions and are not worth refusing a delivery for.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| text.chars().take(MAX_TEXT_CHARS).collect())
}

fn members(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

/// A number, or a string holding one (`"75000.00"`), as attribute forms store either.
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => crate::json::number_in_text(text),
        _ => None,
    }
    .filter(|number| number.is_finite() && *number >= 0.0)
}

fn contact(object: &Map<String, Value>) -> Result<ChatwootContact, Malformed> {
    let additional = members(object.get("additional_attributes"));
    let custom = members(object.get("custom_attributes"));
    // The integration's guide keeps its fields in additional_attributes; businesses often set
    // them as custom attributes instead, which are read when the first has none.
    let attribute = |name: &str| {
        text(additional.and_then(|a| a.get(name))).or_else(|| text(custom.and_then(|c| c.get(name))))
    };
    let lead_value = number(additional.and_then(|a| a.get("lead_value")))
        .or_else(|| number(custom.and_then(|c| c.get("lead_value"))));
    Ok(ChatwootContact {
        id: id(object.get("id"), "the contact's id")?,
        name: text(object.get("name")),
        email: text(object.get("email")),
        phone_number: text(object.get("phone_number")),
        identifier: text(object.get("identifier")),
        job_title: attribute("job_title"),
        company_name: attribute("company_name"),
        company_address: attribute("company_address"),
        company_city: attribute("company_city").or_else(|| attribute("city")),
        company_state: attribute("company_state"),
        company_country: attribute("company_country").or_else(|| attribute("country")),
        company_zipcode: attribute("company_zipcode"),
        lead_value,
        description: attribute("description"),
        custom_attributes: custom
            .map(|custom| {
                custom
                    .iter()
                    .take(MAX_CUSTOM_ATTRIBUTES)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn conversation(object: &Map<String, Value>) -> Result<ChatwootConversation, Malformed> {
    let meta = members(object.get("meta"));
    let contact = match meta.and_then(|meta| meta.get("sender")) {
        Some(Value::Object(sender)) => Some(contact(sender)?),
        _ => None,
    };
    let assignee = members(meta.and_then(|meta| meta.get("assignee"))).and_then(|assignee| {
        text(assignee.get("name")).or_else(|| {
            assignee
                .get("id")
                .and_then(Value::as_u64)
                .map(|id| id.to_string())
        })
    });
    let changed_attributes = match object.get("changed_attributes") {
        Some(Value::Array(changes)) => changes
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|change| change.iter())
            .take(50)
            .map(|(name, values)| ChangedAttribute {
                name: name.clone(),
                previous: values.get("previous_value").cloned().unwrap_or(Value::Null),
                current: values.get("current_value").cloned().unwrap_or(Value::Null),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(ChatwootConversation {
        id: id(object.get("id"), "the conversation's id")?,
        status: text(object.get("status")).ok_or("the conversation has no status")?,
        contact,
        assignee,
        channel: ChatwootChannel::parse(&text(object.get("channel")).unwrap_or_default()),
        inbox_id: object.get("inbox_id").and_then(Value::as_u64),
        changed_attributes,
    })
}

fn message_type(value: Option<&Value>) -> Result<MessageType, Malformed> {
    // webhook_data writes the enum's name; push_event_data its integer.
    match value {
        Some(Value::String(name)) => match name.as_str() {
            "incoming" => Ok(MessageType::Incoming),
            "outgoing" => Ok(MessageType::Outgoing),
            "activity" => Ok(MessageType::Activity),
            "template" => Ok(MessageType::Template),
            _ => Err("the message's message_type is not one of Chatwoot's".into()),
        },
        Some(Value::Number(number)) => match number.as_u64() {
            Some(0) => Ok(MessageType::Incoming),
            Some(1) => Ok(MessageType::Outgoing),
            Some(2) => Ok(MessageType::Activity),
            Some(3) => Ok(MessageType::Template),
            _ => Err("the message's message_type is not one of Chatwoot's".into()),
        },
        _ => Err("the message has no message_type".into()),
    }
}

fn created_at(value: Option<&Value>) -> Option<Timestamp> {
    match value? {
        Value::String(text) => Timestamp::parse_rfc3339(text),
        Value::Number(seconds) => seconds
            .as_i64()
            .filter(|seconds| (0..=253_402_300_799).contains(seconds))
            .map(|seconds| Timestamp::from_millis(seconds * 1000)),
        _ => None,
    }
}

fn message(object: &Map<String, Value>) -> Result<ChatwootMessage, Malformed> {
    let conversation = members(object.get("conversation")).ok_or("the message has no conversation")?;
    let sender = members(object.get("sender"));
    // The conversation's contact; a contact's own message names them as its sender too.
    let contact = match members(conversation.get("meta")).and_then(|meta| meta.get("sender")) {
        Some(Value::Object(meta_sender)) => Some(contact(meta_sender)?),
        _ => match sender {
            Some(sender) if text(sender.get("type")).as_deref() == Some("contact") => Some(contact(sender)?),
            _ => None,
        },
    };
    let attachments = match object.get("attachments") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|item| {
                Some(ChatwootAttachment {
                    file_type: text(item.get("file_type")).unwrap_or_else(|| "file".to_owned()),
                    data_url: text(item.get("data_url"))?,
                })
            })
            .take(MAX_ATTACHMENTS)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ChatwootMessage {
        id: id(object.get("id"), "the message's id")?,
        content: text(object.get("content")).unwrap_or_default(),
        message_type: message_type(object.get("message_type"))?,
        private: object.get("private").and_then(Value::as_bool).unwrap_or(false),
        sender_name: sender.and_then(|sender| text(sender.get("name"))),
        sender_type: sender.and_then(|sender| text(sender.get("type"))),
        conversation_id: id(conversation.get("id"), "the message's conversation id")?,
        conversation_status: text(conversation.get("status")),
        channel: ChatwootChannel::parse(&text(conversation.get("channel")).unwrap_or_default()),
        contact,
        attachments,
        created_at: created_at(object.get("created_at")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"wh-secret-5f3c";
    const NOW: i64 = 1_767_225_600;

    fn sign(timestamp: &str, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(SECRET, &[timestamp.as_bytes(), b".", body]))
        )
    }

    /// `contact_updated` as WebhookListener sends it: Contact#webhook_data plus event and changes.
    pub(crate) const CONTACT_UPDATED: &str = r#"{
        "account": {"id": 1, "name": "Acme"},
        "additional_attributes": {"city": "San Francisco", "country": "United States", "description": "Met at the fair",
            "company_name": "Acme Corp", "job_title": "VP of Engineering", "company_address": "123 Main St",
            "company_city": "San Francisco", "company_state": "CA", "company_country": "USA", "company_zipcode": "94105",
            "lead_value": "75000.00", "social_profiles": {"twitter": ""}},
        "avatar": "", "custom_attributes": {"plan": "pro"}, "email": "ann@acme.com", "id": 42,
        "identifier": null, "name": "Ann Lee", "phone_number": "+14155550123", "thumbnail": "", "blocked": false,
        "event": "contact_updated",
        "changed_attributes": [{"email": {"previous_value": null, "current_value": "ann@acme.com"}}]
    }"#;

    /// `conversation_status_changed`: Conversation#webhook_data (push_data) with changes.
    pub(crate) const CONVERSATION_RESOLVED: &str = r#"{
        "additional_attributes": {"browser": {"browser_name": "Chrome"}, "referer": "https://acme.com/pricing"},
        "can_reply": true, "channel": "Channel::WebWidget", "contact_inbox": {"id": 7, "contact_id": 42, "inbox_id": 1, "source_id": "d4f1"},
        "id": 123, "inbox_id": 1, "messages": [], "labels": [], "status": "resolved",
        "meta": {"sender": {"additional_attributes": {}, "custom_attributes": {}, "email": "ann@acme.com", "id": 42,
                 "identifier": null, "name": "Ann Lee", "phone_number": null, "thumbnail": "", "type": "contact"},
                 "assignee": {"id": 3, "name": "Sam Agent", "available_name": "Sam", "type": "user"}, "hmac_verified": false},
        "custom_attributes": {}, "snoozed_until": null, "unread_count": 0, "first_reply_created_at": "2026-01-01T10:02:00.000Z",
        "priority": null, "waiting_since": 0, "agent_last_seen_at": 1767261720, "contact_last_seen_at": 0,
        "last_activity_at": 1767261720, "timestamp": 1767261600, "created_at": 1767261600, "updated_at": 1767261720.5,
        "account": {"id": 1, "name": "Acme"},
        "event": "conversation_status_changed",
        "changed_attributes": [{"status": {"previous_value": "open", "current_value": "resolved"}}]
    }"#;

    /// `message_created`: Message#webhook_data with an attachment.
    pub(crate) const MESSAGE_CREATED: &str = r#"{
        "account": {"id": 1, "name": "Acme"}, "additional_attributes": {}, "content_attributes": {},
        "content_type": "text", "content": "Do you ship to Canada?",
        "conversation": {"additional_attributes": {}, "can_reply": true, "channel": "Channel::Whatsapp", "id": 123,
            "inbox_id": 2, "status": "open", "messages": [],
            "meta": {"sender": {"additional_attributes": {"company_name": "Acme Corp"}, "custom_attributes": {},
                     "email": null, "id": 42, "name": "Ann Lee", "phone_number": "+14155550123", "type": "contact"},
                     "assignee": null}},
        "created_at": "2026-01-01T10:00:00.000Z", "id": 9001, "inbox": {"id": 2, "name": "WhatsApp"},
        "message_type": "incoming", "private": false,
        "sender": {"account": {"id": 1, "name": "Acme"}, "id": 42, "name": "Ann Lee", "email": null, "type": "contact"},
        "source_id": "wamid.HBgL", "attachments": [{"id": 5, "message_id": 9001, "file_type": "image", "account_id": 1,
            "extension": null, "data_url": "https://chat.acme.com/rails/active_storage/blobs/photo.jpg", "thumb_url": "", "file_size": 2048}],
        "event": "message_created"
    }"#;

    #[test]
    fn a_token_url_takes_only_the_connectors_own_token() {
        let stored = "0123456789abcdef0123456789abcdef";
        assert_eq!(verify_token(Some(stored), stored), Ok(()));
        assert_eq!(verify_token(Some(stored), &stored[1..]), Err(Refusal::WrongToken));
        assert_eq!(verify_token(Some(stored), ""), Err(Refusal::WrongToken));
        assert_eq!(verify_token(None, stored), Err(Refusal::NoToken));
        assert_eq!(
            verify_token(Some(""), ""),
            Err(Refusal::NoToken),
            "an empty token is none"
        );
    }

    #[test]
    fn a_delivery_signed_over_timestamp_and_body_verifies() {
        let body = MESSAGE_CREATED.as_bytes();
        let timestamp = NOW.to_string();
        assert_eq!(
            verify(SECRET, &timestamp, body, &sign(&timestamp, body), NOW),
            Ok(())
        );
        let upper = sign(&timestamp, body)
            .to_uppercase()
            .replacen("SHA256=", "sha256=", 1);
        assert_eq!(verify(SECRET, &timestamp, body, &upper, NOW + 299), Ok(()));
    }

    #[test]
    fn refusals_say_which_part_of_the_delivery_is_wrong() {
        let body = b"{\"event\":\"contact_created\"}";
        let ts = NOW.to_string();
        let good = sign(&ts, body);
        let old = (NOW - 301).to_string();
        let future = (NOW + 400).to_string();
        let earlier = (NOW - 1).to_string();
        type Case<'a> = (&'a [u8], &'a str, &'a [u8], String, Refusal, &'a str);
        let cases: Vec<Case> = vec![
            (b"", &ts, body, good.clone(), Refusal::NoSecret, "no secret"),
            (
                SECRET,
                "",
                body,
                good.clone(),
                Refusal::Missing(TIMESTAMP_HEADER),
                "no timestamp",
            ),
            (
                SECRET,
                &ts,
                body,
                " ".to_owned(),
                Refusal::Missing(SIGNATURE_HEADER),
                "no signature",
            ),
            (
                SECRET,
                "yesterday",
                body,
                good.clone(),
                Refusal::Garbled(TIMESTAMP_HEADER),
                "a word timestamp",
            ),
            (
                SECRET,
                "-5",
                body,
                good.clone(),
                Refusal::Garbled(TIMESTAMP_HEADER),
                "a negative timestamp",
            ),
            (
                SECRET,
                &ts,
                body,
                good.replacen("sha256=", "", 1),
                Refusal::Garbled(SIGNATURE_HEADER),
                "no scheme",
            ),
            (
                SECRET,
                &ts,
                body,
                good.replacen("sha256=", "sha1=", 1),
                Refusal::Garbled(SIGNATURE_HEADER),
                "another scheme",
            ),
            (
                SECRET,
                &ts,
                body,
                format!("{}zz", &good[..69]),
                Refusal::Garbled(SIGNATURE_HEADER),
                "not hex",
            ),
            (
                SECRET,
                &ts,
                body,
                good[..40].to_owned(),
                Refusal::Garbled(SIGNATURE_HEADER),
                "a cut digest",
            ),
            (
                SECRET,
                &old,
                body,
                sign(&old, body),
                Refusal::Stale { skew_seconds: 301 },
                "301 s old",
            ),
            (
                SECRET,
                &future,
                body,
                sign(&future, body),
                Refusal::Stale { skew_seconds: -400 },
                "from the future",
            ),
            (
                b"other",
                &ts,
                body,
                good.clone(),
                Refusal::Wrong,
                "another secret",
            ),
            (
                SECRET,
                &ts,
                b"{\"event\":\"contact_updated\"}",
                good.clone(),
                Refusal::Wrong,
                "a changed body",
            ),
            (
                SECRET,
                &earlier,
                body,
                good.clone(),
                Refusal::Wrong,
                "a swapped timestamp",
            ),
        ];
        for (secret, timestamp, body, signature, refusal, description) in cases {
            assert_eq!(
                verify(secret, timestamp, body, &signature, NOW),
                Err(refusal.clone()),
                "{description}"
            );
            let said = refusal.to_string();
            assert!(
                !said.contains("wh-secret") && !said.is_empty(),
                "{description}: {said}"
            );
        }
    }

    #[test]
    fn a_contact_update_carries_its_company_job_and_lead_value() {
        let Ok(ChatwootEvent::ContactUpdated(contact)) = parse(CONTACT_UPDATED.as_bytes()) else {
            panic!("not a contact update");
        };
        assert_eq!(contact.id, 42);
        assert_eq!(contact.name.as_deref(), Some("Ann Lee"));
        assert_eq!(contact.email.as_deref(), Some("ann@acme.com"));
        assert_eq!(contact.phone_number.as_deref(), Some("+14155550123"));
        assert_eq!(contact.job_title.as_deref(), Some("VP of Engineering"));
        assert_eq!(contact.company_name.as_deref(), Some("Acme Corp"));
        assert_eq!(contact.company_zipcode.as_deref(), Some("94105"));
        assert_eq!(contact.company_country.as_deref(), Some("USA"));
        assert_eq!(contact.lead_value, Some(75_000.0));
        assert_eq!(contact.description.as_deref(), Some("Met at the fair"));
        assert_eq!(contact.custom_attributes.get("plan"), Some(&Value::from("pro")));
    }

    #[test]
    fn custom_attributes_fill_in_what_additional_attributes_lack() {
        let body =
            br#"{"event":"contact_created","id":7,"name":"Bo","additional_attributes":{"city":"Leeds"},
            "custom_attributes":{"company_name":"Bo Ltd","lead_value":1200}}"#;
        let Ok(ChatwootEvent::ContactCreated(contact)) = parse(body) else {
            panic!("not a contact");
        };
        assert_eq!(contact.company_name.as_deref(), Some("Bo Ltd"));
        assert_eq!(contact.company_city.as_deref(), Some("Leeds"));
        assert_eq!(contact.lead_value, Some(1200.0));
        assert_eq!(contact.email, None);
    }

    #[test]
    fn a_status_change_carries_the_display_id_contact_assignee_and_change() {
        let Ok(ChatwootEvent::ConversationStatusChanged(conversation)) =
            parse(CONVERSATION_RESOLVED.as_bytes())
        else {
            panic!("not a status change");
        };
        assert_eq!(conversation.id, 123);
        assert_eq!(conversation.status, "resolved");
        assert_eq!(conversation.channel, ChatwootChannel::WebWidget);
        assert_eq!(conversation.assignee.as_deref(), Some("Sam Agent"));
        assert_eq!(conversation.contact.map(|c| c.id), Some(42));
        assert_eq!(
            conversation.changed_attributes,
            vec![ChangedAttribute {
                name: "status".to_owned(),
                previous: Value::from("open"),
                current: Value::from("resolved"),
            }]
        );
    }

    #[test]
    fn a_message_carries_its_conversation_channel_sender_and_files() {
        let Ok(ChatwootEvent::MessageCreated(message)) = parse(MESSAGE_CREATED.as_bytes()) else {
            panic!("not a message");
        };
        assert_eq!((message.id, message.conversation_id), (9001, 123));
        assert_eq!(message.message_type, MessageType::Incoming);
        assert!(!message.private);
        assert_eq!(message.channel, ChatwootChannel::Whatsapp);
        assert_eq!(message.sender_name.as_deref(), Some("Ann Lee"));
        assert_eq!(message.sender_type.as_deref(), Some("contact"));
        assert_eq!(message.conversation_status.as_deref(), Some("open"));
        assert_eq!(
            message.contact.and_then(|c| c.company_name).as_deref(),
            Some("Acme Corp")
        );
        assert_eq!(message.attachments.len(), 1);
        assert_eq!(message.attachments[0].file_type, "image");
        assert_eq!(
            message.created_at.map(Timestamp::to_rfc3339).as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );
    }

    #[test]
    fn channel_types_are_read_with_or_without_their_prefix() {
        let cases = [
            ("Channel::WebWidget", ChatwootChannel::WebWidget),
            ("Channel::Api", ChatwootChannel::Api),
            ("Channel::Email", ChatwootChannel::Email),
            ("Channel::TwilioSms", ChatwootChannel::Sms),
            ("Channel::Sms", ChatwootChannel::Sms),
            ("Whatsapp", ChatwootChannel::Whatsapp),
            ("Channel::FacebookPage", ChatwootChannel::FacebookPage),
            ("Channel::Voice", ChatwootChannel::Other("Voice".to_owned())),
        ];
        for (name, channel) in cases {
            assert_eq!(ChatwootChannel::parse(name), channel, "{name}");
        }
    }

    #[test]
    fn other_events_are_named_and_ignored() {
        assert_eq!(
            parse(br#"{"event":"webwidget_triggered","id":1}"#),
            Ok(ChatwootEvent::Other("webwidget_triggered".to_owned()))
        );
    }

    #[test]
    fn hostile_or_malformed_bodies_are_refused_without_panicking() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let huge = format!(
            r#"{{"event":"contact_created","id":1,"name":"{}"}}"#,
            "x".repeat(BODY_LIMIT)
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (b"<html>".to_vec(), "not JSON"),
            (b"[]".to_vec(), "a list"),
            (b"{}".to_vec(), "no event"),
            (br#"{"event":7}"#.to_vec(), "a number event"),
            (deep.into_bytes(), "10,000 levels deep"),
            (huge.into_bytes(), "over a MiB"),
            (br#"{"event":"contact_created","id":"42"}"#.to_vec(), "a string id"),
            (br#"{"event":"contact_created","id":0}"#.to_vec(), "id 0"),
            (br#"{"event":"conversation_created","id":5}"#.to_vec(), "no status"),
            (br#"{"event":"message_created","id":5,"message_type":"incoming"}"#.to_vec(), "no conversation"),
            (
                br#"{"event":"message_created","id":5,"message_type":"shout","conversation":{"id":1}}"#.to_vec(),
                "an unknown message type",
            ),
            (
                br#"{"event":"message_created","id":5,"message_type":"incoming","conversation":{"id":1,"meta":{"sender":{"id":"x"}}}}"#.to_vec(),
                "a contact without an id",
            ),
        ];
        for (body, description) in cases {
            assert!(parse(&body).is_err(), "{description}");
        }
    }

    #[test]
    fn fields_of_the_wrong_type_count_as_absent_where_they_are_optional() {
        let body = br#"{"event":"message_created","id":5,"message_type":1,"content":["x"],"private":"yes",
            "created_at":1767261600,"attachments":[{"file_type":"file"},7],"sender":"me",
            "conversation":{"id":9,"channel":5,"meta":[]}}"#;
        let Ok(ChatwootEvent::MessageCreated(message)) = parse(body) else {
            panic!("refused");
        };
        assert_eq!(message.message_type, MessageType::Outgoing);
        assert_eq!(message.content, "");
        assert!(!message.private && message.attachments.is_empty() && message.contact.is_none());
        assert_eq!(message.created_at.map(Timestamp::seconds), Some(1_767_261_600));
        assert_eq!(message.channel, ChatwootChannel::Other(String::new()));
    }
}
