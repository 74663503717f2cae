//! SSO tokens and the embedded inbox (the end-to-end suite's `sso.test.mjs`, with its seed
//! `sso-seed.mjs`): a CRM issues a token with its API key; the token opens one customer's inbox
//! (the page, and the JSON the page polls) and nothing else; it cannot be forged, widened or used
//! after it expires (its lifetime passes on the virtual clock) or is revoked; bad requests get the
//! one JSON error shape; the page carries the headers that keep it framed only where allowed.

use super::inbound::download;
use crate::app::{Answer, App, Business, ORIGIN, test};
use crate::partners::form::Multipart;
use crate::partners::mailgun::{self, Mail, Mailgun};
use crate::partners::meta::{self, Graph};
use crate::partners::unique_hex;
use crate::steps::api::{assert_error, new_uuid, raw, rfc3339_ms};
use crate::steps::channels::messages_of;
use crate::steps::customers::{customer, sync};
use crate::steps::text;
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const CRM: &str = "https://crm.example.com";

/// `sso_` and 43 characters of URL-safe base64.
fn is_token(token: &str) -> bool {
    token.strip_prefix("sso_").is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// A PNG (its signature, an IHDR chunk's start and some bytes): what the customer is sent.
fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend_from_slice(&[0, 0, 0, 13, b'I', b'H', b'D', b'R']);
    bytes.extend((0..600u32).map(|i| (i * 13 % 251) as u8));
    bytes
}

/// A business whose customer has talked on two channels (the e2e suite's `seedInbox`): WhatsApp
/// through Meta and email through Mailgun, inbound messages posted signed as the providers sign
/// them, and outbound ones (one with a PDF, one with an image) sent through `/api-send-message`.
struct Seed {
    business: Business,
    customer_id: String,
    external_id: String,
    phone: String,
    email: String,
    whatsapp_path: String,
    whatsapp_address: String,
    app_secret: String,
    email_path: String,
    email_address: String,
    signing_key: String,
}

async fn add_account(app: &App, business: &Business, account: Value) -> Value {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/channel-accounts", business.id),
        Some(account),
    )
    .await
    .expect(201)
    .json()
}

async fn upload(app: &App, key: &str, name: &str, kind: &str, bytes: &[u8]) -> Value {
    let content_type = Multipart::content_type();
    app.request(
        Method::Post,
        "/api-upload-attachment",
        &[("x-api-key", key), ("content-type", &content_type)],
        Multipart::new().file("file", name, kind, bytes).finish(),
    )
    .await
    .expect(201)
    .json()["attachment"]
        .clone()
}

async fn seed_inbox(app: &App, frame_ancestors: &[&str]) -> Seed {
    let business = app.business("Acme").await;
    if !frame_ancestors.is_empty() {
        app.admin(
            Method::Patch,
            &format!("/admin/businesses/{}", business.id),
            Some(json!({ "embed_frame_ancestors": frame_ancestors })),
        )
        .await
        .expect(200);
    }
    // Meta's and Mailgun's APIs take the sends (the partners answer as long as the stack lives).
    Graph::install(&app.stack);
    let whatsapp_address = meta::numeric_id();
    let app_secret = unique_hex(32);
    let whatsapp = add_account(
        app,
        &business,
        json!({
            "channel": "whatsapp", "provider": "meta", "address": whatsapp_address,
            "secrets": { "app_secret": app_secret, "verify_token": unique_hex(16), "access_token": format!("EAAG{}", unique_hex(40)) }
        }),
    )
    .await;
    let domain = format!("mg-{}.example.com", unique_hex(8));
    let mailgun_key = format!("key-{}", unique_hex(32));
    Mailgun::install(&app.stack, &domain, &mailgun_key);
    let signing_key = unique_hex(32);
    let email_account = add_account(
        app,
        &business,
        json!({
            "channel": "email", "provider": "mailgun", "address": format!("support@{domain}"),
            "settings": { "domain": domain },
            "secrets": { "signing_key": signing_key, "api_key": mailgun_key }
        }),
    )
    .await;

    let tag = unique("embed");
    let phone = format!("+35387{}", &meta::numeric_id()[1..8]);
    let (external_id, email) = (format!("CRM-{tag}"), format!("{tag}@example.com"));
    let synced = sync(
        app,
        &business.key,
        json!([{ "external_id": external_id, "name": "Joe Bloggs", "email": email, "phone": phone }]),
    )
    .await;
    let seed = Seed {
        customer_id: text(&synced["results"]["details"][0]["customer_id"]).to_owned(),
        business,
        external_id,
        phone,
        email,
        whatsapp_path: text(&whatsapp["webhook_path"]).to_owned(),
        whatsapp_address,
        app_secret,
        email_path: text(&email_account["webhook_path"]).to_owned(),
        email_address: text(&email_account["address"]).to_owned(),
        signing_key,
    };

    seed.email_from_customer(
        app,
        "Order 1234",
        "Hi, I ordered a blue kettle last week. Where is my parcel?",
    )
    .await;
    let pdf = upload(
        app,
        &seed.business.key,
        "invoice-1234.pdf",
        "application/pdf",
        b"%PDF-1.4\n% native invoice\n%%EOF\n",
    )
    .await;
    seed.send_to_customer(
        app,
        "email",
        "Sorry for the wait, Joe! Your kettle ships today. The invoice is attached.",
        &[&pdf],
    )
    .await;
    seed.whatsapp_from_customer(app, "Thanks! Can you send me a photo of the tracking label?")
        .await;
    let image = upload(app, &seed.business.key, "tracking-label.png", "image/png", &png()).await;
    seed.send_to_customer(
        app,
        "whatsapp",
        "Here it is: tracking number IE123456789.",
        &[&image],
    )
    .await;
    seed
}

