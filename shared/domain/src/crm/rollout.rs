//! A connector's rollout: the share of the business's customers it works for. The production
//! checklist's rollback plan ends with re-enabling the integration "for a small group first"; a
//! connector at 10% works for one customer in ten, the same ones for as long as it stays at 10%,
//! and widening it to 25% keeps them in and adds others.
//!
//! Who is in is decided by a stable hash of the connector and the customer, so each connector has
//! its own group (a business rolling out two CRMs does not try both on the same people), and no
//! list is stored: the decision is the same in every worker, today and next month.

use crate::error::ApiError;
use crate::ids::{ConnectorId, CustomerId};
use sha2::{Digest, Sha256};

/// The share of customers a connector works for, in percent: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout(u8);

impl Rollout {
    /// Every customer: a connector's rollout unless it is narrowed.
    pub const EVERYONE: Self = Self(100);

    /// The rollout of `percent` (1 to 100); anything else is refused as the field `field`.
    pub fn parse(field: &str, percent: i64) -> Result<Self, ApiError> {
        Self::within(percent).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!(
                    "{field} is the share of customers the connector works for, 1 to 100; \
                         to stop it for everyone, set enabled to false"
                ),
            )
        })
    }

    /// A stored rollout; a value out of range (the table's CHECK forbids one) is everyone.
    pub fn from_stored(percent: i64) -> Self {
        Self::within(percent).unwrap_or(Self::EVERYONE)
    }

    fn within(percent: i64) -> Option<Self> {
        u8::try_from(percent)
            .ok()
            .filter(|percent| (1..=100).contains(percent))
            .map(Self)
    }

    pub fn percent(self) -> u8 {
        self.0
    }

    /// Whether `connector` at this rollout works for `customer`: its bucket (0 to 99, from the
    /// hash of both ids) is below the percentage.
    pub fn includes(self, connector: &ConnectorId, customer: &CustomerId) -> bool {
        self.includes_key(connector, customer.as_str())
    }

    /// [`Self::includes`] for a contact of the connector's work by its key's text
    /// (`crm::work::ContactKey`'s): our customer's id, or `chatwoot:<id>` for a Chatwoot contact,
    /// whose deliveries are a Krayin connector's work.
    pub fn includes_key(self, connector: &ConnectorId, contact: &str) -> bool {
        self.0 >= 100 || bucket(connector, contact) < self.0
    }

    /// Why a job for a customer outside the rollout was recorded skipped.
    pub fn skip_reason(self) -> &'static str {
        "the customer is outside the connector's rollout (the share of customers it works for)"
    }
}

/// The contact's place, 0 to 99, in the connector's order of contacts.
fn bucket(connector: &ConnectorId, contact: &str) -> u8 {
    let digest = Sha256::new()
        .chain_update(connector.as_str())
        .chain_update(b":")
        .chain_update(contact)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Below 100, so the cast keeps every bit.
    (u64::from_be_bytes(first) % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customers(count: u32) -> Vec<CustomerId> {
        (0..count)
            .map(|n| {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&n.to_be_bytes());
                CustomerId::generate(bytes)
            })
            .collect()
    }

    fn at(percent: i64) -> Rollout {
        Rollout::parse("rollout_percent", percent).unwrap_or(Rollout::EVERYONE)
    }

    #[test]
    fn the_share_is_one_to_a_hundred_percent() {
        for refused in [0, -1, 101, 1000, i64::MAX] {
            let error = Rollout::parse("rollout_percent", refused).err();
            assert_eq!(error.as_ref().map(ApiError::status), Some(422), "{refused}");
        }
        assert_eq!(
            Rollout::parse("rollout_percent", 1).ok().map(Rollout::percent),
            Some(1)
        );
        assert_eq!(
            Rollout::parse("rollout_percent", 100).ok(),
            Some(Rollout::EVERYONE)
        );
        assert_eq!(Rollout::from_stored(0), Rollout::EVERYONE);
    }

    #[test]
    fn a_share_holds_about_that_share_of_customers() {
        let connector = ConnectorId::generate([7; 16]);
        let all = customers(10_000);
        for percent in [1, 10, 25, 50, 90] {
            let inside = all.iter().filter(|c| at(percent).includes(&connector, c)).count();
            let expected = 100 * percent as usize;
            assert!(
                inside.abs_diff(expected) < 150,
                "{percent}%: {inside} of 10,000 inside"
            );
        }
        assert!(all.iter().all(|c| Rollout::EVERYONE.includes(&connector, c)));
    }

    #[test]
    fn widening_keeps_everyone_who_was_in() {
        let connector = ConnectorId::generate([8; 16]);
        let all = customers(2_000);
        for (narrow, wide) in [(1, 5), (5, 25), (25, 50), (50, 100)] {
            for customer in &all {
                if at(narrow).includes(&connector, customer) {
                    assert!(at(wide).includes(&connector, customer), "{narrow}% -> {wide}%");
                }
            }
        }
    }

    #[test]
    fn a_chatwoot_contact_is_placed_by_its_key_and_a_customer_as_itself() {
        let connector = ConnectorId::generate([9; 16]);
        let customer = CustomerId::generate([3; 16]);
        for percent in [1, 30, 70, 100] {
            assert_eq!(
                at(percent).includes_key(&connector, customer.as_str()),
                at(percent).includes(&connector, &customer)
            );
        }
        let inside = (0..1_000u64)
            .filter(|id| at(30).includes_key(&connector, &format!("chatwoot:{id}")))
            .count();
        assert!(
            inside.abs_diff(300) < 60,
            "{inside} of 1,000 Chatwoot contacts inside 30%"
        );
    }

    #[test]
    fn each_connector_has_its_own_group() {
        let (first, second) = (ConnectorId::generate([1; 16]), ConnectorId::generate([2; 16]));
        let all = customers(2_000);
        let both = all
            .iter()
            .filter(|c| at(10).includes(&first, c) && at(10).includes(&second, c))
            .count();
        // Independent groups of a tenth share about a hundredth of the customers.
        assert!(both < 60, "{both} of 2,000 in both groups");
    }
}
