//! Whose a piece of CRM data is. A link says what it holds: general knowledge (plans, products,
//! policies), or records about customers, with the field that ties each record to the customer it
//! describes and what kind of key that field holds. Each record of such a link is indexed with its
//! customer's key, its subject (`email:ann@example.com`); a search for a customer asks only for
//! pieces whose subject is one of that customer's keys, or that have none. So another customer's
//! record is never a candidate: the query leaves it out, nothing filters it afterwards.
//!
//! The indexes filter on a subject's [`token`], not on the subject itself: a fixed-size digest,
//! because Vectorize filters on the first 64 bytes of a metadata string only, and an email may be
//! longer; and a token of one word, which the full-text index matches whole.

use crate::bot::PieceKind;
use crate::crypto::sha256_hex;
use crate::error::ApiError;
use crate::links::flatten::Line;
use crate::lookup::{self, CustomerKey};
use crate::phone::Country;
use serde::Serialize;
use serde_json::Value;

/// The token of general knowledge, in both indexes. A subject's token is hex, which never spells it.
pub const GENERAL: &str = "general";
/// A record's field path is at most this long.
const MAX_FIELD_CHARS: usize = 200;

/// What kind of key ties a record to its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Email,
    Phone,
    ExternalId,
    /// The id Messenger gives the customer on the page (a page-scoped id).
    PageScopedId,
}

impl KeyKind {
    pub const ALL: [Self; 4] = [Self::Email, Self::Phone, Self::ExternalId, Self::PageScopedId];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self.in_lookups() {
            Some(kind) => kind.name(),
            None => "page_scoped_id",
        }
    }

    /// The kind as a lookup names it, which normalises it; None for a page-scoped id, which
    /// lookups do not take.
    fn in_lookups(self) -> Option<lookup::KeyKind> {
        match self {
            Self::Email => Some(lookup::KeyKind::Email),
            Self::Phone => Some(lookup::KeyKind::Phone),
            Self::ExternalId => Some(lookup::KeyKind::ExternalId),
            Self::PageScopedId => None,
        }
    }

    /// The key `value` is, as subjects are written and compared: normalised as a lookup
    /// normalises it (an email lowercased, a phone in E.164 with national numbers in `country`,
    /// an id trimmed). None for a value that is no such key.
    pub fn subject(self, value: &str, country: Option<Country>) -> Option<String> {
        let key = match self.in_lookups() {
            Some(kind) => CustomerKey::parse(kind, value, country).ok()?.as_str().to_owned(),
            None => Some(value.trim()).filter(|id| !id.is_empty())?.to_owned(),
        };
        Some(format!("{}:{key}", self.as_str()))
    }
}

/// What a link holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// Not said. The link is general knowledge only once a whole run of it has seen no record
    /// that names a customer (`domain::links::identifiers`); data that names customers is nobody's
    /// knowledge until the business says whose it is.
    Unstated,
    /// The same for every customer, as the business said: any customer's answer may draw on it.
    General,
    /// One record per customer; `field` is the record's field that holds the customer's key,
    /// written as a path inside the record (`email`, `contact.email`).
    Customers { field: String, kind: KeyKind },
}

/// What a link holds, as its view shows it and as it is stored: `{"type": "general"}`, or
/// `{"type": "customers", "field": "contact.email", "key": "email"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HoldsView {
    /// general: the same for every customer (plans, products, policies); customers: one record
    /// per customer, each answered to its own customer only; unstated: not said (general
    /// knowledge once its data is seen to name no customer, `holds_check`).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["general", "customers", "unstated"])))]
    pub kind: &'static str,
    /// customers: the path inside a record of the field that holds the customer's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// customers: what kind of key the field holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("enum" = ["email", "phone", "external_id", "page_scoped_id"]))
    )]
    pub key: Option<&'static str>,
}