impl Seed {
    /// An inbound WhatsApp text from the customer, signed as Meta signs it; checks it was stored.
    async fn whatsapp_from_customer(&self, app: &App, content: &str) {
        let notification = meta::whatsapp_text(
            &self.whatsapp_address,
            self.phone.trim_start_matches('+'),
            "Joe Bloggs",
            &format!("wamid.{}", unique("m")),
            content,
        );
        let body = serde_json::to_vec(&notification).unwrap_or_default();
        let signature = meta::signature(&self.app_secret, &body);
        let stored = app
            .request(
                Method::Post,
                &self.whatsapp_path,
                &[
                    ("content-type", "application/json"),
                    ("x-hub-signature-256", &signature),
                ],
                body,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(stored["stored"], 1, "the WhatsApp message is stored: {stored}");
    }

    /// An inbound email from the customer, signed as Mailgun signs it.
    async fn email_from_customer(&self, app: &App, subject: &str, body: &str) {
        let message_id = mailgun::message_id();
        let from = format!("Joe Bloggs <{}>", self.email);
        let mut fields = Mail {
            recipient: &self.email_address,
            sender: &self.email,
            from: &from,
            subject,
            body,
            message_id: &message_id,
        }
        .fields();
        fields.extend(mailgun::signed(&self.signing_key, app.stack.now_ms() / 1000));
        let content_type = Multipart::content_type();
        app.request(
            Method::Post,
            &self.email_path,
            &[("content-type", &content_type)],
            Multipart::new().fields(&fields).finish(),
        )
        .await
        .expect(200);
    }

    /// Sends a message to the customer through the API and lets the dispatcher take it to the
    /// provider; the message as accepted.
    async fn send_to_customer(
        &self,
        app: &App,
        channel: &str,
        content: &str,
        attachments: &[&Value],
    ) -> Value {
        let ids: Vec<&Value> = attachments.iter().map(|attachment| &attachment["id"]).collect();
        let mut body = json!({ "customer_id": self.customer_id, "channel": channel, "content": content, "attachments": ids });
        if channel == "email" {
            body["subject"] = json!("Your order");
        }
        let sent = app
            .api(&self.business.key, Method::Post, "/api-send-message", Some(body))
            .await
            .expect(202)
            .json();
        app.settle_within(Duration::from_secs(60)).await;
        let id = &sent["message"]["id"];
        let now = messages_of(app, &self.business.key)
            .await
            .into_iter()
            .find(|message| &message["id"] == id)
            .unwrap_or_else(|| panic!("the {channel} message is listed"));
        assert_eq!(
            now["status"], "sent",
            "the {channel} message left the queue: {now}"
        );
        sent["message"].clone()
    }

    /// Issues an SSO token for the customer (`fields` over the customer id).
    async fn token(&self, app: &App, fields: Value) -> Value {
        let mut body = json!({ "customer_id": self.customer_id });
        for (key, value) in fields.as_object().into_iter().flatten() {
            body[key] = value.clone();
        }
        app.api(
            &self.business.key,
            Method::Post,
            "/api-sso-generate-token",
            Some(body),
        )
        .await
        .expect(201)
        .json()
    }
}

/// The page at an `embed_url`, as the browser inside the CRM's iframe loads it.
async fn page(app: &App, url: &str) -> Answer {
    let path = url
        .strip_prefix(ORIGIN)
        .unwrap_or_else(|| panic!("{url} is under the public origin"));
    app.request(Method::Get, path, &[], Vec::new()).await
}

/// `GET /embed/api/timeline{query}` with the token as a bearer (none: no Authorization).
async fn timeline(app: &App, token: Option<&str>, query: &str) -> Answer {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|bearer| ("authorization", bearer))
        .into_iter()
        .collect();
    app.request(
        Method::Get,
        &format!("/embed/api/timeline{query}"),
        &headers,
        Vec::new(),
    )
    .await
}

