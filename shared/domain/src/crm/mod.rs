//! CRM connectors, the pure part: which CRMs exist, what work a connector does and how it ends,
//! the request budget, the retry policy, and what a debug log may show.

use crate::time::Timestamp;
use serde_json::Value;

pub mod analytics;
pub mod budget;
pub mod chatwoot;
pub mod config;
pub mod fields;
pub mod health;
pub mod hubspot;
pub mod krayin;
pub mod kustomer;
pub mod oauth;
pub mod priority;
pub mod redact;
pub mod registry;
pub mod request;
pub mod retry;
pub mod rollout;
pub mod salesforce;
pub mod settle;
pub mod spec;
#[cfg(test)]
pub(crate) mod test_support;
pub mod work;

/// What the connection test found: who the credentials belong to, or why they do not work and
/// what to do.
#[derive(Debug, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectionTest {
    pub ok: bool,
    /// Who the credentials belong to, as the CRM says.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "Option<serde_json::Map<String, Value>>")
    )]
    pub user: Option<Value>,
    /// The CRM's status when it refused, or none when it could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which of the setup guide's permissions the key holds, and which of those the configured
    /// work needs that it lacks (Kustomer; absent for a CRM whose keys carry no roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// When the API key stops working; absent when the CRM reports no expiry (a key that never
    /// expires, one whose expiry it does not show, or a CRM without the notion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Something to act on before it breaks the connection (a key expiring soon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The setup guide's permissions, as the connection test found them on the key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Permissions {
    /// The guide's names of the permissions the key holds (`customers:read`, ...).
    pub held: Vec<String>,
    /// The permissions the configured work needs and the key lacks, each with the CRM roles that
    /// grant it.
    pub missing: Vec<MissingPermission>,
    /// The CRM roles the key holds that no feature here uses (the guide's "least privilege").
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct MissingPermission {
    /// The guide's name (`notes:write`).
    pub permission: String,
    /// The CRM's roles a key needs for it (`org.permission.note.create`).
    pub roles: Vec<String>,
}

impl ConnectionTest {
    pub fn passed(user: Value) -> Self {
        Self {
            ok: true,
            user: Some(user),
            status: None,
            reason: None,
            permissions: None,
            expires_at: None,
            warning: None,
        }
    }

    pub fn failed(status: Option<u16>, reason: String) -> Self {
        Self {
            ok: false,
            user: None,
            status,
            reason: Some(reason),
            permissions: None,
            expires_at: None,
            warning: None,
        }
    }
}
