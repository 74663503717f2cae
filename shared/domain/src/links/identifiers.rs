//! Whether a link's data names customers: a list whose items carry an email address, a phone
//! number, a page-scoped id or a CRM's customer id is one record per person, and taken as general
//! knowledge it would give every customer's record to any asker. Such a link is general only when
//! the business says so; otherwise it is asked for its `holds`, and offered the field found here.
//!
//! Only items of a list are records of people (`customers[3]`, `results[0]`); one object of
//! settings with a contact address (`policies.email`) is the business's own.

use crate::bot::subject::{Holds, HoldsView, KeyKind};
use crate::email::Email;
use crate::links::flatten::Line;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// At most this many fields are listed for a form to choose from.
pub const MAX_FIELDS: usize = 200;

/// Field names (their last segment, lowercase) that hold a person's page-scoped id or a CRM's
/// customer id; an email or a phone is recognised by its value.
const PAGE_SCOPED_NAMES: [&str; 4] = ["facebook_id", "psid", "page_scoped_id", "messenger_id"];
const CUSTOMER_ID_NAMES: [&str; 5] = ["external_id", "customer_id", "crm_id", "contact_id", "client_id"];
/// A phone is a value of a field named so whose digits are a phone number's.
const PHONE_WORDS: [&str; 5] = ["phone", "mobile", "tel", "whatsapp", "msisdn"];

/// One field of the data's records, as a form offers it: its path inside a record, in how many
/// records it was seen, and the kind of customer key its values are, if they are one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Field {
    pub field: String,
    pub records: usize,
    /// email, phone, page_scoped_id or external_id; null when its values are none of these.
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("enum" = ["email", "phone", "page_scoped_id", "external_id", null]))
    )]
    pub key: Option<&'static str>,
}

/// The fields of a page of a link's data, and the field that best ties its records to customers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identified {
    /// Every field of the list items, most common first, at most [`MAX_FIELDS`].
    pub fields: Vec<Field>,
    /// The field a `holds: customers` should name, and its kind; None when no record names a
    /// customer.
    pub proposed: Option<(String, KeyKind)>,
    /// Records (list items) seen.
    pub records: usize,
}

impl Identified {
    /// Whether the data names customers: it may not be general knowledge unless the business
    /// says so.
    pub fn names_customers(&self) -> bool {
        self.proposed.is_some()
    }
}

/// The fields of `lines` (a page of a link's data) and the customer key its records carry.
pub fn identify(lines: &[Line]) -> Identified {
    /// One field as the page uses it.
    #[derive(Default)]
    struct Seen<'a> {
        /// The records it is in.
        records: HashSet<&'a str>,
        /// The kind of key its values are, and the records where they are.
        kind: Option<KeyKind>,
        keyed: HashSet<&'a str>,
    }
    let mut seen: BTreeMap<&str, Seen<'_>> = BTreeMap::new();
    let mut records = HashSet::new();
    for line in lines {
        let record = line.record();
        if !record.ends_with(']') {
            continue;
        }
        let Some(field) = line
            .path
            .strip_prefix(record)
            .map(|rest| rest.trim_start_matches('.'))
        else {
            continue;
        };
        if field.is_empty() {
            continue;
        }
        records.insert(record);
        let entry = seen.entry(field).or_default();
        entry.records.insert(record);
        if let Some(kind) = key_of(field, &line.value) {
            entry.kind = Some(kind);
            entry.keyed.insert(record);
        }
    }
    let mut fields: Vec<(&str, usize, Option<KeyKind>, usize)> = seen
        .into_iter()
        .map(|(field, seen)| (field, seen.records.len(), seen.kind, seen.keyed.len()))
        .collect();
    let rank = |kind: KeyKind| {
        KeyKind::ALL
            .iter()
            .position(|&each| each == kind)
            .unwrap_or(usize::MAX)
    };
    let proposed = fields
        .iter()
        .filter_map(|&(field, _, kind, keyed)| kind.map(|kind| (field, kind, keyed)))
        .min_by_key(|&(field, kind, keyed)| (rank(kind), usize::MAX - keyed, field.len()))
        .map(|(field, kind, _)| (field.to_owned(), kind));
    fields.sort_by_key(|&(field, in_records, _, _)| (usize::MAX - in_records, field.len()));
    Identified {
        fields: fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(field, records, kind, _)| Field {
                field: field.to_owned(),
                records,
                key: kind.map(KeyKind::as_str),
            })
            .collect(),
        proposed,
        records: records.len(),
    }
}

