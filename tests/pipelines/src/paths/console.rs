//! The business console's sign-in and what a session may do (the end-to-end suite's
//! `console.test.mjs`, its API and session rules; the browser pages are the browser test's): a
//! link issued with an API key (or the admin token) opens once into a session cookie; the
//! session can do what the business's key can at the endpoints the console uses, for that
//! business only; every change needs its CSRF token; the audit log names the session; signing
//! out or revoking ends it at once, and so do the link's and the session's lifetimes, which pass
//! here on the virtual clock. The business's own management endpoints (`/api-keys`,
//! `/api-connectors`, …) are checked too: another business's ids are not found, and the rate
//! limit stays the operator's.

use crate::app::{Answer, App, Business, ORIGIN, test};
use crate::partners::form::url_encoded;
use crate::steps::api::{assert_error, rfc3339_ms};
use crate::steps::text;
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const COOKIE: &str = "__Host-crm-edge-console";
const UUID_LIKE: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

/// `ccl_` and 43 characters of URL-safe base64.
fn is_link_token(token: &str) -> bool {
    token.strip_prefix("ccl_").is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// A console link of `business`, issued with its key.
async fn link(app: &App, business: &Business) -> Value {
    app.api(&business.key, Method::Post, "/api-console-links", None)
        .await
        .expect(201)
        .json()
}

/// The token of a link's URL.
fn token_of(issued: &Value) -> String {
    let url = url::Url::parse(text(&issued["url"])).unwrap_or_else(|error| panic!("{issued}: {error}"));
    url.query_pairs()
        .find(|(name, _)| name == "token")
        .map(|(_, token)| token.into_owned())
        .unwrap_or_default()
}

/// The sign-in form posted as a browser posts it from the sign-in page at `origin` (its 303 not
/// followed).
async fn open_link(app: &App, token: &str, origin: &str) -> Answer {
    app.request(
        Method::Post,
        "/console/sign-in",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", origin),
        ],
        url_encoded(&[("token", token)]).into_bytes(),
    )
    .await
}

/// `GET /console/sign-in?token=…`: the page a link leads to.
async fn sign_in_page(app: &App, token: &str) -> Answer {
    let query = url_encoded(&[("token", token)]);
    app.request(Method::Get, &format!("/console/sign-in?{query}"), &[], Vec::new())
        .await
}

/// A signed-in session: its cookie header, its CSRF token and its id.
pub(super) struct Session {
    pub(super) cookie: String,
    pub(super) csrf: String,
    id: String,
}

