//! What a CRM is to the connector framework, without the network: the traits each CRM's folder
//! implements ([`Crm`], [`ConnectorSettings`]), the secrets every connector has whatever its CRM
//! ([`ConnectorSecrets`]), and what every CRM's settings and errors share (RFC 7396 merging, the
//! wording of an error answer). The CRMs themselves are registered in `registry`.

use crate::crm::budget::Budget;
use crate::crm::oauth::{self, Grant, OAuthApp, Tokens};
use crate::crm::retry::CallFailure;
use crate::error::ApiError;
use serde_json::{Map, Value};
use std::fmt;

/// A CRM's settings, read from what the admin API stored.
pub trait ConnectorSettings: Sized {
    /// The settings checked by the CRM's rules.
    fn parse(settings: &Value, allow_loopback: bool) -> Result<Self, ApiError>;

    /// As they are stored: every setting, defaults filled in.
    fn to_json(&self) -> Value;

    /// The root of the CRM's API, without a trailing slash.
    fn api_base(&self) -> String;

    /// The OAuth app connectors of this CRM may be authorised with, at these settings' address;
    /// None for a CRM that takes only a token.
    fn oauth_app(&self) -> Option<OAuthApp> {
        None
    }
}

/// A CRM as the connector framework knows it, without the network.
pub trait Crm {
    type Settings: ConnectorSettings;
    /// The request budget a new connector starts with until an administrator sets its own.
    const DEFAULT_BUDGET: Budget;
    /// Whether a person may authorise its connectors with OAuth (its settings' `oauth_app`).
    const OAUTH: bool = false;

    /// `settings` checked by the CRM's rules, as they are stored: every setting, defaults filled
    /// in.
    fn checked_settings(settings: &Value, allow_loopback: bool) -> Result<Value, ApiError> {
        Ok(Self::Settings::parse(settings, allow_loopback)?.to_json())
    }

    /// `secrets` checked by the CRM's rules (unknown names are refused, the credential is
    /// required).
    fn checked_secrets(secrets: &Value) -> Result<ConnectorSecrets, ApiError>;

    /// Where webhooks for a connector of this CRM are sent, below this deployment's origin: the
    /// CRM's own, or those of the platform that feeds it.
    fn webhook_path(connector_id: &str) -> String;

    /// What an answer of the CRM that is not a success says, for the sync log.
    fn error_reason(status: u16, body: &[u8]) -> String;

    /// What an answer that is not a success means to the retry policy: by default its status,
    /// the wait its headers asked for and [`Crm::error_reason`]. A CRM that refuses a spent
    /// allowance with another status than 429 says so here.
    fn call_failure(status: u16, body: &[u8], wait: Option<u32>) -> CallFailure {
        CallFailure::Status {
            status,
            wait,
            reason: Self::error_reason(status, body),
        }
    }

    /// The settings a connector authorised with OAuth is made with once the token endpoint
    /// answered `tokens`: by default those the authorisation started with. A CRM whose answer
    /// says where the account is (Salesforce's `instance_url` and org) adopts it here.
    fn authorized_settings(
        settings: &Value,
        tokens: &Tokens,
        allow_loopback: bool,
    ) -> Result<Value, ApiError> {
        let _ = (tokens, allow_loopback);
        Ok(settings.clone())
    }

    /// The stored settings with a PATCH's merged in (RFC 7396, unless the CRM says otherwise).
    fn patched_settings(stored: &Value, patch: &Value) -> Value {
        merged(stored, patch)
    }
}

/// A connector's secrets, whatever its CRM: what the framework uses of them (the `Authorization`
/// its calls carry, the keys of the webhooks that feed it) and their stored form. Each CRM reads
/// its own into this ([`Crm::checked_secrets`]), so no one reads a key out of a JSON map by name.
#[derive(Clone, PartialEq)]
pub struct ConnectorSecrets {
    authorization: String,
    webhook_secret: Option<String>,
    webhook_token: Option<String>,
    /// What refreshes the access token, for a connector authorised with OAuth.
    grant: Option<Grant>,
    /// The secrets that are set, as they are stored (sealed) and merged with a PATCH.
    stored: Map<String, Value>,
}

/// Credentials stay out of logs and debug output: only the names of those set.
impl fmt::Debug for ConnectorSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectorSecrets {{ set: {:?} }}", self.names())
    }
}

