//! A business as the admin API makes, shows and changes it, and its audit log.

#[cfg(feature = "openapi")]
use super::MAX_NAME_CHARS;
use crate::error::ApiError;
use crate::ids::{AuditEntryId, BusinessId};
use crate::rate_limit::Policy;
use crate::tenant::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A new business.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BusinessIn {
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    /// ISO 3166 alpha-2.
    pub default_country: Option<String>,
}

/// A business as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    /// ISO 3166 alpha-2, as validated when the business was created.
    pub default_country: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// Origins allowed to frame the embedded inbox.
    pub embed_frame_ancestors: Vec<String>,
    /// Each API key's limit (the default unless set).
    pub rate_limit: Policy,
    /// Hours a resolved or closed conversation stays quiet before the customer's next message
    /// opens a new conversation (with `conversation.created`) instead of reopening it; 96 unless
    /// set.
    pub new_conversation_after_hours: u16,
}

impl Business {
    /// The business as the tenant the operator's requests about it act for.
    pub fn tenant(&self) -> Result<Tenant, ApiError> {
        Tenant::from_stored(self.id.as_str(), self.default_country.as_deref())
    }
}

/// What may change of a business after it is made: one or both.
#[derive(Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "openapi",
    schemars(extend("anyOf" = [
        { "required": ["embed_frame_ancestors"] },
        { "required": ["rate_limit"] },
        { "required": ["new_conversation_after_hours"] },
    ]))
)]
pub struct BusinessPatch {
    #[cfg_attr(feature = "openapi", schemars(length(max = 20)))]
    pub embed_frame_ancestors: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schemars(with = "Option<PolicyPatch>"))]
    pub rate_limit: Option<Value>,
    /// 0 (a resolved conversation is never reopened) to 8760 (a year).
    #[cfg_attr(feature = "openapi", schemars(range(min = 0, max = crate::message::NewConversationAfter::MAX_HOURS)))]
    pub new_conversation_after_hours: Option<i64>,
}

/// A key rate limit's change: a number left out keeps its value.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes a field for the contract")]
pub(super) struct PolicyPatch {
    #[schemars(range(min = 1, max = Policy::MAX_PER_MINUTE))]
    per_minute: Option<u32>,
    #[schemars(range(min = 1, max = Policy::MAX_BURST))]
    burst: Option<u32>,
}

/// The parameters of the audit log.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
pub(super) struct AuditParameters {
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
    /// The next_cursor of a previous page.
    before: Option<String>,
}

/// One admin or security action.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub id: AuditEntryId,
    /// RFC 3339 time.
    pub at: String,
    /// admin, `key:<key prefix>`, or `console:<console session id>`.
    pub actor: String,
    /// e.g. api_key.issued.
    pub action: String,
    pub target: AuditTarget,
    /// What changed; never a secret.
    pub detail: Map<String, Value>,
    /// The address the action came from; null for the operator's actions when a business reads
    /// its own log.
    pub client_ip: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditTarget {
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditLogOut {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}
