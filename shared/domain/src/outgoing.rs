//! The body of `/api-send-message`, parsed: who the message is for, on which channel, what it
//! says, and which uploaded attachments go with it. Every problem names its field. The embedded
//! inbox's reply box, whose customer is fixed by its token, parses only the message part.

use crate::channel::Channel;
use crate::customer::Customer;
use crate::error::ApiError;
use crate::identify::{CustomerRef, Name, identify};
use crate::ids::AttachmentId;

use crate::phone::Country;
use crate::request_url::RequestUrl;
use serde::{Deserialize, Deserializer};
use url::form_urlencoded;

/// The seed's limit: at most this many files travel with one message (Twilio's own limit).
pub const MAX_ATTACHMENTS: usize = 10;
/// The longest email subject we send (RFC 5322's line length).
pub const MAX_SUBJECT_CHARS: usize = 998;

/// The request as clients send it. Fields are optional here so that each absence is reported
/// with its name rather than as a parse error.
///
/// The customer is customer_id (ours, else the CRM's), email or phone; channel is required, and
/// content unless attachments are given.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SendIn {
    #[serde(default, deserialize_with = "text_or_integer")]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "Option<crate::api::openapi::StringOrInteger>")
    )]
    pub customer_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(with = "Option<Channel>", required))]
    pub channel: Option<String>,
    /// whatsapp/email 4096, sms 1600, facebook 2000, instagram 1000 characters. Required unless
    /// the message carries attachments (a file may be sent without text).
    #[cfg_attr(feature = "openapi", schemars(length(max = 4096)))]
    pub content: Option<String>,
    /// Email only; one line.
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_SUBJECT_CHARS)))]
    pub subject: Option<String>,
    /// file_url values (or ids) from /api-upload-attachment.
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_ATTACHMENTS)))]
    pub attachments: Option<Vec<String>>,
}

/// CRMs keep numeric ids as often as strings; both name the same customer.
fn text_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Integer(i64),
    }
    Ok(Option::<Id>::deserialize(deserializer)?.map(|id| match id {
        Id::Text(text) => text,
        Id::Integer(number) => number.to_string(),
    }))
}

/// A message the request asks for, every part valid.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub customer: CustomerRef,
    pub message: OutgoingMessage,
}

/// What is sent, to whichever customer: the channel, the text, and the uploaded attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub channel: Channel,
    pub content: String,
    pub subject: Option<String>,
    /// Ids of uploaded attachments, in the order given.
    pub attachments: Vec<AttachmentId>,
    /// The Facebook comment it answers, when it answers one (the page's bot does); the API's
    /// sends answer none.
    pub reply: Option<CommentReply>,
}

/// An answer to a comment on a page's post: kept in the conversation of the comment's author
/// under that post, and sent under the comment in public or, privately, into the author's
/// Messenger (the Send API's private reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentReply {
    pub post_id: String,
    pub comment_id: String,
    pub privately: bool,
}

/// The longest message each channel takes, in characters: WhatsApp's text body and our own
/// cap for email (4096), Twilio's SMS body (1600), Messenger's text (2000), Instagram's (1000).
pub fn max_content_chars(channel: Channel) -> usize {
    match channel {
        Channel::Whatsapp | Channel::Email => 4096,
        Channel::Sms => 1600,
        Channel::Facebook => 2000,
        Channel::Instagram => 1000,
    }
}

impl SendRequest {
    pub fn parse(input: SendIn, country: Option<Country>) -> Result<Self, ApiError> {
        let customer = identify(
            &[
                (Name::CustomerId, input.customer_id.as_deref()),
                (Name::Email, input.email.as_deref()),
                (Name::Phone, input.phone.as_deref()),
            ],
            country,
        )?;
        let message = OutgoingMessage::parse(
            input.channel.as_deref(),
            input.content,
            input.subject.as_deref(),
            input.attachments.unwrap_or_default(),
        )?;
        Ok(Self { customer, message })
    }
}

