//! The page and its assets, compiled into the worker: no build step, nothing fetched from
//! elsewhere. A link that grants nothing gets a page that says why, with the matching status.

use domain::error::ApiError;
use domain::sso::content_security_policy;
use domain::text::escape_html;
use edge::Env;
use edge::console_error;
use edge::platform::sso_sessions::{self, Refusal};
use edge::runtime::Internal;
use edge::runtime::{Headers, Request, Response};
use edge::{platform::http, runtime};

const INBOX_HTML: &str = include_str!("assets/inbox.html");
const INBOX_CSS: &str = include_str!("assets/inbox.css");
const INBOX_JS: &str = include_str!("assets/inbox.js");
const ERROR_HTML: &str = include_str!("assets/error.html");

pub enum Asset {
    Css,
    Js,
}

/// Headers every answer of the embed carries. The token is in the page's URL, so no request
/// from the page may send it on as a referrer.
fn headers(content_type: &str, csp: &str) -> worker::Result<Headers> {
    let headers = http::page_headers(content_type, csp, "no-referrer")?;
    headers.set("cache-control", "no-store")?;
    Ok(headers)
}

/// The page, or a page that says why the link opens nothing. Takes the request whole: its token
/// is in the query.
pub async fn inbox(req: Request, env: Env) -> Result<Response, ApiError> {
    page(&req, &env).await.internal("making the page")
}

async fn page(req: &Request, env: &Env) -> worker::Result<Response> {
    let token = http::query(req).get("token").map(str::to_owned);
    let resolved = match env.db() {
        Ok(db) => sso_sessions::resolve(&db, token.as_deref(), runtime::now()).await,
        Err(error) => Err(error),
    };
    match resolved {
        Ok(Ok(session)) => {
            let headers = headers(
                "text/html; charset=utf-8",
                &content_security_policy(&session.frame_ancestors),
            )?;
            Ok(Response::ok(INBOX_HTML)?.with_headers(headers))
        }
        Ok(Err(refusal)) => refusal_page(refusal),
        Err(error) => {
            let reference = runtime::random::<6>().map(hex::encode).unwrap_or_default();
            console_error!(
                "GET /embed/inbox failed (ref {reference}): {}",
                error.detail().unwrap_or("unknown")
            );
            error_page(
                500,
                "The conversations could not be loaded",
                &format!("Something went wrong on our side. Try again in a moment (reference {reference})."),
            )
        }
    }
}

pub fn refusal_page(refusal: Refusal) -> worker::Result<Response> {
    let (title, advice) = match refusal {
        Refusal::Unknown => (
            "This link is not valid",
            "The address is incomplete or was never issued. Open the customer again in your CRM to get a new one.",
        ),
        Refusal::Expired => (
            "This link has expired",
            "Links to the inbox work for a limited time. Open the customer again in your CRM to get a new one.",
        ),
        Refusal::Revoked => (
            "This link was revoked",
            "Access through this link was withdrawn. Open the customer again in your CRM if you still need it.",
        ),
        Refusal::CustomerGone => (
            "This customer no longer exists",
            "The customer this link was made for has been removed.",
        ),
    };
    error_page(refusal.status(), title, advice)
}

pub fn not_found() -> worker::Result<Response> {
    error_page(404, "Nothing here", "This address is not part of the inbox.")
}

/// An error page shows nothing of any business and offers no action, so any site may frame it:
/// the CRM's iframe then shows the reason instead of the browser's blank refusal.
fn error_page(status: u16, title: &str, advice: &str) -> worker::Result<Response> {
    let body = ERROR_HTML
        .replace("{{title}}", &escape_html(title))
        .replace("{{advice}}", &escape_html(advice));
    let csp = format!(
        "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; {}",
        "frame-ancestors *"
    );
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers("text/html; charset=utf-8", &csp)?))
}

pub fn asset(asset: Asset) -> worker::Result<Response> {
    let (body, content_type) = match asset {
        Asset::Css => (INBOX_CSS, "text/css; charset=utf-8"),
        Asset::Js => (INBOX_JS, "text/javascript; charset=utf-8"),
    };
    let headers = headers(content_type, "default-src 'none'; frame-ancestors 'none'")?;
    // The assets hold no data; a short cache spares the polling page nothing but the first load.
    headers.set("cache-control", "public, max-age=300")?;
    Ok(Response::ok(body)?.with_headers(headers))
}

/// The 405 of the page and its assets, which are only read.
pub fn only_read() -> worker::Result<Response> {
    let response = error_page(405, "This address only shows a page", "Open it in a browser.")?;
    response.headers().set("allow", "GET, HEAD")?;
    Ok(response)
}
