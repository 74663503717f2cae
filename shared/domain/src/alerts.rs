//! Alerts (docs/alerts.md): the rules a business is warned by when its integration fails, what
//! each measures and when it holds, and how an alert is told.
//!
//! Every minute the maintenance sweep measures each rule's condition across a shard (a
//! [`Measure`] per subject whose condition may hold: a connector, a webhook endpoint, a CRM link
//! or the business) and [`judge`]s them against the alerts already open: an alert is raised once
//! when its measure reaches the business's threshold, and resolved once when the condition is
//! over (for a share or a count, once the measure is back under the threshold or half of it, so
//! that a measure hovering at the line raises no storm of alerts).

use crate::email::Email;
use crate::error::ApiError;
use crate::ids::{AlertId, BusinessId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Recipients of a business's alert emails, at most.
pub const MAX_RECIPIENTS: usize = 10;
/// The API requests an error rate is judged on, at least: one failed request of three is no
/// alert.
pub const ERROR_RATE_MIN_REQUESTS: i64 = 20;
/// The most days ahead a key's expiry may be alerted (the `connector_key_expiring` rule's largest
/// threshold): the sweep reads no expiry further away.
pub const KEY_EXPIRY_MAX_DAYS: u32 = 90;
/// Tries of one alert email, a minute apart and then doubling (1, 2, 4, … 32 minutes): about an
/// hour, after which it is failed and the alert shows why.
pub const EMAIL_TRIES: u32 = 7;

/// A rule: what is measured, of what, and in which unit its threshold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum Kind {
    /// A connector's calls have all failed for `threshold` minutes (0: at the first failure).
    ConnectorFailing,
    /// The CRM asked a connector to wait (429) for `threshold` minutes or more.
    ConnectorPaused,
    /// A connector has spent `threshold` percent of its daily call budget.
    ConnectorBudget,
    /// A connector's oldest waiting work is `threshold` minutes old.
    ConnectorBacklog,
    /// A connector's CRM key expires in `threshold` days or fewer (or has expired).
    ConnectorKeyExpiring,
    /// A webhook endpoint was disabled after failing for days.
    EndpointDisabled,
    /// Deliveries to a webhook endpoint have failed for `threshold` minutes.
    EndpointFailing,
    /// A CRM link's last `threshold` fetches failed.
    LinkFailing,
    /// `threshold` percent of the business's API requests were answered with an error.
    ErrorRate,
    /// The API keys' rate limit refused `threshold` requests.
    RateLimited,
}

/// What a rule's alerts are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum Subject {
    Connector,
    Endpoint,
    Link,
    Business,
}

/// What a rule's threshold counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum Unit {
    Minutes,
    Percent,
    Failures,
    Requests,
    /// Days left: the rule holds at the threshold or below it.
    DaysLeft,
    /// The rule has no threshold: its condition holds or not.
    None,
}

/// When an open alert of a rule is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clears {
    /// Once its condition is over (no measure any more).
    WhenOver,
    /// Once the measure is under the threshold.
    UnderThreshold,
    /// Once the measure is under half the threshold.
    UnderHalf,
    /// Once the measure is above the threshold (a rule of days left).
    AboveThreshold,
}

