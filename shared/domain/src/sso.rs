//! Single sign-on tokens for the embedded inbox: what a token looks like, how it is stored (only
//! a hash), what each scope allows, how long one lives, and which sites may frame the inbox.
//!
//! A token stands in for the API key inside a CRM's iframe, so it is narrower in every way: one
//! business, one customer, a fixed scope, an expiry of at most a day, and it can be revoked.

use crate::crypto;
use crate::error::ApiError;
use crate::identify::{CustomerRef, Name, identify};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const SCHEME: &str = "sso_";
pub use crate::crypto::BEARER_SECRET_BYTES as SECRET_BYTES;

/// What an embedded inbox may do. Fixed when the token is issued; nothing widens it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read the customer's timeline on every channel, and download its attachments.
    Inbox,
    /// Everything `inbox` allows, and reply to the customer from the page.
    InboxReply,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Inbox, Scope::InboxReply];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::InboxReply => "inbox:reply",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    pub fn can_reply(self) -> bool {
        self == Self::InboxReply
    }
}

/// SHA-256 of the whole token, hex encoded: what D1 stores and is searched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(plaintext: &str) -> Self {
        Self(hex::encode(Sha256::digest(plaintext.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A freshly issued token. The plaintext exists only in the response that creates it.
pub struct IssuedToken {
    pub plaintext: String,
    pub hash: TokenHash,
}

pub fn issue(random: [u8; SECRET_BYTES]) -> IssuedToken {
    let plaintext = crypto::bearer_secret(SCHEME, random);
    IssuedToken {
        hash: TokenHash::of(&plaintext),
        plaintext,
    }
}

/// A presented token that has the right shape; anything else is refused before any lookup.
pub fn parse_presented(presented: &str) -> Option<TokenHash> {
    let token = presented.trim();
    crypto::is_bearer_secret(SCHEME, token).then(|| TokenHash::of(token))
}

/// How long a token lives unless asked otherwise: the seed's hour.
pub const DEFAULT_LIFETIME_SECONDS: i64 = 3600;
/// A minute: shorter would expire before a slow CRM page has loaded the iframe.
pub const MIN_LIFETIME_SECONDS: i64 = 60;
/// A day: a leaked link (browser history, a screenshot of the URL) stops working by tomorrow.
pub const MAX_LIFETIME_SECONDS: i64 = 86_400;

/// `expires_in`, in seconds, within the allowed range.
pub fn lifetime(expires_in: Option<i64>) -> Result<i64, ApiError> {
    match expires_in {
        None => Ok(DEFAULT_LIFETIME_SECONDS),
        Some(seconds) if (MIN_LIFETIME_SECONDS..=MAX_LIFETIME_SECONDS).contains(&seconds) => Ok(seconds),
        Some(_) => Err(ApiError::invalid(
            "expires_in",
            format!(
                "expires_in is a number of seconds from {MIN_LIFETIME_SECONDS} to {MAX_LIFETIME_SECONDS} \
                 (default {DEFAULT_LIFETIME_SECONDS})"
            ),
        )),
    }
}

/// `scope`, which defaults to the narrowest.
pub fn scope(given: Option<&str>) -> Result<Scope, ApiError> {
    let Some(name) = given.map(str::trim) else {
        return Ok(Scope::Inbox);
    };
    Scope::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
        ApiError::invalid(
            "scope",
            format!("unknown scope \"{name}\": scope is one of {}", names.join(", ")),
        )
    })
}

/// The body of `/api-sso-generate-token` as clients send it.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TokenIn {
    pub customer_id: Option<String>,
    pub external_id: Option<String>,
    /// inbox (the default) or inbox:reply.
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["inbox", "inbox:reply"])))]
    pub scope: Option<String>,
    /// Seconds, 60 to 86400 (default 3600).
    #[cfg_attr(feature = "openapi", schemars(range(min = MIN_LIFETIME_SECONDS, max = MAX_LIFETIME_SECONDS)))]
    pub expires_in: Option<i64>,
}

/// A token the request asks for, every part valid.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    pub customer: CustomerRef,
    pub scope: Scope,
    pub lifetime_seconds: i64,
}

impl TokenRequest {
    /// The customer is named as `domain::identify` says: `customer_id` (ours, as the seed's
    /// client passes `customer.id`, or else the CRM's) or `external_id` (the CRM's).
    pub fn parse(input: TokenIn) -> Result<Self, ApiError> {
        let customer = identify(
            &[
                (Name::CustomerId, input.customer_id.as_deref()),
                (Name::ExternalId, input.external_id.as_deref()),
            ],
            None,
        )?;
        Ok(Self {
            customer,
            scope: scope(input.scope.as_deref())?,
            lifetime_seconds: lifetime(input.expires_in)?,
        })
    }
}