/// `POST /embed/api/reply` of a raw body with the token as a bearer.
async fn reply_raw(app: &App, token: &str, body: Vec<u8>) -> Answer {
    let bearer = format!("Bearer {token}");
    app.request(
        Method::Post,
        "/embed/api/reply",
        &[("authorization", &bearer), ("content-type", "application/json")],
        body,
    )
    .await
}

async fn reply(app: &App, token: &str, body: Value) -> Answer {
    reply_raw(app, token, serde_json::to_vec(&body).unwrap_or_default()).await
}

/// A business (in Ireland) with a customer of its own, to show tokens do not cross businesses;
/// it and the customer's id.
async fn other_business(app: &App) -> (Business, String) {
    let other = app.business("Other").await;
    let synced = sync(
        app,
        &other.key,
        json!([{ "name": "Someone Else", "email": format!("{}@example.com", unique("other")) }]),
    )
    .await;
    let id = text(&synced["results"]["details"][0]["customer_id"]).to_owned();
    (other, id)
}

fn csp(answer: &Answer) -> String {
    answer
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned()
}

fn is_html(answer: &Answer) -> bool {
    answer
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/html"))
}

#[test]
fn a_token_is_issued_for_one_customer_with_its_expiry_and_a_ready_embed_url_and_never_shows_the_api_key() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[CRM, "https://*.crm.example.com"]).await;
        let before = app.stack.now_ms();
        let answer = app
            .api(
                &seed.business.key,
                Method::Post,
                "/api-sso-generate-token",
                Some(json!({ "customer_id": seed.customer_id, "scope": "inbox", "expires_in": 3600 })),
            )
            .await
            .expect(201);
        let issued = answer.json();
        let token = text(&issued["token"]);
        assert!(is_token(token), "{issued}");
        let token_id = text(&issued["token_id"]);
        assert!(
            token_id.len() == 36
                && token_id
                    .bytes()
                    .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{issued}"
        );
        assert_eq!(issued["scope"], "inbox");
        assert_eq!(issued["customer_id"], seed.customer_id.as_str());
        assert_eq!(issued["expires_in"], 3600);
        let expiry = rfc3339_ms(text(&issued["expires_at"])).unwrap_or_default();
        let now = app.stack.now_ms();
        assert!(
            expiry >= before + 3_600_000 - 2000 && expiry <= now + 3_600_000 + 2000,
            "expires_at {}",
            issued["expires_at"]
        );
        assert_eq!(issued["embed_url"], format!("{ORIGIN}/embed/inbox?token={token}"));
        assert!(
            !answer.text().contains(&seed.business.key),
            "the answer does not contain the API key"
        );
        assert!(
            !answer.text().contains(&seed.business.key[4..20]),
            "nor any part of it"
        );
    });
}

#[test]
fn a_token_defaults_to_an_hour_of_the_read_only_scope_and_each_token_is_new() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let first = seed.token(&app, json!({})).await;
        let second = seed.token(&app, json!({})).await;
        assert_eq!(first["scope"], "inbox");
        assert_eq!(first["expires_in"], 3600);
        assert_ne!(first["token"], second["token"]);
        assert_ne!(first["token_id"], second["token_id"]);
    });
}

#[test]
fn a_token_follows_the_seeds_flow_by_customer_id_after_an_external_id_lookup_or_by_external_id_directly() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let found = customer(&app, &seed.business.key, "external_id", &seed.external_id)
            .await
            .expect(200)
            .json();
        let by_id = seed.token(&app, json!({ "customer_id": found["id"] })).await;
        assert_eq!(by_id["customer_id"], seed.customer_id.as_str());
        let by_external = app
            .api(
                &seed.business.key,
                Method::Post,
                "/api-sso-generate-token",
                Some(json!({ "external_id": seed.external_id, "scope": "inbox:reply" })),
            )
            .await
            .expect(201)
            .json();
        assert_eq!(by_external["customer_id"], seed.customer_id.as_str());
        assert_eq!(by_external["scope"], "inbox:reply");
    });
}

