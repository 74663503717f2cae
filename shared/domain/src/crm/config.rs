//! A connector's configuration by kind: its settings and secrets as the admin API takes them,
//! checked by the CRM's own rules and written back in the form they are stored in, and the
//! request budget a new connector starts with.

use crate::crm::budget::Budget;
use crate::crm::krayin::{KrayinSecrets, KrayinSettings};
use crate::crm::kustomer::{KustomerSecrets, KustomerSettings};
use crate::crm::work::ConnectorKind;
use crate::error::ApiError;
use serde_json::{Map, Value};

/// `settings` and `secrets` checked for `kind`: the settings as stored (every setting, defaults
/// filled in) and the secrets that are set.
pub fn checked(
    kind: ConnectorKind,
    settings: &Value,
    secrets: &Value,
    allow_loopback: bool,
) -> Result<(Value, Map<String, Value>), ApiError> {
    let (settings, secrets) = match kind {
        ConnectorKind::Kustomer => (
            KustomerSettings::parse(settings, allow_loopback)?.to_json(),
            KustomerSecrets::parse(secrets)?.to_json(),
        ),
        ConnectorKind::Krayin => (
            KrayinSettings::parse(settings, allow_loopback)?.to_json(),
            KrayinSecrets::parse(secrets)?.to_json(),
        ),
    };
    let secrets = match secrets {
        Value::Object(map) => map.into_iter().filter(|(_, value)| !value.is_null()).collect(),
        _ => Map::new(),
    };
    Ok((settings, secrets))
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
        assert_eq!(secrets.keys().collect::<Vec<_>>(), vec!["api_key"]);
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
