//! The Salesforce connector's settings and secrets as a business configures them through the
//! admin API: parsed once, every problem named by its field path.
//!
//! The org's address lives in the settings (`instance_url`), not beside the tokens: it is where
//! every call goes, the framework reads a connector's API base from its settings, and only the
//! settings' parser knows whether this is the local stack, the one place a loopback test server
//! may stand in for Salesforce (as HubSpot's `api_url` does).

use super::ids::OrganizationId;
use super::oauth::TokenResponse;
use crate::channel::Channel;
use crate::crm::fields::{base_url_at, flag, object, optional_secret, refuse_unknown, secret, string};
use crate::crm::oauth::{self, OAuthApp};
use crate::crm::priority::Priority;
use crate::destination::Destination;
use crate::error::ApiError;
use serde_json::{Map, Value, json};
use std::fmt;

/// The REST API version every path is under.
pub const API_VERSION: &str = "v66.0";
/// Where a person approves the app, below the org's address.
pub const AUTHORIZE_PATH: &str = "/services/oauth2/authorize";
/// The token endpoint (form-encoded POSTs), below the org's address.
pub const TOKEN_PATH: &str = "/services/oauth2/token";
/// What an authorisation asks for: the REST API, the identity service (who connected, in which
/// org) and a refresh token, so that the connector keeps working after the session ends.
pub const OAUTH_SCOPES: [&str; 3] = ["api", "id", "refresh_token"];
/// A Lead must have a Company; this one is given when the business sets none.
pub const DEFAULT_LEAD_COMPANY: &str = "[not provided]";
/// A new Case starts in Salesforce's own first status.
pub const DEFAULT_CASE_STATUS: &str = "New";
/// The share of the org's daily API allowance the connector may use when the business sets
/// none: half, leaving the other half to the org's people and its other integrations.
pub const DEFAULT_API_SHARE_PERCENT: u8 = 50;
/// An access token lasts as long as the org's session timeout, which is 2 hours unless the org
/// or the app chose another value (15 minutes to 24 hours).
pub const DEFAULT_SESSION_TIMEOUT_MINUTES: u32 = 120;
const MIN_SESSION_TIMEOUT_MINUTES: u32 = 15;
const MAX_SESSION_TIMEOUT_MINUTES: u32 = 24 * 60;
/// A picklist value's API name is at most this long.
const MAX_PICKLIST_CHARS: usize = 255;
/// Lead.Company is a 255-character text field.
const MAX_COMPANY_CHARS: usize = 255;
/// A custom field's name (without its namespace and `__c`) is at most 40 characters, a
/// namespace prefix at most 15.
const MAX_FIELD_NAME_CHARS: usize = 40;
const MAX_NAMESPACE_CHARS: usize = 15;
/// The shortest outbound token taken: 32 characters of `[A-Za-z0-9_-]`, so that it cannot be
/// guessed.
pub const MIN_OUTBOUND_TOKEN_CHARS: usize = 32;

/// What one of our customers becomes in Salesforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerObject {
    Contact,
    Lead,
}

impl CustomerObject {
    /// The sObject's API name.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Contact => "Contact",
            Self::Lead => "Lead",
        }
    }

    fn setting(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Lead => "lead",
        }
    }
}

/// A custom field's API name as Salesforce makes them (`Crm_Edge_Id__c`, or with a managed
/// package's namespace `acme__Crm_Edge_Id__c`): letters, digits and single underscores, starting
/// with a letter, not ending with an underscore. Standard fields are not taken: none of them can
/// hold our ids, and naming one by mistake would overwrite what the business keeps there.
#[derive(Clone, PartialEq, Eq)]
pub struct FieldName(String);

impl FieldName {
    /// `value` of the setting `field`, checked.
    pub fn parse(field: &str, value: &Value) -> Result<Self, ApiError> {
        let name = string(field, value)?;
        Self::parse_str(name).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!(
                    "{field} must be a custom field's API name as Setup › Object Manager › Fields shows it, \
                     like Crm_Edge_Id__c: letters, digits and single underscores, starting with a letter, \
                     ending in __c"
                ),
            )
        })
    }

    fn parse_str(name: &str) -> Option<Self> {
        let stem = name.strip_suffix("__c").or_else(|| name.strip_suffix("__C"))?;
        let (namespace, field) = match stem.split_once("__") {
            Some((namespace, field)) => (Some(namespace), field),
            None => (None, stem),
        };
        let fits = namespace.is_none_or(|ns| {
            ns.len() <= MAX_NAMESPACE_CHARS
                && ns.starts_with(|c: char| c.is_ascii_alphabetic())
                && ns.chars().all(|c| c.is_ascii_alphanumeric())
        }) && field.len() <= MAX_FIELD_NAME_CHARS
            && field.starts_with(|c: char| c.is_ascii_alphabetic())
            && !field.ends_with('_')
            && !field.contains("__")
            && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        fits.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldName({})", self.0)
    }
}

/// The share of the org's daily API allowance the connector may use, 1 to 100 percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiShare(u8);

