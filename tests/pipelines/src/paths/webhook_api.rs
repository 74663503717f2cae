//! The webhook API as the whole paths drive it (the end-to-end suite's `webhook-api.mjs`):
//! registering an endpoint for a scripted receiver, reading its deliveries and the attempt log,
//! the customers and inbound WhatsApp messages whose changes make events, the API's one error
//! shape, and RFC 3339 times read and written here, not with the code under test.

use crate::app::{Answer, App, Business};
use crate::partners::meta;
use crate::partners::webhook_endpoint::Endpoint;
use edge::runtime::Method;
use edge::runtime::native::Outbound;
use edge::runtime::native::rusqlite;
use serde_json::{Value, json};
use std::cell::Cell;

/// Every event an endpoint can subscribe to.
pub const EVENTS: [&str; 7] = [
    "message.received",
    "message.sent",
    "conversation.created",
    "conversation.assigned",
    "conversation.status_changed",
    "customer.created",
    "customer.updated",
];

/// Registers an endpoint; checks the 201 and returns the webhook and its secret.
pub async fn create_webhook(app: &App, key: &str, fields: Value) -> (Value, String) {
    let mut body = json!({ "name": "hook" });
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    let created = app
        .api(key, Method::Post, "/api-webhooks", Some(body))
        .await
        .expect(201)
        .json();
    assert!(
        created["webhook"]["id"].is_string(),
        "the webhook has an id: {created}"
    );
    let secret = created["secret"].as_str().unwrap_or_default().to_owned();
    assert!(
        secret.starts_with("whsec_"),
        "the secret is shown once: {created}"
    );
    (created["webhook"].clone(), secret)
}

/// An endpoint of `key`'s business pointed at `endpoint`, which learns its secret.
pub async fn with_endpoint(app: &App, key: &str, endpoint: &Endpoint, fields: Value) -> (Value, String) {
    let mut all = json!({ "url": endpoint.url() });
    if let (Some(all), Some(fields)) = (all.as_object_mut(), fields.as_object()) {
        all.extend(fields.clone());
    }
    let (webhook, secret) = create_webhook(app, key, all).await;
    endpoint.knows_secret(&secret);
    (webhook, secret)
}

pub fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_owned()
}

pub async fn get_webhook(app: &App, key: &str, id: &str) -> Value {
    app.api(key, Method::Get, &format!("/api-webhooks/{id}"), None)
        .await
        .expect(200)
        .json()["webhook"]
        .clone()
}

/// The deliveries of an endpoint, newest first (`query`: more parameters, `status=dead`).
pub async fn deliveries_of(app: &App, key: &str, webhook_id: &str, query: &str) -> Vec<Value> {
    let extra = if query.is_empty() {
        String::new()
    } else {
        format!("&{query}")
    };
    let listed = app
        .api(
            key,
            Method::Get,
            &format!("/api-webhooks/{webhook_id}/deliveries?limit=500{extra}"),
            None,
        )
        .await
        .expect(200)
        .json();
    listed["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no deliveries list: {listed}"))
}

/// The delivery of `event_id` to the endpoint.
pub async fn delivery_of_event(app: &App, key: &str, webhook_id: &str, event_id: &str) -> Value {
    let deliveries = deliveries_of(app, key, webhook_id, "").await;
    deliveries
        .iter()
        .find(|delivery| delivery["event_id"] == event_id)
        .cloned()
        .unwrap_or_else(|| panic!("no delivery of {event_id}: {deliveries:?}"))
}

/// The attempt log, newest first, for `filters` (`webhook_id=…`, `event_id=…`, `delivery_id=…`).
pub async fn attempts_of(app: &App, key: &str, filters: &str) -> Vec<Value> {
    let listed = app
        .api(
            key,
            Method::Get,
            &format!("/api-webhook-attempts?limit=500&{filters}"),
            None,
        )
        .await
        .expect(200)
        .json();
    listed["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no attempts list: {listed}"))
}

/// Syncs customers; checks the request itself was accepted.
pub async fn sync(app: &App, key: &str, customers: Value) -> Value {
    app.api(
        key,
        Method::Post,
        "/api-customers-sync",
        Some(json!({ "customers": customers })),
    )
    .await
    .expect(200)
    .json()
}

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

