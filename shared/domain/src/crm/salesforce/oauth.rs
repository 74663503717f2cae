//! Salesforce's OAuth 2.0 token endpoint, at the org's own address: its answer (which names the
//! org and says nothing of when the token expires) and what a refusal means. The consent page
//! with its PKCE challenge and the forms are the framework's (`crate::crm::oauth`).

use super::ids::{OrganizationId, SalesforceId};
use crate::crm::oauth::{self as framework, Tokens};
use crate::json::Malformed;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// What the token endpoint answered. Salesforce says nothing of when the access token expires:
/// it lasts as long as the org's session timeout from `issued_at`.
#[derive(Clone, PartialEq, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Where every call of this connector goes.
    pub instance_url: String,
    /// The identity URL, `https://login.salesforce.com/id/{org id}/{user id}`.
    pub id: String,
    /// Unix milliseconds, as text.
    #[serde(default)]
    pub issued_at: Option<String>,
    /// Given by the web server flow when the app has the `refresh_token` scope; never by client
    /// credentials.
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Base64 of HMAC-SHA256 over `id` then `issued_at`, keyed with the client secret.
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenResponse {{ instance_url: {:?}, id: {:?}, issued_at: {:?}, scope: {:?}, .. }}",
            self.instance_url, self.id, self.issued_at, self.scope
        )
    }
}

impl TokenResponse {
    /// The token endpoint's successful answer; Err says what is wrong with it.
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let tokens: TokenResponse = serde_json::from_slice(body)
            .map_err(|error| format!("not Salesforce's token answer: {error}"))?;
        if tokens.access_token.trim().is_empty() {
            return Err("Salesforce's token endpoint answered without an access token".into());
        }
        if let Some(kind) = &tokens.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(format!(
                "Salesforce's token endpoint answered a {kind} token; the connector sends bearer tokens"
            )
            .into());
        }
        if tokens.organization_id().is_none() {
            return Err("Salesforce's token answer has no identity URL naming an org and a user".into());
        }
        Ok(tokens)
    }

    /// The org the token is for, from the identity URL.
    pub fn organization_id(&self) -> Option<OrganizationId> {
        OrganizationId::parse(self.identity_segments()?.0)
    }

    /// The user the token is for, from the identity URL.
    pub fn user_id(&self) -> Option<SalesforceId> {
        SalesforceId::parse(self.identity_segments()?.1)
    }

    fn identity_segments(&self) -> Option<(&str, &str)> {
        let path = self.id.split_once("://")?.1.split_once('/')?.1;
        let mut segments = path.trim_end_matches('/').split('/');
        match (segments.next(), segments.next(), segments.next(), segments.next()) {
            (Some("id"), Some(org), Some(user), None) => Some((org, user)),
            _ => None,
        }
    }

    pub fn issued_at_ms(&self) -> Option<i64> {
        self.issued_at
            .as_deref()?
            .trim()
            .parse()
            .ok()
            .filter(|ms: &i64| *ms > 0)
    }

    /// Whether the answer is signed with `client_secret`: its identity URL (and with it the org)
    /// is Salesforce's, not something that came between.
    pub fn signed_by(&self, client_secret: &str) -> bool {
        let (Some(issued_at), Some(signature)) = (&self.issued_at, &self.signature) else {
            return false;
        };
        let mac = crate::crypto::hmac_sha256(
            client_secret.as_bytes(),
            &[self.id.as_bytes(), issued_at.as_bytes()],
        );
        let expected = base64::engine::general_purpose::STANDARD.encode(mac);
        !client_secret.is_empty()
            && crate::crypto::constant_time_eq(expected.as_bytes(), signature.trim().as_bytes())
    }

    /// The answer the framework read as `tokens`, as Salesforce's.
    pub fn of(tokens: &Tokens) -> Result<Self, Malformed> {
        let mut answer = tokens.answered.clone();
        answer.insert(
            "access_token".to_owned(),
            Value::from(tokens.access_token.clone()),
        );
        if let Some(refresh) = &tokens.refresh_token {
            answer.insert("refresh_token".to_owned(), Value::from(refresh.clone()));
        }
        Self::parse(Value::Object(answer).to_string().as_bytes())
    }
}

/// Why the token endpoint refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// The authorisation is gone (`invalid_grant`): the refresh token was revoked, expired by the
    /// app's policy, or its user deactivated; or a server app's integration user is no longer
    /// valid. Only connecting the org again helps.
    Revoked,
    /// The app's key or secret is wrong, or the app is gone (`invalid_client`,
    /// `invalid_client_id`).
    WrongApp,
    /// Anything else: Salesforce down, a flow the app does not allow.
    Other,
}

