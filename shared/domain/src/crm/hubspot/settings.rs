//! The HubSpot connector's settings and secrets as a business configures them through the admin
//! API: parsed once, every problem named by its field path.

use super::api::{Owner, Pipeline};
use crate::crm::fields::{
    base_url_at, flag, names, object, optional_secret, refuse_unknown, required_secret, string,
};
use crate::crm::oauth::{self, OAuthApp};
use crate::crm::priority::Priority;
use crate::destination::Destination;
use crate::error::ApiError;
use serde_json::{Value, json};
use std::fmt;

/// HubSpot's API, for every account (HubSpot routes EU-hosted accounts itself).
pub const DEFAULT_API_URL: &str = "https://api.hubapi.com";
/// HubSpot's consent page, where a person installs an app on their account.
pub const AUTHORIZE_URL: &str = "https://app.hubspot.com/oauth/authorize";
/// The token endpoint (form-encoded; `/oauth/v1/token` until February 2027).
pub const TOKEN_PATH: &str = "/oauth/2026-03/token";
/// What an OAuth connector asks for: contacts read and written (and with them their timeline's
/// communications, emails and notes), tickets, the owners a ticket may go to, and `oauth`, which
/// every app holds.
pub const OAUTH_SCOPES: [&str; 5] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "tickets",
    "crm.objects.owners.read",
    "oauth",
];
/// What it asks for when it keeps companies too.
pub const OAUTH_SCOPES_WITH_COMPANIES: [&str; 7] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "tickets",
    "crm.objects.owners.read",
    "oauth",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
];
/// The ticket pipeline every HubSpot account starts with, and its first stage ("New").
pub const DEFAULT_PIPELINE: &str = "0";
pub const DEFAULT_STAGE: &str = "1";
/// HubSpot's internal property names are at most this long.
const MAX_PROPERTY_NAME_CHARS: usize = 100;
/// HubSpot's ids (pipelines, stages, owners) are short numbers or slugs.
const MAX_ID_CHARS: usize = 64;

/// A ticket's `hs_ticket_priority`: HubSpot's four levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketPriority {
    Low,
    Medium,
    High,
    Urgent,
}

impl TicketPriority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Urgent => "URGENT",
        }
    }

    /// A priority on our 1-to-5 scale as HubSpot's: 1 and 2 low, 3 medium, 4 high, 5 urgent.
    pub fn of(priority: Priority) -> Self {
        match priority.get() {
            0..=2 => Self::Low,
            3 => Self::Medium,
            4 => Self::High,
            _ => Self::Urgent,
        }
    }
}

/// The connector's configuration. Construct it with [`HubSpotSettings::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct HubSpotSettings {
    /// HubSpot's API origin; only a test server replaces it.
    pub api_url: Destination,
    /// Messages logged on the contact's timeline (WhatsApp and SMS as communications, email as
    /// emails, Messenger and Instagram as notes).
    pub sync_messages: bool,
    /// A unique contact property (made in HubSpot, Settings › Properties) that holds our
    /// customer's id: contacts are then upserted by it, so a customer without an email is never
    /// made twice. None: contacts are found by email, then phone.
    pub customer_id_property: Option<String>,
    /// A contact whose email is at a company's own domain (not a free mail provider's) is
    /// associated with the company HubSpot has at that `domain`, made when it has none.
    pub sync_companies: bool,
    /// Escalations open a ticket.
    pub ticket_creation: bool,
    pub ticket_pipeline: String,
    pub ticket_stage: String,
    /// The priority of a ticket whose escalation asks for none.
    pub ticket_priority: TicketPriority,
    /// The HubSpot owner new tickets are given; none leaves them unassigned.
    pub ticket_owner_id: Option<String>,
}

const SETTING_NAMES: &[&str] = &[
    "api_url",
    "sync_messages",
    "customer_id_property",
    "sync_companies",
    "ticket_creation",
    "ticket_pipeline",
    "ticket_stage",
    "ticket_priority",
    "ticket_owner_id",
];

