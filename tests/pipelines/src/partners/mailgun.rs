//! Mailgun: an inbound route's forward action as Mailgun posts it (the mail's fields, its files as
//! `attachment-1..N`, and the signature fields `timestamp`, `token` and `signature`, the hex
//! HMAC-SHA256 of timestamp and token under the account's webhook signing key), and the Messages
//! API (`POST /v3/{domain}/messages`, HTTP Basic with user `api` and the API key, a form body) as
//! a partner script.

use super::form::{Multipart, read_multipart, read_url_encoded};
use super::send_api::{Provider, SendApi};
use super::{basic_credentials, hmac_sha256, json_reply, unique_hex};
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Mailgun's API host.
pub const API_HOST: &str = "api.mailgun.net";

/// `signature` of a POST signed at `timestamp` (seconds) with `token`.
pub fn signature(signing_key: &str, timestamp: &str, token: &str) -> String {
    hex::encode(hmac_sha256(
        signing_key.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    ))
}

/// A new token (50 hex digits, as Mailgun's).
pub fn token() -> String {
    unique_hex(50)
}

/// The signature fields of a POST signed at `timestamp` (seconds) with `signing_key`, with a new
/// token: `timestamp`, `token`, `signature`.
pub fn signed(signing_key: &str, timestamp: i64) -> Vec<(String, String)> {
    let token = token();
    let timestamp = timestamp.to_string();
    let signature = signature(signing_key, &timestamp, &token);
    vec![
        ("timestamp".to_owned(), timestamp),
        ("token".to_owned(), token),
        ("signature".to_owned(), signature),
    ]
}

/// The value of the field `name` among `fields`.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

/// A forwarded mail's fields: to `recipient`, from `sender` (its `From` header `from`), with the
/// subject and the plain body (quoting an earlier mail, which `stripped-text` leaves out).
pub struct Mail<'a> {
    pub recipient: &'a str,
    pub sender: &'a str,
    pub from: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
}

