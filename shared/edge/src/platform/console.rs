//! Console sessions at the edge: the cookie a browser sends, read into the business it acts for
//! (`domain::console` has the rules). Every keyed endpoint takes a session where it takes an API
//! key (`auth`), and the console's own pages read it to greet and sign out.

use crate::db::console_sessions::{self, LiveSession};
use crate::runtime::Internal;
use crate::runtime::Request;
use crate::{Env, runtime};
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
    let Some(cookies) = req.headers().get("cookie").internal("reading a header")? else {
        return Ok(None);
    };
    let Some((plaintext, hash)) = console::session_in_cookies(&cookies) else {
        return Ok(None);
    };
    let live = console_sessions::live(&env.db()?, &hash, runtime::now())
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "this console session has ended (signed out, revoked or expired): open a new console link",
            )
        })?;
    let csrf_token = console::csrf_token(&plaintext);
    if console::is_write(&runtime::request_method(req))
        && !console::csrf_matches(
            &csrf_token,
            req.headers()
                .get(console::CSRF_HEADER)
                .internal("reading a header")?
                .as_deref(),
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Method;
    use crate::testing::Fixture;
    use domain::ids::ConsoleSessionId;
    use domain::tenant::Tenant;
    use std::time::Duration;

    fn random<const N: usize>() -> [u8; N] {
        runtime::random().unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// A console link of a new business, opened into a session: the business, the session's id
    /// and its cookie's value.
    async fn signed_in(fixture: &Fixture) -> (Tenant, ConsoleSessionId, String) {
        let tenant = fixture.business("Acme").await;
        let link = console::issue_link(random());
        let id = ConsoleSessionId::generate(random());
        let now = runtime::now();
        console_sessions::insert_link(
            &fixture.db,
            &tenant,
            &console_sessions::NewLink {
                id: &id,
                issued_by: "admin",
                link_hash: &link.hash,
                link_expires_at: now.plus_seconds(console::LINK_LIFETIME_SECONDS),
                created_at: now,
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
        let session = console::issue_session(random());
        console_sessions::open(
            &fixture.db,
            &link.hash,
            &session.hash,
            now,
            now.plus_seconds(console::SESSION_LIFETIME_SECONDS),
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
        .unwrap_or_else(|| panic!("the link opens"));
        (tenant, id, session.plaintext)
    }

    fn with_cookie(method: Method, cookie: Option<String>, csrf: Option<&str>) -> Request {
        let mut req =
            Request::new("https://api.example/api-keys", method).unwrap_or_else(|error| panic!("{error}"));
        if let Some(cookie) = cookie {
            req = req.with_header("cookie", &cookie);
        }
        if let Some(csrf) = csrf {
            req = req.with_header(console::CSRF_HEADER, csrf);
        }
        req
    }

    fn cookie(session: &str) -> Option<String> {
        Some(format!("theme=dark; {}={session}", console::COOKIE_NAME))
    }

    #[test]
    fn a_live_sessions_cookie_acts_for_its_business_and_its_writes_need_its_csrf_token() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id, session) = signed_in(&fixture).await;
            let read = from_request(&with_cookie(Method::Get, cookie(&session), None), &fixture.env)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .unwrap_or_else(|| panic!("a session"));
            assert_eq!((read.live.tenant, read.live.id), (tenant.clone(), id));
            let write = |csrf: Option<&str>| with_cookie(Method::Post, cookie(&session), csrf);
            let refused = from_request(&write(None), &fixture.env).await.err();
            assert_eq!(
                refused.map(|error| error.status()),
                Some(403),
                "a write without the token"
            );
            let wrong = from_request(&write(Some("0000")), &fixture.env).await.err();
            assert_eq!(
                wrong.map(|error| error.status()),
                Some(403),
                "a write with another token"
            );
            let allowed = from_request(&write(Some(&read.csrf_token)), &fixture.env).await;
            assert!(matches!(allowed, Ok(Some(_))), "a write with its token");
        });
    }

    #[test]
    fn no_session_cookie_is_no_session_and_an_ended_one_is_a_401() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id, session) = signed_in(&fixture).await;
            for (cookie, description) in [
                (None, "no cookie"),
                (Some("theme=dark".to_owned()), "other cookies"),
                (
                    Some(format!("{}=not-a-session", console::COOKIE_NAME)),
                    "a value that is no session",
                ),
            ] {
                let answer = from_request(&with_cookie(Method::Get, cookie, None), &fixture.env).await;
                assert!(matches!(answer, Ok(None)), "{description}");
            }
            fixture
                .stack
                .advance(Duration::from_secs(console::SESSION_LIFETIME_SECONDS as u64));
            let expired = from_request(&with_cookie(Method::Get, cookie(&session), None), &fixture.env)
                .await
                .err();
            assert_eq!(expired.map(|error| error.status()), Some(401), "expired");
            let (_, _, other) = signed_in(&fixture).await;
            console_sessions::revoke(&fixture.db, &tenant, &id, runtime::now())
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let live = from_request(&with_cookie(Method::Get, cookie(&other), None), &fixture.env).await;
            assert!(
                matches!(live, Ok(Some(_))),
                "another business's session is untouched"
            );
        });
    }

    #[test]
    fn a_revoked_session_is_ended_at_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id, session) = signed_in(&fixture).await;
            console_sessions::revoke(&fixture.db, &tenant, &id, runtime::now())
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let error = from_request(&with_cookie(Method::Get, cookie(&session), None), &fixture.env)
                .await
                .err();
            assert_eq!(error.map(|error| error.status()), Some(401));
        });
    }

    #[test]
    fn an_endpoint_that_takes_a_key_takes_the_session_in_its_place_and_names_it_as_the_actor() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id, session) = signed_in(&fixture).await;
            let found = crate::platform::auth::authenticate_or_session(
                &with_cookie(Method::Get, cookie(&session), None),
                &fixture.env,
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(found.tenant, tenant);
            assert_eq!(found.actor.label(), format!("console:{id}"));
            let none = crate::platform::auth::authenticate_or_session(
                &with_cookie(Method::Get, None, None),
                &fixture.env,
            )
            .await
            .err();
            assert_eq!(
                none.map(|error| error.body.message),
                Some("missing x-api-key header".to_owned())
            );
        });
    }
}