impl ApiShare {
    pub fn percent(percent: u8) -> Option<Self> {
        (1..=100).contains(&percent).then_some(Self(percent))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// How many of `allowance` calls the share is, rounded down (at least 1 of a non-zero
    /// allowance, so that a tiny org is not paused before its first call).
    pub fn of(self, allowance: u64) -> u64 {
        let share = allowance.saturating_mul(u64::from(self.0)) / 100;
        if allowance > 0 { share.max(1) } else { 0 }
    }
}

/// The connector's configuration. Construct it with [`SalesforceSettings::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceSettings {
    /// The org's address, where every call goes: its My Domain
    /// (`https://acme.my.salesforce.com`, a sandbox's `https://acme--uat.sandbox.my.salesforce.com`),
    /// replaced by what the token endpoint answers as `instance_url`.
    pub instance_url: Destination,
    /// What a customer becomes.
    pub customer_object: CustomerObject,
    /// A custom External ID field of the customer object that holds our customer's id: records
    /// are then upserted by it, so that a customer is never made twice, with or without an email.
    /// None: records are found by email.
    pub external_id_field: Option<FieldName>,
    /// The Company a Lead is given (Salesforce requires one).
    pub lead_company: String,
    /// Every message in and out becomes a completed Task on the customer's record.
    pub sync_messages: bool,
    /// The Task's Type (a picklist value of the org's: `Call`, `Email`, `Other`, ...); none
    /// leaves Salesforce's default.
    pub task_type: Option<String>,
    /// A custom Task field that receives the channel's name (`whatsapp`, `email`, ...): Task's
    /// own subtypes know only Task and Email.
    pub task_channel_field: Option<FieldName>,
    /// A custom External ID field of Task that holds our message's id: each message's Task is
    /// then upserted by it, so that a message sent twice is one Task.
    pub task_message_id_field: Option<FieldName>,
    /// Escalations open a Case.
    pub create_cases: bool,
    /// The Status a Case is opened with.
    pub case_status: String,
    /// The priority of a Case whose escalation asks for none, on our 1-to-5 scale.
    pub case_priority: Priority,
    /// Case.Priority for each level of our scale, 1 to 5.
    pub case_priorities: [String; 5],
    /// Case.Origin for each channel a conversation can be on.
    pub case_origins: CaseOrigins,
    /// The share of the org's daily API allowance the connector may use before it pauses.
    pub api_share: ApiShare,
    /// When an access token expires after it was issued, as the org's session settings say.
    pub session_timeout_minutes: u32,
    /// The org this connector is for: Outbound Messages from any other are refused. Learnt
    /// from the token endpoint's identity URL.
    pub organization_id: Option<OrganizationId>,
}

/// Case.Origin by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOrigins {
    by_channel: [String; 5],
}

impl CaseOrigins {
    pub fn of(&self, channel: Channel) -> &str {
        &self.by_channel[channel_index(channel)]
    }
}

impl Default for CaseOrigins {
    /// Salesforce's own origins are Phone, Email and Web: an email is Email, every other
    /// channel (written, on the web or an app) Web.
    fn default() -> Self {
        Self {
            by_channel: Channel::ALL.map(|channel| match channel {
                Channel::Email => "Email".to_owned(),
                _ => "Web".to_owned(),
            }),
        }
    }
}

fn channel_index(channel: Channel) -> usize {
    Channel::ALL
        .iter()
        .position(|known| *known == channel)
        .unwrap_or_default()
}

/// Case.Priority's own values are High, Medium and Low: our 1 and 2 are Low, 3 Medium, 4 and 5
/// High.
fn default_case_priorities() -> [String; 5] {
    ["Low", "Low", "Medium", "High", "High"].map(str::to_owned)
}

const SETTING_NAMES: &[&str] = &[
    "instance_url",
    "customer_object",
    "external_id_field",
    "lead_company",
    "sync_messages",
    "task_type",
    "task_channel_field",
    "task_message_id_field",
    "create_cases",
    "case_status",
    "case_priority",
    "case_priorities",
    "case_origins",
    "api_share_percent",
    "session_timeout_minutes",
    "organization_id",
];

