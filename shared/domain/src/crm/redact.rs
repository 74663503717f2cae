//! What a connector's debug log may show of a CRM exchange: its shape, ids and states, never a
//! secret or a person's data. Strings are kept only under keys known to hold neither; every other
//! string becomes its length. Credentials never reach this module (headers are not logged).

use serde_json::Value;

/// Keys whose string values are ids, states or kinds, never personal data.
const SHOWN_KEYS: [&str; 17] = [
    "id",
    "type",
    "status",
    "channel",
    "direction",
    "app",
    "priority",
    "code",
    "title",
    "customer",
    "conversation",
    "createdAt",
    "updatedAt",
    "sentAt",
    "self",
    "next",
    "pointer",
];

/// A JSON body as the debug log shows it; a body that is not JSON shows only its length.
pub fn body(raw: &[u8]) -> String {
    match serde_json::from_slice::<Value>(raw) {
        Ok(value) => redacted(&value, None).to_string(),
        Err(_) if raw.is_empty() => String::new(),
        Err(_) => format!("[{} bytes, not JSON]", raw.len()),
    }
}

fn redacted(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::String(text) if key.is_some_and(|key| SHOWN_KEYS.contains(&key)) && text.len() <= 64 => {
            value.clone()
        }
        Value::String(text) => Value::String(format!("[{} chars]", text.chars().count())),
        Value::Array(items) => Value::Array(items.iter().map(|item| redacted(item, key)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, item)| (name.clone(), redacted(item, Some(name))))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A request path as the debug log shows it: a lookup value in it (`/v1/customers/email=…`) and
/// the query string are hidden.
pub fn path(path: &str) -> String {
    let without_query = path.split('?').next().unwrap_or_default();
    without_query
        .split('/')
        .map(|segment| match segment.split_once('=') {
            Some((name, _)) => format!("{name}=[redacted]"),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_in_a_body_shows_only_its_length() {
        let raw = br#"{"data":{"type":"customer","id":"5f1a","attributes":{"name":"Ada Lovelace",
            "emails":[{"type":"home","email":"ada@example.com"}],"phones":[{"phone":"+14155550100"}],
            "custom":{"vipBool":true}}}}"#;
        let shown = body(raw);
        for secret in ["Ada", "ada@example.com", "+14155550100"] {
            assert!(!shown.contains(secret), "{secret} is hidden: {shown}");
        }
        for kept in ["\"customer\"", "\"5f1a\"", "\"home\"", "[12 chars]", "true"] {
            assert!(shown.contains(kept), "{kept} is shown: {shown}");
        }
    }

    #[test]
    fn a_long_value_under_a_shown_key_is_hidden_too() {
        let raw = format!(r#"{{"status":"{}"}}"#, "x".repeat(100));
        assert_eq!(body(raw.as_bytes()), r#"{"status":"[100 chars]"}"#);
        assert_eq!(body(b"<html>oops</html>"), "[17 bytes, not JSON]");
    }

    #[test]
    fn lookup_values_and_queries_leave_the_path() {
        assert_eq!(
            path("/v1/customers/email=ada%40example.com"),
            "/v1/customers/email=[redacted]"
        );
        assert_eq!(path("/v1/teams?page=2"), "/v1/teams");
        assert_eq!(
            path("/v1/conversations/5f1a/messages"),
            "/v1/conversations/5f1a/messages"
        );
    }
}
