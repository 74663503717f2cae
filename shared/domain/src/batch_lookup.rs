//! `POST /api-customers-batch-lookup`: its key lists, their normalisation, and the answer's
//! bookkeeping (which keys matched nothing, which could not be a key at all).

use crate::customer::Customer;
use crate::error::{ApiError, ErrorCode};
use crate::lookup::{CustomerKey, KeyKind};
use crate::phone::Country;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most keys, over all lists, one request may carry.
pub const MAX_KEYS: usize = 1000;

/// Any mix of keys, at most 1000 in all. An entry that cannot be a key of its list is reported,
/// not refused: the others are looked up.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LookupIn {
    /// Our customer ids.
    #[serde(default)]
    ids: Vec<Value>,
    /// The CRM's ids (a number is read as its digits).
    #[serde(default)]
    external_ids: Vec<Value>,
    #[serde(default)]
    emails: Vec<Value>,
    /// Normalised as on write (E.164, or national with the business's default country).
    #[serde(default)]
    phones: Vec<Value>,
}

/// A key as the client wrote it, and its normalised form.
struct Requested {
    list: &'static str,
    given: String,
    key: CustomerKey,
}

#[derive(Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct InvalidKey {
    field: String,
    value: Value,
    message: String,
}

pub struct Lookup {
    requested: Vec<Requested>,
    invalid: Vec<InvalidKey>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct NotFound {
    ids: Vec<String>,
    external_ids: Vec<String>,
    emails: Vec<String>,
    phones: Vec<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LookupOut {
    /// Each customer once, however many of the keys name it.
    customers: Vec<Customer>,
    /// The keys, as given, that named no customer.
    not_found: NotFound,
    /// Entries that cannot be a key of their list (a malformed email, say).
    invalid: Vec<InvalidKey>,
}

pub fn parse(body: LookupIn, country: Option<Country>) -> Result<Lookup, ApiError> {
    let lists = [
        ("ids", KeyKind::Id, body.ids),
        ("external_ids", KeyKind::ExternalId, body.external_ids),
        ("emails", KeyKind::Email, body.emails),
        ("phones", KeyKind::Phone, body.phones),
    ];
    let total: usize = lists.iter().map(|(_, _, values)| values.len()).sum();
    if total == 0 {
        return Err(ApiError::invalid(
            "",
            "give at least one key in ids, external_ids, emails or phones",
        ));
    }
    if total > MAX_KEYS {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("at most {MAX_KEYS} keys per request, got {total}"),
        ));
    }
    let mut lookup = Lookup {
        requested: Vec::with_capacity(total),
        invalid: Vec::new(),
    };
    for (list, kind, values) in lists {
        for (at, value) in values.into_iter().enumerate() {
            let given = match &value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) if kind == KeyKind::ExternalId => Some(number.to_string()),
                _ => None,
            };
            let parsed = given
                .ok_or_else(|| format!("{list} must contain strings"))
                .and_then(|given| CustomerKey::parse(kind, &given, country).map(|key| (given, key)));
            match parsed {
                Ok((given, key)) => lookup.requested.push(Requested { list, given, key }),
                Err(message) => lookup.invalid.push(InvalidKey {
                    field: format!("{list}[{at}]"),
                    value,
                    message,
                }),
            }
        }
    }
    Ok(lookup)
}

impl Lookup {
    pub fn keys(&self) -> Vec<CustomerKey> {
        self.requested
            .iter()
            .map(|requested| requested.key.clone())
            .collect()
    }

    pub fn answer(self, customers: Vec<Customer>) -> LookupOut {
        let mut not_found = NotFound::default();
        for requested in self.requested {
            if customers.iter().any(|customer| requested.key.matches(customer)) {
                continue;
            }
            let list = match requested.list {
                "ids" => &mut not_found.ids,
                "external_ids" => &mut not_found.external_ids,
                "emails" => &mut not_found.emails,
                _ => &mut not_found.phones,
            };
            list.push(requested.given);
        }
        LookupOut {
            customers,
            not_found,
            invalid: self.invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use serde_json::{Map, json};

    fn customer(external_id: &str, email: &str, phone: &str) -> Customer {
        Customer {
            id: CustomerId::generate([9; 16]),
            name: "Joe".into(),
            email: Some(email.into()),
            phone: Some(phone.into()),
            whatsapp_number: None,
            first_name: None,
            last_name: None,
            address: None,
            notes: None,
            tags: vec![],
            external_id: Some(external_id.into()),
            external_system: None,
            custom_fields: Map::new(),
            created_at: "2025-11-04T09:00:00.000Z".into(),
            updated_at: "2025-11-04T09:00:00.000Z".into(),
        }
    }

    fn body(value: Value) -> LookupIn {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn keys_that_match_nothing_are_reported_as_given() {
        let lookup = parse(
            body(
                json!({"external_ids": ["CRM-1", 42], "emails": ["JOE@example.com", "nobody@example.com"], "phones": ["087 123 4567"]}),
            ),
            Country::parse("IE").ok(),
        );
        let Ok(lookup) = lookup else {
            panic!("valid request")
        };
        let answer = lookup.answer(vec![customer("CRM-1", "joe@example.com", "+353871234567")]);
        assert_eq!(answer.customers.len(), 1);
        assert_eq!(
            answer.not_found,
            NotFound {
                external_ids: vec!["42".into()],
                emails: vec!["nobody@example.com".into()],
                ..NotFound::default()
            }
        );
        assert!(answer.invalid.is_empty());
    }

    #[test]
    fn entries_that_cannot_be_keys_are_listed_with_their_position() {
        let Ok(lookup) = parse(
            body(json!({"emails": ["ok@example.com", "nope", 7], "ids": ["x"]})),
            None,
        ) else {
            panic!("valid request")
        };
        let fields: Vec<String> = lookup.invalid.iter().map(|i| i.field.clone()).collect();
        assert_eq!(fields, vec!["ids[0]", "emails[1]", "emails[2]"]);
        assert_eq!(lookup.keys().len(), 1);
    }

    #[test]
    fn empty_and_oversized_requests_are_refused() {
        assert_eq!(parse(body(json!({})), None).err().map(|e| e.status()), Some(422));
        let many: Vec<String> = (0..=MAX_KEYS).map(|n| format!("CRM-{n}")).collect();
        let refused = parse(body(json!({"external_ids": many})), None).err();
        assert_eq!(refused.map(|e| e.code()), Some(ErrorCode::BatchTooLarge));
    }
}
