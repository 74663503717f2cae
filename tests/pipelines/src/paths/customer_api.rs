//! The customer API as the customer paths drive it (the end-to-end suite's customer helpers in
//! `support.mjs`): syncing and bulk-creating with the request's extra fields, finding customers
//! one at a time or in a batch, checking that nothing was stored, the customer rows themselves
//! (`SELECT *`), and requests run at once so that they race as concurrent isolates do.

use crate::app::{Answer, App, Business};
use crate::paths::inbound::customer;
use crate::steps::store::select;
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
