//! What the paths of inbound messages share: a business's channel account made through the admin
//! API (a Meta one, with the secrets Meta signs and checks with), posting to its webhook as a
//! provider does, and reading back what was stored through the API (messages, downloads).

use crate::app::{Answer, App, Business, ORIGIN};
use crate::partners::{meta as meta_partner, unique_hex};
use crate::steps::channels::messages_with_attachments;
use edge::runtime::Method;
use serde_json::{Value, json};

/// A business's channel account, made by the operator: the account as the API answered it.
pub async fn channel_account(app: &App, business_id: &str, account: Value) -> Value {
    let created = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{business_id}/channel-accounts"),
            Some(account),
        )
        .await
        .expect(201)
        .json();
    assert!(
        created["webhook_path"].is_string(),
        "the account names its webhook path: {created}"
    );
    created
}

/// A business with one Meta account on `channel`, and what Meta knows of it.
pub struct MetaSetup {
    pub business: Business,
    pub address: String,
    pub path: String,
    pub app_secret: String,
    pub verify_token: String,
    pub access_token: String,
}

pub async fn meta_account(app: &App, channel: &str) -> MetaSetup {
    let business = app.business("Meta customer").await;
    let address = meta_partner::numeric_id();
    let (app_secret, verify_token, access_token) = (
        format!("app-secret-{}", unique_hex(8)),
        format!("verify-{}", unique_hex(8)),
        format!("access-{}", unique_hex(8)),
    );
    let account = channel_account(
        app,
        &business.id,
        json!({
            "channel": channel,
            "provider": "meta",
            "address": address,
            "settings": {},
            "secrets": { "app_secret": app_secret, "verify_token": verify_token, "access_token": access_token }
        }),
    )
    .await;
    MetaSetup {
        business,
        address,
        path: account["webhook_path"].as_str().unwrap_or_default().to_owned(),
        app_secret,
        verify_token,
        access_token,
    }
}

/// Meta's POST of `body` with `signature` as its `X-Hub-Signature-256` (none when `None`).
pub async fn post_meta(app: &App, setup: &MetaSetup, body: &[u8], signature: Option<&str>) -> Answer {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(signature) = signature {
        headers.push(("x-hub-signature-256", signature));
    }
    post(app, &setup.path, &headers, body.to_vec()).await
}

/// Meta's POST of `notification`, signed with the app secret.
pub async fn deliver_meta(app: &App, setup: &MetaSetup, notification: &Value) -> Answer {
    let body = serde_json::to_vec(notification).unwrap_or_default();
    let signature = meta_partner::signature(&setup.app_secret, &body);
    post_meta(app, setup, &body, Some(&signature)).await
}

/// A POST as a provider's HTTP client sends it: its length declared.
pub async fn post(app: &App, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let length = body.len().to_string();
    let mut headers = headers.to_vec();
    headers.push(("content-length", &length));
    app.request(Method::Post, path, &headers, body).await
}

/// The first attachment of the message whose text is `content`.
pub async fn attachment_of(app: &App, key: &str, content: &str) -> Value {
    let messages = messages_with_attachments(app, key).await;
    let message = messages
        .iter()
        .find(|message| message["content"] == content)
        .unwrap_or_else(|| panic!("no message {content:?} among {messages:?}"));
    message["attachments"][0].clone()
}

/// A download link the API gave (under the deployment's public origin), followed with `key`.
pub async fn download(app: &App, url: &str, key: Option<&str>) -> Answer {
    let path = url
        .strip_prefix(ORIGIN)
        .unwrap_or_else(|| panic!("{url} is not under the public origin {ORIGIN}"));
    let headers: Vec<(&str, &str)> = key.map(|key| ("x-api-key", key)).into_iter().collect();
    app.request(Method::Get, path, &headers, Vec::new()).await
}
