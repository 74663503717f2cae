//! Customers as CRMs send them: the wire shape, its validation into a draft, and the stored shape.

use crate::email::Email;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::ids::CustomerId;
use crate::phone::{Country, Phone};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
/// A phone number as typed, before it is normalised.
pub const MAX_PHONE_CHARS: usize = 64;
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
pub const MAX_EXTERNAL_SYSTEM_CHARS: usize = 64;
pub const MAX_ADDRESS_CHARS: usize = 1_000;
pub const MAX_NOTES_CHARS: usize = 10_000;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;

/// One customer as the seed's clients send it. Every field is optional here so that each
/// problem is reported by `validate` with the field's name, not as an opaque parse error.
///
/// One customer; name and one of email or phone are required. An invalid item fails alone.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CustomerIn {
    /// Required.
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_EMAIL_CHARS)))]
    pub email: Option<String>,
    /// E.164, or national with a default country.
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_PHONE_CHARS)))]
    pub phone: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_PHONE_CHARS)))]
    pub whatsapp_number: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub first_name: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub last_name: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_ADDRESS_CHARS)))]
    pub address: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NOTES_CHARS)))]
    pub notes: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_TAGS), inner(length(max = MAX_TAG_CHARS))))]
    pub tags: Option<Vec<String>>,
    /// The CRM's id (255 characters); a number is read as its digits.
    #[serde(default, deserialize_with = "string_or_integer")]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "Option<crate::api::openapi::StringOrInteger>")
    )]
    pub external_id: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_EXTERNAL_SYSTEM_CHARS)))]
    pub external_system: Option<String>,
    /// Merged into the stored ones (JSON merge patch: null removes a key); at most 16 KiB of
    /// JSON.
    pub custom_fields: Option<Map<String, Value>>,
}

/// A customer that passed validation. Absent optional fields mean "leave as stored".
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerDraft {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub whatsapp_number: Option<Phone>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub external_id: Option<String>,
    pub external_system: Option<String>,
    pub custom_fields: Option<Map<String, Value>>,
}

/// A customer as stored and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub whatsapp_number: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub external_id: Option<String>,
    pub external_system: Option<String>,
    pub custom_fields: Map<String, Value>,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
}

/// Where one connector's CRM keeps one of our customers, in one shape for every kind of CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CrmId {
    #[serde(skip)]
    pub customer_id: CustomerId,
    pub connector_id: crate::ids::ConnectorId,
    pub kind: crate::crm::work::ConnectorKind,
    /// Krayin: `krayin:person:7|krayin:lead:9|…`; Kustomer: `kustomer:customer:<id>`.
    pub external_id: String,
}

/// A customer as the API shows it: with `crm_ids`, where connectors keep them in their CRMs,
/// when there are any.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CustomerOut {
    #[serde(flatten)]
    pub customer: Customer,
    /// Where each CRM connector keeps this customer, in one shape for every kind of CRM; only
    /// when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crm_ids: Vec<CrmId>,
}

/// CRMs send numeric ids as JSON numbers as often as strings; both mean the same id.
fn string_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Integer(i64),
    }
    Ok(match Option::<Id>::deserialize(deserializer)? {
        Some(Id::Text(text)) => Some(text),
        Some(Id::Integer(number)) => Some(number.to_string()),
        None => None,
    })
}

