//! The channel providers' webhooks as plain Rust: how each signs what it sends, and how each
//! payload becomes a provider-neutral [`InboundBatch`](crate::inbound::InboundBatch).
//!
//! Nothing here touches the Workers runtime: the receivers read the request, hand the raw bytes
//! (or form fields) and the account's secrets to these functions, and pass the batch on to
//! ingestion. Every signature is checked before any other part of a payload is looked at, and
//! compared in constant time.

pub mod mailgun;
pub mod meta;
pub mod twilio;

use crate::channel::Provider;
use crate::crypto::{constant_time_eq, hmac_sha256};
use crate::error::ApiError;
use crate::phone::Phone;

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
