//! Kustomer's outbound webhooks: the signature every delivery carries and what a delivery means
//! for us.
//!
//! Kustomer posts an event envelope (`{id, name, org, data, changes, createdAt}`) with
//! `X-Kustomer-Webhook-Event` (the event name) and `X-Kustomer-Webhook-Signature`, the lowercase
//! hex HMAC-SHA256 of the raw body keyed with the webhook's `token`. Deliveries are retried for
//! about an hour, so one event may arrive twice and events may arrive out of order: the envelope
//! `id` identifies a delivery and the runtime keeps only what moves a record forward.

use crate::crypto::{constant_time_eq, hmac_sha256, sha256_hex};
use crate::json::Malformed;
use crate::message::ConversationStatus;
use serde_json::{Map, Value};

pub const EVENT_HEADER: &str = "x-kustomer-webhook-event";
pub const SIGNATURE_HEADER: &str = "x-kustomer-webhook-signature";
/// The largest body we read; Kustomer's envelopes are tens of kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Ids are ObjectIds (24 characters); anything much longer is not one of Kustomer's.
const MAX_ID_CHARS: usize = 64;
const MAX_ATTACHMENTS: usize = 20;

/// True when `signature` is the hex HMAC-SHA256 of `body` keyed with `secret` (either case),
/// compared in constant time. An empty secret verifies nothing.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Ok(signature) = hex::decode(signature.trim()) else {
        return false;
    };
    constant_time_eq(&hmac_sha256(secret, &[body]), &signature)
}

/// What a delivery means for us.
#[derive(Debug, Clone, PartialEq)]
pub enum KustomerEvent {
    /// A message on a conversation's timeline. `external_id` is what the creator set (ours start
    /// with our message id format — UUID), `direction` in|out, `text` from preview/body,
    /// `created_by_user` when an agent wrote it.
    Message {
        conversation_id: String,
        message_id: String,
        direction: String,
        text: String,
        external_id: Option<String>,
        channel: Option<String>,
        created_by_user: Option<String>,
        attachment_urls: Vec<String>,
    },
    /// A conversation changed: status before/after, assigned users/teams after, satisfaction.
    Conversation {
        conversation_id: String,
        status: Option<String>,
        previous_status: Option<String>,
        assigned_users: Option<Vec<String>>,
        satisfaction: Option<Satisfaction>,
    },
    /// Anything else: acknowledged, kept out of our records.
    Other,
}

/// A customer's rating of a conversation, as far as Kustomer has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Satisfaction {
    pub score: Option<f64>,
    pub level: Option<String>,
    pub comment: Option<String>,
}

/// One delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// The event's id: the same on every retry of one delivery.
    pub id: String,
    /// `kustomer.message.create`, `kustomer.conversation.update`…
    pub name: String,
    pub created_at: Option<String>,
    pub event: KustomerEvent,
}

/// Reads a delivery whose signature was verified. The name is the body's (which the signature
/// covers), else the header's. A body of the wrong shape is an Err saying what is wrong; nothing
/// a sender writes makes this panic (serde_json refuses nesting deeper than 128 levels).
pub fn parse(event_header: Option<&str>, body: &[u8]) -> Result<InboundEvent, Malformed> {
    let envelope = envelope(body)?;
    read(&envelope, id(envelope.get("id"), "id")?, event_header)
}

/// A body's JSON object, within [`BODY_LIMIT`].
fn envelope(body: &[u8]) -> Result<Map<String, Value>, Malformed> {
    if body.len() > BODY_LIMIT {
        return Err(format!("the body is larger than {BODY_LIMIT} bytes").into());
    }
    match serde_json::from_slice(body).map_err(|error| format!("the body is not JSON: {error}"))? {
        Value::Object(envelope) => Ok(envelope),
        _ => Err("the body is not a JSON object".into()),
    }
}

