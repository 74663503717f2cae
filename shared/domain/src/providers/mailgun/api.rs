//! Mailgun's Messages API: `POST {api}/v3/{domain}/messages` with HTTP Basic authentication
//! (user `api`, the API key as password) and a form body: `from`, `to`, `subject`, `text`, and
//! `attachment` files, which only a multipart body can carry.

use crate::providers::api::{
    Outcome, Outgoing, ProviderRequest, StatusClass, basic_auth, default_subject, excerpt, failure,
    form_encode, status_class,
};
use serde::Deserialize;

pub fn request(
    base_url: &str,
    domain: &str,
    api_key: &str,
    from: &str,
    outgoing: &Outgoing<'_>,
    boundary: &str,
) -> ProviderRequest {
    // Files we have no bytes for are linked from the text instead. An email of files alone
    // names them all: Mailgun takes no message without a text (or HTML) part.
    let alone = outgoing.text.is_empty();
    let mut text = outgoing.text.to_owned();
    let listed: Vec<_> = outgoing
        .media
        .iter()
        .filter(|media| alone || media.bytes.is_none())
        .collect();
    if !listed.is_empty() {
        text.push_str(if alone { "Attachments:" } else { "\n\nAttachments:" });
        for media in listed {
            match media.bytes {
                Some(_) => text.push_str(&format!("\n{} (attached)", media.filename)),
                None => text.push_str(&format!("\n{}: {}", media.filename, media.url)),
            }
        }
    }
    let subject = match (outgoing.subject, outgoing.media.first()) {
        (Some(subject), _) => subject.to_owned(),
        (None, Some(first)) if alone => default_subject(&first.filename),
        (None, _) => default_subject(outgoing.text),
    };
    let fields = [
        ("from", from),
        ("to", outgoing.to),
        ("subject", subject.as_str()),
        ("text", text.as_str()),
    ];
    let files: Vec<_> = outgoing
        .media
        .iter()
        .filter_map(|media| {
            Some((
                media.filename.as_str(),
                media.mime_type.as_str(),
                media.bytes.as_deref()?,
            ))
        })
        .collect();
    let (content_type, body) = if files.is_empty() {
        (
            "application/x-www-form-urlencoded".to_owned(),
            form_encode(&fields),
        )
    } else {
        (
            format!("multipart/form-data; boundary={boundary}"),
            multipart(&fields, &files, boundary),
        )
    };
    ProviderRequest {
        url: format!("{base_url}/v3/{domain}/messages"),
        headers: vec![
            ("authorization", basic_auth("api", api_key)),
            ("content-type", content_type),
        ],
        body,
    }
}

