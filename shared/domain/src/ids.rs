//! Opaque identifiers: UUID v4 strings, as the seed's clients store them (`UUID NOT NULL`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Formats 16 random bytes as an RFC 9562 version 4 UUID.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// True for the canonical lowercase 8-4-4-4-12 form.
pub fn is_uuid(candidate: &str) -> bool {
    candidate.len() == 36
        && candidate.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn generate(random: [u8; 16]) -> Self {
                Self(uuid_v4(random))
            }

            /// Accepts only a canonical UUID, so that a value that exists is a well-formed id.
            pub fn parse(candidate: &str) -> Option<Self> {
                let candidate = candidate.trim().to_ascii_lowercase();
                is_uuid(&candidate).then_some(Self(candidate))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

uuid_id!(
    /// A business (tenant). Every stored row belongs to exactly one.
    BusinessId
);
uuid_id!(
    /// A customer of a business.
    CustomerId
);
uuid_id!(
    /// An API key's public id (never the key itself).
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_version_4_uuids() {
        let id = CustomerId::generate([0xff; 16]);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert!(is_uuid(id.as_str()));
        let zero = BusinessId::generate([0; 16]);
        assert_eq!(zero.as_str(), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn parsing_accepts_uppercase_and_rejects_anything_else() {
        let cases = [
            (
                "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF",
                true,
                "uppercase is normalised",
            ),
            ("ffffffff-ffff-4fff-bfff-ffffffffffff", true, "canonical"),
            ("ffffffffffff4fffbfffffffffffffff", false, "without dashes"),
            ("' OR 1=1 --", false, "injection attempt"),
            ("", false, "empty"),
            ("gggggggg-ffff-4fff-bfff-ffffffffffff", false, "non-hex digit"),
        ];
        for (input, ok, description) in cases {
            assert_eq!(BusinessId::parse(input).is_some(), ok, "{description}: {input}");
        }
    }
}
