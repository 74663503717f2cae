//! What the Kustomer paths share: a business connected to its own Kustomer organization through
//! the admin API (as an operator connects one), the connector's sync log and status as the admin
//! API shows them, and WhatsApp messages received signed as Meta delivers them.

use crate::app::{App, Business};
use crate::partners::kustomer::Kustomer;
use crate::partners::meta;
use crate::steps::unique_number;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Long enough for any retry the sync makes (backoff is capped at five minutes), in virtual
/// time.
pub const SETTLE_HORIZON: Duration = Duration::from_secs(3600);

/// A business connected to a Kustomer organization of its own.
pub struct Connected {
    pub business: Business,
    /// The connector as the admin API showed it when it was made.
    pub connector: Value,
    pub kustomer: Kustomer,
    /// The organization's key the connector holds.
    pub api_key: String,
}

impl Connected {
    pub fn id(&self) -> &str {
        self.connector["id"].as_str().unwrap_or_default()
    }

    /// Where Kustomer's webhooks for this connector go.
    pub fn webhook_path(&self) -> &str {
        self.connector["webhook_path"].as_str().unwrap_or_default()
    }
}

/// A new business (in Ireland) connected to a new Kustomer organization; `fields` add to the
/// connector's `settings` and `secrets` and replace anything else of its body (its budget is off
/// unless `rate_limit` is given).
pub async fn connected_business(app: &App, fields: Value) -> Connected {
    let business = app.business("Acme").await;
    let subdomain = format!("org{}", unique_number());
    let api_key = format!("ey{subdomain}key");
    let kustomer = Kustomer::install(&app.stack, &subdomain, &api_key);
    let connector = connect(app, &business, &subdomain, &api_key, fields).await;
    Connected {
        business,
        connector,
        kustomer,
        api_key,
    }
}

/// Connects `business` to the Kustomer at `subdomain` with `api_key`; the admin API's connector.
pub async fn connect(app: &App, business: &Business, subdomain: &str, api_key: &str, fields: Value) -> Value {
    let mut body = json!({
        "kind": "kustomer",
        "settings": { "subdomain": subdomain },
        "secrets": { "api_key": api_key },
        "rate_limit": { "per_minute": null, "per_second": null, "per_day": null }
    });
    for (key, value) in fields.as_object().into_iter().flatten() {
        match (key.as_str(), value.as_object()) {
            ("settings" | "secrets", Some(given)) => {
                for (name, item) in given {
                    body[key][name] = item.clone();
                }
            }
            _ => body[key] = value.clone(),
        }
    }
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/connectors", business.id),
        Some(body),
    )
    .await
    .expect(201)
    .json()
}

/// The connector's sync log, newest first, filtered by `query` (`status=failed`, `record=…`).
pub async fn sync_log(app: &App, connector_id: &str, query: &str) -> Vec<Value> {
    let and = if query.is_empty() { "" } else { "&" };
    let log = app
        .admin(
            Method::Get,
            &format!("/admin/connectors/{connector_id}/sync-log?limit=100{and}{query}"),
            None,
        )
        .await
        .expect(200)
        .json();
    log["entries"].as_array().cloned().unwrap_or_default()
}

/// The connector as the admin API shows it, with its status.
pub async fn connector_of(app: &App, connector_id: &str) -> Value {
    app.admin(Method::Get, &format!("/admin/connectors/{connector_id}"), None)
        .await
        .expect(200)
        .json()
}

/// The sync log once every queued piece of work is done (time passing for retries, up to
/// [`SETTLE_HORIZON`]): at least `count` entries, none pending.
pub async fn settled_log(app: &App, connector_id: &str, count: usize) -> Vec<Value> {
    app.settle_within(SETTLE_HORIZON).await;
    let log = sync_log(app, connector_id, "").await;
    assert!(log.len() >= count, "{count} entries: {log:#?}");
    assert!(
        log.iter().all(|entry| entry["status"] != "pending"),
        "nothing pending: {log:#?}"
    );
    log
}

/// The first entry of `operation` in a log.
pub fn entry<'l>(log: &'l [Value], operation: &str) -> &'l Value {
    log.iter()
        .find(|entry| entry["operation"] == operation)
        .unwrap_or_else(|| panic!("no {operation} in {log:#?}"))
}

/// `(operation, status)` of each entry.
pub fn steps(log: &[Value]) -> Vec<(String, String)> {
    log.iter()
        .map(|entry| {
            (
                entry["operation"].as_str().unwrap_or_default().to_owned(),
                entry["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

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
