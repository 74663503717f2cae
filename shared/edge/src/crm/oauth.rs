//! OAuth 2.0 at runtime (`domain::crm::oauth` holds the forms and rules): the CRM's token
//! endpoint called (a refresh, for `client`, which keeps what comes back; a code, when an
//! authorisation is finished), and an authorisation's state sealed to the business that started
//! it.

use crate::Env;
use crate::console_log;
use crate::platform::bounded_fetch::{self, Failure};
use crate::platform::secrets_key;
use crate::runtime::{self, Method};
use domain::crm::oauth::{self, OAuthApp, Pending, Tokens};
use domain::crm::retry::CallFailure;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::request_url::RequestUrl;
use domain::sealed::{Place, Stored};

const FORM: &str = "application/x-www-form-urlencoded";
/// A token endpoint that has not answered in this long is given up on for this try.
const TIMEOUT_MS: u64 = 10_000;
/// Of its answer, only this much is read: tokens are a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

/// Where a pending authorisation's state is sealed: bound to the business that started it, so
/// that no other business can finish it.
fn state_place(business: &BusinessId) -> Place<'_> {
    Place {
        table: "crm_oauth",
        column: "state",
        row_id: business.as_str(),
    }
}

/// POSTs `form` to the token endpoint at `url`: the tokens, or how the call failed (a refusal
/// said in the CRM's words). Neither the form nor the answer is logged: both hold credentials.
pub(super) async fn post_form(env: &Env, url: &str, form: &str, crm: &str) -> Result<Tokens, CallFailure> {
    let headers = [
        ("content-type", FORM.to_owned()),
        ("accept", "application/json".to_owned()),
        ("user-agent", "crm-edge/1".to_owned()),
    ];
    let exchange = bounded_fetch::send(
        env,
        Method::Post,
        url,
        &headers,
        Some(form.as_bytes()),
        TIMEOUT_MS,
        MAX_BODY,
    )
    .await;
    let path = RequestUrl::split(url).path;
    match exchange.result {
        Ok(reply) => {
            console_log!("{crm} POST {path} -> {} in {} ms", reply.status, exchange.millis);
            if (200..300).contains(&reply.status) {
                Tokens::parse(&reply.body).map_err(|reason| CallFailure::Status {
                    status: 502,
                    wait: None,
                    reason: format!("{crm}'s token endpoint: {reason}"),
                })
            } else {
                Err(CallFailure::Status {
                    status: reply.status,
                    wait: None,
                    reason: oauth::refusal(crm, reply.status, &reply.body),
                })
            }
        }
        Err(Failure::TimedOut) => {
            console_log!("{crm} POST {path} timed out after {} ms", exchange.millis);
            Err(CallFailure::TimedOut)
        }
        Err(Failure::Unreachable(cause)) => {
            console_log!("{crm} POST {path} unreachable: {cause}");
            Err(CallFailure::Unreachable(cause))
        }
    }
}

/// A new authorisation's nonce: 128 random bits, in hex.
pub fn nonce() -> Result<String, ApiError> {
    Ok(hex::encode(runtime::random::<16>()?))
}

/// `pending` sealed as the consent page's state, bound to `business`.
pub async fn seal_state(env: &Env, business: &BusinessId, pending: &Pending) -> Result<String, ApiError> {
    let keys = env.keyring()?;
    let text = serde_json::to_string(pending)
        .map_err(|error| ApiError::internal("sealing an OAuth state", error.to_string()))?;
    secrets_key::seal(&keys, &state_place(business), &text).await
}

/// The authorisation `state` stands for, when `business` started it and it has not expired.
/// Only a sealed state opens: clear text, another business's, an altered or an expired one is
/// refused by the `state` field.
pub async fn open_state(env: &Env, business: &BusinessId, state: &str) -> Result<Pending, ApiError> {
    let keys = env.keyring()?;
    if !matches!(keys.parse_stored(state), Ok(Stored::Sealed { .. })) {
        return Err(oauth::not_ours());
    }
    let opened = secrets_key::open(&keys, &state_place(business), state)
        .await
        .map_err(|_| oauth::not_ours())?;
    Pending::parse(&opened.secret, runtime::now().millis())
}

/// Trades the code the consent page gave back for `pending`'s tokens at `app`'s token endpoint
/// (lasting the app's `token_seconds` when the answer does not say).
/// A refusal is the client's (422 by the `code` field: a code is single-use and short-lived); a
/// CRM that cannot be reached is a 502.
pub async fn trade_code(
    env: &Env,
    app: &OAuthApp,
    pending: &Pending,
    code: &str,
) -> Result<Tokens, ApiError> {
    let crm = pending.kind.display_name();
    let form = oauth::code_form(
        &pending.client_id,
        &pending.client_secret,
        &pending.redirect_uri,
        code,
        pending.code_verifier.as_deref(),
    );
    post_form(env, &app.token_url, &form, crm)
        .await
        .map_err(|failure| match failure {
            CallFailure::Status { status, reason, .. } if (400..500).contains(&status) => {
                ApiError::invalid("code", reason)
            }
            CallFailure::Status { reason, .. } => ApiError::crm_failed(reason),
            CallFailure::TimedOut => ApiError::crm_failed(format!("{crm} did not answer in time")),
            CallFailure::Unreachable(cause) => {
                ApiError::crm_failed(format!("{crm} could not be reached: {cause}"))
            }
        })
        .map(|tokens| tokens.lasting(app.token_seconds))
}
