//! A CRM link as the admin API takes it (`POST /api/dashboard/crm-links` in the CRM links guide):
//! parsed once, every problem named by its field, so that the scheduler only ever holds a link it
//! may fetch, and the dashboard only ever shows one with its credentials masked.
//!
//! Where the guide is silent we chose:
//! - Channels are where the chatbot answers for a Facebook page: `facebook` (comments on the
//!   page's posts, as the guide means it), `messenger`, and the `instagram` and `whatsapp`
//!   accounts a page is linked to. Email and SMS are not tied to a page, so they take no link.
//!   `channel` (one string) is accepted in place of `channels`, as the guide's GET query names it.
//! - `fetch_interval_minutes` (optional) is how often the scheduler refreshes the link: 30 by
//!   default, the guide's "every 30 minutes", from 5 to 1440 (a day).
//! - `database` links are kept but never fetched (the guide's "future implementation"). `webhook`
//!   links are not fetched either: the CRM pushes their data to the link's own signed URL, and the
//!   `url` names the CRM endpoint the data comes from. Every type's `url` passes the same
//!   destination rule, so nothing stored points inside our network.
//! - An empty `api_key` or `description` is none, as dashboard forms send them. `api_key` is sent
//!   as `Authorization: Bearer <api_key>`, so a header `Authorization` beside it is refused, and so
//!   are the headers `fetch` itself sets (`Host`, `Content-Length`, …).
//! - `holds` says whose data the link is (`domain::bot::subject`): general knowledge, the same
//!   for every customer, or one record per customer, tied to the customer by a field of the
//!   record, so that the bot answers each customer from their own record only. Left out, it is
//!   unstated: data whose records name customers (`domain::links::identifiers`) is then refused
//!   until the business says whose it is, and other data is general once a run has read it all.
//! - Unknown fields are refused, so a misspelt field is not silently ignored.

use crate::bot::subject::{Holds, HoldsView};
use crate::destination::Destination;
use crate::error::ApiError;
use crate::ids::SourceId;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// What the dashboard shows in place of a credential.
pub const MASK: &str = "***";
pub const DEFAULT_FETCH_INTERVAL_MINUTES: u32 = 30;
pub const MIN_FETCH_INTERVAL_MINUTES: u32 = 5;
pub const MAX_FETCH_INTERVAL_MINUTES: u32 = 24 * 60;
pub const MAX_HEADERS: usize = 20;
const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_SECRET_CHARS: usize = 4_096;

const FIELDS: &[&str] = &[
    "page_id",
    "channels",
    "channel",
    "name",
    "url",
    "type",
    "api_key",
    "headers",
    "description",
    "is_active",
    "fetch_interval_minutes",
    "holds",
];

/// Headers the runtime's `fetch` sets itself; a link may not override them.
const MANAGED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Headers that claim who the client is or which path a request came through: a link could make
/// its fetches look as if they came from elsewhere (or from inside Cloudflare) to a CRM that
/// trusts them, so they are refused.
fn is_forwarding_header(lower: &str) -> bool {
    lower == "forwarded"
        || lower.starts_with("x-forwarded-")
        || lower.starts_with("cf-")
        || matches!(
            lower,
            "x-real-ip" | "true-client-ip" | "x-client-ip" | "x-original-forwarded-for"
        )
}

/// What kind of source a link is (`type` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Api,
    File,
    Webhook,
    Database,
}

impl LinkType {
    pub const ALL: [Self; 4] = [Self::Api, Self::File, Self::Webhook, Self::Database];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::File => "file",
            Self::Webhook => "webhook",
            Self::Database => "database",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Whether the scheduler fetches links of this type: a webhook link's data is pushed to us,
    /// and database connections are not built.
    pub fn is_fetchable(self) -> bool {
        matches!(self, Self::Api | Self::File)
    }

    /// Whether a link of this type has data to index: fetched, or pushed to its webhook.
    pub fn is_indexed(self) -> bool {
        self != Self::Database
    }
}

/// A channel a link's data answers on. Not [`crate::channel::Channel`]: here Facebook comments
/// and Messenger are different channels, each with its own links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkChannel {
    /// Comments on the page's posts.
    Facebook,
    Messenger,
    Instagram,
    Whatsapp,
}

