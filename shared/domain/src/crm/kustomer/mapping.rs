//! Which of our customer's fields go where on a Kustomer customer: the business's field mapping,
//! checked when it is saved, and the customer body it produces.
//!
//! A mapping is an object of our field → Kustomer attribute path, as the seed writes it:
//! `{"customerEmail": "attributes.emails[0].email", "customerName": "attributes.name"}`. The
//! body sent to Kustomer is the attributes object itself (`POST /v1/customers` takes attributes
//! at the top level), so `attributes.` only says where a value lands.

use crate::customer::Customer;
use crate::email::Email;
use crate::error::ApiError;
use crate::phone::Phone;
use crate::time::Timestamp;
use serde_json::{Map, Number, Value};
use std::fmt;

/// More entries than any customer has fields is a mistake, not a mapping.
const MAX_ENTRIES: usize = 100;
/// Kustomer's documented limit for `Str` and `Txt` custom attributes.
const MAX_CUSTOM_TEXT_CHARS: usize = 1_024;
const MAX_CUSTOM_NAME_CHARS: usize = 64;
const MAX_CUSTOM_FIELD_KEY_CHARS: usize = 100;
const CUSTOM_FIELDS_PREFIX: &str = "custom_fields.";

/// The `type` Kustomer records on an email address and a phone number we send: we do not know
/// whether an address is home or work, and every number a chat channel gives us is a mobile.
const EMAIL_TYPE: &str = "home";
const PHONE_TYPE: &str = "mobile";

/// The `externalId` a Kustomer customer made from `customer` carries: the business's own id for
/// the customer when it set one, else our customer id.
///
/// It is always sent, whatever the mapping says, because the runtime finds a customer it may have
/// created before a crash by it (`GET /v1/customers/externalId={id}`) instead of creating a twin.
pub fn external_id_of(customer: &Customer) -> String {
    customer
        .external_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map_or_else(|| customer.id.as_str().to_owned(), str::to_owned)
}

/// One of our customer's fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    CustomerName,
    CustomerEmail,
    CustomerPhone,
    CustomerWhatsapp,
    FirstName,
    LastName,
    ExternalId,
    Address,
    Notes,
    Tags,
    CustomField(String),
}

const NAMED_SOURCES: [(&str, Source); 10] = [
    ("customerName", Source::CustomerName),
    ("customerEmail", Source::CustomerEmail),
    ("customerPhone", Source::CustomerPhone),
    ("customerWhatsapp", Source::CustomerWhatsapp),
    ("firstName", Source::FirstName),
    ("lastName", Source::LastName),
    ("externalId", Source::ExternalId),
    ("address", Source::Address),
    ("notes", Source::Notes),
    ("tags", Source::Tags),
];

impl Source {
    fn parse(key: &str) -> Option<Self> {
        if let Some(name) = key.strip_prefix(CUSTOM_FIELDS_PREFIX) {
            let valid = !name.is_empty()
                && name.chars().count() <= MAX_CUSTOM_FIELD_KEY_CHARS
                && !name.chars().any(char::is_control);
            return valid.then(|| Self::CustomField(name.to_owned()));
        }
        NAMED_SOURCES
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, source)| source.clone())
    }

    fn key(&self) -> String {
        match self {
            Self::CustomField(name) => format!("{CUSTOM_FIELDS_PREFIX}{name}"),
            named => NAMED_SOURCES
                .iter()
                .find(|(_, source)| source == named)
                .map(|(name, _)| (*name).to_owned())
                .unwrap_or_default(),
        }
    }

    /// Our customer's value of this field; None when it has none.
    fn value(&self, customer: &Customer) -> Option<Value> {
        let text = |value: Option<&str>| {
            value
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(|text| Value::String(text.to_owned()))
        };
        match self {
            Self::CustomerName => text(Some(&customer.name)),
            Self::CustomerEmail => text(customer.email.as_deref()),
            Self::CustomerPhone => text(customer.phone.as_deref()),
            Self::CustomerWhatsapp => text(customer.whatsapp_number.as_deref()),
            Self::FirstName => text(customer.first_name.as_deref()),
            Self::LastName => text(customer.last_name.as_deref()),
            Self::ExternalId => Some(Value::String(external_id_of(customer))),
            Self::Address => text(customer.address.as_deref()),
            Self::Notes => text(customer.notes.as_deref()),
            Self::Tags => (!customer.tags.is_empty())
                .then(|| Value::Array(customer.tags.iter().cloned().map(Value::String).collect())),
            Self::CustomField(name) => customer.custom_fields.get(name).filter(|v| !v.is_null()).cloned(),
        }
    }
}

