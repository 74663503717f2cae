//! HubSpot, as plain Rust: the connector's settings and secrets, the requests its REST API
//! documents and how to read its answers, and what our customers, messages and escalations
//! become there (contacts, timeline records, tickets).
//!
//! The runtime sends what [`api`] builds to [`HubSpotSettings::api_base`] with
//! `Authorization: Bearer <access_token>`; nothing here touches the network, the clock or
//! storage.

pub mod api;
pub mod settings;
pub mod timeline;
pub mod webhook;

use crate::crm::budget::Budget;
use crate::crm::oauth::OAuthApp;
use crate::crm::spec::{ConnectorSecrets, ConnectorSettings, Crm};
use crate::error::ApiError;
use serde_json::Value;
pub use settings::{HubSpotSecrets, HubSpotSettings, TicketPriority};

/// HubSpot as the connector framework knows it (`crate::crm::spec`, registered in
/// `crate::crm::registry`).
pub struct HubSpot;

impl Crm for HubSpot {
    type Settings = HubSpotSettings;
    /// A private app's limits on HubSpot's Free and Starter plans: 100 requests per 10 seconds
    /// (kept as 10 a second) and 250,000 a day; Professional and Enterprise accounts allow more,
    /// which an administrator sets as the connector's budget.
    const DEFAULT_BUDGET: Budget = Budget {
        per_minute: Some(600),
        per_second: Some(10),
        per_day: Some(250_000),
    };
    const OAUTH: bool = true;

    fn checked_secrets(secrets: &Value) -> Result<ConnectorSecrets, ApiError> {
        Ok(HubSpotSecrets::parse(secrets)?.into())
    }

    fn webhook_path(connector_id: &str) -> String {
        format!("/api/webhooks/hubspot/{connector_id}")
    }

    fn error_reason(status: u16, body: &[u8]) -> String {
        api::error_reason(status, body)
    }
}

impl ConnectorSettings for HubSpotSettings {
    fn parse(settings: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        HubSpotSettings::parse(settings, allow_loopback)
    }

    fn to_json(&self) -> Value {
        HubSpotSettings::to_json(self)
    }

    fn api_base(&self) -> String {
        HubSpotSettings::api_base(self)
    }

    fn oauth_app(&self) -> Option<OAuthApp> {
        Some(HubSpotSettings::oauth(self))
    }
}

impl From<HubSpotSecrets> for ConnectorSecrets {
    fn from(secrets: HubSpotSecrets) -> Self {
        let (stored, grant) = (secrets.to_json(), secrets.grant());
        Self::new(
            format!("Bearer {}", secrets.access_token),
            secrets.client_secret,
            None,
            stored,
        )
        .with_grant(grant)
    }
}