impl OutgoingMessage {
    pub fn parse(
        channel: Option<&str>,
        content: Option<String>,
        subject: Option<&str>,
        attachments: Vec<String>,
    ) -> Result<Self, ApiError> {
        let channel = match channel.map(str::trim) {
            None | Some("") => {
                return Err(ApiError::invalid("channel", channel_list("channel is required:")));
            }
            Some(name) => Channel::parse(name).ok_or_else(|| {
                ApiError::invalid("channel", channel_list(&format!("unknown channel \"{name}\":")))
            })?,
        };
        let content = content.unwrap_or_default();
        // A file may go alone, as people send a photo without a word; a message of nothing is refused.
        if content.trim().is_empty() && attachments.is_empty() {
            return Err(ApiError::invalid(
                "content",
                "content is required: the text of the message (it may be left out when attachments are sent)",
            ));
        }
        let content = if content.trim().is_empty() {
            String::new()
        } else {
            content
        };
        let limit = max_content_chars(channel);
        if content.chars().count() > limit {
            return Err(ApiError::invalid(
                "content",
                format!("content is longer than the {limit} characters a {channel} message may have"),
            ));
        }
        let subject = match subject.map(str::trim) {
            None | Some("") => None,
            Some(subject) if subject.contains(['\r', '\n']) => {
                return Err(ApiError::invalid("subject", "subject is one line"));
            }
            Some(subject) if subject.chars().count() > MAX_SUBJECT_CHARS => {
                return Err(ApiError::invalid(
                    "subject",
                    format!("subject is longer than {MAX_SUBJECT_CHARS} characters"),
                ));
            }
            // Only email has a subject; on other channels it is ignored.
            Some(subject) => (channel == Channel::Email).then(|| subject.to_owned()),
        };
        let attachments = attachment_ids(attachments)?;
        Ok(Self {
            channel,
            content,
            subject,
            attachments,
            reply: None,
        })
    }
}

fn channel_list(lead: &str) -> String {
    let names: Vec<&str> = Channel::ALL.iter().map(|channel| channel.as_str()).collect();
    format!("{lead} channel is one of {}", names.join(", "))
}