pub(super) async fn sign_in(app: &App, business: &Business) -> Session {
    let opened = open_link(app, &token_of(&link(app, business).await), ORIGIN)
        .await
        .expect(303);
    let cookie = opened
        .header("set-cookie")
        .and_then(|cookie| cookie.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let me = app
        .request(
            Method::Get,
            "/console/session",
            &[("cookie", &cookie)],
            Vec::new(),
        )
        .await
        .expect(200)
        .json();
    Session {
        cookie,
        csrf: text(&me["csrf_token"]).to_owned(),
        id: text(&me["session_id"]).to_owned(),
    }
}

/// A call as the console makes it: the cookie, and the CSRF token on a change when `csrf`.
async fn as_console(
    app: &App,
    session: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> Answer {
    let mut headers = vec![("cookie", session.cookie.as_str())];
    if csrf && method != Method::Get {
        headers.push(("x-csrf-token", session.csrf.as_str()));
    }
    app.json(method, path, &headers, body).await
}

/// Acme (with a name of its own, which pages show) and another business.
async fn two_businesses(app: &App) -> (Business, String, Business) {
    let name = unique("Acme Console");
    let acme = app.business(&name).await;
    let other = app.business(&unique("Other")).await;
    (acme, name, other)
}

#[test]
fn a_link_is_issued_with_the_key_or_the_admin_token_opens_to_the_console_for_15_minutes_and_names_its_business()
 {
    test(|app| async move {
        let (acme, name, _) = two_businesses(&app).await;
        let before = app.stack.now_ms();
        let issued = link(&app, &acme).await;
        let token = token_of(&issued);
        assert!(is_link_token(&token), "{issued}");
        let url = url::Url::parse(text(&issued["url"])).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(url.path(), "/console/sign-in");
        let lifetime = rfc3339_ms(text(&issued["expires_at"])).unwrap_or_default() - before;
        assert!(
            lifetime > 14 * 60_000 && lifetime <= 15 * 60_000 + 5_000,
            "expires in 15 minutes ({lifetime} ms)"
        );
        app.admin(
            Method::Post,
            &format!("/admin/businesses/{}/console-links", acme.id),
            None,
        )
        .await
        .expect(201);

        let page = sign_in_page(&app, &token).await.expect(200);
        assert!(
            page.header("content-type")
                .is_some_and(|kind| kind.starts_with("text/html")),
            "{:?}",
            page.headers
        );
        assert!(page.text().contains(&name), "the page names the business");
        assert!(
            page.text().contains("method=\"post\""),
            "the link is opened by a form, not by loading the page"
        );
        let csp = page.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(page.header("referrer-policy"), Some("same-origin"));
        // Loading the page used nothing up.
        open_link(&app, &token, ORIGIN).await.expect(303);

        // Its quarter of an hour passes on the virtual clock: a link not opened by then opens nothing.
        let late = token_of(&link(&app, &acme).await);
        app.stack.advance(Duration::from_secs(15 * 60 + 1));
        assert_eq!(
            sign_in_page(&app, &late).await.status,
            401,
            "the page of an expired link"
        );
        assert_eq!(
            open_link(&app, &late, ORIGIN).await.status,
            401,
            "an expired link opens nothing"
        );
    });
}

#[test]
fn a_link_opens_once_and_a_second_opening_a_made_up_link_and_a_revoked_link_get_the_page_that_says_why() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        let token = token_of(&link(&app, &acme).await);
        let first = open_link(&app, &token, ORIGIN).await.expect(303);
        assert_eq!(first.header("location"), Some("/console"));
        let cookie = first.header("set-cookie").unwrap_or_default();
        for attribute in [
            &format!("{COOKIE}=ccs_"),
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=28800",
        ] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        let again = open_link(&app, &token, ORIGIN).await;
        assert_eq!(again.status, 401);
        assert!(again.text().contains("cannot be opened"), "{}", again.text());
        assert_eq!(again.header("set-cookie"), None);

        let revoked = link(&app, &acme).await;
        let gone = app
            .api(
                &acme.key,
                Method::Delete,
                &format!("/api-console-sessions/{}", text(&revoked["id"])),
                None,
            )
            .await
            .expect(200)
            .json();
        assert!(gone["revoked_at"].is_string(), "{gone}");
        assert_eq!(
            open_link(&app, &token_of(&revoked), ORIGIN).await.status,
            401,
            "a revoked link opens nothing"
        );
        assert_eq!(sign_in_page(&app, &token_of(&revoked)).await.status, 401);

        let long = format!("{:x<2000}", "ccl_");
        let hostile = [
            String::new(),
            "ccl_short".to_owned(),
            format!("ccl_{}", "A".repeat(43)),
            format!("{token}x"),
            "<script>alert(1)</script>".to_owned(),
            long,
        ];
        for candidate in &hostile {
            let shown: String = candidate.chars().take(20).collect();
            let page = sign_in_page(&app, candidate).await;
            assert_eq!(page.status, 401, "GET {shown}");
            assert!(
                !page.text().contains("<script>alert"),
                "nothing given is echoed as markup"
            );
            assert_eq!(
                open_link(&app, candidate, ORIGIN).await.status,
                401,
                "POST {shown}"
            );
        }
    });
}

#[test]
fn a_link_posted_from_another_sites_page_is_refused_so_nobody_can_sign_a_browser_into_their_own_console() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        let token = token_of(&link(&app, &acme).await);
        assert_error(
            &open_link(&app, &token, "https://evil.example").await,
            403,
            "forbidden",
            "another site",
        );
        assert_error(
            &open_link(&app, &token, "null").await,
            403,
            "forbidden",
            "a page that hides where it is",
        );
        assert_eq!(
            open_link(&app, &token, ORIGIN).await.status,
            303,
            "the refused attempt used nothing up"
        );
    });
}