/// What the data of a link whose `holds` is unstated was found to be: only a link seen to name
/// no customer is anyone's knowledge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HoldsCheck {
    /// No run has read all of its data yet: not searched.
    #[default]
    Unchecked,
    /// A whole run saw no record that names a customer: general knowledge.
    Clean,
    /// A record names a customer by this field: not searched until the business says whose the
    /// data is (it is offered `holds: customers` by the field).
    NamesCustomers { field: String, kind: KeyKind },
}

/// A link's check as its view shows it: `{"state": "unchecked" | "general" | "names_customers",
/// "proposed": {holds}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HoldsCheckView {
    /// unchecked: not searched until a fetch has read its data; general: its data names no
    /// customer, so it is general knowledge; names_customers: its records name customers, and it
    /// is not searched until `holds` is set.
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("enum" = ["unchecked", "general", "names_customers"]))
    )]
    pub state: &'static str,
    /// names_customers: the holds to confirm (PATCH the link with it, or with `{"type": "general"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed: Option<HoldsView>,
}

/// What is stored for a clean check (the column holds the proposal's JSON otherwise).
const CLEAN: &str = "clean";

impl HoldsCheck {
    /// The check of `identified` data: it names customers, or not (clean only once all of it is
    /// read: the caller decides).
    pub fn of(identified: &Identified) -> Option<Self> {
        identified
            .proposed
            .clone()
            .map(|(field, kind)| Self::NamesCustomers { field, kind })
    }

    /// As stored: None unchecked, `clean`, or the proposed holds' JSON.
    pub fn stored(&self) -> Option<String> {
        match self {
            Self::Unchecked => None,
            Self::Clean => Some(CLEAN.to_owned()),
            Self::NamesCustomers { .. } => self.proposed().stored(),
        }
    }

    /// Read back from [`HoldsCheck::stored`]; a text it does not know reads as unchecked (not
    /// searched).
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            None => Self::Unchecked,
            Some(CLEAN) => Self::Clean,
            Some(text) => match serde_json::from_str(text)
                .ok()
                .and_then(|value: serde_json::Value| Holds::parse(Some(&value)).ok())
            {
                Some(Holds::Customers { field, kind }) => Self::NamesCustomers { field, kind },
                _ => Self::Unchecked,
            },
        }
    }

    /// The `holds` the business is offered.
    pub fn proposed(&self) -> Holds {
        match self {
            Self::NamesCustomers { field, kind } => Holds::Customers {
                field: field.clone(),
                kind: *kind,
            },
            Self::Unchecked | Self::Clean => Holds::General,
        }
    }

    pub fn view(&self) -> HoldsCheckView {
        let (state, proposed) = match self {
            Self::Unchecked => ("unchecked", None),
            Self::Clean => ("general", None),
            Self::NamesCustomers { .. } => ("names_customers", Some(self.proposed().view())),
        };
        HoldsCheckView { state, proposed }
    }
}

