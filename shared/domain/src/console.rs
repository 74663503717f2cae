//! The business console's sign-in: a short-lived link, issued with the business's API key or the
//! operator's admin token, opened once into a session that the browser holds as a cookie.
//!
//! A session acts for one business and can do what that business's API key can, nothing more:
//! every keyed endpoint takes it in place of `x-api-key`. The cookie is `HttpOnly` (no script
//! reads it), `Secure`, `SameSite=Strict` (no other site's page sends it) and `__Host-` prefixed
//! (no subdomain sets it); a request that changes something must also carry the session's CSRF
//! token in a header, which only a page of ours can read (from `/console/session`). Links and
//! sessions are stored as hashes only, as keys are.

use crate::crypto::{self, constant_time_eq, sha256_hex};

pub use crate::crypto::BEARER_SECRET_BYTES as SECRET_BYTES;

const LINK_SCHEME: &str = "ccl_";
const SESSION_SCHEME: &str = "ccs_";

/// How long a console link can be opened: long enough to pass it on, short enough that a link
/// left in a chat or a mailbox is dead by the time anyone else finds it.
pub const LINK_LIFETIME_SECONDS: i64 = 15 * 60;
/// How long a session lasts from sign-in, whatever is done with it: a working day.
pub const SESSION_LIFETIME_SECONDS: i64 = 8 * 3600;

/// The session cookie. `__Host-`: set only by this host over HTTPS, for every path, and never
/// by a subdomain.
pub const COOKIE_NAME: &str = "__Host-crm-edge-console";
/// The header that carries the session's CSRF token on every request that changes something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// SHA-256 of a link or a session secret, hex encoded: what D1 stores and is searched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    fn of(plaintext: &str) -> Self {
        Self(sha256_hex(plaintext.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hash as stored or passed on (the rate limiter's object is named by it).
    pub fn from_stored(hash: String) -> Self {
        Self(hash)
    }
}

/// A freshly made link or session secret. The plaintext exists only in the answer that hands it
/// out (the link's URL, the session's `Set-Cookie`).
pub struct Issued {
    pub plaintext: String,
    pub hash: SecretHash,
}

fn issue(scheme: &str, random: [u8; SECRET_BYTES]) -> Issued {
    let plaintext = crypto::bearer_secret(scheme, random);
    Issued {
        hash: SecretHash::of(&plaintext),
        plaintext,
    }
}

fn parse(scheme: &str, presented: &str) -> Option<SecretHash> {
    crypto::is_bearer_secret(scheme, presented).then(|| SecretHash::of(presented))
}

pub fn issue_link(random: [u8; SECRET_BYTES]) -> Issued {
    issue(LINK_SCHEME, random)
}

pub fn issue_session(random: [u8; SECRET_BYTES]) -> Issued {
    issue(SESSION_SCHEME, random)
}

/// A presented link token of the right shape; anything else is refused before any lookup.
pub fn parse_link(presented: &str) -> Option<SecretHash> {
    parse(LINK_SCHEME, presented.trim())
}

/// The session secret of a request's `Cookie` header, when it carries one of the right shape.
pub fn session_in_cookies(cookie_header: &str) -> Option<(String, SecretHash)> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim();
        (name.trim() == COOKIE_NAME)
            .then(|| parse(SESSION_SCHEME, value).map(|hash| (value.to_owned(), hash)))
            .flatten()
    })
}

/// The CSRF token of a session: derived from its secret (so nothing more is stored), under its own
/// label (so the stored hash does not give it away).
pub fn csrf_token(session_plaintext: &str) -> String {
    sha256_hex(format!("crm-edge console csrf\n{session_plaintext}").as_bytes())
}

/// Whether a request that changes something carries its session's CSRF token (`csrf_token`).
pub fn csrf_matches(token: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|presented| constant_time_eq(token.as_bytes(), presented.trim().as_bytes()))
}

/// The `Set-Cookie` that hands a browser its session, for `max_age_seconds`.
pub fn session_cookie(session_plaintext: &str, max_age_seconds: i64) -> String {
    format!(
        "{COOKIE_NAME}={session_plaintext}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Strict"
    )
}

/// The `Set-Cookie` that makes a browser forget its session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// Whether a method changes something, and so needs the CSRF token.
pub fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_and_a_session_read_back_only_in_their_own_form() {
        let link = issue_link([7; SECRET_BYTES]);
        let session = issue_session([7; SECRET_BYTES]);
        assert!(link.plaintext.starts_with("ccl_"));
        assert_eq!(parse_link(&link.plaintext), Some(link.hash.clone()));
        assert_eq!(parse_link(&format!(" {} ", link.plaintext)), Some(link.hash));
        assert_eq!(parse_link(&session.plaintext), None, "a session is no link");
        let bad = [
            "",
            "ccl_",
            "ccl_short",
            &format!("{}x", link.plaintext),
            &link.plaintext.replace('_', "%"),
            &link.plaintext.replace("ccl_", "cek_"),
        ];
        for presented in bad {
            assert_eq!(parse_link(presented), None, "{presented:?}");
        }
    }

    #[test]
    fn the_session_is_found_among_a_browsers_cookies() {
        let session = issue_session([9; SECRET_BYTES]);
        let header = format!("theme=dark; {COOKIE_NAME}={}; other=1", session.plaintext);
        assert_eq!(
            session_in_cookies(&header),
            Some((session.plaintext.clone(), session.hash.clone()))
        );
        let cases = [
            ("no cookie of ours", "theme=dark".to_owned()),
            ("empty", format!("{COOKIE_NAME}=")),
            (
                "a link in the cookie",
                format!("{COOKIE_NAME}={}", issue_link([9; 32]).plaintext),
            ),
            (
                "a name that only starts like ours",
                format!("{COOKIE_NAME}x={}", session.plaintext),
            ),
        ];
        for (case, header) in cases {
            assert_eq!(session_in_cookies(&header), None, "{case}");
        }
    }

    #[test]
    fn a_write_needs_its_own_sessions_csrf_token() {
        let session = issue_session([1; SECRET_BYTES]).plaintext;
        let other = issue_session([2; SECRET_BYTES]).plaintext;
        let token = csrf_token(&session);
        assert!(csrf_matches(&token, Some(&token)));
        assert!(
            csrf_matches(&token, Some(&format!(" {token} "))),
            "as a header may carry it"
        );
        assert!(!csrf_matches(&token, None), "missing");
        assert!(!csrf_matches(&token, Some("")), "empty");
        assert!(
            !csrf_matches(&token, Some(&csrf_token(&other))),
            "another session's"
        );
        assert_ne!(
            token,
            SecretHash::of(&session).0,
            "the stored hash is not the token"
        );
        assert!(is_write("POST") && is_write("DELETE") && is_write("PATCH"));
        assert!(!is_write("GET") && !is_write("HEAD"));
    }

    #[test]
    fn the_cookie_is_for_this_host_only_and_out_of_scripts_reach() {
        let cookie = session_cookie("ccs_x", 60);
        for attribute in ["Path=/", "Max-Age=60", "HttpOnly", "Secure", "SameSite=Strict"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(cookie.starts_with("__Host-"));
        assert!(cleared_cookie().contains("Max-Age=0"));
    }
}
