//! A ticket's priority: the 1-to-5 scale that Kustomer keeps and escalations ask for, with the
//! names people use for it.

use crate::error::ApiError;
use serde_json::Value;

/// A conversation's priority on Kustomer's scale: 1 (lowest) to 5 (highest).
///
/// Names map onto the scale from its top down, `urgent` being Kustomer's highest: `low` 2,
/// `medium` 3, `high` 4, `urgent` 5. Kustomer's own "no priority set" is 1, which keeps no name
/// here so that a business asking for `low` still gets something above the unsorted pile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    pub const LOW: Self = Self(2);
    pub const MEDIUM: Self = Self(3);
    pub const HIGH: Self = Self(4);
    pub const URGENT: Self = Self(5);

    pub fn new(level: u8) -> Option<Self> {
        (1..=5).contains(&level).then_some(Self(level))
    }

    /// From an integer 1 to 5 or one of the names; `field` is named in the error.
    pub fn parse(field: &str, input: &Value) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::invalid(
                field,
                format!("{field} must be 1 to 5 (5 is highest) or one of low, medium, high, urgent"),
            )
        };
        match input {
            Value::Number(number) => number
                .as_u64()
                .and_then(|level| u8::try_from(level).ok())
                .and_then(Self::new)
                .ok_or_else(refused),
            Value::String(name) => match name.trim().to_ascii_lowercase().as_str() {
                "low" => Ok(Self::LOW),
                "medium" => Ok(Self::MEDIUM),
                "high" => Ok(Self::HIGH),
                "urgent" => Ok(Self::URGENT),
                _ => Err(refused()),
            },
            _ => Err(refused()),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}