impl Mail<'_> {
    pub fn fields(&self) -> Vec<(String, String)> {
        [
            ("recipient", self.recipient.to_owned()),
            ("sender", self.sender.to_owned()),
            ("from", self.from.to_owned()),
            ("subject", self.subject.to_owned()),
            ("body-plain", format!("{}\n\n> quoted earlier mail\n", self.body)),
            ("stripped-text", self.body.to_owned()),
            ("Message-Id", self.message_id.to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

/// A file of a mail: its name, type and bytes.
pub type File<'a> = (&'a str, &'a str, &'a [u8]);

/// The multipart body Mailgun's forward action posts: `fields`, then `attachment-count` and the
/// files as `attachment-1..N`.
pub fn forwarded(fields: &[(String, String)], files: &[File<'_>]) -> Vec<u8> {
    let mut form = Multipart::new().fields(fields);
    if !files.is_empty() {
        form = form.field("attachment-count", &files.len().to_string());
    }
    for (number, (name, kind, bytes)) in files.iter().enumerate() {
        form = form.file(&format!("attachment-{}", number + 1), name, kind, bytes);
    }
    form.finish()
}

/// A `Message-Id` no other call returns.
pub fn message_id() -> String {
    format!("<{}@mail.example.com>", unique_hex(20))
}

/// The Messages API for the sending domains it knows: answers each send made with the domain's
/// API key with `{id, message}`, or with the replies a test scripted for the next sends; a send
/// without the right credentials gets Mailgun's plain `Forbidden` (401).
pub type Mailgun = SendApi<MessagesApi>;

/// What the Messages API answers by itself, for the sending domains it knows.
#[derive(Default)]
pub struct MessagesApi {
    /// Sending domain → its API key.
    domains: RefCell<BTreeMap<String, String>>,
}

impl MessagesApi {
    /// The sending domain a call is made for, from its path.
    fn domain(call: &Outbound) -> Option<&str> {
        call.path()
            .strip_prefix("/v3/")
            .and_then(|rest| rest.strip_suffix("/messages"))
    }
}

impl Provider for MessagesApi {
    fn refusal(&self, call: &Outbound) -> Option<Reply> {
        let Some(domain) = Self::domain(call).filter(|_| call.method == "POST") else {
            return Some(mailgun_error(404, "Not Found"));
        };
        let authorized = self
            .domains
            .borrow()
            .get(domain)
            .is_some_and(|key| basic_credentials(call) == Some(("api".to_owned(), key.clone())));
        (!authorized).then(|| Reply::text(401, "Forbidden"))
    }

    fn accepted(&self, call: &Outbound, _nth: u64) -> Reply {
        let domain = Self::domain(call).unwrap_or_default();
        json_reply(
            200,
            &json!({ "id": format!("<{}@{domain}>", unique_hex(24)), "message": "Queued. Thank you." }),
        )
    }
}

/// A send as the API read it: its text fields and its files (name, type, bytes).
#[derive(Debug, Clone)]
pub struct Sent {
    pub fields: Vec<(String, String)>,
    pub files: Vec<(String, Option<String>, Vec<u8>)>,
}

impl Mailgun {
    /// The API at `https://api.mailgun.net`, knowing the sending domain `domain`.
    pub fn install(stack: &Stack, domain: &str, api_key: &str) -> Self {
        let mailgun = Self::serve(stack, API_HOST, MessagesApi::default());
        mailgun
            .provider()
            .domains
            .borrow_mut()
            .insert(domain.to_owned(), api_key.to_owned());
        mailgun
    }

    /// Knows one more sending domain, `domain` with `api_key`.
    pub fn knows(&self, domain: &str, api_key: &str) {
        self.provider()
            .domains
            .borrow_mut()
            .insert(domain.to_owned(), api_key.to_owned());
    }

    /// A send's form, URL-encoded or multipart.
    pub fn read(call: &Outbound) -> Sent {
        let content_type = call.header("content-type").unwrap_or_default();
        if content_type.starts_with("multipart/form-data") {
            let parts = read_multipart(content_type, &call.body);
            let (files, fields): (Vec<_>, Vec<_>) =
                parts.into_iter().partition(|part| part.filename.is_some());
            Sent {
                fields: fields
                    .into_iter()
                    .map(|part| (part.name, String::from_utf8_lossy(&part.bytes).into_owned()))
                    .collect(),
                files: files
                    .into_iter()
                    .map(|part| (part.filename.unwrap_or_default(), part.content_type, part.bytes))
                    .collect(),
            }
        } else {
            Sent {
                fields: read_url_encoded(&call.body),
                files: Vec::new(),
            }
        }
    }
}

/// An error as the Messages API answers one (`{message}`).
pub fn mailgun_error(status: u16, message: &str) -> Reply {
    json_reply(status, &json!({ "message": message }))
}

/// Mailgun's answer to a sender over its rate: 429 with `Retry-After: 1`.
pub fn rate_limited() -> Reply {
    mailgun_error(429, "Too many requests").header("retry-after", "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test;
    use edge::runtime::Method;
    use std::time::Duration;

    /// The script against the product: an email is sent to the Messages API as Mailgun documents
    /// it, and the script's answer is one the dispatcher takes for a send.
    #[test]
    fn an_email_sent_through_the_api_reaches_the_messages_api_with_the_domains_key() {
        test(|app| async move {
            let business = app.business("Acme").await;
            let mailgun = Mailgun::install(&app.stack, "mail.acme.example", "key-native");
            app.admin(
                Method::Post,
                &format!("/admin/businesses/{}/channel-accounts", business.id),
                Some(json!({
                    "channel": "email", "provider": "mailgun", "address": "support@mail.acme.example",
                    "settings": { "domain": "mail.acme.example" }, "secrets": { "signing_key": "signing", "api_key": "key-native" }
                })),
            )
            .await
            .expect(201);
            app.api(
                &business.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [{ "external_id": "CRM-1", "name": "John", "email": "john@example.com" }] })),
            )
            .await
            .expect(200);
            app.api(
                &business.key,
                Method::Post,
                "/api-send-message",
                Some(json!({ "customer_id": "CRM-1", "channel": "email", "subject": "Your order", "content": "Hi John,\nyour order is ready." })),
            )
            .await
            .expect(202);
            app.settle_within(Duration::from_secs(60)).await;

            let sends = mailgun.sends();
            assert_eq!(sends.len(), 1, "{sends:?}");
            assert_eq!(sends[0].path(), "/v3/mail.acme.example/messages");
            let sent = Mailgun::read(&sends[0]);
            for (name, value) in [
                ("from", "support@mail.acme.example"),
                ("to", "john@example.com"),
                ("subject", "Your order"),
                ("text", "Hi John,\nyour order is ready."),
            ] {
                assert_eq!(field(&sent.fields, name), value, "{name}: {sent:?}");
            }
            let page = app
                .api(
                    &business.key,
                    Method::Get,
                    "/api-messages-since?since=1970-01-01T00:00:00Z",
                    None,
                )
                .await
                .expect(200)
                .json();
            assert_eq!(page["messages"][0]["status"], "sent", "{page}");
        });
    }
}