/// Reads the integration guide's own webhook body, `{"event": "conversation.updated", "data":
/// {…the Kustomer conversation…}}` (`POST /api/webhooks/kustomer`), or Kustomer's envelope sent
/// there. The guide's names are Kustomer's without its prefix and in the past tense
/// (`conversation.updated` is `kustomer.conversation.update`); a body without an `id` is
/// identified by its digest, so the same body delivered twice acts once.
pub fn parse_guide(body: &[u8]) -> Result<InboundEvent, Malformed> {
    let envelope = envelope(body)?;
    let id = match envelope.get("id") {
        None | Some(Value::Null) => format!("sha256:{}", sha256_hex(body)),
        given => id(given, "id")?,
    };
    let guide_name = match envelope.get("event") {
        None | Some(Value::Null) => None,
        Some(Value::String(event)) => Some(match event.trim() {
            "conversation.created" | "conversation.create" => "kustomer.conversation.create",
            "conversation.updated" | "conversation.update" => "kustomer.conversation.update",
            "message.created" | "message.create" => "kustomer.message.create",
            other => other,
        }),
        Some(_) => return Err("event is not a string".into()),
    };
    read(&envelope, id, guide_name)
}

/// An envelope's event, its id already read; `event_header` names it when the envelope does not.
fn read(
    envelope: &Map<String, Value>,
    id: String,
    event_header: Option<&str>,
) -> Result<InboundEvent, Malformed> {
    let name = match envelope.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        Some(Value::String(_)) | None | Some(Value::Null) => event_header
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .ok_or("the event has no name")?,
        Some(_) => return Err("name is not a string".into()),
    };
    let created_at = optional_text(envelope.get("createdAt"));
    let event = match name.as_str() {
        "kustomer.message.create" => message(envelope)?,
        "kustomer.conversation.create" | "kustomer.conversation.update" => conversation(envelope)?,
        _ => KustomerEvent::Other,
    };
    Ok(InboundEvent {
        id,
        name,
        created_at,
        event,
    })
}

/// Our id of the message that sends an agent's Kustomer reply `kustomer_message` of the
/// connector: the same for every delivery of the reply, so that a delivery handled again after
/// a failure on our side (its claim let go) finds the message it accepted before instead of
/// sending the reply twice.
pub fn reply_message_id(
    connector: &crate::ids::ConnectorId,
    kustomer_message: &str,
) -> crate::ids::MessageId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!(
        "kustomer-reply|{}|{kustomer_message}",
        connector.as_str()
    ));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    crate::ids::MessageId::generate(bytes)
}

/// Our conversation status for Kustomer's: `snoozed` is waiting (`pending`), `done` is resolved.
pub fn our_status(kustomer_status: &str) -> Option<ConversationStatus> {
    match kustomer_status.trim() {
        "open" => Some(ConversationStatus::Open),
        "snoozed" => Some(ConversationStatus::Pending),
        "done" => Some(ConversationStatus::Resolved),
        _ => None,
    }
}

/// The `data` resource of an envelope, which must be of `kind`.
fn data<'a>(envelope: &'a Map<String, Value>, kind: &str) -> Result<&'a Map<String, Value>, Malformed> {
    let data = envelope
        .get("data")
        .and_then(Value::as_object)
        .ok_or("the event has no data object")?;
    match data.get("type").and_then(Value::as_str) {
        Some(found) if found == kind => Ok(data),
        Some(found) => Err(format!("the event's data is a {found:.40}, not a {kind}").into()),
        None => Err("the event's data has no type".into()),
    }
}

fn attributes(data: &Map<String, Value>) -> Result<&Map<String, Value>, Malformed> {
    match data.get("attributes") {
        Some(Value::Object(attributes)) => Ok(attributes),
        _ => Err("the event's data has no attributes object".into()),
    }
}

/// An id we will put in a path or a record: a non-empty string without spaces, of sane length.
fn id(value: Option<&Value>, what: &str) -> Result<String, Malformed> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what} is missing or not a string"))?;
    let valid = !text.is_empty()
        && text.chars().count() <= MAX_ID_CHARS
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    valid
        .then(|| text.to_owned())
        .ok_or_else(|| Malformed::new(format!("{what} is not an id")))
}

/// The id a relationship points at.
fn related<'a>(data: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    data.get("relationships")?.get(name)?.get("data")?.get("id")
}

