//! Sending messages from the CRM (`POST /api-send-message`), end to end on the virtual clock: the
//! request is accepted with 202 and the message stored `queued`; the dispatcher, fed by the
//! queue, calls the channel's provider (the WhatsApp Cloud API, Messenger and Instagram's Send
//! API, Twilio and Mailgun, scripted to fail on request) and the message ends `sent` or `failed`,
//! as `/api-messages-since` shows. Retries wait for Retry-After or back off 2 s, 4 s, ...; the
//! 5th failed attempt fails the message with the provider's last reason. (The end-to-end suite's
//! `send-message.test.mjs`; `send_with_retries` is the first of these paths.)

use crate::app::{Answer, App, Business, ORIGIN, test};
use crate::partners::form::url_encoded;
use crate::partners::gaps;
use crate::partners::mailgun::{self, Mailgun};
use crate::partners::meta::{Graph, graph_error};
use crate::partners::twilio::{self, Twilio};
use crate::partners::{basic_credentials, form_fields, hmac_sha256};
use crate::steps::api::assert_error;
use crate::steps::channels::messages_of;
use crate::steps::customers::sync;
use crate::steps::text;
use crate::steps::{id_of, unique};
use edge::runtime::Method;
use edge::runtime::native::{Delay, Reply};
use futures_util::future::join;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough for every attempt of a send: 2 + 4 + 8 + 16 s of backoff, and a slow provider.
const SETTLE: Duration = Duration::from_secs(120);

/// One channel account of the business, as the admin API made it, with what it was given.
struct Account {
    id: String,
    address: String,
    webhook_path: String,
    app_secret: String,
    access_token: String,
    account_sid: String,
    auth_token: String,
    domain: String,
    api_key: String,
}

