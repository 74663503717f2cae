//! A business's CRM connectors: made, authorised with OAuth, shown, changed and deleted; what
//! their CRMs hold (teams, pipelines, customers, conversations, contacts); their sync log and
//! replays.

#[cfg(feature = "openapi")]
use super::MAX_NAME_CHARS;
use crate::crm::budget::Budget;
#[cfg(feature = "openapi")]
use crate::crm::kustomer::api::Team;
use crate::crm::work::{ConnectorKind, JobStatus, Summary};
use crate::ids::{BusinessId, ConnectorId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A new connector: its CRM, and that CRM's settings and secrets (docs/connectors.md).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectorIn {
    #[cfg_attr(feature = "openapi", schemars(with = "ConnectorKind", required))]
    pub kind: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub secrets: Value,
    pub enabled: Option<bool>,
    /// The share of the business's customers the connector works for, in percent (default 100):
    /// a connector re-enabled after a rollback starts with a few and widens step by step. The same
    /// customers stay in while it is widened; for the others it is as if disabled.
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = 100)))]
    pub rollout_percent: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "BudgetIn"))]
    pub rate_limit: Map<String, Value>,
}

/// A connector to be authorised with OAuth on its CRM's consent page: its CRM (`hubspot`), name
/// and settings as for a new connector, and the OAuth app it is authorised for.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationIn {
    #[cfg_attr(feature = "openapi", schemars(with = "ConnectorKind", required))]
    pub kind: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    /// The app's client id, as the CRM shows it.
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 256)))]
    pub client_id: Option<String>,
    /// The app's client secret: it trades codes and refresh tokens, and (HubSpot) signs the
    /// webhooks the app sends.
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 256)))]
    pub client_secret: Option<String>,
}

/// Where to send the person to authorise the connector.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuthorizationOut {
    /// The CRM's consent page, with the app, the scopes, the way back and the state.
    pub authorize_url: String,
    /// Where the CRM sends them back: the app must list it among its redirect URLs.
    pub redirect_uri: String,
    /// The state the CRM gives back with the code.
    pub state: String,
    /// After this, the state is refused: start again.
    pub expires_at: Timestamp,
}

/// What the CRM's consent page gave back.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizedIn {
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 4096)))]
    pub state: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 2048)))]
    pub code: Option<String>,
}

/// A connector's change: settings and secrets merge into what is stored (RFC 7396).
#[derive(Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectorPatch {
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    /// Merged into the stored settings (RFC 7396).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    /// Merged into the stored secrets (RFC 7396): a rotation names only what changes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub secrets: Value,
    pub enabled: Option<bool>,
    /// The share of the business's customers the connector works for, in percent (default 100):
    /// a connector re-enabled after a rollback starts with a few and widens step by step. The same
    /// customers stay in while it is widened; for the others it is as if disabled.
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = 100)))]
    pub rollout_percent: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "BudgetIn"))]
    pub rate_limit: Map<String, Value>,
}

/// A connector's CRM request budget; null is no limit of that kind.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(rename = "RateLimit")]
#[allow(dead_code, reason = "describes a field for the contract")]
pub(super) struct BudgetIn {
    #[schemars(range(min = 1, max = 1_000_000))]
    per_minute: Option<u32>,
    #[schemars(range(min = 1, max = 1_000_000))]
    per_second: Option<u32>,
    #[schemars(range(min = 1, max = 1_000_000))]
    per_day: Option<u32>,
}

/// A connector as the admin API shows it: secrets by name only, and its status.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "Connector"))]
pub struct ConnectorOut {
    pub id: ConnectorId,
    pub business_id: BusinessId,
    pub kind: ConnectorKind,
    pub name: String,
    pub enabled: bool,
    /// The share of the business's customers it works for, in percent.
    pub rollout_percent: u8,
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    pub secrets_set: Vec<String>,
    pub rate_limit: Budget,
    /// Where the CRM must send its webhooks, below this deployment's origin.
    pub webhook_path: String,
    pub status: ConnectorStatus,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
}

/// How a connector's work goes.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectorStatus {
    /// Work waiting to be done (the backlog), and since when the oldest has waited.
    pub backlog: i64,
    pub oldest_pending_at: Option<Timestamp>,
    /// The last 24 hours: work by how it ended, and the share of CRM work that succeeded.
    pub last_24h: Summary,
    pub success_rate: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// Calls to the CRM wait until then (it answered 429).
    pub paused_until: Option<Timestamp>,
    /// When the CRM key expires, as the CRM reported when it was saved or last tested; null when
    /// it reported none (the `connector_key_expiring` alert rule warns ahead of it).
    pub key_expires_at: Option<Timestamp>,
    /// Calls made to the CRM so far in this UTC day, against the budget's per_day.
    pub calls_today: i64,
    /// The calls to the CRM in the last 24 hours as the production checklist's KPIs, with its
    /// targets.
    pub health: crate::crm::health::Health,
}

