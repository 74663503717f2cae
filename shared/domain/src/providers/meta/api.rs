//! Meta's send APIs: the WhatsApp Cloud API and the Messenger Platform's Send API (which
//! Instagram Messaging shares). Both are `POST {graph}/{sender id}/messages` with the account's
//! access token as a bearer token and a JSON body; both answer errors as Graph API errors. A
//! page answers a comment the same way: in public as a comment of its own, or privately through
//! the Send API.

use crate::channel::Channel;
use crate::json::Malformed;
use crate::providers::api::{
    Media, Outcome, Outgoing, ProviderRequest, Sender, StatusClass, excerpt, failure, status_class,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt;

/// The calls that send `outgoing`. WhatsApp: a text message, or one message per medium with the
/// text as the caption of the first medium that takes one. Messenger and Instagram: the text,
/// then one message per attachment (their messages carry text or one attachment, never both).
/// A message of files alone sends no text and no caption.
pub fn requests(
    base_url: &str,
    sender_id: &str,
    access_token: &str,
    outgoing: &Outgoing<'_>,
) -> Vec<ProviderRequest> {
    let bodies = match outgoing.channel {
        Channel::Whatsapp => whatsapp_bodies(outgoing),
        _ => send_api_bodies(outgoing),
    };
    bodies
        .into_iter()
        .map(|body| graph_request(format!("{base_url}/{sender_id}/messages"), access_token, &body))
        .collect()
}

/// A Graph API call with a JSON body, authorised by the account's access token.
fn graph_request(url: String, access_token: &str, body: &Value) -> ProviderRequest {
    ProviderRequest {
        url,
        headers: vec![
            ("authorization", format!("Bearer {access_token}")),
            ("content-type", "application/json".to_owned()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// The call that answers a comment in public, as the page: a comment of its own under the
/// comment (`POST {graph}/{comment id}/comments` with the text as `message`). Err when the
/// sender is not a Meta account, the id could change the path, or there is no text.
pub fn comment_reply_request(
    sender: &Sender,
    comment_id: &str,
    text: &str,
) -> Result<ProviderRequest, Uncallable> {
    let (base_url, _, access_token) = comment_replier(sender, comment_id, text)?;
    Ok(graph_request(
        format!("{base_url}/{comment_id}/comments"),
        access_token,
        &json!({ "message": text }),
    ))
}

/// The call that answers a comment privately, in Messenger: the Send API's private reply, from
/// the page (`POST {graph}/{page id}/messages`) to the comment's author, named by the comment.
/// Meta takes one private reply per comment, within 7 days of it; only the person's answer opens
/// the usual messaging window. Err as for [`comment_reply_request`].
pub fn private_reply_request(
    sender: &Sender,
    comment_id: &str,
    text: &str,
) -> Result<ProviderRequest, Uncallable> {
    let (base_url, page_id, access_token) = comment_replier(sender, comment_id, text)?;
    Ok(graph_request(
        format!("{base_url}/{page_id}/messages"),
        access_token,
        &json!({
            "recipient": { "comment_id": comment_id },
            "message": { "text": text },
        }),
    ))
}

/// Why a Graph API call cannot be made of what it was asked, found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncallable {
    /// The account is another provider's.
    NotMeta {
        provider: &'static str,
        doing: &'static str,
    },
    /// An id that could name another path than the call's.
    NotPlainId { naming: &'static str, id: String },
    /// A reply to a comment with nothing to say.
    NoText,
}

impl fmt::Display for Uncallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMeta { provider, doing } => write!(f, "a {provider} account cannot {doing}"),
            Self::NotPlainId { naming, id } => write!(f, "the {naming} {id:?} is not a plain id"),
            Self::NoText => f.write_str("a reply to a comment needs text"),
        }
    }
}

/// The base URL, page id and access token a reply to a comment is sent with.
fn comment_replier<'a>(
    sender: &'a Sender,
    comment_id: &str,
    text: &str,
) -> Result<(&'a str, &'a str, &'a str), Uncallable> {
    let account = graph_call(sender, "reply to Facebook comments", "comment id", comment_id)?;
    if text.trim().is_empty() {
        return Err(Uncallable::NoText);
    }
    Ok(account)
}

/// The Meta account's base URL, id and access token, for a Graph API call that does `doing` and
/// puts `id` (a `naming`) into its path; Err when the sender is not a Meta account or the id could
/// change the path.
fn graph_call<'a>(
    sender: &'a Sender,
    doing: &'static str,
    naming: &'static str,
    id: &str,
) -> Result<(&'a str, &'a str, &'a str), Uncallable> {
    let Sender::Meta {
        base_url,
        sender_id,
        access_token,
    } = sender
    else {
        return Err(Uncallable::NotMeta {
            provider: sender.provider().as_str(),
            doing,
        });
    };
    if !is_plain_id(id) {
        return Err(Uncallable::NotPlainId {
            naming,
            id: id.to_owned(),
        });
    }
    Ok((base_url, sender_id, access_token))
}