#[test]
fn a_link_is_issued_only_with_a_valid_key_or_the_admin_token_and_only_for_a_business_that_exists() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        assert_error(
            &app.json(Method::Post, "/api-console-links", &[], None).await,
            401,
            "unauthorized",
            "no key",
        );
        assert_error(
            &app.api("cek_nope", Method::Post, "/api-console-links", None)
                .await,
            401,
            "unauthorized",
            "a made-up key",
        );
        assert_error(
            &app.admin(
                Method::Post,
                &format!("/admin/businesses/{UUID_LIKE}/console-links"),
                None,
            )
            .await,
            404,
            "not_found",
            "an unknown business",
        );
        assert_error(
            &app.json(
                Method::Post,
                &format!("/admin/businesses/{}/console-links", acme.id),
                &[],
                None,
            )
            .await,
            401,
            "unauthorized",
            "no admin token",
        );
    });
}

#[test]
fn a_session_answers_who_is_signed_in_with_the_csrf_token_its_page_sends_on_changes() {
    test(|app| async move {
        let (acme, name, _) = two_businesses(&app).await;
        let session = sign_in(&app, &acme).await;
        let me = as_console(&app, &session, Method::Get, "/console/session", None, true)
            .await
            .expect(200)
            .json();
        assert_eq!(me["business"]["id"], acme.id.as_str());
        assert_eq!(me["business"]["name"], name.as_str());
        let csrf = text(&me["csrf_token"]);
        assert!(
            csrf.len() == 64
                && csrf
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{me}"
        );
        let expires = rfc3339_ms(text(&me["expires_at"])).unwrap_or_default();
        assert!(expires > app.stack.now_ms() + 7 * 3_600_000, "{me}");
        assert_error(
            &app.request(Method::Get, "/console/session", &[], Vec::new())
                .await,
            401,
            "unauthorized",
            "no cookie",
        );

        // Its eight hours pass on the virtual clock: then it is no credential.
        app.stack.advance(Duration::from_secs(8 * 3600 - 60));
        as_console(&app, &session, Method::Get, "/console/session", None, true)
            .await
            .expect(200);
        app.stack.advance(Duration::from_secs(61));
        assert_error(
            &as_console(&app, &session, Method::Get, "/console/session", None, true).await,
            401,
            "unauthorized",
            "a session past its eight hours",
        );
    });
}

#[test]
fn a_session_does_what_the_businesss_key_can_for_that_business_only() {
    test(|app| async move {
        let (acme, _, other) = two_businesses(&app).await;
        let session = sign_in(&app, &acme).await;
        as_console(&app, &session, Method::Get, "/api-webhooks", None, true)
            .await
            .expect(200);
        let made = as_console(
            &app,
            &session,
            Method::Post,
            "/api-webhooks",
            Some(json!({ "name": "From the console", "url": "https://crm.example.com/hook", "events": ["customer.created"] })),
            true,
        )
        .await
        .expect(201)
        .json();
        assert!(made["secret"].is_string(), "{made}");
        let id = text(&made["webhook"]["id"]);
        app.api(&acme.key, Method::Get, &format!("/api-webhooks/{id}"), None)
            .await
            .expect(200);
        assert_error(
            &app.api(&other.key, Method::Get, &format!("/api-webhooks/{id}"), None)
                .await,
            404,
            "not_found",
            "another business's key",
        );
        as_console(&app, &session, Method::Get, "/api-crm-analytics", None, true)
            .await
            .expect(200);
        as_console(
            &app,
            &session,
            Method::Get,
            "/api/dashboard/crm-links/all",
            None,
            true,
        )
        .await
        .expect(200);
    });
}

#[test]
fn a_session_reaches_only_the_endpoints_the_console_uses_and_the_data_the_crm_syncs_stays_the_keys() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        let session = sign_in(&app, &acme).await;
        let synced = as_console(
            &app,
            &session,
            Method::Post,
            "/api-customers-sync",
            Some(json!({ "customers": [{ "external_id": unique("c"), "name": "Console Made" }] })),
            true,
        )
        .await;
        assert_error(&synced, 401, "unauthorized", "a sync");
        assert_error(
            &as_console(
                &app,
                &session,
                Method::Get,
                "/api-messages-since?since=1970-01-01T00:00:00Z",
                None,
                true,
            )
            .await,
            401,
            "unauthorized",
            "polling messages",
        );
    });
}

