//! Meta's webhooks: the WhatsApp Cloud API, the Messenger Platform, Instagram Messaging and the
//! comments on Facebook pages.
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
//! account's `object` and a list of entries) is required; an entry, change, message, status or
//! comment that cannot be read is skipped and reported with its path, and the rest is stored.

use super::feed::feed_change;
pub use super::feed::{Comment, CommentVerb};
use super::graph_id::optional_id;
use super::messaging::{MessagingEvent, messaging_event};
pub use super::notification::Notification;
use super::whatsapp::{Change as WhatsappChange, Relevance, whatsapp_change};
use crate::channel::Channel;
use crate::crypto::constant_time_eq;
use crate::error::{ApiError, ErrorCode};
use crate::json::{Lenient, from_json};
use crate::providers::{bad_signature, hmac_sha256_matches};
use crate::query::Query;
use serde::Deserialize;
use serde_json::Value;

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
    check_object(&envelope.object, channel)?;
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
                let Some(change) =
                    Lenient::<WhatsappChange>::of(change).take(&path, &mut notification.rejected)
                else {
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
            // Instagram reports comments under another field, in another shape: not read here.
            if channel == Channel::Facebook {
                for (change_at, change) in entry.changes.into_iter().enumerate() {
                    match feed_change(change, address, &format!("{path}.changes[{change_at}]")) {
                        Some(Ok(comment)) => notification.comments.push(comment),
                        Some(Err(rejection)) => notification.rejected.push(rejection),
                        None => {}
                    }
                }
            }
        }
    }
    Ok(notification)
}

/// Refuses a notification whose `object` is not the one of the account's channel.
fn check_object(object: &str, channel: Channel) -> Result<(), ApiError> {
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
    if object != expected {
        return Err(ApiError::invalid(
            "object",
            format!(
                "this {channel} account receives notifications with object \"{expected}\", not \"{object}\""
            ),
        ));
    }
    Ok(())
}