/// The `external_id` of a raw item, read leniently so that even an item that fails to parse
/// can be identified in the response.
pub fn external_id_of(raw: &Value) -> Option<String> {
    match raw.get("external_id")? {
        Value::String(text) => Some(text.trim().to_owned()).filter(|id| !id.is_empty()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        code: ErrorCode::ValidationFailed,
        message: message.into(),
        field: Some(field.to_owned()),
    }
}

/// Empty and whitespace-only strings mean "not given": CRMs export blank cells as "".
fn text(field: &str, value: Option<String>, max_chars: usize) -> Result<Option<String>, ErrorBody> {
    let Some(mut value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    // Kept as it came unless there is something to trim: most text has nothing around it.
    if trimmed.len() != value.len() {
        value = trimmed.to_owned();
    }
    // A character is at least one byte: most text is not counted.
    if value.len() > max_chars && value.chars().count() > max_chars {
        return Err(invalid(
            field,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    let is_control = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    // ASCII text, most of it, is checked byte by byte rather than decoded character by character.
    let has_control = if value.is_ascii() {
        value.bytes().any(|b| is_control(char::from(b)))
    } else {
        value.chars().any(is_control)
    };
    if has_control {
        return Err(invalid(field, format!("{field} contains control characters")));
    }
    Ok(Some(value))
}

fn phone(field: &str, value: Option<String>, country: Option<Country>) -> Result<Option<Phone>, ErrorBody> {
    match text(field, value, MAX_PHONE_CHARS)? {
        None => Ok(None),
        Some(value) => Phone::parse(&value, country)
            .map(Some)
            .map_err(|error| invalid(field, format!("{field}: {error}"))),
    }
}

/// Parses one item of a batch from its text, with its external id as [`external_id_of`] reads it.
/// An item that parses is read straight into the wire shape, without a JSON value in between; one
/// that does not is parsed again as [`parse`] does, so what is refused, and how it is said, is
/// `parse`'s either way. An item that is no JSON value at all (nested past the parser's depth)
/// refuses the whole request, as it did when the body was read into values.
pub fn parse_text(raw: &str, default_country: Option<Country>) -> Result<Parsed, ApiError> {
    // A struct would also take a JSON array, field by field in order: only an object is a customer.
    let as_object = raw.trim_start().starts_with('{');
    if let Some(input) = as_object
        .then(|| serde_json::from_str::<CustomerIn>(raw).ok())
        .flatten()
    {
        let external_id = input
            .external_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        return Ok((
            external_id,
            validate_item(input, default_country, Some(raw.len())),
        ));
    }
    let value = serde_json::from_str::<Value>(raw)
        .map_err(|error| ApiError::malformed(format!("the request body is not valid JSON: {error}")))?;
    Ok((external_id_of(&value), parse(value, default_country)))
}

/// One item of a batch: its external id (to name it in the answer even when it failed), and its
/// draft or what is wrong with it.
pub type Parsed = (Option<String>, Result<CustomerDraft, ErrorBody>);

/// Parses one raw item. `default_country` completes phone numbers written in national form.
pub fn parse(raw: Value, default_country: Option<Country>) -> Result<CustomerDraft, ErrorBody> {
    if !raw.is_object() {
        return Err(invalid("", "each customer must be a JSON object"));
    }
    let input: CustomerIn = serde_path_to_error::deserialize(raw).map_err(|error| {
        let field = error.path().to_string();
        ErrorBody {
            code: ErrorCode::ValidationFailed,
            message: format!("{field} has the wrong type: {}", error.into_inner()),
            field: Some(field),
        }
    })?;
    validate(input, default_country)
}

pub fn validate(input: CustomerIn, default_country: Option<Country>) -> Result<CustomerDraft, ErrorBody> {
    validate_item(input, default_country, None)
}

/// An item whose text is at most this long holds custom fields within their limit, whatever
/// they are: written out again, JSON grows only where a number does (`1e15` becomes
/// `1000000000000000.0`, four and a half times its length), and nothing grows eightfold.
const CUSTOM_FIELDS_UNMEASURED_BYTES: usize = MAX_CUSTOM_FIELDS_BYTES / 8;

/// [`validate`], for an item read from `raw_bytes` of text when that is known: a short item's
/// custom fields are not written out again to be measured.
fn validate_item(
    input: CustomerIn,
    default_country: Option<Country>,
    raw_bytes: Option<usize>,
) -> Result<CustomerDraft, ErrorBody> {
    let name =
        text("name", input.name, MAX_NAME_CHARS)?.ok_or_else(|| invalid("name", "name is required"))?;
    let email = match text("email", input.email, MAX_EMAIL_CHARS)? {
        None => None,
        Some(value) => Some(Email::parse(&value).map_err(|error| invalid("email", error.to_string()))?),
    };
    let phone_number = phone("phone", input.phone, default_country)?;
    if email.is_none() && phone_number.is_none() {
        return Err(invalid(
            "email",
            "at least one contact method (email or phone) is required",
        ));
    }
    let tags = match input.tags {
        None => None,
        Some(tags) if tags.len() > MAX_TAGS => {
            return Err(invalid("tags", format!("at most {MAX_TAGS} tags are allowed")));
        }
        Some(tags) => {
            let mut unique: Vec<String> = Vec::with_capacity(tags.len());
            for tag in tags {
                if let Some(tag) = text("tags", Some(tag), MAX_TAG_CHARS)?
                    && !unique.contains(&tag)
                {
                    unique.push(tag);
                }
            }
            Some(unique)
        }
    };
    if let Some(fields) = &input.custom_fields
        && raw_bytes.is_none_or(|bytes| bytes > CUSTOM_FIELDS_UNMEASURED_BYTES)
    {
        let size = serde_json::to_string(fields)
            .map(|json| json.len())
            .unwrap_or(usize::MAX);
        if size > MAX_CUSTOM_FIELDS_BYTES {
            return Err(invalid(
                "custom_fields",
                format!("custom_fields is larger than {MAX_CUSTOM_FIELDS_BYTES} bytes of JSON"),
            ));
        }
    }
    Ok(CustomerDraft {
        name,
        email,
        phone: phone_number,
        whatsapp_number: phone("whatsapp_number", input.whatsapp_number, default_country)?,
        first_name: text("first_name", input.first_name, MAX_NAME_CHARS)?,
        last_name: text("last_name", input.last_name, MAX_NAME_CHARS)?,
        address: text("address", input.address, MAX_ADDRESS_CHARS)?,
        notes: text("notes", input.notes, MAX_NOTES_CHARS)?,
        tags,
        external_id: text("external_id", input.external_id, MAX_EXTERNAL_ID_CHARS)?,
        external_system: text(
            "external_system",
            input.external_system,
            MAX_EXTERNAL_SYSTEM_CHARS,
        )?,
        custom_fields: input.custom_fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ireland() -> Option<Country> {
        Country::parse("IE").ok()
    }

    #[test]
    fn the_seeds_sync_example_is_a_valid_customer() {
        let raw = json!({
            "external_id": "CRM-12345",
            "name": "John Doe",
            "email": "john@example.com",
            "phone": "+353871234567",
            "first_name": "John",
            "last_name": "Doe",
            "address": "123 Main St, Dublin",
            "notes": "VIP customer - handle with priority",
            "custom_fields": {"crm_segment": "enterprise", "contract_value": 50000}
        });
        let draft = parse(raw, None).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(draft.external_id.as_deref(), Some("CRM-12345"));
        assert_eq!(draft.phone.as_ref().map(Phone::as_str), Some("+353871234567"));
        assert_eq!(draft.custom_fields.map(|fields| fields.len()), Some(2));
    }

    #[test]
    fn a_national_phone_is_completed_with_the_default_country() {
        let draft = parse(json!({"name": "Joe", "phone": "087 123 4567"}), ireland());
        assert_eq!(
            draft.ok().and_then(|d| d.phone).map(|p| p.as_str().to_owned()),
            Some("+353871234567".to_owned())
        );
    }

    #[test]
    fn numeric_external_ids_become_strings_and_blank_fields_are_absent() {
        let draft = parse(
            json!({"name": "A", "email": "a@b.co", "external_id": 42, "notes": "  ", "phone": ""}),
            None,
        );
        let draft = draft.unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(draft.external_id.as_deref(), Some("42"));
        assert_eq!(draft.notes, None);
        assert_eq!(draft.phone, None);
        assert_eq!(external_id_of(&json!({"external_id": 42})), Some("42".to_owned()));
    }

    #[test]
    fn an_item_read_from_its_text_is_what_it_is_read_from_its_value() {
        let items = [
            json!({"name": "A", "email": "a@b.co", "external_id": 42, "notes": "  ", "phone": "087 123 4567"}),
            json!({"name": "B", "email": "b@b.co", "external_id": " crm-7 ", "tags": ["x", "x"], "custom_fields": {"a": [1, {"b": null}]}}),
            json!({"name": "C", "external_id": "c"}),
            json!({"name": 5, "email": "c@b.co", "external_id": "  "}),
            json!({"name": "D", "email": "d@b.co", "external_id": 1.5}),
            json!({"name": "E", "email": "e@b.co", "tags": "vip"}),
            json!(["F", "f@b.co"]),
            json!("G"),
            json!(null),
        ];
        for item in items {
            let text = item.to_string();
            let expected = (external_id_of(&item), parse(item, ireland()));
            assert_eq!(parse_text(&text, ireland()).ok(), Some(expected), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let refused = parse_text(&deep, None).err().map(|error| error.body.code);
        assert_eq!(
            refused,
            Some(ErrorCode::MalformedRequest),
            "too deep for a value: the request is refused"
        );
    }

    #[test]
    fn text_is_measured_in_characters_and_refuses_control_characters_of_any_script() {
        let cases = [
            (
                "é".repeat(MAX_NAME_CHARS),
                true,
                "as many two-byte characters as allowed",
            ),
            (
                "é".repeat(MAX_NAME_CHARS + 1),
                false,
                "one two-byte character too many",
            ),
            (
                "A".repeat(MAX_NAME_CHARS),
                true,
                "as many ASCII characters as allowed",
            ),
            ("Ann\tB\r\nC".to_owned(), true, "tabs and line breaks"),
            ("Ann\u{7f}".to_owned(), false, "DEL"),
            ("Ann\u{1b}".to_owned(), false, "ESC"),
            (
                "Zoë\u{85}B".to_owned(),
                false,
                "a C1 control (NEL) in non-ASCII text",
            ),
            ("Zoë\u{9f}".to_owned(), false, "the last C1 control"),
            ("Zoë\u{a0}B".to_owned(), true, "a no-break space is no control"),
        ];
        for (name, accepted, description) in cases {
            let outcome = parse(json!({"name": name, "email": "a@b.co"}), None)
                .map(|draft| draft.name)
                .map_err(|error| error.field);
            let expected = if accepted {
                Ok(name.clone())
            } else {
                Err(Some("name".to_owned()))
            };
            assert_eq!(outcome, expected, "{description}");
        }
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated_in_order() {
        let draft = parse(
            json!({"name": "A", "email": "a@b.co", "tags": ["vip", " vip ", "", "b2b"]}),
            None,
        );
        assert_eq!(
            draft.ok().and_then(|d| d.tags),
            Some(vec!["vip".to_owned(), "b2b".to_owned()])
        );
    }

    #[test]
    fn an_item_short_enough_to_go_unmeasured_cannot_hold_custom_fields_over_the_limit() {
        // The numbers that grow most when written out again, as many as the item's text allows.
        for number in ["1e15", "9e15", "1E2", "1e-5", "123456789e-20"] {
            let mut raw = String::from(r#"{"name":"A","email":"a@b.co","custom_fields":{"n":["#);
            while raw.len() + 2 * number.len() + 4 <= CUSTOM_FIELDS_UNMEASURED_BYTES {
                raw.push_str(number);
                raw.push(',');
            }
            raw.push_str(number);
            raw.push_str("]}}");
            assert!(
                raw.len() <= CUSTOM_FIELDS_UNMEASURED_BYTES,
                "{number}: the item fits"
            );
            let Ok((_, Ok(draft))) = parse_text(&raw, None) else {
                panic!("{number}: the item is valid");
            };
            let written = serde_json::to_string(&draft.custom_fields).unwrap_or_default();
            assert!(
                written.len() < MAX_CUSTOM_FIELDS_BYTES / 2,
                "{number}: {} bytes written out again",
                written.len()
            );
        }
    }

    #[test]
    fn a_long_item_has_its_custom_fields_measured() {
        let item = json!({"name": "A", "email": "a@b.co",
            "custom_fields": {"n": vec![1e15; MAX_CUSTOM_FIELDS_BYTES / 8]}});
        let raw = item.to_string();
        assert!(raw.len() > CUSTOM_FIELDS_UNMEASURED_BYTES);
        let parsed = parse_text(&raw, None).map(|(_, draft)| draft.err().and_then(|e| e.field));
        assert_eq!(parsed.ok().flatten().as_deref(), Some("custom_fields"));
    }

    #[test]
    fn invalid_customers_are_rejected_with_the_field_at_fault() {
        let big = "x".repeat(MAX_CUSTOM_FIELDS_BYTES);
        let many_tags: Vec<String> = (0..=MAX_TAGS).map(|n| n.to_string()).collect();
        let cases = [
            (json!({"email": "a@b.co"}), Some("name"), "name missing"),
            (
                json!({"name": "   ", "email": "a@b.co"}),
                Some("name"),
                "name blank",
            ),
            (json!({"name": "A"}), Some("email"), "no contact method"),
            (
                json!({"name": "A", "whatsapp_number": "+353871234567"}),
                Some("email"),
                "whatsapp alone is not a contact method",
            ),
            (
                json!({"name": "A", "email": "not-an-email"}),
                Some("email"),
                "bad email",
            ),
            (
                json!({"name": "A", "phone": "087 123 4567"}),
                Some("phone"),
                "national phone without a default country",
            ),
            (
                json!({"name": "A", "phone": "call me"}),
                Some("phone"),
                "prose phone",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "whatsapp_number": "12"}),
                Some("whatsapp_number"),
                "short whatsapp",
            ),
            (
                json!({"name": "A".repeat(201), "email": "a@b.co"}),
                Some("name"),
                "long name",
            ),
            (
                json!({"name": "A\u{0000}", "email": "a@b.co"}),
                Some("name"),
                "NUL in name",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "tags": many_tags}),
                Some("tags"),
                "too many tags",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "custom_fields": {"big": big}}),
                Some("custom_fields"),
                "huge custom fields",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "tags": "vip"}),
                Some("tags"),
                "tags not an array",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "tags": ["a", 1]}),
                Some("tags[1]"),
                "a tag not a string",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "custom_fields": [1]}),
                Some("custom_fields"),
                "custom fields not an object",
            ),
            (
                json!({"name": 7, "email": "a@b.co"}),
                Some("name"),
                "name not a string",
            ),
            (
                json!({"name": "A", "email": "a@b.co", "external_id": 4.5}),
                Some("external_id"),
                "fractional external id",
            ),
            (json!("John"), Some(""), "not an object"),
        ];
        for (raw, field, description) in cases {
            let error = parse(raw, None).err();
            assert!(error.is_some(), "{description}: should be rejected");
            assert_eq!(
                error.and_then(|e| e.field),
                field.map(str::to_owned),
                "{description}: field"
            );
        }
    }
}