/// The entry that lets no site frame the inbox.
const NONE: &str = "'none'";

/// At most this many sites may frame a business's inbox.
pub const MAX_FRAME_ANCESTORS: usize = 20;

/// The sites allowed to put the inbox in an iframe, as a business configured them: origins
/// (`https://crm.example.com`, `https://*.example.com`), or `'none'` alone for no site at all.
/// Empty, the default, lets any site frame it: the guide's embed works with no setting, and it
/// is safe because the page's only credential is the short-lived token in its own URL (no
/// cookie, no ambient session): a site that frames it can do nothing that opening the URL would
/// not, and clickjacking needs ambient authority (docs/security.md, "Security notes"). A business that
/// wants more names its CRM's origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors(Vec<String>);

impl FrameAncestors {
    pub fn parse(given: &[String]) -> Result<Self, ApiError> {
        if given.len() > MAX_FRAME_ANCESTORS {
            return Err(ApiError::invalid(
                "embed_frame_ancestors",
                format!("at most {MAX_FRAME_ANCESTORS} origins"),
            ));
        }
        if let [only] = given
            && only.trim() == NONE
        {
            return Ok(Self(vec![NONE.to_owned()]));
        }
        let mut origins: Vec<String> = Vec::with_capacity(given.len());
        for (at, value) in given.iter().enumerate() {
            let origin = parse_origin(value).ok_or_else(|| {
                ApiError::invalid(
                    format!("embed_frame_ancestors[{at}]"),
                    "an origin is https://host or https://host:port (http:// too; *.host for every \
                     subdomain), without a path; or give ['none'] alone to let no site frame the inbox",
                )
            })?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Self(origins))
    }

    /// Origins read back from storage, where only parsed ones are written; anything that no
    /// longer parses is dropped rather than put into a header.
    pub fn from_stored(stored: &[String]) -> Self {
        if stored.iter().any(|value| value == NONE) {
            return Self(vec![NONE.to_owned()]);
        }
        Self(stored.iter().filter_map(|value| parse_origin(value)).collect())
    }

    pub fn origins(&self) -> &[String] {
        &self.0
    }

    /// The `frame-ancestors` source list.
    pub fn directive(&self) -> String {
        if self.0.is_empty() {
            "frame-ancestors *".to_owned()
        } else {
            format!("frame-ancestors {}", self.0.join(" "))
        }
    }
}

