//! The console's page, the API reference's and the sign-in pages, compiled into the worker; the
//! pages' scripts and styles (`public/`, and Swagger UI's from `node_modules/`) are static files
//! the gateway serves from this origin: nothing is fetched from elsewhere, so the pages work
//! offline and under a strict Content-Security-Policy.

use domain::text::escape_html;
use edge::platform::http;
use edge::runtime::{Headers, Response};

const CONSOLE_HTML: &str = include_str!("assets/console.html");
const REFERENCE_HTML: &str = include_str!("assets/reference.html");
const NOTICE_HTML: &str = include_str!("assets/notice.html");
const SIGN_IN_HTML: &str = include_str!("assets/sign-in.html");

/// Scripts, styles and calls only from here; no frame may hold the console (it acts for a whole
/// business: clickjacking it would be worth a try).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn headers(content_type: &str) -> worker::Result<Headers> {
    // A link's token is in the sign-in page's address: no request to another site may be told it.
    // Within this origin the referrer stays, and with it the `Origin` of the sign-in form's post
    // (under `no-referrer` a browser sends `Origin: null`, which the sign-in refuses).
    let headers = http::page_headers(content_type, CSP, "same-origin")?;
    headers.set("x-frame-options", "DENY")?;
    Ok(headers)
}

fn html(status: u16, body: String) -> worker::Result<Response> {
    let headers = headers("text/html; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body)?.with_status(status).with_headers(headers))
}

pub fn console() -> worker::Result<Response> {
    html(200, CONSOLE_HTML.to_owned())
}

/// The API reference: Swagger UI draws /openapi.json under the console's own policy (its style is
/// a file and its script sets styles through the CSSOM, which `style-src 'self'` allows).
pub fn reference() -> worker::Result<Response> {
    html(200, REFERENCE_HTML.to_owned())
}

/// The page a valid link opens: it names the business and asks to sign in.
pub fn sign_in(business_name: &str, token: &str) -> worker::Result<Response> {
    let body = SIGN_IN_HTML
        .replace("{{business}}", &escape_html(business_name))
        .replace("{{token}}", &escape_html(token));
    html(200, body)
}

/// A page that says why nothing happened, and what to do.
pub fn notice(status: u16, title: &str, advice: &str) -> worker::Result<Response> {
    let body = NOTICE_HTML
        .replace("{{title}}", &escape_html(title))
        .replace("{{advice}}", &escape_html(advice));
    html(status, body)
}

pub fn link_refused() -> worker::Result<Response> {
    notice(
        401,
        "This console link cannot be opened",
        "It has expired (a link works for 15 minutes), was used already, or was revoked. Ask for a new one: \
         with your API key (POST /api-console-links), or from your platform's operator.",
    )
}

pub fn not_found() -> worker::Result<Response> {
    notice(404, "Nothing here", "This address is not part of the console.")
}

pub fn not_allowed(allow: &str) -> worker::Result<Response> {
    let response = notice(405, "This address only shows a page", "Open it in a browser.")?;
    response.headers().set("allow", allow)?;
    Ok(response)
}
