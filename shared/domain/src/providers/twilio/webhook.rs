//! Twilio's messaging webhooks (SMS and WhatsApp): incoming messages and status callbacks, both
//! posted as `application/x-www-form-urlencoded`.
//!
//! Twilio signs each request with the account's auth token: `X-Twilio-Signature` is the base64
//! HMAC-SHA1 of the full URL it called followed by every POST parameter, sorted by name, written
//! as name then value with nothing between. The URL is part of what is signed, so a request
//! replayed to another account's URL does not verify.

use crate::channel::{Channel, MessageStatus};
use crate::crypto::{constant_time_eq, hmac_sha1};
use crate::error::ApiError;
use crate::inbound::{InboundBatch, InboundMedia, InboundMessage, StatusUpdate};
use crate::providers::{bad_signature, display_name, e164};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
// The url crate's form decoder (pure Rust), as the worker crate re-exports it.
use url::form_urlencoded;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// The largest request we read; Twilio's own are a few kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// An MMS carries at most 10 media; more is not a Twilio request.
const MAX_MEDIA: usize = 10;
/// Twilio writes a WhatsApp address as `whatsapp:+<E.164>`.
const WHATSAPP_PREFIX: &str = "whatsapp:";

/// The POST parameters of a form body, decoded, in the order sent.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The text Twilio signs: the URL, then each parameter's name and value, sorted by name (and, for
/// a repeated name, by value), byte-wise as Twilio's own validators sort.
pub fn signed_text(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted
        .into_iter()
        .fold(url.to_owned(), |mut text, (name, value)| {
            text.push_str(name);
            text.push_str(value);
            text
        })
}

/// Checks `X-Twilio-Signature` for a request to `url` with `params`, before any parameter is read.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), ApiError> {
    let signature = header
        .and_then(|value| STANDARD.decode(value.trim()).ok())
        .ok_or_else(|| bad_signature("X-Twilio-Signature"))?;
    let expected = hmac_sha1(auth_token.as_bytes(), &[signed_text(url, params).as_bytes()]);
    if constant_time_eq(&expected, &signature) {
        Ok(())
    } else {
        Err(bad_signature("X-Twilio-Signature"))
    }
}

/// Parses a signed request for an account on `channel` (`sms` or `whatsapp`): an incoming
/// message, or the status callback of a message we sent.
pub fn parse(params: &[(String, String)], channel: Channel) -> Result<InboundBatch, ApiError> {
    let form = Form(params);
    let status = form.get("MessageStatus").or_else(|| form.get("SmsStatus"));
    match status {
        None | Some("received" | "receiving") => Ok(InboundBatch {
            messages: vec![incoming_message(&form, channel)?],
            ..InboundBatch::default()
        }),
        Some(status) => Ok(InboundBatch {
            statuses: status_update(&form, status)?.into_iter().collect(),
            ..InboundBatch::default()
        }),
    }
}