struct Spec {
    name: &'static str,
    subject: Subject,
    unit: Unit,
    default: u32,
    min: u32,
    max: u32,
    clears: Clears,
    about: &'static str,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Self::ConnectorFailing,
        Self::ConnectorPaused,
        Self::ConnectorBudget,
        Self::ConnectorBacklog,
        Self::ConnectorKeyExpiring,
        Self::EndpointDisabled,
        Self::EndpointFailing,
        Self::LinkFailing,
        Self::ErrorRate,
        Self::RateLimited,
    ];

    fn spec(self) -> Spec {
        use {Clears::*, Subject::*, Unit::*};
        let spec = |name, subject, unit, (default, min, max), clears, about| Spec {
            name,
            subject,
            unit,
            default,
            min,
            max,
            clears,
            about,
        };
        match self {
            Self::ConnectorFailing => spec(
                "connector_failing",
                Connector,
                Minutes,
                (10, 0, 1440),
                WhenOver,
                "A connector's calls to its CRM have all failed for this many minutes (0: at the first failure); resolved at its next success.",
            ),
            Self::ConnectorPaused => spec(
                "connector_paused",
                Connector,
                Minutes,
                (5, 0, 1440),
                WhenOver,
                "The CRM answered 429 and asked the connector to wait this many minutes or more; resolved when the pause is over.",
            ),
            Self::ConnectorBudget => spec(
                "connector_budget",
                Connector,
                Percent,
                (90, 50, 100),
                UnderThreshold,
                "A connector has made this share of its daily call budget (per_day) today; resolved when a new UTC day begins.",
            ),
            Self::ConnectorBacklog => spec(
                "connector_backlog",
                Connector,
                Minutes,
                (30, 1, 1440),
                UnderHalf,
                "A connector's oldest waiting CRM work is this many minutes old; resolved once it is under half of that.",
            ),
            Self::ConnectorKeyExpiring => spec(
                "connector_key_expiring",
                Connector,
                DaysLeft,
                (14, 1, KEY_EXPIRY_MAX_DAYS),
                AboveThreshold,
                "A connector's CRM key expires in this many days or fewer (or has expired), as its CRM reported when the key was saved or tested; resolved when the key is replaced by one that expires later or never.",
            ),
            Self::EndpointDisabled => spec(
                "endpoint_disabled",
                Endpoint,
                None,
                (0, 0, 0),
                WhenOver,
                "A webhook endpoint was disabled because its deliveries failed for days; resolved when it is enabled again or deleted.",
            ),
            Self::EndpointFailing => spec(
                "endpoint_failing",
                Endpoint,
                Minutes,
                (30, 0, 10080),
                WhenOver,
                "Deliveries to a webhook endpoint have failed for this many minutes with no success; resolved at its next success.",
            ),
            Self::LinkFailing => spec(
                "link_failing",
                Link,
                Failures,
                (3, 1, 100),
                WhenOver,
                "A CRM link's last fetches failed, this many in a row; resolved at its next good fetch.",
            ),
            Self::ErrorRate => spec(
                "error_rate",
                Business,
                Percent,
                (5, 1, 100),
                UnderHalf,
                "This share of the API keys' requests this hour and the last were answered with an error (4xx or 5xx, rate-limit refusals aside; 20 requests at least); resolved once under half of it.",
            ),
            Self::RateLimited => spec(
                "rate_limited",
                Business,
                Requests,
                (100, 1, 1_000_000),
                UnderHalf,
                "The API keys' rate limit refused this many requests this hour and the last; resolved once under half of it.",
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn subject(self) -> Subject {
        self.spec().subject
    }

    /// The rule in words: an email's subject, the console's label.
    pub fn title(self) -> &'static str {
        match self {
            Self::ConnectorFailing => "CRM connector failing",
            Self::ConnectorPaused => "CRM connector paused by its CRM",
            Self::ConnectorBudget => "CRM connector's daily budget nearly spent",
            Self::ConnectorBacklog => "CRM work waiting too long",
            Self::ConnectorKeyExpiring => "CRM key expiring",
            Self::EndpointDisabled => "Webhook endpoint disabled",
            Self::EndpointFailing => "Webhook endpoint failing",
            Self::LinkFailing => "CRM link failing",
            Self::ErrorRate => "API error rate",
            Self::RateLimited => "API requests refused by the rate limit",
        }
    }

    /// The threshold when the business has not set one, and the least and most it may set.
    pub fn thresholds(self) -> (u32, u32, u32) {
        let spec = self.spec();
        (spec.default, spec.min, spec.max)
    }

    /// Whether a measure of `value` reaches `threshold`: at or above it, or for days left at or
    /// below it.
    fn reached(self, value: i64, threshold: u32) -> bool {
        let threshold = i64::from(threshold);
        match self.spec().unit {
            Unit::DaysLeft => value <= threshold,
            _ => value >= threshold,
        }
    }

    /// Whether an alert of this rule whose measure is now `value` (None: the condition is over)
    /// is resolved, under `threshold`.
    fn clears(self, value: Option<i64>, threshold: u32) -> bool {
        let threshold = i64::from(threshold);
        match (self.spec().clears, value) {
            (_, None) => true,
            (Clears::WhenOver, Some(_)) => false,
            (Clears::UnderThreshold, Some(value)) => value < threshold,
            (Clears::UnderHalf, Some(value)) => value * 2 < threshold,
            (Clears::AboveThreshold, Some(value)) => value > threshold,
        }
    }

    /// What an alert of this rule says, about the subject named `subject`, measured at `value`.
    pub fn message(self, subject: &str, value: i64) -> String {
        let minutes = |value: i64| match value {
            1 => "1 minute".to_owned(),
            value => format!("{value} minutes"),
        };
        match self {
            Self::ConnectorFailing if value == 0 => {
                format!("Calls to the CRM of connector \"{subject}\" are failing.")
            }
            Self::ConnectorFailing => format!(
                "Calls to the CRM of connector \"{subject}\" have failed for {}, with no success since.",
                minutes(value)
            ),
            Self::ConnectorPaused => format!(
                "The CRM of connector \"{subject}\" answered 429: its calls are paused for {} more.",
                minutes(value.max(1))
            ),
            Self::ConnectorBudget => {
                format!("Connector \"{subject}\" has made {value} % of its daily call budget today.")
            }
            Self::ConnectorBacklog => format!(
                "The oldest CRM work waiting for connector \"{subject}\" is {} old.",
                minutes(value)
            ),
            Self::ConnectorKeyExpiring => match value {
                ..0 => format!(
                    "The CRM key of connector \"{subject}\" has expired: its calls are refused until a new key is saved."
                ),
                0 => format!(
                    "The CRM key of connector \"{subject}\" expires within a day: create its replacement and save it."
                ),
                1 => format!(
                    "The CRM key of connector \"{subject}\" expires in 1 day: create its replacement and save it."
                ),
                days => format!(
                    "The CRM key of connector \"{subject}\" expires in {days} days: create its replacement and save it."
                ),
            },
            Self::EndpointDisabled => format!(
                "Webhook endpoint \"{subject}\" was disabled: its deliveries failed for too long. Nothing is sent to it until it is enabled again."
            ),
            Self::EndpointFailing if value == 0 => {
                format!("Deliveries to webhook endpoint \"{subject}\" are failing.")
            }
            Self::EndpointFailing => format!(
                "Deliveries to webhook endpoint \"{subject}\" have failed for {}, with no success since.",
                minutes(value)
            ),
            Self::LinkFailing => format!("The last {value} fetches of CRM link \"{subject}\" failed."),
            Self::ErrorRate => format!(
                "{value} % of the API requests of this hour and the last were answered with an error."
            ),
            Self::RateLimited => {
                format!("The API keys' rate limit refused {value} requests this hour and the last.")
            }
        }
    }
}

/// A rule as a business has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub enabled: bool,
    pub threshold: u32,
}