/// A tag no other call of this thread gives.
pub fn unique(prefix: &str) -> String {
    NEXT.with(|next| {
        next.set(next.get() + 1);
        format!("{prefix}-{}", next.get())
    })
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

/// A request with a raw body labelled JSON, with the business's key (if any).
pub async fn raw(app: &App, key: Option<&str>, method: Method, path: &str, body: &[u8]) -> Answer {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(key) = key {
        headers.push(("x-api-key", key));
    }
    app.request(method, path, &headers, body.to_vec()).await
}

/// Checks the API's one error shape (`{error: {code, message, field?}}` and nothing else) with
/// `status` and `code`; returns the error.
pub fn error_of(answer: &Answer, status: u16, code: &str, description: &str) -> Value {
    assert_eq!(answer.status, status, "{description}: status ({})", answer.text());
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("{description}: not JSON: {}", answer.text()));
    let error = &body["error"];
    assert_eq!(error["code"], code, "{description}: the code ({body})");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{description}: a message ({body})"
    );
    if let Some(field) = error.get("field") {
        assert!(field.is_string(), "{description}: the field is text ({body})");
    }
    let keys: Vec<&String> = error.as_object().map(|e| e.keys().collect()).unwrap_or_default();
    assert!(
        keys.iter()
            .all(|key| ["code", "message", "field"].contains(&key.as_str())),
        "{description}: nothing else in the error ({body})"
    );
    error.clone()
}

/// Checks that the answer is a client error (4xx), never a server error.
pub fn client_error(answer: &Answer, description: &str) {
    assert!(
        (400..500).contains(&answer.status),
        "{description}: a 4xx, not {} {}",
        answer.status,
        answer.text()
    );
}

/// `2026-11-26T12:00:00Z` or with a fraction: the shape every time in the API has.
pub fn is_rfc3339_utc(text: &str) -> bool {
    rfc3339_ms(text).is_some()
}

/// The milliseconds since the epoch an RFC 3339 UTC time says.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let number = |part: &str, width: usize| {
        (part.len() == width && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<i64>().ok())
            .flatten()
    };
    let mut date = date.split('-');
    let (year, month, day) = (
        number(date.next()?, 4)?,
        number(date.next()?, 2)?,
        number(date.next()?, 2)?,
    );
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.split(':');
    let (hour, minute, second) = (
        number(clock.next()?, 2)?,
        number(clock.next()?, 2)?,
        number(clock.next()?, 2)?,
    );
    if date.next().is_some() || clock.next().is_some() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let millis = format!("{fraction:0<3}")[..3].parse::<i64>().ok()?;
    Some((days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis)
}

/// `ms` since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339_at(ms: i64) -> String {
    let (days, of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

/// Howard Hinnant's days-from-civil.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Milliseconds between consecutive calls.
pub fn gaps(calls: &[Outbound]) -> Vec<i64> {
    calls
        .windows(2)
        .map(|pair| pair[1].at_ms - pair[0].at_ms)
        .collect()
}

/// Runs `sql` on every shard (a test's own change to the store, as a corrupt row or another
/// worker would make it).
pub fn on_every_shard(app: &App, sql: &str, params: &[&dyn rusqlite::ToSql]) {
    for binding in app.stack.shard_bindings() {
        app.stack.sql(&binding, |connection| {
            connection
                .execute(sql, params)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        });
    }
}

/// The rows `sql` reads on every shard, each row's columns as text or numbers.
pub fn rows_on_every_shard(app: &App, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    for binding in app.stack.shard_bindings() {
        app.stack.sql(&binding, |connection| {
            let mut statement = connection
                .prepare(sql)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            let columns = statement.column_count();
            let rows = statement
                .query_map(params, |row| {
                    (0..columns)
                        .map(|at| {
                            Ok(match row.get_ref(at)? {
                                rusqlite::types::ValueRef::Null => Value::Null,
                                rusqlite::types::ValueRef::Integer(n) => json!(n),
                                rusqlite::types::ValueRef::Real(n) => json!(n),
                                rusqlite::types::ValueRef::Text(text) => {
                                    json!(String::from_utf8_lossy(text))
                                }
                                rusqlite::types::ValueRef::Blob(bytes) => json!(hex::encode(bytes)),
                            })
                        })
                        .collect::<Result<Vec<Value>, rusqlite::Error>>()
                })
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            all.extend(rows.map(|row| row.unwrap_or_else(|error| panic!("{sql}: {error}"))));
        });
    }
    all
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
    let address = format!("1{:015}", 106_540_352_242_922u64 + NEXT.with(Cell::get));
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
