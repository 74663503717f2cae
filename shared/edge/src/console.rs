//! Console sessions at the edge: the cookie a browser sends, read into the business it acts for
//! (`domain::console` has the rules). Every keyed endpoint takes a session where it takes an API
//! key (`auth`), and the console's own pages read it to greet and sign out.

use crate::db::console_sessions::{self, LiveSession};
use crate::runtime::Request;
use crate::{DB, Env, runtime};
use domain::console;
use domain::error::{ApiError, ErrorCode};

/// A live session, and the CSRF token its page sends with every write.
pub struct Session {
    pub live: LiveSession,
    pub csrf_token: String,
}

/// The session the request's cookie carries, if it carries one: 401 when it has ended, 403 for a
/// write without its CSRF token.
pub async fn from_request(req: &Request, env: &Env) -> Result<Option<Session>, ApiError> {
    let Some(cookies) = req.headers().get("cookie")? else {
        return Ok(None);
    };
    let Some((plaintext, hash)) = console::session_in_cookies(&cookies) else {
        return Ok(None);
    };
    let live = console_sessions::live(&env.d1(DB)?, &hash, runtime::now())
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this console session has ended (signed out, revoked or expired): open a new console link",
            )
        })?;
    let csrf_token = console::csrf_token(&plaintext);
    if console::is_write(req.method().as_ref())
        && !console::csrf_matches(&csrf_token, req.headers().get(console::CSRF_HEADER)?.as_deref())
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "a console session's change needs its CSRF token in {}",
                console::CSRF_HEADER
            ),
        ));
    }
    Ok(Some(Session { live, csrf_token }))
}
