//! Salesforce, as plain Rust: the connector's settings and secrets, the OAuth flows
//! ([`oauth`]) and REST API requests ([`api`]) its documentation describes and how to read their answers, what our customers,
//! messages and escalations become there (Contacts or Leads, completed Tasks, Cases), the
//! connection test, and the Outbound Messages that tell the connector what changed.
//!
//! The runtime sends what [`api`] builds to [`SalesforceSettings::api_base`] (the org's
//! `instance_url`) with `Authorization: Bearer <access_token>`, reads `Sforce-Limit-Info` on every
//! answer ([`api::ApiUsage`]), and hands Outbound Messages to [`outbound::OutboundMessage::parse`]
//! once the address's secret segment matched; nothing here touches the network, the clock or
//! storage.
//!
//! [`Salesforce`] implements the framework's [`Crm`] trait and is registered in `with_crm!`; its
//! runtime half is `edge::crm::salesforce`.

pub mod api;
pub mod ids;
pub mod oauth;
pub mod outbound;
pub mod permissions;
pub mod settings;
pub mod timeline;

use crate::crm::budget::Budget;
use crate::crm::oauth::{OAuthApp, Tokens};
use crate::crm::retry::CallFailure;
use crate::crm::spec::{ConnectorSecrets, ConnectorSettings, Crm};
use crate::error::ApiError;
pub use ids::{OrganizationId, SalesforceId};
use serde_json::Value;
pub use settings::{Credentials, SalesforceSecrets, SalesforceSettings};

/// Salesforce as the connector framework knows it (`crate::crm::spec`).
pub struct Salesforce;

impl Crm for Salesforce {
    type Settings = SalesforceSettings;
    /// Salesforce limits an org by calls over the last 24 hours, not by the minute: 15,000 for a
    /// Developer Edition, and for Enterprise and Professional editions 100,000 plus 1,000 per
    /// Salesforce licence (5,000 per licence for Unlimited and Performance). The connector's own
    /// day starts at half the smallest production allowance, 50,000, the default share
    /// (`api_share_percent`); the share of what `Sforce-Limit-Info` reports for the org is the
    /// finer limit, and an administrator raises this one for a large org.
    const DEFAULT_BUDGET: Budget = Budget {
        per_minute: None,
        per_second: None,
        per_day: Some(50_000),
    };
    const OAUTH: bool = true;

    fn checked_secrets(secrets: &Value) -> Result<ConnectorSecrets, ApiError> {
        Ok(SalesforceSecrets::parse(secrets)?.into())
    }

    /// Outbound Messages are sent to this path followed by the connector's `outbound_token`.
    fn webhook_path(connector_id: &str) -> String {
        format!("/api/webhooks/salesforce/{connector_id}")
    }

    fn error_reason(status: u16, body: &[u8]) -> String {
        api::error_reason(status, body)
    }

    /// Calls go to the `instance_url` the token endpoint answered, and the connector is for the
    /// org its identity URL names (Outbound Messages from any other are refused).
    fn authorized_settings(
        settings: &Value,
        tokens: &Tokens,
        allow_loopback: bool,
    ) -> Result<Value, ApiError> {
        let answer = oauth::TokenResponse::of(tokens)
            .map_err(|reason| ApiError::crm_failed(format!("Salesforce's token endpoint: {reason}")))?;
        Ok(SalesforceSettings::parse(settings, allow_loopback)?
            .adopted(&answer, allow_loopback)?
            .to_json())
    }

    /// A spent allowance is a 403 to Salesforce and a 429 to the retry policy, which pauses the
    /// connector; a wait the answer's headers asked for is kept.
    fn call_failure(status: u16, body: &[u8], wait: Option<u32>) -> CallFailure {
        match api::call_failure(status, body) {
            CallFailure::Status {
                status,
                wait: ours,
                reason,
            } => CallFailure::Status {
                status,
                wait: wait.or(ours),
                reason,
            },
            other => other,
        }
    }
}

impl ConnectorSettings for SalesforceSettings {
    fn parse(settings: &Value, allow_loopback: bool) -> Result<Self, ApiError> {
        SalesforceSettings::parse(settings, allow_loopback)
    }

    fn to_json(&self) -> Value {
        SalesforceSettings::to_json(self)
    }

    fn api_base(&self) -> String {
        SalesforceSettings::api_base(self)
    }

    fn oauth_app(&self) -> Option<OAuthApp> {
        Some(SalesforceSettings::oauth(self))
    }
}