#[test]
fn another_businesss_customer_or_one_that_does_not_exist_is_not_found() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let (_, other_customer) = other_business(&app).await;
        let cases = [
            ("another business", json!({ "customer_id": other_customer })),
            ("an id nobody has", json!({ "customer_id": new_uuid() })),
            (
                "an external id nobody has",
                json!({ "external_id": unique("CRM-missing") }),
            ),
        ];
        for (description, body) in cases {
            let answer = app
                .api(
                    &seed.business.key,
                    Method::Post,
                    "/api-sso-generate-token",
                    Some(body),
                )
                .await;
            assert_error(&answer, 404, "not_found", description);
        }
    });
}

#[test]
fn bad_token_requests_are_refused_with_the_field_at_fault() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let id = seed.customer_id.as_str();
        let cases = [
            ("no customer", json!({}), "customer_id"),
            (
                "two ways of naming the customer",
                json!({ "customer_id": id, "external_id": "CRM-1" }),
                "customer_id",
            ),
            (
                "an unknown scope",
                json!({ "customer_id": id, "scope": "admin" }),
                "scope",
            ),
            (
                "a scope in another case",
                json!({ "customer_id": id, "scope": "INBOX" }),
                "scope",
            ),
            (
                "expires_in under a minute",
                json!({ "customer_id": id, "expires_in": 59 }),
                "expires_in",
            ),
            (
                "expires_in over a day",
                json!({ "customer_id": id, "expires_in": 86_401 }),
                "expires_in",
            ),
            (
                "a negative expires_in",
                json!({ "customer_id": id, "expires_in": -1 }),
                "expires_in",
            ),
            (
                "expires_in as text",
                json!({ "customer_id": id, "expires_in": "3600" }),
                "expires_in",
            ),
            (
                "a fractional expires_in",
                json!({ "customer_id": id, "expires_in": 90.5 }),
                "expires_in",
            ),
            (
                "scope of the wrong type",
                json!({ "customer_id": id, "scope": ["inbox"] }),
                "scope",
            ),
        ];
        for (description, body, field) in cases {
            let answer = app
                .api(
                    &seed.business.key,
                    Method::Post,
                    "/api-sso-generate-token",
                    Some(body),
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], field, "{description}");
        }
    });
}

#[test]
fn malformed_oversized_unauthorised_and_wrongly_sent_token_requests_get_the_matching_error() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let key = seed.business.key.as_str();
        let path = "/api-sso-generate-token";
        assert_error(
            &raw(&app, Some(key), Method::Post, path, b"{\"customer_id\": ").await,
            400,
            "malformed_request",
            "truncated JSON",
        );
        assert_error(
            &raw(&app, Some(key), Method::Post, path, b"").await,
            400,
            "malformed_request",
            "no body",
        );
        let huge = json!({ "customer_id": seed.customer_id, "padding": "x".repeat(70 * 1024) }).to_string();
        assert_error(
            &raw(&app, Some(key), Method::Post, path, huge.as_bytes()).await,
            413,
            "payload_too_large",
            "a 70 KiB body",
        );
        let body = json!({ "customer_id": seed.customer_id });
        assert_error(
            &app.json(Method::Post, path, &[], Some(body.clone())).await,
            401,
            "unauthorized",
            "no key",
        );
        assert_error(
            &app.api(&format!("cek_{}", "0".repeat(48)), Method::Post, path, Some(body))
                .await,
            401,
            "unauthorized",
            "an unknown key",
        );
        let get = app.api(key, Method::Get, path, None).await;
        assert_error(&get, 405, "method_not_allowed", "GET");
        assert_eq!(get.header("allow"), Some("POST"));
    });
}

#[test]
fn the_page_is_served_with_a_policy_that_lets_only_the_allowed_crm_frame_it() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[CRM, "https://*.crm.example.com"]).await;
        let issued = seed.token(&app, json!({})).await;
        let answer = page(&app, text(&issued["embed_url"])).await.expect(200);
        assert!(is_html(&answer), "{:?}", answer.headers);
        let policy = csp(&answer);
        let frame = "frame-ancestors https://crm.example.com https://*.crm.example.com";
        assert!(
            policy.contains(&format!("{frame};")) || policy.ends_with(frame),
            "{policy}"
        );
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(
            policy.contains("script-src 'self';") || policy.ends_with("script-src 'self'"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        assert!(
            answer
                .header("cache-control")
                .is_some_and(|value| value.contains("no-store")),
            "{:?}",
            answer.headers
        );
        let html = answer.text();
        assert!(
            html.contains(r#"<script src="/embed/assets/inbox.js" defer></script>"#),
            "{html}"
        );
        assert!(!html.contains("<script>"), "no inline script");

        for (path, kind) in [
            ("/embed/assets/inbox.js", "text/javascript"),
            ("/embed/assets/inbox.css", "text/css"),
        ] {
            let asset = app.request(Method::Get, path, &[], Vec::new()).await.expect(200);
            assert!(
                asset
                    .header("content-type")
                    .is_some_and(|value| value.starts_with(kind)),
                "{path}: {:?}",
                asset.headers
            );
            assert_eq!(asset.header("x-content-type-options"), Some("nosniff"), "{path}");
            let size = asset.body.len();
            assert!(size > 500 && size < 40_000, "{path} is small: {size} bytes");
        }
    });
}