impl SalesforceSettings {
    /// From the admin API's `settings` object; `instance_url` is required, every other setting
    /// has a default (null means the default), unknown names are refused.
    pub fn parse(input: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        let fields = object("settings", input)?;
        refuse_unknown("settings", fields, SETTING_NAMES, "Salesforce")?;
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
        let field_name = |name: &str| {
            given(name)
                .map(|value| FieldName::parse(&format!("settings.{name}"), value))
                .transpose()
        };
        let instance_url = match given("instance_url") {
            Some(value) => instance_url("settings.instance_url", value, allow_loopback)?,
            None => {
                return Err(ApiError::invalid(
                    "settings.instance_url",
                    "settings.instance_url is required: the org's My Domain address (Setup › My Domain), \
                     like https://acme.my.salesforce.com",
                ));
            }
        };
        let customer_object = match given("customer_object") {
            None => CustomerObject::Contact,
            Some(value) => match string("settings.customer_object", value)? {
                "contact" | "Contact" => CustomerObject::Contact,
                "lead" | "Lead" => CustomerObject::Lead,
                _ => {
                    return Err(ApiError::invalid(
                        "settings.customer_object",
                        "settings.customer_object must be contact or lead",
                    ));
                }
            },
        };
        let lead_company = match given("lead_company") {
            None => DEFAULT_LEAD_COMPANY.to_owned(),
            Some(value) => bounded_text("settings.lead_company", value, MAX_COMPANY_CHARS)?,
        };
        let case_priority = match given("case_priority") {
            Some(value) => Priority::parse("settings.case_priority", value)?,
            None => Priority::HIGH,
        };
        Ok(Self {
            instance_url,
            customer_object,
            external_id_field: field_name("external_id_field")?,
            lead_company,
            sync_messages: flag(fields, "sync_messages", true)?,
            task_type: given("task_type")
                .map(|value| picklist_value("settings.task_type", value))
                .transpose()?,
            task_channel_field: field_name("task_channel_field")?,
            task_message_id_field: field_name("task_message_id_field")?,
            create_cases: flag(fields, "create_cases", true)?,
            case_status: match given("case_status") {
                Some(value) => picklist_value("settings.case_status", value)?,
                None => DEFAULT_CASE_STATUS.to_owned(),
            },
            case_priority,
            case_priorities: case_priorities(given("case_priorities"))?,
            case_origins: case_origins(given("case_origins"))?,
            api_share: match given("api_share_percent") {
                None => ApiShare(DEFAULT_API_SHARE_PERCENT),
                Some(value) => value
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .and_then(ApiShare::percent)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "settings.api_share_percent",
                            "settings.api_share_percent must be a whole number of percent from 1 to 100",
                        )
                    })?,
            },
            session_timeout_minutes: match given("session_timeout_minutes") {
                None => DEFAULT_SESSION_TIMEOUT_MINUTES,
                Some(value) => value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (MIN_SESSION_TIMEOUT_MINUTES..=MAX_SESSION_TIMEOUT_MINUTES).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "settings.session_timeout_minutes",
                            format!(
                                "settings.session_timeout_minutes must be the org's session timeout in minutes, \
                                 {MIN_SESSION_TIMEOUT_MINUTES} to {MAX_SESSION_TIMEOUT_MINUTES} (Setup › Session Settings)"
                            ),
                        )
                    })?,
            },
            organization_id: match given("organization_id") {
                None => None,
                Some(value) => Some(
                    OrganizationId::parse(string("settings.organization_id", value)?).ok_or_else(|| {
                        ApiError::invalid(
                            "settings.organization_id",
                            "settings.organization_id must be a Salesforce organization id: 15 or 18 letters \
                             and digits starting 00D (Setup › Company Information)",
                        )
                    })?,
                ),
            },
        })
    }

    /// As stored and returned by the admin API, in the form [`SalesforceSettings::parse`] reads
    /// back to the same value.
    pub fn to_json(&self) -> Value {
        let priorities: Map<String, Value> = self
            .case_priorities
            .iter()
            .enumerate()
            .map(|(at, value)| ((at + 1).to_string(), json!(value)))
            .collect();
        let origins: Map<String, Value> = Channel::ALL
            .iter()
            .map(|channel| (channel.as_str().to_owned(), json!(self.case_origins.of(*channel))))
            .collect();
        json!({
            "instance_url": self.api_base(),
            "customer_object": self.customer_object.setting(),
            "external_id_field": self.external_id_field.as_ref().map(FieldName::as_str),
            "lead_company": self.lead_company,
            "sync_messages": self.sync_messages,
            "task_type": self.task_type,
            "task_channel_field": self.task_channel_field.as_ref().map(FieldName::as_str),
            "task_message_id_field": self.task_message_id_field.as_ref().map(FieldName::as_str),
            "create_cases": self.create_cases,
            "case_status": self.case_status,
            "case_priority": self.case_priority.get(),
            "case_priorities": priorities,
            "case_origins": origins,
            "api_share_percent": self.api_share.get(),
            "session_timeout_minutes": self.session_timeout_minutes,
            "organization_id": self.organization_id.as_ref().map(OrganizationId::as_str),
        })
    }

    /// The org's address, which [`super::api`]'s paths are added to, without a trailing slash.
    pub fn api_base(&self) -> String {
        self.instance_url.as_str().trim_end_matches('/').to_owned()
    }

    /// The app a person authorises the connector with, at the org's own address (My Domain
    /// login works for production orgs and sandboxes alike), challenged with PKCE. Its tokens last
    /// the org's session timeout (the answers do not say), and are refreshed before it runs out.
    pub fn oauth(&self) -> OAuthApp {
        let base = self.api_base();
        OAuthApp {
            authorize_url: format!("{base}{AUTHORIZE_PATH}"),
            token_url: format!("{base}{TOKEN_PATH}"),
            scopes: &OAUTH_SCOPES,
            pkce: true,
            token_seconds: Some(i64::from(self.session_timeout_minutes) * 60),
        }
    }

    /// Case.Priority for `priority` on our scale.
    pub fn case_priority_value(&self, priority: Priority) -> &str {
        let level = usize::from(priority.get().clamp(1, 5));
        &self.case_priorities[level - 1]
    }

    /// These settings once the token endpoint answered `tokens`: calls go to its
    /// `instance_url`, and the connector is for the org its identity URL names. Refused when
    /// that org is not the one the connector was for (someone authorised another org), or the
    /// address is not Salesforce's.
    pub fn adopted(&self, tokens: &TokenResponse, allow_loopback: bool) -> Result<Self, ApiError> {
        let instance_url = instance_url(
            "instance_url",
            &Value::from(tokens.instance_url.as_str()),
            allow_loopback,
        )
        .map_err(|error| {
            ApiError::crm_failed(format!(
                "Salesforce's token endpoint answered an instance_url that is not an org's address: {}",
                error.body.message
            ))
        })?;
        let organization = tokens.organization_id().ok_or_else(|| {
            ApiError::crm_failed("Salesforce's token endpoint answered an identity URL without an org id")
        })?;
        if let Some(known) = &self.organization_id
            && *known != organization
        {
            return Err(ApiError::invalid(
                "settings.organization_id",
                format!(
                    "this connector is for the org {known}, and the authorisation was for the org {organization}: \
                     log in to {known} to connect it, or make a new connector for the other org"
                ),
            ));
        }
        Ok(Self {
            instance_url,
            organization_id: Some(organization),
            ..self.clone()
        })
    }
}

