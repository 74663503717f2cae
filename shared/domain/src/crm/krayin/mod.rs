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
