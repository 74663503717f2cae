//! The API's answers as every path reads them, written here rather than with the code under
//! test: its one error shape, a client error and never a server error, a raw body, the ids and
//! the RFC 3339 times it writes, a business's API keys, and what is not the admin token.

use crate::app::{Answer, App};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::Method;
use serde_json::Value;

/// A well-formed id that names nothing.
pub const UNKNOWN_ID: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

/// The error of an answer, after checking its shape: the status, `{error: {code, message,
/// field?}}` and nothing more.
pub fn assert_error(answer: &Answer, status: u16, code: &str, description: &str) -> Value {
    assert_eq!(
        answer.status,
        status,
        "{description}: status (body: {})",
        answer.text()
    );
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("{description}: the body is JSON (got {})", answer.text()));
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{description}: error code (body: {body})");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{description}: the error has a message: {body}"
    );
    if let Some(field) = error.get("field") {
        assert!(field.is_string(), "{description}: the field is text: {body}");
    }
    let keys: Vec<&String> = error
        .as_object()
        .map(|error| error.keys().collect())
        .unwrap_or_default();
    assert!(
        keys.iter()
            .all(|key| ["code", "message", "field"].contains(&key.as_str())),
        "{description}: only code, message and field in the error: {body}"
    );
    error
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

/// A request with a raw body labelled JSON, with the business's key (if any).
pub async fn raw(app: &App, key: Option<&str>, method: Method, path: &str, body: &[u8]) -> Answer {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(key) = key {
        headers.push(("x-api-key", key));
    }
    app.request(method, path, &headers, body.to_vec()).await
}

/// Lower-case hex in the 8-4-4-4-12 groups of a UUID: the shape of every id the API gives.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(at, c)| {
            if [8, 13, 18, 23].contains(&at) {
                c == '-'
            } else {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }
        })
}

/// A random (version 4) UUID no other call gives: an id a test writes into a row itself.
pub fn new_uuid() -> String {
    let hex = crate::partners::unique_hex(30);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..15],
        &hex[15..18],
        &hex[18..30]
    )
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
    let (clock, fraction) = match time.split_once('.') {
        Some((_, "")) => return None,
        Some(split) => split,
        None => (time, ""),
    };
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

/// The id of the first key a business was issued (the one [`App::business`] issues).
pub async fn first_key_id(app: &App, business_id: &str) -> String {
    let listed = app
        .admin(
            Method::Get,
            &format!("/admin/businesses/{business_id}/api-keys"),
            None,
        )
        .await
        .expect(200)
        .json();
    listed["api_keys"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the business has a key: {listed}"))
        .to_owned()
}

/// Credentials that are not the admin token, each with what it is.
pub fn wrong_admin_credentials(token: &str) -> Vec<(Vec<(&'static str, String)>, &'static str)> {
    let basic = STANDARD.encode(format!("admin:{token}"));
    vec![
        (vec![], "no Authorization header"),
        (
            vec![("authorization", "Bearer wrong-token".to_owned())],
            "a wrong token",
        ),
        (
            vec![("authorization", format!("Bearer {token}x"))],
            "the token with an extra character",
        ),
        (
            vec![("authorization", format!("Bearer {}", &token[..token.len() - 1]))],
            "the token missing its last character",
        ),
        (
            vec![("authorization", token.to_owned())],
            "the token without the Bearer scheme",
        ),
        (vec![("authorization", format!("Basic {basic}"))], "basic auth"),
        (
            vec![("authorization", "Bearer ".to_owned())],
            "an empty bearer token",
        ),
        (vec![("x-api-key", token.to_owned())], "the token in x-api-key"),
    ]
}