/// The data type a Kustomer custom attribute's name ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CustomKind {
    Str,
    Txt,
    Num,
    At,
    Bool,
    Url,
}

const CUSTOM_KINDS: [(&str, CustomKind); 6] = [
    ("Str", CustomKind::Str),
    ("Txt", CustomKind::Txt),
    ("Num", CustomKind::Num),
    ("At", CustomKind::At),
    ("Bool", CustomKind::Bool),
    ("Url", CustomKind::Url),
];

/// Where a value lands on a Kustomer customer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Name,
    Email(u8),
    Phone(u8),
    Whatsapp(u8),
    ExternalId,
    Tags,
    /// `name` is the whole attribute name, suffix included (`lifetimeValueNum`).
    Custom {
        name: String,
        kind: CustomKind,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name => f.write_str("attributes.name"),
            Self::Email(at) => write!(f, "attributes.emails[{at}].email"),
            Self::Phone(at) => write!(f, "attributes.phones[{at}].phone"),
            Self::Whatsapp(at) => write!(f, "attributes.whatsapps[{at}].phone"),
            Self::ExternalId => f.write_str("attributes.externalId"),
            Self::Tags => f.write_str("attributes.tags"),
            Self::Custom { name, .. } => write!(f, "attributes.custom.{name}"),
        }
    }
}

impl Target {
    /// Err names `field`, the settings' entry that maps to `path`.
    fn parse(field: &str, path: &str) -> Result<Self, ApiError> {
        let invalid = |message: String| ApiError::invalid(field, message);
        let unknown = || {
            invalid(format!(
                "{field} names no Kustomer customer attribute we can write: use attributes.name, \
                 attributes.emails[N].email, attributes.phones[N].phone, attributes.whatsapps[N].phone, \
                 attributes.externalId, attributes.tags or attributes.custom.<name><Str|Txt|Num|At|Bool|Url>"
            ))
        };
        let Some(rest) = path.trim().strip_prefix("attributes.") else {
            return Err(unknown());
        };
        match rest {
            "name" => return Ok(Self::Name),
            "externalId" => return Ok(Self::ExternalId),
            "tags" => return Ok(Self::Tags),
            _ => {}
        }
        if let Some(name) = rest.strip_prefix("custom.") {
            return custom(field, name);
        }
        let listed = [
            ("emails[", "].email", Self::Email as fn(u8) -> Self),
            ("phones[", "].phone", Self::Phone),
            ("whatsapps[", "].phone", Self::Whatsapp),
        ];
        for (open, close, make) in listed {
            if let Some(index) = rest.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
                return match index.as_bytes() {
                    [digit @ b'0'..=b'9'] => Ok(make(digit - b'0')),
                    digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => Err(invalid(
                        format!("{field}: index {index} is above 9; Kustomer lists are mapped up to [9]"),
                    )),
                    _ => Err(unknown()),
                };
            }
        }
        Err(unknown())
    }
}

fn custom(field: &str, name: &str) -> Result<Target, ApiError> {
    let invalid = |message: String| ApiError::invalid(field, message);
    let Some((base, kind)) = CUSTOM_KINDS
        .iter()
        .find_map(|(suffix, kind)| name.strip_suffix(suffix).map(|base| (base, *kind)))
    else {
        return Err(invalid(format!(
            "{field}: a Kustomer custom attribute's name ends with its type: Str, Txt, Num, At, Bool or Url \
             (lifetimeValueNum)"
        )));
    };
    let valid = base.starts_with(|c: char| c.is_ascii_alphabetic())
        && base.chars().all(|c| c.is_ascii_alphanumeric())
        && name.len() <= MAX_CUSTOM_NAME_CHARS;
    if !valid {
        return Err(invalid(format!(
            "{field}: a Kustomer custom attribute's name is a letter then letters and digits, \
             at most {MAX_CUSTOM_NAME_CHARS} in all, as in Settings › Platform › Klasses"
        )));
    }
    Ok(Target::Custom {
        name: name.to_owned(),
        kind,
    })
}

