//! Inbound email as Mailgun delivers it: the format followed is Mailgun's, the POST of an inbound
//! route's `forward()` action (`multipart/form-data` when the mail has attachments, otherwise
//! form fields as well), with the parsed message in fields such as `sender`, `from`, `subject`,
//! `body-plain`, `Message-Id`, and the files in `attachment-1` .. `attachment-N`.
//!
//! Mailgun signs each POST with the account's webhook signing key: `signature` is the hex
//! HMAC-SHA256 of `timestamp` followed by `token` (a random string of 50 characters), and covers
//! nothing of the mail. So the three fields are read first, from the raw body
//! ([`signed_fields`](super::signed_fields)), and checked before the form is parsed. A POST older
//! or newer than five minutes is refused even when correctly signed, and within those minutes a
//! token already accepted is refused ([`UsedToken`]), so a captured request cannot be replayed.

use crate::email::Email;
use crate::error::ApiError;
use crate::ids::ChannelAccountId;
use crate::inbound::{InboundBatch, InboundMedia, InboundMessage};
use crate::providers::mailgun::signed_fields::SignatureFields;
use crate::providers::{bad_signature, display_name, hmac_sha256_matches};
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// Mailgun forwards messages of up to 25 MB, attachments included.
pub const BODY_LIMIT: usize = 25 * 1024 * 1024;
/// How far a signed timestamp may be from our clock, either way.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;
/// More files than this in one mail is refused rather than read.
pub const MAX_ATTACHMENTS: usize = 100;

/// The text fields a receiver reads from the parsed form; everything else Mailgun sends is not
/// used. The signature fields are not among them: they are read once, by the pre-auth scan, so
/// the values checked are the values used.
pub const FIELDS: [&str; 10] = [
    "sender",
    "from",
    "From",
    "recipient",
    "subject",
    "Subject",
    "body-plain",
    "stripped-text",
    "Message-Id",
    "attachment-count",
];

/// The form field of the `number`th attachment (from 1).
pub fn attachment_field(number: usize) -> String {
    format!("attachment-{number}")
}