/// The part of a notification that must be readable for any of it to be: a malformed entry is
/// that entry's problem alone. Its changes are kept as values until the account's channel says
/// how to read them: a WhatsApp change names its number inside its value, a page's change is read
/// by its field first.
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
    changes: Vec<Value>,
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

    const POST_ID: &str = "1234567890_5550001";
    const COMMENT_ID: &str = "5550001_7770001";

    fn feed(changes: Value) -> Value {
        json!({"object": "page", "entry": [{"id": PAGE_ID, "time": 1700000000, "changes": changes}]})
    }

    /// A `feed` change for a comment as Meta sends it, with `extra` over its value's fields.
    fn comment_change(comment_id: &str, verb: &str, extra: Value) -> Value {
        let mut value = json!({
            "item": "comment", "verb": verb, "comment_id": comment_id, "post_id": POST_ID,
            "parent_id": POST_ID, "from": {"id": "6789", "name": "Kerry Fisher"},
            "message": "Do you ship to Cork?", "created_time": 1700000000
        });
        if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        json!({"field": "feed", "value": value})
    }

    /// The change without the named fields of its value.
    fn without(mut change: Value, fields: &[&str]) -> Value {
        if let Some(value) = change["value"].as_object_mut() {
            for field in fields {
                value.remove(*field);
            }
        }
        change
    }

    fn kerrys_comment(verb: CommentVerb, message: &str) -> Comment {
        Comment {
            verb,
            comment_id: COMMENT_ID.to_owned(),
            post_id: POST_ID.to_owned(),
            parent_id: None,
            author_id: Some("6789".to_owned()),
            author_name: Some("Kerry Fisher".to_owned()),
            message: message.to_owned(),
            created_time: Some(1700000000),
        }
    }

    fn comment_ids(notification: &Notification) -> Vec<&str> {
        notification
            .comments
            .iter()
            .map(|c| c.comment_id.as_str())
            .collect()
    }

    #[test]
    fn comments_added_edited_and_removed_are_taken_with_their_verb() {
        // A removal names the comment and its author's id, without a name or a message.
        let removal = without(
            comment_change(COMMENT_ID, "remove", json!({"from": {"id": "6789"}})),
            &["message"],
        );
        let cases = [
            (
                comment_change(COMMENT_ID, "add", json!({})),
                kerrys_comment(CommentVerb::Added, "Do you ship to Cork?"),
                "an added comment",
            ),
            (
                comment_change(COMMENT_ID, "edited", json!({"message": "Do you ship to Galway?"})),
                kerrys_comment(CommentVerb::Edited, "Do you ship to Galway?"),
                "an edited comment carries its new text",
            ),
            (
                removal.clone(),
                Comment {
                    author_name: None,
                    ..kerrys_comment(CommentVerb::Removed, "")
                },
                "a removal carries no text",
            ),
            (
                without(removal, &["from"]),
                Comment {
                    author_id: None,
                    author_name: None,
                    ..kerrys_comment(CommentVerb::Removed, "")
                },
                "a removal without its author is still known by its id",
            ),
            (
                comment_change(COMMENT_ID, "edit", json!({"message": "Do you ship to Galway?"})),
                kerrys_comment(CommentVerb::Edited, "Do you ship to Galway?"),
                "Meta's other word for an edit",
            ),
            (
                comment_change(COMMENT_ID, "delete", json!({})),
                kerrys_comment(CommentVerb::Removed, ""),
                "Meta's other word for a removal",
            ),
            (
                comment_change(COMMENT_ID, "remove", json!({"message": "Do you ship to Cork?"})),
                kerrys_comment(CommentVerb::Removed, ""),
                "a removal keeps no text even when Meta sends some",
            ),
            (
                without(
                    comment_change(
                        COMMENT_ID,
                        "add",
                        json!({"photo": "https://scontent.example/p.jpg"}),
                    ),
                    &["message"],
                ),
                kerrys_comment(CommentVerb::Added, ""),
                "a comment of only a photo has no text",
            ),
        ];
        for (change, expected, description) in cases {
            let notification = parse_ok(&feed(json!([change])), Channel::Facebook, PAGE_ID);
            assert_eq!(notification.comments, vec![expected], "{description}");
            assert!(
                notification.batch.messages.is_empty(),
                "{description}: a comment is not a message"
            );
            assert!(
                notification.rejected.is_empty(),
                "{description}: {:?}",
                notification.rejected
            );
        }
    }

    #[test]
    fn a_reply_to_a_comment_names_the_comment_it_answers() {
        let cases = [
            (
                json!({"parent_id": "5550001_7770000"}),
                Some("5550001_7770000"),
                "a reply to another comment",
            ),
            (
                json!({"parent_id": POST_ID}),
                None,
                "a comment on the post itself",
            ),
            (json!({"parent_id": null}), None, "a parent of null"),
        ];
        for (extra, parent, description) in cases {
            let body = feed(json!([comment_change(COMMENT_ID, "add", extra)]));
            let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
            let parents: Vec<Option<&str>> = notification
                .comments
                .iter()
                .map(|c| c.parent_id.as_deref())
                .collect();
            assert_eq!(parents, [parent], "{description}");
        }
        let body = feed(json!([without(
            comment_change(COMMENT_ID, "add", json!({})),
            &["parent_id"]
        )]));
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        assert_eq!(
            notification.comments,
            vec![kerrys_comment(CommentVerb::Added, "Do you ship to Cork?")],
            "no parent at all is the post"
        );
    }

    #[test]
    fn the_pages_own_comments_are_skipped() {
        let cases = [
            (
                comment_change(
                    COMMENT_ID,
                    "add",
                    json!({"from": {"id": PAGE_ID, "name": "Cork Bikes"}, "message": "Yes!"}),
                ),
                "the page's reply",
            ),
            (
                comment_change(COMMENT_ID, "edited", json!({"from": {"id": 1234567890u64}})),
                "the page's edit, its id written as a number",
            ),
            (
                comment_change(COMMENT_ID, "remove", json!({"from": {"id": PAGE_ID}})),
                "the page removing its own comment",
            ),
        ];
        for (change, description) in cases {
            let notification = parse_ok(&feed(json!([change])), Channel::Facebook, PAGE_ID);
            assert_eq!(notification, Notification::default(), "{description}");
        }
    }

    #[test]
    fn feed_changes_that_are_not_comments_are_passed_over() {
        let from = json!({"id": "6789", "name": "Kerry Fisher"});
        let cases = [
            (
                json!({"field": "feed", "value": {"item": "status", "verb": "add", "post_id": POST_ID, "from": from, "message": "Open late on Friday", "published": 1, "created_time": 1700000000}}),
                "a status",
            ),
            (
                json!({"field": "feed", "value": {"item": "photo", "verb": "add", "photo_id": "42", "link": "https://scontent.example/p.jpg", "post_id": POST_ID, "from": from}}),
                "a photo",
            ),
            (
                json!({"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "like", "comment_id": COMMENT_ID, "parent_id": POST_ID, "post_id": POST_ID, "from": {"id": "6789"}}}),
                "a reaction to a comment",
            ),
            (
                json!({"field": "feed", "value": {"item": "post", "verb": "remove", "post_id": POST_ID, "recipient_id": PAGE_ID}}),
                "a post removed",
            ),
            (
                json!({"field": "feed", "value": {"item": "share", "verb": "add", "post_id": POST_ID, "link": "https://example.com"}}),
                "a share",
            ),
            (
                json!({"field": "feed", "value": {"item": "status", "message": {"rich": true}, "post_id": ["odd"]}}),
                "a feed item of a shape a comment could not have",
            ),
            (json!({"field": "feed", "value": {"verb": "add"}}), "no item"),
            (json!({"field": "feed"}), "no value"),
            (
                comment_change(COMMENT_ID, "hide", json!({})),
                "a comment the page hides",
            ),
            (
                comment_change(COMMENT_ID, "unhide", json!({})),
                "a comment the page shows again",
            ),
            (
                {
                    let mut change = comment_change(COMMENT_ID, "add", json!({}));
                    change["field"] = json!("mention");
                    change
                },
                "a comment under another field",
            ),
            (
                json!({"field": "leadgen", "value": {"leadgen_id": 7, "form_id": "8", "page_id": PAGE_ID}}),
                "a lead ad, another field of the page",
            ),
        ];
        for (change, description) in cases {
            let notification = parse_ok(&feed(json!([change])), Channel::Facebook, PAGE_ID);
            assert_eq!(notification, Notification::default(), "{description}");
        }
    }

    #[test]
    fn a_malformed_comment_is_rejected_with_its_path_and_its_neighbours_kept() {
        let add = |id: &str| comment_change(id, "add", json!({}));
        let body = feed(json!([
            add(COMMENT_ID),
            without(add("5550001_7770002"), &["comment_id"]),
            without(add("5550001_7770003"), &["post_id"]),
            without(add("5550001_7770004"), &["from"]),
            without(comment_change("5550001_7770005", "edited", json!({})), &["from"]),
            comment_change(
                "5550001_7770006",
                "add",
                json!({"from": {"id": {"nested": true}}})
            ),
            without(add("5550001_7770007"), &["verb"]),
            comment_change(
                "5550001_7770008",
                "add",
                json!({"message": ["Do you ship to Cork?"]})
            ),
            7,
            add("5550001_7770009"),
        ]));
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        assert_eq!(
            comment_ids(&notification),
            [COMMENT_ID, "5550001_7770009"],
            "the readable comments on either side are kept"
        );
        let change = |at: usize| format!("entry[0].changes[{at}]");
        assert_eq!(
            paths(&notification),
            [
                format!("{}.value", change(1)),
                format!("{}.value", change(2)),
                format!("{}.value", change(3)),
                format!("{}.value", change(4)),
                format!("{}.value.from.id", change(5)),
                format!("{}.value", change(6)),
                format!("{}.value.message", change(7)),
                change(8),
            ],
            "each with its path"
        );
        let reasons = rejected(&notification);
        for (at, missing) in [
            (0, "comment_id"),
            (1, "post_id"),
            (2, "from"),
            (3, "from"),
            (5, "verb"),
        ] {
            assert!(
                reasons[at].ends_with(&format!("missing field `{missing}`")),
                "{}: names the missing {missing}",
                reasons[at]
            );
        }
        assert!(
            !reasons.join("\n").contains("Cork"),
            "reasons carry no values: {reasons:?}"
        );
    }

    #[test]
    fn ids_written_as_numbers_are_read_as_text() {
        let change = comment_change(
            "unused",
            "add",
            json!({
                "comment_id": 7770001u64, "post_id": 5550001u64, "parent_id": 7770000u64,
                "from": {"id": 6789u64, "name": "Kerry Fisher"}
            }),
        );
        let notification = parse_ok(&feed(json!([change])), Channel::Facebook, PAGE_ID);
        assert_eq!(
            notification.comments,
            vec![Comment {
                comment_id: "7770001".to_owned(),
                post_id: "5550001".to_owned(),
                parent_id: Some("7770000".to_owned()),
                ..kerrys_comment(CommentVerb::Added, "Do you ship to Cork?")
            }],
            "every id as text"
        );
    }

    #[test]
    fn a_comments_time_is_in_unix_seconds_and_one_that_cannot_be_read_is_left_unknown() {
        let cases = [
            (json!(1700000000), Some(1700000000), "a number of seconds"),
            (json!("1700000000"), Some(1700000000), "seconds written as text"),
            (json!("2023-11-14T22:13:20+0000"), None, "a date in words"),
            (json!(1.7e9), None, "a fraction"),
            (json!(null), None, "null"),
        ];
        for (time, expected, description) in cases {
            let body = feed(json!([comment_change(
                COMMENT_ID,
                "add",
                json!({"created_time": time})
            )]));
            let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
            let times: Vec<Option<i64>> = notification.comments.iter().map(|c| c.created_time).collect();
            assert_eq!(times, [expected], "{description}: the comment is kept either way");
        }
    }

    #[test]
    fn a_notification_mixing_messages_and_comments_yields_both() {
        let message = json!({"sender": {"id": "6789"}, "recipient": {"id": PAGE_ID}, "message": {"mid": "m_1", "text": "hi"}});
        let body = json!({"object": "page", "entry": [
            {"id": PAGE_ID, "time": 1, "messaging": [message], "changes": [comment_change(COMMENT_ID, "add", json!({}))]},
            {"id": PAGE_ID, "time": 2, "changes": [comment_change("5550001_7770002", "edited", json!({}))]},
            {"id": "42", "time": 3, "changes": [comment_change("5550001_7770003", "add", json!({}))]}
        ]});
        let notification = parse_ok(&body, Channel::Facebook, PAGE_ID);
        assert_eq!(message_ids(&notification), ["m_1"], "the Messenger message");
        assert_eq!(
            comment_ids(&notification),
            [COMMENT_ID, "5550001_7770002"],
            "the page's comments, in order"
        );
        assert_eq!(notification.ignored, 1, "the entry about another page");
        assert!(notification.rejected.is_empty(), "{:?}", notification.rejected);
    }

    #[test]
    fn comments_are_read_for_facebook_pages_only() {
        let change = comment_change(COMMENT_ID, "add", json!({}));
        let body = json!({"object": "instagram", "entry": [{"id": IG_ID, "changes": [change, 7]}]});
        assert_eq!(
            parse_ok(&body, Channel::Instagram, IG_ID),
            Notification::default(),
            "an Instagram account's changes are not read, nor rejected"
        );
    }
}