/// A business's mapping, checked: every entry can be written, no two write the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    /// Sorted by source, so the body and the stored form do not depend on the input's order.
    entries: Vec<(Source, Target)>,
}

impl Default for FieldMapping {
    /// The seed's mapping, plus `externalId → attributes.externalId` (which is always sent).
    fn default() -> Self {
        let mut entries = vec![
            (Source::CustomerEmail, Target::Email(0)),
            (Source::CustomerName, Target::Name),
            (Source::CustomerPhone, Target::Phone(0)),
            (Source::Tags, Target::Tags),
            (Source::ExternalId, Target::ExternalId),
        ];
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Self { entries }
    }
}

impl FieldMapping {
    /// Checks a mapping as it is saved; errors name `settings.field_mapping.<our field>`.
    pub fn parse(input: &Map<String, Value>) -> Result<Self, ApiError> {
        if input.len() > MAX_ENTRIES {
            return Err(ApiError::invalid(
                "settings.field_mapping",
                format!("settings.field_mapping has at most {MAX_ENTRIES} entries"),
            ));
        }
        let mut entries: Vec<(Source, Target)> = Vec::with_capacity(input.len());
        for (key, path) in input {
            let field = format!("settings.field_mapping.{key}");
            let invalid = |message: String| ApiError::invalid(&field, message);
            let source = Source::parse(key).ok_or_else(|| {
                invalid(format!(
                    "{field}: {key} is not one of our customer fields; use customerName, customerEmail, \
                     customerPhone, customerWhatsapp, firstName, lastName, externalId, address, notes, tags \
                     or custom_fields.<key>"
                ))
            })?;
            let path = path
                .as_str()
                .ok_or_else(|| invalid(format!("{field} must be a Kustomer attribute path (a string)")))?;
            let target = Target::parse(&field, path)?;
            fits(&source, &target).map_err(|why| invalid(format!("{field}: {why}")))?;
            if let Some((earlier, _)) = entries.iter().find(|(_, known)| *known == target) {
                return Err(invalid(format!(
                    "{field} maps to {target}, as settings.field_mapping.{} already does; \
                     one attribute takes one of our fields",
                    earlier.key()
                )));
            }
            entries.push((source, target));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { entries })
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.entries
                .iter()
                .map(|(source, target)| (source.key(), Value::String(target.to_string())))
                .collect(),
        )
    }

    /// The Kustomer customer body (the attributes object) for `customer`, and the fields left out
    /// with why: a value that does not fit its target (a custom field that is not a number going to
    /// a `Num` attribute, say) is reported, never sent wrong, and the rest of the body still goes.
    ///
    /// `externalId` is always [`external_id_of`] the customer. List targets are filled in index
    /// order without holes: `emails[1]` alone becomes the only address, as Kustomer refuses nulls.
    pub fn customer_body(&self, customer: &Customer) -> (Map<String, Value>, Vec<String>) {
        let mut body = Map::new();
        let mut left_out = Vec::new();
        let mut emails: Vec<(u8, Value)> = Vec::new();
        let mut phones: Vec<(u8, Value)> = Vec::new();
        let mut whatsapps: Vec<(u8, Value)> = Vec::new();
        let mut custom = Map::new();
        for (source, target) in &self.entries {
            let Some(value) = source.value(customer) else {
                continue;
            };
            let written: Result<(), Unfit> = match target {
                Target::Name => text(&value).map(|name| {
                    body.insert("name".to_owned(), Value::String(name.to_owned()));
                }),
                // Always sent below.
                Target::ExternalId => Ok(()),
                Target::Tags => {
                    body.insert("tags".to_owned(), value.clone());
                    Ok(())
                }
                Target::Email(at) => {
                    email(&value).map(|email| emails.push((*at, entry("email", email, Some(EMAIL_TYPE)))))
                }
                Target::Phone(at) => {
                    phone(&value).map(|phone| phones.push((*at, entry("phone", phone, Some(PHONE_TYPE)))))
                }
                Target::Whatsapp(at) => {
                    phone(&value).map(|phone| whatsapps.push((*at, entry("phone", phone, None))))
                }
                Target::Custom { name, kind } => custom_value(*kind, &value).map(|fitted| {
                    custom.insert(name.clone(), fitted);
                }),
            };
            if let Err(why) = written {
                left_out.push(format!("{} → {target}: {why}", source.key()));
            }
        }
        for (key, mut items) in [("emails", emails), ("phones", phones), ("whatsapps", whatsapps)] {
            if !items.is_empty() {
                items.sort_by_key(|(at, _)| *at);
                body.insert(
                    key.to_owned(),
                    Value::Array(items.into_iter().map(|(_, v)| v).collect()),
                );
            }
        }
        if !custom.is_empty() {
            body.insert("custom".to_owned(), Value::Object(custom));
        }
        body.insert("externalId".to_owned(), Value::String(external_id_of(customer)));
        (body, left_out)
    }
}