/// The org's address: https on a Salesforce domain (`*.my.salesforce.com`, a sandbox's
/// `*.sandbox.my.salesforce.com`, an older instance's `*.salesforce.com`), without a path; in
/// the local stack only, a loopback test server. The login hosts are not an org.
fn instance_url(field: &str, value: &Value, allow_loopback: bool) -> Result<Destination, ApiError> {
    let destination = base_url_at(field, value, allow_loopback)?;
    if destination.is_loopback() {
        return Ok(destination);
    }
    let url = destination.url();
    let host = url.host_str().unwrap_or_default().trim_end_matches('.');
    let on_salesforce = host
        .strip_suffix(".salesforce.com")
        .is_some_and(|name| !name.is_empty() && !name.starts_with('.'));
    let login_host = matches!(
        host,
        "login.salesforce.com" | "test.salesforce.com" | "www.salesforce.com"
    );
    let bare = matches!(url.path(), "" | "/") && url.port().is_none();
    if url.scheme() != "https" || !on_salesforce || login_host || !bare {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must be the org's own Salesforce address, https://<My Domain>.my.salesforce.com \
                 (a sandbox's ends .sandbox.my.salesforce.com), without a path: the instance_url the token \
                 endpoint answers, not login.salesforce.com"
            ),
        ));
    }
    Ok(destination)
}

/// A picklist value's API name: one line, at most 255 characters.
fn picklist_value(field: &str, value: &Value) -> Result<String, ApiError> {
    bounded_text(field, value, MAX_PICKLIST_CHARS)
}

fn bounded_text(field: &str, value: &Value, max_chars: usize) -> Result<String, ApiError> {
    let text = string(field, value)?;
    if text.is_empty() || text.chars().count() > max_chars || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be one line of 1 to {max_chars} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// `{"1": "Low", ..., "5": "High"}`, each level given replacing the default.
fn case_priorities(input: Option<&Value>) -> Result<[String; 5], ApiError> {
    let mut priorities = default_case_priorities();
    let Some(input) = input else {
        return Ok(priorities);
    };
    let fields = object("settings.case_priorities", input)?;
    for (key, value) in fields {
        let level = key
            .parse::<usize>()
            .ok()
            .filter(|level| (1..=5).contains(level))
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("settings.case_priorities.{key}"),
                    "settings.case_priorities maps our levels 1 to 5 to Case.Priority values",
                )
            })?;
        if !value.is_null() {
            priorities[level - 1] = picklist_value(&format!("settings.case_priorities.{key}"), value)?;
        }
    }
    Ok(priorities)
}

/// `{"whatsapp": "WhatsApp", ...}`, each channel given replacing the default.
fn case_origins(input: Option<&Value>) -> Result<CaseOrigins, ApiError> {
    let mut origins = CaseOrigins::default();
    let Some(input) = input else {
        return Ok(origins);
    };
    let fields = object("settings.case_origins", input)?;
    for (key, value) in fields {
        let field = format!("settings.case_origins.{key}");
        let channel = Channel::ALL
            .into_iter()
            .find(|channel| channel.as_str() == key)
            .ok_or_else(|| {
                ApiError::invalid(
                    &field,
                    format!(
                        "{field} is not a channel; the channels are {}",
                        Channel::ALL.map(Channel::as_str).join(", ")
                    ),
                )
            })?;
        if !value.is_null() {
            origins.by_channel[channel_index(channel)] = picklist_value(&field, value)?;
        }
    }
    Ok(origins)
}