#[test]
fn a_session_changes_nothing_without_its_csrf_token_or_with_another_sessions() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        let session = sign_in(&app, &acme).await;
        let second = sign_in(&app, &acme).await;
        let body = json!({ "name": "No token", "url": "https://crm.example.com/hook", "events": ["customer.created"] });
        assert_error(
            &as_console(
                &app,
                &session,
                Method::Post,
                "/api-webhooks",
                Some(body.clone()),
                false,
            )
            .await,
            403,
            "forbidden",
            "no CSRF token",
        );
        let wrong = app
            .json(
                Method::Post,
                "/api-webhooks",
                &[("cookie", &session.cookie), ("x-csrf-token", &second.csrf)],
                Some(body),
            )
            .await;
        assert_error(&wrong, 403, "forbidden", "another session's token");
        assert_error(
            &as_console(&app, &session, Method::Post, "/console/sign-out", None, false).await,
            403,
            "forbidden",
            "signing out needs it too",
        );
        let hooks = app
            .api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200)
            .json();
        assert!(
            !hooks["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|hook| hook["name"] == "No token"),
            "nothing was made: {hooks}"
        );
    });
}

#[test]
fn a_session_is_named_in_the_audit_log_as_the_session_that_acted() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        let session = sign_in(&app, &acme).await;
        let issued = as_console(
            &app,
            &session,
            Method::Post,
            "/api-keys",
            Some(json!({ "name": unique("console key") })),
            true,
        )
        .await
        .expect(201)
        .json();
        let log = app
            .api(&acme.key, Method::Get, "/api-audit-log?limit=20", None)
            .await
            .expect(200)
            .json();
        let entries = log["entries"].as_array().cloned().unwrap_or_default();
        let actor = format!("console:{}", session.id);
        let entry = entries
            .iter()
            .find(|entry| entry["action"] == "api_key.issued" && entry["target"]["id"] == issued["id"]);
        assert_eq!(entry.map(|entry| &entry["actor"]), Some(&json!(actor)), "{log}");
        let opened = entries.iter().find(|entry| {
            entry["action"] == "console_session.opened" && entry["target"]["id"] == session.id.as_str()
        });
        assert_eq!(opened.map(|entry| &entry["actor"]), Some(&json!(actor)), "{log}");
        assert!(
            entries
                .iter()
                .any(|entry| entry["action"] == "console_session.link_issued"
                    && text(&entry["actor"]).starts_with("key:cek_")),
            "{log}"
        );
    });
}

#[test]
fn a_session_ends_at_once_when_it_signs_out_or_when_the_business_or_the_operator_revokes_it() {
    test(|app| async move {
        let (acme, _, other) = two_businesses(&app).await;
        let first = sign_in(&app, &acme).await;
        let out = as_console(&app, &first, Method::Post, "/console/sign-out", None, true)
            .await
            .expect(204);
        assert!(
            out.header("set-cookie")
                .is_some_and(|cookie| cookie.contains("Max-Age=0")),
            "{:?}",
            out.headers
        );
        assert_error(
            &as_console(&app, &first, Method::Get, "/api-webhooks", None, true).await,
            401,
            "unauthorized",
            "after signing out",
        );

        let second = sign_in(&app, &acme).await;
        let current = app
            .api(&acme.key, Method::Get, "/api-console-sessions", None)
            .await
            .expect(200)
            .json();
        let sessions = current["sessions"].as_array().cloned().unwrap_or_default();
        assert!(
            sessions
                .iter()
                .any(|s| s["id"] == second.id.as_str() && s["opened_at"].is_string()),
            "the open session is listed: {current}"
        );
        assert!(
            !sessions.iter().any(|s| s["id"] == first.id.as_str()),
            "the ended one is not: {current}"
        );
        app.api(
            &acme.key,
            Method::Delete,
            &format!("/api-console-sessions/{}", second.id),
            None,
        )
        .await
        .expect(200);
        assert_error(
            &as_console(&app, &second, Method::Get, "/console/session", None, true).await,
            401,
            "unauthorized",
            "revoked by the business",
        );

        let third = sign_in(&app, &acme).await;
        assert_error(
            &app.api(
                &other.key,
                Method::Delete,
                &format!("/api-console-sessions/{}", third.id),
                None,
            )
            .await,
            404,
            "not_found",
            "another business's key",
        );
        app.admin(
            Method::Delete,
            &format!("/admin/console-sessions/{}", third.id),
            None,
        )
        .await
        .expect(200);
        assert_error(
            &as_console(&app, &third, Method::Get, "/api-keys", None, true).await,
            401,
            "unauthorized",
            "revoked by the operator",
        );
    });
}