/// A rule as the API shows it: the business's setting beside the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RuleOut {
    pub kind: Kind,
    /// The rule in words.
    pub title: &'static str,
    pub subject: Subject,
    pub enabled: bool,
    /// Null for a rule without a threshold.
    pub threshold: Option<u32>,
    pub default_threshold: Option<u32>,
    pub unit: Unit,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub about: &'static str,
}

/// A change a business made to a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Change {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<u32>,
}

/// A business's alert settings: its changes to the default rules (none: every rule on at its
/// default) and whom alerts are emailed to. Stored as its JSON in `alert_settings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    rules: BTreeMap<Kind, Change>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    email_to: Vec<String>,
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("no alert rule {name:?}")))
    }
}

impl Settings {
    /// The settings stored as `text`; a row that does not read is a corrupt row (Err names why).
    pub fn from_stored(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|error| error.to_string())
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    pub fn rule(&self, kind: Kind) -> Rule {
        let change = self.rules.get(&kind).copied().unwrap_or_default();
        let (default, min, max) = kind.thresholds();
        Rule {
            enabled: change.enabled.unwrap_or(true),
            threshold: change.threshold.unwrap_or(default).clamp(min, max),
        }
    }

    pub fn email_to(&self) -> &[String] {
        &self.email_to
    }

    /// Every rule as the API shows it.
    pub fn rules(&self) -> Vec<RuleOut> {
        Kind::ALL
            .into_iter()
            .map(|kind| {
                let rule = self.rule(kind);
                let spec = kind.spec();
                let measured = spec.unit != Unit::None;
                RuleOut {
                    kind,
                    title: kind.title(),
                    subject: spec.subject,
                    enabled: rule.enabled,
                    threshold: measured.then_some(rule.threshold),
                    default_threshold: measured.then_some(spec.default),
                    unit: spec.unit,
                    min: measured.then_some(spec.min),
                    max: measured.then_some(spec.max),
                    about: spec.about,
                }
            })
            .collect()
    }

    /// Applies a change the API was sent: `rules`, an object of rule names each with `enabled`
    /// and/or `threshold`, and `email_to`, the whole list of recipients (empty: nobody). What is
    /// left out keeps its value; anything else is 422 naming its field.
    pub fn apply(&mut self, patch: &Value) -> Result<(), ApiError> {
        let Value::Object(fields) = patch else {
            return Err(ApiError::malformed("the body is a JSON object"));
        };
        if fields.is_empty() {
            return Err(ApiError::invalid(
                "rules",
                "nothing to change: give rules and/or email_to",
            ));
        }
        for name in fields.keys() {
            if !matches!(name.as_str(), "rules" | "email_to") {
                return Err(ApiError::invalid(
                    name,
                    format!("unknown field {name:?}: rules or email_to"),
                ));
            }
        }
        if let Some(rules) = fields.get("rules") {
            let Value::Object(rules) = rules else {
                return Err(ApiError::invalid("rules", "rules is an object of rule names"));
            };
            for (name, change) in rules {
                let field = format!("rules.{name}");
                let kind = Kind::parse(name).ok_or_else(|| {
                    let names: Vec<&str> = Kind::ALL.iter().map(|kind| kind.as_str()).collect();
                    ApiError::invalid(
                        &field,
                        format!("no rule {name:?}; the rules: {}", names.join(", ")),
                    )
                })?;
                let stored = self.rules.entry(kind).or_default();
                apply_change(kind, stored, change, &field)?;
                let (default, ..) = kind.thresholds();
                if stored.enabled == Some(true) {
                    stored.enabled = None;
                }
                if stored.threshold == Some(default) {
                    stored.threshold = None;
                }
                if *stored == Change::default() {
                    self.rules.remove(&kind);
                }
            }
        }
        if let Some(email_to) = fields.get("email_to") {
            self.email_to = recipients(email_to)?;
        }
        Ok(())
    }
}

