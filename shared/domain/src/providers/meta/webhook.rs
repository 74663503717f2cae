//! Meta's webhooks: the WhatsApp Cloud API, the Messenger Platform and Instagram Messaging.
//!
//! Meta signs each notification with the app secret (`X-Hub-Signature-256: sha256=<hex
//! HMAC-SHA256 of the raw body>`) and proves a callback URL with a `GET` handshake that echoes
//! `hub.challenge` when `hub.verify_token` is ours. One app can serve many WhatsApp numbers,
//! pages and Instagram accounts, and all of them share its secret: a correctly signed
//! notification may still be about another account, so only the entries about the account the
//! webhook path names are taken; the rest are counted as ignored.
//!
//! A notification batches up to 1000 updates, and Meta answers anything but a 200 by retrying
//! the whole notification and, after a while, dropping it. So only the envelope (JSON with the
//! account's `object` and a list of entries) is required; an entry, change, message or status
//! that cannot be read is skipped and reported with its path, and the rest is stored.

use super::graph_id::optional_id;
use super::messaging::{MessagingEvent, messaging_event};
pub use super::notification::Notification;
use super::whatsapp::{Change, Relevance, whatsapp_change};
use crate::channel::Channel;
use crate::crypto::constant_time_eq;
use crate::error::{ApiError, ErrorCode};
use crate::json::{Lenient, from_json};
use crate::providers::{bad_signature, hmac_sha256_matches};
use crate::query::Query;
use serde::Deserialize;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The largest notification we read. Meta batches at most 1000 updates, far below this.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The longest `hub.challenge` echoed back. Meta sends a short number; anything else is refused
/// rather than reflected.
const MAX_CHALLENGE_LEN: usize = 256;

/// Checks `X-Hub-Signature-256` against the raw body, before anything in the body is read.
pub fn verify_signature(app_secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
    let signature = header
        .and_then(|value| value.trim().strip_prefix("sha256="))
        .and_then(|digest| hex::decode(digest).ok())
        .ok_or_else(|| bad_signature("X-Hub-Signature-256"))?;
    if hmac_sha256_matches(app_secret.as_bytes(), &[body], &signature) {
        Ok(())
    } else {
        Err(bad_signature("X-Hub-Signature-256"))
    }
}

/// The answer to the subscription handshake: the challenge to echo when `hub.mode` is
/// `subscribe` and `hub.verify_token` is the account's; 403 when the token is not.
pub fn answer_handshake(query: &Query, verify_token: &str) -> Result<String, ApiError> {
    let param = |name: &str| query.get(name);
    if param("hub.mode") != Some("subscribe") {
        return Err(ApiError::malformed(
            "a verification request has hub.mode=subscribe, hub.verify_token and hub.challenge",
        )
        .at("hub.mode"));
    }
    let token_matches = param("hub.verify_token")
        .is_some_and(|token| constant_time_eq(token.as_bytes(), verify_token.as_bytes()));
    if !token_matches {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "hub.verify_token is not this account's verify token",
        ));
    }
    let challenge = param("hub.challenge").unwrap_or_default();
    let echoable = !challenge.is_empty()
        && challenge.len() <= MAX_CHALLENGE_LEN
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !echoable {
        return Err(ApiError::malformed("hub.challenge is missing or not a plain token").at("hub.challenge"));
    }
    Ok(challenge.to_owned())
}