/// The kind of customer key `value` of `field` is, if it is one.
fn key_of(field: &str, value: &str) -> Option<KeyKind> {
    let value = value.trim();
    if value.is_empty() || value == "null" {
        return None;
    }
    let name = field
        .rsplit('.')
        .next()
        .unwrap_or(field)
        .split('[')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if Email::parse(value).is_ok() {
        return Some(KeyKind::Email);
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let phone_shaped = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
    if phone_shaped && (7..=15).contains(&digits) && PHONE_WORDS.iter().any(|word| name.contains(word)) {
        return Some(KeyKind::Phone);
    }
    if PAGE_SCOPED_NAMES.contains(&name.as_str()) {
        return Some(KeyKind::PageScopedId);
    }
    CUSTOMER_ID_NAMES
        .contains(&name.as_str())
        .then_some(KeyKind::ExternalId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::flatten::{Limits, flatten};
    use serde_json::json;

    fn identified(body: serde_json::Value) -> Identified {
        let lines =
            flatten(&body.to_string(), &Limits::default()).unwrap_or_else(|error| panic!("{error:?}"));
        identify(&lines)
    }

    #[test]
    fn the_guides_shopify_and_hubspot_answers_name_customers_by_email() {
        let shopify = identified(json!({ "customers": [
            { "id": 207119551, "email": "bob.norman@mail.example.com", "first_name": "Bob", "phone": "+16136120707",
              "orders_count": 1, "default_address": { "city": "Ottawa" } },
            { "id": 207119552, "email": "ann@example.com", "first_name": "Ann", "phone": null },
        ]}));
        assert_eq!(shopify.proposed, Some(("email".to_owned(), KeyKind::Email)));
        assert_eq!(shopify.records, 2);
        assert!(shopify.names_customers());
        let phone = shopify.fields.iter().find(|field| field.field == "phone");
        assert_eq!(phone.and_then(|field| field.key), Some("phone"));
        let hubspot = identified(json!({ "results": [
            { "id": "512", "properties": { "email": "bh@hubspot.com", "firstname": "Brian", "phone": "(877) 929-0687" } },
        ], "paging": { "next": { "after": "513" } } }));
        assert_eq!(
            hubspot.proposed,
            Some(("properties.email".to_owned(), KeyKind::Email))
        );
    }

    #[test]
    fn a_list_tied_by_page_scoped_or_crm_ids_names_customers_and_the_email_comes_first() {
        let by_psid = identified(json!({ "people": [{ "facebook_id": "3318", "plan": "Gold" }] }));
        assert_eq!(
            by_psid.proposed,
            Some(("facebook_id".to_owned(), KeyKind::PageScopedId))
        );
        let by_id = identified(json!([{ "customer_id": "C-1", "plan": "Gold" }]));
        assert_eq!(
            by_id.proposed,
            Some(("customer_id".to_owned(), KeyKind::ExternalId))
        );
        let both = identified(
            json!({ "people": [{ "facebook_id": "3318", "contact": { "email": "a@b.example" } }] }),
        );
        assert_eq!(both.proposed, Some(("contact.email".to_owned(), KeyKind::Email)));
    }

    #[test]
    fn the_business_own_settings_and_lists_of_things_name_no_customer() {
        for body in [
            json!({ "policies": { "returns": "30 days", "email": "help@shop.example", "phone": "+34 911 222 333" } }),
            json!({ "plans": [{ "name": "Gold", "price": "30 EUR", "code": "G-1" }, { "name": "Silver", "price": "15 EUR" }] }),
            json!({ "stores": [{ "city": "Madrid", "opening": "09:00-18:00", "id": 7 }] }),
        ] {
            let found = identified(body.clone());
            assert!(!found.names_customers(), "{body}: {:?}", found.proposed);
        }
        assert!(identify(&[]).fields.is_empty());
    }

    #[test]
    fn a_check_is_kept_and_read_back_and_only_a_clean_one_is_general() {
        let names = HoldsCheck::NamesCustomers {
            field: "properties.email".to_owned(),
            kind: KeyKind::Email,
        };
        for check in [HoldsCheck::Unchecked, HoldsCheck::Clean, names.clone()] {
            assert_eq!(HoldsCheck::from_stored(check.stored().as_deref()), check);
        }
        assert_eq!(HoldsCheck::from_stored(Some("{")), HoldsCheck::Unchecked);
        assert_eq!(
            serde_json::to_value(names.view()).ok(),
            Some(json!({ "state": "names_customers",
                         "proposed": { "type": "customers", "field": "properties.email", "key": "email" } }))
        );
        assert_eq!(
            serde_json::to_value(HoldsCheck::Clean.view()).ok(),
            Some(json!({ "state": "general" }))
        );
    }
}