/// The text fields of a Mailgun POST, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<String, String>);

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// How many files the POST says it carries (`attachment-count`, none when absent).
    pub fn attachment_count(&self) -> Result<usize, ApiError> {
        let Some(count) = self.get("attachment-count") else {
            return Ok(0);
        };
        let count = count
            .parse::<usize>()
            .map_err(|_| ApiError::malformed("attachment-count is a number").at("attachment-count"))?;
        if count > MAX_ATTACHMENTS {
            return Err(ApiError::invalid(
                "attachment-count",
                format!("a message may carry at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        Ok(count)
    }
}

/// A file of the POST, as the form gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The token of a POST whose signature and timestamp were verified: only
/// [`verify_signature`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken(String);

impl SignedToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks `signature` over `timestamp` + `token` with the signing key, then that `timestamp` is
/// within five minutes of `now`; the token, once both hold. Nothing else of the POST is read.
pub fn verify_signature(
    signing_key: &str,
    fields: &SignatureFields,
    now: Timestamp,
) -> Result<SignedToken, ApiError> {
    let (Some(timestamp), Some(token), Some(signature)) = (
        present(&fields.timestamp),
        present(&fields.token),
        present(&fields.signature).and_then(|hex| hex::decode(hex).ok()),
    ) else {
        return Err(bad_signature("Mailgun"));
    };
    if !hmac_sha256_matches(
        signing_key.as_bytes(),
        &[timestamp.as_bytes(), token.as_bytes()],
        &signature,
    ) {
        return Err(bad_signature("Mailgun"));
    }
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|seconds| (now.seconds() - seconds).abs() <= TIMESTAMP_TOLERANCE_SECONDS);
    if fresh {
        Ok(SignedToken(token.to_owned()))
    } else {
        Err(ApiError::unauthorized(
            "the Mailgun signature's timestamp is more than five minutes from now",
        ))
    }
}

/// A field's value, or None when it is absent or blank.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

/// A token an account has accepted, as the replay store keeps it.
///
/// A token signed at `t` passes [`verify_signature`] only while our clock reads `t ± 5 min`, so
/// it is first accepted no earlier than `t - 5 min` and refused by its timestamp from `t + 5 min`:
/// remembering it for twice the tolerance after it was accepted covers every moment its
/// signature is still good. Tokens are scoped by the account whose path the POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedToken {
    key: String,
}

impl UsedToken {
    /// How long a used token is kept (KV keeps nothing for less than 60 s).
    pub const TTL_SECONDS: u64 = {
        let seconds = 2 * TIMESTAMP_TOLERANCE_SECONDS.unsigned_abs();
        assert!(seconds >= 60, "KV's shortest expiry is 60 s");
        seconds
    };

    pub fn new(account: &ChannelAccountId, token: &SignedToken) -> Self {
        Self {
            key: format!("mailgun-token:v1:{account}:{}", token.as_str()),
        }
    }

    /// The key it is stored under (at most about 310 bytes: the token is at most 256).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The answer to a POST whose token was already accepted: Mailgun never sends a token twice
    /// once we answered 2xx, so this is a captured request sent again.
    pub fn replayed() -> ApiError {
        ApiError::unauthorized("this Mailgun token was already used: the POST is a replay")
    }
}

/// The message of a verified POST: from the sender's address (lowercased), its subject and
/// plain-text body as the content, and its files.
pub fn parse(
    fields: &Fields,
    token: &SignedToken,
    attachments: Vec<Attachment>,
) -> Result<InboundBatch, ApiError> {
    let header_from = fields.get("from").or_else(|| fields.get("From"));
    let (field, raw_sender) = match fields.get("sender") {
        Some(sender) => ("sender", sender),
        None => (
            "from",
            header_from.ok_or_else(|| {
                ApiError::malformed("the POST names no sender (sender or from)").at("sender")
            })?,
        ),
    };
    let (own_name, address) = mailbox(raw_sender);
    let from = Email::parse(address)
        .map_err(|error| ApiError::invalid(field, format!("{field} is not an email address: {error}")))?;
    // The envelope sender may differ from the From header (a list, a forwarder): the header's
    // display name is the sender's only when the header names the same address.
    let header_name = header_from
        .map(mailbox)
        .filter(|(_, header_address)| header_address.eq_ignore_ascii_case(from.as_str()))
        .and_then(|(name, _)| name);
    let subject = fields.get("subject").or_else(|| fields.get("Subject"));
    let body = fields
        .get("body-plain")
        .or_else(|| fields.get("stripped-text"))
        .map(str::trim_end);
    let content = match (subject, body) {
        (Some(subject), Some(body)) => format!("{subject}\n\n{body}"),
        (Some(text), None) | (None, Some(text)) => text.to_owned(),
        (None, None) => String::new(),
    };
    // A message without a Message-Id (RFC 5322 only recommends one) is known by the POST's
    // unique token instead; a retry of that POST is then not recognised as the same mail.
    let provider_message_id = match fields.get("Message-Id") {
        Some(id) => id.to_owned(),
        None => format!("mailgun-token:{}", token.as_str()),
    };
    let media = attachments
        .into_iter()
        .enumerate()
        .map(|(index, file)| InboundMedia::Inline {
            filename: display_name(Some(&file.filename)).unwrap_or_else(|| attachment_field(index + 1)),
            mime_type: display_name(Some(&file.content_type))
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            bytes: file.bytes,
        })
        .collect();
    Ok(InboundBatch {
        messages: vec![InboundMessage {
            provider_message_id,
            from: from.as_str().to_owned(),
            sender_name: header_name.or(own_name),
            content,
            media,
        }],
        ..InboundBatch::default()
    })
}

/// Splits `Name <address>` (the name may be quoted) into its name and address; a bare address
/// has no name.
fn mailbox(text: &str) -> (Option<String>, &str) {
    let text = text.trim();
    match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim().trim_matches('"').replace("\\\"", "\"");
            (display_name(Some(&name)), text[open + 1..text.len() - 1].trim())
        }
        _ => (None, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const KEY: &str = "key-signing-0123456789";
    const NOW: i64 = 1_700_000_000;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_millis(seconds * 1000)
    }

    fn signature(key: &str, timestamp: &str, token: &str) -> String {
        hex::encode(crate::crypto::hmac_sha256(
            key.as_bytes(),
            &[timestamp.as_bytes(), token.as_bytes()],
        ))
    }

    const TOKEN: &str = "b8d0f9c6a1e24e5f9c0d7a3b2c1e0f9a8b7c6d5e4f3a2b1c0d";

    fn signed(timestamp: i64) -> SignatureFields {
        let timestamp = timestamp.to_string();
        SignatureFields {
            signature: Some(signature(KEY, &timestamp, TOKEN)),
            timestamp: Some(timestamp),
            token: Some(TOKEN.to_owned()),
        }
    }

    fn token() -> SignedToken {
        SignedToken(TOKEN.to_owned())
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().copied().collect()
    }

    fn mail() -> Fields {
        fields(&[
            ("sender", "Ann.Lee@Example.com"),
            ("from", "\"Lee, Ann\" <ann.lee@example.com>"),
            ("recipient", "support@acme.example"),
            ("subject", "Order 1234"),
            ("body-plain", "Where is my parcel?\n\n> quoted\n"),
            ("stripped-text", "Where is my parcel?"),
            ("Message-Id", "<CAF=abc@mail.example.com>"),
        ])
    }

    #[test]
    fn a_post_signed_with_the_signing_key_within_five_minutes_gives_its_token() {
        for (skew, description) in [
            (0, "now"),
            (-300, "five minutes ago"),
            (300, "five minutes ahead"),
        ] {
            assert_eq!(
                verify_signature(KEY, &signed(NOW + skew), at(NOW)),
                Ok(token()),
                "{description}"
            );
        }
    }

    #[test]
    fn bad_missing_or_stale_signatures_are_refused_as_unauthorized() {
        let good = signed(NOW);
        let changed = |change: fn(&mut SignatureFields)| -> SignatureFields {
            let mut fields = good.clone();
            change(&mut fields);
            fields
        };
        let cases = [
            (changed(|f| f.signature = None), "no signature"),
            (changed(|f| f.timestamp = None), "no timestamp"),
            (changed(|f| f.token = None), "no token"),
            (changed(|f| f.token = Some("  ".to_owned())), "a blank token"),
            (
                changed(|f| f.signature = Some("zz".to_owned())),
                "a signature that is not hex",
            ),
            (
                changed(|f| f.token = Some("another-token".to_owned())),
                "a token changed after signing",
            ),
            (
                changed(|f| f.timestamp = Some((NOW + 1).to_string())),
                "a timestamp changed after signing",
            ),
            (
                changed(|f| f.signature = Some(signature("another-key", &NOW.to_string(), TOKEN))),
                "signed with another key",
            ),
            (signed(NOW - 301), "older than five minutes"),
            (signed(NOW + 301), "more than five minutes ahead"),
            (
                SignatureFields {
                    timestamp: Some("soon".to_owned()),
                    token: Some("t".to_owned()),
                    signature: Some(signature(KEY, "soon", "t")),
                },
                "a signed timestamp that is not a number",
            ),
        ];
        for (fields, description) in cases {
            let error = verify_signature(KEY, &fields, at(NOW)).err();
            assert_eq!(
                error.map(|e| e.code()),
                Some(ErrorCode::Unauthorized),
                "{description}"
            );
        }
    }

    #[test]
    fn a_used_token_is_kept_per_account_for_twice_the_tolerance() {
        let account = ChannelAccountId::generate([1; 16]);
        let other = ChannelAccountId::generate([2; 16]);
        let used = UsedToken::new(&account, &token());
        assert_eq!(
            used.key(),
            format!("mailgun-token:v1:{account}:{TOKEN}"),
            "the key names the account and the token"
        );
        assert_ne!(
            used,
            UsedToken::new(&other, &token()),
            "another account's use of the token is another entry"
        );
        assert_eq!(
            UsedToken::TTL_SECONDS,
            600,
            "kept from its first acceptance (at t - 5 min at the earliest) until its timestamp refuses it (t + 5 min)"
        );
        assert_eq!(UsedToken::replayed().code(), ErrorCode::Unauthorized);
    }

    #[test]
    fn a_mail_becomes_a_message_from_the_lowercased_sender_with_subject_then_body() {
        let batch = parse(&mail(), &token(), Vec::new());
        assert_eq!(
            batch,
            Ok(InboundBatch {
                messages: vec![InboundMessage {
                    provider_message_id: "<CAF=abc@mail.example.com>".to_owned(),
                    from: "ann.lee@example.com".to_owned(),
                    sender_name: Some("Lee, Ann".to_owned()),
                    content: "Order 1234\n\nWhere is my parcel?\n\n> quoted".to_owned(),
                    media: vec![],
                }],
                statuses: vec![],
                comments: Vec::new(),
            })
        );
    }

    #[test]
    fn the_sender_and_its_name_are_read_from_whichever_field_has_them() {
        let cases = [
            (
                vec![("from", "Bob Stone <Bob@Example.com>")],
                ("bob@example.com", Some("Bob Stone")),
                "only a From header",
            ),
            (
                vec![("From", "bob@example.com")],
                ("bob@example.com", None),
                "a capitalised From with a bare address",
            ),
            (
                vec![("sender", "Bob Stone <bob@example.com>")],
                ("bob@example.com", Some("Bob Stone")),
                "a sender with a name",
            ),
            (
                vec![
                    ("sender", "bounce@list.example"),
                    ("from", "Bob Stone <bob@example.com>"),
                ],
                ("bounce@list.example", None),
                "an envelope sender unlike the From header keeps no borrowed name",
            ),
        ];
        for (extra, (address, name), description) in cases {
            let mut extra = extra;
            extra.push(("Message-Id", "<m@x>"));
            let batch = parse(&fields(&extra), &token(), Vec::new()).unwrap_or_default();
            let message = &batch.messages[0];
            assert_eq!(
                (message.from.as_str(), message.sender_name.as_deref()),
                (address, name),
                "{description}"
            );
        }
    }

    #[test]
    fn the_body_falls_back_to_the_stripped_text_and_a_missing_subject_leaves_the_body_alone() {
        let fields = fields(&[
            ("sender", "a@example.com"),
            ("stripped-text", "Just the reply"),
            ("Message-Id", "<m@x>"),
        ]);
        let batch = parse(&fields, &token(), Vec::new()).unwrap_or_default();
        assert_eq!(batch.messages[0].content, "Just the reply");
    }

    #[test]
    fn attachments_are_carried_inline_with_their_name_and_type() {
        let files = vec![
            Attachment {
                filename: "invoice.pdf".to_owned(),
                content_type: "application/pdf".to_owned(),
                bytes: b"%PDF-1.4".to_vec(),
            },
            Attachment {
                filename: String::new(),
                content_type: String::new(),
                bytes: vec![1, 2, 3],
            },
        ];
        let batch = parse(&mail(), &token(), files).unwrap_or_default();
        assert_eq!(
            batch.messages[0].media,
            vec![
                InboundMedia::Inline {
                    filename: "invoice.pdf".to_owned(),
                    mime_type: "application/pdf".to_owned(),
                    bytes: b"%PDF-1.4".to_vec(),
                },
                InboundMedia::Inline {
                    filename: "attachment-2".to_owned(),
                    mime_type: "application/octet-stream".to_owned(),
                    bytes: vec![1, 2, 3],
                },
            ]
        );
    }

    #[test]
    fn a_mail_without_a_message_id_is_known_by_its_token() {
        let fields = fields(&[("sender", "a@example.com"), ("subject", "hi")]);
        let batch = parse(&fields, &token(), Vec::new()).unwrap_or_default();
        assert_eq!(
            batch.messages[0].provider_message_id,
            format!("mailgun-token:{TOKEN}")
        );
    }

    #[test]
    fn posts_that_are_not_mail_are_refused() {
        let cases = [
            (
                fields(&[("subject", "hi")]),
                ErrorCode::MalformedRequest,
                "no sender at all",
            ),
            (
                fields(&[("sender", "not an address")]),
                ErrorCode::ValidationFailed,
                "a sender that is not an address",
            ),
        ];
        for (fields, code, description) in cases {
            let error = parse(&fields, &token(), Vec::new()).err();
            assert_eq!(error.map(|e| e.code()), Some(code), "{description}");
        }
    }

    #[test]
    fn the_attachment_count_is_a_bounded_number() {
        let cases = [
            (vec![], Ok(0), "absent"),
            (vec![("attachment-count", "2")], Ok(2), "two"),
            (
                vec![("attachment-count", "two")],
                Err(ErrorCode::MalformedRequest),
                "not a number",
            ),
            (
                vec![("attachment-count", "101")],
                Err(ErrorCode::ValidationFailed),
                "more than the limit",
            ),
        ];
        for (extra, expected, description) in cases {
            let count = fields(&extra).attachment_count().map_err(|e| e.code());
            assert_eq!(count, expected, "{description}");
        }
    }
}
