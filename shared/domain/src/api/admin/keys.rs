//! A business's API keys, and their usage.

#[cfg(feature = "openapi")]
use super::MAX_NAME_CHARS;
use crate::ids::{ApiKeyId, BusinessId};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KeyIn {
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
}

/// A key as listed: by its prefix, never the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub business_id: BusinessId,
    pub name: Option<String>,
    pub prefix: String,
    /// RFC 3339 time.
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// RFC 3339 time of the key's latest request (counted off the request path: up to a minute
    /// behind); null until it is used.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// The address that request came from.
    #[serde(default)]
    pub last_used_address: Option<String>,
    /// The endpoint it was made to, as usage names it (`POST /api-customers-sync`).
    #[serde(default)]
    pub last_used_endpoint: Option<String>,
}

/// A key just issued: the key itself is in this answer only.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct IssuedApiKey {
    #[serde(flatten)]
    pub listed: ApiKey,
    /// The key in clear, shown only here.
    pub key: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ApiKeysOut {
    pub api_keys: Vec<ApiKey>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
pub(super) struct UsageParameters {
    /// `hour`: the last 48 hours, by the hour; `day` (the default): the last 30 days, by the
    /// day (UTC).
    by: Option<String>,
    /// One key's usage only (its id); all the business's keys when absent.
    key_id: Option<ApiKeyId>,
}

/// Requests by what they were answered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UsageCounts {
    pub requests: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Refused by the key's rate limit (429): counted in status_4xx too.
    pub rate_limited: u64,
}

impl UsageCounts {
    /// Both counts added up.
    pub fn plus(self, other: &UsageCounts) -> UsageCounts {
        UsageCounts {
            requests: self.requests + other.requests,
            status_2xx: self.status_2xx + other.status_2xx,
            status_3xx: self.status_3xx + other.status_3xx,
            status_4xx: self.status_4xx + other.status_4xx,
            status_5xx: self.status_5xx + other.status_5xx,
            rate_limited: self.rate_limited + other.rate_limited,
        }
    }
}

/// One hour's or day's requests.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UsagePoint {
    /// RFC 3339 start of the hour or day.
    pub at: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// One endpoint's requests over the period read.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EndpointUsage {
    /// The method and the route that served it (`POST /api-customers-sync`; a route with an id
    /// in it by its prefix, `DELETE /api-keys/*`).
    pub endpoint: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// One key's requests over the period read.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KeyUsage {
    pub key_id: ApiKeyId,
    pub prefix: String,
    pub name: Option<String>,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// API usage over the last 48 hours or 30 days.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UsageOut {
    /// `hour` or `day`.
    pub by: String,
    /// RFC 3339 start of the first period.
    pub from: String,
    /// The key read, or null for all the business's keys.
    pub key_id: Option<ApiKeyId>,
    pub totals: UsageCounts,
    /// Every period from `from` on, oldest first (those without requests at zero).
    pub series: Vec<UsagePoint>,
    /// Endpoints with requests, the most first.
    pub endpoints: Vec<EndpointUsage>,
    /// Keys with requests, the most first.
    pub keys: Vec<KeyUsage>,
}
