//! The CRMs a connector can be for, and what each one is to the framework: its pure part here (a
//! [`Crm`]: its name, the settings and secrets it takes and how they are checked, the budget a new
//! connector starts with, where its webhooks arrive, how its errors read), its runtime part in
//! `edge::crm` (`Connected`: the calls), each implemented in the CRM's own folder.
//!
//! A CRM is registered here and only here: its [`ConnectorKind`] and its arm of [`with_crm!`],
//! which every place that depends on the kind goes through.

use crate::crm::budget::Budget;
use crate::crm::config::{self, ConnectorSecrets};
use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The CRMs a business can connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Kustomer,
    Krayin,
}

/// Runs `$body` with `$crm` naming the [`Crm`] of `$kind`. `edge::crm` implements its runtime
/// trait for each of these types, so a CRM registered here without its runtime part does not
/// compile.
#[macro_export]
macro_rules! with_crm {
    ($kind:expr, $crm:ident => $body:expr) => {
        match $kind {
            $crate::crm::registry::ConnectorKind::Kustomer => {
                type $crm = $crate::crm::kustomer::Kustomer;
                $body
            }
            $crate::crm::registry::ConnectorKind::Krayin => {
                type $crm = $crate::crm::krayin::Krayin;
                $body
            }
        }
    };
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 2] = [Self::Kustomer, Self::Krayin];

    /// Its name in the API and in storage.
    pub fn as_str(self) -> &'static str {
        crate::with_crm!(self, C => C::NAME)
    }

    /// How the admin API names a connector of this kind when it is given no name.
    pub fn display_name(self) -> &'static str {
        crate::with_crm!(self, C => C::DISPLAY_NAME)
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CRM's settings, read from what the admin API stored.
pub trait ConnectorSettings: Sized {
    /// The settings checked by the CRM's rules.
    fn parse(settings: &Value, allow_loopback: bool) -> Result<Self, ApiError>;

    /// As they are stored: every setting, defaults filled in.
    fn to_json(&self) -> Value;

    /// The root of the CRM's API, without a trailing slash.
    fn api_base(&self) -> String;
}

/// A CRM as the connector framework knows it, without the network.
pub trait Crm {
    type Settings: ConnectorSettings;
    const KIND: ConnectorKind;
    /// Its name in the API and in storage (`kind`).
    const NAME: &'static str;
    /// How a connector of this CRM is named when it is given no name.
    const DISPLAY_NAME: &'static str;
    /// The request budget a new connector starts with until an administrator sets its own.
    const DEFAULT_BUDGET: Budget;

    /// `settings` checked by the CRM's rules, as they are stored: every setting, defaults filled
    /// in.
    fn checked_settings(settings: &Value, allow_loopback: bool) -> Result<Value, ApiError> {
        Ok(Self::Settings::parse(settings, allow_loopback)?.to_json())
    }

    /// `secrets` checked by the CRM's rules (unknown names are refused, the credential is
    /// required).
    fn checked_secrets(secrets: &Value) -> Result<ConnectorSecrets, ApiError>;

    /// Where webhooks for a connector of this CRM are sent, below this deployment's origin: the
    /// CRM's own, or those of the platform that feeds it.
    fn webhook_path(connector_id: &str) -> String;

    /// What an answer of the CRM that is not a success says, for the sync log.
    fn error_reason(status: u16, body: &[u8]) -> String;

    /// The stored settings with a PATCH's merged in (RFC 7396, unless the CRM says otherwise).
    fn patched_settings(stored: &Value, patch: &Value) -> Value {
        config::merged(stored, patch)
    }
}

/// What a CRM's answer that is not a success says, for people (the sync log, a failed test): who
/// answered what, what it `said` (control characters out, cut at 300 characters), and for the
/// statuses that need one, the `advice` of what to check.
pub fn error_reason(crm: &str, status: u16, said: Option<String>, advice: Option<&str>) -> String {
    const MAX_SAID_CHARS: usize = 300;
    let said = said.map(|text| {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        crate::text::cut_chars(text.trim(), MAX_SAID_CHARS, "…")
    });
    let mut reason = match said {
        Some(text) if !text.is_empty() => format!("{crm} answered {status}: {text}"),
        _ => format!("{crm} answered {status}"),
    };
    if let Some(advice) = advice {
        if !reason.ends_with('.') {
            reason.push('.');
        }
        reason.push(' ');
        reason.push_str(advice);
    }
    reason
}
