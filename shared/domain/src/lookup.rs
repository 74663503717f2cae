//! Naming customers in lookups: which keys a client may use and how each is normalised, so that
//! a lookup finds what a sync stored (`087 123 4567` finds `+353871234567`).

use crate::customer::Customer;
use crate::email::Email;
use crate::error::ApiError;
use crate::ids::CustomerId;
use crate::phone::{Country, Phone};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Id,
    ExternalId,
    Email,
    Phone,
}

impl KeyKind {
    pub const ALL: [KeyKind; 4] = [KeyKind::Id, KeyKind::ExternalId, KeyKind::Email, KeyKind::Phone];

    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::ExternalId => "external_id",
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }
}

/// One way to name a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerKey {
    Id(CustomerId),
    ExternalId(String),
    Email(Email),
    Phone(Phone),
}

impl CustomerKey {
    /// Normalises `value` as a key of `kind`. An id that is not a UUID cannot exist, so it is
    /// reported as such rather than looked up.
    pub fn parse(kind: KeyKind, value: &str, country: Option<Country>) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{} is empty", kind.name()));
        }
        match kind {
            KeyKind::Id => CustomerId::parse(value)
                .map(Self::Id)
                .ok_or_else(|| "id is not a customer id (a UUID)".to_owned()),
            KeyKind::ExternalId => Ok(Self::ExternalId(value.to_owned())),
            KeyKind::Email => Email::parse(value).map(Self::Email).map_err(|e| e.to_string()),
            KeyKind::Phone => Phone::parse(value, country)
                .map(Self::Phone)
                .map_err(|e| e.to_string()),
        }
    }

    pub fn kind(&self) -> KeyKind {
        match self {
            Self::Id(_) => KeyKind::Id,
            Self::ExternalId(_) => KeyKind::ExternalId,
            Self::Email(_) => KeyKind::Email,
            Self::Phone(_) => KeyKind::Phone,
        }
    }

    /// The stored form, as compared in the database.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::ExternalId(id) => id,
            Self::Email(email) => email.as_str(),
            Self::Phone(phone) => phone.as_str(),
        }
    }

    pub fn matches(&self, customer: &Customer) -> bool {
        let stored = match self {
            Self::Id(_) => Some(customer.id.as_str()),
            Self::ExternalId(_) => customer.external_id.as_deref(),
            Self::Email(_) => customer.email.as_deref(),
            Self::Phone(_) => customer.phone.as_deref(),
        };
        stored == Some(self.as_str())
    }
}

/// The single key of `GET /api-customers?id=|external_id=|email=|phone=`.
pub fn key_from_query(pairs: &[(String, String)], country: Option<Country>) -> Result<CustomerKey, ApiError> {
    let given: Vec<(KeyKind, &str)> = KeyKind::ALL
        .into_iter()
        .filter_map(|kind| {
            pairs
                .iter()
                .find(|(name, _)| name == kind.name())
                .map(|(_, value)| (kind, value.as_str()))
        })
        .collect();
    let [(kind, value)] = given.as_slice() else {
        return Err(ApiError::malformed(
            "give exactly one of the query parameters id, external_id, email, phone",
        ));
    };
    // In a query string an unencoded '+' arrives as a space: `?phone=+353...` means `%2B353...`.
    let repaired;
    let value = match (kind, value.strip_prefix(' ')) {
        (KeyKind::Phone, Some(rest)) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            repaired = format!("+{rest}");
            repaired.as_str()
        }
        _ => value,
    };
    CustomerKey::parse(*kind, value, country).map_err(|message| ApiError::invalid(kind.name(), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_query_names_exactly_one_key() {
        let ok = key_from_query(&pairs(&[("external_id", "CRM-1")]), None);
        assert_eq!(ok, Ok(CustomerKey::ExternalId("CRM-1".into())));
        for (query, description) in [
            (pairs(&[]), "no key"),
            (pairs(&[("external_id", "a"), ("email", "a@b.co")]), "two keys"),
            (pairs(&[("name", "Joe")]), "an unsupported key"),
        ] {
            assert_eq!(
                key_from_query(&query, None).map_err(|e| e.status()),
                Err(400),
                "{description}"
            );
        }
    }

    #[test]
    fn a_phone_whose_plus_became_a_space_in_the_query_string_is_repaired() {
        let key = key_from_query(&pairs(&[("phone", " 353871234567")]), None);
        assert_eq!(key.map(|k| k.as_str().to_owned()), Ok("+353871234567".to_owned()));
    }

    #[test]
    fn keys_are_normalised_like_stored_customers() {
        let ie = Country::parse("IE").ok();
        let phone = CustomerKey::parse(KeyKind::Phone, "087 123 4567", ie);
        assert_eq!(
            phone.map(|k| k.as_str().to_owned()),
            Ok("+353871234567".to_owned())
        );
        let email = CustomerKey::parse(KeyKind::Email, "John@Example.COM", None);
        assert_eq!(
            email.map(|k| k.as_str().to_owned()),
            Ok("john@example.com".to_owned())
        );
        assert!(CustomerKey::parse(KeyKind::Id, "1 OR 1=1", None).is_err());
        assert!(CustomerKey::parse(KeyKind::Email, "  ", None).is_err());
    }
}
