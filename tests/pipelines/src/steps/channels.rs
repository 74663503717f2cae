//! A business's WhatsApp number on Meta, made by the operator through the admin API, the texts and
//! images Meta delivers to it (signed with the app secret by the partner code, never by the
//! product's), and a business's messages as polling lists them.

use super::{id_of, text, unique, unique_number};
use crate::app::App;
use crate::partners::mailgun::Mailgun;
use crate::partners::{meta, unique_hex};
use edge::runtime::Method;
use serde_json::{Value, json};

/// A WhatsApp number of a business, on Meta.
pub struct WhatsApp {
    pub id: String,
    pub address: String,
    pub app_secret: String,
    /// The path Meta is told to call.
    pub path: String,
}

/// A WhatsApp number of the business, its Graph API at `api_base_url` when given.
pub async fn whatsapp_account(app: &App, business_id: &str, api_base_url: Option<&str>) -> WhatsApp {
    let address = format!("1{:015}", unique_number());
    let app_secret = unique("app-secret");
    let settings = match api_base_url {
        Some(url) => json!({ "api_base_url": url }),
        None => json!({}),
    };
    let account = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{business_id}/channel-accounts"),
            Some(json!({
                "channel": "whatsapp",
                "provider": "meta",
                "address": address,
                "settings": settings,
                "secrets": { "app_secret": app_secret, "verify_token": unique("verify"), "access_token": unique("access") }
            })),
        )
        .await
        .expect(201)
        .json();
    WhatsApp {
        id: id_of(&account),
        path: text(&account["webhook_path"]).to_owned(),
        address,
        app_secret,
    }
}

/// An email account of the business on Mailgun, sending from `support@{domain}` with `api_key`,
/// and Mailgun's Messages API knowing that domain.
pub async fn mailgun_account(app: &App, business_id: &str, domain: &str, api_key: &str) -> Mailgun {
    let mailgun = Mailgun::install(&app.stack, domain, api_key);
    mailgun_account_of(app, business_id, domain, api_key).await;
    mailgun
}

/// An email account of the business on Mailgun as [`mailgun_account`] adds it, on the Mailgun a
/// test installed already (which must know `domain`).
pub async fn mailgun_account_of(app: &App, business_id: &str, domain: &str, api_key: &str) {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{business_id}/channel-accounts"),
        Some(json!({
            "channel": "email",
            "provider": "mailgun",
            "address": format!("support@{domain}"),
            "settings": { "domain": domain },
            "secrets": { "signing_key": unique_hex(32), "api_key": api_key }
        })),
    )
    .await
    .expect(201);
}

/// A text from `from` (E.164) by "WhatsApp Sender"; checks it was stored. Meta's message id.
pub async fn receive_whatsapp(app: &App, account: &WhatsApp, from: &str, text: &str) -> String {
    receive_whatsapp_from(app, account, from, "WhatsApp Sender", text, None).await
}

/// An image with `caption` from `from`, its file at Meta as `media_id`; checks it was stored.
pub async fn receive_whatsapp_image(
    app: &App,
    account: &WhatsApp,
    from: &str,
    caption: &str,
    media_id: &str,
) {
    receive_whatsapp_from(app, account, from, "WhatsApp Sender", caption, Some(media_id)).await;
}

/// Meta posts one signed WhatsApp notification from `from` (E.164), whose profile is `name`: a
/// text, or an image with `text` as its caption when `media_id` is given. Checks it was stored;
/// Meta's message id.
pub async fn receive_whatsapp_from(
    app: &App,
    account: &WhatsApp,
    from: &str,
    name: &str,
    text: &str,
    media_id: Option<&str>,
) -> String {
    let wamid = format!("wamid.{}", unique("m"));
    let wa_id = from.trim_start_matches('+');
    let mut notification = meta::whatsapp_text(&account.address, wa_id, name, &wamid, text);
    if let Some(media_id) = media_id {
        notification["entry"][0]["changes"][0]["value"]["messages"][0] = json!({
            "from": wa_id, "id": wamid, "timestamp": "1700000000", "type": "image",
            "image": { "id": media_id, "mime_type": "image/png", "sha256": "x", "caption": text }
        });
    }
    let body = serde_json::to_vec(&notification).unwrap_or_default();
    let signature = meta::signature(&account.app_secret, &body);
    let stored = app
        .request(
            Method::Post,
            &account.path,
            &[
                ("content-type", "application/json"),
                ("x-hub-signature-256", &signature),
            ],
            body,
        )
        .await
        .expect(200)
        .json();
    assert_eq!(stored["stored"], 1, "the message is stored: {stored}");
    wamid
}

/// Every message of a business, oldest first.
pub async fn messages_of(app: &App, key: &str) -> Vec<Value> {
    messages_listed(app, key, "").await
}

/// Every message of a business, oldest first, with its attachments.
pub async fn messages_with_attachments(app: &App, key: &str) -> Vec<Value> {
    messages_listed(app, key, "&include_attachments=true").await
}

async fn messages_listed(app: &App, key: &str, query: &str) -> Vec<Value> {
    let path = format!("/api-messages-since?since=1970-01-01T00:00:00Z&limit=500{query}");
    let listed = app.api(key, Method::Get, &path, None).await.expect(200).json();
    listed["messages"].as_array().cloned().unwrap_or_default()
}