impl Holds {
    /// A link's `holds`, as the API takes it; absent (or null) is not said. Every problem is
    /// named by its field (`holds.field`).
    pub fn parse(value: Option<&Value>) -> Result<Self, ApiError> {
        let Some(value) = value.filter(|value| !value.is_null()) else {
            return Ok(Self::Unstated);
        };
        let fields = value.as_object().ok_or_else(|| {
            ApiError::invalid(
                "holds",
                "holds must be an object: {\"type\": \"general\"} or {\"type\": \"customers\", \"field\": \"email\", \"key\": \"email\"}",
            )
        })?;
        let kind = fields.get("type").and_then(Value::as_str).map(str::trim);
        let known: &[&str] = match kind {
            Some("general") => &["type"],
            Some("customers") => &["type", "field", "key"],
            _ => {
                return Err(ApiError::invalid(
                    "holds.type",
                    "holds.type must be general or customers",
                ));
            }
        };
        // A null member is one left out, as everywhere in the API.
        if let Some(name) = fields
            .iter()
            .find(|(name, value)| !value.is_null() && !known.contains(&name.as_str()))
            .map(|(name, _)| name)
        {
            return Err(ApiError::invalid(
                format!("holds.{name}"),
                format!(
                    "{name} is not a field of holds here; its fields are {}",
                    known.join(", ")
                ),
            ));
        }
        if kind == Some("general") {
            return Ok(Self::General);
        }
        let field = fields
            .get("field")
            .filter(|value| !value.is_null())
            .ok_or_else(|| {
                ApiError::invalid(
                    "holds.field",
                    "holds.field is required: the path inside a record of the customer's key (email, contact.email)",
                )
            })?
            .as_str()
            .map(str::trim)
            .ok_or_else(|| ApiError::invalid("holds.field", "holds.field must be a string"))?;
        if field.is_empty() || field.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "holds.field",
                "holds.field must be a path inside a record, on one line (email, contact.email)",
            ));
        }
        if field.chars().count() > MAX_FIELD_CHARS {
            return Err(ApiError::invalid(
                "holds.field",
                format!("holds.field is longer than {MAX_FIELD_CHARS} characters"),
            ));
        }
        let names = || KeyKind::ALL.map(KeyKind::as_str).join(", ");
        let key = fields
            .get("key")
            .filter(|value| !value.is_null())
            .ok_or_else(|| {
                ApiError::invalid("holds.key", format!("holds.key is required: one of {}", names()))
            })?;
        let kind = key
            .as_str()
            .and_then(|name| KeyKind::parse(name.trim()))
            .ok_or_else(|| ApiError::invalid("holds.key", format!("holds.key must be one of {}", names())))?;
        Ok(Self::Customers {
            field: field.to_owned(),
            kind,
        })
    }

    pub fn view(&self) -> HoldsView {
        match self {
            Self::Unstated => HoldsView {
                kind: "unstated",
                field: None,
                key: None,
            },
            Self::General => HoldsView {
                kind: "general",
                field: None,
                key: None,
            },
            Self::Customers { field, kind } => HoldsView {
                kind: "customers",
                field: Some(field.clone()),
                key: Some(kind.as_str()),
            },
        }
    }

    /// As stored: None when not said, else the view as JSON.
    pub fn stored(&self) -> Option<String> {
        match self {
            Self::Unstated => None,
            Self::General | Self::Customers { .. } => serde_json::to_string(&self.view()).ok(),
        }
    }

    /// Read back from [`Holds::stored`]; None when the stored text is not one.
    pub fn from_stored(stored: Option<&str>) -> Option<Self> {
        match stored {
            None => Some(Self::Unstated),
            Some(text) => {
                let value: Value = serde_json::from_str(text).ok()?;
                Self::parse(Some(&value)).ok()
            }
        }
    }
}

/// The subject a line gives its record: the key it holds when it is the record's `field`.
fn subject_of_line(line: &Line, field: &str, kind: KeyKind, country: Option<Country>) -> Option<String> {
    let record = line.record();
    let inside = line.path.strip_prefix(record)?.trim_start_matches('.');
    (inside == field).then(|| kind.subject(&line.value, country))?
}

/// The subject of one record's lines (all of one record, as `chunk` keeps them; a record is an
/// item of a list, `customers[3]`): the key its `field` holds. None for general knowledge, and for a customer record without a readable key,
/// which is then no one's and is not indexed (a record that cannot be tied to its customer must
/// not become general knowledge).
pub fn subject_of_record(lines: &[Line], holds: &Holds, country: Option<Country>) -> Option<String> {
    let Holds::Customers { field, kind } = holds else {
        return None;
    };
    lines
        .iter()
        .find_map(|line| subject_of_line(line, field, *kind, country))
}

/// The subject of each record of `lines` (of any number of records, in any order), by record
/// (`customers[3]`): what [`subject_of_record`] finds over all the lines of each; a record without
/// a readable key maps to None. Empty for general knowledge.
pub fn subjects_of_records<'a>(
    lines: &'a [Line],
    holds: &Holds,
    country: Option<Country>,
) -> std::collections::HashMap<&'a str, Option<String>> {
    let mut subjects = std::collections::HashMap::new();
    let Holds::Customers { field, kind } = holds else {
        return subjects;
    };
    for line in lines {
        let subject = subjects.entry(line.record()).or_insert(None);
        if subject.is_none() {
            *subject = subject_of_line(line, field, *kind, country);
        }
    }
    subjects
}