fn apply_change(kind: Kind, stored: &mut Change, change: &Value, field: &str) -> Result<(), ApiError> {
    let Value::Object(change) = change else {
        return Err(ApiError::invalid(
            field,
            "a rule's change is an object: enabled and/or threshold",
        ));
    };
    if change.is_empty() {
        return Err(ApiError::invalid(
            field,
            "nothing to change: give enabled and/or threshold",
        ));
    }
    for (name, value) in change {
        let at = format!("{field}.{name}");
        match name.as_str() {
            "enabled" => {
                stored.enabled = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| ApiError::invalid(&at, "enabled is true or false"))?,
                );
            }
            "threshold" => {
                let (_, min, max) = kind.thresholds();
                if kind.spec().unit == Unit::None {
                    return Err(ApiError::invalid(
                        &at,
                        format!("rule {} has no threshold", kind.as_str()),
                    ));
                }
                let threshold = value
                    .as_u64()
                    .and_then(|value| u32::try_from(value).ok())
                    .filter(|value| (min..=max).contains(value))
                    .ok_or_else(|| {
                        ApiError::invalid(&at, format!("threshold is a whole number from {min} to {max}"))
                    })?;
                stored.threshold = Some(threshold);
            }
            _ => {
                return Err(ApiError::invalid(
                    &at,
                    format!("unknown field {name:?}: enabled or threshold"),
                ));
            }
        }
    }
    Ok(())
}

/// The recipients `email_to` names: up to [`MAX_RECIPIENTS`] addresses, each once.
fn recipients(value: &Value) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = value else {
        return Err(ApiError::invalid(
            "email_to",
            "email_to is a list of email addresses",
        ));
    };
    if items.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid(
            "email_to",
            format!("at most {MAX_RECIPIENTS} recipients"),
        ));
    }
    let mut addresses: Vec<String> = Vec::new();
    for (at, item) in items.iter().enumerate() {
        let field = format!("email_to[{at}]");
        let text = item
            .as_str()
            .ok_or_else(|| ApiError::invalid(&field, "an email address"))?;
        let email = Email::parse(text).map_err(|error| ApiError::invalid(&field, error.to_string()))?;
        if !addresses.iter().any(|known| known == email.as_str()) {
            addresses.push(email.as_str().to_owned());
        }
    }
    Ok(addresses)
}

/// The settings as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SettingsOut {
    pub rules: Vec<RuleOut>,
    /// Whom alerts are emailed to (none: no email).
    pub email_to: Vec<String>,
    /// The address alert emails are sent from: the business's first Mailgun account; null when it
    /// has none, and then no alert is emailed.
    pub email_from: Option<String>,
}

/// A subject whose rule's condition may hold, as the sweep measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    pub business_id: BusinessId,
    pub kind: Kind,
    /// The connector's, endpoint's or link's id, or the business's for a rule of the business.
    pub subject_id: String,
    pub subject_name: String,
    /// In the rule's unit (1 for a rule without a threshold).
    pub value: i64,
}

/// An alert that is open.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Open {
    pub id: AlertId,
    pub business_id: BusinessId,
    #[serde(deserialize_with = "kind_or_unknown")]
    pub kind: Option<Kind>,
    pub subject_id: String,
}

/// A rule's name read back: a rule that no longer exists is None, and its alerts are resolved.
fn kind_or_unknown<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Kind>, D::Error> {
    let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
    Ok(Kind::parse(&name))
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raise {
    pub measure: Measure,
    pub threshold: u32,
    pub message: String,
}

/// What a run of the rules changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub raise: Vec<Raise>,
    /// Open alerts whose condition is over, each with its business.
    pub resolve: Vec<(BusinessId, AlertId)>,
}

/// The alerts to raise and resolve, from what was `measured` and the alerts `open`, under each
/// business's settings (`settings_of`). `whole` says which rules were measured completely: an
/// open alert of a rule whose measures were cut short is not resolved for want of a measure.
pub fn judge<'a>(
    measured: &[Measure],
    whole: impl Fn(Kind) -> bool,
    open: &[Open],
    settings_of: impl Fn(&BusinessId) -> &'a Settings,
) -> Changes {
    let mut changes = Changes::default();
    let is_open = |measure: &Measure| {
        open.iter().any(|alert| {
            alert.business_id == measure.business_id
                && alert.kind == Some(measure.kind)
                && alert.subject_id == measure.subject_id
        })
    };
    for measure in measured {
        let rule = settings_of(&measure.business_id).rule(measure.kind);
        if rule.enabled && measure.kind.reached(measure.value, rule.threshold) && !is_open(measure) {
            changes.raise.push(Raise {
                measure: measure.clone(),
                threshold: rule.threshold,
                message: measure.kind.message(&measure.subject_name, measure.value),
            });
        }
    }
    for alert in open {
        let Some(kind) = alert.kind else {
            changes
                .resolve
                .push((alert.business_id.clone(), alert.id.clone()));
            continue;
        };
        let value = measured
            .iter()
            .find(|measure| {
                measure.business_id == alert.business_id
                    && measure.kind == kind
                    && measure.subject_id == alert.subject_id
            })
            .map(|measure| measure.value);
        if value.is_none() && !whole(kind) {
            continue;
        }
        let rule = settings_of(&alert.business_id).rule(kind);
        if !rule.enabled || kind.clears(value, rule.threshold) {
            changes
                .resolve
                .push((alert.business_id.clone(), alert.id.clone()));
        }
    }
    changes
}