impl From<SalesforceSecrets> for ConnectorSecrets {
    /// A server app without a token yet carries no `Authorization`: its grant is due, so its first
    /// call gets one with the client credentials grant.
    fn from(secrets: SalesforceSecrets) -> Self {
        let (stored, grant) = (secrets.to_json(), secrets.grant());
        let authorization = secrets
            .access_token()
            .map(|token| format!("Bearer {token}"))
            .unwrap_or_default();
        Self::new(authorization, None, secrets.outbound_token, stored).with_grant(Some(grant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::oauth::Tokens;
    use crate::crm::salesforce::oauth::TokenResponse;
    use serde_json::json;

    #[test]
    fn an_authorisation_refreshes_into_a_new_bearer_token_before_the_session_times_out() {
        let stored = json!({
            "client_id": "3MVG9", "client_secret": "s3", "access_token": "00D!AQ1", "refresh_token": "5Aep",
            "access_token_expires_ms": 7_200_000, "outbound_token": "o".repeat(40),
        });
        let secrets = Salesforce::checked_secrets(&stored).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(secrets.authorization(), "Bearer 00D!AQ1");
        assert_eq!(secrets.webhook_token(), Some("o".repeat(40).as_str()));
        assert_eq!(secrets.webhook_secret(), None, "Salesforce signs nothing");
        assert!(secrets.grant().is_some_and(|grant| grant.due(7_200_000 - 60_000)));

        // The answer says nothing of how long the token lasts: the org's session timeout does.
        let settings = SalesforceSettings::parse(
            &json!({ "instance_url": "https://acme.my.salesforce.com" }),
            false,
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        let answer = Tokens::parse(
            br#"{"access_token":"00D!AQ2","signature":"x","scope":"api id refresh_token","instance_url":"https://acme.my.salesforce.com","id":"https://login.salesforce.com/id/00D5g000004Xyz1/0055g000001abcd","token_type":"Bearer","issued_at":"10000000"}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"))
        .lasting(settings.oauth().token_seconds);
        let refreshed = secrets
            .refreshed(&answer, 10_000_000)
            .unwrap_or_else(|| panic!("a grant refreshes"));
        assert_eq!(refreshed.authorization(), "Bearer 00D!AQ2");
        let kept = Value::Object(refreshed.to_json());
        assert_eq!(kept["access_token_expires_ms"], 10_000_000 + 7_200_000);
        assert_eq!(
            kept["refresh_token"], "5Aep",
            "Salesforce keeps the refresh token"
        );
        let reread = Salesforce::checked_secrets(&kept).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(reread, refreshed, "what is kept reads back the same");
    }

    #[test]
    fn a_server_app_has_no_token_until_its_first_call_asks_for_one() {
        let secrets = Salesforce::checked_secrets(&json!({ "client_id": "3MVG9", "client_secret": "s3" }))
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(secrets.authorization(), "");
        assert!(
            secrets.grant().is_some_and(|grant| grant.due(0)),
            "its first call asks for a token"
        );
        assert_eq!(secrets.names(), ["client_id", "client_secret"]);
    }

    #[test]
    fn the_connector_is_authorised_at_the_orgs_address_and_adopts_the_token_answers_org() {
        let settings = Salesforce::checked_settings(
            &json!({ "instance_url": "https://acme.my.salesforce.com" }),
            false,
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        let parsed = SalesforceSettings::parse(&settings, false).unwrap_or_else(|error| panic!("{error:?}"));
        let app = ConnectorSettings::oauth_app(&parsed).unwrap_or_else(|| panic!("Salesforce takes OAuth"));
        assert_eq!(
            app.token_url,
            "https://acme.my.salesforce.com/services/oauth2/token"
        );

        let answer = TokenResponse::parse(
            br#"{"access_token":"t","instance_url":"https://acme--uat.sandbox.my.salesforce.com","id":"https://test.salesforce.com/id/00D5g000004Xyz1/0055g000001abcd","issued_at":"1"}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let adopted = parsed
            .adopted(&answer, false)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(adopted.api_base(), "https://acme--uat.sandbox.my.salesforce.com");
        assert_eq!(adopted.organization_id, OrganizationId::parse("00D5g000004Xyz1"));
        assert_eq!(
            adopted.adopted(&answer, false).map(|again| again.organization_id),
            Ok(adopted.organization_id.clone())
        );

        let other_org = TokenResponse::parse(
            br#"{"access_token":"t","instance_url":"https://evil.my.salesforce.com","id":"https://login.salesforce.com/id/00D5g000004Xyz2/0055g000001abcd"}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let refused = adopted
            .adopted(&other_org, false)
            .map_err(|error| error.body.field);
        assert_eq!(
            refused,
            Err(Some("settings.organization_id".to_owned())),
            "another org's authorisation"
        );
        let elsewhere = TokenResponse::parse(
            br#"{"access_token":"t","instance_url":"https://attacker.example","id":"https://login.salesforce.com/id/00D5g000004Xyz1/0055g000001abcd"}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(
            parsed.adopted(&elsewhere, false).is_err(),
            "an instance_url that is not Salesforce's"
        );
    }

    #[test]
    fn a_connector_authorised_with_oauth_is_made_at_the_instance_and_for_the_org_the_token_answer_names() {
        let tokens = Tokens::parse(
            br#"{"access_token":"t","refresh_token":"r","instance_url":"https://acme--uat.sandbox.my.salesforce.com","id":"https://test.salesforce.com/id/00D5g000004Xyz1/0055g000001abcd","token_type":"Bearer"}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let started = json!({ "instance_url": "https://acme.my.salesforce.com", "create_cases": false });
        let made = Salesforce::authorized_settings(&started, &tokens, false)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            made["instance_url"],
            "https://acme--uat.sandbox.my.salesforce.com"
        );
        assert_eq!(made["organization_id"], "00D5g000004Xyz1EAC");
        assert_eq!(made["create_cases"], false, "what the business chose is kept");
        let elsewhere = Tokens::parse(br#"{"access_token":"t","instance_url":"https://attacker.example","id":"https://login.salesforce.com/id/00D5g000004Xyz1/0055g000001abcd"}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(Salesforce::authorized_settings(&started, &elsewhere, false).is_err());
    }

    #[test]
    fn outbound_messages_and_errors_have_their_own_homes() {
        assert_eq!(
            Salesforce::webhook_path("crm_1"),
            "/api/webhooks/salesforce/crm_1"
        );
        assert!(
            Salesforce::error_reason(
                401,
                br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            )
            .starts_with("Salesforce answered 401: INVALID_SESSION_ID: Session expired or invalid.")
        );
        let budget = Salesforce::DEFAULT_BUDGET;
        assert_eq!(
            (budget.per_minute, budget.per_second, budget.per_day),
            (None, None, Some(50_000))
        );
    }
}
