//! OAuth 2.0 for a CRM whose connectors a person may authorise on the CRM's consent page rather
//! than with a token they paste (HubSpot's): the app a CRM sends people to ([`OAuthApp`]), the
//! grant a connector keeps beside its access token ([`Grant`]), the token endpoint's forms
//! (RFC 6749 §4.1.3 for a code, §6 for a refresh) and answers, and the authorisation a person has
//! started and not finished yet ([`Pending`]), which travels sealed as the `state` parameter.
//!
//! A grant's names in a connector's stored secrets are the framework's, the same for every CRM:
//! [`CLIENT_ID`], [`CLIENT_SECRET`], [`REFRESH_TOKEN`], the access token as [`ACCESS_TOKEN`] and
//! when it expires as [`EXPIRES_MS`].

use crate::crm::work::ConnectorKind;
use crate::error::ApiError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use url::form_urlencoded;

pub const CLIENT_ID: &str = "client_id";
pub const CLIENT_SECRET: &str = "client_secret";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const ACCESS_TOKEN: &str = "access_token";
/// Unix milliseconds at which the access token stops working, as its CRM said.
pub const EXPIRES_MS: &str = "access_token_expires_ms";

/// An access token is refreshed this long before it expires, so that no call is made with one
/// that runs out on the way.
pub const REFRESH_AHEAD_MS: i64 = 5 * 60 * 1000;
/// A person has this long between starting an authorisation and coming back with its code
/// (HubSpot's codes are good for 10 minutes too).
pub const PENDING_MS: i64 = 10 * 60 * 1000;
/// At most this many characters of a CRM's refusal reach the sync log.
const MAX_REFUSAL_CHARS: usize = 300;

/// Where a CRM's OAuth app sends people and trades codes and refresh tokens for access tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthApp {
    /// The consent page.
    pub authorize_url: String,
    /// The token endpoint (form-encoded POSTs).
    pub token_url: String,
    /// The scopes asked for, space-separated on the consent page's URL.
    pub scopes: &'static [&'static str],
    /// Whether an authorisation proves itself with PKCE (RFC 7636): the consent page gets a
    /// challenge, and the code is traded with its verifier.
    pub pkce: bool,
    /// How long an access token lasts when the token endpoint's answer does not say (Salesforce's
    /// answers carry no `expires_in`: the org's session timeout decides), in seconds; None: such a
    /// token is refreshed only when the CRM refuses it.
    pub token_seconds: Option<i64>,
}

impl OAuthApp {
    /// The consent page's address for `client_id`, coming back to `redirect_uri` with `state`;
    /// with `pkce`, RFC 6749's `response_type` and RFC 7636's S256 challenge too (a CRM without
    /// PKCE, HubSpot, takes neither).
    pub fn authorize(&self, client_id: &str, redirect_uri: &str, state: &str, pkce: Option<&Pkce>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if pkce.is_some() {
            query.append_pair("response_type", "code");
        }
        query
            .append_pair("client_id", client_id)
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if let Some(pkce) = pkce {
            query
                .append_pair("code_challenge", pkce.challenge())
                .append_pair("code_challenge_method", "S256");
        }
        format!("{}?{}", self.authorize_url, query.finish())
    }
}

/// A PKCE pair (RFC 7636): the verifier the code is traded with, and its S256 challenge, which
/// the consent page's address carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkce {{ challenge: {:?}, .. }}", self.challenge)
    }
}

impl Pkce {
    /// From 32 random bytes (the caller's randomness): the verifier is their base64url, 43
    /// characters; the challenge the base64url of the verifier's SHA-256.
    pub fn new(random: [u8; 32]) -> Self {
        Self::from_verifier(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
    }

    /// The pair of a verifier kept while the person was on the consent page.
    pub fn from_verifier(verifier: String) -> Self {
        let digest = sha2::Sha256::digest(verifier.as_bytes());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        Self { verifier, challenge }
    }

    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// What a connector authorised with OAuth keeps to get a new access token.
#[derive(Clone, PartialEq)]
pub struct Grant {
    pub client_id: String,
    pub client_secret: String,
    /// The refresh token a person's authorisation gave; None for a server-to-server app, which
    /// gets its access tokens with its own credentials (the client credentials grant).
    pub refresh_token: Option<String>,
    /// When the access token kept beside it expires; unknown: it is refreshed when the CRM
    /// answers 401.
    pub expires_at_ms: Option<i64>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Grant {{ client_id: {:?}, expires_at_ms: {:?}, .. }}",
            self.client_id, self.expires_at_ms
        )
    }
}

