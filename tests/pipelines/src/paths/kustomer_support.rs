//! What the Kustomer paths share beyond the connector (`steps::crms::kustomer`): WhatsApp messages
//! received signed as Meta delivers them.

use crate::app::App;
use crate::partners::meta;
use crate::steps::unique_number;
use edge::runtime::Method;
use serde_json::{Value, json};

/// A WhatsApp number of a business, on Meta.
pub struct WhatsApp {
    pub address: String,
    pub app_secret: String,
    /// The path Meta is told to call.
    pub path: String,
}

/// A WhatsApp account (Meta) of the business, its Graph API at `api_base_url` when given.
pub async fn whatsapp_account(app: &App, business_id: &str, api_base_url: Option<&str>) -> WhatsApp {
    let address = format!("1{:015}", unique_number());
    let app_secret = format!("app-secret-{}", unique_number());
    let settings = match api_base_url {
        Some(base) => json!({ "api_base_url": base }),
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
                "secrets": { "app_secret": app_secret, "verify_token": "verify-me", "access_token": format!("access-{address}") }
            })),
        )
        .await
        .expect(201)
        .json();
    WhatsApp {
        path: account["webhook_path"].as_str().unwrap_or_default().to_owned(),
        address,
        app_secret,
    }
}

/// A text from `from` (E.164) delivered signed as Meta delivers it; asserts it was stored.
/// Meta's message id.
pub async fn receive_whatsapp(app: &App, account: &WhatsApp, from: &str, text: &str) -> String {
    let wamid = format!("wamid.m{}", unique_number());
    let digits = from.trim_start_matches('+');
    let notification = meta::whatsapp_text(&account.address, digits, "WhatsApp Sender", &wamid, text);
    deliver_whatsapp(app, account, &notification).await;
    wamid
}

/// An image with `caption` from `from`, its file at Meta as `media_id`; asserts it was stored.
pub async fn receive_whatsapp_image(
    app: &App,
    account: &WhatsApp,
    from: &str,
    caption: &str,
    media_id: &str,
) {
    let digits = from.trim_start_matches('+');
    let mut notification = meta::whatsapp_text(&account.address, digits, "WhatsApp Sender", "", caption);
    notification["entry"][0]["changes"][0]["value"]["messages"][0] = json!({
        "from": digits,
        "id": format!("wamid.m{}", unique_number()),
        "timestamp": "1700000000",
        "type": "image",
        "image": { "id": media_id, "mime_type": "image/png", "sha256": "x", "caption": caption }
    });
    deliver_whatsapp(app, account, &notification).await;
}

async fn deliver_whatsapp(app: &App, account: &WhatsApp, notification: &Value) {
    let body = serde_json::to_vec(notification).unwrap_or_default();
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
}
