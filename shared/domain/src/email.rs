//! Email addresses as customers are matched by them: trimmed and compared case-insensitively.

use serde::{Serialize, Serializer};
use std::fmt;

/// A syntactically plausible address, stored lowercased so that matching is case-insensitive.
///
/// Deliberately not a full RFC 5322 parser: quoted local parts and IP-literal domains are
/// rejected, as every mail provider a CRM exports from does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailError {
    Empty,
    TooLong,
    Malformed,
}

impl fmt::Display for EmailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "email is empty",
            Self::TooLong => "email is longer than 254 characters",
            Self::Malformed => "not an email address (expected name@example.com)",
        })
    }
}

impl std::error::Error for EmailError {}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let candidate = input.trim();
        if candidate.is_empty() {
            return Err(EmailError::Empty);
        }
        if candidate.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = candidate.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| crate::text::is_alphanumeric(c) || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| crate::text::is_alphanumeric(c) || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(EmailError::Malformed);
        }
        Ok(Self(crate::text::lowercase(candidate)))
    }

    /// An address as this type wrote it to storage, read back: lowercase and checked when it
    /// was stored, so not checked again (a sync reads a thousand).
    pub fn stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_differing_only_in_case_and_spaces_are_the_same_email() {
        assert_eq!(
            Email::parse(" John.Doe@Example.COM "),
            Email::parse("john.doe@example.com")
        );
        assert_eq!(
            Email::parse("John.Doe@Example.COM").map(|e| e.as_str().to_owned()),
            Ok("john.doe@example.com".to_owned())
        );
    }

    #[test]
    fn accepts_the_addresses_crms_export() {
        for input in [
            "a@b.co",
            "first+tag@sub.example.ie",
            "o'neill@example.com",
            "élodie@exemple.fr",
        ] {
            assert!(Email::parse(input).is_ok(), "{input} should be accepted");
        }
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let too_long = format!("{}@{}.com", "a".repeat(60), "b".repeat(200));
        let cases = [
            ("", EmailError::Empty, "empty"),
            ("   ", EmailError::Empty, "blank"),
            ("john", EmailError::Malformed, "no at sign"),
            ("john@", EmailError::Malformed, "no domain"),
            ("@example.com", EmailError::Malformed, "no local part"),
            ("john@localhost", EmailError::Malformed, "domain without a dot"),
            (
                "john doe@example.com",
                EmailError::Malformed,
                "space in local part",
            ),
            ("john..doe@example.com", EmailError::Malformed, "double dot"),
            ("john@exa_mple.com", EmailError::Malformed, "underscore in domain"),
            (
                "john@-example.com",
                EmailError::Malformed,
                "label starting with a hyphen",
            ),
            ("<script>@x.com", EmailError::Malformed, "markup"),
            (long_local.as_str(), EmailError::Malformed, "local part over 64"),
            (too_long.as_str(), EmailError::TooLong, "over 254 characters"),
        ];
        for (input, expected, description) in cases {
            assert_eq!(Email::parse(input), Err(expected), "{description}: {input}");
        }
    }
}