impl Grant {
    /// Whether the access token should be refreshed before a call at `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        self.expires_at_ms
            .is_some_and(|at| now_ms >= at - REFRESH_AHEAD_MS)
    }

    /// The form that gets a new access token: the refresh token's (RFC 6749 §6), or without one
    /// the client's own credentials' (§4.4).
    pub fn refresh_form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        match &self.refresh_token {
            Some(refresh_token) => form
                .append_pair("grant_type", "refresh_token")
                .append_pair("client_id", &self.client_id)
                .append_pair("client_secret", &self.client_secret)
                .append_pair("refresh_token", refresh_token),
            None => form
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.client_id)
                .append_pair("client_secret", &self.client_secret),
        };
        form.finish()
    }
}

/// The form that trades an authorisation code for tokens (RFC 6749 §4.1.3), with the PKCE
/// `verifier` when the authorisation was challenged (RFC 7636 §4.5).
pub fn code_form(
    client_id: &str,
    client_secret: &str,
    redirect_uri: &str,
    code: &str,
    verifier: Option<&str>,
) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code", code);
    if let Some(verifier) = verifier {
        form.append_pair("code_verifier", verifier);
    }
    form.finish()
}

/// What the token endpoint answered (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// A new refresh token, when the CRM rotates them (HubSpot keeps the same one).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the access token lasts.
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// The rest of the answer, for the CRM to read (Salesforce's `instance_url` and identity URL).
    #[serde(flatten)]
    pub answered: serde_json::Map<String, Value>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens {{ expires_in: {:?}, .. }}", self.expires_in)
    }
}

impl Tokens {
    /// The token endpoint's successful answer; Err says what is wrong with it.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let tokens: Tokens = serde_json::from_slice(body)
            .map_err(|error| format!("the token endpoint's answer is not what OAuth 2.0 defines: {error}"))?;
        if tokens.access_token.trim().is_empty() {
            return Err("the token endpoint answered without an access token".to_owned());
        }
        Ok(tokens)
    }

    /// The answer, lasting `seconds` when it did not say how long it lasts (an app's
    /// [`OAuthApp::token_seconds`]), so that its token is refreshed before it runs out.
    pub fn lasting(mut self, seconds: Option<i64>) -> Self {
        if self.expires_in.is_none() {
            self.expires_in = seconds;
        }
        self
    }

    /// When the access token expires, for a token issued at `now_ms`.
    pub fn expires_at_ms(&self, now_ms: i64) -> Option<i64> {
        self.expires_in
            .filter(|seconds| *seconds > 0)
            .map(|seconds| now_ms.saturating_add(seconds.saturating_mul(1000)))
    }
}

/// What a token endpoint's refusal says (RFC 6749 §5.2's `error_description` or `error`, or
/// HubSpot's older `message`), for people.
pub fn refusal(crm: &str, status: u16, body: &[u8]) -> String {
    let said = serde_json::from_slice::<Value>(body).ok().and_then(|body| {
        ["error_description", "message", "error"]
            .iter()
            .find_map(|name| body.get(name)?.as_str().map(str::to_owned))
    });
    let said = said.map(|text| crate::text::cut_chars(text.trim(), MAX_REFUSAL_CHARS, "…"));
    let advice = match status {
        400 | 401 | 403 => {
            " Connect it again from the console: its authorisation was revoked, or the app was uninstalled or its client secret changed."
        }
        _ => "",
    };
    match said {
        Some(text) if !text.is_empty() => {
            format!("{crm}'s token endpoint answered {status}: {text}.{advice}")
        }
        _ => format!("{crm}'s token endpoint answered {status}.{advice}"),
    }
}

/// An authorisation a person started and has not finished: what the connector will be once the
/// CRM gives a code back. Sealed, bound to the business, it is the consent page's `state`, so
/// that nothing is stored until the code comes back and no other business can finish it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub kind: ConnectorKind,
    pub name: Option<String>,
    pub settings: Value,
    pub client_id: String,
    pub client_secret: String,
    /// Where the consent page sends the person back; the code is traded with the same.
    pub redirect_uri: String,
    pub expires_ms: i64,
    /// The authorisation's nonce (`edge::db::oauth_states`): a state finishes one authorisation.
    pub nonce: String,
    /// Who started it (`domain::audit::Actor::label`: the key or the console session): only
    /// they finish it, so a state sent to someone else does not connect their business.
    pub started_by: String,
    /// The PKCE verifier of an app that takes PKCE: it travels sealed in the state, never in
    /// the clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pending {{ kind: {:?}, client_id: {:?}, expires_ms: {} }}",
            self.kind, self.client_id, self.expires_ms
        )
    }
}

