//! The business a request or a task acts for. Every repository function of a business's rows
//! takes it, and the database's door for those statements (`edge::db::Db::scoped`) binds its
//! business id itself: no statement of one business is made without one.

use crate::error::ApiError;
use crate::ids::BusinessId;
use crate::phone::Country;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub business_id: BusinessId,
    /// Completes phone numbers written in national form (`087 123 4567`).
    pub default_country: Option<Country>,
}

impl Tenant {
    /// The tenant of a stored business: its id and its `default_country` as stored. This is the
    /// one way a tenant is made from stored data, so every reader agrees:
    /// - a business id that is not one is a corrupt row (our fault, an internal error);
    /// - a country that is not a country (it was validated when written, so only a damaged row
    ///   has one) is read as none: the business keeps working, and phones must then be written
    ///   internationally, which the API says clearly when one is not.
    pub fn from_stored(business_id: &str, default_country: Option<&str>) -> Result<Self, ApiError> {
        let business_id = BusinessId::parse(business_id).ok_or_else(|| {
            ApiError::internal(
                "reading a business",
                format!("stored id {business_id:?} is not valid"),
            )
        })?;
        Ok(Self {
            business_id,
            default_country: default_country.and_then(|code| Country::parse(code).ok()),
        })
    }

    /// The tenant of work done for a business outside a request (a queue task, the sweep):
    /// such work never reads phone numbers in national form, so it needs no country.
    pub fn for_background(business_id: BusinessId) -> Self {
        Self {
            business_id,
            default_country: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

    #[test]
    fn a_stored_business_becomes_a_tenant_whatever_its_country() {
        let ireland = Tenant::from_stored(ID, Some("IE"));
        assert_eq!(
            ireland
                .ok()
                .and_then(|t| t.default_country)
                .map(|c| c.code().to_owned()),
            Some("IE".to_owned())
        );
        let damaged = Tenant::from_stored(ID, Some("Atlantis"));
        assert_eq!(
            damaged.map(|t| t.default_country),
            Ok(None),
            "a damaged country is none"
        );
        assert_eq!(Tenant::from_stored(ID, None).map(|t| t.default_country), Ok(None));
    }

    #[test]
    fn a_stored_business_id_that_is_no_id_is_our_fault() {
        let error = Tenant::from_stored("nope", None).err();
        assert_eq!(error.map(|e| e.status()), Some(500));
    }
}