/// A string that is not blank; anything else (absent, null, another type) counts as absent:
/// optional fields vary between Kustomer's event kinds and are not worth refusing a delivery for.
fn optional_text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn message(envelope: &Map<String, Value>) -> Result<KustomerEvent, Malformed> {
    let data = data(envelope, "message")?;
    let attributes = attributes(data)?;
    let direction = match attributes.get("direction").and_then(Value::as_str) {
        Some(direction @ ("in" | "out")) => direction.to_owned(),
        _ => return Err("the message's direction is not in or out".into()),
    };
    // `body` is the whole text where Kustomer keeps one; `preview` is what every message has.
    let text = optional_text(attributes.get("body"))
        .or_else(|| optional_text(attributes.get("preview")))
        .unwrap_or_default();
    let created_by_user = data
        .get("relationships")
        .and_then(|relationships| relationships.get("createdBy"))
        .and_then(|created_by| created_by.get("data"))
        .filter(|user| user.get("type").and_then(Value::as_str) == Some("user"))
        .and_then(|user| optional_text(user.get("id")));
    Ok(KustomerEvent::Message {
        conversation_id: id(related(data, "conversation"), "the message's conversation")?,
        message_id: id(data.get("id"), "the message's id")?,
        direction,
        text,
        external_id: optional_text(attributes.get("externalId")),
        channel: optional_text(attributes.get("channel")),
        created_by_user,
        attachment_urls: attachment_urls(attributes),
    })
}

/// The links of a message's files, where Kustomer includes them (`attachments`, or the channel's
/// `meta.attachments`): http(s) URLs only, at most [`MAX_ATTACHMENTS`].
fn attachment_urls(attributes: &Map<String, Value>) -> Vec<String> {
    let lists = [
        attributes.get("attachments"),
        attributes.get("meta").and_then(|meta| meta.get("attachments")),
    ];
    let mut urls: Vec<String> = Vec::new();
    for item in lists.into_iter().flatten().filter_map(Value::as_array).flatten() {
        let url = ["url", "link", "contentUrl"]
            .iter()
            .find_map(|key| optional_text(item.get(key)))
            .or_else(|| optional_text(Some(item)));
        if let Some(url) = url.filter(|url| url.starts_with("https://") || url.starts_with("http://"))
            && !urls.contains(&url)
            && urls.len() < MAX_ATTACHMENTS
        {
            urls.push(url);
        }
    }
    urls
}

fn conversation(envelope: &Map<String, Value>) -> Result<KustomerEvent, Malformed> {
    let data = data(envelope, "conversation")?;
    let attributes = attributes(data)?;
    let previous_status = envelope
        .get("changes")
        .and_then(|changes| changes.get("attributes"))
        .and_then(|changed| changed.get("status"))
        .and_then(|status| optional_text(status.get("before")));
    let assigned_users = attributes
        .get("assignedUsers")
        .and_then(Value::as_array)
        .map(|users| {
            users
                .iter()
                .filter_map(|user| optional_text(Some(user)))
                .collect()
        });
    Ok(KustomerEvent::Conversation {
        conversation_id: id(data.get("id"), "the conversation's id")?,
        status: optional_text(attributes.get("status")),
        previous_status,
        assigned_users,
        satisfaction: satisfaction(attributes),
    })
}