impl LinkChannel {
    pub const ALL: [Self; 4] = [Self::Facebook, Self::Messenger, Self::Instagram, Self::Whatsapp];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Facebook => "facebook",
            Self::Messenger => "messenger",
            Self::Instagram => "instagram",
            Self::Whatsapp => "whatsapp",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|channel| channel.as_str() == name)
    }
}

impl fmt::Display for LinkChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Facebook page id: decimal digits, given as a string or a number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageId(String);

impl PageId {
    pub fn parse(value: &Value) -> Result<Self, ApiError> {
        let text = match value {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) if number.is_u64() => number.to_string(),
            _ => String::new(),
        };
        if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "page_id",
                "page_id must be a Facebook page id (digits)",
            ));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A credential: `Debug` never shows it, and only [`LinkSecret::expose`] gives it out.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSecret(String);

impl LinkSecret {
    /// A credential read back from where it was stored after [`NewLink::parse`] took it.
    pub fn stored(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A header sent with every fetch of a link, its name as the business wrote it.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: LinkSecret,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {MASK}", self.name)
    }
}

/// Whether a query parameter's name says it carries a credential: Pipedrive's `api_token`,
/// HubSpot's legacy `hapikey`, `access_token`, `key`, `token`, `secret`, `password`, a signature.
fn is_credential_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "key" | "token" | "sig" | "signature" | "auth" | "code"
    ) || [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "signature",
        "credential",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// A URL as views, logs, the audit log and error messages show it: the values of query parameters
/// that carry credentials masked (`?api_token=***`), so that a link whose URL holds its key never
/// shows it. What is not a URL is shown without its query.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.split('?').next().unwrap_or_default().to_owned();
    };
    if parsed.query().is_none() {
        return parsed.into();
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| {
            let value = if is_credential_parameter(&name) {
                MASK.to_owned()
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    String::from(parsed).replace("%2A%2A%2A", MASK)
}

/// A URL's credentials apart from it: the URL with the values of its credential query
/// parameters masked (as [`redact_url`] shows it, what is stored and backed up), and those
/// values in the order they appear, name and value (what is sealed with the link's secrets).
pub fn split_credentials(url: &str) -> (String, Vec<(String, String)>) {
    let Ok(parsed) = url::Url::parse(url) else {
        return (url.to_owned(), Vec::new());
    };
    let credentials: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(name, value)| is_credential_parameter(name) && value != MASK)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if credentials.is_empty() {
        return (url.to_owned(), credentials);
    }
    (redact_url(url), credentials)
}

/// The URL `masked` (as [`split_credentials`] stored it) with its credentials put back, each
/// masked parameter taking the next value of its name.
pub fn join_credentials(masked: &str, credentials: &[(String, String)]) -> String {
    if credentials.is_empty() {
        return masked.to_owned();
    }
    let Ok(mut parsed) = url::Url::parse(masked) else {
        return masked.to_owned();
    };
    let mut left: Vec<&(String, String)> = credentials.iter().collect();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| {
            let value = match left.iter().position(|(known, _)| value == MASK && *known == name) {
                Some(at) => left.remove(at).1.clone(),
                None => value.into_owned(),
            };
            (name.into_owned(), value)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.into()
}

/// One link's configuration, the same for every channel it is added to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub url: Destination,
    pub link_type: LinkType,
    pub api_key: Option<LinkSecret>,
    pub headers: Vec<Header>,
    pub description: Option<String>,
    pub is_active: bool,
    pub fetch_interval_minutes: u32,
    /// Whose data it is: general knowledge, or customers' records.
    pub holds: Holds,
}

impl Link {
    /// Whether the scheduler fetches this link now: active, and of a fetchable type.
    pub fn is_due_for_fetching(&self) -> bool {
        self.is_active && self.link_type.is_fetchable()
    }

    /// The headers of a fetch: the configured ones, then `Authorization: Bearer <api_key>`.
    pub fn request_headers(&self) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|header| (header.name.clone(), header.value.expose().to_owned()))
            .collect();
        if let Some(key) = &self.api_key {
            headers.push(("Authorization".to_owned(), format!("Bearer {}", key.expose())));
        }
        headers
    }

    /// The link as the dashboard shows it (the guide's GET shape): header names with every value
    /// as [`MASK`] (a header's value is a credential more often than its name says), the API key
    /// as [`MASK`], and credential query parameters of the URL masked ([`redact_url`]).
    pub fn view(&self, channels: &[LinkChannel]) -> LinkView {
        LinkView {
            name: self.name.clone(),
            url: redact_url(self.url.as_str()),
            link_type: self.link_type.as_str(),
            channels: channels.iter().map(|channel| channel.as_str()).collect(),
            api_key: self.api_key.as_ref().map(|_| MASK),
            headers: self
                .headers
                .iter()
                .map(|header| (header.name.clone(), MASK))
                .collect(),
            description: self.description.clone(),
            is_active: self.is_active,
            fetch_interval_minutes: self.fetch_interval_minutes,
            fetchable: self.link_type.is_fetchable(),
            holds: self.holds.view(),
        }
    }
}

