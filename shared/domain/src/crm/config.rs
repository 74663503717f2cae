//! A connector's configuration by kind: its settings and secrets as the admin API takes them,
//! checked by the CRM's own rules and written back in the form they are stored in, and the
//! request budget a new connector starts with.

use crate::crm::budget::Budget;
use crate::crm::krayin::{KrayinSecrets, KrayinSettings};
use crate::crm::kustomer::{KustomerSecrets, KustomerSettings};
use crate::crm::work::ConnectorKind;
use crate::error::ApiError;
use serde_json::{Map, Value};

/// A connector's secrets, by kind: read once where they are opened, so no one reads a key out
/// of a JSON map by name.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorSecrets {
    Kustomer(KustomerSecrets),
    Krayin(KrayinSecrets),
}

impl ConnectorSecrets {
    /// `secrets` checked by `kind`'s rules (unknown names are refused, the credential is
    /// required).
    pub fn parse(kind: ConnectorKind, secrets: &Value) -> Result<Self, ApiError> {
        Ok(match kind {
            ConnectorKind::Kustomer => Self::Kustomer(KustomerSecrets::parse(secrets)?),
            ConnectorKind::Krayin => Self::Krayin(KrayinSecrets::parse(secrets)?),
        })
    }

    /// The `Authorization` header's value the CRM's API takes.
    pub fn authorization(&self) -> String {
        match self {
            Self::Kustomer(secrets) => format!("Bearer {}", secrets.api_key),
            Self::Krayin(secrets) => format!("Bearer {}", secrets.api_token),
        }
    }

    /// The HMAC key of the webhooks that feed this connector (Kustomer's own, or Chatwoot's for
    /// Krayin), when one is set.
    pub fn webhook_secret(&self) -> Option<&str> {
        match self {
            Self::Kustomer(secrets) => secrets.webhook_secret.as_deref(),
            Self::Krayin(secrets) => secrets.webhook_secret.as_deref(),
        }
    }

    /// The token of the Chatwoot webhook URL for a Chatwoot that signs nothing (Krayin only).
    pub fn webhook_token(&self) -> Option<&str> {
        match self {
            Self::Kustomer(_) => None,
            Self::Krayin(secrets) => secrets.webhook_token.as_deref(),
        }
    }

    /// The secrets that are set, as they are stored (sealed) and merged with a PATCH.
    pub fn to_json(&self) -> Map<String, Value> {
        let json = match self {
            Self::Kustomer(secrets) => secrets.to_json(),
            Self::Krayin(secrets) => secrets.to_json(),
        };
        match json {
            Value::Object(map) => map.into_iter().filter(|(_, value)| !value.is_null()).collect(),
            _ => Map::new(),
        }
    }

    /// The names of the secrets that are set, sorted: all an answer ever says of them.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.to_json().into_iter().map(|(name, _)| name).collect();
        names.sort();
        names
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
    let settings = match kind {
        ConnectorKind::Kustomer => KustomerSettings::parse(settings, allow_loopback)?.to_json(),
        ConnectorKind::Krayin => KrayinSettings::parse(settings, allow_loopback)?.to_json(),
    };
    Ok((settings, ConnectorSecrets::parse(kind, secrets)?))
}

/// The budget a new connector of `kind` gets until an administrator sets its own.
pub fn default_budget(kind: ConnectorKind) -> Budget {
    match kind {
        ConnectorKind::Kustomer => Budget::KUSTOMER,
        ConnectorKind::Krayin => Budget::KRAYIN,
    }
}

/// Where webhooks for this connector are sent, below this deployment's origin: the CRM's own
/// (Kustomer's), or those of the platform that feeds it (Chatwoot's, for Krayin).
pub fn webhook_path(kind: ConnectorKind, connector_id: &str) -> String {
    match kind {
        ConnectorKind::Kustomer => format!("/api/webhooks/kustomer/{connector_id}"),
        ConnectorKind::Krayin => format!("/webhooks/chatwoot/{connector_id}"),
    }
}

/// A connector's stored settings with a PATCH's merged in ([`merged`]). Krayin's address has two
/// names (`base_url`, and the guide's `api_url`): a patch that names it by either replaces it.
pub fn patched_settings(kind: ConnectorKind, stored: &Value, patch: &Value) -> Value {
    let mut base = stored.clone();
    if kind == ConnectorKind::Krayin
        && let (Value::Object(base), Some(patch)) = (&mut base, patch.as_object())
        && patch.contains_key("api_url")
    {
        base.remove("base_url");
    }
    merged(&base, patch)
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
