//! Naming customers in lookups: which keys a client may use and how each is normalised, so that
//! a lookup finds what a sync stored (`087 123 4567` finds `+353871234567`).

use crate::customer::Customer;
use crate::email::Email;
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

#[cfg(test)]
mod tests {
    use super::*;

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