/// Whether `id` can go into a Graph API path as one segment, as Meta's own ids can (digits, with
/// `_` between a post's or comment's parts): anything else could name another path (`..` too,
/// which is why a dot is not taken).
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

/// WhatsApp's `to` is the number's digits, without the `+`.
fn whatsapp_to(to: &str) -> String {
    to.chars().filter(char::is_ascii_digit).collect()
}

/// WhatsApp's message type for a file: images, video and audio by their MIME type, anything
/// else as a document (which keeps its filename).
fn whatsapp_media_type(media: &Media) -> &'static str {
    let mime = media.mime_type.to_ascii_lowercase();
    if mime.starts_with("image/") {
        "image"
    } else if mime.starts_with("video/") {
        "video"
    } else if mime.starts_with("audio/") {
        "audio"
    } else {
        "document"
    }
}

fn whatsapp_bodies(outgoing: &Outgoing<'_>) -> Vec<Value> {
    let to = whatsapp_to(outgoing.to);
    let envelope = |kind: &str, content: Value| {
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": kind,
            kind: content,
        })
    };
    // Audio is the one medium without a caption; a file sent without text has none.
    let has_text = !outgoing.text.is_empty();
    let captioned = outgoing
        .media
        .iter()
        .position(|media| whatsapp_media_type(media) != "audio")
        .filter(|_| has_text);
    let mut bodies = Vec::new();
    if has_text && captioned.is_none() {
        bodies.push(envelope("text", json!({ "body": outgoing.text })));
    }
    for (at, media) in outgoing.media.iter().enumerate() {
        let kind = whatsapp_media_type(media);
        let mut content = json!({ "link": media.url });
        if captioned == Some(at) {
            content["caption"] = json!(outgoing.text);
        }
        if kind == "document" {
            content["filename"] = json!(media.filename);
        }
        bodies.push(envelope(kind, content));
    }
    bodies
}

fn send_api_bodies(outgoing: &Outgoing<'_>) -> Vec<Value> {
    let envelope = |message: Value| {
        json!({
            "recipient": { "id": outgoing.to },
            "messaging_type": "RESPONSE",
            "message": message,
        })
    };
    let mut bodies = Vec::new();
    if !outgoing.text.is_empty() {
        bodies.push(envelope(json!({ "text": outgoing.text })));
    }
    for media in outgoing.media {
        let mime = media.mime_type.to_ascii_lowercase();
        let kind = ["image", "video", "audio"]
            .into_iter()
            .find(|kind| mime.starts_with(&format!("{kind}/")))
            .unwrap_or("file");
        bodies.push(envelope(json!({
            "attachment": { "type": kind, "payload": { "url": media.url, "is_reusable": false } }
        })));
    }
    bodies
}

#[derive(Deserialize)]
struct Accepted {
    /// WhatsApp: `{"messages": [{"id": "wamid..."}]}`.
    #[serde(default)]
    messages: Vec<AcceptedMessage>,
    /// Messenger and Instagram: `{"recipient_id": "...", "message_id": "m_..."}`.
    message_id: Option<String>,
    /// A page's public reply to a comment: `{"id": "..."}`, the id of its own comment.
    id: Option<String>,
}