/// The business with an account on every channel, and the providers behind them.
struct Acme {
    business: Business,
    whatsapp: Account,
    facebook: Account,
    instagram: Account,
    sms: Account,
    email: Account,
    graph: Graph,
    twilio: Twilio,
    mailgun: Mailgun,
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

fn digits(seed: u64, count: usize) -> String {
    format!("{:0>count$}", seed % 10u64.pow(count as u32))
}

async fn meta_account(app: &App, business: &Business, channel: &str, seed: u64) -> Account {
    let address = digits(106_540_352_242_900 + seed, 15);
    let (app_secret, access_token) = (unique("app-secret"), format!("EAAG{}", unique("token")));
    let created = add_account(
        app,
        business,
        json!({
            "channel": channel,
            "provider": "meta",
            "address": address,
            "settings": {},
            "secrets": { "app_secret": app_secret, "verify_token": unique("verify"), "access_token": access_token }
        }),
    )
    .await;
    Account {
        id: id_of(&created),
        address,
        webhook_path: created["webhook_path"].as_str().unwrap_or_default().to_owned(),
        app_secret,
        access_token,
        account_sid: String::new(),
        auth_token: String::new(),
        domain: String::new(),
        api_key: String::new(),
    }
}

/// Acme (in Ireland) with WhatsApp, Messenger and Instagram through Meta, SMS through Twilio and
/// email through Mailgun, each at the provider's real API host.
async fn acme(app: &App) -> Acme {
    let business = app.business("Acme").await;
    let whatsapp = meta_account(app, &business, "whatsapp", 1).await;
    let facebook = meta_account(app, &business, "facebook", 2).await;
    let instagram = meta_account(app, &business, "instagram", 3).await;
    let (account_sid, auth_token) = ("AC0123456789abcdef0123456789abcdef", "twilio-auth-token");
    let sms = add_account(
        app,
        &business,
        json!({
            "channel": "sms",
            "provider": "twilio",
            "address": "+353861234567",
            "settings": { "account_sid": account_sid },
            "secrets": { "auth_token": auth_token }
        }),
    )
    .await;
    let (domain, api_key) = ("mg.acme.example.com", "key-mailgun-api-key");
    let email = add_account(
        app,
        &business,
        json!({
            "channel": "email",
            "provider": "mailgun",
            "address": format!("support@{domain}"),
            "settings": { "domain": domain },
            "secrets": { "signing_key": "mailgun-signing-key", "api_key": api_key }
        }),
    )
    .await;
    let plain = |created: &Value| Account {
        id: id_of(created),
        address: created["address"].as_str().unwrap_or_default().to_owned(),
        webhook_path: created["webhook_path"].as_str().unwrap_or_default().to_owned(),
        app_secret: String::new(),
        access_token: String::new(),
        account_sid: account_sid.to_owned(),
        auth_token: auth_token.to_owned(),
        domain: domain.to_owned(),
        api_key: api_key.to_owned(),
    };
    Acme {
        business,
        whatsapp,
        facebook,
        instagram,
        sms: plain(&sms),
        email: plain(&email),
        graph: Graph::install(&app.stack),
        twilio: Twilio::install(&app.stack, account_sid, auth_token),
        mailgun: Mailgun::install(&app.stack, domain, api_key),
    }
}

/// A customer of `business` synced with `fields` over the defaults; it and its id.
async fn new_customer(app: &App, business: &Business, phone: &str, fields: Value) -> Value {
    let tag = unique("send");
    let mut customer = json!({ "external_id": format!("CRM-{tag}"), "name": "John Doe", "email": format!("{tag}@example.com"), "phone": phone });
    if let (Some(customer), Some(fields)) = (customer.as_object_mut(), fields.as_object()) {
        customer.extend(fields.clone());
    }
    let result = sync(app, &business.key, json!([customer])).await;
    assert_eq!(result["results"]["details"][0]["action"], "created", "{result}");
    customer["id"] = result["results"]["details"][0]["customer_id"].clone();
    customer
}

/// A customer who has written to the page (Messenger) or the Instagram account: the inbound,
/// signed webhook creates them with their page-scoped id. Their customer id and that id.
async fn customer_who_wrote(app: &App, acme: &Acme, channel: &str, scoped_id: &str) -> (String, String) {
    let account = if channel == "facebook" {
        &acme.facebook
    } else {
        &acme.instagram
    };
    let now = app.stack.now_ms();
    let payload = json!({
        "object": if channel == "facebook" { "page" } else { "instagram" },
        "entry": [{
            "id": account.address,
            "time": now,
            "messaging": [{
                "sender": { "id": scoped_id },
                "recipient": { "id": account.address },
                "timestamp": now,
                "message": { "mid": format!("m_{}", unique("mid")), "text": format!("Hello from {scoped_id}") }
            }]
        }]
    });
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let signature = format!(
        "sha256={}",
        hex::encode(hmac_sha256(account.app_secret.as_bytes(), &body))
    );
    let answer = app
        .request(
            Method::Post,
            &format!("/webhooks/meta/{}", account.id),
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &signature),
            ],
            body,
        )
        .await;
    assert_eq!(answer.status, 200, "the {channel} webhook: {}", answer.text());
    let inbound = messages_of(app, &acme.business.key)
        .await
        .into_iter()
        .find(|m| m["content"] == format!("Hello from {scoped_id}"))
        .unwrap_or_else(|| panic!("the inbound {channel} message is stored"));
    (text(&inbound["customer_id"]).to_owned(), scoped_id.to_owned())
}

async fn send(app: &App, key: &str, body: Value) -> Answer {
    app.api(key, Method::Post, "/api-send-message", Some(body)).await
}

/// Accepts a send; the queued message.
async fn accepted(app: &App, key: &str, body: Value) -> Value {
    let answer = send(app, key, body.clone()).await.expect(202).json();
    assert_eq!(answer["success"], true);
    let message = answer["message"].clone();
    let id = text(&message["id"]);
    let uuid = id.len() == 36
        && id.char_indices().all(|(at, c)| {
            if [8, 13, 18, 23].contains(&at) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        });
    assert!(uuid, "the message id is a UUID: {id}");
    assert_eq!(message["status"], "queued");
    assert_eq!(message["direction"], "outbound");
    // A file sent without text is kept with empty content.
    let content = body.get("content").cloned().unwrap_or_else(|| json!(""));
    assert_eq!(message["content"], content);
    message
}

/// The message as polling shows it now.
async fn message_now(app: &App, key: &str, id: &Value) -> Value {
    messages_of(app, key)
        .await
        .into_iter()
        .find(|m| &m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} is not listed"))
}