/// A deleted connector, and what was forgotten with it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ConnectorDeleted"))]
pub struct ConnectorDeletedOut {
    pub id: ConnectorId,
    pub business_id: BusinessId,
    pub kind: ConnectorKind,
    pub name: String,
    /// Work that was still waiting (pending) and will never reach the CRM.
    pub dropped_work: usize,
    /// The other entries of its sync log (done, skipped, failed, dead), deleted with it.
    pub sync_log_entries: usize,
    /// Our customers, conversations and messages whose id in the CRM it knew.
    pub links: usize,
    /// Its contacts (their CRM records and sync leases).
    pub contacts: usize,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectorsOut {
    pub connectors: Vec<ConnectorOut>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the answer for the contract")]
pub(super) struct TeamsOut {
    teams: Vec<Team>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PipelinesOut {
    pub pipelines: Vec<PipelineOut>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PipelineOut {
    pub id: u64,
    pub name: String,
    pub is_default: bool,
    pub stages: Vec<StageOut>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StageOut {
    pub id: u64,
    pub name: String,
    pub code: String,
    pub sort_order: u32,
}

/// The parameters of a lookup in the CRM.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
pub(super) struct CrmCustomerParameters {
    /// The customer's email address.
    #[schemars(length(min = 3, max = 254))]
    email: String,
}

/// What Kustomer holds under an email address.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CrmCustomerOut {
    /// Kustomer's customer as its API answers it (JSON:API: type, id, attributes,
    /// relationships); null when it has none with this address.
    #[cfg_attr(feature = "openapi", schemars(with = "Option<Map<String, Value>>"))]
    pub customer: Option<Value>,
}

/// A conversation to open in Kustomer.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CrmConversationIn {
    /// The Kustomer customer id (24 hex digits), as the lookup answers it.
    pub customer_id: String,
    /// The conversation's title, 1 to 256 characters.
    #[cfg_attr(feature = "openapi", schemars(length(min = 1, max = 256)))]
    pub title: String,
    /// The channel it is answered on: chat (the default), email, sms, whatsapp, facebook,
    /// instagram or voice.
    pub channel: Option<String>,
}

/// The conversation Kustomer opened.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CrmConversationOut {
    /// Kustomer's conversation as its API answers it (JSON:API: type, id, attributes,
    /// relationships).
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub conversation: Value,
}

/// The parameters of a contact's lookup.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
pub(super) struct ContactParameters {
    /// The whole external id, or its first record (krayin:person:123).
    #[schemars(length(min = 1, max = 200))]
    external_id: String,
}

/// A contact of a connector with its records in Krayin.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KrayinContact {
    pub contact: String,
    pub external_id: Option<String>,
    pub person_id: Option<u64>,
    pub lead_id: Option<u64>,
    pub organization_id: Option<u64>,
    pub activity_id: Option<u64>,
    pub stages_done: Vec<&'static str>,
}

/// The parameters of the sync log.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
pub(super) struct SyncLogParameters {
    /// One status.
    status: Option<JobStatus>,
    /// A customer, conversation or message id.
    record: Option<String>,
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
    /// The seq the last page ended at.
    #[schemars(range(min = 1))]
    before: Option<i64>,
}

/// One entry of the sync log.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncLogEntry {
    pub id: String,
    /// Where the log is continued from (`before`).
    pub seq: i64,
    pub operation: &'static str,
    pub customer_id: String,
    pub record_id: String,
    pub event_id: Option<String>,
    pub status: JobStatus,
    pub attempts: u32,
    pub crm_id: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub duration_ms: Option<i64>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncLogOut {
    pub entries: Vec<SyncLogEntry>,
    pub next_before: Option<i64>,
}

/// Which work to put back.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ConnectorReplayIn"))]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// Which work to put back: dead (the default) and/or failed.
    #[cfg_attr(
        feature = "openapi",
        schemars(length(min = 1), extend("items" = { "type": "string", "enum": ["dead", "failed"] }))
    )]
    pub statuses: Option<Vec<String>>,
    /// Work created in [from, to); RFC 3339.
    pub from: Option<String>,
    /// RFC 3339 time.
    pub to: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ConnectorReplayOut"))]
pub struct ReplayOut {
    pub contacts: usize,
    pub statuses: Vec<JobStatus>,
}