#[derive(Deserialize)]
struct AcceptedMessage {
    id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    #[serde(default)]
    is_transient: bool,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Graph API error codes that mean "too much, too fast" or "our side failed, try again": Meta
/// answers several of them with a 400, so the status line alone would call them permanent.
const TRANSIENT_CODES: [i64; 11] = [
    1,      // API Unknown: possibly a temporary issue
    2,      // API Service: temporary
    4,      // application request limit reached
    17,     // user request limit reached
    32,     // page request limit reached
    613,    // calls to this API exceed the rate limit
    80007,  // WhatsApp Business Account rate limit
    130429, // Cloud API throughput reached
    131048, // spam rate limit
    131056, // too many messages to this recipient
    133004, // server temporarily unavailable
];

pub fn classify(status: u16, retry_after: Option<u32>, body: &[u8]) -> Outcome {
    if let StatusClass::Success = status_class(status) {
        let id = serde_json::from_slice::<Accepted>(body)
            .ok()
            .and_then(|accepted| {
                accepted
                    .messages
                    .into_iter()
                    .find_map(|message| message.id)
                    .or(accepted.message_id)
                    .or(accepted.id)
            });
        return Outcome::Sent {
            provider_message_id: id,
        };
    }
    let error = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|envelope| envelope.error);
    let transient = matches!(status_class(status), StatusClass::Transient)
        || error.as_ref().is_some_and(|error| {
            error.is_transient || error.code.is_some_and(|code| TRANSIENT_CODES.contains(&code))
        });
    let reason = match error {
        Some(error) => {
            let code = match (error.code, error.error_subcode) {
                (Some(code), Some(subcode)) => format!(" {code}/{subcode}"),
                (Some(code), None) => format!(" {code}"),
                _ => String::new(),
            };
            let message = error.message.unwrap_or_else(|| "no message".to_owned());
            match error
                .error_data
                .and_then(|data| data.details)
                .filter(|d| !d.is_empty())
            {
                Some(details) => format!("meta error{code} (HTTP {status}): {message}: {details}"),
                None => format!("meta error{code} (HTTP {status}): {message}"),
            }
        }
        None => format!("meta answered HTTP {status}: {}", excerpt(body)),
    };
    failure(transient, &reason, retry_after)
}

/// The Graph API call that answers where a WhatsApp medium can be downloaded (`GET {graph}/{media
/// id}`, the access token as a bearer token); its answer is read by [`media_info`], and the
/// download itself takes the same token. Err when the id could change the path.
pub fn media_info_request(sender: &Sender, media_id: &str) -> Result<(String, String), Uncallable> {
    let (base_url, _, access_token) =
        graph_call(sender, "fetch WhatsApp media", "WhatsApp media id", media_id)?;
    Ok((format!("{base_url}/{media_id}"), format!("Bearer {access_token}")))
}

/// Where a WhatsApp medium is, as the Graph API answers it.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct MediaInfo {
    pub url: String,
    pub mime_type: Option<String>,
}