impl ConnectorSecrets {
    /// The secrets of a connector whose calls carry `authorization` and whose feeding webhooks
    /// are checked with `webhook_secret` (an HMAC key) or `webhook_token` (a URL's secret
    /// segment), stored as `stored` (its nulls left out).
    pub fn new(
        authorization: String,
        webhook_secret: Option<String>,
        webhook_token: Option<String>,
        stored: Value,
    ) -> Self {
        let stored = match stored {
            Value::Object(map) => map.into_iter().filter(|(_, value)| !value.is_null()).collect(),
            _ => Map::new(),
        };
        Self {
            authorization,
            webhook_secret,
            webhook_token,
            grant: None,
            stored,
        }
    }

    /// The same secrets, whose access token `grant` refreshes.
    pub fn with_grant(self, grant: Option<Grant>) -> Self {
        Self { grant, ..self }
    }

    /// The OAuth grant, for a connector authorised with OAuth.
    pub fn grant(&self) -> Option<&Grant> {
        self.grant.as_ref()
    }

    /// The secrets once `tokens` came back for the grant's refresh at `now_ms`: the new access
    /// token sent as a bearer token, the refresh token replaced when the CRM rotated it. None
    /// without a grant.
    pub fn refreshed(&self, tokens: &Tokens, now_ms: i64) -> Option<Self> {
        let mut grant = self.grant.clone()?;
        let expires_at_ms = tokens.expires_at_ms(now_ms);
        let mut stored = self.stored.clone();
        stored.insert(
            oauth::ACCESS_TOKEN.to_owned(),
            Value::from(tokens.access_token.clone()),
        );
        match expires_at_ms {
            Some(at) => stored.insert(oauth::EXPIRES_MS.to_owned(), Value::from(at)),
            None => stored.remove(oauth::EXPIRES_MS),
        };
        // A refresh token is rotated; a server app's grant, which has none, gets none.
        if let (Some(rotated), Some(kept)) = (&tokens.refresh_token, &mut grant.refresh_token) {
            stored.insert(oauth::REFRESH_TOKEN.to_owned(), Value::from(rotated.clone()));
            kept.clone_from(rotated);
        }
        grant.expires_at_ms = expires_at_ms;
        Some(Self {
            authorization: format!("Bearer {}", tokens.access_token),
            webhook_secret: self.webhook_secret.clone(),
            webhook_token: self.webhook_token.clone(),
            grant: Some(grant),
            stored,
        })
    }

    /// The `Authorization` header's value the CRM's API takes.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// The HMAC key of the webhooks that feed this connector (Kustomer's own, or Chatwoot's for
    /// Krayin), when one is set.
    pub fn webhook_secret(&self) -> Option<&str> {
        self.webhook_secret.as_deref()
    }

    /// The token of the feeding webhook's URL, for a platform that signs nothing (Chatwoot before
    /// 4.11.2, for Krayin).
    pub fn webhook_token(&self) -> Option<&str> {
        self.webhook_token.as_deref()
    }

    /// The secrets that are set, as they are stored (sealed) and merged with a PATCH.
    pub fn to_json(&self) -> Map<String, Value> {
        self.stored.clone()
    }

    /// The names of the secrets that are set, sorted: all an answer ever says of them.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.stored.keys().cloned().collect();
        names.sort();
        names
    }
}

/// `patch` merged into `base` as RFC 7396 merges objects: a key set to null is removed, an
/// object merges key by key, anything else replaces.
pub fn merged(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            let mut out = base.clone();
            for (key, value) in patch {
                if value.is_null() {
                    out.remove(key);
                } else {
                    let merged_value = merged(out.get(key).unwrap_or(&Value::Null), value);
                    out.insert(key.clone(), merged_value);
                }
            }
            Value::Object(out)
        }
        (_, patch) => patch.clone(),
    }
}

/// What a CRM's answer that is not a success says, for people (the sync log, a failed test): who
/// answered what, what it `said` (control characters out, cut at 300 characters), and for the
/// statuses that need one, the `advice` of what to check.
pub fn error_reason(crm: &str, status: u16, said: Option<String>, advice: Option<&str>) -> String {
    const MAX_SAID_CHARS: usize = 300;
    let said = said.map(|text| {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        crate::text::cut_chars(text.trim(), MAX_SAID_CHARS, "…")
    });
    let mut reason = match said {
        Some(text) if !text.is_empty() => format!("{crm} answered {status}: {text}"),
        _ => format!("{crm} answered {status}"),
    };
    if let Some(advice) = advice {
        if !reason.ends_with('.') {
            reason.push('.');
        }
        reason.push(' ');
        reason.push_str(advice);
    }
    reason
}
