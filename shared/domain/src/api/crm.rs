//! The crm endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, get, post};

function! {
    /// `crm-api`.
    pub const CRM_API: Function<CrmApi> = "crm-api", tag "crm";
    /// Hand a conversation to a person in the CRMs
    ///
    /// Recorded at once (analytics count it) and the customer told of the hand-off on the
    /// conversation's channel, whatever the CRMs' state; each enabled connector's part (Kustomer's
    /// ticket, Krayin's note) is CRM work done when its CRM answers (`work` is empty when the
    /// business has no connector). Unknown fields are refused.
    EscalateConversation = post("/api-escalations", ApiKey).idempotent()
        => |c| c;
    /// An internal note on the conversation in the CRM
    AddCrmNote = post("/api-crm-notes", ApiKey).idempotent()
        => |c| c;
    /// A customer's past conversations, read from the CRM now
    ///
    /// 404 when the customer is not in Kustomer; 502 crm_failed when Kustomer fails; 429 while the
    /// connector's budget is spent.
    GetCrmHistory = get("/api-crm-history", ApiKey)
        => |c| c;
    /// Support analytics for a time range
    ///
    /// Default: the last 30 days; at most 366.
    GetCrmAnalytics = get("/api-crm-analytics", ApiKey)
        => |c| c;
}