#[test]
fn any_site_may_frame_the_page_of_a_business_that_set_nothing_none_once_it_says_so_and_the_admin_api_validates_origins()
 {
    test(|app| async move {
        let business = app.business("Framed").await;
        let path = format!("/admin/businesses/{}", business.id);
        let shown = app.admin(Method::Get, &path, None).await.expect(200).json();
        assert_eq!(shown["embed_frame_ancestors"], json!([]), "{shown}");
        let synced = sync(
            &app,
            &business.key,
            json!([{ "name": "Framed Anywhere", "email": format!("{}@example.com", unique("nf")) }]),
        )
        .await;
        let customer_id = synced["results"]["details"][0]["customer_id"].clone();
        let issue = || async {
            app.api(
                &business.key,
                Method::Post,
                "/api-sso-generate-token",
                Some(json!({ "customer_id": customer_id })),
            )
            .await
            .expect(201)
            .json()
        };
        let issued = issue().await;
        let embed_url = text(&issued["embed_url"]).to_owned();
        let framed = page(&app, &embed_url).await.expect(200);
        assert!(
            csp(&framed).ends_with("frame-ancestors *"),
            "the guide's iframe works with no setting: {}",
            csp(&framed)
        );

        let nowhere = app
            .admin(
                Method::Patch,
                &path,
                Some(json!({ "embed_frame_ancestors": ["'none'"] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(nowhere["embed_frame_ancestors"], json!(["'none'"]));
        let framed_nowhere = page(&app, text(&issue().await["embed_url"])).await;
        assert!(
            csp(&framed_nowhere).ends_with("frame-ancestors 'none'"),
            "{}",
            csp(&framed_nowhere)
        );

        let bad = [
            ("a bare host", json!(["crm.example.com"])),
            ("a path", json!(["https://crm.example.com/app"])),
            (
                "a smuggled directive",
                json!(["https://crm.example.com; script-src *"]),
            ),
            ("a wildcard for everyone", json!(["*"])),
            (
                "none beside an origin",
                json!(["'none'", "https://crm.example.com"]),
            ),
            ("not a list", json!("https://crm.example.com")),
        ];
        for (description, value) in bad {
            let answer = app
                .admin(
                    Method::Patch,
                    &path,
                    Some(json!({ "embed_frame_ancestors": value })),
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert!(
                text(&error["field"]).starts_with("embed_frame_ancestors"),
                "{description}: {error}"
            );
        }
        let set = app
            .admin(
                Method::Patch,
                &path,
                Some(
                    json!({ "embed_frame_ancestors": ["HTTPS://App.Example.com/", "http://127.0.0.1:9000"] }),
                ),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            set["embed_frame_ancestors"],
            json!(["https://app.example.com", "http://127.0.0.1:9000"])
        );
        let framed = page(&app, &embed_url).await;
        assert!(
            csp(&framed).ends_with("frame-ancestors https://app.example.com http://127.0.0.1:9000"),
            "{}",
            csp(&framed)
        );
        let reset = app
            .admin(Method::Patch, &path, Some(json!({ "embed_frame_ancestors": [] })))
            .await
            .expect(200)
            .json();
        assert_eq!(reset["embed_frame_ancestors"], json!([]));
        assert!(
            csp(&page(&app, &embed_url).await).ends_with("frame-ancestors *"),
            "an empty list is any site again"
        );
        assert_error(
            &app.admin(
                Method::Patch,
                &format!("/admin/businesses/{}", new_uuid()),
                Some(json!({ "embed_frame_ancestors": [] })),
            )
            .await,
            404,
            "not_found",
            "an unknown business",
        );
    });
}

#[test]
fn the_timeline_shows_the_customers_messages_on_every_channel_oldest_first_with_working_file_links() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let issued = seed.token(&app, json!({})).await;
        let answer = timeline(&app, Some(text(&issued["token"])), "").await.expect(200);
        let body = answer.json();
        assert_eq!(body["customer"]["name"], "Joe Bloggs");
        assert_eq!(body["scope"], "inbox");
        assert!(
            body.get("reply").is_none(),
            "the read-only scope offers no reply: {body}"
        );
        let shown = body["messages"].as_array().cloned().unwrap_or_default();
        let stored: Vec<Value> = messages_of(&app, &seed.business.key)
            .await
            .into_iter()
            .filter(|message| message["customer_id"] == seed.customer_id.as_str())
            .collect();
        let triple = |m: &Value| (m["id"].clone(), m["channel"].clone(), m["direction"].clone());
        assert_eq!(
            shown.iter().map(triple).collect::<Vec<_>>(),
            stored.iter().map(triple).collect::<Vec<_>>()
        );
        let mut channels: Vec<&str> = shown.iter().map(|m| text(&m["channel"])).collect();
        channels.sort_unstable();
        channels.dedup();
        assert!(channels.len() >= 2, "more than one channel: {channels:?}");
        assert!(
            shown.iter().any(|m| m["direction"] == "inbound")
                && shown.iter().any(|m| m["direction"] == "outbound"),
            "{body}"
        );

        let files: Vec<Value> = shown
            .iter()
            .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
            .collect();
        let named = |name: &str| {
            files
                .iter()
                .find(|file| file["filename"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name} among {files:?}"))
        };
        let (image, pdf) = (named("tracking-label.png"), named("invoice-1234.pdf"));
        assert!(
            image["preview"].as_bool().unwrap_or(false) || image["preview"].is_string(),
            "the image is previewed: {image}"
        );
        assert_eq!(pdf["preview"], false, "the PDF is a download");
        for file in [&image, &pdf] {
            let url = text(&file["url"]);
            assert!(url.starts_with(&format!("{ORIGIN}/api/download-media?")), "{url}");
            let query = url::Url::parse(url).unwrap_or_else(|error| panic!("{url}: {error}"));
            let pairs: Vec<(String, String)> = query.query_pairs().into_owned().collect();
            let (expires, signature) = (&pairs[pairs.len() - 2], &pairs[pairs.len() - 1]);
            assert_eq!(expires.0, "expires", "{url}");
            assert_eq!(signature.0, "signature", "{url}");
            assert!(
                signature.1.len() == 64
                    && signature
                        .1
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{url}"
            );
            let expires: i64 = expires.1.parse().unwrap_or(i64::MAX);
            assert!(
                expires * 1000 <= app.stack.now_ms() + 15 * 60_000 + 5000,
                "a short-lived link: {url}"
            );
            let download = download(&app, url, None).await;
            assert_eq!(
                download.status, 200,
                "{} downloads without an API key",
                file["filename"]
            );
            if file == &image {
                assert!(download.body == png(), "the image byte for byte");
            }
        }
        assert!(
            !answer.text().contains(&seed.business.id),
            "the page is not told the business id"
        );
    });
}

#[test]
fn a_poll_with_the_cursor_returns_nothing_until_the_customer_writes_then_exactly_the_new_message() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let issued = seed.token(&app, json!({})).await;
        let token = text(&issued["token"]);
        let first = timeline(&app, Some(token), "").await.expect(200).json();
        let cursor = text(&first["next_cursor"]).to_owned();
        let quiet = timeline(&app, Some(token), &format!("?after={cursor}"))
            .await
            .expect(200)
            .json();
        assert_eq!(quiet["messages"], json!([]));
        assert_eq!(quiet["next_cursor"], cursor.as_str());
        assert!(
            quiet.get("customer").is_none(),
            "polls carry only what changed: {quiet}"
        );

        app.stack.advance(Duration::from_secs(1));
        seed.whatsapp_from_customer(&app, "Is it out for delivery yet?")
            .await;
        let later = timeline(&app, Some(token), &format!("?after={cursor}"))
            .await
            .expect(200)
            .json();
        let shown: Vec<(Value, Value, Value)> = later["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| (m["content"].clone(), m["channel"].clone(), m["direction"].clone()))
            .collect();
        assert_eq!(
            shown,
            [(
                json!("Is it out for delivery yet?"),
                json!("whatsapp"),
                json!("inbound")
            )]
        );
        assert_error(
            &timeline(&app, Some(token), "?after=not-a-cursor").await,
            422,
            "validation_failed",
            "a made-up cursor",
        );
    });
}

#[test]
fn the_reply_scope_sends_through_the_send_message_path_and_the_read_only_scope_cannot_reply() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let read_only = seed.token(&app, json!({ "scope": "inbox" })).await;
        let refused = reply(
            &app,
            text(&read_only["token"]),
            json!({ "channel": "whatsapp", "content": "Should not be sent" }),
        )
        .await;
        assert_error(&refused, 403, "forbidden", "replying with the inbox scope");
        assert!(
            !messages_of(&app, &seed.business.key)
                .await
                .iter()
                .any(|m| m["content"] == "Should not be sent"),
            "nothing was stored"
        );

        let writer = seed.token(&app, json!({ "scope": "inbox:reply" })).await;
        let token = text(&writer["token"]);
        let options = timeline(&app, Some(token), "").await.expect(200).json();
        assert_eq!(options["scope"], "inbox:reply");
        let mut channels: Vec<&str> = options["reply"]["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        channels.sort_unstable();
        assert_eq!(channels, ["email", "whatsapp"]);
        assert_eq!(
            options["reply"]["default_channel"], "whatsapp",
            "the channel the customer last wrote on"
        );

        let sent = reply(
            &app,
            token,
            json!({ "channel": "whatsapp", "content": "Yes, it arrives this afternoon." }),
        )
        .await
        .expect(202)
        .json();
        assert_eq!(sent["message"]["direction"], "outbound");
        assert_eq!(sent["message"]["status"], "queued");
        app.settle_within(Duration::from_secs(60)).await;
        let id = text(&sent["message"]["id"]);
        let poll = timeline(
            &app,
            Some(token),
            &format!("?after={}&pending={id}", text(&options["next_cursor"])),
        )
        .await
        .expect(200)
        .json();
        let settled = poll["updated"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("the reply is among the updated: {poll}"));
        assert_eq!(settled["status"], "sent", "{settled}");

        let cases = [
            (
                "an unknown channel",
                json!({ "channel": "telegram", "content": "hi" }),
                "channel",
            ),
            (
                "no content",
                json!({ "channel": "whatsapp", "content": "  " }),
                "content",
            ),
            (
                "a channel without an account",
                json!({ "channel": "sms", "content": "hi" }),
                "channel",
            ),
            (
                "too long for WhatsApp",
                json!({ "channel": "whatsapp", "content": "x".repeat(4097) }),
                "content",
            ),
        ];
        for (description, body, field) in cases {
            let error = assert_error(
                &reply(&app, token, body).await,
                422,
                "validation_failed",
                description,
            );
            assert_eq!(error["field"], field, "{description}");
        }
        let huge = json!({ "channel": "whatsapp", "content": "x".repeat(70 * 1024) }).to_string();
        assert_error(
            &reply_raw(&app, token, huge.into_bytes()).await,
            413,
            "payload_too_large",
            "a 70 KiB reply",
        );
    });
}

