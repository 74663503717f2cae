//! The Kustomer connector's settings and secrets as a business configures them through the admin
//! API: parsed once, with every problem named by its field path, so that the runtime only ever
//! holds a configuration that can work.

use super::mapping::FieldMapping;
use crate::crm::fields::{base_url, flag, object, optional_secret, refuse_unknown, required_secret, string};
pub use crate::crm::priority::Priority;
use crate::destination::Destination;
use crate::error::ApiError;
use crate::text::lowercase;
use serde_json::{Value, json};
use std::fmt;

pub const MAX_ESCALATION_PHRASES: usize = 50;
pub const MAX_PHRASE_CHARS: usize = 100;
pub const MAX_HANDOFF_CHARS: usize = 1_000;
pub use crate::crm::fields::MAX_SECRET_CHARS;
const MAX_ID_CHARS: usize = 64;
const MAX_SUBDOMAIN_CHARS: usize = 63;

/// What a customer who asks for a person usually writes; a business replaces the list at will.
pub const DEFAULT_ESCALATION_PHRASES: &[&str] = &[
    "human",
    "agent",
    "real person",
    "live person",
    "speak to someone",
    "talk to someone",
    "talk to a person",
    "speak to a person",
    "representative",
    "customer service",
    "operator",
];

pub const DEFAULT_HANDOFF_MESSAGE: &str =
    "Thanks for your patience: a member of our team will reply here shortly.";

/// The connector's configuration. Construct it with [`KustomerSettings::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct KustomerSettings {
    /// The organization's name in `https://{subdomain}.api.kustomerapp.com`.
    pub subdomain: Option<String>,
    pub organization_id: Option<String>,
    /// Overrides the subdomain's API origin (tests point it at a local server).
    pub base_url: Option<Destination>,
    pub customer_lookup: bool,
    pub conversation_sync: bool,
    pub ticket_creation: bool,
    pub auto_assignment: bool,
    pub default_priority: Priority,
    pub escalation_priority: Priority,
    pub default_team_id: Option<String>,
    pub field_mapping: FieldMapping,
    pub escalation_phrases: Vec<String>,
    pub handoff_message: String,
}

const SETTING_NAMES: &[&str] = &[
    "subdomain",
    "organization_id",
    "base_url",
    "customer_lookup",
    "conversation_sync",
    "ticket_creation",
    "auto_assignment",
    "default_priority",
    "escalation_priority",
    "default_team_id",
    "field_mapping",
    "escalation_phrases",
    "handoff_message",
];

impl KustomerSettings {
    /// From the admin API's `settings` JSON object. Every field is optional (null means "the
    /// default") except that a subdomain or a base_url is needed to reach Kustomer at all.
    /// Unknown fields are refused, so a misspelt setting is not silently ignored.
    pub fn parse(input: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        let fields = object("settings", input)?;
        refuse_unknown("settings", fields, SETTING_NAMES, "Kustomer")?;
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());

