//! A business connected to its own Kustomer organization through the admin API, as an operator
//! connects one, and its sync log once the work settled.

use super::done_log;
use crate::app::{App, Business};
use crate::partners::kustomer::Kustomer;
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
        "rate_limit": super::no_budget()
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

/// The sync log once every queued piece of work is done (time passing for retries, up to
/// [`SETTLE_HORIZON`]): at least `count` entries, none pending.
pub async fn settled_log(app: &App, connector_id: &str, count: usize) -> Vec<Value> {
    app.settle_within(SETTLE_HORIZON).await;
    done_log(app, connector_id, count).await
}