/// Parses a signed notification for the account on `channel` whose id is `address` (WhatsApp
/// phone number id, page id or Instagram account id). The notification's `object` must be the
/// one of the account's channel.
pub fn parse(body: &[u8], channel: Channel, address: &str) -> Result<Notification, ApiError> {
    let envelope: Envelope = from_json(body)?;
    let expected = match channel {
        Channel::Whatsapp => "whatsapp_business_account",
        Channel::Facebook => "page",
        Channel::Instagram => "instagram",
        Channel::Sms | Channel::Email => {
            return Err(ApiError::invalid(
                "object",
                format!("a {channel} account does not receive Meta notifications"),
            ));
        }
    };
    if envelope.object != expected {
        return Err(ApiError::invalid(
            "object",
            format!(
                "this {channel} account receives notifications with object \"{expected}\", not \"{}\"",
                envelope.object
            ),
        ));
    }
    let mut notification = Notification::default();
    for (at, entry) in envelope.entry.into_iter().enumerate() {
        let path = format!("entry[{at}]");
        let Some(entry) = entry.take(&path, &mut notification.rejected) else {
            continue;
        };
        if channel == Channel::Whatsapp {
            // A WhatsApp Business Account's entry id is the account's, not the number's: each
            // change names its number in `metadata.phone_number_id`.
            for (change_at, change) in entry.changes.into_iter().enumerate() {
                let path = format!("{path}.changes[{change_at}]");
                let Some(change) = change.take(&path, &mut notification.rejected) else {
                    continue;
                };
                if whatsapp_change(change, address, &path, &mut notification) == Relevance::AboutAnotherNumber
                {
                    notification.ignored += 1;
                }
            }
        } else if entry.id.as_deref().is_some_and(|id| id != address) {
            notification.ignored += 1;
        } else {
            for (event_at, event) in entry.messaging.into_iter().enumerate() {
                let path = format!("{path}.messaging[{event_at}]");
                if let Some(event) = event.take(&path, &mut notification.rejected) {
                    messaging_event(event, &mut notification.batch);
                }
            }
        }
    }
    Ok(notification)
}