        let subdomain = given("subdomain").map(subdomain).transpose()?;
        let organization_id = given("organization_id")
            .map(|value| identifier("settings.organization_id", value))
            .transpose()?;
        let base_url = given("base_url")
            .map(|value| base_url(value, allow_loopback))
            .transpose()?;
        if subdomain.is_none() && base_url.is_none() {
            return Err(ApiError::invalid(
                "settings.subdomain",
                "settings.subdomain is required: the name in https://{subdomain}.api.kustomerapp.com",
            ));
        }
        let priority = |name: &str, default: Priority| {
            given(name).map_or(Ok(default), |value| {
                Priority::parse(&format!("settings.{name}"), value)
            })
        };
        let field_mapping = match given("field_mapping") {
            None => FieldMapping::default(),
            Some(Value::Object(mapping)) => FieldMapping::parse(mapping)?,
            Some(_) => {
                return Err(ApiError::invalid(
                    "settings.field_mapping",
                    "settings.field_mapping must be an object of our field → Kustomer attribute path",
                ));
            }
        };
        Ok(Self {
            subdomain,
            organization_id,
            base_url,
            customer_lookup: flag(fields, "customer_lookup", true)?,
            conversation_sync: flag(fields, "conversation_sync", true)?,
            ticket_creation: flag(fields, "ticket_creation", true)?,
            auto_assignment: flag(fields, "auto_assignment", false)?,
            default_priority: priority("default_priority", Priority::MEDIUM)?,
            escalation_priority: priority("escalation_priority", Priority::HIGH)?,
            default_team_id: given("default_team_id")
                .map(|value| identifier("settings.default_team_id", value))
                .transpose()?,
            field_mapping,
            escalation_phrases: match given("escalation_phrases") {
                None => DEFAULT_ESCALATION_PHRASES
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
                Some(value) => escalation_phrases(value)?,
            },
            handoff_message: match given("handoff_message") {
                None => DEFAULT_HANDOFF_MESSAGE.to_owned(),
                Some(value) => handoff_message(value)?,
            },
        })
    }

    /// As stored and returned by the admin API: every setting, defaults included, in the form
    /// [`KustomerSettings::parse`] reads back to the same value.
    pub fn to_json(&self) -> Value {
        json!({
            "subdomain": self.subdomain,
            "organization_id": self.organization_id,
            "base_url": self.base_url.as_ref().map(Destination::as_str),
            "customer_lookup": self.customer_lookup,
            "conversation_sync": self.conversation_sync,
            "ticket_creation": self.ticket_creation,
            "auto_assignment": self.auto_assignment,
            "default_priority": self.default_priority.get(),
            "escalation_priority": self.escalation_priority.get(),
            "default_team_id": self.default_team_id,
            "field_mapping": self.field_mapping.to_json(),
            "escalation_phrases": self.escalation_phrases,
            "handoff_message": self.handoff_message,
        })
    }

    /// The API origin, without a trailing slash: `base_url` when set, else the subdomain's.
    pub fn api_base(&self) -> String {
        match (&self.base_url, &self.subdomain) {
            (Some(base_url), _) => base_url.as_str().trim_end_matches('/').to_owned(),
            (None, Some(subdomain)) => format!("https://{subdomain}.api.kustomerapp.com"),
            // parse refuses settings with neither.
            (None, None) => String::new(),
        }
    }
}

/// The connector's credentials. Kept apart from the settings: they are sealed at rest and never
/// returned by the admin API, and `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct KustomerSecrets {
    /// Sent as `Authorization: Bearer <api_key>`.
    pub api_key: String,
    /// The outbound webhook's `token`: the HMAC key of `X-Kustomer-Webhook-Signature`.
    pub webhook_secret: Option<String>,
}

impl fmt::Debug for KustomerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KustomerSecrets {{ api_key: <redacted>, webhook_secret: {} }}",
            if self.webhook_secret.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

impl KustomerSecrets {
    pub fn parse(input: &Value) -> Result<Self, ApiError> {
        let fields = object("secrets", input)?;
        refuse_unknown("secrets", fields, &["api_key", "webhook_secret"], "Kustomer")?;
        Ok(Self {
            api_key: required_secret(
                fields,
                "api_key",
                "key",
                "a Kustomer API key (Settings › Security › API keys)",
            )?,
            webhook_secret: optional_secret(fields, "webhook_secret", "key")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({ "api_key": self.api_key, "webhook_secret": self.webhook_secret })
    }
}

fn subdomain(value: &Value) -> Result<String, ApiError> {
    const FIELD: &str = "settings.subdomain";
    let name = string(FIELD, value)?.to_ascii_lowercase();
    if name.contains('.') || name.contains('/') {
        return Err(ApiError::invalid(
            FIELD,
            "settings.subdomain is only the organization's name (acme for https://acme.api.kustomerapp.com); \
             use settings.base_url for a whole URL",
        ));
    }
    let valid = (1..=MAX_SUBDOMAIN_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        return Err(ApiError::invalid(
            FIELD,
            format!(
                "settings.subdomain must be 1 to {MAX_SUBDOMAIN_CHARS} letters, digits and inner hyphens"
            ),
        ));
    }
    Ok(name)
}

/// An id Kustomer gave something (an organization, a team): kept as written, but never blank,
/// spaced or long enough to be something else pasted in by mistake.
fn identifier(field: &str, value: &Value) -> Result<String, ApiError> {
    let id = string(field, value)?;
    let valid = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be a Kustomer id: 1 to {MAX_ID_CHARS} letters, digits, - or _"),
        ));
    }
    Ok(id.to_owned())
}

