//! The CRM endpoints a business calls with its API key: escalations and notes done in its CRMs,
//! a customer's history read from the CRM, and the support analytics; their declarations and
//! the shapes they take and answer with.

use crate::api::{Caller::*, get, patch, post};
use crate::crm::analytics::Durations;
use crate::crm::kustomer::api::PastConversation;
use crate::ids::{ConnectorId, ConversationId, CustomerId, EscalationId, SyncJobId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use serde_json::json;

/// The longest reason an escalation may give.
pub const MAX_REASON_CHARS: usize = 500;

function! {
    /// The CRM API.
    pub const CRM_API: Function<CrmApi> = "crm-api", tag "crm";
    /// Hand a conversation to a person in the CRMs
    ///
    /// Recorded at once (analytics count it) and the customer told of the hand-off on the
    /// conversation's channel, whatever the CRMs' state; each enabled connector's part (Kustomer's
    /// ticket, Krayin's note) is CRM work done when its CRM answers (`work` is empty when the
    /// business has no connector). Unknown fields are refused.
    EscalateConversation = post("/api-escalations", ApiKey).idempotent()
        => |c| c
            .json::<EscalationIn>()
            .example(json!({ "conversation_id": "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f", "reason": "customer asked for a manager" }))
            .ok::<EscalatedOut>(202)
            .errors(&[404]);
    /// Change an escalation's priority or team
    ///
    /// The escalation keeps the new routing and each enabled connector's ticket is changed to it
    /// as CRM work (Kustomer: the conversation's priority and assigned team; Krayin has neither
    /// and says so in its sync log). Unknown fields are refused; at least one field is given.
    ChangeEscalation = patch("/api-escalations/{escalation_id}", ApiKey).idempotent()
        => |c| c
            .json::<EscalationChangeIn>()
            .example(json!({ "priority": "urgent", "team_id": "5f00000000000000000000b1" }))
            .ok::<EscalatedOut>(202)
            .errors(&[404]);
    /// An internal note on the conversation in the CRM
    AddCrmNote = post("/api-crm-notes", ApiKey).idempotent()
        => |c| c.json::<NoteIn>().ok::<WorkOut>(202).errors(&[404]);
    /// A customer's past conversations, read from the CRM now
    ///
    /// 404 when the customer is not in Kustomer; 502 crm_failed when Kustomer fails; 429 while the
    /// connector's budget is spent.
    GetCrmHistory = get("/api-crm-history", ApiKey).console()
        => |c| c.query::<HistoryParameters>().ok::<HistoryOut>(200).errors(&[404, 502]);
    /// Support analytics for a time range
    ///
    /// Default: the last 30 days; at most 366.
    GetCrmAnalytics = get("/api-crm-analytics", ApiKey).console()
        => |c| c.query::<AnalyticsParameters>().ok::<AnalyticsOut>(200);
}

/// A conversation handed to a person, and why.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalationIn {
    #[cfg_attr(feature = "openapi", schemars(with = "ConversationId", required))]
    pub conversation_id: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(with = "String", required, length(min = 1, max = MAX_REASON_CHARS)))]
    pub reason: Option<String>,
    /// The ticket's priority: 1 to 5 (5 highest) or low, medium, high, urgent. Absent: the
    /// connector's escalation priority.
    #[cfg_attr(feature = "openapi", schemars(with = "Option<PriorityIn>"))]
    pub priority: Option<serde_json::Value>,
    /// The CRM's team to give the ticket (Kustomer: a team id). Absent: the connector's default
    /// team, when Auto Assignment is on.
    #[cfg_attr(feature = "openapi", schemars(length(min = 1, max = crate::crm::work::MAX_TEAM_ID_CHARS)))]
    pub team_id: Option<String>,
}

/// A change of an escalation's routing.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EscalationChangeIn {
    /// 1 to 5 (5 highest) or low, medium, high, urgent.
    #[cfg_attr(feature = "openapi", schemars(with = "Option<PriorityIn>"))]
    pub priority: Option<serde_json::Value>,
    /// The CRM's team to give the ticket.
    #[cfg_attr(feature = "openapi", schemars(length(min = 1, max = crate::crm::work::MAX_TEAM_ID_CHARS)))]
    pub team_id: Option<String>,
}

/// A priority as the API takes it.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code, reason = "describes the field for the contract")]
enum PriorityIn {
    Level(#[schemars(range(min = 1, max = 5))] u8),
    Name(#[schemars(extend("enum" = ["low", "medium", "high", "urgent"]))] String),
}

/// A note for the CRM.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    #[cfg_attr(feature = "openapi", schemars(with = "ConversationId", required))]
    pub conversation_id: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "String", required, length(min = 1, max = crate::crm::kustomer::MAX_NOTE_CHARS))
    )]
    pub body: Option<String>,
    /// One connector; absent: every enabled one.
    pub connector_id: Option<String>,
}

/// One piece of CRM work as the answer shows it; the sync log shows it as it is done.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "WorkItem"))]
pub struct WorkItem {
    pub connector_id: ConnectorId,
    pub sync_job_id: SyncJobId,
    pub status: &'static str,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EscalatedOut {
    pub escalation: EscalationOut,
    pub work: Vec<WorkItem>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EscalationOut {
    pub id: EscalationId,
    pub conversation_id: ConversationId,
    pub reason: String,
    /// `api`, or `phrase` (the customer asked in one of the escalation phrases).
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["api", "phrase"])))]
    pub trigger: &'static str,
    /// As asked (null: the connector's escalation priority).
    pub priority: Option<u8>,
    /// As asked (null: the connector's default team).
    pub team_id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WorkOut {
    pub work: Vec<WorkItem>,
}

/// The parameters of `GET /api-crm-history`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct HistoryParameters {
    /// Our id, or else the CRM's.
    customer_id: Option<String>,
    /// The CRM's id.
    external_id: Option<String>,
    /// One Kustomer connector.
    connector_id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HistoryOut {
    pub customer_id: CustomerId,
    pub connector_id: ConnectorId,
    pub crm_customer_id: String,
    pub conversations: Vec<PastConversation>,
}

/// The parameters of `GET /api-crm-analytics`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct AnalyticsParameters {
    /// RFC 3339 time.
    from: Option<Timestamp>,
    /// RFC 3339 time.
    to: Option<Timestamp>,
}

/// The seed's success metrics for a time range.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AnalyticsOut {
    pub from: Timestamp,
    pub to: Timestamp,
    pub conversations: i64,
    /// More conversations started in the range than were read.
    pub truncated: bool,
    pub escalations: Share,
    pub first_response: Durations,
    pub resolution: Durations,
    /// Conversations of the range the customer reopened after they were resolved or closed.
    pub reopened: Share,
    pub satisfaction: Satisfaction,
    pub agents: Vec<AgentOut>,
    pub sync: Vec<ConnectorSyncOut>,
}

/// How many, and their share.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Share {
    pub count: i64,
    pub rate: Option<f64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Satisfaction {
    pub average: Option<f64>,
    pub count: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AgentOut {
    pub assignee: String,
    pub conversations: usize,
    pub resolved: usize,
    pub first_response: Durations,
    pub resolution: Durations,
}

/// A connector's CRM work of the range, by where it ended.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectorSyncOut {
    pub connector_id: ConnectorId,
    pub kind: &'static str,
    pub succeeded: i64,
    pub failed: i64,
    pub dead: i64,
    pub skipped: i64,
    pub pending: i64,
    /// Of the work the CRM was asked to do, the share that succeeded (target > 99%).
    pub success_rate: Option<f64>,
}
