//! A connector's configuration by kind: its settings and secrets as the admin API takes them,
//! checked by the CRM's own rules (`registry::Crm`) and written back in the form they are stored
//! in, and the request budget a new connector starts with.

use crate::crm::budget::Budget;
use crate::crm::krayin::KrayinSecrets;
use crate::crm::kustomer::KustomerSecrets;
use crate::crm::registry::Crm;
use crate::crm::work::ConnectorKind;
use crate::error::ApiError;
use crate::with_crm;
use serde_json::{Map, Value};
use std::fmt;

/// A connector's secrets, whatever its CRM: what the framework uses of them (the `Authorization`
/// its calls carry, the keys of the webhooks that feed it) and their stored form. Each CRM reads
/// its own into this ([`Crm::checked_secrets`]), so no one reads a key out of a JSON map by name.
#[derive(Clone, PartialEq)]
pub struct ConnectorSecrets {
    authorization: String,
    webhook_secret: Option<String>,
    webhook_token: Option<String>,
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
            stored,
        }
    }

    /// `secrets` checked by `kind`'s rules.
    pub fn parse(kind: ConnectorKind, secrets: &Value) -> Result<Self, ApiError> {
        with_crm!(kind, C => C::checked_secrets(secrets))
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

impl From<KustomerSecrets> for ConnectorSecrets {
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

impl From<KrayinSecrets> for ConnectorSecrets {
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

/// `settings` and `secrets` checked for `kind`: the settings as stored (every setting, defaults
/// filled in) and the secrets.
pub fn checked(
    kind: ConnectorKind,
    settings: &Value,
    secrets: &Value,
    allow_loopback: bool,
) -> Result<(Value, ConnectorSecrets), ApiError> {
    with_crm!(kind, C => Ok((C::checked_settings(settings, allow_loopback)?, C::checked_secrets(secrets)?)))
}

/// The budget a new connector of `kind` gets until an administrator sets its own.
pub fn default_budget(kind: ConnectorKind) -> Budget {
    with_crm!(kind, C => C::DEFAULT_BUDGET)
}

/// Where webhooks for this connector are sent, below this deployment's origin.
pub fn webhook_path(kind: ConnectorKind, connector_id: &str) -> String {
    with_crm!(kind, C => C::webhook_path(connector_id))
}

/// A connector's stored settings with a PATCH's merged in, as its CRM merges them.
pub fn patched_settings(kind: ConnectorKind, stored: &Value, patch: &Value) -> Value {
    with_crm!(kind, C => C::patched_settings(stored, patch))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_krayin_patch_may_name_the_address_by_the_guides_name() {
        let stored = json!({ "base_url": "https://old.example.com", "sync_messages": true });
        let patched = patched_settings(
            ConnectorKind::Krayin,
            &stored,
            &json!({ "api_url": "https://new.example.com/api/admin" }),
        );
        assert_eq!(
            patched,
            json!({ "api_url": "https://new.example.com/api/admin", "sync_messages": true })
        );
        let same_name = patched_settings(ConnectorKind::Krayin, &stored, &json!({ "sync_messages": false }));
        assert_eq!(
            same_name,
            json!({ "base_url": "https://old.example.com", "sync_messages": false })
        );
    }

    #[test]
    fn kustomer_settings_are_stored_with_their_defaults_and_unset_secrets_left_out() {
        let (settings, secrets) = checked(
            ConnectorKind::Kustomer,
            &json!({ "subdomain": "acme" }),
            &json!({ "api_key": "eyJkey" }),
            false,
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(settings["subdomain"], "acme");
        assert_eq!(settings["customer_lookup"], true);
        assert_eq!(secrets.names(), vec!["api_key"]);
        assert_eq!(secrets.authorization(), "Bearer eyJkey");
        assert_eq!(secrets.webhook_secret(), None);
    }

    #[test]
    fn a_connector_without_a_key_or_an_address_is_refused() {
        let no_key = checked(
            ConnectorKind::Kustomer,
            &json!({ "subdomain": "acme" }),
            &json!({}),
            false,
        );
        assert_eq!(no_key.err().map(|e| e.status()), Some(422));
        let nowhere = checked(
            ConnectorKind::Kustomer,
            &json!({}),
            &json!({ "api_key": "k" }),
            false,
        );
        assert_eq!(nowhere.err().map(|e| e.status()), Some(422));
    }

    #[test]
    fn patches_merge_as_rfc_7396_says() {
        let base = json!({ "a": 1, "b": { "c": 2, "d": 3 }, "e": [1] });
        let patch = json!({ "a": null, "b": { "c": 9 }, "e": [2, 3], "f": "new" });
        assert_eq!(
            merged(&base, &patch),
            json!({ "b": { "c": 9, "d": 3 }, "e": [2, 3], "f": "new" })
        );
    }
}