/// A link's settings as the dashboard shows them: credentials masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LinkView {
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["api", "file", "webhook", "database"])))]
    pub link_type: &'static str,
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("items" = { "type": "string", "enum": ["facebook", "messenger", "instagram", "whatsapp"] }))
    )]
    pub channels: Vec<&'static str>,
    /// *** when set: credentials are write-only.
    pub api_key: Option<&'static str>,
    pub headers: std::collections::BTreeMap<String, &'static str>,
    pub description: Option<String>,
    pub is_active: bool,
    pub fetch_interval_minutes: u32,
    pub fetchable: bool,
    /// Whose data the link is: `{"type": "general"}`, or `{"type": "customers", "field", "key"}`.
    pub holds: HoldsView,
}

/// The body of `POST /api/dashboard/crm-links`: one link for one or more channels of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub page_id: PageId,
    /// At least one, each once.
    pub channels: Vec<LinkChannel>,
    pub link: Link,
}

/// A link as stored: one per page and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelLink {
    pub page_id: PageId,
    pub channel: LinkChannel,
    pub link: Link,
}

impl NewLink {
    /// `allow_loopback` is the switch every caller of [`Destination::parse`] passes: true only in
    /// the local stack.
    pub fn parse(input: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        let fields = crate::json::members(input, FIELDS, "CRM link")?;
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
        let required =
            |name: &str| given(name).ok_or_else(|| ApiError::invalid(name, format!("{name} is required")));
        let page_id = PageId::parse(required("page_id")?)?;
        let channels = channels(given("channels"), given("channel"))?;
        let name = text("name", required("name")?, MAX_NAME_CHARS)?
            .ok_or_else(|| ApiError::invalid("name", "name must not be empty"))?;
        let url = Destination::parse("url", string("url", required("url")?)?, allow_loopback)
            .map_err(|message| ApiError::invalid("url", message))?;
        let link_type = match given("type") {
            None => LinkType::Api,
            Some(value) => LinkType::parse(string("type", value)?)
                .ok_or_else(|| ApiError::invalid("type", "type must be api, file, webhook or database"))?,
        };
        let api_key = given("api_key")
            .map(|value| secret("api_key", value))
            .transpose()?
            .flatten();
        let headers = headers(given("headers"), api_key.is_some())?;
        let description = given("description")
            .map(|value| text("description", value, MAX_DESCRIPTION_CHARS))
            .transpose()?
            .flatten();
        let is_active = match required("is_active")? {
            Value::Bool(active) => *active,
            _ => return Err(ApiError::invalid("is_active", "is_active must be true or false")),
        };
        let fetch_interval_minutes = given("fetch_interval_minutes")
            .map(interval)
            .transpose()?
            .unwrap_or(DEFAULT_FETCH_INTERVAL_MINUTES);
        let holds = Holds::parse(given("holds"))?;
        Ok(Self {
            page_id,
            channels,
            link: Link {
                name,
                url,
                link_type,
                api_key,
                headers,
                description,
                is_active,
                fetch_interval_minutes,
                holds,
            },
        })
    }

    /// One stored link per channel, in the order the channels were given.
    pub fn expand(&self) -> Vec<ChannelLink> {
        self.channels
            .iter()
            .map(|channel| ChannelLink {
                page_id: self.page_id.clone(),
                channel: *channel,
                link: self.link.clone(),
            })
            .collect()
    }
}