#[test]
fn forged_altered_missing_and_borrowed_credentials_open_nothing_and_the_page_says_so() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let issued = seed.token(&app, json!({})).await;
        let token = text(&issued["token"]);
        let last = if token.ends_with('A') { 'B' } else { 'A' };
        let forged = [
            (
                "one character changed",
                format!("{}{last}", &token[..token.len() - 1]),
            ),
            (
                "a well-formed token never issued",
                format!("sso_{}", "A".repeat(43)),
            ),
            ("the API key instead", seed.business.key.clone()),
            ("truncated", token[..20].to_owned()),
            ("empty", String::new()),
        ];
        for (description, value) in &forged {
            let query = crate::partners::form::url_encoded(&[("token", value)]);
            let html = app
                .request(Method::Get, &format!("/embed/inbox?{query}"), &[], Vec::new())
                .await;
            assert_eq!(html.status, 401, "{description}");
            assert!(is_html(&html), "{description}: {:?}", html.headers);
            assert!(
                html.text().contains("This link is not valid"),
                "{description}: {}",
                html.text()
            );
            let policy = csp(&html);
            assert!(
                policy.contains("script-src") || policy.contains("default-src 'none'"),
                "{description}: {policy}"
            );
            assert_eq!(
                html.header("referrer-policy"),
                Some("no-referrer"),
                "{description}"
            );
            let page_text = html.text();
            let traced = page_text.contains("panicked")
                || page_text.contains("RuntimeError")
                || page_text
                    .lines()
                    .any(|line| line.find("at ").is_some_and(|at| line[at..].contains(".rs")));
            assert!(!traced, "{description}: no trace");
            assert_error(
                &timeline(&app, Some(value), "").await,
                401,
                "unauthorized",
                description,
            );
        }
        assert_eq!(
            app.request(Method::Get, "/embed/inbox", &[], Vec::new())
                .await
                .status,
            401,
            "no token at all"
        );
        assert_error(
            &timeline(&app, None, "").await,
            401,
            "unauthorized",
            "no Authorization header",
        );
        let with_key = app
            .request(
                Method::Get,
                "/embed/api/timeline",
                &[("x-api-key", &seed.business.key)],
                Vec::new(),
            )
            .await;
        assert_error(&with_key, 401, "unauthorized", "an API key is not a token");
    });
}