#[test]
fn a_cookie_that_is_not_a_session_is_no_credential_and_says_so() {
    test(|app| async move {
        let (acme, _, other) = two_businesses(&app).await;
        let cases = [
            (
                "garbage",
                format!("{COOKIE}=nonsense"),
                "missing x-api-key header",
            ),
            (
                "a session that never was",
                format!("{COOKIE}=ccs_{}", "A".repeat(43)),
                "console session has ended",
            ),
            (
                "a link in the cookie",
                format!("{COOKIE}=ccl_{}", "A".repeat(43)),
                "missing x-api-key header",
            ),
        ];
        for (label, cookie, message) in cases {
            let answer = app
                .request(Method::Get, "/api-webhooks", &[("cookie", &cookie)], Vec::new())
                .await;
            let error = assert_error(&answer, 401, "unauthorized", label);
            assert!(text(&error["message"]).contains(message), "{label}: {error}");
        }
        let session = sign_in(&app, &acme).await;
        as_console(
            &app,
            &session,
            Method::Post,
            "/api-webhooks",
            Some(json!({ "name": "From the console", "url": "https://crm.example.com/hook" })),
            true,
        )
        .await
        .expect(201);
        let with_key = app
            .request(
                Method::Get,
                "/api-webhooks",
                &[("cookie", &session.cookie), ("x-api-key", &other.key)],
                Vec::new(),
            )
            .await
            .expect(200)
            .json();
        assert!(
            with_key["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|hook| !text(&hook["name"]).starts_with("From the console")),
            "a key, when sent, is what counts: {with_key}"
        );
    });
}

#[test]
fn keys_are_issued_listed_and_revoked_with_the_businesss_key_and_another_businesss_key_is_not_found() {
    test(|app| async move {
        let (acme, _, other) = two_businesses(&app).await;
        let made = app
            .api(
                &acme.key,
                Method::Post,
                "/api-keys",
                Some(json!({ "name": "HubSpot staging" })),
            )
            .await
            .expect(201)
            .json();
        let key = text(&made["key"]);
        assert!(key.starts_with("cek_"), "{made}");
        let works = app
            .api(key, Method::Get, "/api-keys", None)
            .await
            .expect(200)
            .json();
        let listed = works["api_keys"].as_array().cloned().unwrap_or_default();
        assert!(listed.iter().any(|k| k["id"] == made["id"]), "{works}");
        assert!(
            listed.iter().all(|k| k["business_id"] == acme.id.as_str()),
            "{works}"
        );
        let path = format!("/api-keys/{}", text(&made["id"]));
        assert_error(
            &app.api(&other.key, Method::Delete, &path, None).await,
            404,
            "not_found",
            "another business's key",
        );
        app.api(&acme.key, Method::Delete, &path, None).await.expect(200);
        assert_error(
            &app.api(key, Method::Get, "/api-keys", None).await,
            401,
            "unauthorized",
            "the revoked key",
        );
        assert_error(
            &app.api(
                &acme.key,
                Method::Post,
                "/api-keys",
                Some(json!({ "name": "x".repeat(201) })),
            )
            .await,
            422,
            "validation_failed",
            "a 201-character name",
        );
    });
}

#[test]
fn the_business_is_read_its_inbox_framing_set_and_its_rate_limit_left_to_the_operator() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        let read = app
            .api(&acme.key, Method::Get, "/api-business", None)
            .await
            .expect(200)
            .json();
        assert_eq!(read["id"], acme.id.as_str());
        let framed = app
            .api(
                &acme.key,
                Method::Patch,
                "/api-business",
                Some(json!({ "embed_frame_ancestors": ["https://crm.acme.example"] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            framed["embed_frame_ancestors"],
            json!(["https://crm.acme.example"])
        );
        let raised = app
            .api(
                &acme.key,
                Method::Patch,
                "/api-business",
                Some(json!({ "rate_limit": { "per_minute": 100_000 } })),
            )
            .await;
        let error = assert_error(&raised, 403, "forbidden", "raising its own limit");
        assert_eq!(error["field"], "rate_limit");
        let after = app
            .api(&acme.key, Method::Get, "/api-business", None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            after["rate_limit"], read["rate_limit"],
            "the limit did not change"
        );
    });
}

#[test]
fn channel_accounts_and_connectors_of_another_business_are_not_found_whatever_the_method() {
    test(|app| async move {
        let (acme, _, other) = two_businesses(&app).await;
        let account = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/channel-accounts", other.id),
                Some(json!({
                    "channel": "sms", "provider": "twilio", "address": "+14155550123",
                    "settings": { "account_sid": "AC123" }, "secrets": { "auth_token": "secret" }
                })),
            )
            .await
            .expect(201)
            .json();
        let path = format!("/api-channel-accounts/{}", text(&account["id"]));
        assert_error(
            &app.api(
                &acme.key,
                Method::Patch,
                &path,
                Some(json!({ "name": "mine now" })),
            )
            .await,
            404,
            "not_found",
            "another business's account",
        );
        let own = app
            .api(
                &other.key,
                Method::Patch,
                &path,
                Some(json!({ "name": "renamed" })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(own["name"], "renamed");
        let listed = app
            .api(&acme.key, Method::Get, "/api-channel-accounts", None)
            .await
            .expect(200)
            .json();
        assert!(
            !listed["channel_accounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["id"] == account["id"]),
            "{listed}"
        );
        for tail in [
            "",
            "/test",
            "/teams",
            "/pipelines",
            "/sync-log",
            "/contacts/chatwoot:1",
        ] {
            let method = if tail == "/test" {
                Method::Post
            } else {
                Method::Get
            };
            let answer = app
                .api(
                    &acme.key,
                    method,
                    &format!("/api-connectors/{UUID_LIKE}{tail}"),
                    None,
                )
                .await;
            assert_error(&answer, 404, "not_found", &format!("a connector{tail}"));
        }
    });
}

#[test]
fn the_admin_paths_still_tell_nothing_without_the_admin_token_and_a_key_is_no_admin_token() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        assert_error(
            &app.api(
                &acme.key,
                Method::Get,
                &format!("/admin/businesses/{}/api-keys", acme.id),
                None,
            )
            .await,
            401,
            "unauthorized",
            "an API key",
        );
        assert_error(
            &app.request(Method::Get, "/admin/no-such-thing", &[], Vec::new())
                .await,
            401,
            "unauthorized",
            "an unknown admin path without the token",
        );
    });
}