/// Lets the dispatcher make every attempt due within [`SETTLE`]; the message then.
async fn settled(app: &App, key: &str, message: &Value) -> Value {
    app.settle_within(SETTLE).await;
    let now = message_now(app, key, &message["id"]).await;
    assert_ne!(now["status"], "queued", "still queued: {now}");
    now
}

fn bearer_of(account: &Account) -> String {
    format!("Bearer {}", account.access_token)
}

/// A small PDF uploaded for `business` as `filename`; the attachment.
async fn upload_pdf(app: &App, business: &Business, filename: &str, pdf: &[u8]) -> Value {
    let boundary = "native-upload-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(pdf);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    app.request(
        Method::Post,
        "/api-upload-attachment",
        &[("x-api-key", &business.key), ("content-type", &content_type)],
        body,
    )
    .await
    .expect(201)
    .json()["attachment"]
        .clone()
}

fn pdf_named(filename: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {filename}\n%%EOF\n").into_bytes()
}

#[test]
fn a_whatsapp_message_to_the_crm_external_id_is_sent_through_the_cloud_api_exactly_as_documented() {
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(
            &app,
            &acme.business,
            "+353871000001",
            json!({ "whatsapp_number": "+353871000002" }),
        )
        .await;
        let content = "Hi! Your order is ready for pickup.";
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["external_id"], "channel": "whatsapp", "content": content }),
        )
        .await;
        assert_eq!(message["customer_id"], customer["id"]);
        assert_eq!(message["channel"], "whatsapp");
        assert_eq!(message["platform"], "whatsapp");

        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        assert_eq!(done["conversation_id"], message["conversation_id"]);
        let calls = acme.graph.sends();
        assert_eq!(calls.len(), 1, "sent in one attempt");
        assert_eq!(
            calls[0].path(),
            format!("/v21.0/{}/messages", acme.whatsapp.address)
        );
        assert_eq!(
            calls[0].header("authorization"),
            Some(bearer_of(&acme.whatsapp).as_str()),
            "the bearer token is the account access token"
        );
        assert_eq!(calls[0].header("content-type"), Some("application/json"));
        assert_eq!(
            calls[0].json(),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "353871000002",
                "type": "text",
                "text": { "body": content }
            })
        );
    });
}

#[test]
fn an_sms_the_provider_refuses_as_an_invalid_number_fails_at_once_with_twilios_reason() {
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(&app, &acme.business, "+353871000003", json!({})).await;
        acme.twilio.answer_next([twilio::invalid_number("+353871000003")]);
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "phone": "0871000003", "channel": "sms", "content": "Your code is 1234" }),
        )
        .await;
        assert_eq!(
            message["customer_id"], customer["id"],
            "a national number finds the customer by the default country"
        );
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "failed", "{done}");
        let reason = text(&done["status_reason"]);
        assert!(reason.contains("21211"), "{reason}");
        assert!(
            reason.contains("Invalid 'To' Phone Number: +353871000003"),
            "{reason}"
        );
        let calls = acme.twilio.sends();
        assert_eq!(calls.len(), 1, "a rejection is not retried");
        assert_eq!(
            basic_credentials(&calls[0]),
            Some((acme.sms.account_sid.clone(), acme.sms.auth_token.clone())),
            "HTTP Basic with the account SID and auth token"
        );
        assert_eq!(
            calls[0].path(),
            format!("/2010-04-01/Accounts/{}/Messages.json", acme.sms.account_sid)
        );
        let mut fields = form_fields(&calls[0]);
        fields.sort();
        assert_eq!(
            fields,
            [
                ("Body".to_owned(), "Your code is 1234".to_owned()),
                ("From".to_owned(), acme.sms.address.clone()),
                ("To".to_owned(), "+353871000003".to_owned()),
            ]
        );
    });
}

