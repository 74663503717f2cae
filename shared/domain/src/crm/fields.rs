//! What every connector kind's settings and secrets parser checks the same way: a JSON object
//! with only known keys, strings, the CRM's address, and a credential pasted in alone.

use crate::destination::Destination;
use crate::error::ApiError;
use serde_json::{Map, Value};

/// A credential longer than this is something else pasted in by mistake.
pub const MAX_SECRET_CHARS: usize = 4_096;

/// A CRM's records as an error message lists them, `1 (New), 2 (Follow Up)`: at most twenty, or
/// `none`.
pub(crate) fn names<'a>(items: impl Iterator<Item = (impl std::fmt::Display, &'a str)>) -> String {
    let listed: Vec<String> = items
        .take(20)
        .map(|(id, name)| format!("{id} ({name})"))
        .collect();
    if listed.is_empty() {
        "none".to_owned()
    } else {
        listed.join(", ")
    }
}

pub(crate) fn object<'a>(field: &str, input: &'a Value) -> Result<&'a Map<String, Value>, ApiError> {
    input
        .as_object()
        .ok_or_else(|| ApiError::invalid(field, format!("{field} must be a JSON object")))
}

/// Refuses a key not in `known`, so a misspelt setting is not silently ignored; `crm` names the
/// connector kind in the message.
pub(crate) fn refuse_unknown(
    prefix: &str,
    fields: &Map<String, Value>,
    known: &[&str],
    crm: &str,
) -> Result<(), ApiError> {
    match fields.keys().find(|name| !known.contains(&name.as_str())) {
        None => Ok(()),
        Some(name) => Err(ApiError::invalid(
            format!("{prefix}.{name}"),
            format!(
                "{prefix}.{name} is not a {crm} connector setting; the settings are {}",
                known.join(", ")
            ),
        )),
    }
}

/// `settings.{name}` of `fields` as true or false; `default` when it is absent or null.
pub(crate) fn flag(fields: &Map<String, Value>, name: &str, default: bool) -> Result<bool, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(ApiError::invalid(
            format!("settings.{name}"),
            format!("settings.{name} must be true or false"),
        )),
    }
}

pub(crate) fn string<'a>(field: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .map(str::trim)
        .ok_or_else(|| ApiError::invalid(field, format!("{field} must be a string")))
}

/// `settings.base_url`: a destination webhooks may go to, without a query or fragment (paths are
/// added to it; either would end up in the middle of every URL).
pub(crate) fn base_url(value: &Value, allow_loopback: bool) -> Result<Destination, ApiError> {
    base_url_at("settings.base_url", value, allow_loopback)
}

/// [`base_url`] given as `field`.
pub(crate) fn base_url_at(field: &str, value: &Value, allow_loopback: bool) -> Result<Destination, ApiError> {
    let destination = Destination::parse(field, string(field, value)?, allow_loopback)
        .map_err(|message| ApiError::invalid(field, message))?;
    if destination.url().query().is_some() || destination.url().fragment().is_some() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not have a query or a fragment: it is the address paths are added to"),
        ));
    }
    Ok(destination)
}

/// The credential `secrets.{name}` of `fields`, which a connector cannot work without: missing
/// (or null) is refused with `advice` on where to find one.
pub(crate) fn required_secret(
    fields: &serde_json::Map<String, Value>,
    name: &str,
    what: &str,
    advice: &str,
) -> Result<String, ApiError> {
    let field = format!("secrets.{name}");
    match fields.get(name).filter(|value| !value.is_null()) {
        None => Err(ApiError::invalid(
            &field,
            format!("{field} is required: {advice}"),
        )),
        Some(value) => secret(&field, value, what),
    }
}

/// The credential `secrets.{name}` of `fields`, when it is given (null: not given).
pub(crate) fn optional_secret(
    fields: &serde_json::Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<Option<String>, ApiError> {
    fields
        .get(name)
        .filter(|value| !value.is_null())
        .map(|value| secret(&format!("secrets.{name}"), value, what))
        .transpose()
}

/// A credential (`what`: "key", "token") as it is sent: not empty, without a `Bearer ` prefix,
/// spaces or control characters, at most [`MAX_SECRET_CHARS`].
pub(crate) fn secret(field: &str, value: &Value, what: &str) -> Result<String, ApiError> {
    let text = string(field, value)?;
    if text.is_empty() {
        return Err(ApiError::invalid(field, format!("{field} must not be empty")));
    }
    if text
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
    {
        return Err(ApiError::invalid(
            field,
            format!("{field} is the {what} alone, without the \"Bearer \" prefix"),
        ));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain spaces, line breaks or control characters"),
        ));
    }
    if text.chars().count() > MAX_SECRET_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {MAX_SECRET_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_starting_with_a_wide_character_is_checked_not_sliced() {
        // Byte 7 falls inside "é": the prefix check must not slice there.
        assert!(secret("secrets.api_key", &json!("abcdefé-rest"), "key").is_ok());
        let prefixed = secret("secrets.api_key", &json!("Bearer abc"), "key");
        assert_eq!(prefixed.err().map(|error| error.status()), Some(422));
    }
}
