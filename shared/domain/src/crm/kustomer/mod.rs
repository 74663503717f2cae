//! Kustomer, both directions, as plain Rust: the connector's settings and secrets, how our
//! customers map onto Kustomer's, the requests its REST API documents and how to read its
//! answers, its signed outbound webhooks, and when and how a conversation is handed to a person.
//!
//! The runtime sends what [`api`] builds to [`KustomerSettings::api_base`] with
//! `Authorization: Bearer <api_key>` and hands webhook bodies to [`webhook`] after
//! [`webhook::verify`]; nothing here touches the network, the clock or storage.

pub mod api;
pub mod escalation;
pub mod mapping;
pub mod permissions;
pub mod settings;
pub mod webhook;

pub use mapping::{FieldMapping, external_id_of};
pub use settings::{KustomerSecrets, KustomerSettings, Priority};

/// Kustomer refuses a note whose body is longer than this many characters.
pub const MAX_NOTE_CHARS: usize = 10_240;

/// Kustomer as the connector framework knows it (`crate::crm::spec`, registered in `crate::crm::registry`).
pub struct Kustomer;

impl crate::crm::spec::Crm for Kustomer {
    type Settings = KustomerSettings;
    const DEFAULT_BUDGET: crate::crm::budget::Budget = crate::crm::budget::Budget::KUSTOMER;

    fn checked_secrets(
        secrets: &serde_json::Value,
    ) -> Result<crate::crm::spec::ConnectorSecrets, crate::error::ApiError> {
        Ok(KustomerSecrets::parse(secrets)?.into())
    }

    fn webhook_path(connector_id: &str) -> String {
        format!("/api/webhooks/kustomer/{connector_id}")
    }

    fn error_reason(status: u16, body: &[u8]) -> String {
        api::error_reason(status, body)
    }
}

impl crate::crm::spec::ConnectorSettings for KustomerSettings {
    fn parse(settings: &serde_json::Value, allow_loopback: bool) -> Result<Self, crate::error::ApiError> {
        KustomerSettings::parse(settings, allow_loopback)
    }

    fn to_json(&self) -> serde_json::Value {
        KustomerSettings::to_json(self)
    }

    fn api_base(&self) -> String {
        KustomerSettings::api_base(self)
    }
}

impl From<KustomerSecrets> for crate::crm::spec::ConnectorSecrets {
    fn from(secrets: KustomerSecrets) -> Self {
        let stored = secrets.to_json();
        Self::new(
            format!("Bearer {}", secrets.api_key),
            secrets.webhook_secret,
            None,
            stored,
        )
    }
}