#[test]
fn an_email_rate_limited_with_retry_after_1_is_sent_on_the_next_attempt() {
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(&app, &acme.business, "+353871000004", json!({})).await;
        let email = text(&customer["email"]).to_owned();
        acme.mailgun.answer_next([mailgun::rate_limited()]);
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "email": email.to_uppercase(), "channel": "email", "subject": "Your order", "content": "Hi John,\nyour order is ready." }),
        )
        .await;
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        assert!(
            done.get("status_reason").is_none(),
            "a sent message carries no reason: {done}"
        );
        let calls = acme.mailgun.sends();
        assert_eq!(calls.len(), 2);
        assert!(
            calls
                .iter()
                .all(|call| basic_credentials(call) == Some(("api".to_owned(), acme.email.api_key.clone()))),
            "HTTP Basic api:<key>"
        );
        assert_eq!(calls[0].path(), format!("/v3/{}/messages", acme.email.domain));
        assert!(
            calls[1]
                .header("content-type")
                .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded")),
            "a form without files"
        );
        let mut fields = form_fields(&calls[1]);
        fields.sort();
        assert_eq!(
            fields,
            [
                ("from".to_owned(), acme.email.address.clone()),
                ("subject".to_owned(), "Your order".to_owned()),
                ("text".to_owned(), "Hi John,\nyour order is ready.".to_owned()),
                ("to".to_owned(), email.clone()),
            ]
        );
        let gap = gaps(&calls)[0];
        assert!(gap >= 1_000, "the retry waited for Retry-After ({gap} ms)");
    });
}

#[test]
fn a_messenger_message_that_meets_two_500s_is_sent_on_the_third_attempt_backing_off_2_s_then_4_s() {
    test(|app| async move {
        let acme = acme(&app).await;
        let (customer_id, scoped_id) = customer_who_wrote(&app, &acme, "facebook", "2400000000000001").await;
        let unexpected = "An unexpected error has occurred. Please retry your request later.";
        acme.graph
            .answer_next([graph_error(500, 2, unexpected), graph_error(500, 2, unexpected)]);
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer_id, "channel": "facebook", "content": "Thanks for writing!" }),
        )
        .await;
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        let calls = acme.graph.sends();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[0].path(),
            format!("/v21.0/{}/messages", acme.facebook.address)
        );
        assert_eq!(
            calls[0].header("authorization"),
            Some(bearer_of(&acme.facebook).as_str())
        );
        assert_eq!(
            calls[2].json(),
            json!({ "recipient": { "id": scoped_id }, "messaging_type": "RESPONSE", "message": { "text": "Thanks for writing!" } })
        );
        let waits = gaps(&calls);
        assert!(waits[0] >= 2_000, "first backoff is 2 s ({} ms)", waits[0]);
        assert!(waits[1] >= 4_000, "second backoff is 4 s ({} ms)", waits[1]);
    });
}

#[test]
fn an_instagram_message_the_provider_always_fails_with_500_ends_failed_after_5_attempts() {
    test(|app| async move {
        let acme = acme(&app).await;
        let (customer_id, _) = customer_who_wrote(&app, &acme, "instagram", "1780000000000001").await;
        acme.graph.answer_next((0..10).map(|_| {
            graph_error(
                500,
                2,
                "An unexpected error has occurred. Please retry your request later.",
            )
            .header("retry-after", "1")
        }));
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer_id, "channel": "instagram", "content": "Hello?" }),
        )
        .await;
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "failed", "{done}");
        let reason = text(&done["status_reason"]);
        for part in [
            "gave up after 5 attempts",
            "HTTP 500",
            "An unexpected error has occurred",
        ] {
            assert!(reason.contains(part), "the reason says {part}: {reason}");
        }
        assert_eq!(acme.graph.sends().len(), 5, "exactly five attempts");
        assert_eq!(
            acme.graph.sends()[0].path(),
            format!("/v21.0/{}/messages", acme.instagram.address)
        );
    });
}

#[test]
fn a_provider_slower_than_the_timeout_is_abandoned_and_the_message_is_sent_on_the_retry() {
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(&app, &acme.business, "+353871000005", json!({})).await;
        // Longer than the dispatcher's 10 s.
        acme.graph.answer_next([Reply::json(
            200,
            &json!({ "messaging_product": "whatsapp", "messages": [{ "id": "wamid.late" }] }),
        )
        .after(Duration::from_secs(12))]);
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["id"], "channel": "whatsapp", "content": "Are you there?" }),
        )
        .await;
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        let calls = acme.graph.sends();
        assert_eq!(calls.len(), 2);
        let gap = gaps(&calls)[0];
        assert!(
            (10_000..17_000).contains(&gap),
            "the first call was given up after 10 s ({gap} ms)"
        );
    });
}

