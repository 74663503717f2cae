//! Connecting a CRM with OAuth: the consent page's address, with the state that carries what the
//! business asked for (sealed), and the code it gave back traded for the connector.

use super::crud::{make, out};
use super::{kind_of, name_of, object_or_empty};
use domain::api::admin::{AuthorizationIn, AuthorizationOut, AuthorizedIn, ConnectorOut};
use domain::crm::config;
use domain::crm::oauth::{self, Pending, Pkce};
use domain::crm::rollout::Rollout;
use domain::error::ApiError;
use domain::time::Timestamp;
use edge::Env;
use edge::db::crm_connectors::Fields;
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, Origin};
use edge::{platform::http, runtime};

/// An OAuth app's client id or secret is at most this long.
const MAX_OAUTH_CLIENT_CHARS: usize = 256;

/// Where a CRM's consent page sends people back: the console, which finishes the authorisation
/// with its session.
const CONSOLE_PATH: &str = "/console";

/// `POST /api-connector-authorizations`: the CRM's consent page for a connector to be
/// authorised with OAuth, its settings checked first and the pending authorisation sealed, bound
/// to the business, as the page's state.
pub async fn authorize(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Origin(origin): Origin,
    Json(input): Json<AuthorizationIn>,
) -> Result<Created<AuthorizationOut>, ApiError> {
    let env = &env;
    let kind = kind_of(input.kind.as_deref())?;
    let name = name_of(input.name.as_deref(), kind)?;
    let allow_loopback = http::allows_loopback(env);
    let settings = object_or_empty(input.settings);
    let app = config::oauth_app(kind, &settings, allow_loopback)?.ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!(
                "{} connects with a token, not with OAuth: POST /api-connectors",
                kind.display_name()
            ),
        )
    })?;
    let credential = |field: &str, value: Option<String>| {
        value
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty() && value.len() <= MAX_OAUTH_CLIENT_CHARS)
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!("{field} is required: the OAuth app's, as {} shows it (at most {MAX_OAUTH_CLIENT_CHARS} characters)", kind.display_name()),
                )
            })
    };
    let client_id = credential("client_id", input.client_id)?;
    let client_secret = credential("client_secret", input.client_secret)?;
    let now = runtime::now();
    let expires_ms = now.millis() + oauth::PENDING_MS;
    let redirect_uri = format!("{origin}{CONSOLE_PATH}");
    let pkce = match app.pkce {
        true => Some(Pkce::new(runtime::random::<32>()?)),
        false => None,
    };
    let pending = Pending {
        kind,
        name: Some(name),
        settings: config::settings(kind, &settings, allow_loopback)?,
        client_id,
        client_secret,
        redirect_uri: redirect_uri.clone(),
        expires_ms,
        nonce: edge::crm::oauth::nonce()?,
        started_by: audit.actor().label(),
        code_verifier: pkce.as_ref().map(|pkce| pkce.verifier().to_owned()),
    };
    let state = edge::crm::oauth::seal_state(env, &tenant.business_id, &pending).await?;
    edge::db::oauth_states::start(&env.db()?, &tenant, &pending.nonce, expires_ms).await?;
    Ok(Created(AuthorizationOut {
        authorize_url: app.authorize(&pending.client_id, &redirect_uri, &state, pkce.as_ref()),
        redirect_uri,
        state,
        expires_at: Timestamp::from_millis(expires_ms),
    }))
}

/// `POST /api-connector-authorizations/complete`: the code the consent page gave back traded for
/// tokens, and the connector the state describes made with them.
pub async fn authorized(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(input): Json<AuthorizedIn>,
) -> Result<Created<ConnectorOut>, ApiError> {
    let env = &env;
    let required = |field: &str, value: Option<String>| {
        value.filter(|value| !value.trim().is_empty()).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} is required: as the consent page gave it back"),
            )
        })
    };
    let state = required("state", input.state)?;
    let code = required("code", input.code)?;
    let pending = edge::crm::oauth::open_state(env, &tenant.business_id, &state).await?;
    pending.finished_by(&audit.actor().label())?;
    // Taken before the code is traded: a state finishes one authorisation, however often it is sent.
    let now_ms = runtime::now().millis();
    if !edge::db::oauth_states::take(&env.db()?, &tenant, &pending.nonce, now_ms).await? {
        return Err(ApiError::invalid(
            "state",
            "this authorisation was finished already (a state is good once): start it again",
        ));
    }
    let kind = pending.kind;
    let allow_loopback = http::allows_loopback(env);
    let app = config::oauth_app(kind, &pending.settings, allow_loopback)?.ok_or_else(oauth::not_ours)?;
    let tokens = edge::crm::oauth::trade_code(env, &app, &pending, code.trim()).await?;
    let secrets = pending.secrets(&tokens, runtime::now().millis());
    let settings = config::authorized_settings(kind, &pending.settings, &tokens, allow_loopback)?;
    let (settings, secrets) = config::checked(kind, &settings, &secrets, allow_loopback)?;
    let name = name_of(pending.name.as_deref(), kind)?;
    let fields = Fields {
        name: &name,
        settings: &settings,
        secrets: &secrets,
        enabled: true,
        rollout: Rollout::EVERYONE,
        budget: config::default_budget(kind),
    };
    let connector = make(env, &audit, &tenant, kind, &fields).await?;
    Ok(Created(out(env, connector).await?))
}