/// `scheme://host[:port]`, lowercased, or `None`. Only characters that cannot end a CSP source
/// expression or start a new directive get through.
fn parse_origin(value: &str) -> Option<String> {
    let value = value.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = value.split_once("://")?;
    if !matches!(scheme, "https" | "http") {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    labels_ok.then_some(value)
}

/// The embedded page's Content-Security-Policy: its own scripts, styles, images and API only,
/// nothing inline, and framed only where the business allows.
pub fn content_security_policy(ancestors: &FrameAncestors) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; {}",
        ancestors.directive()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use crate::lookup::CustomerKey;

    #[test]
    fn an_issued_token_is_recognised_by_its_hash_and_a_changed_one_is_not() {
        let issued = issue([7; SECRET_BYTES]);
        assert!(issued.plaintext.starts_with("sso_"));
        assert_eq!(issued.plaintext.len(), SCHEME.len() + 43, "256 bits in base64url");
        assert_eq!(parse_presented(&issued.plaintext), Some(issued.hash.clone()));
        assert_eq!(
            parse_presented(&format!(" {} ", issued.plaintext)),
            Some(issued.hash.clone())
        );
        let mut changed = issued.plaintext.clone();
        changed.pop();
        changed.push('x');
        assert_ne!(parse_presented(&changed), Some(issued.hash));
        assert_ne!(issue([8; SECRET_BYTES]).plaintext, issued.plaintext);
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_refused_before_any_lookup() {
        let good = issue([1; SECRET_BYTES]).plaintext;
        let cases = [
            ("", "empty"),
            ("sso_", "no secret"),
            (&good[..good.len() - 1], "one character short"),
            (
                "cek_0123456789abcdef0123456789abcdef0123456789abcdef",
                "an API key",
            ),
            ("sso_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+a", "not base64url"),
        ];
        for (presented, description) in cases {
            assert_eq!(parse_presented(presented), None, "{description}");
        }
    }

    #[test]
    fn scopes_are_the_two_we_support_and_default_to_reading_only() {
        assert_eq!(scope(None), Ok(Scope::Inbox));
        assert_eq!(scope(Some("inbox")), Ok(Scope::Inbox));
        assert_eq!(scope(Some("inbox:reply")), Ok(Scope::InboxReply));
        assert!(Scope::InboxReply.can_reply() && !Scope::Inbox.can_reply());
        for unknown in ["admin", "INBOX", "", "inbox reply", "inbox:reply:all"] {
            assert_eq!(
                scope(Some(unknown)).err().and_then(|e| e.body.field),
                Some("scope".to_owned()),
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn lifetimes_default_to_an_hour_and_stay_within_a_minute_and_a_day() {
        let cases = [
            (None, Some(3600)),
            (Some(60), Some(60)),
            (Some(86_400), Some(86_400)),
            (Some(59), None),
            (Some(86_401), None),
            (Some(0), None),
            (Some(-5), None),
        ];
        for (given, expected) in cases {
            assert_eq!(lifetime(given).ok(), expected, "{given:?}");
        }
    }

    #[test]
    fn the_customer_is_named_by_our_id_or_the_crms() {
        const ID: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";
        let ours = TokenRequest::parse(TokenIn {
            customer_id: Some(ID.into()),
            ..TokenIn::default()
        });
        let expected =
            CustomerId::parse(ID).map(|id| vec![CustomerKey::Id(id), CustomerKey::ExternalId(ID.into())]);
        assert_eq!(ours.ok().map(|r| r.customer.keys), expected);
        let crms = TokenRequest::parse(TokenIn {
            external_id: Some(" CRM-1 ".into()),
            scope: Some("inbox:reply".into()),
            expires_in: Some(120),
            ..TokenIn::default()
        });
        assert_eq!(
            crms,
            Ok(TokenRequest {
                customer: CustomerRef {
                    keys: vec![CustomerKey::ExternalId("CRM-1".into())],
                    named_by: "external_id CRM-1".into(),
                },
                scope: Scope::InboxReply,
                lifetime_seconds: 120,
            })
        );
        let cases = [
            (TokenIn::default(), "customer_id", "nobody named"),
            (
                TokenIn {
                    customer_id: Some(ID.into()),
                    external_id: Some("CRM-1".into()),
                    ..TokenIn::default()
                },
                "customer_id",
                "named twice",
            ),
            (
                TokenIn {
                    customer_id: Some(ID.into()),
                    scope: Some("admin".into()),
                    ..TokenIn::default()
                },
                "scope",
                "a scope we do not have",
            ),
            (
                TokenIn {
                    customer_id: Some(ID.into()),
                    expires_in: Some(7 * 86_400),
                    ..TokenIn::default()
                },
                "expires_in",
                "a week",
            ),
        ];
        for (input, field, description) in cases {
            assert_eq!(
                TokenRequest::parse(input).err().and_then(|e| e.body.field),
                Some(field.to_owned()),
                "{description}"
            );
        }
    }

    #[test]
    fn frame_ancestors_are_origins_and_nothing_that_could_break_the_header() {
        let good = [
            ("https://crm.example.com", "https://crm.example.com"),
            ("https://CRM.example.com/", "https://crm.example.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://*.example.com", "https://*.example.com"),
        ];
        for (given, expected) in good {
            assert_eq!(
                FrameAncestors::parse(&[given.to_owned()]).map(|a| a.origins().to_vec()),
                Ok(vec![expected.to_owned()]),
                "{given}"
            );
        }
        let bad = [
            "crm.example.com",
            "ftp://crm.example.com",
            "https://crm.example.com/path",
            "https://crm.example.com; script-src *",
            "https://crm.example.com 'unsafe-inline'",
            "https://",
            "https://*",
            "https://crm.example.com:99999x",
            "'self'",
            "*",
            "'none' https://a.example",
        ];
        for given in bad {
            assert_eq!(
                FrameAncestors::parse(&[given.to_owned()])
                    .err()
                    .and_then(|e| e.body.field),
                Some("embed_frame_ancestors[0]".to_owned()),
                "{given}"
            );
        }
        let too_many = vec!["https://a.example".to_owned(); MAX_FRAME_ANCESTORS + 1];
        assert!(FrameAncestors::parse(&too_many).is_err());
    }

    #[test]
    fn any_site_may_frame_the_page_until_the_business_narrows_it() {
        let any = content_security_policy(&FrameAncestors::default());
        assert!(any.ends_with("frame-ancestors *"), "{any}");
        assert!(any.contains("script-src 'self'") && !any.contains("unsafe-inline"));
        let none = FrameAncestors::parse(&["'none'".into()]);
        assert_eq!(
            none.as_ref().map(FrameAncestors::directive),
            Ok("frame-ancestors 'none'".to_owned())
        );
        assert_eq!(
            none.map(|none| FrameAncestors::from_stored(none.origins()).directive()),
            Ok("frame-ancestors 'none'".to_owned())
        );
        let allowed = FrameAncestors::parse(&["https://a.example".into(), "https://b.example:8443".into()]);
        assert_eq!(
            allowed.map(|a| a.directive()),
            Ok("frame-ancestors https://a.example https://b.example:8443".to_owned())
        );
    }
}
