//! A connector's configuration by kind: its settings and secrets as the admin API takes them,
//! checked by the CRM's own rules (`spec::Crm`) and written back in the form they are stored
//! in, and the request budget a new connector starts with.

use crate::crm::budget::Budget;
use crate::crm::oauth::{OAuthApp, Tokens};
pub use crate::crm::spec::{ConnectorSecrets, merged};
use crate::crm::spec::{ConnectorSettings, Crm};
use crate::crm::work::ConnectorKind;
use crate::error::ApiError;
use crate::with_crm;
use serde_json::Value;

/// `secrets` checked by `kind`'s rules.
pub fn secrets(kind: ConnectorKind, secrets: &Value) -> Result<ConnectorSecrets, ApiError> {
    with_crm!(kind, C => C::checked_secrets(secrets))
}

/// `settings` checked for `kind`, as stored (every setting, defaults filled in).
pub fn settings(kind: ConnectorKind, settings: &Value, allow_loopback: bool) -> Result<Value, ApiError> {
    with_crm!(kind, C => C::checked_settings(settings, allow_loopback))
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

/// The OAuth app a connector of `kind` with `settings` (checked by its rules) is authorised with;
/// None for a CRM that takes only a token (whatever the settings).
pub fn oauth_app(
    kind: ConnectorKind,
    settings: &Value,
    allow_loopback: bool,
) -> Result<Option<OAuthApp>, ApiError> {
    with_crm!(kind, C => if C::OAUTH {
        Ok(<C as Crm>::Settings::parse(settings, allow_loopback)?.oauth_app())
    } else {
        Ok(None)
    })
}

/// The settings a connector of `kind` authorised with OAuth is made with, once its token endpoint
/// answered `tokens` (`spec::Crm::authorized_settings`).
pub fn authorized_settings(
    kind: ConnectorKind,
    settings: &Value,
    tokens: &Tokens,
    allow_loopback: bool,
) -> Result<Value, ApiError> {
    with_crm!(kind, C => C::authorized_settings(settings, tokens, allow_loopback))
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
