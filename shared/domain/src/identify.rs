//! How a request names its customer: the one rule behind `/api-customers`,
//! `/api-conversations-by-customer`, `/api-send-message` and `/api-sso-generate-token`.
//!
//! Exactly one name is given. `customer_id` is our id or, failing that, the CRM's id (the seed's
//! clients pass whichever they hold as `customer_id`); `id` is our id only; `external_id` is the
//! CRM's id; `email` and `phone` are normalised as stored (`087 123 4567` finds
//! `+353871234567` where the business is Irish). Every way of getting it wrong is a 422 that
//! names the field; a name that matches no customer of the business is a 404 (see
//! `edge::db::customers::first_named`).

use crate::email::Email;
use crate::error::ApiError;
use crate::ids::CustomerId;
use crate::lookup::CustomerKey;
use crate::phone::{Country, Phone};

/// A way a request may name its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    /// Our id, or failing that the CRM's.
    CustomerId,
    /// Our id only.
    Id,
    ExternalId,
    Email,
    Phone,
}

impl Name {
    pub fn field(self) -> &'static str {
        match self {
            Self::CustomerId => "customer_id",
            Self::Id => "id",
            Self::ExternalId => "external_id",
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }
}

/// The customer a request names: the keys to try, in order (the first that matches wins), and
/// how the request named them, for the 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRef {
    pub keys: Vec<CustomerKey>,
    pub named_by: String,
}

/// The customer named by exactly one of `given` (each name the endpoint accepts, with the value
/// the request gave, if any; blank values count as not given).
pub fn identify(given: &[(Name, Option<&str>)], country: Option<Country>) -> Result<CustomerRef, ApiError> {
    let accepted: Vec<&str> = given.iter().map(|(name, _)| name.field()).collect();
    let present: Vec<(Name, &str)> = given
        .iter()
        .filter_map(|(name, value)| Some((*name, value.map(str::trim).filter(|v| !v.is_empty())?)))
        .collect();
    let first = given.first().map_or("customer_id", |(name, _)| name.field());
    let (name, value) = match present.as_slice() {
        [one] => *one,
        [] => {
            return Err(ApiError::invalid(
                first,
                format!("name the customer with one of {}", accepted.join(", ")),
            ));
        }
        [(first_given, _), _, ..] => {
            return Err(ApiError::invalid(
                first_given.field(),
                format!("name the customer once: give only one of {}", accepted.join(", ")),
            ));
        }
    };
    let invalid = |message: String| ApiError::invalid(name.field(), message);
    let keys = match name {
        Name::CustomerId => match CustomerId::parse(value) {
            Some(id) => vec![CustomerKey::Id(id), CustomerKey::ExternalId(value.to_owned())],
            None => vec![CustomerKey::ExternalId(value.to_owned())],
        },
        Name::Id => {
            vec![CustomerKey::Id(CustomerId::parse(value).ok_or_else(|| {
                invalid("id is not a customer id (a UUID)".to_owned())
            })?)]
        }
        Name::ExternalId => vec![CustomerKey::ExternalId(value.to_owned())],
        Name::Email => vec![CustomerKey::Email(
            Email::parse(value).map_err(|error| invalid(format!("email: {error}")))?,
        )],
        Name::Phone => vec![CustomerKey::Phone(
            Phone::parse(value, country).map_err(|error| invalid(format!("phone: {error}")))?,
        )],
    };
    Ok(CustomerRef {
        keys,
        named_by: format!("{} {value}", name.field()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

    fn ireland() -> Option<Country> {
        Country::parse("IE").ok()
    }

    #[test]
    fn customer_id_is_our_id_or_else_the_crms() {
        let ours = identify(&[(Name::CustomerId, Some(ID)), (Name::Email, None)], None);
        assert_eq!(
            ours.map(|r| r.keys.len()),
            Ok(2),
            "a UUID is tried as ours, then as the CRM's"
        );
        let theirs = identify(&[(Name::CustomerId, Some(" CRM-1 "))], None);
        assert_eq!(
            theirs,
            Ok(CustomerRef {
                keys: vec![CustomerKey::ExternalId("CRM-1".into())],
                named_by: "customer_id CRM-1".into()
            })
        );
    }

    #[test]
    fn keys_are_normalised_as_stored() {
        let phone = identify(&[(Name::Phone, Some("087 123 4567"))], ireland());
        assert_eq!(
            phone.map(|r| r.keys[0].as_str().to_owned()),
            Ok("+353871234567".to_owned())
        );
        let email = identify(&[(Name::Email, Some("John@Example.COM"))], None);
        assert_eq!(
            email.map(|r| r.keys[0].as_str().to_owned()),
            Ok("john@example.com".to_owned())
        );
    }

    #[test]
    fn every_way_of_naming_wrong_is_a_422_on_its_field() {
        type Case<'a> = (&'a [(Name, Option<&'a str>)], &'a str, &'a str);
        let cases: [Case; 6] = [
            (
                &[(Name::CustomerId, None), (Name::ExternalId, None)],
                "customer_id",
                "nothing named",
            ),
            (
                &[(Name::CustomerId, Some("  ")), (Name::ExternalId, None)],
                "customer_id",
                "only blanks",
            ),
            (
                &[(Name::Id, Some("a")), (Name::Email, Some("a@b.co"))],
                "id",
                "two names",
            ),
            (&[(Name::Id, Some("1 OR 1=1"))], "id", "an id that is no id"),
            (&[(Name::Email, Some("not an email"))], "email", "a bad email"),
            (&[(Name::Phone, Some("12"))], "phone", "a bad phone"),
        ];
        for (given, field, description) in cases {
            let error = identify(given, None).err();
            assert_eq!(error.as_ref().map(ApiError::status), Some(422), "{description}");
            assert_eq!(
                error.and_then(|e| e.body.field),
                Some(field.to_owned()),
                "{description}"
            );
        }
    }
}