impl HubSpotSettings {
    /// From the admin API's `settings` object; every setting has a default (null means the
    /// default), unknown names are refused.
    pub fn parse(input: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        let fields = object("settings", input)?;
        refuse_unknown("settings", fields, SETTING_NAMES, "HubSpot")?;
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
        let id = |name: &str| given(name).map(|value| hubspot_id(name, value)).transpose();
        let api_url = match given("api_url") {
            Some(value) => base_url_at("settings.api_url", value, allow_loopback)?,
            None => Destination::parse("settings.api_url", DEFAULT_API_URL, false)
                .map_err(|message| ApiError::internal("hubspot settings", message))?,
        };
        Ok(Self {
            api_url,
            sync_messages: flag(fields, "sync_messages", true)?,
            customer_id_property: given("customer_id_property").map(property_name).transpose()?,
            sync_companies: flag(fields, "sync_companies", false)?,
            ticket_creation: flag(fields, "ticket_creation", true)?,
            ticket_pipeline: id("ticket_pipeline")?.unwrap_or_else(|| DEFAULT_PIPELINE.to_owned()),
            ticket_stage: id("ticket_stage")?.unwrap_or_else(|| DEFAULT_STAGE.to_owned()),
            ticket_priority: match given("ticket_priority") {
                Some(value) => TicketPriority::of(Priority::parse("settings.ticket_priority", value)?),
                None => TicketPriority::High,
            },
            ticket_owner_id: id("ticket_owner_id")?,
        })
    }

    /// As stored and returned by the admin API, in the form [`HubSpotSettings::parse`] reads back
    /// to the same value.
    pub fn to_json(&self) -> Value {
        json!({
            "api_url": self.api_url.as_str(),
            "sync_messages": self.sync_messages,
            "customer_id_property": self.customer_id_property,
            "sync_companies": self.sync_companies,
            "ticket_creation": self.ticket_creation,
            "ticket_pipeline": self.ticket_pipeline,
            "ticket_stage": self.ticket_stage,
            "ticket_priority": self.ticket_priority.as_str().to_ascii_lowercase(),
            "ticket_owner_id": self.ticket_owner_id,
        })
    }

    /// The origin [`super::api`]'s paths are added to, without a trailing slash.
    pub fn api_base(&self) -> String {
        self.api_url.as_str().trim_end_matches('/').to_owned()
    }

    /// HubSpot's OAuth app: the consent page at `app.hubspot.com` (or, for a HubSpot reached at
    /// another address, that address's `/oauth/authorize`), the date-versioned token endpoint,
    /// and the scopes the connector's calls need.
    pub fn oauth(&self) -> OAuthApp {
        let base = self.api_base();
        OAuthApp {
            authorize_url: if base == DEFAULT_API_URL {
                AUTHORIZE_URL.to_owned()
            } else {
                format!("{base}/oauth/authorize")
            },
            token_url: format!("{base}{TOKEN_PATH}"),
            scopes: if self.sync_companies {
                &OAUTH_SCOPES_WITH_COMPANIES
            } else {
                &OAUTH_SCOPES
            },
            pkce: false,
            // HubSpot's answers say how long a token lasts (`expires_in`).
            token_seconds: None,
        }
    }