/// Whether `source` may be written to `target` at all, decided when the mapping is saved.
fn fits(source: &Source, target: &Target) -> Result<(), &'static str> {
    match (source, target) {
        (Source::Tags, Target::Tags) => Ok(()),
        (Source::Tags, _) => Err("tags is a list: it can only be mapped to attributes.tags"),
        (_, Target::Tags) => Err("attributes.tags takes only our tags"),
        (Source::ExternalId, Target::ExternalId) => Ok(()),
        (_, Target::ExternalId) => Err(
            "attributes.externalId is always our externalId (the customer's external_id, else our id): \
             it is how a customer is found again",
        ),
        (Source::CustomerEmail | Source::CustomField(_), Target::Email(_)) => Ok(()),
        (_, Target::Email(_)) => Err("an email address can only come from customerEmail or a custom field"),
        (
            Source::CustomerPhone | Source::CustomerWhatsapp | Source::CustomField(_),
            Target::Phone(_) | Target::Whatsapp(_),
        ) => Ok(()),
        (_, Target::Phone(_) | Target::Whatsapp(_)) => {
            Err("a phone number can only come from customerPhone, customerWhatsapp or a custom field")
        }
        (_, Target::Name | Target::Custom { .. }) => Ok(()),
    }
}

fn entry(key: &str, value: String, kind: Option<&str>) -> Value {
    let mut item = Map::new();
    if let Some(kind) = kind {
        item.insert("type".to_owned(), Value::String(kind.to_owned()));
    }
    item.insert(key.to_owned(), Value::String(value));
    Value::Object(item)
}

/// What a JSON value is, for a reason that must not repeat the value (it may be personal data).
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Why a value was left out of a customer's body: it does not fit its target. Never the value
/// itself (it may be personal data), only what kind of value it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unfit {
    NotText(&'static str),
    NotEmail,
    NotPhone,
    TooLong,
    NotNumberText,
    NotNumber(&'static str),
    NotBool(&'static str),
    NotDate,
    NotUrl,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotText(kind) => write!(f, "{kind} is not text"),
            Self::NotEmail => f.write_str("not an email address"),
            Self::NotPhone => {
                f.write_str("not a phone number in international form (+<country code><number>)")
            }
            Self::TooLong => write!(f, "longer than Kustomer's {MAX_CUSTOM_TEXT_CHARS} characters"),
            Self::NotNumberText => f.write_str("a string that is not a number"),
            Self::NotNumber(kind) => write!(f, "{kind} is not a number"),
            Self::NotBool(kind) => write!(f, "{kind} is not true or false"),
            Self::NotDate => f.write_str("not a date (YYYY-MM-DD) or an RFC 3339 time"),
            Self::NotUrl => f.write_str("not an http(s) URL"),
        }
    }
}