/// The rating on a conversation, read leniently: `satisfaction` is the score (0 until the
/// customer rates, which is no score), `satisfactionLevel` a level name or an object with the
/// survey's state (`status` or `rating`) and answers, whose first text answer is the comment.
fn satisfaction(attributes: &Map<String, Value>) -> Option<Satisfaction> {
    let score = attributes
        .get("satisfaction")
        .and_then(Value::as_f64)
        .filter(|score| *score > 0.0);
    let level_value = attributes.get("satisfactionLevel");
    let (level, comment) = match level_value {
        Some(Value::String(_)) => (optional_text(level_value), None),
        Some(Value::Object(survey)) => {
            let level = optional_text(survey.get("rating")).or_else(|| optional_text(survey.get("status")));
            let comment = optional_text(survey.get("comment")).or_else(|| {
                survey
                    .get("answers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find_map(|answer| {
                        optional_text(answer.get("answer")).or_else(|| optional_text(Some(answer)))
                    })
            });
            (level, comment)
        }
        _ => (None, None),
    };
    (score.is_some() || level.is_some() || comment.is_some()).then_some(Satisfaction {
        score,
        level,
        comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"hook-token";

    fn sign(body: &[u8]) -> String {
        hex::encode(hmac_sha256(SECRET, &[body]))
    }

    fn parsed(body: &Value) -> InboundEvent {
        parse(None, body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn message_event() -> Value {
        json!({
            "id": "67dd47dfbc632c1804db1bf1",
            "name": "kustomer.message.create",
            "org": "67dd47dfbc632c1804db1b00",
            "data": {
                "type": "message",
                "id": "67dd47dfbc632c1804db1bf2",
                "attributes": {
                    "channel": "whatsapp",
                    "app": "crm-edge",
                    "direction": "out",
                    "preview": "Your order ships today",
                    "externalId": null,
                    "status": "sent",
                    "meta": { "attachments": [{ "url": "https://files.kustomer.example/a.png" }, { "url": "javascript:x" }] },
                    "createdAt": "2026-11-23T10:05:00.000Z"
                },
                "relationships": {
                    "createdBy": { "data": { "type": "user", "id": "67dd47dfbc632c1804db1bf3" } },
                    "conversation": { "data": { "type": "conversation", "id": "67dd47dfbc632c1804db1bf4" } },
                    "customer": { "data": { "type": "customers", "id": "67dd47dfbc632c1804db1bf5" } }
                }
            },
            "createdAt": "2026-11-23T10:05:00.100Z"
        })
    }

    fn conversation_event() -> Value {
        json!({
            "id": "67dd47dfbc632c1804db1c01",
            "name": "kustomer.conversation.update",
            "data": {
                "type": "conversation",
                "id": "67dd47dfbc632c1804db1bf4",
                "attributes": {
                    "status": "done",
                    "assignedUsers": ["67dd47dfbc632c1804db1bf3"],
                    "assignedTeams": ["67dd47dfbc632c1804db1bf6"],
                    "satisfaction": 4,
                    "satisfactionLevel": { "sentByTeams": [], "rating": "satisfied", "answers": [{ "answer": "Quick and kind" }] }
                }
            },
            "changes": { "attributes": { "status": { "op": "replace", "before": "open", "after": "done" } } },
            "createdAt": "2026-11-23T11:00:00.000Z"
        })
    }

    #[test]
    fn the_guides_body_reads_as_kustomers_event_of_the_same_meaning() {
        let conversation = json!({ "type": "conversation", "id": "5f0000000000000000000001", "attributes": { "status": "done" } });
        let guide = serde_json::to_vec(&json!({ "event": "conversation.updated", "data": conversation }))
            .unwrap_or_default();
        let read = parse_guide(&guide).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(read.name, "kustomer.conversation.update");
        assert!(
            read.id.starts_with("sha256:"),
            "identified by its digest: {}",
            read.id
        );
        assert_eq!(
            parse_guide(&guide).map(|again| again.id),
            Ok(read.id.clone()),
            "the same body, the same id"
        );
        assert!(
            matches!(read.event, KustomerEvent::Conversation { ref status, .. } if status.as_deref() == Some("done"))
        );
        let kustomers = serde_json::to_vec(
            &json!({ "id": "e1", "name": "kustomer.conversation.update", "data": conversation }),
        )
        .unwrap_or_default();
        assert_eq!(
            parse_guide(&kustomers).map(|own| (own.id, own.name)),
            Ok(("e1".to_owned(), "kustomer.conversation.update".to_owned()))
        );
        for (body, why) in [
            (
                json!({ "event": 5, "data": conversation }),
                "an event that is not text",
            ),
            (json!({ "data": conversation }), "no event at all"),
            (
                json!({ "event": "conversation.updated", "data": "x" }),
                "data that is no conversation",
            ),
        ] {
            assert!(parse_guide(body.to_string().as_bytes()).is_err(), "{why}");
        }
    }

    #[test]
    fn a_signature_verifies_in_either_case_and_nothing_else_does() {
        let body = message_event().to_string();
        let good = sign(body.as_bytes());
        assert!(verify(SECRET, body.as_bytes(), &good));
        assert!(verify(SECRET, body.as_bytes(), &good.to_uppercase()));
        assert!(verify(SECRET, body.as_bytes(), &format!(" {good}\n")));
        let mut flipped = good.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap_or_default();
        let cases = [
            (SECRET, body.as_bytes(), flipped.as_str(), "one digit changed"),
            (SECRET, body.as_bytes(), &good[..62], "one byte short"),
            (SECRET, body.as_bytes(), &good[..63], "an odd number of digits"),
            (SECRET, body.as_bytes(), "", "empty"),
            (SECRET, body.as_bytes(), "zz", "not hex"),
            (
                SECRET,
                body.as_bytes(),
                &format!("sha256={good}"),
                "a prefix Kustomer does not write",
            ),
            (
                b"another-token" as &[u8],
                body.as_bytes(),
                good.as_str(),
                "another webhook's token",
            ),
            (b"" as &[u8], body.as_bytes(), good.as_str(), "no secret"),
            (SECRET, b"{}" as &[u8], good.as_str(), "another body"),
        ];
        for (secret, body, signature, description) in cases {
            assert!(!verify(secret, body, signature), "{description}");
        }
    }

    #[test]
    fn an_agents_reply_is_a_message_event() {
        let event = parsed(&message_event());
        assert_eq!(event.id, "67dd47dfbc632c1804db1bf1");
        assert_eq!(event.name, "kustomer.message.create");
        assert_eq!(event.created_at.as_deref(), Some("2026-11-23T10:05:00.100Z"));
        assert_eq!(
            event.event,
            KustomerEvent::Message {
                conversation_id: "67dd47dfbc632c1804db1bf4".to_owned(),
                message_id: "67dd47dfbc632c1804db1bf2".to_owned(),
                direction: "out".to_owned(),
                text: "Your order ships today".to_owned(),
                external_id: None,
                channel: Some("whatsapp".to_owned()),
                created_by_user: Some("67dd47dfbc632c1804db1bf3".to_owned()),
                attachment_urls: vec!["https://files.kustomer.example/a.png".to_owned()],
            }
        );
    }

    #[test]
    fn our_own_message_comes_back_with_our_external_id_and_its_body() {
        let mut body = message_event();
        body["data"]["attributes"]["externalId"] = json!("c0ffee00-0000-4000-8000-000000000000");
        body["data"]["attributes"]["direction"] = json!("in");
        body["data"]["attributes"]["body"] = json!("The whole text, longer than the preview");
        let KustomerEvent::Message {
            external_id,
            direction,
            text,
            ..
        } = parsed(&body).event
        else {
            panic!("not a message")
        };
        assert_eq!(
            external_id.as_deref(),
            Some("c0ffee00-0000-4000-8000-000000000000")
        );
        assert_eq!(
            (direction.as_str(), text.as_str()),
            ("in", "The whole text, longer than the preview")
        );
    }

    #[test]
    fn a_conversation_update_gives_status_before_and_after_assignees_and_rating() {
        assert_eq!(
            parsed(&conversation_event()).event,
            KustomerEvent::Conversation {
                conversation_id: "67dd47dfbc632c1804db1bf4".to_owned(),
                status: Some("done".to_owned()),
                previous_status: Some("open".to_owned()),
                assigned_users: Some(vec!["67dd47dfbc632c1804db1bf3".to_owned()]),
                satisfaction: Some(Satisfaction {
                    score: Some(4.0),
                    level: Some("satisfied".to_owned()),
                    comment: Some("Quick and kind".to_owned()),
                }),
            }
        );
    }

    #[test]
    fn an_unrated_conversation_has_no_satisfaction() {
        // As Kustomer sends it before any survey answer (its own sample event).
        let mut body = conversation_event();
        body["data"]["attributes"]["satisfaction"] = json!(0);
        body["data"]["attributes"]["satisfactionLevel"] = json!({ "sentByTeams": [], "answers": [] });
        body["changes"] = json!({ "attributes": { "name": { "before": "a", "after": "b" } } });
        let KustomerEvent::Conversation {
            satisfaction,
            previous_status,
            ..
        } = parsed(&body).event
        else {
            panic!("not a conversation")
        };
        assert_eq!((satisfaction, previous_status), (None, None));
    }

    #[test]
    fn the_name_comes_from_the_signed_body_before_the_header() {
        let body = message_event().to_string();
        let event =
            parse(Some("kustomer.customer.update"), body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.name, "kustomer.message.create");
        let mut nameless = conversation_event();
        nameless.as_object_mut().map(|o| o.remove("name"));
        let event = parse(
            Some("kustomer.conversation.create"),
            nameless.to_string().as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.name, "kustomer.conversation.create");
        assert!(matches!(event.event, KustomerEvent::Conversation { .. }));
    }

    #[test]
    fn other_events_are_acknowledged_and_ignored() {
        for name in [
            "kustomer.customer.update",
            "kustomer.team.create",
            "kustomer.message.update",
        ] {
            let body = json!({ "id": "e1", "name": name, "data": { "type": "whatever" } });
            assert_eq!(parsed(&body).event, KustomerEvent::Other, "{name}");
        }
    }

    #[test]
    fn hostile_or_malformed_bodies_are_refused_without_panicking() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let huge = vec![b' '; BODY_LIMIT + 1];
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty"),
            (b"not json".to_vec(), "not JSON"),
            (b"[]".to_vec(), "a list"),
            (deep.into_bytes(), "nesting 100,000 deep"),
            (huge, "over the size limit"),
            (br#"{"name":"kustomer.message.create"}"#.to_vec(), "no id"),
            (br#"{"id":42,"name":"x"}"#.to_vec(), "a numeric id"),
            (br#"{"id":"a b","name":"x"}"#.to_vec(), "a spaced id"),
            (br#"{"id":"e1"}"#.to_vec(), "no name anywhere"),
            (br#"{"id":"e1","name":["x"]}"#.to_vec(), "a list name"),
        ];
        let mut wrong = |path: &[&str], value: Value, description: &'static str| {
            let mut body = message_event();
            let mut at = &mut body;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
            cases.push((body.to_string().into_bytes(), description));
        };
        wrong(&["data"], json!("message"), "data is a string");
        wrong(
            &["data", "type"],
            json!("conversation"),
            "a conversation under a message event",
        );
        wrong(&["data", "id"], json!(null), "no message id");
        wrong(&["data", "attributes"], json!([1]), "attributes is a list");
        wrong(
            &["data", "attributes", "direction"],
            json!("sideways"),
            "an unknown direction",
        );
        wrong(
            &["data", "attributes", "direction"],
            json!(1),
            "a numeric direction",
        );
        wrong(
            &["data", "relationships", "conversation"],
            json!({ "data": null }),
            "no conversation",
        );
        wrong(
            &["data", "relationships", "conversation", "data", "id"],
            json!("x".repeat(65)),
            "a 65-character id",
        );
        for (body, description) in cases {
            assert!(parse(None, &body).is_err(), "{description}");
        }
        let mut conversation = conversation_event();
        conversation["data"]["id"] = json!({ "$oid": "x" });
        assert!(
            parse(None, conversation.to_string().as_bytes()).is_err(),
            "an object id"
        );
    }

    #[test]
    fn optional_fields_of_the_wrong_type_are_ignored_not_trusted() {
        let mut body = message_event();
        body["data"]["attributes"]["externalId"] = json!(12);
        body["data"]["attributes"]["meta"] = json!("attachments");
        body["data"]["relationships"]["createdBy"] = json!({ "data": { "type": "customer", "id": "c1" } });
        let KustomerEvent::Message {
            external_id,
            attachment_urls,
            created_by_user,
            ..
        } = parsed(&body).event
        else {
            panic!("not a message")
        };
        assert_eq!(
            (external_id, attachment_urls.len(), created_by_user),
            (None, 0, None)
        );
    }

    #[test]
    fn kustomer_statuses_map_to_ours() {
        let cases = [
            ("open", Some(ConversationStatus::Open)),
            ("snoozed", Some(ConversationStatus::Pending)),
            ("done", Some(ConversationStatus::Resolved)),
            ("closed", None),
            ("", None),
        ];
        for (theirs, ours) in cases {
            assert_eq!(our_status(theirs), ours, "{theirs}");
        }
    }
}