fn attachment_ids(given: Vec<String>) -> Result<Vec<AttachmentId>, ApiError> {
    if given.len() > MAX_ATTACHMENTS {
        return Err(ApiError::invalid(
            "attachments",
            format!("a message carries at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    let mut parsed: Vec<AttachmentId> = Vec::with_capacity(given.len());
    for (at, value) in given.iter().enumerate() {
        let field = format!("attachments[{at}]");
        let id = attachment_id(value).ok_or_else(|| {
            ApiError::invalid(
                &field,
                "an attachment is the file_url /api-upload-attachment returned (with its id=<uuid>) or that id",
            )
        })?;
        if parsed.contains(&id) {
            return Err(ApiError::invalid(field, "this attachment is named twice"));
        }
        parsed.push(id);
    }
    Ok(parsed)
}

/// The id of an attachment named by a bare UUID, or by an http(s) URL whose `id` query
/// parameter is one (the upload's `file_url`). Only the id is kept: providers are given links of
/// this deployment, signed, whatever URL the client used. Since nothing else of the URL is used
/// (it is neither fetched nor stored), its query is split rather than the whole URL parsed, and
/// the id must be a whole UUID however it is written.
pub fn attachment_id(value: &str) -> Option<AttachmentId> {
    let value = value.trim();
    let canonical = AttachmentId::parse;
    if let Some(id) = canonical(value) {
        return Some(id);
    }
    let url = RequestUrl::split(value);
    if !(url.scheme.eq_ignore_ascii_case("https") || url.scheme.eq_ignore_ascii_case("http")) {
        return None;
    }
    form_urlencoded::parse(url.query?.as_bytes())
        .find(|(name, _)| name == "id")
        .and_then(|(_, id)| canonical(&id))
}

/// The customer's address on `channel` held on the customer record itself: WhatsApp number
/// (else phone) for WhatsApp, phone for SMS, email for email. Page-scoped ids live in
/// `customer_identities` instead (see `edge::messaging::send_queue`).
pub fn address_on_record(channel: Channel, customer: &Customer) -> Option<&str> {
    let value = match channel {
        Channel::Whatsapp => customer.whatsapp_number.as_deref().or(customer.phone.as_deref()),
        Channel::Sms => customer.phone.as_deref(),
        Channel::Email => customer.email.as_deref(),
        Channel::Facebook | Channel::Instagram => None,
    };
    value.filter(|value| !value.trim().is_empty())
}

/// Why a customer cannot be reached on `channel`, for the client.
pub fn no_address_message(channel: Channel) -> String {
    match channel {
        Channel::Whatsapp => {
            "the customer has no whatsapp_number or phone to send a WhatsApp message to".to_owned()
        }
        Channel::Sms => "the customer has no phone to send an SMS to".to_owned(),
        Channel::Email => "the customer has no email address".to_owned(),
        Channel::Facebook | Channel::Instagram => format!(
            "the customer has no {channel} id yet: {channel} lets a business message only people who have \
             messaged its page first, and this customer has not"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use crate::lookup::CustomerKey;

    fn customer(phone: Option<&str>, whatsapp: Option<&str>, email: Option<&str>) -> Customer {
        Customer {
            id: CustomerId::generate([7; 16]),
            name: "John Doe".into(),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            whatsapp_number: whatsapp.map(str::to_owned),
            first_name: None,
            last_name: None,
            address: None,
            notes: None,
            tags: Vec::new(),
            external_id: None,
            external_system: None,
            custom_fields: serde_json::Map::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn each_channel_reaches_the_customer_at_its_own_address() {
        let full = customer(
            Some("+353871234567"),
            Some("+353861111111"),
            Some("john@example.com"),
        );
        let phone_only = customer(Some("+353871234567"), None, None);
        let email_only = customer(None, None, Some("john@example.com"));
        let cases = [
            (
                Channel::Whatsapp,
                &full,
                Some("+353861111111"),
                "WhatsApp prefers the WhatsApp number",
            ),
            (
                Channel::Whatsapp,
                &phone_only,
                Some("+353871234567"),
                "else the phone",
            ),
            (Channel::Whatsapp, &email_only, None, "no number at all"),
            (
                Channel::Sms,
                &full,
                Some("+353871234567"),
                "SMS goes to the phone",
            ),
            (Channel::Sms, &email_only, None, "no phone"),
            (Channel::Email, &full, Some("john@example.com"), "email"),
            (Channel::Email, &phone_only, None, "no email"),
            (
                Channel::Facebook,
                &full,
                None,
                "page-scoped ids are not on the record",
            ),
            (Channel::Instagram, &full, None, "nor Instagram's"),
        ];
        for (channel, customer, expected, description) in cases {
            assert_eq!(address_on_record(channel, customer), expected, "{description}");
        }
    }

    #[test]
    fn a_missing_page_scoped_id_is_explained() {
        let message = no_address_message(Channel::Facebook);
        assert!(message.contains("messaged its page first"), "{message}");
    }

    const ID: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

    fn valid() -> SendIn {
        SendIn {
            customer_id: Some("CRM-12345".into()),
            channel: Some("whatsapp".into()),
            content: Some("Hi! Your order is ready for pickup.".into()),
            ..SendIn::default()
        }
    }

    fn field_of(input: SendIn) -> Option<String> {
        SendRequest::parse(input, None).err().and_then(|error| {
            assert_eq!(error.status(), 422, "{error}");
            error.body.field
        })
    }

    #[test]
    fn the_seeds_request_names_the_customer_by_the_crms_id() {
        let parsed = SendRequest::parse(valid(), None);
        assert_eq!(
            parsed.as_ref().map(|request| request.customer.keys.clone()),
            Ok(vec![CustomerKey::ExternalId("CRM-12345".into())])
        );
        assert_eq!(
            parsed.map(|request| request.message.channel),
            Ok(Channel::Whatsapp)
        );
    }

    #[test]
    fn a_uuid_is_tried_as_our_id_first_and_then_as_the_crms() {
        let input = SendIn {
            customer_id: Some(ID.to_uppercase()),
            ..valid()
        };
        let keys = SendRequest::parse(input, None).map(|request| request.customer.keys);
        let ours = CustomerId::parse(ID).map(CustomerKey::Id);
        assert_eq!(
            keys.map(|keys| keys.into_iter().map(Some).collect::<Vec<_>>()),
            Ok(vec![ours, Some(CustomerKey::ExternalId(ID.to_uppercase()))])
        );
    }

    #[test]
    fn email_and_phone_name_the_customer_normalised() {
        let by_email = SendIn {
            customer_id: None,
            email: Some(" John@Example.com ".into()),
            ..valid()
        };
        assert_eq!(
            SendRequest::parse(by_email, None).map(|r| r.customer.keys[0].as_str().to_owned()),
            Ok("john@example.com".to_owned())
        );
        let by_phone = SendIn {
            customer_id: None,
            phone: Some("087 123 4567".into()),
            ..valid()
        };
        let ireland = Country::parse("IE").ok();
        assert_eq!(
            SendRequest::parse(by_phone, ireland).map(|r| r.customer.keys[0].as_str().to_owned()),
            Ok("+353871234567".to_owned())
        );
    }

    #[test]
    fn numeric_crm_ids_are_read_as_text() {
        let input: Result<SendIn, _> =
            serde_json::from_str(r#"{"customer_id": 12345, "channel": "sms", "content": "hi"}"#);
        let keys = input
            .ok()
            .map(|input| SendRequest::parse(input, None).map(|r| r.customer.keys));
        assert_eq!(keys, Some(Ok(vec![CustomerKey::ExternalId("12345".into())])));
    }

    #[test]
    fn bad_requests_are_refused_with_the_field_at_fault() {
        let cases = [
            (
                SendIn {
                    customer_id: None,
                    ..valid()
                },
                "customer_id",
                "no customer named",
            ),
            (
                SendIn {
                    email: Some("john@example.com".into()),
                    ..valid()
                },
                "customer_id",
                "two ways of naming the customer",
            ),
            (
                SendIn {
                    customer_id: None,
                    email: Some("not-an-email".into()),
                    ..valid()
                },
                "email",
                "a malformed email",
            ),
            (
                SendIn {
                    customer_id: None,
                    phone: Some("12".into()),
                    ..valid()
                },
                "phone",
                "a malformed phone",
            ),
            (
                SendIn {
                    channel: None,
                    ..valid()
                },
                "channel",
                "no channel",
            ),
            (
                SendIn {
                    channel: Some("telegram".into()),
                    ..valid()
                },
                "channel",
                "an unknown channel",
            ),
            (
                SendIn {
                    content: None,
                    ..valid()
                },
                "content",
                "no content",
            ),
            (
                SendIn {
                    content: Some("   ".into()),
                    ..valid()
                },
                "content",
                "blank content",
            ),
            (
                SendIn {
                    content: Some("x".repeat(4097)),
                    ..valid()
                },
                "content",
                "over 4096 characters",
            ),
            (
                SendIn {
                    channel: Some("sms".into()),
                    content: Some("x".repeat(1601)),
                    ..valid()
                },
                "content",
                "over an SMS's 1600 characters",
            ),
            (
                SendIn {
                    channel: Some("email".into()),
                    subject: Some("a\nBcc: x@y.z".into()),
                    ..valid()
                },
                "subject",
                "a subject that would add a header",
            ),
            (
                SendIn {
                    attachments: Some(vec!["receipt.pdf".into()]),
                    ..valid()
                },
                "attachments[0]",
                "a filename is not an attachment",
            ),
            (
                SendIn {
                    attachments: Some(vec![
                        ID.into(),
                        format!("https://x.example/api/download-media?id={ID}"),
                    ]),
                    ..valid()
                },
                "attachments[1]",
                "the same attachment twice",
            ),
            (
                SendIn {
                    attachments: Some(vec![ID.into(); MAX_ATTACHMENTS + 1]),
                    ..valid()
                },
                "attachments",
                "too many attachments",
            ),
        ];
        for (input, field, description) in cases {
            assert_eq!(field_of(input), Some(field.to_owned()), "{description}");
        }
    }

    #[test]
    fn content_is_measured_in_characters_not_bytes() {
        let input = SendIn {
            content: Some("é".repeat(4096)),
            ..valid()
        };
        assert!(SendRequest::parse(input, None).is_ok());
    }

    #[test]
    fn a_file_may_go_without_text_but_a_message_needs_one_or_the_other() {
        for content in [None, Some(""), Some("  \n ")] {
            let input = SendIn {
                content: content.map(str::to_owned),
                attachments: Some(vec![ID.to_owned()]),
                ..valid()
            };
            let message = SendRequest::parse(input, None).map(|request| request.message);
            assert_eq!(
                message
                    .as_ref()
                    .map(|m| (m.content.as_str(), m.attachments.len())),
                Ok(("", 1)),
                "{content:?} with a file: the file alone"
            );
        }
        let nothing = SendIn {
            content: None,
            attachments: Some(vec![]),
            ..valid()
        };
        assert_eq!(
            field_of(nothing),
            Some("content".to_owned()),
            "no text and no file"
        );
    }

    #[test]
    fn a_subject_is_kept_for_email_only() {
        let email = SendIn {
            channel: Some("email".into()),
            subject: Some(" Your order ".into()),
            ..valid()
        };
        assert_eq!(
            SendRequest::parse(email, None).map(|r| r.message.subject),
            Ok(Some("Your order".to_owned()))
        );
        let sms = SendIn {
            channel: Some("sms".into()),
            subject: Some("Your order".into()),
            ..valid()
        };
        assert_eq!(SendRequest::parse(sms, None).map(|r| r.message.subject), Ok(None));
    }

    #[test]
    fn attachments_are_named_by_upload_url_or_by_id() {
        let cases = [
            (ID.to_owned(), Some(ID), "a bare id"),
            (
                format!("https://crm-edge.example/api/download-media?id={ID}"),
                Some(ID),
                "the upload's file_url",
            ),
            (
                format!("https://files.example/a/b?sig=abc&id={}", ID.to_uppercase()),
                Some(ID),
                "a URL with the id among other parameters",
            ),
            (format!("ftp://x.example/?id={ID}"), None, "not http"),
            (
                "https://x.example/receipt.pdf".to_owned(),
                None,
                "a URL without an id",
            ),
            (
                "https://x.example/?id=42".to_owned(),
                None,
                "an id that is not a UUID",
            ),
            (
                format!("HTTPS://files.example/?id={}#top", ID.replace('-', "%2D")),
                Some(ID),
                "a scheme in capitals, an id percent-encoded, a fragment after it",
            ),
            (
                format!("https://x.example/#?id={ID}"),
                None,
                "an id in the fragment, not the query",
            ),
            (
                format!("https://x.example/?id={ID}x"),
                None,
                "an id with more after it",
            ),
            (format!("/api/download-media?id={ID}"), None, "no scheme"),
        ];
        for (input, expected, description) in cases {
            assert_eq!(
                attachment_id(&input).as_ref().map(AttachmentId::as_str),
                expected,
                "{description}"
            );
        }
    }
}
