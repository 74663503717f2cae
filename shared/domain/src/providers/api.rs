//! What every provider's `api` module shares: the account a message is sent from ([`Sender`]),
//! the message ([`Outgoing`]), the call that sends it ([`ProviderRequest`]), and what the
//! provider's answer means ([`Outcome`]).

use super::Provider;
use crate::channel::Channel;
use base64::Engine;
use std::fmt;

/// Where each provider's API is, unless the account's `api_base_url` setting says otherwise
/// (tests point it at local servers; Mailgun's EU region is `https://api.eu.mailgun.net`).
pub const META_API_BASE: &str = "https://graph.facebook.com/v21.0";
pub const TWILIO_API_BASE: &str = "https://api.twilio.com";
pub const MAILGUN_API_BASE: &str = "https://api.mailgun.net";

/// A reason stored on a message is cut to this many characters.
const MAX_REASON_CHARS: usize = 500;

/// The account a message is sent from: its provider's API and credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum Sender {
    /// WhatsApp Cloud API, Messenger and Instagram: `sender_id` is the WhatsApp phone number
    /// id, the page id or the Instagram account id.
    Meta {
        base_url: String,
        sender_id: String,
        access_token: String,
    },
    /// `from` is the account's number in E.164.
    Twilio {
        base_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
    /// `from` is the account's email address; `domain` the Mailgun sending domain.
    Mailgun {
        base_url: String,
        domain: String,
        api_key: String,
        from: String,
    },
}

/// Credentials stay out of logs and debug output.
impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Meta {
                base_url, sender_id, ..
            } => write!(f, "Meta {{ base_url: {base_url}, sender_id: {sender_id} }}"),
            Self::Twilio {
                base_url,
                account_sid,
                from,
                ..
            } => write!(
                f,
                "Twilio {{ base_url: {base_url}, account_sid: {account_sid}, from: {from} }}"
            ),
            Self::Mailgun {
                base_url,
                domain,
                from,
                ..
            } => write!(
                f,
                "Mailgun {{ base_url: {base_url}, domain: {domain}, from: {from} }}"
            ),
        }
    }
}

/// What an account lacks to be sent from: a setting or a secret its provider needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lacking {
    pub provider: Provider,
    /// `setting` or `secret`.
    pub kind: &'static str,
    pub name: &'static str,
}

impl fmt::Display for Lacking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} account has no {} {}",
            self.provider.as_str(),
            self.kind,
            self.name
        )
    }
}

impl Sender {
    /// The sender of an account of `provider` whose address is `address`, from its settings and
    /// secrets (looked up by name). Err names what the account lacks.
    pub fn configure(
        provider: Provider,
        address: &str,
        setting: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Lacking> {
        let missing = |kind: &'static str, name: &'static str| Lacking { provider, kind, name };
        let base_url = |default: &str| {
            setting("api_base_url")
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Ok(match provider {
            Provider::Meta => Self::Meta {
                base_url: base_url(META_API_BASE),
                sender_id: address.to_owned(),
                access_token: secret("access_token").ok_or_else(|| missing("secret", "access_token"))?,
            },
            Provider::Twilio => Self::Twilio {
                base_url: base_url(TWILIO_API_BASE),
                account_sid: setting("account_sid").ok_or_else(|| missing("setting", "account_sid"))?,
                auth_token: secret("auth_token").ok_or_else(|| missing("secret", "auth_token"))?,
                from: address.to_owned(),
            },
            Provider::Mailgun => Self::Mailgun {
                base_url: base_url(MAILGUN_API_BASE),
                domain: setting("domain").ok_or_else(|| missing("setting", "domain"))?,
                api_key: secret("api_key").ok_or_else(|| missing("secret", "api_key"))?,
                from: address.to_owned(),
            },
        })
    }

    /// The `Authorization` a medium linked in one of the provider's webhooks is fetched with:
    /// Twilio serves media to its account when "HTTP Basic Authentication for media" is on.
    /// Messenger's and Instagram's links are public, and Mailgun posts files inline; WhatsApp
    /// names a media id instead, resolved with [`meta::media_info_request`].
    pub fn linked_media_authorization(&self) -> Option<String> {
        match self {
            Self::Twilio {
                account_sid,
                auth_token,
                ..
            } => Some(basic_auth(account_sid, auth_token)),
            Self::Meta { .. } | Self::Mailgun { .. } => None,
        }
    }

    pub fn provider(&self) -> Provider {
        match self {
            Self::Meta { .. } => Provider::Meta,
            Self::Twilio { .. } => Provider::Twilio,
            Self::Mailgun { .. } => Provider::Mailgun,
        }
    }
}

/// A file sent with a message. Meta and Twilio fetch it from `url` themselves; Mailgun is sent
/// its `bytes` (when the dispatcher has them) as an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub url: String,
    pub filename: String,
    pub mime_type: String,
    pub bytes: Option<Vec<u8>>,
}

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub channel: Channel,
    /// E.164 phone (WhatsApp, SMS), email address, or page-scoped id (Messenger, Instagram).
    pub to: &'a str,
    pub text: &'a str,
    /// Email only; without one the first line of the text is the subject.
    pub subject: Option<&'a str>,
    pub media: &'a [Media],
}

/// A provider call, ready to send: always a `POST`. Its headers hold credentials: never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for ProviderRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "POST {} ({} bytes)", self.url, self.body.len())
    }
}

impl ProviderRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What a provider's answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted. The id is how the provider's status webhooks will name the message.
    Sent { provider_message_id: Option<String> },
    /// Not now: rate limited, the provider failed, or it could not be reached. `retry_after`
    /// is the provider's own `Retry-After`, in seconds.
    Transient {
        reason: String,
        retry_after: Option<u32>,
    },
    /// Refused for good (invalid recipient, bad credentials, message not allowed): sending the
    /// same request again would be refused again.
    Rejected { reason: String },
}