fn incoming_message(form: &Form, channel: Channel) -> Result<InboundMessage, ApiError> {
    let sid = form.required_sid()?;
    let from = form
        .get("From")
        .ok_or_else(|| ApiError::malformed("an incoming message names its sender in From").at("From"))?;
    let from = match (channel, from.strip_prefix(WHATSAPP_PREFIX)) {
        (Channel::Whatsapp, Some(number)) => e164(number, "From")?,
        (Channel::Sms, None) => e164(from, "From")?,
        (Channel::Whatsapp, None) => {
            return Err(ApiError::invalid(
                "From",
                "this WhatsApp account receives messages from whatsapp:+<number>",
            ));
        }
        (Channel::Sms, Some(_)) => {
            return Err(ApiError::invalid(
                "From",
                "this SMS account does not receive WhatsApp messages",
            ));
        }
        (other, _) => {
            return Err(ApiError::invalid(
                "From",
                format!("a {other} account does not receive Twilio messages"),
            ));
        }
    };
    let media_count = match form.get("NumMedia") {
        None | Some("") => 0,
        Some(count) => count
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|count| *count <= MAX_MEDIA)
            .ok_or_else(|| {
                ApiError::malformed(format!("NumMedia is a count from 0 to {MAX_MEDIA}")).at("NumMedia")
            })?,
    };
    let media = (0..media_count)
        .map(|index| {
            let url = form.get(&format!("MediaUrl{index}")).ok_or_else(|| {
                ApiError::malformed(format!(
                    "NumMedia is {media_count} but MediaUrl{index} is missing"
                ))
                .at(format!("MediaUrl{index}"))
            })?;
            Ok(InboundMedia::Url {
                url: url.to_owned(),
                mime_type: form.get(&format!("MediaContentType{index}")).map(str::to_owned),
                filename: None,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let body = form.get("Body").unwrap_or_default();
    let content = if body.is_empty() {
        form.location().unwrap_or_default()
    } else {
        body.to_owned()
    };
    Ok(InboundMessage {
        provider_message_id: sid.to_owned(),
        from,
        sender_name: display_name(form.get("ProfileName")),
        content,
        media,
    })
}

/// The news in a status callback; None for the steps before a message leaves Twilio.
fn status_update(form: &Form, status: &str) -> Result<Option<StatusUpdate>, ApiError> {
    let mapped = match status {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        // Twilio tells undeliverable (the carrier refused) from failed (Twilio could not send);
        // for the conversation both mean the customer did not get it.
        "undelivered" | "failed" | "canceled" => MessageStatus::Failed,
        _ => return Ok(None),
    };
    let sid = form.required_sid()?;
    let reason = (mapped == MessageStatus::Failed).then(|| {
        let code = form.get("ErrorCode").filter(|code| !code.is_empty());
        let message = display_name(form.get("ErrorMessage"));
        match (message, code) {
            (Some(message), Some(code)) => format!("{message} ({code})"),
            (Some(message), None) => message,
            (None, Some(code)) => format!("error {code}"),
            (None, None) => status.to_owned(),
        }
    });
    Ok(Some(StatusUpdate {
        provider_message_id: sid.to_owned(),
        status: mapped,
        reason,
    }))
}

struct Form<'a>(&'a [(String, String)]);

impl Form<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `MessageSid`, or the older `SmsSid` that Twilio still sends beside it.
    fn required_sid(&self) -> Result<&str, ApiError> {
        self.get("MessageSid")
            .or_else(|| self.get("SmsSid"))
            .filter(|sid| !sid.is_empty())
            .ok_or_else(|| {
                ApiError::malformed("a Twilio request names its message in MessageSid").at("MessageSid")
            })
    }

    /// A WhatsApp location pin, which has no Body.
    fn location(&self) -> Option<String> {
        let (latitude, longitude) = (self.get("Latitude")?, self.get("Longitude")?);
        let place = [self.get("Label"), self.get("Address")]
            .into_iter()
            .filter_map(display_name)
            .collect::<Vec<_>>()
            .join(", ");
        Some(if place.is_empty() {
            format!("Location: {latitude}, {longitude}")
        } else {
            format!("Location: {place} ({latitude}, {longitude})")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const TOKEN: &str = "twilio-auth-token";
    const URL: &str = "https://crm.example.com/webhooks/twilio/8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

    type Params = [(String, String)];

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// An SMS as Twilio posts it, parameters in the order Twilio happens to send them.
    fn sms() -> Vec<(String, String)> {
        params(&[
            ("To", "+15005550006"),
            ("MessageSid", "SM1111"),
            ("From", "+353871234567"),
            ("Body", "Hello & welcome"),
            ("AccountSid", "AC0000000000000000000000000000000"),
            ("NumMedia", "0"),
        ])
    }

    fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
        STANDARD.encode(hmac_sha1(
            token.as_bytes(),
            &[signed_text(url, params).as_bytes()],
        ))
    }

    #[test]
    fn the_signed_text_is_the_url_then_each_parameter_sorted_by_name() {
        assert_eq!(
            signed_text(URL, &sms()),
            format!(
                "{URL}AccountSidAC0000000000000000000000000000000BodyHello & welcome\
                 From+353871234567MessageSidSM1111NumMedia0To+15005550006"
            )
        );
    }

    #[test]
    fn a_signature_computed_by_hand_from_the_documented_algorithm_verifies() {
        // base64(HMAC-SHA1("twilio-auth-token", the signed text above)), computed outside this
        // code base (Python's hmac module) from the text Twilio's documentation describes.
        let expected = "e2kO4/SQePqXiGB3t3omGo4oyHc=";
        assert_eq!(sign(TOKEN, URL, &sms()), expected);
        assert_eq!(verify_signature(TOKEN, URL, &sms(), Some(expected)), Ok(()));
    }

    #[test]
    fn bad_or_missing_signatures_are_refused_as_unauthorized() {
        let good = sign(TOKEN, URL, &sms());
        let mut tampered = sms();
        tampered[3].1 = "Hello & welcome!".to_owned();
        let other_url = sign(TOKEN, "https://crm.example.com/webhooks/twilio/other", &sms());
        let cases: [(Option<&str>, &Params, &str); 6] = [
            (None, &sms(), "no header"),
            (Some(""), &sms(), "an empty header"),
            (Some("not base64!"), &sms(), "not base64"),
            (Some(&good), &tampered, "a parameter changed after signing"),
            (Some(&other_url), &sms(), "signed for another account's URL"),
            (
                Some(&sign("another-token", URL, &sms())),
                &sms(),
                "signed with another token",
            ),
        ];
        for (header, form, description) in cases {
            let error = verify_signature(TOKEN, URL, form, header).err();
            assert_eq!(
                error.map(|e| e.code()),
                Some(ErrorCode::Unauthorized),
                "{description}"
            );
        }
    }

    #[test]
    fn form_bodies_are_decoded_before_they_are_signed() {
        let decoded = form_params(b"Body=Hello+%26+welcome&From=%2B353871234567&Empty=");
        assert_eq!(
            decoded,
            params(&[
                ("Body", "Hello & welcome"),
                ("From", "+353871234567"),
                ("Empty", "")
            ])
        );
    }

    #[test]
    fn an_sms_becomes_a_message_from_the_sender_in_e164() {
        let batch = parse(&sms(), Channel::Sms);
        assert_eq!(
            batch,
            Ok(InboundBatch {
                messages: vec![InboundMessage {
                    provider_message_id: "SM1111".to_owned(),
                    from: "+353871234567".to_owned(),
                    sender_name: None,
                    content: "Hello & welcome".to_owned(),
                    media: vec![],
                }],
                statuses: vec![],
                comments: Vec::new(),
            })
        );
    }

    #[test]
    fn a_whatsapp_message_loses_its_prefix_and_keeps_its_profile_name_and_media() {
        let form = params(&[
            ("MessageSid", "SM2222"),
            ("SmsStatus", "received"),
            ("From", "whatsapp:+353871234567"),
            ("To", "whatsapp:+15005550006"),
            ("ProfileName", "Kerry"),
            ("Body", ""),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/media/ME1"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/media/ME2"),
        ]);
        let batch = parse(&form, Channel::Whatsapp).unwrap_or_default();
        assert_eq!(
            batch.messages,
            vec![InboundMessage {
                provider_message_id: "SM2222".to_owned(),
                from: "+353871234567".to_owned(),
                sender_name: Some("Kerry".to_owned()),
                content: String::new(),
                media: vec![
                    InboundMedia::Url {
                        url: "https://api.twilio.com/media/ME1".to_owned(),
                        mime_type: Some("image/jpeg".to_owned()),
                        filename: None,
                    },
                    InboundMedia::Url {
                        url: "https://api.twilio.com/media/ME2".to_owned(),
                        mime_type: None,
                        filename: None,
                    },
                ],
            }]
        );
    }

    #[test]
    fn a_whatsapp_location_is_described_in_words() {
        let form = params(&[
            ("MessageSid", "SM3"),
            ("From", "whatsapp:+353871234567"),
            ("Latitude", "53.35"),
            ("Longitude", "-6.26"),
            ("Label", "Office"),
        ]);
        let batch = parse(&form, Channel::Whatsapp).unwrap_or_default();
        assert_eq!(batch.messages[0].content, "Location: Office (53.35, -6.26)");
    }

    #[test]
    fn status_callbacks_become_status_updates_and_the_steps_before_sending_are_ignored() {
        let cases = [
            ("queued", None, "queued"),
            ("accepted", None, "accepted"),
            ("sending", None, "sending"),
            ("sent", Some((MessageStatus::Sent, None)), "sent"),
            ("delivered", Some((MessageStatus::Delivered, None)), "delivered"),
            ("read", Some((MessageStatus::Read, None)), "read"),
            (
                "undelivered",
                Some((MessageStatus::Failed, Some("Unknown destination handset (30005)"))),
                "undelivered",
            ),
            (
                "failed",
                Some((MessageStatus::Failed, Some("Unknown destination handset (30005)"))),
                "failed",
            ),
        ];
        for (status, expected, description) in cases {
            let form = params(&[
                ("MessageSid", "SM9"),
                ("MessageStatus", status),
                ("SmsStatus", status),
                ("ErrorCode", "30005"),
                ("ErrorMessage", "Unknown destination handset"),
                ("To", "+353871234567"),
            ]);
            let batch = parse(&form, Channel::Sms).unwrap_or_default();
            assert!(batch.messages.is_empty(), "{description}");
            let seen = batch
                .statuses
                .first()
                .map(|update| (update.status, update.reason.as_deref()));
            assert_eq!(seen, expected, "{description}");
        }
    }

    #[test]
    fn a_failure_without_a_message_is_explained_by_its_code() {
        let form = params(&[
            ("MessageSid", "SM9"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "30007"),
        ]);
        let batch = parse(&form, Channel::Sms).unwrap_or_default();
        assert_eq!(batch.statuses[0].reason.as_deref(), Some("error 30007"));
    }

    #[test]
    fn requests_that_are_not_twilio_messages_are_refused() {
        let cases = [
            (
                vec![("From", "+353871234567"), ("Body", "x")],
                Channel::Sms,
                ErrorCode::MalformedRequest,
                "no MessageSid",
            ),
            (
                vec![("MessageSid", "SM1"), ("Body", "x")],
                Channel::Sms,
                ErrorCode::MalformedRequest,
                "no From",
            ),
            (
                vec![("MessageSid", "SM1"), ("From", "whatsapp:+353871234567")],
                Channel::Sms,
                ErrorCode::ValidationFailed,
                "WhatsApp at an SMS account",
            ),
            (
                vec![("MessageSid", "SM1"), ("From", "+353871234567")],
                Channel::Whatsapp,
                ErrorCode::ValidationFailed,
                "SMS at a WhatsApp account",
            ),
            (
                vec![("MessageSid", "SM1"), ("From", "not a number")],
                Channel::Sms,
                ErrorCode::ValidationFailed,
                "a sender that is no phone number",
            ),
            (
                vec![
                    ("MessageSid", "SM1"),
                    ("From", "+353871234567"),
                    ("NumMedia", "two"),
                ],
                Channel::Sms,
                ErrorCode::MalformedRequest,
                "a media count that is no number",
            ),
            (
                vec![
                    ("MessageSid", "SM1"),
                    ("From", "+353871234567"),
                    ("NumMedia", "1"),
                ],
                Channel::Sms,
                ErrorCode::MalformedRequest,
                "a media count with no media URL",
            ),
            (
                vec![("MessageStatus", "delivered")],
                Channel::Sms,
                ErrorCode::MalformedRequest,
                "a status callback with no MessageSid",
            ),
        ];
        for (pairs, channel, code, description) in cases {
            let error = parse(&params(&pairs), channel).err();
            assert_eq!(error.map(|e| e.code()), Some(code), "{description}");
        }
    }
}