impl Pending {
    /// The pending authorisation `opened` from a state; a state that is not one, or that has
    /// expired at `now_ms`, is refused by the `state` field.
    pub fn parse(opened: &str, now_ms: i64) -> Result<Self, ApiError> {
        let pending: Pending = serde_json::from_str(opened).map_err(|_| not_ours())?;
        if now_ms > pending.expires_ms {
            return Err(ApiError::invalid(
                "state",
                "this authorisation was started more than 10 minutes ago: start it again",
            ));
        }
        Ok(pending)
    }

    /// Refuses `finishing_by` (an actor's label) unless they started the authorisation.
    pub fn finished_by(&self, finishing_by: &str) -> Result<(), ApiError> {
        if self.started_by == finishing_by {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "state",
                "this authorisation was started by another key or console session: start it again from yours",
            ))
        }
    }

    /// The connector's secrets once the code was traded for `tokens` at `now_ms`, in the names
    /// the CRM's secrets take (its own check reads them).
    pub fn secrets(&self, tokens: &Tokens, now_ms: i64) -> Value {
        serde_json::json!({
            CLIENT_ID: self.client_id,
            CLIENT_SECRET: self.client_secret,
            REFRESH_TOKEN: tokens.refresh_token,
            ACCESS_TOKEN: tokens.access_token,
            EXPIRES_MS: tokens.expires_at_ms(now_ms),
        })
    }
}