/// The subject of an email sent without one: the first line of its text, shortened.
pub fn default_subject(text: &str) -> String {
    const MAX: usize = 78;
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    if first.chars().count() <= MAX {
        first.to_owned()
    } else {
        let mut cut: String = first.chars().take(MAX - 1).collect();
        cut.push('…');
        cut
    }
}

/// `Authorization: Basic` for a user and password.
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `application/x-www-form-urlencoded`, as the WHATWG URL standard serialises it.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> Vec<u8> {
    fn encode(text: &str, out: &mut String) {
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(byte as char),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (at, (name, value)) in pairs.iter().enumerate() {
        if at > 0 {
            out.push('&');
        }
        encode(name, &mut out);
        out.push('=');
        encode(value, &mut out);
    }
    out.into_bytes()
}

/// A stored reason stays readable and bounded.
pub(crate) fn truncate(reason: &str) -> String {
    let reason = reason.trim();
    if reason.chars().count() <= MAX_REASON_CHARS {
        reason.to_owned()
    } else {
        let mut cut: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The common reading of a status line, before a provider's body is looked at.
pub(crate) enum StatusClass {
    Success,
    Transient,
    Rejected,
}

pub(crate) fn status_class(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        429 | 500..=599 => StatusClass::Transient,
        _ => StatusClass::Rejected,
    }
}

/// A failed send as an outcome: retried later when `transient`, given up at once otherwise.
/// The reason is truncated to what is stored.
pub(crate) fn failure(transient: bool, reason: &str, retry_after: Option<u32>) -> Outcome {
    let reason = truncate(reason);
    if transient {
        Outcome::Transient { reason, retry_after }
    } else {
        Outcome::Rejected { reason }
    }
}

/// A short, safe excerpt of a body that is not the provider's documented error shape.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "no body".to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(
        settings: &'static [(&'static str, &'static str)],
        secrets: &'static [(&'static str, &'static str)],
    ) -> (impl Fn(&str) -> Option<String>, impl Fn(&str) -> Option<String>) {
        let lookup = |list: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                list.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        (lookup(settings), lookup(secrets))
    }

    #[test]
    fn a_sender_takes_the_documented_api_unless_the_account_names_another() {
        let (setting, secret) = account(&[], &[("access_token", "EAAG")]);
        let meta = Sender::configure(Provider::Meta, "1055", setting, secret);
        assert_eq!(
            meta,
            Ok(Sender::Meta {
                base_url: META_API_BASE.to_owned(),
                sender_id: "1055".to_owned(),
                access_token: "EAAG".to_owned(),
            })
        );
        let (setting, secret) = account(
            &[("account_sid", "AC1"), ("api_base_url", "http://127.0.0.1:9/")],
            &[("auth_token", "tok")],
        );
        let twilio = Sender::configure(Provider::Twilio, "+353861111111", setting, secret);
        assert_eq!(
            twilio.map(|sender| match sender {
                Sender::Twilio { base_url, .. } => base_url,
                _ => String::new(),
            }),
            Ok("http://127.0.0.1:9".to_owned()),
            "a trailing slash is dropped"
        );
    }

    #[test]
    fn a_sender_without_its_credentials_says_which_one_is_missing() {
        let cases = [
            (Provider::Meta, account(&[], &[]), "access_token"),
            (
                Provider::Twilio,
                account(&[], &[("auth_token", "t")]),
                "account_sid",
            ),
            (
                Provider::Twilio,
                account(&[("account_sid", "AC1")], &[]),
                "auth_token",
            ),
            (Provider::Mailgun, account(&[], &[("api_key", "k")]), "domain"),
            (
                Provider::Mailgun,
                account(&[("domain", "mg.example.com")], &[]),
                "api_key",
            ),
        ];
        for (provider, (setting, secret), missing) in cases {
            let error = Sender::configure(provider, "x", setting, secret)
                .err()
                .map(|lacking| lacking.to_string())
                .unwrap_or_default();
            assert!(error.contains(missing), "{provider:?}: {error}");
        }
    }

    #[test]
    fn debug_output_never_shows_credentials() {
        let sender = Sender::Twilio {
            base_url: TWILIO_API_BASE.to_owned(),
            account_sid: "AC1".to_owned(),
            auth_token: "very-secret".to_owned(),
            from: "+353861111111".to_owned(),
        };
        assert!(!format!("{sender:?}").contains("very-secret"));
        let request = ProviderRequest {
            url: format!("{TWILIO_API_BASE}/2010-04-01/Accounts/AC1/Messages.json"),
            headers: vec![("authorization", basic_auth("AC1", "very-secret"))],
            body: b"To=%2B353871234567".to_vec(),
        };
        assert!(!format!("{request:?}").contains("Basic"));
    }

    #[test]
    fn a_missing_subject_is_the_first_line_of_the_text() {
        assert_eq!(default_subject("\n  Your order  \nis ready"), "Your order");
        assert_eq!(default_subject(""), "");
        let long = "x".repeat(100);
        let subject = default_subject(&long);
        assert_eq!(subject.chars().count(), 78);
        assert!(subject.ends_with('…'));
    }

    #[test]
    fn form_values_are_encoded_as_browsers_encode_them() {
        let body = form_encode(&[("To", "+353 87"), ("Body", "a&b=c/é*~")]);
        assert_eq!(
            String::from_utf8(body).unwrap_or_default(),
            "To=%2B353+87&Body=a%26b%3Dc%2F%C3%A9*%7E"
        );
    }
}
