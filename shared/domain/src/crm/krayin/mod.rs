//! Krayin CRM, as plain Rust: the connector's settings and secrets, the ids it keeps of Krayin's
//! records, the REST API requests (Krayin's `rest-api` package, under `/api/v1`) and how to read
//! its answers, and the activities and stage moves a Chatwoot or crm-edge event turns into.
//!
//! The runtime sends what [`api`] builds to [`KrayinSettings::api_base`] with
//! `Authorization: Bearer <api_token>` and `Accept: application/json` (without it Laravel answers
//! errors with HTML redirects); nothing here touches the network, the clock or storage.

pub mod activity;
pub mod answer;
pub mod api;
pub mod external_id;
pub mod ids;
pub mod settings;

pub use answer::{Pipeline, Stage};
pub use api::Contact;
pub use external_id::KrayinRefs;
pub use ids::{
    ActivityId, LeadId, LeadSourceId, LeadTypeId, OrganizationId, PersonId, PipelineId, StageId, UserId,
};
pub use settings::{KrayinSecrets, KrayinSettings};

/// Krayin as the connector framework knows it (`crate::crm::spec`, registered in `crate::crm::registry`): fed by Chatwoot's
/// webhooks, which arrive at the connector's Chatwoot path.
pub struct Krayin;

impl crate::crm::spec::Crm for Krayin {
    type Settings = KrayinSettings;
    const DEFAULT_BUDGET: crate::crm::budget::Budget = crate::crm::budget::Budget::KRAYIN;

    fn checked_secrets(
        secrets: &serde_json::Value,
    ) -> Result<crate::crm::spec::ConnectorSecrets, crate::error::ApiError> {
        Ok(KrayinSecrets::parse(secrets)?.into())
    }

    fn webhook_path(connector_id: &str) -> String {
        format!("/webhooks/chatwoot/{connector_id}")
    }

    fn error_reason(status: u16, body: &[u8]) -> String {
        answer::error_reason(status, body)
    }

    /// Krayin's address has two names (`base_url`, and the guide's `api_url`): a patch that
    /// names it by either replaces it.
    fn patched_settings(stored: &serde_json::Value, patch: &serde_json::Value) -> serde_json::Value {
        let mut base = stored.clone();
        if let (serde_json::Value::Object(base), Some(patch)) = (&mut base, patch.as_object())
            && patch.contains_key("api_url")
        {
            base.remove("base_url");
        }
        crate::crm::spec::merged(&base, patch)
    }
}

impl crate::crm::spec::ConnectorSettings for KrayinSettings {
    fn parse(settings: &serde_json::Value, allow_loopback: bool) -> Result<Self, crate::error::ApiError> {
        KrayinSettings::parse(settings, allow_loopback)
    }

    fn to_json(&self) -> serde_json::Value {
        KrayinSettings::to_json(self)
    }

    fn api_base(&self) -> String {
        KrayinSettings::api_base(self)
    }
}

impl From<KrayinSecrets> for crate::crm::spec::ConnectorSecrets {
    fn from(secrets: KrayinSecrets) -> Self {
        let stored = secrets.to_json();
        Self::new(
            format!("Bearer {}", secrets.api_token),
            secrets.webhook_secret,
            secrets.webhook_token,
            stored,
        )
    }
}