/// How the connector gets its access tokens.
#[derive(Clone, PartialEq)]
pub enum Credentials {
    /// A person authorised the app (web server flow): the refresh token gets new access tokens.
    Authorized {
        access_token: String,
        refresh_token: String,
        client_id: String,
        client_secret: String,
        /// When the access token expires (Unix milliseconds), when known.
        access_token_expires_ms: Option<i64>,
    },
    /// A server-to-server app (client credentials flow): its key and secret get access tokens
    /// for the integration user the app runs as. The access token is the last one got, if any.
    Server {
        client_id: String,
        client_secret: String,
        access_token: Option<String>,
        access_token_expires_ms: Option<i64>,
    },
}

/// The connector's credentials, and the secret segment of its Outbound Messages' address.
#[derive(Clone, PartialEq)]
pub struct SalesforceSecrets {
    pub credentials: Credentials,
    /// The last segment of the endpoint URL the org's Outbound Messages are sent to
    /// (`/api/webhooks/salesforce/{connector_id}/{outbound_token}`): Salesforce signs nothing, so
    /// the address is the secret. At least [`MIN_OUTBOUND_TOKEN_CHARS`] URL-safe characters.
    pub outbound_token: Option<String>,
}

impl fmt::Debug for SalesforceSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (flow, client_id) = match &self.credentials {
            Credentials::Authorized { client_id, .. } => ("web server", client_id),
            Credentials::Server { client_id, .. } => ("client credentials", client_id),
        };
        write!(
            f,
            "SalesforceSecrets {{ flow: {flow}, client_id: {client_id:?}, outbound_token: {}, .. }}",
            if self.outbound_token.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

const OUTBOUND_TOKEN: &str = "outbound_token";

impl SalesforceSecrets {
    /// The app's `client_id` and `client_secret` always; with them either a person's
    /// authorisation (`refresh_token` and `access_token`) or nothing more (a server-to-server
    /// app, whose tokens the connector asks for itself).
    pub fn parse(input: &Value) -> Result<Self, ApiError> {
        let fields = object("secrets", input)?;
        refuse_unknown(
            "secrets",
            fields,
            &[
                oauth::CLIENT_ID,
                oauth::CLIENT_SECRET,
                oauth::REFRESH_TOKEN,
                oauth::ACCESS_TOKEN,
                oauth::EXPIRES_MS,
                OUTBOUND_TOKEN,
            ],
            "Salesforce",
        )?;
        let app = |name: &str| {
            optional_secret(fields, name, "key")?.ok_or_else(|| {
                let field = format!("secrets.{name}");
                ApiError::invalid(
                    &field,
                    format!(
                        "{field} is required: the consumer key and secret of the org's external client app \
                         (Setup › External Client App Manager › the app › Settings › OAuth Settings)"
                    ),
                )
            })
        };
        let client_id = app(oauth::CLIENT_ID)?;
        let client_secret = app(oauth::CLIENT_SECRET)?;
        let access_token = optional_secret(fields, oauth::ACCESS_TOKEN, "token")?;
        let refresh_token = optional_secret(fields, oauth::REFRESH_TOKEN, "token")?;
        let access_token_expires_ms = match fields.get(oauth::EXPIRES_MS).filter(|v| !v.is_null()) {
            None => None,
            Some(value) => Some(value.as_i64().filter(|ms| *ms > 0).ok_or_else(|| {
                ApiError::invalid(
                    "secrets.access_token_expires_ms",
                    "secrets.access_token_expires_ms must be Unix milliseconds",
                )
            })?),
        };
        let credentials = match (refresh_token, access_token) {
            (Some(refresh_token), Some(access_token)) => Credentials::Authorized {
                access_token,
                refresh_token,
                client_id,
                client_secret,
                access_token_expires_ms,
            },
            (Some(_), None) => {
                return Err(ApiError::invalid(
                    "secrets.access_token",
                    "secrets.access_token is required with secrets.refresh_token: both come from the token \
                     endpoint when a person connects the org",
                ));
            }
            (None, access_token) => Credentials::Server {
                client_id,
                client_secret,
                access_token,
                access_token_expires_ms,
            },
        };
        let outbound_token = fields
            .get(OUTBOUND_TOKEN)
            .filter(|value| !value.is_null())
            .map(outbound_token)
            .transpose()?;
        Ok(Self {
            credentials,
            outbound_token,
        })
    }

    pub fn to_json(&self) -> Value {
        let (client_id, client_secret, access_token, refresh_token, expires) = match &self.credentials {
            Credentials::Authorized {
                access_token,
                refresh_token,
                client_id,
                client_secret,
                access_token_expires_ms,
            } => (
                client_id,
                client_secret,
                Some(access_token),
                Some(refresh_token),
                access_token_expires_ms,
            ),
            Credentials::Server {
                client_id,
                client_secret,
                access_token,
                access_token_expires_ms,
            } => (
                client_id,
                client_secret,
                access_token.as_ref(),
                None,
                access_token_expires_ms,
            ),
        };
        json!({
            oauth::CLIENT_ID: client_id,
            oauth::CLIENT_SECRET: client_secret,
            oauth::ACCESS_TOKEN: access_token,
            oauth::REFRESH_TOKEN: refresh_token,
            oauth::EXPIRES_MS: expires,
            OUTBOUND_TOKEN: self.outbound_token,
        })
    }

    /// The access token calls carry, once there is one.
    pub fn access_token(&self) -> Option<&str> {
        match &self.credentials {
            Credentials::Authorized { access_token, .. } => Some(access_token),
            Credentials::Server { access_token, .. } => access_token.as_deref(),
        }
    }

    /// What gets the connector a new access token: a person's refresh token, or a server app's
    /// own credentials (the client credentials grant), due at once while it has no token yet.
    pub fn grant(&self) -> oauth::Grant {
        match &self.credentials {
            Credentials::Authorized {
                refresh_token,
                client_id,
                client_secret,
                access_token_expires_ms,
                ..
            } => oauth::Grant {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                refresh_token: Some(refresh_token.clone()),
                expires_at_ms: *access_token_expires_ms,
            },
            Credentials::Server {
                client_id,
                client_secret,
                access_token,
                access_token_expires_ms,
            } => oauth::Grant {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                refresh_token: None,
                expires_at_ms: match access_token {
                    None => Some(0),
                    Some(_) => *access_token_expires_ms,
                },
            },
        }
    }
}

/// An outbound token: a path segment as it is (URL-safe characters only), long enough not to be
/// guessed.
fn outbound_token(value: &Value) -> Result<String, ApiError> {
    const FIELD: &str = "secrets.outbound_token";
    let token = secret(FIELD, value, "token")?;
    let url_safe = token
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !url_safe || token.chars().count() < MIN_OUTBOUND_TOKEN_CHARS {
        return Err(ApiError::invalid(
            FIELD,
            format!(
                "{FIELD} is at least {MIN_OUTBOUND_TOKEN_CHARS} characters of A-Z, a-z, 0-9, - and _ \
                 (for example the output of `openssl rand -hex 32`)"
            ),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://acme.my.salesforce.com";

    fn parsed(input: Value) -> Result<SalesforceSettings, String> {
        SalesforceSettings::parse(&input, false).map_err(|error| error.body.message)
    }

    fn with_org(mut input: Value) -> Value {
        if let Some(fields) = input.as_object_mut() {
            fields.insert("instance_url".to_owned(), json!(ORG));
        }
        input
    }

    #[test]
    fn the_orgs_address_alone_is_the_careful_defaults_and_reads_back_the_same() {
        let settings = parsed(with_org(json!({}))).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(settings.api_base(), ORG);
        assert_eq!(settings.customer_object, CustomerObject::Contact);
        assert!(settings.sync_messages && settings.create_cases);
        assert_eq!(settings.external_id_field, None);
        assert_eq!(settings.lead_company, "[not provided]");
        assert_eq!(settings.api_share.get(), 50);
        assert_eq!(settings.session_timeout_minutes, 120);
        assert_eq!(settings.case_status, "New");
        assert_eq!(settings.case_priority_value(settings.case_priority), "High");
        assert_eq!(settings.case_origins.of(Channel::Email), "Email");
        assert_eq!(settings.case_origins.of(Channel::Whatsapp), "Web");
        assert_eq!(parsed(settings.to_json()), Ok(settings));
    }

    #[test]
    fn every_setting_given_reads_back_the_same() {
        let settings = parsed(with_org(json!({
            "customer_object": "lead",
            "external_id_field": "acme__Crm_Edge_Id__c",
            "lead_company": "Walk-in",
            "sync_messages": false,
            "task_type": "Other",
            "task_channel_field": "Channel__c",
            "task_message_id_field": "Crm_Edge_Message_Id__c",
            "create_cases": false,
            "case_status": "Working",
            "case_priority": "urgent",
            "case_priorities": { "5": "Critical" },
            "case_origins": { "whatsapp": "WhatsApp" },
            "api_share_percent": 20,
            "session_timeout_minutes": 30,
            "organization_id": "00D5g000004Xyz1",
        })))
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(settings.customer_object.api_name(), "Lead");
        assert_eq!(settings.case_priority_value(Priority::URGENT), "Critical");
        assert_eq!(settings.case_priority_value(Priority::LOW), "Low");
        assert_eq!(settings.case_origins.of(Channel::Whatsapp), "WhatsApp");
        assert_eq!(settings.case_origins.of(Channel::Sms), "Web");
        assert_eq!(
            settings.organization_id.as_ref().map(OrganizationId::as_str),
            Some("00D5g000004Xyz1EAC"),
            "kept in its 18-character form"
        );
        assert_eq!(parsed(settings.to_json()), Ok(settings));
    }

    #[test]
    fn each_wrong_setting_is_named_by_its_path() {
        let cases = [
            (json!({}), "settings.instance_url is required", "no address"),
            (
                json!({ "instance_url": "https://login.salesforce.com" }),
                "settings.instance_url must be the org's own Salesforce address",
                "the login host is not an org",
            ),
            (
                json!({ "instance_url": "https://test.salesforce.com" }),
                "settings.instance_url must be the org's own",
                "nor is the sandbox login host",
            ),
            (
                json!({ "instance_url": "https://acme.my.salesforce.com.evil.example" }),
                "settings.instance_url must be the org's own",
                "a look-alike host",
            ),
            (
                json!({ "instance_url": "https://evilsalesforce.com" }),
                "settings.instance_url must be the org's own",
                "a host that only ends with the name",
            ),
            (
                json!({ "instance_url": "http://acme.my.salesforce.com" }),
                "settings.instance_url must use https",
                "plain http",
            ),
            (
                json!({ "instance_url": "https://acme.my.salesforce.com/services/data" }),
                "settings.instance_url must be the org's own",
                "a path",
            ),
            (
                json!({ "instance_url": "https://acme.my.salesforce.com:8443" }),
                "settings.instance_url must be the org's own",
                "a port",
            ),
            (
                json!({ "instance_url": "http://127.0.0.1:9" }),
                "settings.instance_url",
                "loopback outside the local stack",
            ),
            (
                with_org(json!({ "customer_object": "account" })),
                "settings.customer_object must be contact or lead",
                "an object we do not map",
            ),
            (
                with_org(json!({ "external_id_field": "Email" })),
                "settings.external_id_field must be a custom field's API name",
                "a standard field",
            ),
            (
                with_org(json!({ "external_id_field": "Crm Id__c" })),
                "settings.external_id_field must be",
                "a space",
            ),
            (
                with_org(json!({ "external_id_field": "Crm__Edge__Id__c" })),
                "settings.external_id_field must be",
                "double underscores in the name",
            ),
            (
                with_org(json!({ "external_id_field": "Crm_Id___c" })),
                "settings.external_id_field must be",
                "a name ending with an underscore",
            ),
            (
                with_org(json!({ "external_id_field": "1Crm_Id__c" })),
                "settings.external_id_field must be",
                "a name starting with a digit",
            ),
            (
                with_org(json!({ "external_id_field": "Id__c' OR Name != '" })),
                "settings.external_id_field must be",
                "SOQL in a field name",
            ),
            (
                with_org(json!({ "external_id_field": format!("{}__c", "A".repeat(41)) })),
                "settings.external_id_field must be",
                "a name longer than 40",
            ),
            (
                with_org(json!({ "lead_company": "" })),
                "settings.lead_company must be one line",
                "an empty company",
            ),
            (
                with_org(json!({ "task_type": "Call\nEmail" })),
                "settings.task_type must be one line",
                "a picklist value over two lines",
            ),
            (
                with_org(json!({ "api_share_percent": 0 })),
                "settings.api_share_percent must be a whole number of percent from 1 to 100",
                "no share",
            ),
            (
                with_org(json!({ "api_share_percent": 101 })),
                "settings.api_share_percent must be",
                "more than the whole",
            ),
            (
                with_org(json!({ "api_share_percent": 50.5 })),
                "settings.api_share_percent must be",
                "a fraction",
            ),
            (
                with_org(json!({ "session_timeout_minutes": 5 })),
                "settings.session_timeout_minutes must be",
                "shorter than Salesforce allows",
            ),
            (
                with_org(json!({ "case_priorities": { "6": "Low" } })),
                "settings.case_priorities maps our levels 1 to 5",
                "a level off our scale",
            ),
            (
                with_org(json!({ "case_origins": { "telegram": "Telegram" } })),
                "settings.case_origins.telegram is not a channel",
                "a channel we do not have",
            ),
            (
                with_org(json!({ "organization_id": "0035g000004Xyz1" })),
                "settings.organization_id must be a Salesforce organization id",
                "a contact's id",
            ),
            (
                with_org(json!({ "sync_message": true })),
                "settings.sync_message is not a Salesforce connector setting",
                "a misspelt name",
            ),
            (json!([]), "settings must be a JSON object", "not an object"),
        ];
        for (input, expected, description) in cases {
            let message = parsed(input.clone())
                .err()
                .unwrap_or_else(|| panic!("{description}: {input} was taken"));
            assert!(message.starts_with(expected), "{description}: {message}");
        }
    }

    #[test]
    fn production_sandbox_and_older_instance_addresses_are_taken() {
        for url in [
            "https://acme.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com/",
            "https://ACME.MY.SALESFORCE.COM",
            "https://na139.salesforce.com",
        ] {
            let settings =
                parsed(json!({ "instance_url": url })).unwrap_or_else(|error| panic!("{url}: {error}"));
            assert!(!settings.api_base().ends_with('/'), "{url}");
        }
    }

    #[test]
    fn only_the_local_stack_may_point_the_connector_at_a_loopback_test_server() {
        let local = SalesforceSettings::parse(&json!({ "instance_url": "http://127.0.0.1:8787" }), true)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(local.api_base(), "http://127.0.0.1:8787");
        assert_eq!(
            local.oauth().token_url,
            "http://127.0.0.1:8787/services/oauth2/token"
        );
        let refused = SalesforceSettings::parse(&json!({ "instance_url": "http://10.0.0.5" }), true);
        assert!(refused.is_err(), "a private address is no test server");
        assert!(
            SalesforceSettings::parse(&json!({ "instance_url": "http://127.0.0.1:8787" }), false).is_err()
        );
    }

    #[test]
    fn the_app_is_authorised_at_the_orgs_own_address() {
        let settings = parsed(with_org(json!({}))).unwrap_or_else(|error| panic!("{error}"));
        let app = settings.oauth();
        assert_eq!(app.authorize_url, format!("{ORG}/services/oauth2/authorize"));
        assert_eq!(app.token_url, format!("{ORG}/services/oauth2/token"));
        assert_eq!(app.scopes, ["api", "id", "refresh_token"]);
    }

    #[test]
    fn the_share_of_the_allowance_rounds_down_but_never_to_nothing() {
        let half = ApiShare::percent(50).unwrap_or_else(|| panic!("50 %"));
        assert_eq!(half.of(15_000), 7_500);
        assert_eq!(half.of(1), 1);
        assert_eq!(half.of(0), 0);
        assert_eq!(ApiShare::percent(0), None);
        assert_eq!(ApiShare::percent(101), None);
        let all = ApiShare::percent(100).unwrap_or_else(|| panic!("100 %"));
        assert_eq!(all.of(u64::MAX), u64::MAX / 100, "no overflow");
    }

    fn secrets(input: Value) -> Result<SalesforceSecrets, String> {
        SalesforceSecrets::parse(&input).map_err(|error| error.body.message)
    }

    #[test]
    fn a_persons_authorisation_refreshes_and_a_server_app_asks_with_its_own_credentials() {
        let authorized = secrets(json!({
            "client_id": "3MVG9", "client_secret": "s3", "access_token": "00D!AQ", "refresh_token": "5Aep",
            "access_token_expires_ms": 7_200_000,
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(matches!(authorized.credentials, Credentials::Authorized { .. }));
        assert!(authorized.grant().due(7_200_000 - 60_000));
        assert!(
            authorized
                .grant()
                .refresh_form()
                .starts_with("grant_type=refresh_token&")
        );
        assert_eq!(secrets(authorized.to_json()), Ok(authorized));

        let server = secrets(json!({ "client_id": "3MVG9", "client_secret": "s3" }))
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(server.access_token().is_none());
        assert!(
            server.grant().due(0),
            "a server app without a token asks for one first"
        );
        assert_eq!(
            server.grant().refresh_form(),
            "grant_type=client_credentials&client_id=3MVG9&client_secret=s3"
        );
        assert_eq!(secrets(server.to_json()), Ok(server));
    }

    #[test]
    fn wrong_secrets_are_named_and_none_is_ever_shown() {
        let cases = [
            (json!({}), "secrets.client_id is required", "no app"),
            (
                json!({ "client_id": "c" }),
                "secrets.client_secret is required",
                "no secret",
            ),
            (
                json!({ "client_id": "c", "client_secret": "s", "refresh_token": "r" }),
                "secrets.access_token is required with secrets.refresh_token",
                "half an authorisation",
            ),
            (
                json!({ "client_id": "c", "client_secret": "s", "access_token": "Bearer x" }),
                "secrets.access_token is the token alone",
                "a pasted header",
            ),
            (
                json!({ "client_id": "c", "client_secret": "s", "outbound_token": "short" }),
                "secrets.outbound_token is at least 32 characters",
                "a guessable outbound token",
            ),
            (
                json!({ "client_id": "c", "client_secret": "s", "outbound_token": format!("{}/..", "a".repeat(32)) }),
                "secrets.outbound_token is at least 32 characters of A-Z",
                "an outbound token that is not one path segment",
            ),
            (
                json!({ "client_id": "c", "client_secret": "s", "password": "p" }),
                "secrets.password is not a Salesforce connector setting",
                "a password (the username-password flow is not used)",
            ),
        ];
        for (input, expected, description) in cases {
            let message = secrets(input.clone())
                .err()
                .unwrap_or_else(|| panic!("{description}: {input} was taken"));
            assert!(message.starts_with(expected), "{description}: {message}");
        }
        let kept = secrets(json!({
            "client_id": "3MVG9", "client_secret": "sekrit", "access_token": "00D!AQtoken", "refresh_token": "5Aeprefresh",
            "outbound_token": "o".repeat(40),
        }))
        .unwrap_or_else(|error| panic!("{error}"));
        let shown = format!("{kept:?}");
        for hidden in ["sekrit", "AQtoken", "5Aeprefresh", "oooo"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
    }
}
