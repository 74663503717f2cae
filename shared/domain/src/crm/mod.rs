//! CRM connectors, the pure part: which CRMs exist, what work a connector does and how it ends,
//! the request budget, the retry policy, and what a debug log may show.

use serde_json::Value;

pub mod analytics;
pub mod budget;
pub mod chatwoot;
pub mod config;
pub mod fields;
pub mod krayin;
pub mod kustomer;
pub mod priority;
pub mod redact;
pub mod request;
pub mod retry;
pub mod settle;
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
}

impl ConnectionTest {
    pub fn passed(user: Value) -> Self {
        Self {
            ok: true,
            user: Some(user),
            status: None,
            reason: None,
        }
    }

    pub fn failed(status: Option<u16>, reason: String) -> Self {
        Self {
            ok: false,
            user: None,
            status,
            reason: Some(reason),
        }
    }
}
