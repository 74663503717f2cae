//! Twilio's Programmable Messaging API: `POST {api}/2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with HTTP Basic authentication (account SID and auth token) and a form body. SMS and WhatsApp
//! share it; WhatsApp addresses carry a `whatsapp:` prefix.

use crate::channel::Channel;
use crate::providers::api::{
    Outcome, Outgoing, ProviderRequest, StatusClass, basic_auth, excerpt, failure, form_encode, status_class,
};
use serde::Deserialize;

pub fn request(
    base_url: &str,
    account_sid: &str,
    auth_token: &str,
    from: &str,
    outgoing: &Outgoing<'_>,
) -> ProviderRequest {
    let address = |number: &str| match outgoing.channel {
        Channel::Whatsapp => format!("whatsapp:{number}"),
        _ => number.to_owned(),
    };
    let (to, from) = (address(outgoing.to), address(from));
    let mut fields = vec![("To", to.as_str()), ("From", from.as_str())];
    // Twilio takes a message of media alone (Body or MediaUrl, at least one).
    if !outgoing.text.is_empty() {
        fields.push(("Body", outgoing.text));
    }
    fields.extend(
        outgoing
            .media
            .iter()
            .map(|media| ("MediaUrl", media.url.as_str())),
    );
    ProviderRequest {
        url: format!("{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"),
        headers: vec![
            ("authorization", basic_auth(account_sid, auth_token)),
            ("content-type", "application/x-www-form-urlencoded".to_owned()),
        ],
        body: form_encode(&fields),
    }
}

#[derive(Deserialize)]
struct Accepted {
    sid: Option<String>,
}

/// `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

pub fn classify(status: u16, retry_after: Option<u32>, body: &[u8]) -> Outcome {
    let class = status_class(status);
    if let StatusClass::Success = class {
        return Outcome::Sent {
            provider_message_id: serde_json::from_slice::<Accepted>(body)
                .ok()
                .and_then(|accepted| accepted.sid),
        };
    }
    let reason = match serde_json::from_slice::<TwilioError>(body) {
        Ok(TwilioError {
            code,
            message: Some(message),
        }) => match code {
            Some(code) => format!("twilio error {code} (HTTP {status}): {message}"),
            None => format!("twilio (HTTP {status}): {message}"),
        },
        _ => format!("twilio answered HTTP {status}: {}", excerpt(body)),
    };
    failure(matches!(class, StatusClass::Transient), &reason, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::api::{Media, basic_auth};
    use crate::providers::test_support::{AnswerCase, fields, pairs};

    #[test]
    fn an_sms_is_the_messages_resource_form_with_basic_auth() {
        let sent = request(
            "https://api.twilio.com",
            "AC0123456789abcdef0123456789abcdef",
            "auth-token",
            "+353861111111",
            &Outgoing {
                channel: Channel::Sms,
                to: "+353871234567",
                text: "Hi! Your order is ready & waiting.",
                subject: None,
                media: &[],
            },
        );
        assert_eq!(
            sent.url,
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert_eq!(
            sent.header("authorization"),
            Some(basic_auth("AC0123456789abcdef0123456789abcdef", "auth-token").as_str())
        );
        assert_eq!(
            sent.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            fields(&sent),
            pairs(&[
                ("To", "+353871234567"),
                ("From", "+353861111111"),
                ("Body", "Hi! Your order is ready & waiting."),
            ])
        );
    }

    #[test]
    fn whatsapp_through_twilio_prefixes_both_numbers_and_sends_media_by_url_with_or_without_a_body() {
        let files = [
            Media {
                url: "https://crm.example.com/api/download-media?id=1".into(),
                filename: "a.pdf".into(),
                mime_type: "application/pdf".into(),
                bytes: None,
            },
            Media {
                url: "https://crm.example.com/api/download-media?id=2".into(),
                filename: "b.png".into(),
                mime_type: "image/png".into(),
                bytes: None,
            },
        ];
        let sent = request(
            "https://api.twilio.com",
            "AC1",
            "t",
            "+353861111111",
            &Outgoing {
                channel: Channel::Whatsapp,
                to: "+353871234567",
                text: "receipt",
                subject: None,
                media: &files,
            },
        );
        assert_eq!(
            fields(&sent),
            pairs(&[
                ("To", "whatsapp:+353871234567"),
                ("From", "whatsapp:+353861111111"),
                ("Body", "receipt"),
                ("MediaUrl", "https://crm.example.com/api/download-media?id=1"),
                ("MediaUrl", "https://crm.example.com/api/download-media?id=2"),
            ])
        );
        let alone = request(
            "https://api.twilio.com",
            "AC1",
            "t",
            "+353861111111",
            &Outgoing {
                channel: Channel::Sms,
                to: "+353871234567",
                text: "",
                subject: None,
                media: &files[..1],
            },
        );
        assert_eq!(
            fields(&alone),
            pairs(&[
                ("To", "+353871234567"),
                ("From", "+353861111111"),
                ("MediaUrl", "https://crm.example.com/api/download-media?id=1"),
            ]),
            "a file alone has no Body"
        );
    }

    #[test]
    fn answers_are_read_as_twilio_documents_them() {
        let cases: [AnswerCase; 6] = [
            (
                201,
                None,
                br#"{"sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued"}"#,
                Outcome::Sent { provider_message_id: Some("SM1f0e8ae6ade43cb3c0ce4525424e404f".into()) },
                "created",
            ),
            (
                400,
                None,
                br#"{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
                Outcome::Rejected {
                    reason: "twilio error 21211 (HTTP 400): The 'To' number +1555 is not a valid phone number.".into(),
                },
                "invalid recipient",
            ),
            (
                401,
                None,
                br#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#,
                Outcome::Rejected { reason: "twilio error 20003 (HTTP 401): Authenticate".into() },
                "bad credentials",
            ),
            (
                429,
                Some(1),
                br#"{"code":20429,"message":"Too Many Requests","status":429}"#,
                Outcome::Transient { reason: "twilio error 20429 (HTTP 429): Too Many Requests".into(), retry_after: Some(1) },
                "rate limited",
            ),
            (
                500,
                None,
                br#"{"code":20500,"message":"Internal Server Error","status":500}"#,
                Outcome::Transient { reason: "twilio error 20500 (HTTP 500): Internal Server Error".into(), retry_after: None },
                "Twilio failed",
            ),
            (
                503,
                None,
                b"",
                Outcome::Transient { reason: "twilio answered HTTP 503: no body".into(), retry_after: None },
                "no body",
            ),
        ];
        for (status, retry_after, answer, expected, description) in cases {
            assert_eq!(classify(status, retry_after, answer), expected, "{description}");
        }
    }
}