/// A `multipart/form-data` body (RFC 7578): the fields, then each file as an `attachment` part.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])], boundary: &str) -> Vec<u8> {
    // Header values are quoted strings: a quote or line break in a name would end them early.
    let quoted = |text: &str| text.replace(['"', '\r', '\n'], "");
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    for (filename, mime_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{}\"\r\n\
                 Content-Type: {}\r\n\r\n",
                quoted(filename),
                quoted(mime_type)
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// `{"id": "<20251104090000.1.ABC@mg.example.com>", "message": "Queued. Thank you."}`.
#[derive(Deserialize)]
struct Accepted {
    id: Option<String>,
}

/// `{"message": "..."}`; some refusals (401) are plain text.
#[derive(Deserialize)]
struct MailgunError {
    message: Option<String>,
}

pub fn classify(status: u16, retry_after: Option<u32>, body: &[u8]) -> Outcome {
    let class = status_class(status);
    if let StatusClass::Success = class {
        // Mailgun's events name a message by its Message-Id without the angle brackets.
        let id = serde_json::from_slice::<Accepted>(body)
            .ok()
            .and_then(|accepted| accepted.id)
            .map(|id| id.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
            .filter(|id| !id.is_empty());
        return Outcome::Sent {
            provider_message_id: id,
        };
    }
    let message = serde_json::from_slice::<MailgunError>(body)
        .ok()
        .and_then(|error| error.message)
        .unwrap_or_else(|| excerpt(body));
    let reason = format!("mailgun (HTTP {status}): {message}");
    failure(matches!(class, StatusClass::Transient), &reason, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::providers::api::{Media, basic_auth};
    use crate::providers::test_support::{AnswerCase, fields, pairs};

    fn email<'a>(subject: Option<&'a str>, media: &'a [Media]) -> Outgoing<'a> {
        Outgoing {
            channel: Channel::Email,
            to: "john@example.com",
            text: "Hi John,\nyour order is ready.",
            subject,
            media,
        }
    }

    /// A file we hold the bytes of, and one we only link.
    fn receipt_and_movie() -> [Media; 2] {
        [
            Media {
                url: "https://crm.example.com/api/download-media?id=1".into(),
                filename: "receipt.pdf".into(),
                mime_type: "application/pdf".into(),
                bytes: Some(b"%PDF-1.7".to_vec()),
            },
            Media {
                url: "https://crm.example.com/api/download-media?id=2".into(),
                filename: "big.mov".into(),
                mime_type: "video/quicktime".into(),
                bytes: None,
            },
        ]
    }

    #[test]
    fn an_email_is_the_messages_form_with_the_api_key_as_password() {
        let sent = request(
            "https://api.mailgun.net",
            "mg.example.com",
            "key-123",
            "support@mg.example.com",
            &email(Some("Your order"), &[]),
            "b",
        );
        assert_eq!(sent.url, "https://api.mailgun.net/v3/mg.example.com/messages");
        assert_eq!(
            sent.header("authorization"),
            Some(basic_auth("api", "key-123").as_str())
        );
        assert_eq!(
            sent.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            fields(&sent),
            pairs(&[
                ("from", "support@mg.example.com"),
                ("to", "john@example.com"),
                ("subject", "Your order"),
                ("text", "Hi John,\nyour order is ready."),
            ])
        );
    }

    #[test]
    fn without_a_subject_the_first_line_is_the_subject() {
        let sent = request("https://m", "d", "k", "a@d", &email(None, &[]), "b");
        assert!(fields(&sent).contains(&("subject".to_owned(), "Hi John,".to_owned())));
    }

    #[test]
    fn files_with_bytes_are_attached_and_the_others_linked() {
        let files = receipt_and_movie();
        let sent = request("https://m", "d", "k", "a@d", &email(Some("S"), &files), "XyZ");
        assert_eq!(
            sent.header("content-type"),
            Some("multipart/form-data; boundary=XyZ")
        );
        let body = String::from_utf8_lossy(&sent.body);
        assert!(body.starts_with("--XyZ\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\na@d\r\n"));
        assert!(body.contains(
            "--XyZ\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"receipt.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n"
        ));
        assert!(body.contains("big.mov: https://crm.example.com/api/download-media?id=2"));
        assert!(body.ends_with("--XyZ--\r\n"));
    }

    #[test]
    fn an_email_of_files_alone_names_them_in_its_text_and_takes_the_first_as_subject() {
        let files = receipt_and_movie();
        let alone = Outgoing {
            text: "",
            ..email(None, &files)
        };
        let sent = request("https://m", "d", "k", "a@d", &alone, "XyZ");
        let body = String::from_utf8_lossy(&sent.body);
        assert!(
            body.contains(
                "name=\"subject\"\r\n\r\nreceipt.pdf\r\n--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n\
                 Attachments:\nreceipt.pdf (attached)\nbig.mov: https://crm.example.com/api/download-media?id=2\r\n"
            ),
            "{body}"
        );
    }

    #[test]
    fn answers_are_read_as_mailgun_documents_them() {
        let cases: [AnswerCase; 5] = [
            (
                200,
                None,
                br#"{"id":"<20251104090000.1.ABC@mg.example.com>","message":"Queued. Thank you."}"#,
                Outcome::Sent { provider_message_id: Some("20251104090000.1.ABC@mg.example.com".into()) },
                "queued",
            ),
            (
                400,
                None,
                br#"{"message":"'to' parameter is not a valid address. please check documentation"}"#,
                Outcome::Rejected {
                    reason: "mailgun (HTTP 400): 'to' parameter is not a valid address. please check documentation"
                        .into(),
                },
                "invalid recipient",
            ),
            (
                401,
                None,
                b"Forbidden",
                Outcome::Rejected { reason: "mailgun (HTTP 401): Forbidden".into() },
                "bad key, answered in plain text",
            ),
            (
                429,
                Some(1),
                br#"{"message":"Too many requests"}"#,
                Outcome::Transient { reason: "mailgun (HTTP 429): Too many requests".into(), retry_after: Some(1) },
                "rate limited",
            ),
            (
                500,
                None,
                br#"{"message":"Internal error"}"#,
                Outcome::Transient { reason: "mailgun (HTTP 500): Internal error".into(), retry_after: None },
                "Mailgun failed",
            ),
        ];
        for (status, retry_after, answer, expected, description) in cases {
            assert_eq!(classify(status, retry_after, answer), expected, "{description}");
        }
    }
}
