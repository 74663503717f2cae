//! The channel providers, one folder each, both directions as plain Rust:
//!
//! - `webhook`: how the provider signs what it sends us, and how each payload becomes a
//!   provider-neutral [`InboundBatch`](crate::inbound::InboundBatch). The receivers read the
//!   request and hand the raw bytes (or form fields) and the account's secrets to it; every
//!   signature is checked before any other part of a payload is looked at, in constant time.
//! - `api`: the HTTP request the provider documents for sending a message, and what its answer
//!   means ([`api`] holds what they share; [`sending`] picks the provider of a message).
//!
//! Nothing here touches the Workers runtime: the next provider is one more folder here, one
//! receiver function and one arm in [`Provider`].

pub mod api;
pub mod mailgun;
pub mod media;
pub mod meta;
pub mod sending;
pub mod twilio;

use crate::channel::Channel;
use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::error::ApiError;
use crate::phone::Phone;
use serde::{Deserialize, Serialize};

/// The account id a webhook path names: `/webhooks/{provider}/{account_id}` (a trailing slash is
/// tolerated). Anything else names no account.
pub fn account_id_from_path(path: &str, provider: Provider) -> Option<&str> {
    let rest = path.strip_prefix("/webhooks/")?.strip_prefix(provider.as_str())?;
    let id = rest.strip_prefix('/')?;
    let id = id.strip_suffix('/').unwrap_or(id);
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The one answer to a signature that is missing, malformed or wrong: the client learns only that
/// the request was not accepted as the provider's.
pub(crate) fn bad_signature(header: &str) -> ApiError {
    ApiError::unauthorized(format!(
        "the {header} signature is missing or does not match this account's secret"
    ))
}

/// True when `signature` is HMAC-SHA256(`key`, the concatenation of `message`), compared in
/// constant time.
pub(crate) fn hmac_sha256_matches(key: &[u8], message: &[&[u8]], signature: &[u8]) -> bool {
    constant_time_eq(&hmac_sha256(key, message), signature)
}

/// A provider's phone number of a customer in E.164 (`+353871234567`); `field` names where it
/// was found, for the error.
pub(crate) fn e164(number: &str, field: &str) -> Result<String, ApiError> {
    Phone::parse(number, None)
        .map(|phone| phone.as_str().to_owned())
        .map_err(|error| ApiError::invalid(field, format!("{field} is not a phone number: {error}")))
}

/// A display name, or None when the provider sent only whitespace.
pub(crate) fn display_name(name: Option<&str>) -> Option<String> {
    name.map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

/// Who carries a channel for a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// WhatsApp Cloud API, Messenger Platform, Instagram Messaging.
    Meta,
    /// Twilio Programmable Messaging (SMS and WhatsApp).
    Twilio,
    /// Mailgun: inbound routes and the messages API.
    Mailgun,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Twilio => "twilio",
            Self::Mailgun => "mailgun",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Meta, Self::Twilio, Self::Mailgun]
            .into_iter()
            .find(|p| p.as_str() == name.trim())
    }

    pub fn carries(self, channel: Channel) -> bool {
        matches!(
            (self, channel),
            (
                Self::Meta,
                Channel::Whatsapp | Channel::Facebook | Channel::Instagram
            ) | (Self::Twilio, Channel::Sms | Channel::Whatsapp)
                | (Self::Mailgun, Channel::Email)
        )
    }

    /// The secrets an account of this provider must have, and what each is for.
    pub fn required_secrets(self) -> &'static [&'static str] {
        match self {
            // app_secret signs webhooks (X-Hub-Signature-256); verify_token answers the GET
            // handshake; access_token calls the Graph API.
            Self::Meta => &["app_secret", "verify_token", "access_token"],
            // auth_token signs webhooks (X-Twilio-Signature) and authenticates API calls.
            Self::Twilio => &["auth_token"],
            // signing_key signs inbound routes; api_key sends.
            Self::Mailgun => &["signing_key", "api_key"],
        }
    }

    /// Settings an account of this provider must have.
    pub fn required_settings(self) -> &'static [&'static str] {
        match self {
            Self::Meta => &[],
            Self::Twilio => &["account_sid"],
            Self::Mailgun => &["domain"],
        }
    }

    /// The path, relative to the deployment, the provider is configured to call.
    pub fn webhook_path(self, account_id: &str) -> String {
        format!("/webhooks/{}/{account_id}", self.as_str())
    }
}

/// What the providers' tests share: their answer tables and the readers of form-encoded requests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::api::{Outcome, ProviderRequest};

    /// An answer (status, Retry-After, body), what it means, and why.
    pub type AnswerCase = (u16, Option<u32>, &'static [u8], Outcome, &'static str);

    pub fn fields(request: &ProviderRequest) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&request.body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect()
    }

    pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_path_names_its_account_only_under_its_own_provider() {
        let id = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";
        let cases = [
            (
                format!("/webhooks/meta/{id}"),
                Provider::Meta,
                Some(id),
                "the documented form",
            ),
            (
                format!("/webhooks/meta/{id}/"),
                Provider::Meta,
                Some(id),
                "a trailing slash",
            ),
            (
                format!("/webhooks/twilio/{id}"),
                Provider::Meta,
                None,
                "another provider's path",
            ),
            (
                format!("/webhooks/metax/{id}"),
                Provider::Meta,
                None,
                "a longer provider name",
            ),
            ("/webhooks/meta/".to_owned(), Provider::Meta, None, "no id"),
            (
                "/webhooks/meta".to_owned(),
                Provider::Meta,
                None,
                "no id, no slash",
            ),
            (
                format!("/webhooks/mailgun/{id}/x"),
                Provider::Mailgun,
                None,
                "a deeper path",
            ),
        ];
        for (path, provider, expected, description) in cases {
            assert_eq!(account_id_from_path(&path, provider), expected, "{description}");
        }
    }

    #[test]
    fn display_names_made_of_whitespace_are_no_names() {
        assert_eq!(display_name(Some("  Ann Smith ")), Some("Ann Smith".to_owned()));
        assert_eq!(display_name(Some("   ")), None);
        assert_eq!(display_name(None), None);
    }
}