#[test]
fn a_revoked_token_stops_at_once_and_revoking_is_scoped_to_the_business_and_idempotent() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let (other, _) = other_business(&app).await;
        let by_token = seed.token(&app, json!({ "scope": "inbox:reply" })).await;
        let by_id = seed.token(&app, json!({})).await;
        let token = text(&by_token["token"]);
        timeline(&app, Some(token), "").await.expect(200);

        let revoke = |key: &str, body: Value| {
            let key = key.to_owned();
            let app = &app;
            async move {
                app.api(&key, Method::Post, "/api-sso-revoke-token", Some(body))
                    .await
            }
        };
        assert_error(
            &revoke(&other.key, json!({ "token": token })).await,
            404,
            "not_found",
            "another business's token",
        );
        assert_eq!(
            timeline(&app, Some(token), "").await.status,
            200,
            "still valid after the refused revoke"
        );

        let revoked = revoke(&seed.business.key, json!({ "token": token }))
            .await
            .expect(200)
            .json();
        assert_eq!(
            revoked,
            json!({ "revoked": true, "token_id": by_token["token_id"] })
        );
        revoke(&seed.business.key, json!({ "token": token }))
            .await
            .expect(200);

        let html = page(&app, text(&by_token["embed_url"])).await;
        assert_eq!(html.status, 403);
        assert!(html.text().contains("This link was revoked"), "{}", html.text());
        assert_error(
            &timeline(&app, Some(token), "").await,
            403,
            "forbidden",
            "timeline after revoke",
        );
        assert_error(
            &reply(&app, token, json!({ "channel": "whatsapp", "content": "late" })).await,
            403,
            "forbidden",
            "reply after revoke",
        );

        revoke(&seed.business.key, json!({ "token_id": by_id["token_id"] }))
            .await
            .expect(200);
        assert_eq!(page(&app, text(&by_id["embed_url"])).await.status, 403);

        let bad = [
            ("nothing named", json!({}), 422),
            (
                "both named",
                json!({ "token": by_id["token"], "token_id": by_id["token_id"] }),
                422,
            ),
            ("a token_id that is not one", json!({ "token_id": "abc" }), 422),
            ("an unknown token_id", json!({ "token_id": new_uuid() }), 404),
            (
                "a forged token",
                json!({ "token": format!("sso_{}", "B".repeat(43)) }),
                404,
            ),
        ];
        for (description, body, status) in bad {
            let code = if status == 404 {
                "not_found"
            } else {
                "validation_failed"
            };
            assert_error(&revoke(&seed.business.key, body).await, status, code, description);
        }
        assert_error(
            &app.json(
                Method::Post,
                "/api-sso-revoke-token",
                &[],
                Some(json!({ "token_id": by_id["token_id"] })),
            )
            .await,
            401,
            "unauthorized",
            "no key",
        );
    });
}