#[test]
fn an_uploaded_attachment_goes_to_whatsapp_as_a_signed_link_the_provider_can_fetch() {
    test(|app| async move {
        let acme = acme(&app).await;
        let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
        let attachment = upload_pdf(&app, &acme.business, "receipt.pdf", &pdf).await;
        let customer = new_customer(&app, &acme.business, "+353871000006", json!({})).await;
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["external_id"], "channel": "whatsapp", "content": "Your receipt", "attachments": [attachment["file_url"]] }),
        )
        .await;
        assert_eq!(
            message["attachments"][0]["id"], attachment["id"],
            "the attachment is linked to the message"
        );
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        let call = acme.graph.sends()[0].json();
        assert_eq!(call["type"], "document");
        assert_eq!(call["document"]["caption"], "Your receipt");
        assert_eq!(call["document"]["filename"], "receipt.pdf");
        let link = text(&call["document"]["link"]);
        let path = link
            .strip_prefix(ORIGIN)
            .unwrap_or_else(|| panic!("a link of the deployment: {link}"));
        assert!(path.starts_with("/api/download-media?"), "{link}");
        let query: Vec<(String, String)> = url::form_urlencoded::parse(
            path.split_once('?')
                .map(|(_, q)| q)
                .unwrap_or_default()
                .as_bytes(),
        )
        .into_owned()
        .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(param("id").as_deref(), attachment["id"].as_str());
        assert!(
            param("signature").is_some_and(|s| !s.is_empty()),
            "the link is signed"
        );
        let fetched = app.request(Method::Get, path, &[], Vec::new()).await;
        assert_eq!(
            fetched.status, 200,
            "the provider can fetch the file without an API key"
        );
        assert_eq!(fetched.body, pdf);

        let again = send(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["id"], "channel": "whatsapp", "content": "again", "attachments": [attachment["id"]] }),
        )
        .await;
        let error = assert_error(&again, 422, "validation_failed", "an attachment already sent");
        assert_eq!(error["field"], "attachments[0]");
    });
}

#[test]
fn a_file_goes_without_text_as_the_file_alone_and_is_kept_with_empty_content() {
    test(|app| async move {
        let acme = acme(&app).await;
        let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
        let attachment = upload_pdf(&app, &acme.business, "invoice.pdf", &pdf).await;
        let customer = new_customer(&app, &acme.business, "+353871000016", json!({})).await;
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["id"], "channel": "whatsapp", "attachments": [attachment["file_url"]] }),
        )
        .await;
        assert_eq!(message["content"], "", "{message}");
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        let sends = acme.graph.sends();
        assert_eq!(sends.len(), 1, "one message: the file, no empty text");
        let call = sends[0].json();
        assert_eq!(call["type"], "document", "{call}");
        assert_eq!(call["document"]["filename"], "invoice.pdf");
        assert!(
            call["document"].get("caption").is_none(),
            "no empty caption: {call}"
        );

        let nothing = send(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["id"], "channel": "whatsapp", "content": " ", "attachments": [] }),
        )
        .await;
        let error = assert_error(&nothing, 422, "validation_failed", "neither text nor a file");
        assert_eq!(error["field"], "content");
    });
}

#[test]
fn a_customer_that_does_not_exist_is_404() {
    test(|app| async move {
        let acme = acme(&app).await;
        for customer_id in ["CRM-missing", "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f"] {
            let answer = send(
                &app,
                &acme.business.key,
                json!({ "customer_id": customer_id, "channel": "whatsapp", "content": "hi" }),
            )
            .await;
            assert_error(&answer, 404, "not_found", customer_id);
        }
    });
}

