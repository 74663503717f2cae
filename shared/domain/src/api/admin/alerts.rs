//! The alerts' listing and a change to the alert settings, as the contract states them.

/// The parameters of the alerts' listing.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
pub(super) struct AlertsParameters {
    /// `open`, or `all` (the default).
    state: Option<String>,
    /// 1 to 200, default 50.
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

/// A change to the alert settings (the handler reads it as `domain::alerts::Settings::apply`).
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
pub(super) struct AlertSettingsPatch {
    /// Rule names (connector_failing, connector_paused, connector_budget, connector_backlog,
    /// endpoint_disabled, endpoint_failing, link_failing, error_rate, rate_limited), each with
    /// its change.
    rules: Option<std::collections::BTreeMap<String, AlertRuleChange>>,
    #[schemars(length(max = 10))]
    email_to: Option<Vec<String>>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
pub(super) struct AlertRuleChange {
    enabled: Option<bool>,
    /// Within the rule's min and max (GET shows them).
    #[schemars(range(min = 0))]
    threshold: Option<u32>,
}
