//! The Krayin connector's paths, ported from `tests/e2e/crm/krayin-*.test.mjs`, and what they
//! share: a business connected to its own Krayin through the admin API (as `connectKrayin` in
//! `tests/e2e/crm/connectors.mjs` connects it), Chatwoot's signed deliveries to the connector's
//! webhook path, and the sync log and the connector's status as the admin API shows them.

mod chatwoot;
mod events;
mod outage;

use crate::app::{Answer, App, Business};
use crate::partners::chatwoot::Delivery;
use crate::partners::krayin::Krayin;
use crate::steps::crms::{connector_of, done_log, no_budget, sync_log};
use crate::steps::unique_number;
use edge::runtime::Method;
use serde_json::{Value, json};

/// A Chatwoot id (contacts, messages), per installation.
pub fn chatwoot_id() -> u64 {
    1_000 + unique_number()
}

/// How the connector is made: `settings` and `secrets` add to or replace the defaults (every sync
/// option on, the local Krayin's address and token, a Chatwoot webhook secret), `rate_limit` is
/// the body's (None: the kind's default), `webhook_secret` None connects without one.
pub struct Connect {
    pub settings: Value,
    pub rate_limit: Option<Value>,
    pub webhook_secret: Option<String>,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            settings: json!({}),
            rate_limit: Some(no_budget()),
            webhook_secret: Some(format!("chatwoot-secret-{}", unique_number())),
        }
    }
}

impl Connect {
    pub fn settings(settings: Value) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }
}

/// A business connected to its own Krayin.
pub struct Setup {
    pub business: Business,
    /// The connector as the admin API answered its creation.
    pub connector: Value,
    pub krayin: Krayin,
    pub webhook_secret: Option<String>,
}

/// The admin API's body for a Krayin connector at `krayin`, with `connect`'s changes.
pub fn connector_body(krayin: &Krayin, connect: &Connect) -> Value {
    let mut settings = json!({
        "base_url": krayin.origin(),
        "sync_conversations": true, "sync_messages": true, "sync_organizations": true,
    });
    if let (Some(settings), Some(given)) = (settings.as_object_mut(), connect.settings.as_object()) {
        settings.extend(given.clone());
    }
    let mut secrets = json!({ "api_token": krayin.token() });
    if let Some(secret) = &connect.webhook_secret {
        secrets["webhook_secret"] = json!(secret);
    }
    let mut body = json!({ "kind": "krayin", "settings": settings, "secrets": secrets });
    if let Some(rate_limit) = &connect.rate_limit {
        body["rate_limit"] = rate_limit.clone();
    }
    body
}

/// A new business connected to a new Krayin (at its own host).
pub async fn krayin_business(app: &App, connect: Connect) -> Setup {
    let business = app
        .business(&format!("Krayin business {}", unique_number()))
        .await;
    let krayin = Krayin::install(&app.stack, &format!("crm{}.krayin.example", unique_number()));
    let created = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/connectors", business.id),
            Some(connector_body(&krayin, &connect)),
        )
        .await;
    assert_eq!(created.status, 201, "connecting Krayin: {}", created.text());
    Setup {
        business,
        connector: created.json(),
        krayin,
        webhook_secret: connect.webhook_secret,
    }
}

/// POSTs a delivery to `path` as Chatwoot does.
pub async fn post(app: &App, path: &str, delivery: &Delivery) -> Answer {
    let headers: Vec<(&str, &str)> = delivery
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    app.request(Method::Post, path, &headers, delivery.body.clone())
        .await
}

impl Setup {
    pub fn id(&self) -> &str {
        self.connector["id"].as_str().unwrap_or_default()
    }

    /// The path Chatwoot is given.
    pub fn path(&self) -> &str {
        self.connector["webhook_path"].as_str().unwrap_or_default()
    }

    /// `payload` delivered now, signed with the connector's webhook secret.
    pub fn delivery(&self, payload: &Value) -> Delivery {
        Delivery::of(self.webhook_secret.as_deref(), payload)
    }

    pub async fn chatwoot(&self, app: &App, payload: &Value) -> Answer {
        post(app, self.path(), &self.delivery(payload)).await
    }

    /// Delivers `payload` and checks that the receiver recorded work for it.
    pub async fn queued(&self, app: &App, payload: &Value) -> Answer {
        let answer = self.chatwoot(app, payload).await;
        assert_eq!(answer.status, 200, "{}: {}", payload["event"], answer.text());
        assert!(
            answer.json()["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("queued")),
            "{}: {}",
            payload["event"],
            answer.text()
        );
        answer
    }

    /// The connector's sync log (newest first), with `query` added.
    pub async fn log(&self, app: &App, query: &str) -> Vec<Value> {
        sync_log(app, self.id(), query).await
    }

    /// Every due piece of work done, then the log: at least `count` entries, none pending.
    pub async fn settled_log(&self, app: &App, count: usize) -> Vec<Value> {
        app.settle().await;
        done_log(app, self.id(), count).await
    }

    /// The connector as the admin API shows it (with its status).
    pub async fn shown(&self, app: &App) -> Value {
        connector_of(app, self.id()).await
    }

    /// `GET /admin/connectors/{id}/contacts/{contact}` (our customer id or `chatwoot:{id}`).
    pub async fn contact(&self, app: &App, contact: &str) -> Answer {
        app.admin(
            Method::Get,
            &format!("/admin/connectors/{}/contacts/{contact}", self.id()),
            None,
        )
        .await
    }

    /// `GET /admin/connectors/{id}/contacts?external_id=…`.
    pub async fn contact_by_external_id(&self, app: &App, external_id: &str) -> Answer {
        let encoded: String = external_id
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        app.admin(
            Method::Get,
            &format!("/admin/connectors/{}/contacts?external_id={encoded}", self.id()),
            None,
        )
        .await
    }
}

/// The fields `keys` of `object` (null when absent), to compare as a whole.
pub fn pick(object: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|key| {
                (
                    (*key).to_owned(),
                    object.get(*key).cloned().unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}