    /// Checks the ticket pipeline, stage and owner against what HubSpot has (`GET
    /// /crm/pipelines/2026-03/tickets`, `GET /crm/owners/2026-03`) when ticket creation is on:
    /// HubSpot refuses a ticket whose stage is not one of its pipeline's, so a wrong one would
    /// fail every escalation.
    pub fn check_tickets(&self, pipelines: &[Pipeline], owners: &[Owner]) -> Result<(), ApiError> {
        if !self.ticket_creation {
            return Ok(());
        }
        let Some(pipeline) = pipelines.iter().find(|p| p.id == self.ticket_pipeline) else {
            return Err(ApiError::invalid(
                "settings.ticket_pipeline",
                format!(
                    "settings.ticket_pipeline {} is not a HubSpot ticket pipeline; HubSpot has {}",
                    self.ticket_pipeline,
                    names(pipelines.iter().map(|p| (&p.id, p.label.as_str())))
                ),
            ));
        };
        if !pipeline.stages.iter().any(|stage| stage.id == self.ticket_stage) {
            return Err(ApiError::invalid(
                "settings.ticket_stage",
                format!(
                    "settings.ticket_stage {} is not a stage of the pipeline {} ({}); its stages are {}",
                    self.ticket_stage,
                    pipeline.id,
                    pipeline.label,
                    names(pipeline.stages.iter().map(|s| (&s.id, s.label.as_str())))
                ),
            ));
        }
        if let Some(owner) = &self.ticket_owner_id
            && !owners.iter().any(|known| &known.id == owner)
        {
            return Err(ApiError::invalid(
                "settings.ticket_owner_id",
                format!(
                    "settings.ticket_owner_id {owner} is not a HubSpot owner; HubSpot has {}",
                    names(owners.iter().map(|o| (&o.id, o.email.as_str())))
                ),
            ));
        }
        Ok(())
    }
}

/// An id HubSpot gave (a pipeline, a stage, an owner): a string or a number, kept as a string.
fn hubspot_id(name: &str, value: &Value) -> Result<String, ApiError> {
    let field = format!("settings.{name}");
    let text = match value {
        Value::Number(number) if number.is_u64() => number.to_string(),
        Value::String(_) => string(&field, value)?.to_owned(),
        _ => return Err(ApiError::invalid(&field, format!("{field} must be a HubSpot id"))),
    };
    let fits = !text.is_empty()
        && text.chars().count() <= MAX_ID_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !fits {
        return Err(ApiError::invalid(
            &field,
            format!("{field} must be a HubSpot id: letters, digits, - and _, at most {MAX_ID_CHARS}"),
        ));
    }
    Ok(text)
}