pub fn media_info(body: &[u8]) -> Result<MediaInfo, Malformed> {
    serde_json::from_slice(body).map_err(|error| Malformed::new(format!("unexpected media info: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::AnswerCase;

    fn body(request: &ProviderRequest) -> Value {
        serde_json::from_slice(&request.body).unwrap_or_default()
    }

    fn media(mime_type: &str, filename: &str) -> Media {
        Media {
            url: format!("https://crm.example.com/api/download-media?id={filename}"),
            filename: filename.to_owned(),
            mime_type: mime_type.to_owned(),
            bytes: None,
        }
    }

    fn outgoing<'a>(channel: Channel, to: &'a str, media: &'a [Media]) -> Outgoing<'a> {
        Outgoing {
            channel,
            to,
            text: "Hi! Your order is ready for pickup.",
            subject: None,
            media,
        }
    }

    #[test]
    fn a_whatsapp_text_is_the_cloud_apis_documented_text_message() {
        let sent = requests(
            "https://graph.facebook.com/v21.0",
            "106540352242922",
            "EAAG-token",
            &outgoing(Channel::Whatsapp, "+353871234567", &[]),
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].url,
            "https://graph.facebook.com/v21.0/106540352242922/messages"
        );
        assert_eq!(sent[0].header("authorization"), Some("Bearer EAAG-token"));
        assert_eq!(sent[0].header("content-type"), Some("application/json"));
        assert_eq!(
            body(&sent[0]),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "353871234567",
                "type": "text",
                "text": { "body": "Hi! Your order is ready for pickup." }
            })
        );
    }

    #[test]
    fn whatsapp_media_go_by_link_with_the_text_as_the_first_caption() {
        let files = [
            media("application/pdf", "receipt.pdf"),
            media("image/jpeg", "photo.jpg"),
        ];
        let sent = requests(
            "https://g",
            "1",
            "t",
            &outgoing(Channel::Whatsapp, "+353871234567", &files),
        );
        let bodies: Vec<Value> = sent.iter().map(body).collect();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0]["type"], "document");
        assert_eq!(
            bodies[0]["document"],
            json!({
                "link": "https://crm.example.com/api/download-media?id=receipt.pdf",
                "caption": "Hi! Your order is ready for pickup.",
                "filename": "receipt.pdf"
            })
        );
        assert_eq!(bodies[1]["type"], "image");
        assert_eq!(
            bodies[1]["image"],
            json!({ "link": "https://crm.example.com/api/download-media?id=photo.jpg" })
        );
    }

    #[test]
    fn whatsapp_audio_cannot_carry_the_text_so_the_text_goes_first() {
        let files = [media("audio/ogg", "note.ogg")];
        let sent = requests(
            "https://g",
            "1",
            "t",
            &outgoing(Channel::Whatsapp, "+353871234567", &files),
        );
        let kinds: Vec<Value> = sent.iter().map(|r| body(r)["type"].clone()).collect();
        assert_eq!(kinds, vec![json!("text"), json!("audio")]);
    }

    #[test]
    fn files_without_text_go_without_a_text_message_or_a_caption() {
        let files = [media("image/jpeg", "photo.jpg"), media("audio/ogg", "note.ogg")];
        for channel in [Channel::Whatsapp, Channel::Facebook, Channel::Instagram] {
            let alone = Outgoing {
                text: "",
                ..outgoing(channel, "+353871234567", &files)
            };
            let sent: Vec<Value> = requests("https://g", "1", "t", &alone).iter().map(body).collect();
            let parts: Vec<Value> = sent
                .iter()
                .map(|body| match channel {
                    Channel::Whatsapp => json!([
                        body["type"],
                        body[body["type"].as_str().unwrap_or_default()]["caption"]
                    ]),
                    _ => json!([body["message"]["attachment"]["type"], body["message"]["text"]]),
                })
                .collect();
            assert_eq!(
                parts,
                [json!(["image", null]), json!(["audio", null])],
                "{channel}: one message per file, nothing empty"
            );
        }
    }

    #[test]
    fn messenger_and_instagram_send_the_text_then_each_attachment() {
        for channel in [Channel::Facebook, Channel::Instagram] {
            let files = [media("image/png", "a.png"), media("application/pdf", "b.pdf")];
            let sent = requests(
                "https://g",
                "17841400000000000",
                "t",
                &outgoing(channel, "6543210987654321", &files),
            );
            let bodies: Vec<Value> = sent.iter().map(body).collect();
            assert_eq!(
                bodies[0],
                json!({
                    "recipient": { "id": "6543210987654321" },
                    "messaging_type": "RESPONSE",
                    "message": { "text": "Hi! Your order is ready for pickup." }
                }),
                "{channel}"
            );
            assert_eq!(bodies[1]["message"]["attachment"]["type"], "image", "{channel}");
            assert_eq!(bodies[2]["message"]["attachment"]["type"], "file", "{channel}");
            assert_eq!(
                bodies[2]["message"]["attachment"]["payload"]["url"],
                "https://crm.example.com/api/download-media?id=b.pdf"
            );
            assert!(
                sent.iter()
                    .all(|r| r.url == "https://g/17841400000000000/messages")
            );
        }
    }

    #[test]
    fn answers_are_read_as_the_graph_api_documents_them() {
        let invalid = br#"{"error":{"message":"(#131030) Recipient phone number not in allowed list","type":"OAuthException","code":131030,"error_data":{"messaging_product":"whatsapp","details":"Add recipient phone number to recipient list"},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let throttled = br#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"A"}}"#;
        let bad_token = br#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"B"}}"#;
        let cases: [AnswerCase; 9] = [
            (
                200,
                None,
                br#"{"messaging_product":"whatsapp","contacts":[{"input":"353871234567","wa_id":"353871234567"}],"messages":[{"id":"wamid.HBgM"}]}"#,
                Outcome::Sent { provider_message_id: Some("wamid.HBgM".into()) },
                "WhatsApp accepted",
            ),
            (
                200,
                None,
                br#"{"id":"1234567890_111_222"}"#,
                Outcome::Sent { provider_message_id: Some("1234567890_111_222".into()) },
                "a public reply accepted as the page's own comment",
            ),
            (
                200,
                None,
                br#"{"recipient_id":"6543210987654321","message_id":"m_AG5Hz"}"#,
                Outcome::Sent { provider_message_id: Some("m_AG5Hz".into()) },
                "Messenger accepted",
            ),
            (
                200,
                None,
                b"",
                Outcome::Sent { provider_message_id: None },
                "accepted without an id is still sent: sending again would duplicate it",
            ),
            (
                400,
                None,
                invalid,
                Outcome::Rejected {
                    reason: "meta error 131030 (HTTP 400): (#131030) Recipient phone number not in allowed list: Add recipient phone number to recipient list".into(),
                },
                "invalid recipient",
            ),
            (
                400,
                None,
                throttled,
                Outcome::Transient {
                    reason: "meta error 130429 (HTTP 400): (#130429) Rate limit hit".into(),
                    retry_after: None,
                },
                "throttling reported in a 400",
            ),
            (
                401,
                None,
                bad_token,
                Outcome::Rejected {
                    reason: "meta error 190/463 (HTTP 401): Invalid OAuth access token.".into(),
                },
                "bad token",
            ),
            (
                429,
                Some(1),
                br#"{"error":{"message":"slow down","code":4}}"#,
                Outcome::Transient { reason: "meta error 4 (HTTP 429): slow down".into(), retry_after: Some(1) },
                "429 with Retry-After",
            ),
            (
                502,
                None,
                b"<html>Bad Gateway</html>",
                Outcome::Transient { reason: "meta answered HTTP 502: <html>Bad Gateway</html>".into(), retry_after: None },
                "an answer that is not Graph JSON",
            ),
        ];
        for (status, retry_after, answer, expected, description) in cases {
            assert_eq!(classify(status, retry_after, answer), expected, "{description}");
        }
    }

    #[test]
    fn an_error_meta_marks_transient_is_retried_whatever_its_code() {
        let answer = br#"{"error":{"message":"try later","code":100,"is_transient":true}}"#;
        assert!(matches!(classify(400, None, answer), Outcome::Transient { .. }));
    }

    #[test]
    fn whatsapp_media_is_resolved_through_the_accounts_graph_api_with_its_token() {
        let sender = Sender::Meta {
            base_url: "http://127.0.0.1:9001/v21.0".to_owned(),
            sender_id: "1055".to_owned(),
            access_token: "EAAG".to_owned(),
        };
        assert_eq!(
            media_info_request(&sender, "1234567890"),
            Ok((
                "http://127.0.0.1:9001/v21.0/1234567890".to_owned(),
                "Bearer EAAG".to_owned()
            ))
        );
        for hostile in ["", "../me", "..", ".", "1?fields=x", "1/2", "1#x", "a b"] {
            assert!(media_info_request(&sender, hostile).is_err(), "{hostile:?}");
        }
        let twilio = Sender::Twilio {
            base_url: "https://api.twilio.com".to_owned(),
            account_sid: "AC1".to_owned(),
            auth_token: "t".to_owned(),
            from: "+15550001111".to_owned(),
        };
        assert!(media_info_request(&twilio, "1").is_err());
        assert_eq!(
            sender.linked_media_authorization(),
            None,
            "Meta's links are public"
        );
        assert_eq!(
            twilio.linked_media_authorization(),
            Some("Basic QUMxOnQ=".to_owned())
        );
    }

    fn page() -> Sender {
        Sender::Meta {
            base_url: "https://graph.facebook.com/v21.0".to_owned(),
            sender_id: "1234567890".to_owned(),
            access_token: "EAAG-page-token".to_owned(),
        }
    }

    fn sent(request: Result<ProviderRequest, Uncallable>) -> ProviderRequest {
        match request {
            Ok(request) => request,
            Err(reason) => panic!("no request: {reason}"),
        }
    }

    #[test]
    fn a_reply_to_a_comment_is_the_pages_own_comment_or_a_send_api_message_to_its_author() {
        let comment = "1234567890_111_222";
        let cases = [
            (
                comment_reply_request(&page(), comment, "Yes, we ship to Cork."),
                "https://graph.facebook.com/v21.0/1234567890_111_222/comments",
                json!({ "message": "Yes, we ship to Cork." }),
                "in public: the comment's comments edge, the text as the comment's message",
            ),
            (
                private_reply_request(&page(), comment, "Hi Kerry, here is the tracking link."),
                "https://graph.facebook.com/v21.0/1234567890/messages",
                json!({
                    "recipient": { "comment_id": comment },
                    "message": { "text": "Hi Kerry, here is the tracking link." }
                }),
                "privately: the page's Send API, the recipient named by the comment",
            ),
        ];
        for (request, url, expected, description) in cases {
            let request = sent(request);
            assert_eq!(request.url, url, "{description}");
            assert!(
                format!("{request:?}").starts_with(&format!("POST {url} ")),
                "a POST: {request:?}"
            );
            assert_eq!(
                request.header("authorization"),
                Some("Bearer EAAG-page-token"),
                "the page's token: {description}"
            );
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert_eq!(body(&request), expected, "{description}");
        }
    }

    #[test]
    fn replies_to_comments_are_refused_without_a_page_a_plain_comment_id_or_text() {
        let twilio = Sender::Twilio {
            base_url: "https://api.twilio.com".to_owned(),
            account_sid: "AC1".to_owned(),
            auth_token: "t".to_owned(),
            from: "+15550001111".to_owned(),
        };
        let cases = [
            (twilio, "1_2", "hi", "an account that is not Meta's"),
            (page(), "", "hi", "no comment id"),
            (page(), "../me", "hi", "an id that climbs the path"),
            (page(), "..", "hi", "an id that is the parent"),
            (page(), "1_2?fields=x", "hi", "an id with a query"),
            (page(), "1_2/likes", "hi", "an id naming another edge"),
            (page(), "1_2#x", "hi", "an id with a fragment"),
            (page(), "1_2", "", "no text"),
            (page(), "1_2", " \n ", "only whitespace"),
        ];
        for (sender, comment_id, text, description) in cases {
            assert!(
                comment_reply_request(&sender, comment_id, text).is_err(),
                "public: {description}"
            );
            assert!(
                private_reply_request(&sender, comment_id, text).is_err(),
                "private: {description}"
            );
        }
    }

    #[test]
    fn media_info_is_read_as_the_graph_api_answers_it() {
        let info = media_info(br#"{"url":"https://lookaside.fbsbx.com/x","mime_type":"image/jpeg","sha256":"ab","file_size":10,"id":"1","messaging_product":"whatsapp"}"#);
        assert_eq!(
            info,
            Ok(MediaInfo {
                url: "https://lookaside.fbsbx.com/x".to_owned(),
                mime_type: Some("image/jpeg".to_owned())
            })
        );
        assert!(media_info(b"{}").is_err());
    }
}