/// The body of `PUT /api/dashboard/crm-links/status`, `DELETE /api/dashboard/crm-links` and
/// `POST /api/dashboard/crm-links/refresh`: which link of the page (by its id, or by its URL as
/// stored), on which channels (`None`: every channel it is on), and for the status, whether
/// active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub page_id: PageId,
    pub link: Addressed,
    pub channels: Option<Vec<LinkChannel>>,
    pub is_active: Option<bool>,
}

/// How a target names its link. The id is what views show and never changes; the URL is the one
/// stored, credentials and all, so a view's masked URL (`?api_token=***`) names no link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressed {
    Id(SourceId),
    Url(String),
}

impl Target {
    /// `needs_active`: the status change's `is_active` is required; elsewhere it is refused.
    pub fn parse(input: &Value, needs_active: bool) -> Result<Self, ApiError> {
        let fields = input
            .as_object()
            .ok_or_else(|| ApiError::invalid("body", "the body must be a JSON object"))?;
        let known: &[&str] = if needs_active {
            &["page_id", "id", "url", "channels", "channel", "is_active"]
        } else {
            &["page_id", "id", "url", "channels", "channel"]
        };
        if let Some(name) = fields.keys().find(|name| !known.contains(&name.as_str())) {
            return Err(ApiError::invalid(
                name.as_str(),
                format!("{name} is not a field here; the fields are {}", known.join(", ")),
            ));
        }
        let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
        let required =
            |name: &str| given(name).ok_or_else(|| ApiError::invalid(name, format!("{name} is required")));
        let page_id = PageId::parse(required("page_id")?)?;
        let link = match (given("id"), given("url")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "url",
                    "give the link's id or its url, not both",
                ));
            }
            (None, None) => return Err(ApiError::invalid("id", "id (the link's id) or url is required")),
            (Some(id), None) => Addressed::Id(
                SourceId::parse(string("id", id)?)
                    .ok_or_else(|| ApiError::invalid("id", "id must be a link's id, as its view shows it"))?,
            ),
            (None, Some(url)) => {
                let url = string("url", url)?.to_owned();
                if url.is_empty() {
                    return Err(ApiError::invalid("url", "url must not be empty"));
                }
                Addressed::Url(url)
            }
        };
        let channels = match (given("channels"), given("channel")) {
            (None, None) => None,
            (list, single) => Some(channels(list, single)?),
        };
        let is_active = if needs_active {
            match required("is_active")? {
                Value::Bool(active) => Some(*active),
                _ => return Err(ApiError::invalid("is_active", "is_active must be true or false")),
            }
        } else {
            None
        };
        Ok(Self {
            page_id,
            link,
            channels,
            is_active,
        })
    }
}

pub(crate) fn string<'a>(field: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .map(str::trim)
        .ok_or_else(|| ApiError::invalid(field, format!("{field} must be a string")))
}

/// Trimmed text on one line, at most `max_chars`; empty is none.
pub(crate) fn text(field: &str, value: &Value, max_chars: usize) -> Result<Option<String>, ApiError> {
    let text = string(field, value)?;
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, format!("{field} must be on one line")));
    }
    if text.chars().count() > max_chars {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

pub(crate) fn secret(field: &str, value: &Value) -> Result<Option<LinkSecret>, ApiError> {
    let Some(text) = text(field, value, MAX_SECRET_CHARS)? else {
        return Ok(None);
    };
    if text.len() >= 7 && text.is_char_boundary(7) && text[..7].eq_ignore_ascii_case("bearer ") {
        return Err(ApiError::invalid(
            field,
            format!("{field} is the key alone: it is sent as \"Authorization: Bearer <{field}>\""),
        ));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain spaces"),
        ));
    }
    Ok(Some(LinkSecret(text)))
}