#[test]
fn a_console_session_is_held_to_its_businesss_rate_limit_as_its_keys_are() {
    test(|app| async move {
        let (acme, _, _) = two_businesses(&app).await;
        app.admin(
            Method::Patch,
            &format!("/admin/businesses/{}", acme.id),
            Some(json!({ "rate_limit": { "per_minute": 6, "burst": 6 } })),
        )
        .await
        .expect(200);
        let session = sign_in(&app, &acme).await;
        let mut statuses = Vec::new();
        let mut refused = None;
        for _ in 0..10 {
            let answer = as_console(&app, &session, Method::Get, "/api-webhooks", None, true).await;
            statuses.push(answer.status);
            if answer.status == 200 {
                assert_eq!(
                    answer.header("x-ratelimit-limit"),
                    Some("6"),
                    "a served answer's headers"
                );
            }
            if answer.status == 429 && refused.is_none() {
                refused = Some(answer);
            }
        }
        let served = statuses.iter().filter(|status| **status == 200).count();
        assert!(
            (1..6).contains(&served) && statuses[served..].iter().all(|status| *status == 429),
            "the session's first requests (after the one that read its session) are served, then refused: {statuses:?}"
        );
        let refused = refused.unwrap_or_else(|| panic!("never refused: {statuses:?}"));
        assert_error(
            &refused,
            429,
            "rate_limited",
            "a session over its business's limit",
        );
        assert!(refused.header("retry-after").is_some(), "Retry-After");
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
        app.stack.advance(Duration::from_secs(60));
        as_console(&app, &session, Method::Get, "/api-webhooks", None, true)
            .await
            .expect(200);
    });
}
