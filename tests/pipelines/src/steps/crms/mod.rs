//! What every CRM connector shows the operator through the admin API: the connector with its
//! status, and its sync log, read once the work settled, entry by entry. Kustomer's own setup is in
//! [`kustomer`], HubSpot's in [`hubspot`]; Krayin's, with Chatwoot's deliveries, stays with its
//! paths (`paths/krayin`).

pub mod hubspot;
pub mod kustomer;
pub mod salesforce;

use crate::app::App;
use domain::crm::rollout::Rollout;
use domain::crm::work::ContactKey;
use domain::ids::ConnectorId;
use edge::runtime::Method;
use serde_json::{Value, json};

/// A connector budget that never holds work back (the tests that are not about the budget).
pub fn no_budget() -> Value {
    json!({ "per_minute": null, "per_second": null, "per_day": null })
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

/// The sync log of work already settled: at least `count` entries, none pending.
pub async fn done_log(app: &App, connector_id: &str, count: usize) -> Vec<Value> {
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
pub fn operations(log: &[Value]) -> Vec<(String, String)> {
    log.iter()
        .map(|entry| {
            (
                entry["operation"].as_str().unwrap_or_default().to_owned(),
                entry["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The largest rollout (in percent) that leaves `contact` out of `connector`'s group; none when
/// the contact is in every group (one in a hundred).
pub fn rollout_leaving_out(connector: &str, contact: &ContactKey) -> Option<i64> {
    let connector = ConnectorId::parse(connector)?;
    (1..=100).rev().find(|percent| {
        Rollout::parse("rollout_percent", *percent)
            .is_ok_and(|rollout| !rollout.includes_key(&connector, &contact.to_string()))
    })
}