/// A contact property's internal name as HubSpot makes them: a lowercase letter, then lowercase
/// letters, digits and underscores.
fn property_name(value: &Value) -> Result<String, ApiError> {
    const FIELD: &str = "settings.customer_id_property";
    let name = string(FIELD, value)?;
    let mut chars = name.chars();
    let fits = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_PROPERTY_NAME_CHARS;
    if !fits {
        return Err(ApiError::invalid(
            FIELD,
            format!(
                "{FIELD} must be a contact property's internal name (lowercase letters, digits and _, \
                 starting with a letter, at most {MAX_PROPERTY_NAME_CHARS}), as HubSpot shows it under \
                 Settings › Properties"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// The connector's credentials: a private app's access token, or an OAuth app's access token
/// with what refreshes it; and the client secret of the app whose webhooks feed it.
#[derive(Clone, PartialEq)]
pub struct HubSpotSecrets {
    /// Sent as `Authorization: Bearer <access_token>` (a private app's token, `pat-…`, or an
    /// OAuth access token).
    pub access_token: String,
    /// The app's client secret: the key of `X-HubSpot-Signature-v3`, and with OAuth what the
    /// refresh token is traded with.
    pub client_secret: Option<String>,
    /// With OAuth: the app's client id, the refresh token and when the access token expires.
    pub client_id: Option<String>,
    pub refresh_token: Option<String>,
    pub access_token_expires_ms: Option<i64>,
}

impl fmt::Debug for HubSpotSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client_secret = if self.client_secret.is_some() {
            "<redacted>"
        } else {
            "none"
        };
        write!(
            f,
            "HubSpotSecrets {{ access_token: <redacted>, client_secret: {client_secret}, client_id: {:?}, oauth: {} }}",
            self.client_id,
            self.refresh_token.is_some()
        )
    }
}

impl HubSpotSecrets {
    pub fn parse(input: &Value) -> Result<Self, ApiError> {
        let fields = object("secrets", input)?;
        refuse_unknown(
            "secrets",
            fields,
            &[
                oauth::ACCESS_TOKEN,
                oauth::CLIENT_SECRET,
                oauth::CLIENT_ID,
                oauth::REFRESH_TOKEN,
                oauth::EXPIRES_MS,
            ],
            "HubSpot",
        )?;
        let secrets = Self {
            access_token: required_secret(
                fields,
                oauth::ACCESS_TOKEN,
                "token",
                "a HubSpot private app's access token (Development › Legacy apps › your app › Auth), \
                 with the scopes crm.objects.contacts.read, crm.objects.contacts.write and tickets; \
                 or connect with OAuth from the console",
            )?,
            client_secret: optional_secret(fields, oauth::CLIENT_SECRET, "secret")?,
            client_id: optional_secret(fields, oauth::CLIENT_ID, "id")?,
            refresh_token: optional_secret(fields, oauth::REFRESH_TOKEN, "token")?,
            access_token_expires_ms: match fields.get(oauth::EXPIRES_MS).filter(|v| !v.is_null()) {
                None => None,
                Some(value) => Some(value.as_i64().filter(|ms| *ms > 0).ok_or_else(|| {
                    ApiError::invalid(
                        "secrets.access_token_expires_ms",
                        "secrets.access_token_expires_ms must be Unix milliseconds",
                    )
                })?),
            },
        };
        if secrets.refresh_token.is_some() {
            for (name, value) in [
                (oauth::CLIENT_ID, &secrets.client_id),
                (oauth::CLIENT_SECRET, &secrets.client_secret),
            ] {
                if value.is_none() {
                    let field = format!("secrets.{name}");
                    return Err(ApiError::invalid(
                        &field,
                        format!(
                            "{field} is required with secrets.refresh_token: the OAuth app's, which refreshes the access token"
                        ),
                    ));
                }
            }
        }
        Ok(secrets)
    }

    pub fn to_json(&self) -> Value {
        json!({
            oauth::ACCESS_TOKEN: self.access_token,
            oauth::CLIENT_SECRET: self.client_secret,
            oauth::CLIENT_ID: self.client_id,
            oauth::REFRESH_TOKEN: self.refresh_token,
            oauth::EXPIRES_MS: self.access_token_expires_ms,
        })
    }

    /// What refreshes the access token, when the connector was authorised with OAuth.
    pub fn grant(&self) -> Option<oauth::Grant> {
        Some(oauth::Grant {
            client_id: self.client_id.clone()?,
            client_secret: self.client_secret.clone()?,
            refresh_token: Some(self.refresh_token.clone()?),
            expires_at_ms: self.access_token_expires_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::hubspot::api::Stage;

    fn parsed(input: Value) -> Result<HubSpotSettings, String> {
        HubSpotSettings::parse(&input, false).map_err(|error| error.body.message)
    }

    #[test]
    fn an_empty_object_is_hubspots_defaults_and_reads_back_the_same() {
        let settings = parsed(json!({})).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(settings.api_base(), "https://api.hubapi.com");
        assert!(settings.sync_messages && settings.ticket_creation);
        assert_eq!(
            (settings.ticket_pipeline.as_str(), settings.ticket_stage.as_str()),
            ("0", "1")
        );
        assert_eq!(settings.ticket_priority, TicketPriority::High);
        assert_eq!(parsed(settings.to_json()), Ok(settings));
    }

    #[test]
    fn each_wrong_setting_is_named_by_its_path() {
        let cases = [
            (
                json!({ "sync_message": true }),
                "settings.sync_message is not a HubSpot connector setting",
            ),
            (
                json!({ "sync_messages": "yes" }),
                "settings.sync_messages must be true or false",
            ),
            (
                json!({ "customer_id_property": "Customer Id" }),
                "settings.customer_id_property must be",
            ),
            (
                json!({ "ticket_stage": "../1" }),
                "settings.ticket_stage must be a HubSpot id",
            ),
            (
                json!({ "ticket_owner_id": -3 }),
                "settings.ticket_owner_id must be a HubSpot id",
            ),
            (
                json!({ "ticket_priority": "whenever" }),
                "settings.ticket_priority must be 1 to 5",
            ),
            (json!({ "api_url": "http://127.0.0.1:9" }), "settings.api_url"),
            (json!([]), "settings must be a JSON object"),
        ];
        for (input, expected) in cases {
            let message = parsed(input.clone())
                .err()
                .unwrap_or_else(|| panic!("{input} was taken"));
            assert!(message.starts_with(expected), "{input}: {message}");
        }
    }

    #[test]
    fn ids_may_be_numbers_and_priorities_follow_our_scale() {
        let settings =
            parsed(json!({ "ticket_pipeline": 812723471, "ticket_owner_id": "77", "ticket_priority": 5 }))
                .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(settings.ticket_pipeline, "812723471");
        assert_eq!(settings.ticket_owner_id.as_deref(), Some("77"));
        assert_eq!(settings.ticket_priority, TicketPriority::Urgent);
        let levels: Vec<&str> = (1..=5)
            .filter_map(Priority::new)
            .map(|p| TicketPriority::of(p).as_str())
            .collect();
        assert_eq!(levels, ["LOW", "LOW", "MEDIUM", "HIGH", "URGENT"]);
    }

    #[test]
    fn the_ticket_settings_are_checked_against_hubspots_pipelines_and_owners() {
        let stage = |id: &str, label: &str| Stage {
            id: id.to_owned(),
            label: label.to_owned(),
            closed: false,
        };
        let pipelines = [Pipeline {
            id: "0".to_owned(),
            label: "Support Pipeline".to_owned(),
            stages: vec![stage("1", "New"), stage("4", "Closed")],
        }];
        let owners = [Owner {
            id: "77".to_owned(),
            email: "ada@acme.example".to_owned(),
        }];
        let check = |input: Value| {
            parsed(input)
                .unwrap_or_else(|error| panic!("{error}"))
                .check_tickets(&pipelines, &owners)
                .map_err(|error| error.body.message)
        };
        assert_eq!(check(json!({ "ticket_owner_id": "77" })), Ok(()));
        let wrong_stage = check(json!({ "ticket_stage": "9" })).err().unwrap_or_default();
        assert!(
            wrong_stage.contains("its stages are 1 (New), 4 (Closed)"),
            "{wrong_stage}"
        );
        let wrong_pipeline = check(json!({ "ticket_pipeline": "5" })).err().unwrap_or_default();
        assert!(
            wrong_pipeline.contains("HubSpot has 0 (Support Pipeline)"),
            "{wrong_pipeline}"
        );
        let wrong_owner = check(json!({ "ticket_owner_id": "78" }))
            .err()
            .unwrap_or_default();
        assert!(wrong_owner.contains("77 (ada@acme.example)"), "{wrong_owner}");
        assert_eq!(
            check(json!({ "ticket_creation": false, "ticket_stage": "9" })),
            Ok(()),
            "no tickets, nothing to check"
        );
    }

    #[test]
    fn the_token_is_required_and_never_shown() {
        let refused = HubSpotSecrets::parse(&json!({}))
            .err()
            .map(|error| error.body.message);
        assert!(refused.is_some_and(|message| message.starts_with("secrets.access_token is required")));
        let secrets = HubSpotSecrets::parse(&json!({ "access_token": "pat-na1-abc", "client_secret": "s3" }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("pat-na1") && !shown.contains("s3"), "{shown}");
        assert_eq!(HubSpotSecrets::parse(&secrets.to_json()), Ok(secrets));
    }
}
