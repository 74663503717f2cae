//! Signing in and out. A console link is opened by the sign-in page's form (not by loading the
//! page, which mail scanners and link previews do), once; the session it opens is a cookie the
//! page's scripts cannot read, and the page learns its CSRF token from `/console/session`.

use crate::pages;
use domain::api::console::{ConsoleBusiness, ConsoleSessionOut};
use domain::audit::{Action, Actor};
use domain::console;
use domain::error::{ApiError, ErrorCode};
use domain::query::Query;
use edge::db::console_sessions;
use edge::platform::audit::Audit;
use edge::platform::call::{Body, Call, FromCall, Json};
use edge::platform::console::Session;
use edge::runtime::Internal;
use edge::runtime::Response;
use edge::{Env, platform::http, runtime};
use serde_json::json;

/// The sign-in page of a link that can still be opened, or a page that says why it cannot.
pub async fn sign_in_page(env: Env, query: Query) -> Result<Response, ApiError> {
    let token = query.get("token").unwrap_or_default();
    let Some(link) = console::parse_link(token) else {
        return pages::link_refused().internal("making an answer");
    };
    match console_sessions::openable(&env.db()?, &link, runtime::now()).await? {
        Some(business_name) => pages::sign_in(&business_name, token.trim()).internal("making an answer"),
        None => pages::link_refused().internal("making an answer"),
    }
}

/// Where a browser says a form came from, and the address it came from.
pub struct FormFrom {
    origin: Option<String>,
    ours: String,
    client_ip: Option<String>,
}

impl FromCall for FormFrom {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        let req = call.request()?;
        Ok(FormFrom {
            origin: req.headers().get("origin").internal("reading a header")?,
            ours: http::origin(req, call.env())?,
            client_ip: http::client_ip(req),
        })
    }
}

/// Opens the link into a session and hands the browser its cookie. A form posted from another
/// site is refused: it could only sign the browser into someone else's console.
pub async fn open(env: Env, from: FormFrom, Body(body): Body) -> Result<Response, ApiError> {
    if from.origin.as_deref().is_some_and(|origin| origin != from.ours) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a console link is opened from its own sign-in page",
        ));
    }
    let form = Query::parse(Some(&String::from_utf8_lossy(&body)));
    let Some(link) = form.get("token").and_then(console::parse_link) else {
        return pages::link_refused().internal("making an answer");
    };
    let session = console::issue_session(runtime::random()?);
    let now = runtime::now();
    let expires_at = now.plus_seconds(console::SESSION_LIFETIME_SECONDS);
    let db = env.db()?;
    let Some(opened) = console_sessions::open(&db, &link, &session.hash, now, expires_at).await? else {
        return pages::link_refused().internal("making an answer");
    };
    Audit::new(Actor::Console(opened.id.clone()), from.client_ip)
        .record(
            &env,
            &opened.business_id,
            Action::ConsoleSessionOpened,
            Some(opened.id.as_str()),
            json!({ "expires_at": expires_at.to_rfc3339() }),
        )
        .await;
    let headers = edge::runtime::Headers::new();
    headers.set("location", "/console").internal("setting a header")?;
    headers
        .set("cache-control", "no-store")
        .internal("setting a header")?;
    headers
        .set(
            "set-cookie",
            &console::session_cookie(&session.plaintext, console::SESSION_LIFETIME_SECONDS),
        )
        .internal("setting a header")?;
    Ok(Response::empty()
        .internal("making an answer")?
        .with_status(303)
        .with_headers(headers))
}

pub async fn current(session: Session) -> Result<Json<ConsoleSessionOut>, ApiError> {
    let live = session.live;
    Ok(Json(ConsoleSessionOut {
        business: ConsoleBusiness {
            id: live.tenant.business_id,
            name: live.business_name,
        },
        session_id: live.id,
        expires_at: live.expires_at.to_rfc3339(),
        csrf_token: session.csrf_token,
    }))
}

/// Ends the session at once and clears its cookie. The CSRF token was checked on the way in, so
/// another site cannot sign a browser out.
pub async fn sign_out(env: Env, audit: Audit, session: Session) -> Result<Response, ApiError> {
    let live = session.live;
    console_sessions::revoke(&env.db()?, &live.tenant, &live.id, runtime::now()).await?;
    audit
        .record(
            &env,
            &live.tenant.business_id,
            Action::ConsoleSessionRevoked,
            Some(live.id.as_str()),
            json!({ "signed_out": true }),
        )
        .await;
    let headers = edge::runtime::Headers::new();
    headers
        .set("set-cookie", &console::cleared_cookie())
        .internal("setting a header")?;
    Ok(Response::empty()
        .internal("making an answer")?
        .with_status(204)
        .with_headers(headers))
}