/// A customer's keys, as subjects: the pieces a search for them may return are these customers'
/// and general knowledge. A phone in national form is read in `country` (the business's default),
/// as records' phones are.
pub fn subjects_of_customer(
    email: Option<&str>,
    phone: Option<&str>,
    external_id: Option<&str>,
    page_scoped_id: Option<&str>,
    country: Option<Country>,
) -> Vec<String> {
    [
        (KeyKind::Email, email),
        (KeyKind::Phone, phone),
        (KeyKind::ExternalId, external_id),
        (KeyKind::PageScopedId, page_scoped_id),
    ]
    .into_iter()
    .filter_map(|(kind, value)| kind.subject(value?, country))
    .collect()
}

/// The token a piece is indexed and filtered by: [`GENERAL`] for general knowledge, else the first
/// 16 bytes of the SHA-256 of its subject as 32 hex digits (one word for the full-text index, and
/// well within the 64 bytes of a metadata string Vectorize filters on).
pub fn token(subject: Option<&str>) -> String {
    match subject {
        None => GENERAL.to_owned(),
        Some(subject) => sha256_hex(subject.as_bytes())[..32].to_owned(),
    }
}

/// Whether a piece indexed with `token` is someone's or general knowledge; a piece indexed
/// before subjects (no token) is general.
pub fn kind_of_token(token: Option<&str>) -> PieceKind {
    match token {
        Some(token) if token != GENERAL => PieceKind::Personal,
        _ => PieceKind::General,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pairs: &[(&str, &str)]) -> Vec<Line> {
        pairs
            .iter()
            .map(|(path, value)| Line {
                path: (*path).to_owned(),
                value: (*value).to_owned(),
            })
            .collect()
    }

    fn customers(field: &str, kind: KeyKind) -> Holds {
        Holds::Customers {
            field: field.to_owned(),
            kind,
        }
    }

    #[test]
    fn a_record_is_its_customers_by_the_field_the_link_names() {
        let record = lines(&[
            ("customers[3].name", "Ann Lee"),
            ("customers[3].contact.email", " Ann.Lee@Example.com "),
            ("customers[3].contact.phone", "087 123 4567"),
            ("customers[3].id", "CRM-77"),
            ("customers[3].orders[0].email", "orders@shop.example"),
        ]);
        let ireland = Country::parse("IE").ok();
        let cases = [
            (
                customers("contact.email", KeyKind::Email),
                Some("email:ann.lee@example.com"),
            ),
            (
                customers("contact.phone", KeyKind::Phone),
                Some("phone:+353871234567"),
            ),
            (customers("id", KeyKind::ExternalId), Some("external_id:CRM-77")),
            (customers("email", KeyKind::Email), None),
            (customers("name", KeyKind::Email), None),
            (Holds::General, None),
        ];
        for (holds, subject) in cases {
            assert_eq!(
                subject_of_record(&record, &holds, ireland).as_deref(),
                subject,
                "{holds:?}"
            );
        }
    }

    #[test]
    fn a_customers_subjects_are_their_keys_as_records_write_them() {
        assert_eq!(
            subjects_of_customer(
                Some("ANN@example.com"),
                Some("+353871234567"),
                Some(" CRM-77 "),
                Some("2468"),
                None
            ),
            [
                "email:ann@example.com",
                "phone:+353871234567",
                "external_id:CRM-77",
                "page_scoped_id:2468"
            ]
        );
        assert_eq!(
            subjects_of_customer(None, Some("not a phone"), Some(" "), None, None),
            Vec::<String>::new()
        );
        assert_eq!(
            subjects_of_customer(None, Some("087 123 4567"), None, None, Country::parse("IE").ok()),
            ["phone:+353871234567"],
            "a phone in national form, read in the business's country as records' phones are"
        );
    }

    #[test]
    fn each_record_of_many_gets_the_subject_its_own_lines_give_it() {
        let lines = lines(&[
            ("customers[0].name", "Ann"),
            ("customers[1].email", "BOB@example.com"),
            ("customers[0].email", "ann@example.com"),
            ("customers[2].name", "Nobody"),
        ]);
        let subjects = subjects_of_records(&lines, &customers("email", KeyKind::Email), None);
        assert_eq!(subjects.len(), 3);
        assert_eq!(
            subjects["customers[0]"].as_deref(),
            Some("email:ann@example.com"),
            "found on a later line"
        );
        assert_eq!(subjects["customers[1]"].as_deref(), Some("email:bob@example.com"));
        assert_eq!(subjects["customers[2]"], None, "no key: no one's");
        assert!(subjects_of_records(&lines, &Holds::General, None).is_empty());
    }

    #[test]
    fn a_token_is_a_fixed_size_digest_of_the_subject_and_general_is_its_own() {
        let ann = token(Some("email:ann@example.com"));
        assert_eq!(ann.len(), 32);
        assert!(
            ann.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(ann, sha256_hex(b"email:ann@example.com")[..32]);
        assert_ne!(ann, token(Some("email:bob@example.com")));
        let long = format!("email:{}@example.com", "a".repeat(200));
        assert_eq!(
            token(Some(&long)).len(),
            32,
            "under Vectorize's 64 bytes whatever the key"
        );
        assert_eq!(token(None), GENERAL);
        assert_eq!(kind_of_token(Some(&ann)), PieceKind::Personal);
        assert_eq!(kind_of_token(Some(GENERAL)), PieceKind::General);
        assert_eq!(kind_of_token(None), PieceKind::General);
    }

    #[test]
    fn holds_is_unstated_by_default_general_when_said_or_names_a_field_and_a_key() {
        use serde_json::json;
        assert_eq!(Holds::parse(None).ok(), Some(Holds::Unstated));
        assert_eq!(Holds::parse(Some(&Value::Null)).ok(), Some(Holds::Unstated));
        assert_eq!(
            Holds::parse(Some(&json!({ "type": "general", "field": null, "key": null }))).ok(),
            Some(Holds::General),
            "null is left out"
        );
        assert_eq!(
            Holds::parse(Some(&json!({ "type": "general" }))).ok(),
            Some(Holds::General)
        );
        let customers = Holds::parse(Some(
            &json!({ "type": "customers", "field": " contact.email ", "key": "email" }),
        ));
        assert_eq!(
            customers.as_ref().ok(),
            Some(&self::customers("contact.email", KeyKind::Email))
        );
        let Ok(customers) = customers else {
            panic!("parsed")
        };
        assert_eq!(
            serde_json::to_value(customers.view()).ok(),
            Some(json!({ "type": "customers", "field": "contact.email", "key": "email" }))
        );
        assert_eq!(
            serde_json::to_value(Holds::General.view()).ok(),
            Some(json!({ "type": "general" }))
        );
        assert_eq!(
            Holds::from_stored(customers.stored().as_deref()),
            Some(customers.clone())
        );
        assert_eq!(Holds::Unstated.stored(), None);
        assert_eq!(Holds::from_stored(None), Some(Holds::Unstated));
        assert_eq!(
            Holds::from_stored(Holds::General.stored().as_deref()),
            Some(Holds::General),
            "general knowledge the business said so of is kept as said"
        );
        assert_eq!(
            serde_json::to_value(Holds::Unstated.view()).ok(),
            Some(json!({ "type": "unstated" }))
        );
        assert_eq!(Holds::from_stored(Some("{")), None);
        for key in KeyKind::ALL {
            let holds = Holds::parse(Some(
                &json!({ "type": "customers", "field": "id", "key": key.as_str() }),
            ));
            assert_eq!(holds.ok(), Some(self::customers("id", key)));
        }
    }

    #[test]
    fn a_bad_holds_is_refused_naming_its_field() {
        use serde_json::json;
        let long = "a".repeat(MAX_FIELD_CHARS + 1);
        let cases = [
            (json!("customers"), "holds", "an object"),
            (json!({}), "holds.type", "no type"),
            (json!({ "type": "people" }), "holds.type", "an unknown type"),
            (json!({ "type": 7 }), "holds.type", "a type that is no string"),
            (
                json!({ "type": "general", "field": "email" }),
                "holds.field",
                "a field on general knowledge",
            ),
            (
                json!({ "type": "customers", "key": "email" }),
                "holds.field",
                "no field",
            ),
            (
                json!({ "type": "customers", "field": " ", "key": "email" }),
                "holds.field",
                "an empty field",
            ),
            (
                json!({ "type": "customers", "field": 3, "key": "email" }),
                "holds.field",
                "a field that is no string",
            ),
            (
                json!({ "type": "customers", "field": "a\nb", "key": "email" }),
                "holds.field",
                "a field on two lines",
            ),
            (
                json!({ "type": "customers", "field": long, "key": "email" }),
                "holds.field",
                "an over-long field",
            ),
            (
                json!({ "type": "customers", "field": "email" }),
                "holds.key",
                "no key",
            ),
            (
                json!({ "type": "customers", "field": "email", "key": "name" }),
                "holds.key",
                "an unknown key",
            ),
            (
                json!({ "type": "customers", "field": "email", "key": "email", "match": "exact" }),
                "holds.match",
                "an extra name",
            ),
        ];
        for (holds, field, what) in cases {
            let error = Holds::parse(Some(&holds)).err();
            assert_eq!(
                error.and_then(|error| error.body.field).as_deref(),
                Some(field),
                "{what}: {holds}"
            );
        }
    }
}
