//! Customers through the API as the paths drive it (the end-to-end suite's customer helpers in
//! `support.mjs`): synced and bulk-created with the request's extra fields, found one at a time
//! or in a batch, checked absent, their rows themselves (`SELECT *`), and requests run at once so
//! that they race as concurrent isolates do.

use super::store::select;
use super::unique;
use crate::app::{Answer, App, Business};
use crate::partners::form::url_encoded;
use edge::runtime::Method;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// How long a D1 round trip takes while requests run at once (on the virtual clock).
const ROUND_TRIP: Duration = Duration::from_millis(3);

/// `POST path` with `{customers, ...extra}`; checks the request itself was accepted (200) and
/// returns the body.
async fn post_batch(app: &App, key: &str, path: &str, customers: Value, extra: Value) -> Value {
    let mut body = json!({ "customers": customers });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let answer = app.api(key, Method::Post, path, Some(body)).await;
    let text: String = answer.text().chars().take(2000).collect();
    assert_eq!(answer.status, 200, "{path}: {text}");
    answer.json()
}

/// Syncs customers; checks the request itself was accepted and returns the body.
pub async fn sync(app: &App, key: &str, customers: Value) -> Value {
    sync_with(app, key, customers, json!({})).await
}

/// Syncs customers with the request's `extra` fields (`default_country`).
pub async fn sync_with(app: &App, key: &str, customers: Value, extra: Value) -> Value {
    post_batch(app, key, "/api-customers-sync", customers, extra).await
}

/// Bulk-creates customers; checks the request itself was accepted.
pub async fn bulk_create(app: &App, key: &str, customers: Value) -> Value {
    bulk_create_with(app, key, customers, json!({})).await
}

/// Bulk-creates customers with the request's `extra` fields.
pub async fn bulk_create_with(app: &App, key: &str, customers: Value, extra: Value) -> Value {
    post_batch(app, key, "/api-customers-bulk-create", customers, extra).await
}

/// Looks customers up in one batch; checks the request itself was accepted.
pub async fn batch_lookup(app: &App, key: &str, keys: Value) -> Value {
    let answer = app
        .api(key, Method::Post, "/api-customers-batch-lookup", Some(keys))
        .await;
    let text: String = answer.text().chars().take(2000).collect();
    assert_eq!(answer.status, 200, "batch lookup: {text}");
    answer.json()
}

/// The customer `GET /api-customers?{param}={value}` finds; checks it is found.
pub async fn stored(app: &App, key: &str, param: &str, value: &str) -> Value {
    let answer = customer(app, key, param, value).await;
    assert_eq!(
        answer.status,
        200,
        "looking up {param}={value}: {}",
        answer.text()
    );
    answer.json()
}

/// Checks that no customer with any of `emails` is stored for `key`'s business.
pub async fn assert_not_stored(app: &App, key: &str, emails: &[&str], description: &str) {
    for email in emails {
        let answer = customer(app, key, "email", email).await;
        let text: String = answer.text().chars().take(300).collect();
        assert_eq!(
            answer.status, 404,
            "{description}: nothing should be stored for {email} (got {text})"
        );
    }
}

/// Every customer row of a business, as stored, oldest first.
pub fn customer_rows(app: &App, business: &Business) -> Vec<Map<String, Value>> {
    select(
        app,
        "SELECT * FROM customers WHERE business_id = ?1 ORDER BY created_at, id",
        &[&business.id],
    )
}

/// The string at `pointer` in `value` (empty when there is none).
pub fn text_at<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// The `details` of a sync's answer.
pub fn details(body: &Value) -> Vec<Value> {
    body["results"]["details"].as_array().cloned().unwrap_or_default()
}

/// The requests run at once, each D1 call taking a round trip's time, so that their statements
/// interleave as concurrent isolates' do (natively D1 otherwise answers at once, and each request
/// would run to its end before the next starts); their answers, in order.
pub async fn at_once<F>(app: &App, requests: impl IntoIterator<Item = F>) -> Vec<Answer>
where
    F: Future<Output = Answer>,
{
    app.stack.d1_latency(ROUND_TRIP);
    let answers = join_all(requests).await;
    app.stack.d1_latency(Duration::ZERO);
    answers
}

/// `GET /api-customers?{param}={value}`.
pub async fn customer(app: &App, key: &str, param: &str, value: &str) -> Answer {
    let query = url_encoded(&[(param, value)]);
    app.api(key, Method::Get, &format!("/api-customers?{query}"), None)
        .await
}

/// Syncs one new customer named `name` (a `customer.created` event); its id.
pub async fn new_customer(app: &App, key: &str, name: &str) -> String {
    let tag = unique("c");
    let result = sync(
        app,
        key,
        json!([{ "external_id": format!("CRM-{tag}"), "name": name, "email": format!("{tag}@example.com") }]),
    )
    .await;
    assert_eq!(result["results"]["created"], 1, "{result}");
    result["results"]["details"][0]["customer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `n` customers to sync, each with a name, an external id and an email under `tag`.
pub fn customers(n: usize, tag: &str) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({ "name": format!("Customer {i}"), "external_id": format!("{tag}-{i}"), "email": format!("{tag}-{i}@example.com") }))
            .collect(),
    )
}