/// The part of a notification that must be readable for any of it to be: a malformed entry is
/// that entry's problem alone.
#[derive(Deserialize)]
struct Envelope {
    object: String,
    #[serde(default)]
    entry: Vec<Lenient<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default, deserialize_with = "optional_id")]
    id: Option<String>,
    #[serde(default)]
    changes: Vec<Lenient<Change>>,
    #[serde(default)]
    messaging: Vec<Lenient<MessagingEvent>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MessageStatus;
    use crate::inbound::{InboundMedia, InboundMessage};
    use serde_json::{Value, json};

    const SECRET: &str = "app-secret-of-the-test-app";
    const NUMBER_ID: &str = "106540352242922";
    const PAGE_ID: &str = "1234567890";
    const IG_ID: &str = "17841400000000000";

    fn sign(secret: &str, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex::encode(crate::crypto::hmac_sha256(secret.as_bytes(), &[body]))
        )
    }

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap_or_default()
    }

    fn whatsapp(value: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}]
        })
    }

    fn whatsapp_messages(messages: Value) -> Value {
        whatsapp(json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": NUMBER_ID},
            "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "353871234567"}],
            "messages": messages
        }))
    }

    fn parse_ok(value: &Value, channel: Channel, address: &str) -> Notification {
        match parse(&bytes(value), channel, address) {
            Ok(notification) => notification,
            Err(error) => panic!("parsing failed: {error}"),
        }
    }

    fn only_message(notification: &Notification) -> &InboundMessage {
        assert_eq!(notification.batch.messages.len(), 1, "{notification:?}");
        &notification.batch.messages[0]
    }

    #[test]
    fn a_body_signed_with_the_app_secret_is_accepted() {
        let body = br#"{"object":"page","entry":[]}"#;
        assert_eq!(verify_signature(SECRET, Some(&sign(SECRET, body)), body), Ok(()));
    }

    #[test]
    fn bad_or_missing_signatures_are_refused_as_unauthorized() {
        let body = br#"{"object":"page","entry":[]}"#;
        let good = sign(SECRET, body);
        let other_body = sign(SECRET, br#"{"object":"page","entry":[ ]}"#);
        let cases: [(Option<&str>, &str); 7] = [
            (None, "no header"),
            (Some(""), "an empty header"),
            (Some(good.trim_start_matches("sha256=")), "no sha256= prefix"),
            (
                Some(&good.replace("sha256=", "sha1=")),
                "another algorithm's prefix",
            ),
            (Some("sha256=zz"), "not hex"),
            (Some(&other_body), "the signature of another body"),
            (Some(&sign("another-secret", body)), "signed with another secret"),
        ];
        for (header, description) in cases {
            let error = verify_signature(SECRET, header, body).err();
            assert_eq!(
                error.map(|e| e.code()),
                Some(ErrorCode::Unauthorized),
                "{description}"
            );
        }
    }

    fn query(pairs: &[(&str, &str)]) -> Query {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Query::parse(Some(&text.join("&")))
    }

    #[test]
    fn the_handshake_echoes_the_challenge_when_the_verify_token_is_ours() {
        let q = query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "tok"),
            ("hub.challenge", "1158201444"),
        ]);
        assert_eq!(answer_handshake(&q, "tok"), Ok("1158201444".to_owned()));
    }

    #[test]
    fn the_handshake_is_refused_for_a_wrong_token_or_a_malformed_request() {
        let cases = [
            (
                vec![
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", "nope"),
                    ("hub.challenge", "1"),
                ],
                ErrorCode::Forbidden,
                "a wrong token",
            ),
            (
                vec![("hub.mode", "subscribe"), ("hub.challenge", "1")],
                ErrorCode::Forbidden,
                "no token",
            ),
            (
                vec![
                    ("hub.mode", "unsubscribe"),
                    ("hub.verify_token", "tok"),
                    ("hub.challenge", "1"),
                ],
                ErrorCode::MalformedRequest,
                "another mode",
            ),
            (
                vec![("hub.verify_token", "tok"), ("hub.challenge", "1")],
                ErrorCode::MalformedRequest,
                "no mode",
            ),
            (
                vec![("hub.mode", "subscribe"), ("hub.verify_token", "tok")],
                ErrorCode::MalformedRequest,
                "no challenge",
            ),
            (
                vec![
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", "tok"),
                    ("hub.challenge", "<script>"),
                ],
                ErrorCode::MalformedRequest,
                "a challenge that is not a plain token",
            ),
        ];
        for (pairs, code, description) in cases {
            let error = answer_handshake(&query(&pairs), "tok").err();
            assert_eq!(error.map(|e| e.code()), Some(code), "{description}");
        }
    }

    #[test]
    fn a_whatsapp_text_becomes_a_message_from_the_number_in_e164_with_the_profile_name() {
        let body = whatsapp_messages(json!([{
            "from": "353871234567", "id": "wamid.TEXT1", "timestamp": "1700000000",
            "type": "text", "text": {"body": "Hello there"}
        }]));
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        assert_eq!(
            only_message(&notification),
            &InboundMessage {
                provider_message_id: "wamid.TEXT1".to_owned(),
                from: "+353871234567".to_owned(),
                sender_name: Some("Kerry Fisher".to_owned()),
                content: "Hello there".to_owned(),
                media: vec![],
            }
        );
        assert_eq!(notification.ignored, 0);
    }

    #[test]
    fn whatsapp_media_messages_carry_their_media_id_and_caption() {
        for kind in ["image", "video", "audio", "document", "sticker"] {
            let body = whatsapp_messages(json!([{
                "from": "353871234567", "id": format!("wamid.{kind}"), "type": kind,
                kind: {"id": "MEDIA-1", "mime_type": "image/jpeg", "caption": "look", "filename": "a.jpg"}
            }]));
            let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
            let message = only_message(&notification);
            assert_eq!(message.content, "look", "{kind}");
            assert_eq!(
                message.media,
                vec![InboundMedia::WhatsappMediaId {
                    id: "MEDIA-1".to_owned(),
                    mime_type: Some("image/jpeg".to_owned()),
                    filename: Some("a.jpg".to_owned()),
                }],
                "{kind}"
            );
        }
    }

    #[test]
    fn whatsapp_messages_without_text_are_described_in_words() {
        let cases = [
            (
                json!({"type": "location", "location": {"latitude": 53.35, "longitude": -6.26, "name": "Office", "address": "1 Main St"}}),
                "Location: Office, 1 Main St (53.35, -6.26)",
                "a named location",
            ),
            (
                json!({"type": "location", "location": {"latitude": 53.35, "longitude": -6.26}}),
                "Location: 53.35, -6.26",
                "a bare location",
            ),
            (
                json!({"type": "contacts", "contacts": [{"name": {"formatted_name": "Ann Lee"}, "phones": [{"phone": "+353 87 000 0000"}]}]}),
                "Contact: Ann Lee (+353 87 000 0000)",
                "a shared contact",
            ),
            (
                json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}}),
                "Yes please",
                "a reply button",
            ),
            (
                json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "r1", "title": "Tuesday", "description": "9-12"}}}),
                "Tuesday",
                "a list choice",
            ),
            (
                json!({"type": "button", "button": {"payload": "STOP", "text": "Stop promotions"}}),
                "Stop promotions",
                "a template's quick reply",
            ),
            (
                json!({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}),
                "Reacted 👍",
                "a reaction",
            ),
            (
                json!({"type": "unsupported", "errors": [{"code": 131051}]}),
                "[unsupported WhatsApp message: unsupported]",
                "a type WhatsApp does not support",
            ),
        ];
        for (shape, expected, description) in cases {
            let mut message = json!({"from": "353871234567", "id": "wamid.X1"});
            if let (Some(target), Some(extra)) = (message.as_object_mut(), shape.as_object()) {
                target.extend(extra.clone());
            }
            let notification = parse_ok(&whatsapp_messages(json!([message])), Channel::Whatsapp, NUMBER_ID);
            assert_eq!(only_message(&notification).content, expected, "{description}");
        }
    }

    #[test]
    fn a_removed_reaction_is_no_message() {
        let body = whatsapp_messages(json!([{
            "from": "353871234567", "id": "wamid.R", "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": ""}
        }]));
        assert!(
            parse_ok(&body, Channel::Whatsapp, NUMBER_ID)
                .batch
                .messages
                .is_empty()
        );
    }

    #[test]
    fn whatsapp_statuses_become_status_updates_with_the_reason_of_a_failure() {
        let body = whatsapp(json!({
            "metadata": {"phone_number_id": NUMBER_ID},
            "statuses": [
                {"id": "wamid.S1", "status": "sent", "timestamp": "1", "recipient_id": "353871234567"},
                {"id": "wamid.S1", "status": "delivered"},
                {"id": "wamid.S1", "status": "read"},
                {"id": "wamid.S2", "status": "failed", "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}]},
                {"id": "wamid.S3", "status": "deleted"}
            ]
        }));
        let statuses = parse_ok(&body, Channel::Whatsapp, NUMBER_ID).batch.statuses;
        let seen: Vec<(&str, MessageStatus, Option<&str>)> = statuses
            .iter()
            .map(|s| (s.provider_message_id.as_str(), s.status, s.reason.as_deref()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("wamid.S1", MessageStatus::Sent, None),
                ("wamid.S1", MessageStatus::Delivered, None),
                ("wamid.S1", MessageStatus::Read, None),
                (
                    "wamid.S2",
                    MessageStatus::Failed,
                    Some("Message undeliverable (131026)")
                ),
            ]
        );
    }

    #[test]
    fn whatsapp_changes_about_another_number_of_the_app_are_ignored() {
        let body = whatsapp(json!({
            "metadata": {"phone_number_id": "999"},
            "messages": [{"from": "353871234567", "id": "wamid.OTHER", "type": "text", "text": {"body": "hi"}}]
        }));
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        assert!(notification.batch.messages.is_empty());
        assert_eq!(notification.ignored, 1);
    }

    #[test]
    fn changes_of_other_fields_carry_no_messages() {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA-1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]
        });
        assert_eq!(
            parse_ok(&body, Channel::Whatsapp, NUMBER_ID),
            Notification::default()
        );
    }

    /// What was rejected, as `path: reason` lines.
    fn rejected(notification: &Notification) -> Vec<String> {
        notification
            .rejected
            .iter()
            .map(crate::json::Rejection::to_string)
            .collect()
    }

    fn paths(notification: &Notification) -> Vec<&str> {
        notification.rejected.iter().map(|r| r.path.as_str()).collect()
    }

    /// The provider ids of the messages kept, in order.
    fn message_ids(notification: &Notification) -> Vec<&str> {
        notification
            .batch
            .messages
            .iter()
            .map(|m| m.provider_message_id.as_str())
            .collect()
    }

    fn text_message(from: &str, id: &str) -> Value {
        json!({"from": from, "id": id, "type": "text", "text": {"body": "hello"}})
    }

    #[test]
    fn a_whatsapp_message_from_something_not_a_phone_number_is_rejected_and_the_good_one_stored() {
        let body = whatsapp_messages(json!([
            text_message("353871234567", "wamid.GOOD"),
            text_message("12abc", "wamid.BAD"),
        ]));
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        assert_eq!(only_message(&notification).provider_message_id, "wamid.GOOD");
        assert_eq!(
            paths(&notification),
            ["entry[0].changes[0].value.messages[1].from"]
        );
        assert!(
            rejected(&notification)[0].contains("not a phone number"),
            "{:?}",
            rejected(&notification)
        );
    }

    #[test]
    fn whatsapp_messages_statuses_and_contacts_of_the_wrong_shape_are_rejected_one_by_one() {
        let body = whatsapp(json!({
            "metadata": {"phone_number_id": NUMBER_ID},
            "contacts": [{"wa_id": 353871234567u64}],
            "messages": [
                {"from": "353871234567", "type": "text", "text": {"body": "no id"}},
                text_message("353871234567", "wamid.GOOD"),
                {"from": "353871234567", "id": ["wamid.SHAPE"], "type": "text", "text": {"body": "x"}},
                "a message that is text"
            ],
            "statuses": [
                {"id": "wamid.S1", "status": "read"},
                {"id": "wamid.S2"},
                {"id": "wamid.S3", "status": "failed", "errors": "secret words"}
            ]
        }));
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        assert_eq!(only_message(&notification).provider_message_id, "wamid.GOOD");
        assert_eq!(
            only_message(&notification).sender_name,
            None,
            "the unreadable contact named no one"
        );
        assert_eq!(notification.batch.statuses.len(), 1);
        let value = "entry[0].changes[0].value";
        assert_eq!(
            paths(&notification),
            [
                format!("{value}.contacts[0].wa_id"),
                format!("{value}.messages[0]"),
                format!("{value}.messages[2].id"),
                format!("{value}.messages[3]"),
                format!("{value}.statuses[1]"),
                format!("{value}.statuses[2].errors"),
            ]
        );
        let reasons = rejected(&notification).join("\n");
        assert!(!reasons.contains("secret"), "reasons carry no values: {reasons}");
        assert!(
            !reasons.contains("a message that is text"),
            "reasons carry no values: {reasons}"
        );
    }

    #[test]
    fn an_entry_that_is_not_an_object_is_rejected_and_the_other_entries_are_kept() {
        let good = whatsapp_messages(json!([text_message("353871234567", "wamid.GOOD")]));
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": ["not an entry", good["entry"][0], {"id": "WABA-1", "changes": {"field": "messages"}}]
        });
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        assert_eq!(only_message(&notification).provider_message_id, "wamid.GOOD");
        assert_eq!(paths(&notification), ["entry[0]", "entry[2].changes"]);
    }

    #[test]
    fn a_change_of_the_wrong_shape_is_rejected_among_good_changes() {
        let good = |id: &str| {
            json!({"field": "messages", "value": {
                "metadata": {"phone_number_id": NUMBER_ID},
                "messages": [text_message("353871234567", id)]
            }})
        };
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA-1", "changes": [
                good("wamid.FIRST"),
                {"field": "messages", "value": {"metadata": {"phone_number_id": NUMBER_ID}, "messages": {"not": "a list"}}},
                good("wamid.THIRD"),
                7
            ]}]
        });
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        let ids = message_ids(&notification);
        assert_eq!(ids, ["wamid.FIRST", "wamid.THIRD"]);
        assert_eq!(
            paths(&notification),
            ["entry[0].changes[1].value.messages", "entry[0].changes[3]"]
        );
    }

    #[test]
    fn nothing_is_rejected_in_a_change_about_another_number() {
        let body = whatsapp(json!({
            "metadata": {"phone_number_id": "999"},
            "messages": [text_message("12abc", "wamid.OTHER"), "junk"]
        }));
        let notification = parse_ok(&body, Channel::Whatsapp, NUMBER_ID);
        assert_eq!(notification.ignored, 1);
        assert!(notification.rejected.is_empty(), "{:?}", notification.rejected);
    }

    fn messaging(object: &str, entry_id: &str, events: Value) -> Value {
        json!({"object": object, "entry": [{"id": entry_id, "time": 1700000000000u64, "messaging": events}]})
    }

    #[test]
    fn a_messenger_message_comes_from_its_page_scoped_id_with_its_attachments() {
        let body = messaging(
            "page",
            PAGE_ID,
            json!([{
                "sender": {"id": "6789"}, "recipient": {"id": PAGE_ID}, "timestamp": 1700000000000u64,
                "message": {"mid": "m_1", "text": "Do you ship to Cork?", "attachments": [
                    {"type": "image", "payload": {"url": "https://cdn.example/img.jpg"}},
                    {"type": "location", "payload": {"coordinates": {"lat": 1, "long": 2}}}
                ]}
            }]),
        );
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        assert_eq!(
            only_message(&notification),
            &InboundMessage {
                provider_message_id: "m_1".to_owned(),
                from: "6789".to_owned(),
                sender_name: None,
                content: "Do you ship to Cork?".to_owned(),
                media: vec![InboundMedia::Url {
                    url: "https://cdn.example/img.jpg".to_owned(),
                    mime_type: None,
                    filename: None,
                }],
            }
        );
    }

    #[test]
    fn echoes_of_our_own_messages_and_deleted_messages_are_skipped() {
        let body = messaging(
            "instagram",
            IG_ID,
            json!([
                {"sender": {"id": IG_ID}, "recipient": {"id": "555"}, "message": {"mid": "m_echo", "text": "our reply", "is_echo": true}},
                {"sender": {"id": "555"}, "recipient": {"id": IG_ID}, "message": {"mid": "m_gone", "is_deleted": true}},
                {"sender": {"id": "555"}, "recipient": {"id": IG_ID}, "message": {"mid": "m_2", "text": "hi"}}
            ]),
        );
        let notification = parse_ok(&body, Channel::Instagram, IG_ID);
        assert_eq!(only_message(&notification).provider_message_id, "m_2");
        assert_eq!(only_message(&notification).from, "555");
    }

    #[test]
    fn deliveries_and_named_reads_become_statuses_and_watermark_reads_are_ignored() {
        let body = messaging(
            "page",
            PAGE_ID,
            json!([
                {"sender": {"id": "6789"}, "delivery": {"mids": ["m_a", "m_b"], "watermark": 1700000000000u64}},
                {"sender": {"id": "6789"}, "read": {"watermark": 1700000000000u64}},
                {"sender": {"id": "6789"}, "read": {"mid": "m_c"}}
            ]),
        );
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        let seen: Vec<(&str, MessageStatus)> = notification
            .batch
            .statuses
            .iter()
            .map(|s| (s.provider_message_id.as_str(), s.status))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("m_a", MessageStatus::Delivered),
                ("m_b", MessageStatus::Delivered),
                ("m_c", MessageStatus::Read),
            ]
        );
        assert!(notification.batch.messages.is_empty());
    }

    #[test]
    fn a_postback_with_an_id_is_the_customers_answer() {
        let body = messaging(
            "page",
            PAGE_ID,
            json!([{"sender": {"id": 6789}, "postback": {"mid": "m_pb", "title": "Talk to sales", "payload": "SALES"}}]),
        );
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        assert_eq!(only_message(&notification).content, "Talk to sales");
        assert_eq!(
            only_message(&notification).from,
            "6789",
            "a numeric id is read as text"
        );
    }

    #[test]
    fn a_messaging_event_of_the_wrong_shape_is_rejected_and_its_neighbours_stored() {
        let body = messaging(
            "page",
            PAGE_ID,
            json!([
                {"sender": {"id": "6789"}, "message": {"mid": "m_1", "text": "first"}},
                {"sender": {"id": {"nested": true}}, "message": {"mid": "m_bad", "text": "lost"}},
                {"sender": {"id": "6789"}, "message": {"mid": "m_3", "text": "third"}}
            ]),
        );
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        let ids = message_ids(&notification);
        assert_eq!(ids, ["m_1", "m_3"]);
        assert_eq!(paths(&notification), ["entry[0].messaging[1].sender.id"]);
    }

    #[test]
    fn entries_about_another_page_are_ignored() {
        let body = messaging(
            "page",
            "42",
            json!([{"sender": {"id": "6789"}, "message": {"mid": "m_x", "text": "hi"}}]),
        );
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        assert!(notification.batch.messages.is_empty());
        assert_eq!(notification.ignored, 1);
    }

    #[test]
    fn a_notification_for_another_channel_than_the_accounts_is_refused() {
        let cases = [
            (
                Channel::Whatsapp,
                "page",
                "a page notification at a WhatsApp account",
            ),
            (
                Channel::Facebook,
                "instagram",
                "an Instagram notification at a page",
            ),
            (
                Channel::Instagram,
                "whatsapp_business_account",
                "a WhatsApp notification at Instagram",
            ),
            (Channel::Facebook, "user", "an object we do not take"),
            (Channel::Sms, "page", "an account that is not Meta's"),
        ];
        for (channel, object, description) in cases {
            let body = json!({"object": object, "entry": []});
            let error = parse(&bytes(&body), channel, PAGE_ID).err();
            assert_eq!(
                error.as_ref().map(|e| (e.code(), e.body.field.clone())),
                Some((ErrorCode::ValidationFailed, Some("object".to_owned()))),
                "{description}"
            );
        }
    }

    #[test]
    fn bodies_that_are_not_notifications_are_refused() {
        let cases: [(&[u8], ErrorCode, &str); 7] = [
            (b"", ErrorCode::MalformedRequest, "empty"),
            (b"not json", ErrorCode::MalformedRequest, "not JSON"),
            (b"{\"object\": ", ErrorCode::MalformedRequest, "truncated"),
            (b"[]", ErrorCode::ValidationFailed, "a list, not an object"),
            (
                b"{\"object\": 7, \"entry\": []}",
                ErrorCode::ValidationFailed,
                "object is not text",
            ),
            (b"{\"entry\": []}", ErrorCode::ValidationFailed, "no object"),
            (
                b"{\"object\": \"page\", \"entry\": {}}",
                ErrorCode::ValidationFailed,
                "entry is not a list",
            ),
        ];
        for (body, code, description) in cases {
            let error = parse(body, Channel::Facebook, PAGE_ID).err();
            assert_eq!(error.map(|e| e.code()), Some(code), "{description}");
        }
    }
}