/// What a token endpoint's refusal means, and what it says for people.
pub fn token_refusal(status: u16, body: &[u8]) -> (TokenRefusal, String) {
    let answer = serde_json::from_slice::<Value>(body).ok();
    let text = |name: &str| {
        answer
            .as_ref()
            .and_then(|answer| answer.get(name)?.as_str())
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let kind = match text("error").unwrap_or_default() {
        "invalid_grant" => TokenRefusal::Revoked,
        "invalid_client" | "invalid_client_id" | "invalid_client_credentials" => TokenRefusal::WrongApp,
        _ => TokenRefusal::Other,
    };
    let said = match kind {
        TokenRefusal::Revoked => {
            let description = text("error_description").or(text("error")).unwrap_or_default();
            format!(
                "Salesforce's token endpoint answered {status}: {}. The org no longer accepts this connector's \
                 authorisation: it was revoked (Setup › Connected Apps OAuth Usage), ended by the app's refresh \
                 token policy, or its user was deactivated. Connect the org again from the console.",
                crate::text::cut_chars(description, 300, "…")
            )
        }
        TokenRefusal::WrongApp => format!(
            "{} Check secrets.client_id and secrets.client_secret against the app's consumer key and secret.",
            framework::refusal("Salesforce", status, body)
        ),
        TokenRefusal::Other => framework::refusal("Salesforce", status, body),
    };
    (kind, said)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_ANSWER: &str = r#"{"access_token":"00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs","refresh_token":"5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrKwnZa7j","signature":"SSSbLO/gBhmmyNUvN18ODBDFYHzakxOMgqYtu+hDPsc=","scope":"api id refresh_token","instance_url":"https://acme.my.salesforce.com","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P","token_type":"Bearer","issued_at":"1278448101416"}"#;

    #[test]
    fn a_token_answer_names_the_org_the_user_and_when_it_was_issued() {
        let tokens = TokenResponse::parse(TOKEN_ANSWER.as_bytes()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tokens.organization_id(), OrganizationId::parse("00Dx0000000BV7z"));
        assert_eq!(tokens.user_id(), SalesforceId::parse("005x00000012Q9P"));
        assert_eq!(tokens.issued_at_ms(), Some(1_278_448_101_416));
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("AR8AQ") && !shown.contains("5Aep"), "{shown}");
    }

    #[test]
    fn a_token_answer_is_trusted_only_when_signed_with_the_apps_secret() {
        let mut tokens =
            TokenResponse::parse(TOKEN_ANSWER.as_bytes()).unwrap_or_else(|error| panic!("{error}"));
        let mac = crate::crypto::hmac_sha256(
            b"consumer-secret",
            &[
                tokens.id.as_bytes(),
                tokens.issued_at.as_deref().unwrap_or_default().as_bytes(),
            ],
        );
        tokens.signature = Some(base64::engine::general_purpose::STANDARD.encode(mac));
        assert!(tokens.signed_by("consumer-secret"));
        assert!(!tokens.signed_by("another-secret"));
        assert!(!tokens.signed_by(""));
        let mut swapped = tokens.clone();
        swapped.id = "https://login.salesforce.com/id/00Dx0000000XXXX/005x00000012Q9P".to_owned();
        assert!(
            !swapped.signed_by("consumer-secret"),
            "another org's identity URL"
        );
        let mut unsigned = tokens;
        unsigned.signature = None;
        assert!(!unsigned.signed_by("consumer-secret"));
    }

    #[test]
    fn token_answers_without_what_the_connector_needs_are_refused() {
        let cases = [
            (
                r#"{"access_token":"","instance_url":"https://a.my.salesforce.com","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P"}"#,
                "no token",
            ),
            (
                r#"{"access_token":"t","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P"}"#,
                "no instance_url",
            ),
            (
                r#"{"access_token":"t","instance_url":"https://a.my.salesforce.com","id":"https://login.salesforce.com/id/005x00000012Q9P"}"#,
                "an identity URL without the org",
            ),
            (
                r#"{"access_token":"t","instance_url":"https://a.my.salesforce.com","id":"https://login.salesforce.com/id/0035g000004Xyz1/005x00000012Q9P"}"#,
                "an identity URL whose org is a contact",
            ),
            (
                r#"{"access_token":"t","instance_url":"https://a.my.salesforce.com","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P","token_type":"MAC"}"#,
                "not a bearer token",
            ),
            ("<html>", "not JSON"),
        ];
        for (body, description) in cases {
            assert!(TokenResponse::parse(body.as_bytes()).is_err(), "{description}");
        }
    }

    #[test]
    fn a_revoked_authorisation_is_said_plainly() {
        let (kind, said) = token_refusal(
            400,
            br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        );
        assert_eq!(kind, TokenRefusal::Revoked);
        assert!(said.starts_with("Salesforce's token endpoint answered 400: expired access/refresh token. The org no longer accepts"), "{said}");
        assert!(
            said.ends_with("Connect the org again from the console."),
            "{said}"
        );
        let (kind, said) = token_refusal(
            400,
            br#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
        );
        assert_eq!(kind, TokenRefusal::WrongApp);
        assert!(said.contains("secrets.client_id"), "{said}");
        assert_eq!(token_refusal(503, b"").0, TokenRefusal::Other);
    }
}