/// What the sweep reads of a connector for its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSignals {
    pub business_id: BusinessId,
    pub id: String,
    pub name: String,
    /// When its calls began failing (none since the last success: null).
    pub failing_since_ms: Option<i64>,
    pub paused_until_ms: Option<i64>,
    pub per_day: Option<i64>,
    /// Calls granted today (UTC).
    pub spent_today: i64,
    /// When its oldest waiting work was recorded.
    pub oldest_waiting_ms: Option<i64>,
    /// When its CRM key expires, as the CRM last reported it.
    pub key_expires_ms: Option<i64>,
}

impl ConnectorSignals {
    pub fn measures(&self, now_ms: i64) -> Vec<Measure> {
        let measure = |kind, value| Measure {
            business_id: self.business_id.clone(),
            kind,
            subject_id: self.id.clone(),
            subject_name: self.name.clone(),
            value,
        };
        let mut measures = Vec::new();
        if let Some(since) = self.failing_since_ms {
            measures.push(measure(Kind::ConnectorFailing, minutes_since(since, now_ms)));
        }
        if let Some(until) = self.paused_until_ms.filter(|until| *until > now_ms) {
            measures.push(measure(Kind::ConnectorPaused, minutes_until(until, now_ms)));
        }
        if let Some(per_day) = self.per_day.filter(|per_day| *per_day > 0) {
            measures.push(measure(Kind::ConnectorBudget, self.spent_today * 100 / per_day));
        }
        if let Some(oldest) = self.oldest_waiting_ms {
            measures.push(measure(Kind::ConnectorBacklog, minutes_since(oldest, now_ms)));
        }
        if let Some(expires) = self.key_expires_ms {
            measures.push(measure(Kind::ConnectorKeyExpiring, days_left(expires, now_ms)));
        }
        measures
    }
}

/// What the sweep reads of a webhook endpoint for its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSignals {
    pub business_id: BusinessId,
    pub id: String,
    pub name: String,
    /// Disabled for failing (not by the business).
    pub disabled: bool,
    pub failing_since_ms: Option<i64>,
}

impl EndpointSignals {
    pub fn measures(&self, now_ms: i64) -> Vec<Measure> {
        let measure = |kind, value| Measure {
            business_id: self.business_id.clone(),
            kind,
            subject_id: self.id.clone(),
            subject_name: self.name.clone(),
            value,
        };
        match (self.disabled, self.failing_since_ms) {
            (true, _) => vec![measure(Kind::EndpointDisabled, 1)],
            (false, Some(since)) => vec![measure(Kind::EndpointFailing, minutes_since(since, now_ms))],
            (false, None) => Vec::new(),
        }
    }
}

/// A CRM link whose fetches are failing, and how many in a row.
pub fn link_measure(business_id: BusinessId, id: String, name: String, failures: i64) -> Measure {
    Measure {
        business_id,
        kind: Kind::LinkFailing,
        subject_id: id,
        subject_name: name,
        value: failures,
    }
}

/// The measures of a business's API requests this hour and the last: `errors` answered 4xx or
/// 5xx, `refused` of them by the rate limit.
pub fn usage_measures(business_id: &BusinessId, requests: i64, errors: i64, refused: i64) -> Vec<Measure> {
    let measure = |kind, value| Measure {
        business_id: business_id.clone(),
        kind,
        subject_id: business_id.to_string(),
        subject_name: "API requests".to_owned(),
        value,
    };
    let mut measures = Vec::new();
    let failed = errors - refused;
    if requests >= ERROR_RATE_MIN_REQUESTS && failed > 0 {
        measures.push(measure(Kind::ErrorRate, failed * 100 / requests));
    }
    if refused > 0 {
        measures.push(measure(Kind::RateLimited, refused));
    }
    measures
}

/// Whole minutes from `since_ms` to `now_ms` (0 when `since_ms` is not past).
/// Whole days from `now_ms` until `at_ms`, rounded down: 0 within the last day, negative once
/// past.
pub fn days_left(at_ms: i64, now_ms: i64) -> i64 {
    (at_ms - now_ms).div_euclid(86_400_000)
}

pub fn minutes_since(since_ms: i64, now_ms: i64) -> i64 {
    (now_ms - since_ms).max(0) / 60_000
}

/// Whole minutes from `now_ms` to `until_ms`, rounded up.
pub fn minutes_until(until_ms: i64, now_ms: i64) -> i64 {
    ((until_ms - now_ms).max(0) + 59_999) / 60_000
}

/// What became of one of an alert's emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum EmailState {
    /// To be sent (or tried again).
    Pending,
    Sent,
    /// Given up on after [`EMAIL_TRIES`] tries, or refused by Mailgun for good.
    Failed,
    /// Nobody to email, or no Mailgun account to send from.
    None,
}

impl EmailState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::None => "none",
        }
    }
}

/// The wait before the try after try `attempt` (1-based) of an alert email failed: a minute,
/// then doubling; None once [`EMAIL_TRIES`] are spent.
pub fn email_retry_ms(attempt: u32) -> Option<i64> {
    (attempt < EMAIL_TRIES).then(|| 60_000 * (1_i64 << (attempt - 1).min(10)))
}