fn escalation_phrases(value: &Value) -> Result<Vec<String>, ApiError> {
    const FIELD: &str = "settings.escalation_phrases";
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::invalid(FIELD, format!("{FIELD} must be a list of strings")))?;
    if items.len() > MAX_ESCALATION_PHRASES {
        return Err(ApiError::invalid(
            FIELD,
            format!("{FIELD} holds at most {MAX_ESCALATION_PHRASES} phrases"),
        ));
    }
    let mut phrases: Vec<String> = Vec::with_capacity(items.len());
    for (at, item) in items.iter().enumerate() {
        let field = format!("{FIELD}[{at}]");
        let phrase = string(&field, item)?;
        if phrase.is_empty() || phrase.chars().count() > MAX_PHRASE_CHARS {
            return Err(ApiError::invalid(
                &field,
                format!("{field} must be 1 to {MAX_PHRASE_CHARS} characters"),
            ));
        }
        // Matching ignores punctuation, so a phrase without a letter or digit could never match.
        if !phrase.chars().any(crate::text::is_alphanumeric) {
            return Err(ApiError::invalid(
                &field,
                format!("{field} must contain a word: punctuation alone never matches"),
            ));
        }
        if !phrases.iter().any(|known| lowercase(known) == lowercase(phrase)) {
            phrases.push(phrase.to_owned());
        }
    }
    Ok(phrases)
}