#[test]
fn a_customer_that_does_not_exist_is_404_on_a_channel_the_business_has_no_account_on_too() {
    test(|app| async move {
        let bare = app.business("Bare").await;
        // The customer and the sending account are read at once: the customer's answer comes
        // first.
        for at in 0..5 {
            let customer_id = format!("CRM-missing-{at}");
            let answer = send(
                &app,
                &bare.key,
                json!({ "customer_id": customer_id, "channel": "whatsapp", "content": "hi" }),
            )
            .await;
            assert_error(&answer, 404, "not_found", &customer_id);
        }
    });
}

#[test]
fn another_businesss_customer_is_404_by_our_id_and_by_the_crms() {
    test(|app| async move {
        let acme = acme(&app).await;
        let bare = app.business("Bare").await;
        let theirs = new_customer(&app, &acme.business, "+353871000007", json!({})).await;
        for customer_id in [&theirs["id"], &theirs["external_id"]] {
            let answer = send(
                &app,
                &bare.key,
                json!({ "customer_id": customer_id, "channel": "sms", "content": "hi" }),
            )
            .await;
            assert_error(&answer, 404, "not_found", text(customer_id));
        }
    });
}

#[test]
fn bad_requests_are_422_naming_the_field_and_store_nothing() {
    test(|app| async move {
        let bare = app.business("Bare").await;
        let customer = new_customer(&app, &bare, "+353871000008", json!({})).await;
        let id = &customer["id"];
        let cases = [
            (
                json!({ "customer_id": id, "channel": "telegram", "content": "hi" }),
                "channel",
                "an unknown channel",
            ),
            (
                json!({ "customer_id": id, "content": "hi" }),
                "channel",
                "no channel",
            ),
            (
                json!({ "customer_id": id, "channel": "sms" }),
                "content",
                "no content",
            ),
            (
                json!({ "customer_id": id, "channel": "sms", "content": "   " }),
                "content",
                "blank content",
            ),
            (
                json!({ "customer_id": id, "channel": "sms", "content": "x".repeat(1601) }),
                "content",
                "longer than an SMS",
            ),
            (
                json!({ "channel": "sms", "content": "hi" }),
                "customer_id",
                "no customer",
            ),
            (
                json!({ "customer_id": id, "channel": "whatsapp", "content": "hi" }),
                "channel",
                "no account on the channel",
            ),
            (
                json!({ "customer_id": id, "channel": "sms", "content": "hi", "attachments": ["receipt.pdf"] }),
                "attachments[0]",
                "not an attachment",
            ),
        ];
        for (body, field, description) in cases {
            let error = assert_error(
                &send(&app, &bare.key, body).await,
                422,
                "validation_failed",
                description,
            );
            assert_eq!(error["field"], field, "{description}");
        }
        let no_account = send(
            &app,
            &bare.key,
            json!({ "customer_id": id, "channel": "whatsapp", "content": "hi" }),
        )
        .await
        .json();
        assert!(
            text(&no_account["error"]["message"]).contains("no whatsapp account"),
            "{no_account}"
        );
        assert_eq!(
            messages_of(&app, &bare.key).await,
            Vec::<Value>::new(),
            "nothing was stored"
        );
    });
}

#[test]
fn an_attachment_this_business_never_uploaded_is_422() {
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(&app, &acme.business, "+353871000009", json!({})).await;
        let answer = send(
            &app,
            &acme.business.key,
            json!({
                "customer_id": customer["id"],
                "channel": "sms",
                "content": "hi",
                "attachments": [format!("{ORIGIN}/api/download-media?id=8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f")]
            }),
        )
        .await;
        let error = assert_error(&answer, 422, "validation_failed", "an attachment of nobody's");
        assert_eq!(error["field"], "attachments[0]");
    });
}

#[test]
fn messenger_and_instagram_need_the_customer_to_have_written_first() {
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(&app, &acme.business, "+353871000010", json!({})).await;
        for channel in ["facebook", "instagram"] {
            let answer = send(
                &app,
                &acme.business.key,
                json!({ "customer_id": customer["id"], "channel": channel, "content": "hi" }),
            )
            .await;
            let error = assert_error(&answer, 422, "validation_failed", channel);
            assert!(
                text(&error["message"]).contains("messaged its page first"),
                "{channel}: {error}"
            );
        }
    });
}