fn text(value: &Value) -> Result<&str, Unfit> {
    value
        .as_str()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .ok_or(Unfit::NotText(kind_of(value)))
}

fn email(value: &Value) -> Result<String, Unfit> {
    Email::parse(text(value)?)
        .map(|email| email.to_string())
        .map_err(|_| Unfit::NotEmail)
}

fn phone(value: &Value) -> Result<String, Unfit> {
    Phone::parse(text(value)?, None)
        .map(|phone| phone.as_str().to_owned())
        .map_err(|_| Unfit::NotPhone)
}

fn custom_value(kind: CustomKind, value: &Value) -> Result<Value, Unfit> {
    match kind {
        CustomKind::Str | CustomKind::Txt => {
            let text = match value {
                Value::String(text) => text.trim().to_owned(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => return Err(Unfit::NotText(kind_of(other))),
            };
            if text.chars().count() > MAX_CUSTOM_TEXT_CHARS {
                return Err(Unfit::TooLong);
            }
            Ok(Value::String(text))
        }
        CustomKind::Num => match value {
            Value::Number(number) => Ok(Value::Number(number.clone())),
            Value::String(text) => crate::json::number_in_text(text)
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or(Unfit::NotNumberText),
            other => Err(Unfit::NotNumber(kind_of(other))),
        },
        CustomKind::Bool => match value {
            Value::Bool(flag) => Ok(Value::Bool(*flag)),
            Value::String(text) if text.trim().eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(text) if text.trim().eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            other => Err(Unfit::NotBool(kind_of(other))),
        },
        CustomKind::At => {
            let written = text(value)?;
            // A bare date (a birthday) is that day's midnight, UTC.
            let full = if written.len() == 10 {
                format!("{written}T00:00:00Z")
            } else {
                written.to_owned()
            };
            Timestamp::parse_rfc3339(&full)
                .map(|at| Value::String(at.to_rfc3339()))
                .ok_or(Unfit::NotDate)
        }
        CustomKind::Url => {
            let written = text(value)?;
            match url::Url::parse(written) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                    Ok(Value::String(written.to_owned()))
                }
                _ => Err(Unfit::NotUrl),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use serde_json::json;

    fn customer() -> Customer {
        Customer {
            id: CustomerId::generate([7; 16]),
            name: "Ann Smith".to_owned(),
            email: Some("ann@example.com".to_owned()),
            phone: Some("+353871234567".to_owned()),
            whatsapp_number: Some("+353861234567".to_owned()),
            first_name: Some("Ann".to_owned()),
            last_name: Some("Smith".to_owned()),
            address: None,
            notes: Some("Prefers mornings".to_owned()),
            tags: vec!["vip".to_owned()],
            external_id: None,
            external_system: None,
            custom_fields: Map::new(),
            created_at: "2026-11-01T09:00:00.000Z".to_owned(),
            updated_at: "2026-11-01T09:00:00.000Z".to_owned(),
        }
    }

    fn mapping(input: Value) -> FieldMapping {
        let Value::Object(map) = input else {
            panic!("not an object")
        };
        FieldMapping::parse(&map).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_external_id_is_the_businesss_own_else_ours() {
        let mut ann = customer();
        assert_eq!(external_id_of(&ann), ann.id.as_str());
        ann.external_id = Some(" crm-42 ".to_owned());
        assert_eq!(external_id_of(&ann), "crm-42");
        ann.external_id = Some("  ".to_owned());
        assert_eq!(external_id_of(&ann), ann.id.as_str());
    }

    #[test]
    fn the_default_mapping_is_the_seeds_and_writes_its_body() {
        let ann = customer();
        let (body, left_out) = FieldMapping::default().customer_body(&ann);
        assert_eq!(
            Value::Object(body),
            json!({
                "name": "Ann Smith",
                "emails": [{ "type": "home", "email": "ann@example.com" }],
                "phones": [{ "type": "mobile", "phone": "+353871234567" }],
                "tags": ["vip"],
                "externalId": ann.id.as_str(),
            })
        );
        assert!(left_out.is_empty());
        assert_eq!(
            FieldMapping::default().to_json(),
            json!({
                "customerEmail": "attributes.emails[0].email",
                "customerName": "attributes.name",
                "customerPhone": "attributes.phones[0].phone",
                "tags": "attributes.tags",
                "externalId": "attributes.externalId",
            })
        );
    }

    #[test]
    fn custom_fields_are_sent_when_they_fit_and_reported_when_they_do_not() {
        let mut ann = customer();
        ann.custom_fields = json!({
            "plan": "gold",
            "spend": "1250.5",
            "visits": 12,
            "active": true,
            "since": "2024-03-01",
            "site": "https://ann.example.com",
            "age": "forty",
            "vip": "sometimes",
            "born": "yesterday",
            "home": "ann.example.com",
            "bio": "x".repeat(1025),
            "work_email": "ann@work.example.com",
            "empty": null,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        let map = mapping(json!({
            "customerWhatsapp": "attributes.whatsapps[0].phone",
            "custom_fields.plan": "attributes.custom.planStr",
            "custom_fields.spend": "attributes.custom.spendNum",
            "custom_fields.visits": "attributes.custom.visitsNum",
            "custom_fields.active": "attributes.custom.activeBool",
            "custom_fields.since": "attributes.custom.sinceAt",
            "custom_fields.site": "attributes.custom.siteUrl",
            "custom_fields.age": "attributes.custom.ageNum",
            "custom_fields.vip": "attributes.custom.vipBool",
            "custom_fields.born": "attributes.custom.bornAt",
            "custom_fields.home": "attributes.custom.homeUrl",
            "custom_fields.bio": "attributes.custom.bioTxt",
            "custom_fields.work_email": "attributes.emails[1].email",
            "custom_fields.empty": "attributes.custom.emptyStr",
            "custom_fields.missing": "attributes.custom.missingStr",
            "notes": "attributes.custom.notesTxt",
        }));
        let (body, left_out) = map.customer_body(&ann);
        assert_eq!(
            Value::Object(body),
            json!({
                "whatsapps": [{ "phone": "+353861234567" }],
                "emails": [{ "type": "home", "email": "ann@work.example.com" }],
                "custom": {
                    "planStr": "gold",
                    "spendNum": 1250.5,
                    "visitsNum": 12,
                    "activeBool": true,
                    "sinceAt": "2024-03-01T00:00:00.000Z",
                    "siteUrl": "https://ann.example.com",
                    "notesTxt": "Prefers mornings",
                },
                "externalId": ann.id.as_str(),
            })
        );
        let mut left_out = left_out;
        left_out.sort();
        assert_eq!(
            left_out,
            [
                "custom_fields.age → attributes.custom.ageNum: a string that is not a number",
                "custom_fields.bio → attributes.custom.bioTxt: longer than Kustomer's 1024 characters",
                "custom_fields.born → attributes.custom.bornAt: not a date (YYYY-MM-DD) or an RFC 3339 time",
                "custom_fields.home → attributes.custom.homeUrl: not an http(s) URL",
                "custom_fields.vip → attributes.custom.vipBool: a string is not true or false",
            ]
        );
    }

    #[test]
    fn list_targets_are_filled_in_index_order_without_holes() {
        let mut ann = customer();
        ann.custom_fields = json!({ "office": "+442071234567" })
            .as_object()
            .cloned()
            .unwrap_or_default();
        let map = mapping(json!({
            "customerPhone": "attributes.phones[3].phone",
            "custom_fields.office": "attributes.phones[1].phone",
        }));
        let (body, _) = map.customer_body(&ann);
        assert_eq!(
            body.get("phones"),
            Some(&json!([
                { "type": "mobile", "phone": "+442071234567" },
                { "type": "mobile", "phone": "+353871234567" },
            ]))
        );
    }

    #[test]
    fn a_mapping_round_trips_through_its_stored_form() {
        let map = mapping(json!({
            "customerName": "attributes.name",
            "custom_fields.tier": "attributes.custom.tierStr",
            "tags": "attributes.tags",
        }));
        let Value::Object(stored) = map.to_json() else {
            panic!("not an object")
        };
        assert_eq!(FieldMapping::parse(&stored).ok(), Some(map));
    }

    #[test]
    fn bad_mappings_are_refused_with_the_path_of_the_entry_at_fault() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({ "shoeSize": "attributes.name" }),
                "settings.field_mapping.shoeSize",
                "an unknown source",
            ),
            (
                json!({ "custom_fields.": "attributes.name" }),
                "settings.field_mapping.custom_fields.",
                "an empty custom field key",
            ),
            (
                json!({ "customerName": "name" }),
                "settings.field_mapping.customerName",
                "a path without attributes.",
            ),
            (
                json!({ "customerName": "attributes.nickname" }),
                "settings.field_mapping.customerName",
                "an unknown target",
            ),
            (
                json!({ "customerName": 3 }),
                "settings.field_mapping.customerName",
                "a number target",
            ),
            (
                json!({ "customerName": null }),
                "settings.field_mapping.customerName",
                "a null target",
            ),
            (
                json!({ "tags": "attributes.name" }),
                "settings.field_mapping.tags",
                "a list into a scalar",
            ),
            (
                json!({ "tags": "attributes.custom.tagsStr" }),
                "settings.field_mapping.tags",
                "a list into a custom attribute",
            ),
            (
                json!({ "notes": "attributes.tags" }),
                "settings.field_mapping.notes",
                "a scalar into tags",
            ),
            (
                json!({ "customerName": "attributes.externalId" }),
                "settings.field_mapping.customerName",
                "another source into externalId",
            ),
            (
                json!({ "notes": "attributes.emails[0].email" }),
                "settings.field_mapping.notes",
                "notes into an email",
            ),
            (
                json!({ "customerEmail": "attributes.phones[0].phone" }),
                "settings.field_mapping.customerEmail",
                "an email into a phone",
            ),
            (
                json!({ "customerEmail": "attributes.emails[10].email" }),
                "settings.field_mapping.customerEmail",
                "index 10",
            ),
            (
                json!({ "customerEmail": "attributes.emails[x].email" }),
                "settings.field_mapping.customerEmail",
                "a letter index",
            ),
            (
                json!({ "customerEmail": "attributes.emails[].email" }),
                "settings.field_mapping.customerEmail",
                "an empty index",
            ),
            (
                json!({ "customerEmail": "attributes.emails[0]" }),
                "settings.field_mapping.customerEmail",
                "no .email",
            ),
            (
                json!({ "notes": "attributes.custom.notes" }),
                "settings.field_mapping.notes",
                "no type suffix",
            ),
            (
                json!({ "notes": "attributes.custom.Str" }),
                "settings.field_mapping.notes",
                "a suffix alone",
            ),
            (
                json!({ "notes": "attributes.custom.my-notesTxt" }),
                "settings.field_mapping.notes",
                "a hyphen in the name",
            ),
            (
                json!({ "notes": "attributes.custom.1notesTxt" }),
                "settings.field_mapping.notes",
                "a leading digit",
            ),
            (
                json!({ "notes": "attributes.custom.notes.deepTxt" }),
                "settings.field_mapping.notes",
                "a dotted name",
            ),
            (
                json!({ "notes": format!("attributes.custom.{}Txt", "n".repeat(62)) }),
                "settings.field_mapping.notes",
                "a 65-character name",
            ),
            (
                json!({ "customerName": "attributes.name", "firstName": "attributes.name" }),
                "settings.field_mapping.firstName",
                "two sources into one target",
            ),
        ];
        for (input, field, description) in cases {
            let Value::Object(map) = input else {
                panic!("{description}: not an object")
            };
            match FieldMapping::parse(&map) {
                Ok(parsed) => panic!("{description}: accepted as {parsed:?}"),
                Err(error) => assert_eq!(error.body.field.as_deref(), Some(field), "{description}: {error}"),
            }
        }
    }
}