fn handoff_message(value: &Value) -> Result<String, ApiError> {
    const FIELD: &str = "settings.handoff_message";
    let message = string(FIELD, value)?;
    if message.is_empty() || message.chars().count() > MAX_HANDOFF_CHARS {
        return Err(ApiError::invalid(
            FIELD,
            format!("{FIELD} must be 1 to {MAX_HANDOFF_CHARS} characters"),
        ));
    }
    Ok(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: Value) -> Result<KustomerSettings, ApiError> {
        KustomerSettings::parse(&input, false)
    }

    #[test]
    fn a_subdomain_alone_gives_the_documented_defaults() {
        let settings = parse(json!({ "subdomain": "Acme" })).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.subdomain.as_deref(), Some("acme"));
        assert_eq!(settings.api_base(), "https://acme.api.kustomerapp.com");
        assert!(settings.customer_lookup && settings.conversation_sync && settings.ticket_creation);
        assert!(!settings.auto_assignment);
        assert_eq!(settings.default_priority, Priority::MEDIUM);
        assert_eq!(settings.escalation_priority, Priority::HIGH);
        assert_eq!(settings.field_mapping, FieldMapping::default());
        assert!(settings.escalation_phrases.iter().any(|p| p == "real person"));
        assert_eq!(settings.handoff_message, DEFAULT_HANDOFF_MESSAGE);
    }

    #[test]
    fn a_base_url_overrides_the_subdomain_and_loses_its_trailing_slash() {
        let settings = KustomerSettings::parse(
            &json!({ "subdomain": "acme", "base_url": "http://127.0.0.1:8790/" }),
            true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.api_base(), "http://127.0.0.1:8790");
        let settings = parse(json!({ "base_url": "https://kustomer.example.com/proxy/" }))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.api_base(), "https://kustomer.example.com/proxy");
    }

    #[test]
    fn settings_round_trip_through_their_stored_form() {
        let settings = parse(json!({
            "subdomain": "acme",
            "organization_id": "5f3c1a2b4d5e6f7a8b9c0d1e",
            "auto_assignment": true,
            "default_priority": "low",
            "escalation_priority": 5,
            "default_team_id": "6a1b2c3d4e5f6a7b8c9d0e1f",
            "field_mapping": { "customerName": "attributes.name", "customerEmail": "attributes.emails[0].email" },
            "escalation_phrases": ["Manager please", "human"],
            "handoff_message": "Someone will be with you.",
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.default_priority.get(), 2);
        assert_eq!(settings.escalation_priority, Priority::URGENT);
        let again = parse(settings.to_json()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, settings);
        let defaults = parse(json!({ "subdomain": "acme" })).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parse(defaults.to_json()).ok(), Some(defaults));
    }

    #[test]
    fn null_means_the_default() {
        let settings =
            parse(json!({ "subdomain": "acme", "customer_lookup": null, "default_priority": null }))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(settings.customer_lookup);
        assert_eq!(settings.default_priority, Priority::MEDIUM);
    }

    #[test]
    fn bad_settings_are_refused_with_the_path_of_the_field_at_fault() {
        let long = "x".repeat(101);
        let too_many: Vec<String> = (0..51).map(|n| format!("phrase {n}")).collect();
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!("acme"), "settings", "not an object"),
            (json!({}), "settings.subdomain", "neither subdomain nor base_url"),
            (
                json!({ "subdomain": "" }),
                "settings.subdomain",
                "an empty subdomain",
            ),
            (
                json!({ "subdomain": "ac me" }),
                "settings.subdomain",
                "a space in the subdomain",
            ),
            (
                json!({ "subdomain": "-acme" }),
                "settings.subdomain",
                "a leading hyphen",
            ),
            (
                json!({ "subdomain": "acme.api.kustomerapp.com" }),
                "settings.subdomain",
                "a host name",
            ),
            (
                json!({ "subdomain": "a".repeat(64) }),
                "settings.subdomain",
                "64 characters",
            ),
            (json!({ "subdomain": 7 }), "settings.subdomain", "a number"),
            (
                json!({ "base_url": "http://127.0.0.1:8790" }),
                "settings.base_url",
                "loopback outside the local stack",
            ),
            (
                json!({ "base_url": "https://169.254.169.254" }),
                "settings.base_url",
                "the metadata service",
            ),
            (
                json!({ "base_url": "ftp://example.com" }),
                "settings.base_url",
                "not http(s)",
            ),
            (
                json!({ "base_url": "https://example.com/?a=1" }),
                "settings.base_url",
                "a query",
            ),
            (
                json!({ "subdomain": "acme", "subdmain": "x" }),
                "settings.subdmain",
                "an unknown setting",
            ),
            (
                json!({ "subdomain": "acme", "customer_lookup": "yes" }),
                "settings.customer_lookup",
                "a string flag",
            ),
            (
                json!({ "subdomain": "acme", "default_priority": 0 }),
                "settings.default_priority",
                "priority 0",
            ),
            (
                json!({ "subdomain": "acme", "default_priority": 6 }),
                "settings.default_priority",
                "priority 6",
            ),
            (
                json!({ "subdomain": "acme", "escalation_priority": 4.5 }),
                "settings.escalation_priority",
                "a fraction",
            ),
            (
                json!({ "subdomain": "acme", "escalation_priority": "critical" }),
                "settings.escalation_priority",
                "an unknown name",
            ),
            (
                json!({ "subdomain": "acme", "organization_id": "" }),
                "settings.organization_id",
                "an empty id",
            ),
            (
                json!({ "subdomain": "acme", "default_team_id": "team one" }),
                "settings.default_team_id",
                "a spaced id",
            ),
            (
                json!({ "subdomain": "acme", "field_mapping": [] }),
                "settings.field_mapping",
                "a list mapping",
            ),
            (
                json!({ "subdomain": "acme", "field_mapping": { "shoeSize": "attributes.name" } }),
                "settings.field_mapping.shoeSize",
                "an unknown source",
            ),
            (
                json!({ "subdomain": "acme", "escalation_phrases": "human" }),
                "settings.escalation_phrases",
                "a string, not a list",
            ),
            (
                json!({ "subdomain": "acme", "escalation_phrases": too_many }),
                "settings.escalation_phrases",
                "51 phrases",
            ),
            (
                json!({ "subdomain": "acme", "escalation_phrases": ["human", ""] }),
                "settings.escalation_phrases[1]",
                "an empty phrase",
            ),
            (
                json!({ "subdomain": "acme", "escalation_phrases": [long] }),
                "settings.escalation_phrases[0]",
                "a 101-character phrase",
            ),
            (
                json!({ "subdomain": "acme", "escalation_phrases": ["?!"] }),
                "settings.escalation_phrases[0]",
                "punctuation only",
            ),
            (
                json!({ "subdomain": "acme", "escalation_phrases": [3] }),
                "settings.escalation_phrases[0]",
                "a number phrase",
            ),
            (
                json!({ "subdomain": "acme", "handoff_message": " " }),
                "settings.handoff_message",
                "a blank handoff message",
            ),
            (
                json!({ "subdomain": "acme", "handoff_message": "x".repeat(1001) }),
                "settings.handoff_message",
                "1001 characters",
            ),
        ];
        for (input, field, description) in cases {
            match parse(input) {
                Ok(settings) => panic!("{description}: accepted as {settings:?}"),
                Err(error) => {
                    assert_eq!(error.body.field.as_deref(), Some(field), "{description}: {error}");
                    assert_eq!(error.status(), 422, "{description}");
                }
            }
        }
    }

    #[test]
    fn repeated_escalation_phrases_are_kept_once() {
        let settings =
            parse(json!({ "subdomain": "acme", "escalation_phrases": ["Human", "human ", "agent"] }))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.escalation_phrases, ["Human", "agent"]);
    }

    #[test]
    fn secrets_need_an_api_key_and_keep_both_out_of_debug_output() {
        let secrets = KustomerSecrets::parse(&json!({ "api_key": " key-123 ", "webhook_secret": "tok" }))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secrets.api_key, "key-123");
        assert_eq!(secrets.webhook_secret.as_deref(), Some("tok"));
        assert_eq!(
            KustomerSecrets::parse(&secrets.to_json()).ok(),
            Some(secrets.clone())
        );
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("key-123") && !shown.contains("tok\""), "{shown}");
        let without_webhook = KustomerSecrets::parse(&json!({ "api_key": "k", "webhook_secret": null }))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(without_webhook.webhook_secret, None);
    }

    #[test]
    fn bad_secrets_are_refused_with_their_path() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!(null), "secrets", "not an object"),
            (json!({}), "secrets.api_key", "no key"),
            (json!({ "api_key": "" }), "secrets.api_key", "an empty key"),
            (json!({ "api_key": 12 }), "secrets.api_key", "a number"),
            (
                json!({ "api_key": "Bearer abc" }),
                "secrets.api_key",
                "the Bearer prefix",
            ),
            (json!({ "api_key": "ab c" }), "secrets.api_key", "an inner space"),
            (json!({ "api_key": "ab\nc" }), "secrets.api_key", "a line break"),
            (
                json!({ "api_key": "k".repeat(4097) }),
                "secrets.api_key",
                "4097 characters",
            ),
            (
                json!({ "api_key": "k", "webhook_secret": "a b" }),
                "secrets.webhook_secret",
                "a spaced token",
            ),
            (
                json!({ "api_key": "k", "token": "t" }),
                "secrets.token",
                "an unknown secret",
            ),
        ];
        for (input, field, description) in cases {
            match KustomerSecrets::parse(&input) {
                Ok(_) => panic!("{description}: accepted"),
                Err(error) => {
                    assert_eq!(error.body.field.as_deref(), Some(field), "{description}: {error}");
                    assert!(
                        !error.body.message.contains("abc"),
                        "{description}: echoes the key"
                    );
                }
            }
        }
    }
}