#[test]
fn the_endpoint_needs_an_api_key_and_a_post() {
    test(|app| async move {
        let acme = acme(&app).await;
        assert_error(
            &app.json(
                Method::Post,
                "/api-send-message",
                &[],
                Some(json!({ "customer_id": "x", "channel": "sms", "content": "hi" })),
            )
            .await,
            401,
            "unauthorized",
            "no API key",
        );
        assert_error(
            &app.api(&acme.business.key, Method::Get, "/api-send-message", None)
                .await,
            405,
            "method_not_allowed",
            "a GET",
        );
    });
}

#[test]
fn a_multi_part_send_retried_after_its_second_part_failed_sends_only_the_parts_not_yet_accepted() {
    test(|app| async move {
        let acme = acme(&app).await;
        let first = upload_pdf(&app, &acme.business, "first.pdf", &pdf_named("first.pdf")).await;
        // A message's files go in the order they were uploaded (not the order the send names
        // them), by the millisecond: uploaded in the same one, they would go in their ids' order.
        app.stack.advance(Duration::from_secs(1));
        let second = upload_pdf(&app, &acme.business, "second.pdf", &pdf_named("second.pdf")).await;
        let customer = new_customer(&app, &acme.business, "+353871000011", json!({})).await;
        acme.graph.answer_next([
            Reply::json(
                200,
                &json!({ "messaging_product": "whatsapp", "messages": [{ "id": "wamid.first" }] }),
            ),
            graph_error(
                500,
                2,
                "An unexpected error has occurred. Please retry your request later.",
            )
            .header("retry-after", "1"),
        ]);
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["id"], "channel": "whatsapp", "content": "Your documents", "attachments": [first["id"], second["id"]] }),
        )
        .await;
        let done = settled(&app, &acme.business.key, &message).await;
        assert_eq!(done["status"], "sent", "{done}");
        let filenames: Vec<Value> = acme
            .graph
            .sends()
            .iter()
            .map(|call| call.json()["document"]["filename"].clone())
            .collect();
        assert_eq!(
            filenames,
            [json!("first.pdf"), json!("second.pdf"), json!("second.pdf")],
            "the accepted first part was not sent again; the failed second part was"
        );
    });
}

#[test]
fn a_status_callback_that_overtakes_the_answer_to_the_send_is_kept_and_applied_when_the_sends_id_is_recorded()
{
    test(|app| async move {
        let acme = acme(&app).await;
        let customer = new_customer(&app, &acme.business, "+353871000012", json!({})).await;
        let sid = "SM0123456789abcdef0123456789abcdef";
        // Twilio's answer to the send takes a second to come back.
        let answer = Reply::json(
            201,
            &json!({ "sid": sid, "to": "+353871000012", "from": acme.sms.address, "status": "queued" }),
        )
        .after(Duration::from_secs(1));
        acme.twilio.answer_next([answer]);
        let message = accepted(
            &app,
            &acme.business.key,
            json!({ "customer_id": customer["id"], "channel": "sms", "content": "Fast network" }),
        )
        .await;
        // Meanwhile Twilio reports the message delivered: its callback reaches us before the
        // answer to the send does.
        let callback = async {
            while acme.twilio.sends().is_empty() {
                Delay::from(Duration::from_millis(10)).await;
            }
            let params = [
                ("MessageSid", sid),
                ("SmsSid", sid),
                ("MessageStatus", "delivered"),
                ("SmsStatus", "delivered"),
                ("AccountSid", acme.sms.account_sid.as_str()),
                ("From", acme.sms.address.as_str()),
                ("To", "+353871000012"),
            ];
            let path = &acme.sms.webhook_path;
            let signature = twilio::signature(&acme.sms.auth_token, &format!("{ORIGIN}{path}"), &params);
            app.request(
                Method::Post,
                path,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("x-twilio-signature", &signature),
                ],
                url_encoded(&params).into_bytes(),
            )
            .await
            .status
        };
        let (_, callback_status) = join(app.settle_within(SETTLE), callback).await;
        assert_eq!(callback_status, 200, "the early callback was accepted");
        let done = message_now(&app, &acme.business.key, &message["id"]).await;
        assert_eq!(done["status"], "delivered", "{done}");
    });
}
