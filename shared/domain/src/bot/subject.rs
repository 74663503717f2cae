//! Whose a piece of CRM data is. A link says what it holds: general knowledge (plans, products,
//! policies), or records about customers, with the field that ties each record to the customer it
//! describes and what kind of key that field holds. Each record of such a link is indexed with its
//! customer's key, its subject (`email:ann@example.com`); a search for a customer asks only for
//! pieces whose subject is one of that customer's keys, or that have none. So another customer's
//! record is never a candidate: the query leaves it out, nothing filters it afterwards.

use crate::links::flatten::Line;
use crate::lookup::{self, CustomerKey};
use crate::phone::Country;

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
    /// The same for every customer: any customer's answer may draw on it.
    General,
    /// One record per customer; `field` is the record's field that holds the customer's key,
    /// written as a path inside the record (`email`, `contact.email`).
    Customers { field: String, kind: KeyKind },
}

/// The subject of one record's lines (all of one record, as `chunk` keeps them; a record is an
/// item of a list, `customers[3]`): the key its `field` holds. None for general knowledge, and for a customer record without a readable key,
/// which is then no one's and is not indexed (a record that cannot be tied to its customer must
/// not become general knowledge).
pub fn subject_of_record(lines: &[Line], holds: &Holds, country: Option<Country>) -> Option<String> {
    let Holds::Customers { field, kind } = holds else {
        return None;
    };
    lines.iter().find_map(|line| {
        let record = line.record();
        let inside = line.path.strip_prefix(record)?.trim_start_matches('.');
        (inside == field).then(|| kind.subject(&line.value, country))?
    })
}

/// A customer's keys, as subjects: the pieces a search for them may return are these customers'
/// and general knowledge.
pub fn subjects_of_customer(
    email: Option<&str>,
    phone: Option<&str>,
    external_id: Option<&str>,
    page_scoped_id: Option<&str>,
) -> Vec<String> {
    [
        (KeyKind::Email, email),
        (KeyKind::Phone, phone),
        (KeyKind::ExternalId, external_id),
        (KeyKind::PageScopedId, page_scoped_id),
    ]
    .into_iter()
    .filter_map(|(kind, value)| kind.subject(value?, None))
    .collect()
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
                Some("2468")
            ),
            [
                "email:ann@example.com",
                "phone:+353871234567",
                "external_id:CRM-77",
                "page_scoped_id:2468"
            ]
        );
        assert_eq!(
            subjects_of_customer(None, Some("not a phone"), Some(" "), None),
            Vec::<String>::new()
        );
    }
}
