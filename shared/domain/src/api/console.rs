//! The business console: its page and the API reference's (their scripts and styles are the
//! gateway's, `api::gateway`), opening a console link into a session, and the session itself;
//! their declarations and the shapes they answer with. What the console shows and changes, it
//! reads and writes through the API's own endpoints with the session (`Caller`).

use crate::api::{Caller::*, get, post};
use crate::ids::{BusinessId, ConsoleSessionId};
use serde::Serialize;
#[cfg(feature = "openapi")]
use serde_json::json;

function! {
    /// The business console.
    pub const CONSOLE: Function<Console> = "console", owns "/console/", tag "console";
    /// The console
    ///
    /// One page; it asks /console/session who is signed in, and shows how to sign in when no one
    /// is.
    GetConsolePage = get("/console", Anyone)
        => |c| c.ok_media(200, "text/html", json!({ "type": "string" })).described("The page").page().infallible();
    /// The API reference
    ///
    /// This document (/openapi.json) rendered for a person to read: every operation, its
    /// parameters, bodies, answers and errors. No credentials; it only reads the document and
    /// sends no request of the API (no "Try it out").
    GetApiReference = get("/console/reference", Anyone)
        => |c| c.ok_media(200, "text/html", json!({ "type": "string" })).described("The page").page().infallible();
    /// The page a console link opens
    ///
    /// Names the business and asks to sign in (a link is opened by the button, not by loading
    /// the page, so a mail scanner that follows links does not use it up); a link that cannot be
    /// opened gets a page that says why.
    GetConsoleSignIn = get("/console/sign-in", Anyone)
        => |c| c
            .query::<SignInParameters>()
            .ok_media(200, "text/html", json!({ "type": "string" }))
            .described("The sign-in page")
            .page()
            .errors(&[401]);
    /// Open a console link into a session
    ///
    /// The sign-in page's form: opens the link (once) and answers 303 to /console with the
    /// session's cookie. A form from another site is 403.
    OpenConsoleLink = post("/console/sign-in", Anyone)
        => |c| c
            .raw_literal("application/x-www-form-urlencoded", json!({
                "type": "object",
                "properties": { "token": { "type": "string", "description": "The console link's token (ccl_…)" } },
                "required": ["token"],
            }))
            .ok_empty(303)
            .described("Signed in: the session's cookie is set, and Location is /console")
            .page()
            .errors(&[400, 401, 403, 413]);
    /// Who is signed in
    ///
    /// The business, when the session ends, and the CSRF token the console sends with every
    /// change (x-csrf-token).
    GetConsoleSession = get("/console/session", ConsoleSession)
        => |c| c.ok::<ConsoleSessionOut>(200);
    /// Sign out
    ///
    /// Ends the session at once, everywhere, and clears its cookie.
    SignOutOfConsole = post("/console/sign-out", ConsoleSession)
        => |c| c.ok_empty(204).errors(&[403]);
}

/// The parameters of the sign-in page.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct SignInParameters {
    /// The console link's token (ccl_…).
    token: Option<String>,
}

/// A signed-in console session.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConsoleSessionOut {
    pub business: ConsoleBusiness,
    pub session_id: ConsoleSessionId,
    /// RFC 3339 time.
    pub expires_at: String,
    /// Sent as x-csrf-token with every request that changes something.
    pub csrf_token: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConsoleBusiness {
    pub id: BusinessId,
    pub name: String,
}