/// An alert as the API and the webhook events show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Alert {
    pub id: AlertId,
    /// The rule's name (see the rules of GET /api-alert-settings).
    pub kind: String,
    pub subject: Option<Subject>,
    pub subject_id: String,
    pub subject_name: String,
    /// `open`, or `resolved`.
    pub state: String,
    pub message: String,
    /// The measure that crossed the threshold, in the rule's unit.
    pub value: i64,
    pub threshold: i64,
    pub raised_at: String,
    pub resolved_at: Option<String>,
    pub raised_email: EmailState,
    pub resolved_email: Option<EmailState>,
    /// Why the last try of an email failed.
    pub email_error: Option<String>,
}

/// The business's alerts, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AlertsOut {
    pub alerts: Vec<Alert>,
    /// How many are open (of all the business's, not only those listed).
    pub open: u64,
}

/// An alert email: its subject and text.
pub fn email(business: &str, alert: &Alert, resolved: bool) -> (String, String) {
    let what = Kind::parse(&alert.kind).map_or("Integration alert", Kind::title);
    let subject = if resolved {
        format!("[{business}] Resolved: {what} ({})", alert.subject_name)
    } else {
        format!("[{business}] Alert: {what} ({})", alert.subject_name)
    };
    let mut text = String::new();
    if resolved {
        text.push_str(&format!(
            "Resolved at {}: the condition is over.\n\n",
            alert.resolved_at.as_deref().unwrap_or("now")
        ));
    }
    text.push_str(&alert.message);
    text.push_str(&format!(
        "\n\nRaised at {} (threshold {}).\nRule: {}; alert {}.\n\n\
         The business's alerts and their rules are on the console's overview and its Alerts page, \
         and in the API (GET /api-alerts, GET and PATCH /api-alert-settings).\n",
        alert.raised_at, alert.threshold, alert.kind, alert.id
    ));
    (subject, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn business(n: u8) -> BusinessId {
        BusinessId::generate([n; 16])
    }

    fn measure(kind: Kind, subject: &str, value: i64) -> Measure {
        Measure {
            business_id: business(1),
            kind,
            subject_id: subject.to_owned(),
            subject_name: format!("name of {subject}"),
            value,
        }
    }

    fn open(kind: Kind, subject: &str) -> Open {
        Open {
            id: AlertId::generate([subject.len() as u8; 16]),
            business_id: business(1),
            kind: Some(kind),
            subject_id: subject.to_owned(),
        }
    }

    #[test]
    fn every_rule_has_a_name_that_reads_back_and_a_default_within_its_bounds() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            let (default, min, max) = kind.thresholds();
            assert!(min <= default && default <= max, "{kind:?}");
        }
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn an_alert_is_raised_once_at_its_threshold_and_not_again_while_open() {
        let defaults = Settings::default();
        let measured = [
            measure(Kind::ConnectorFailing, "a", 9),
            measure(Kind::ConnectorFailing, "b", 10),
            measure(Kind::ConnectorFailing, "c", 25),
        ];
        let changes = judge(
            &measured,
            |_| true,
            &[open(Kind::ConnectorFailing, "c")],
            |_| &defaults,
        );
        let raised: Vec<&str> = changes
            .raise
            .iter()
            .map(|r| r.measure.subject_id.as_str())
            .collect();
        assert_eq!(
            raised,
            ["b"],
            "under the threshold nothing, at it once, already open not again"
        );
        assert_eq!(changes.raise[0].threshold, 10);
        assert!(changes.resolve.is_empty(), "c still fails: it stays open");
        assert!(
            changes.raise[0].message.contains("10 minutes"),
            "{}",
            changes.raise[0].message
        );
    }

    #[test]
    fn an_alert_is_resolved_when_its_condition_is_over_and_shares_only_under_their_line() {
        let defaults = Settings::default();
        let alerts = [
            open(Kind::ConnectorFailing, "over"),
            open(Kind::ErrorRate, "half"),
            open(Kind::ErrorRate, "hovering"),
            open(Kind::ConnectorBudget, "day"),
        ];
        let measured = [
            measure(Kind::ErrorRate, "half", 2),
            measure(Kind::ErrorRate, "hovering", 4),
            measure(Kind::ConnectorBudget, "day", 12),
        ];
        let changes = judge(&measured, |_| true, &alerts, |_| &defaults);
        let resolved: Vec<&AlertId> = changes.resolve.iter().map(|(_, id)| id).collect();
        assert_eq!(
            resolved,
            [&alerts[0].id, &alerts[1].id, &alerts[3].id],
            "over: resolved; 2 % of a 5 % line is under half; 4 % is not; a budget under its line is"
        );
    }

    #[test]
    fn an_alert_of_a_rule_measured_in_part_is_not_resolved_for_want_of_a_measure() {
        let defaults = Settings::default();
        let alerts = [open(Kind::LinkFailing, "x")];
        let changes = judge(&[], |kind| kind != Kind::LinkFailing, &alerts, |_| &defaults);
        assert!(changes.resolve.is_empty());
        let changes = judge(&[], |_| true, &alerts, |_| &defaults);
        assert_eq!(changes.resolve.len(), 1);
    }

    #[test]
    fn a_business_sets_its_thresholds_turns_rules_off_and_names_its_recipients() {
        let mut settings = Settings::default();
        settings
            .apply(&json!({
                "rules": { "connector_failing": { "threshold": 0 }, "rate_limited": { "enabled": false } },
                "email_to": ["Ops@Acme.com", "ops@acme.com", "cto@acme.com"]
            }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            settings.rule(Kind::ConnectorFailing),
            Rule {
                enabled: true,
                threshold: 0
            }
        );
        assert!(!settings.rule(Kind::RateLimited).enabled);
        assert_eq!(settings.email_to(), ["ops@acme.com", "cto@acme.com"]);
        let read = Settings::from_stored(&settings.to_stored()).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(read, settings);

        let changes = judge(
            &[
                measure(Kind::ConnectorFailing, "a", 0),
                measure(Kind::RateLimited, "b", 10_000),
            ],
            |_| true,
            &[open(Kind::RateLimited, "old")],
            |_| &settings,
        );
        assert_eq!(
            changes.raise.len(),
            1,
            "at the first failure; the rule turned off raises nothing"
        );
        assert_eq!(changes.resolve.len(), 1, "and its open alert is resolved");

        // Back to the default: nothing is stored of that rule.
        settings
            .apply(&json!({ "rules": { "connector_failing": { "threshold": 10 }, "rate_limited": { "enabled": true } } }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            settings.to_stored(),
            r#"{"email_to":["ops@acme.com","cto@acme.com"]}"#
        );
        settings
            .apply(&json!({ "email_to": [] }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(settings, Settings::default());
    }

    #[test]
    fn a_bad_change_is_refused_naming_its_field_and_changes_nothing_it_names() {
        let cases = [
            (json!([]), None),
            (json!({}), Some("rules")),
            (json!({ "rule": {} }), Some("rule")),
            (json!({ "rules": [] }), Some("rules")),
            (
                json!({ "rules": { "nope": { "enabled": true } } }),
                Some("rules.nope"),
            ),
            (json!({ "rules": { "error_rate": {} } }), Some("rules.error_rate")),
            (
                json!({ "rules": { "error_rate": { "threshold": 0 } } }),
                Some("rules.error_rate.threshold"),
            ),
            (
                json!({ "rules": { "error_rate": { "threshold": 101 } } }),
                Some("rules.error_rate.threshold"),
            ),
            (
                json!({ "rules": { "error_rate": { "threshold": "5" } } }),
                Some("rules.error_rate.threshold"),
            ),
            (
                json!({ "rules": { "error_rate": { "threshold": 5.5 } } }),
                Some("rules.error_rate.threshold"),
            ),
            (
                json!({ "rules": { "endpoint_disabled": { "threshold": 1 } } }),
                Some("rules.endpoint_disabled.threshold"),
            ),
            (
                json!({ "rules": { "error_rate": { "enabled": "yes" } } }),
                Some("rules.error_rate.enabled"),
            ),
            (
                json!({ "rules": { "error_rate": { "when": 1 } } }),
                Some("rules.error_rate.when"),
            ),
            (json!({ "email_to": "ops@acme.com" }), Some("email_to")),
            (json!({ "email_to": ["not an address"] }), Some("email_to[0]")),
            (json!({ "email_to": [1] }), Some("email_to[0]")),
            (json!({ "email_to": vec!["a@b.co"; 11] }), Some("email_to")),
        ];
        for (body, field) in cases {
            let mut settings = Settings::default();
            let error = settings
                .apply(&body)
                .err()
                .unwrap_or_else(|| panic!("{body} is refused"));
            let named = error.body.field.as_deref();
            assert_eq!(named, field, "{body}: {error:?}");
        }
    }

    #[test]
    fn every_rule_is_shown_with_its_default_and_a_rule_without_a_threshold_shows_none() {
        let rules = Settings::default().rules();
        assert_eq!(rules.len(), Kind::ALL.len());
        let disabled = rules
            .iter()
            .find(|rule| rule.kind == Kind::EndpointDisabled)
            .unwrap_or_else(|| panic!("shown"));
        assert_eq!((disabled.threshold, disabled.unit), (None, Unit::None));
        let failing = rules
            .iter()
            .find(|rule| rule.kind == Kind::ConnectorFailing)
            .unwrap_or_else(|| panic!("shown"));
        assert_eq!(
            (failing.threshold, failing.min, failing.max),
            (Some(10), Some(0), Some(1440))
        );
    }

    #[test]
    fn an_email_is_tried_for_about_an_hour_then_failed() {
        let waits: Vec<i64> = (1..=EMAIL_TRIES).filter_map(email_retry_ms).collect();
        assert_eq!(waits, [60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000]);
        assert_eq!(email_retry_ms(EMAIL_TRIES), None);
    }

    #[test]
    fn a_connectors_signals_are_measured_in_each_rules_unit() {
        let now = 100 * 60_000;
        let signals = ConnectorSignals {
            business_id: business(1),
            id: "c".to_owned(),
            name: "Kustomer".to_owned(),
            failing_since_ms: Some(now - 12 * 60_000 - 5),
            paused_until_ms: Some(now + 90_000),
            per_day: Some(1000),
            spent_today: 915,
            oldest_waiting_ms: Some(now - 45 * 60_000),
            key_expires_ms: Some(now + 3 * 86_400_000 + 5),
        };
        let values: Vec<(Kind, i64)> = signals.measures(now).iter().map(|m| (m.kind, m.value)).collect();
        assert_eq!(
            values,
            [
                (Kind::ConnectorFailing, 12),
                (Kind::ConnectorPaused, 2),
                (Kind::ConnectorBudget, 91),
                (Kind::ConnectorBacklog, 45),
                (Kind::ConnectorKeyExpiring, 3)
            ]
        );
        let quiet = ConnectorSignals {
            failing_since_ms: None,
            paused_until_ms: Some(now - 1),
            per_day: None,
            oldest_waiting_ms: None,
            key_expires_ms: None,
            ..signals
        };
        assert!(
            quiet.measures(now).is_empty(),
            "a pause that is over is no measure"
        );
    }

    #[test]
    fn an_error_rate_needs_its_requests_and_leaves_refusals_to_their_own_rule() {
        let acme = business(1);
        let kinds = |measures: Vec<Measure>| -> Vec<(Kind, i64)> {
            measures.into_iter().map(|m| (m.kind, m.value)).collect()
        };
        assert_eq!(
            kinds(usage_measures(&acme, 19, 19, 0)),
            [],
            "too few requests to judge"
        );
        assert_eq!(
            kinds(usage_measures(&acme, 200, 30, 20)),
            [(Kind::ErrorRate, 5), (Kind::RateLimited, 20)]
        );
        assert_eq!(
            kinds(usage_measures(&acme, 200, 20, 20)),
            [(Kind::RateLimited, 20)]
        );
    }

    #[test]
    fn a_key_expiring_is_raised_at_its_days_left_and_resolved_when_replaced_by_a_later_one() {
        let acme = business(1);
        let settings = Settings::default();
        let day = 86_400_000;
        let now = 1_000 * day;
        let signals = |expires: Option<i64>| ConnectorSignals {
            business_id: acme.clone(),
            id: "c".to_owned(),
            name: "Kustomer".to_owned(),
            failing_since_ms: None,
            paused_until_ms: None,
            per_day: None,
            spent_today: 0,
            oldest_waiting_ms: None,
            key_expires_ms: expires,
        };
        let judged = |expires: Option<i64>, open: &[Open]| {
            judge(&signals(expires).measures(now), |_| true, open, |_| &settings)
        };
        assert!(
            judged(Some(now + 15 * day), &[]).raise.is_empty(),
            "15 days left: not yet"
        );
        let raised = judged(Some(now + 14 * day), &[]).raise;
        assert_eq!(raised.len(), 1, "14 days left: the default threshold");
        assert_eq!((raised[0].measure.value, raised[0].threshold), (14, 14));
        assert!(
            raised[0].message.contains("expires in 14 days"),
            "{}",
            raised[0].message
        );
        let expired = judged(Some(now - 1), &[]).raise;
        assert!(
            expired[0].message.contains("has expired"),
            "{}",
            expired[0].message
        );
        let open = [Open {
            business_id: acme.clone(),
            id: AlertId::generate([1; 16]),
            kind: Some(Kind::ConnectorKeyExpiring),
            subject_id: "c".to_owned(),
        }];
        assert!(
            judged(Some(now + 2 * day), &open).resolve.is_empty(),
            "still expiring"
        );
        assert_eq!(
            judged(Some(now + 365 * day), &open).resolve.len(),
            1,
            "a later key"
        );
        assert_eq!(judged(None, &open).resolve.len(), 1, "a key that never expires");
        assert_eq!((days_left(now + day - 1, now), days_left(now - 1, now)), (0, -1));
    }

    #[test]
    fn minutes_are_whole_and_a_pause_is_rounded_up() {
        assert_eq!(minutes_since(0, 119_999), 1);
        assert_eq!(minutes_since(10, 0), 0);
        assert_eq!(minutes_until(60_001, 0), 2);
        assert_eq!(minutes_until(0, 10), 0);
    }

    #[test]
    fn an_email_says_what_when_and_where_to_look() {
        let alert = Alert {
            id: AlertId::generate([3; 16]),
            kind: "connector_failing".to_owned(),
            subject: Some(Subject::Connector),
            subject_id: "c".to_owned(),
            subject_name: "Kustomer".to_owned(),
            state: "resolved".to_owned(),
            message: Kind::ConnectorFailing.message("Kustomer", 12),
            value: 12,
            threshold: 10,
            raised_at: "2026-11-27T10:00:00Z".to_owned(),
            resolved_at: Some("2026-11-27T10:30:00Z".to_owned()),
            raised_email: EmailState::Sent,
            resolved_email: Some(EmailState::Pending),
            email_error: None,
        };
        let (subject, text) = email("Acme", &alert, false);
        assert_eq!(subject, "[Acme] Alert: CRM connector failing (Kustomer)");
        assert!(
            text.contains("have failed for 12 minutes") && text.contains("threshold 10"),
            "{text}"
        );
        let (subject, text) = email("Acme", &alert, true);
        assert!(subject.starts_with("[Acme] Resolved:"), "{subject}");
        assert!(text.starts_with("Resolved at 2026-11-27T10:30:00Z"), "{text}");
    }
}