pub(crate) fn channels(list: Option<&Value>, single: Option<&Value>) -> Result<Vec<LinkChannel>, ApiError> {
    let known = || LinkChannel::ALL.map(LinkChannel::as_str).join(", ");
    let items: Vec<(String, &Value)> = match (list, single) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("channel", "give channels or channel, not both"));
        }
        (None, None) => return Err(ApiError::invalid("channels", "channels is required")),
        (None, Some(value)) => vec![("channel".to_owned(), value)],
        (Some(Value::Array(values)), None) => values
            .iter()
            .enumerate()
            .map(|(index, value)| (format!("channels[{index}]"), value))
            .collect(),
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "channels",
                "channels must be an array of channel names",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "channels",
            format!("channels must name at least one of {}", known()),
        ));
    }
    let mut channels = Vec::with_capacity(items.len());
    for (field, value) in items {
        let channel = LinkChannel::parse(string(&field, value)?).ok_or_else(|| {
            ApiError::invalid(field.as_str(), format!("{field} must be one of {}", known()))
        })?;
        if channels.contains(&channel) {
            return Err(ApiError::invalid(
                field.as_str(),
                format!("{field}: {channel} is given twice"),
            ));
        }
        channels.push(channel);
    }
    Ok(channels)
}

pub(crate) fn headers(value: Option<&Value>, has_api_key: bool) -> Result<Vec<Header>, ApiError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let entries = value
        .as_object()
        .ok_or_else(|| ApiError::invalid("headers", "headers must be an object of header names to values"))?;
    if entries.len() > MAX_HEADERS {
        return Err(ApiError::invalid(
            "headers",
            format!("headers may hold at most {MAX_HEADERS} headers"),
        ));
    }
    let mut headers: Vec<Header> = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let field = format!("headers.{name}");
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || name.len() > 100 || !name.chars().all(is_token) {
            return Err(ApiError::invalid(
                field.as_str(),
                format!("{field} is not a valid header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if MANAGED_HEADERS.contains(&lower.as_str()) {
            return Err(ApiError::invalid(
                field.as_str(),
                format!("{field} is set by the fetch itself"),
            ));
        }
        if is_forwarding_header(&lower) {
            return Err(ApiError::invalid(
                field.as_str(),
                format!("{field} would say where the request comes from; it is not sent"),
            ));
        }
        if has_api_key && lower == "authorization" {
            return Err(ApiError::invalid(
                field.as_str(),
                "api_key is sent as Authorization: Bearer; give api_key or an Authorization header, not both",
            ));
        }
        if headers
            .iter()
            .any(|header| header.name.eq_ignore_ascii_case(name))
        {
            return Err(ApiError::invalid(
                field.as_str(),
                format!("{field} is given twice"),
            ));
        }
        let value = text(&field, value, MAX_SECRET_CHARS)?
            .ok_or_else(|| ApiError::invalid(field.as_str(), format!("{field} must not be empty")))?;
        headers.push(Header {
            name: name.clone(),
            value: LinkSecret(value),
        });
    }
    Ok(headers)
}

pub(crate) fn interval(value: &Value) -> Result<u32, ApiError> {
    const FIELD: &str = "fetch_interval_minutes";
    value
        .as_u64()
        .filter(|minutes| {
            (u64::from(MIN_FETCH_INTERVAL_MINUTES)..=u64::from(MAX_FETCH_INTERVAL_MINUTES)).contains(minutes)
        })
        .and_then(|minutes| u32::try_from(minutes).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                FIELD,
                format!(
                    "{FIELD} must be a whole number of minutes from {MIN_FETCH_INTERVAL_MINUTES} to {MAX_FETCH_INTERVAL_MINUTES}"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guide_body() -> Value {
        json!({
            "page_id": "123456789",
            "channels": ["facebook", "messenger"],
            "name": "Customer Database",
            "url": "https://api.crm.com/customers",
            "type": "api",
            "api_key": "your-api-key",
            "headers": { "X-Custom-Header": "value" },
            "description": "Main customer database",
            "is_active": true
        })
    }

    fn with(changes: Value) -> Value {
        let mut body = guide_body();
        if let (Some(body), Some(changes)) = (body.as_object_mut(), changes.as_object()) {
            for (name, value) in changes {
                body.insert(name.clone(), value.clone());
            }
        }
        body
    }

    fn parse(body: &Value) -> NewLink {
        NewLink::parse(body, false).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    #[test]
    fn the_guides_body_is_one_link_for_two_channels_expanded_into_two_entries() {
        let new = parse(&guide_body());
        assert_eq!(new.page_id.as_str(), "123456789");
        assert_eq!(new.link.link_type, LinkType::Api);
        assert_eq!(new.link.fetch_interval_minutes, DEFAULT_FETCH_INTERVAL_MINUTES);
        assert!(new.link.is_due_for_fetching());
        let entries = new.expand();
        let channels: Vec<LinkChannel> = entries.iter().map(|entry| entry.channel).collect();
        assert_eq!(channels, [LinkChannel::Facebook, LinkChannel::Messenger]);
        assert!(
            entries
                .iter()
                .all(|entry| entry.link == new.link && entry.page_id == new.page_id)
        );
    }

    #[test]
    fn the_dashboard_sees_header_names_with_every_value_masked() {
        let body = with(json!({ "headers": {
            "X-Custom-Header": "value", "X-API-Key": "k1", "x-shopify-access-token": "t1",
            "Cookie": "c=1", "X-Client-Secret": "s1", "Accept": "application/json"
        }}));
        let new = parse(&body);
        let shown = serde_json::to_value(new.link.view(&new.channels)).unwrap_or_default();
        assert_eq!(shown["api_key"], "***");
        assert_eq!(shown["channels"], json!(["facebook", "messenger"]));
        assert_eq!(
            shown["headers"],
            json!({ "X-Custom-Header": "***", "X-API-Key": "***", "x-shopify-access-token": "***",
                    "Cookie": "***", "X-Client-Secret": "***", "Accept": "***" })
        );
        let debug = format!("{new:?}");
        for secret in ["your-api-key", "k1", "t1", "c=1", "s1"] {
            assert!(!debug.contains(secret), "{secret} is not in Debug: {debug}");
        }
        let without_key = parse(&with(json!({ "api_key": "" })));
        assert_eq!(without_key.link.view(&[]).api_key, None);
    }

    #[test]
    fn credentials_in_a_urls_query_are_masked_wherever_it_is_shown() {
        assert_eq!(
            redact_url("https://api.pipedrive.test/v1/persons?api_token=abc123&limit=100"),
            "https://api.pipedrive.test/v1/persons?api_token=***&limit=100"
        );
        assert_eq!(
            redact_url("https://api.hubapi.test/contacts/v1/lists?hapikey=k&count=5&access_token=t"),
            "https://api.hubapi.test/contacts/v1/lists?hapikey=***&count=5&access_token=***"
        );
        assert_eq!(redact_url("https://x.test/data.json"), "https://x.test/data.json");
        assert_eq!(redact_url("not a url?token=1"), "not a url");
    }

    #[test]
    fn forwarding_headers_are_refused() {
        for name in [
            "X-Forwarded-For",
            "Forwarded",
            "CF-Connecting-IP",
            "True-Client-IP",
            "X-Real-IP",
        ] {
            let body = with(json!({ "headers": { name: "203.0.113.9" } }));
            let field = NewLink::parse(&body, false).err().and_then(|e| e.body.field);
            assert_eq!(field, Some(format!("headers.{name}")), "{name}");
        }
    }

    #[test]
    fn the_api_key_is_sent_as_a_bearer_token_after_the_headers() {
        let new = parse(&guide_body());
        assert_eq!(
            new.link.request_headers(),
            [
                ("X-Custom-Header".to_owned(), "value".to_owned()),
                ("Authorization".to_owned(), "Bearer your-api-key".to_owned()),
            ]
        );
    }

    #[test]
    fn a_single_channel_other_types_and_an_interval_are_read() {
        let body = json!({ "page_id": 42, "channel": "Instagram", "name": "Prices",
            "url": "https://files.example.com/prices.json", "type": "FILE", "is_active": false,
            "fetch_interval_minutes": 1440 });
        let new = parse(&body);
        assert_eq!(new.channels, [LinkChannel::Instagram]);
        assert_eq!(
            (new.link.link_type, new.link.fetch_interval_minutes),
            (LinkType::File, 1440)
        );
        assert!(!new.link.is_due_for_fetching(), "inactive");
        let database = parse(&with(json!({ "type": "database" })));
        assert!(!database.link.link_type.is_fetchable() && !database.link.is_due_for_fetching());
        assert!(!database.link.view(&[]).fetchable);
        assert!(
            !parse(&with(json!({ "type": "webhook" })))
                .link
                .is_due_for_fetching(),
            "a webhook link's data is pushed, not fetched"
        );
    }

    #[test]
    fn bad_bodies_are_refused_naming_the_field() {
        // Each row changes the guide's body; null is the same as leaving the field out.
        let cases = [
            (r#"{"page_id": null}"#, "page_id"),
            (r#"{"page_id": "abc"}"#, "page_id"),
            (r#"{"channels": null}"#, "channels"),
            (r#"{"channels": []}"#, "channels"),
            (r#"{"channels": "facebook"}"#, "channels"),
            (r#"{"channels": ["facebook", "email"]}"#, "channels[1]"),
            (r#"{"channels": ["facebook", "Facebook"]}"#, "channels[1]"),
            (r#"{"channel": "facebook"}"#, "channel"),
            (r#"{"name": null}"#, "name"),
            (r#"{"name": "  "}"#, "name"),
            (r#"{"name": "a\nb"}"#, "name"),
            (r#"{"url": null}"#, "url"),
            (r#"{"url": "http://api.crm.com/x"}"#, "url"),
            (r#"{"url": "https://169.254.169.254/latest"}"#, "url"),
            (r#"{"url": "https://10.0.0.5/crm"}"#, "url"),
            (r#"{"url": "postgres://db.example.com/crm"}"#, "url"),
            (r#"{"type": "graphql"}"#, "type"),
            (r#"{"api_key": "Bearer abc"}"#, "api_key"),
            (r#"{"api_key": "a b"}"#, "api_key"),
            (r#"{"api_key": 7}"#, "api_key"),
            (r#"{"headers": ["X-A"]}"#, "headers"),
            (r#"{"headers": {"X A": "v"}}"#, "headers.X A"),
            (r#"{"headers": {"X-A": "v\r\nX-B: w"}}"#, "headers.X-A"),
            (r#"{"headers": {"X-A": ""}}"#, "headers.X-A"),
            (r#"{"headers": {"Host": "evil.example"}}"#, "headers.Host"),
            (
                r#"{"headers": {"authorization": "Basic x"}}"#,
                "headers.authorization",
            ),
            (r#"{"headers": {"X-A": "1", "x-a": "2"}}"#, "headers.x-a"),
            (r#"{"is_active": null}"#, "is_active"),
            (r#"{"is_active": "yes"}"#, "is_active"),
            (r#"{"fetch_interval_minutes": 4}"#, "fetch_interval_minutes"),
            (r#"{"fetch_interval_minutes": 1441}"#, "fetch_interval_minutes"),
            (r#"{"fetch_interval_minutes": 30.5}"#, "fetch_interval_minutes"),
            (r#"{"status": "active"}"#, "status"),
            (r#"{"holds": "customers"}"#, "holds"),
            (r#"{"holds": {"type": "people"}}"#, "holds.type"),
            (
                r#"{"holds": {"type": "customers", "key": "email"}}"#,
                "holds.field",
            ),
            (
                r#"{"holds": {"type": "customers", "field": "email", "key": "name"}}"#,
                "holds.key",
            ),
            (r#"{"holds": {"type": "general", "key": "email"}}"#, "holds.key"),
        ];
        for (changes, field) in cases {
            let changes: Value = serde_json::from_str(changes).unwrap_or_else(|e| panic!("{changes}: {e}"));
            let error = NewLink::parse(&with(changes.clone()), false).err();
            assert_eq!(
                error.as_ref().and_then(|e| e.body.field.as_deref()),
                Some(field),
                "{changes}: {error:?}"
            );
        }
        let long_name = NewLink::parse(&with(json!({ "name": "x".repeat(101) })), false).err();
        assert_eq!(long_name.and_then(|e| e.body.field), Some("name".to_owned()));
        let not_an_object = NewLink::parse(&json!([]), false).err();
        assert_eq!(not_an_object.and_then(|e| e.body.field), Some("body".to_owned()));
    }

    #[test]
    fn the_local_stack_may_link_to_loopback_as_other_destinations_may() {
        let body = with(json!({ "url": "http://127.0.0.1:9000/customers" }));
        assert!(NewLink::parse(&body, true).is_ok());
        assert!(NewLink::parse(&body, false).is_err());
        let authorization_alone = with(json!({ "api_key": null, "headers": { "Authorization": "Basic x" } }));
        assert!(NewLink::parse(&authorization_alone, false).is_ok());
    }

    #[test]
    fn a_target_names_a_page_url_and_maybe_channels() {
        let target = Target::parse(
            &json!({ "page_id": "123456789", "url": "https://api.crm.com/customers", "channels": ["facebook"], "is_active": false }),
            true,
        );
        let target = target.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.channels, Some(vec![LinkChannel::Facebook]));
        assert_eq!(target.is_active, Some(false));
        assert_eq!(
            target.link,
            Addressed::Url("https://api.crm.com/customers".to_owned())
        );
        let all = Target::parse(&json!({ "page_id": "1", "url": "https://x.test/a" }), false);
        assert_eq!(all.map(|t| t.channels).ok(), Some(None));
        let id = "0b7c7b5e-4f1e-4d0a-9a57-0f4a7d1c2e3f";
        let by_id = Target::parse(&json!({ "page_id": "1", "id": id }), false);
        assert_eq!(
            by_id.map(|t| t.link).ok(),
            SourceId::parse(id).map(Addressed::Id),
            "a link named by its id, as its view shows it"
        );
        for (body, needs_active, field) in [
            (
                json!({ "page_id": "1", "url": "https://x.test/a" }),
                true,
                "is_active",
            ),
            (
                json!({ "page_id": "1", "url": "https://x.test/a", "is_active": true }),
                false,
                "is_active",
            ),
            (json!({ "page_id": "1" }), false, "id"),
            (
                json!({ "page_id": "1", "id": "0b7c7b5e-4f1e-4d0a-9a57-0f4a7d1c2e3f", "url": "https://x.test/a" }),
                false,
                "url",
            ),
            (json!({ "page_id": "1", "id": "https://x.test/a" }), false, "id"),
            (json!({ "page_id": "1", "id": 7 }), false, "id"),
            (json!({ "url": "https://x.test/a" }), false, "page_id"),
            (
                json!({ "page_id": "1", "url": "https://x.test/a", "channels": [] }),
                false,
                "channels",
            ),
            (
                json!({ "page_id": "1", "url": "https://x.test/a", "is_active": "yes" }),
                true,
                "is_active",
            ),
        ] {
            let error = Target::parse(&body, needs_active).err();
            assert_eq!(error.and_then(|e| e.body.field).as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn a_urls_credentials_are_kept_apart_from_it_and_put_back_as_they_were() {
        let url = "https://crm.example.com/api/people?page=2&api_token=pd-s3cret&limit=50&hapikey=hk-1";
        let (masked, credentials) = split_credentials(url);
        assert_eq!(
            masked,
            "https://crm.example.com/api/people?page=2&api_token=***&limit=50&hapikey=***"
        );
        assert_eq!(
            credentials,
            [
                ("api_token".to_owned(), "pd-s3cret".to_owned()),
                ("hapikey".to_owned(), "hk-1".to_owned())
            ]
        );
        assert_eq!(join_credentials(&masked, &credentials), url);
        let plain = "https://crm.example.com/api/people?page=2";
        assert_eq!(split_credentials(plain), (plain.to_owned(), Vec::new()));
        assert_eq!(join_credentials(plain, &[]), plain);
    }

    #[test]
    fn a_link_says_whose_data_it_holds_or_leaves_it_unstated() {
        let unstated = parse(&guide_body());
        assert_eq!(unstated.link.holds, Holds::Unstated);
        assert_eq!(
            serde_json::to_value(unstated.link.view(&unstated.channels))
                .ok()
                .map(|view| view["holds"].clone()),
            Some(json!({ "type": "unstated" }))
        );
        let general = parse(&with(json!({ "holds": { "type": "general" } })));
        assert_eq!(general.link.holds, Holds::General);
        let customers = parse(&with(
            json!({ "holds": { "type": "customers", "field": "contact.email", "key": "email" } }),
        ));
        assert_eq!(
            customers.link.holds,
            Holds::Customers {
                field: "contact.email".to_owned(),
                kind: crate::bot::subject::KeyKind::Email
            }
        );
        assert_eq!(
            serde_json::to_value(customers.link.view(&customers.channels))
                .ok()
                .map(|view| view["holds"].clone()),
            Some(json!({ "type": "customers", "field": "contact.email", "key": "email" }))
        );
    }
}
