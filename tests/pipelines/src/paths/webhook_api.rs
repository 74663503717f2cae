//! The inbound WhatsApp messages whose changes make webhook events, and a business's messages as
//! polling lists them.

use crate::app::{App, Business};
use crate::partners::meta;
use crate::steps::{id_of, unique, unique_number};
use edge::runtime::Method;
use serde_json::{Value, json};

/// Every message of a business.
pub async fn messages_of(app: &App, key: &str) -> Vec<Value> {
    let page = app
        .api(
            key,
            Method::Get,
            "/api-messages-since?since=1970-01-01T00:00:00Z&limit=500",
            None,
        )
        .await
        .expect(200)
        .json();
    page["messages"].as_array().cloned().unwrap_or_default()
}

/// A WhatsApp (Meta) account of a business, as Meta is told to call it.
pub struct WhatsappAccount {
    pub id: String,
    pub address: String,
    pub app_secret: String,
    pub path: String,
}

/// A WhatsApp number of `business`, its Graph API at `api_base_url` when given.
pub async fn whatsapp_account(app: &App, business: &Business, api_base_url: Option<&str>) -> WhatsappAccount {
    let address = format!("1{:015}", 106_540_352_242_922u64 + unique_number());
    let app_secret = unique("app-secret");
    let settings = match api_base_url {
        Some(url) => json!({ "api_base_url": url }),
        None => json!({}),
    };
    let account = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", business.id),
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
    WhatsappAccount {
        id: id_of(&account),
        address,
        app_secret,
        path: account["webhook_path"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Meta posts one signed WhatsApp notification from `from` (E.164): a text, or an image with
/// `text` as its caption when `media_id` is given. Checks it was stored; the provider's id.
pub async fn receive_whatsapp(
    app: &App,
    account: &WhatsappAccount,
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
