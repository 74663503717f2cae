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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::oauth::Tokens;
    use serde_json::json;

    #[test]
    fn oauth_secrets_need_the_apps_client_and_refresh_into_a_new_bearer_token_kept_as_stored() {
        let refused = HubSpot::checked_secrets(
            &json!({ "access_token": "CO1", "refresh_token": "r", "client_secret": "s" }),
        )
        .map(|_| ())
        .map_err(|error| error.body.field);
        assert_eq!(refused, Err(Some("secrets.client_id".to_owned())));
        let stored = json!({
            "access_token": "CO1", "refresh_token": "r", "client_id": "c", "client_secret": "s",
            "access_token_expires_ms": 1_800_000,
        });
        let secrets = HubSpot::checked_secrets(&stored).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(secrets.authorization(), "Bearer CO1");
        assert_eq!(
            secrets.webhook_secret(),
            Some("s"),
            "the app's secret signs its webhooks"
        );
        assert!(secrets.grant().is_some_and(|grant| grant.due(1_800_000 - 60_000)));

        let tokens = Tokens::parse(br#"{"access_token":"CO2","expires_in":1800}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        let refreshed = secrets
            .refreshed(&tokens, 2_000_000)
            .unwrap_or_else(|| panic!("a grant refreshes"));
        assert_eq!(refreshed.authorization(), "Bearer CO2");
        let kept = Value::Object(refreshed.to_json());
        assert_eq!(kept["access_token"], "CO2");
        assert_eq!(kept["access_token_expires_ms"], 3_800_000);
        assert_eq!(kept["refresh_token"], "r", "HubSpot keeps its refresh token");
        let reread = HubSpot::checked_secrets(&kept).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(reread, refreshed, "what is kept reads back the same");

        let private = HubSpot::checked_secrets(&json!({ "access_token": "pat-na1-x" }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert!(private.grant().is_none() && private.refreshed(&tokens, 0).is_none());
    }
}
