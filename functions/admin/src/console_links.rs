//! Console links (`domain::console`): a link that opens the business's console once, issued by
//! the operator or with one of the business's keys, and the links and sessions that have not
//! ended yet, to revoke.

use domain::api::admin::{ConsoleLink, ConsoleSession, ConsoleSessionsOut};
use domain::audit::Action;
use domain::console;
use domain::error::ApiError;
use domain::ids::ConsoleSessionId;
use edge::Env;
use edge::db::console_sessions::{self, NewLink};
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, Origin, Path, Scope};
use edge::runtime;
use serde_json::json;

pub async fn issue(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Origin(origin): Origin,
) -> Result<Created<ConsoleLink>, ApiError> {
    let link = console::issue_link(runtime::random()?);
    let id = ConsoleSessionId::generate(runtime::random()?);
    let now = runtime::now();
    let expires_at = now.plus_seconds(console::LINK_LIFETIME_SECONDS);
    let issued = NewLink {
        id: &id,
        issued_by: &audit.actor().label(),
        link_hash: &link.hash,
        link_expires_at: expires_at,
        created_at: now,
    };
    console_sessions::insert_link(&env.db()?, &tenant, &issued).await?;
    let expires_at = expires_at.to_rfc3339();
    audit
        .record(
            &env,
            &tenant.business_id,
            Action::ConsoleLinkIssued,
            Some(id.as_str()),
            json!({ "expires_at": expires_at }),
        )
        .await;
    Ok(Created(ConsoleLink {
        id,
        url: format!("{origin}/console/sign-in?token={}", link.plaintext),
        expires_at,
    }))
}

pub async fn list(env: Env, Managed(tenant): Managed) -> Result<Json<ConsoleSessionsOut>, ApiError> {
    let sessions = console_sessions::current(&env.db()?, &tenant, runtime::now()).await?;
    Ok(Json(ConsoleSessionsOut { sessions }))
}

/// Revokes a link or a session: a link then opens nothing, and a session's next request is 401.
pub async fn revoke(
    env: Env,
    audit: Audit,
    scope: Scope,
    Path(id): Path<ConsoleSessionId>,
) -> Result<Json<ConsoleSession>, ApiError> {
    let db = env.db()?;
    let missing = || ApiError::not_found(format!("no console session {id}"));
    let tenant = scope
        .owner(async || console_sessions::owner(&db, &id).await, missing)
        .await?;
    let revoked = console_sessions::revoke(&db, &tenant, &id, runtime::now())
        .await?
        .ok_or_else(missing)?;
    audit
        .record(
            &env,
            &tenant.business_id,
            Action::ConsoleSessionRevoked,
            Some(id.as_str()),
            json!({}),
        )
        .await;
    Ok(Json(revoked))
}