/// A state that is not one of ours (altered, another business's, or made up).
pub fn not_ours() -> ApiError {
    ApiError::invalid(
        "state",
        "state is not an authorisation this business started: start it again from the console",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(form: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(form.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }

    #[test]
    fn the_consent_pages_address_carries_the_app_its_scopes_the_way_back_and_the_state() {
        let app = OAuthApp {
            authorize_url: "https://app.hubspot.com/oauth/authorize".to_owned(),
            token_url: "https://api.hubapi.com/oauth/2026-03/token".to_owned(),
            scopes: &["crm.objects.contacts.read", "tickets"],
            pkce: false,
            token_seconds: None,
        };
        let url = app.authorize(
            "client-1",
            "https://edge.example.com/console",
            "v1:k1:a+b/c=",
            None,
        );
        let (page, query) = url.split_once('?').unwrap_or_else(|| panic!("{url}"));
        assert_eq!(page, "https://app.hubspot.com/oauth/authorize");
        assert_eq!(
            pairs(query),
            [
                ("client_id", "client-1"),
                ("scope", "crm.objects.contacts.read tickets"),
                ("redirect_uri", "https://edge.example.com/console"),
                ("state", "v1:k1:a+b/c="),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
        );
    }

    #[test]
    fn pkce_challenges_the_verifier_with_its_sha256_in_base64url() {
        // RFC 7636's appendix B: these 32 bytes, this verifier, this challenge.
        let random = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105,
            214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let pkce = Pkce::new(random);
        assert_eq!(pkce.verifier(), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(pkce.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(Pkce::from_verifier(pkce.verifier().to_owned()), pkce);
        assert!(
            !format!("{pkce:?}").contains(pkce.verifier()),
            "the verifier is never shown"
        );
    }

    #[test]
    fn a_pkce_apps_consent_page_carries_the_challenge_and_its_code_is_traded_with_the_verifier() {
        let app = OAuthApp {
            authorize_url: "https://acme.my.salesforce.com/services/oauth2/authorize".to_owned(),
            token_url: "https://acme.my.salesforce.com/services/oauth2/token".to_owned(),
            scopes: &["api", "id", "refresh_token"],
            pkce: true,
            token_seconds: None,
        };
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        let url = app.authorize("3MVG9", "https://edge.example.com/console", "s&t", Some(&pkce));
        let (page, query) = url.split_once('?').unwrap_or_else(|| panic!("{url}"));
        assert_eq!(page, app.authorize_url);
        assert_eq!(
            pairs(query),
            [
                ("response_type", "code"),
                ("client_id", "3MVG9"),
                ("scope", "api id refresh_token"),
                ("redirect_uri", "https://edge.example.com/console"),
                ("state", "s&t"),
                ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                ("code_challenge_method", "S256"),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
        );
        let form = pairs(&code_form(
            "3MVG9",
            "s3",
            "https://edge.example.com/console",
            "aPrx&",
            Some(pkce.verifier()),
        ));
        assert!(form.contains(&("code".to_owned(), "aPrx&".to_owned())));
        assert!(form.contains(&("code_verifier".to_owned(), pkce.verifier().to_owned())));
    }

    #[test]
    fn the_forms_are_rfc_6749s_and_encode_what_they_carry() {
        let mut grant = Grant {
            client_id: "c".to_owned(),
            client_secret: "s&=".to_owned(),
            refresh_token: Some("r t".to_owned()),
            expires_at_ms: None,
        };
        assert_eq!(
            grant.refresh_form(),
            "grant_type=refresh_token&client_id=c&client_secret=s%26%3D&refresh_token=r+t"
        );
        grant.refresh_token = None;
        assert_eq!(
            grant.refresh_form(),
            "grant_type=client_credentials&client_id=c&client_secret=s%26%3D"
        );
        assert_eq!(
            pairs(&code_form("c", "s", "https://x.example/console", "a&b", None)),
            [
                ("grant_type", "authorization_code"),
                ("client_id", "c"),
                ("client_secret", "s"),
                ("redirect_uri", "https://x.example/console"),
                ("code", "a&b"),
            ]
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
        );
    }

    #[test]
    fn a_token_is_refreshed_five_minutes_before_it_expires_and_an_unknown_expiry_waits_for_a_401() {
        let mut grant = Grant {
            client_id: "c".to_owned(),
            client_secret: "s".to_owned(),
            refresh_token: Some("r".to_owned()),
            expires_at_ms: Some(1_000_000),
        };
        assert!(!grant.due(1_000_000 - REFRESH_AHEAD_MS - 1));
        assert!(grant.due(1_000_000 - REFRESH_AHEAD_MS));
        assert!(grant.due(2_000_000));
        grant.expires_at_ms = None;
        assert!(!grant.due(i64::MAX));
    }

    #[test]
    fn the_token_endpoints_answer_is_read_and_its_refusals_said_with_what_to_do() {
        let tokens = Tokens::parse(
            br#"{"token_type":"bearer","access_token":"CJT","refresh_token":"r-1","expires_in":1800}"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(tokens.expires_at_ms(1_000), Some(1_801_000));
        assert_eq!(
            tokens.clone().lasting(Some(60)).expires_at_ms(1_000),
            Some(1_801_000),
            "an answer that says how long it lasts is taken at its word"
        );
        let silent = Tokens::parse(br#"{"access_token":"a"}"#).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(silent.clone().expires_at_ms(1_000), None);
        assert_eq!(silent.lasting(Some(7_200)).expires_at_ms(1_000), Some(7_201_000));
        assert_eq!(tokens.refresh_token.as_deref(), Some("r-1"));
        assert!(Tokens::parse(br#"{"access_token":""}"#).is_err());
        assert!(Tokens::parse(b"<html>").is_err());
        assert_eq!(
            Tokens::parse(br#"{"access_token":"a","expires_in":0}"#).map(|t| t.expires_at_ms(5)),
            Ok(None)
        );

        let said = refusal(
            "HubSpot",
            400,
            br#"{"error":"invalid_grant","error_description":"refresh token is invalid, expired or revoked","status":"BAD_REFRESH_TOKEN"}"#,
        );
        assert!(said.starts_with("HubSpot's token endpoint answered 400: refresh token is invalid, expired or revoked. Connect it again"), "{said}");
        assert_eq!(
            refusal("HubSpot", 503, b""),
            "HubSpot's token endpoint answered 503."
        );
    }

    #[test]
    fn a_pending_authorisation_is_read_back_until_it_expires_and_becomes_the_connectors_secrets() {
        let pending = Pending {
            kind: ConnectorKind::HubSpot,
            name: Some("Sales".to_owned()),
            settings: json!({}),
            client_id: "c".to_owned(),
            client_secret: "s".to_owned(),
            redirect_uri: "https://x.example/console".to_owned(),
            expires_ms: 10_000,
            nonce: "n".to_owned(),
            started_by: "console:s1".to_owned(),
            code_verifier: None,
        };
        assert_eq!(pending.finished_by("console:s1"), Ok(()));
        assert_eq!(
            pending
                .finished_by("key:cek_other")
                .map_err(|error| error.body.field),
            Err(Some("state".to_owned())),
            "another key or session does not finish it"
        );
        let text = serde_json::to_string(&pending).unwrap_or_default();
        assert_eq!(Pending::parse(&text, 10_000).ok(), Some(pending.clone()));
        let late = Pending::parse(&text, 10_001).map(|_| ());
        assert_eq!(
            late.map_err(|error| error.body.field),
            Err(Some("state".to_owned()))
        );
        assert!(Pending::parse("{}", 0).is_err());
        let challenged = Pending {
            code_verifier: Some("v".repeat(43)),
            ..pending.clone()
        };
        let text = serde_json::to_string(&challenged).unwrap_or_default();
        assert_eq!(
            Pending::parse(&text, 0).ok(),
            Some(challenged),
            "a PKCE verifier travels in the sealed state"
        );

        let tokens = Tokens::parse(br#"{"access_token":"a","refresh_token":"r","expires_in":60}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            pending.secrets(&tokens, 1_000),
            json!({ "client_id": "c", "client_secret": "s", "refresh_token": "r", "access_token": "a", "access_token_expires_ms": 61_000 })
        );
    }
}