#[test]
fn a_token_stops_working_when_it_expires_and_the_page_says_it_expired() {
    test(|app| async move {
        let seed = seed_inbox(&app, &[]).await;
        let short_lived = seed
            .token(&app, json!({ "expires_in": 60, "scope": "inbox" }))
            .await;
        let token = text(&short_lived["token"]);
        let expiry = rfc3339_ms(text(&short_lived["expires_at"])).unwrap_or_default();
        let stored = crate::steps::store::select(
            &app,
            "SELECT expires_ms FROM sso_tokens WHERE id = ?1",
            &[text(&short_lived["token_id"])],
        );
        assert_eq!(
            stored
                .iter()
                .map(|row| row["expires_ms"].clone())
                .collect::<Vec<_>>(),
            [json!(expiry)],
            "stored with the expires_at it was issued with"
        );
        app.stack.advance(Duration::from_secs(59));
        timeline(&app, Some(token), "").await.expect(200);
        page(&app, text(&short_lived["embed_url"])).await.expect(200);

        // Its minute passes on the virtual clock.
        app.stack.advance(Duration::from_secs(2));
        let html = page(&app, text(&short_lived["embed_url"])).await;
        assert_eq!(html.status, 401);
        assert!(html.text().contains("This link has expired"), "{}", html.text());
        let error = assert_error(
            &timeline(&app, Some(token), "").await,
            401,
            "unauthorized",
            "timeline after expiry",
        );
        assert!(text(&error["message"]).contains("expired"), "{error}");
    });
}
