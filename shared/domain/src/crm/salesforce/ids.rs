//! Salesforce's record ids, read the way Salesforce reads them: 15 characters that are
//! case-sensitive, or the same 15 followed by 3 that spell out the case of the first 15, so that
//! the 18-character form can be compared without regard to case. Two ids are the same record when
//! their 15 case-sensitive characters are the same, whichever form each was given in.

use std::fmt;

/// The alphabet of the 3-character suffix: each character is 5 bits, one for each of the 5
/// characters of its third of the id, set when that character is an uppercase letter.
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A record id. Equal ids are the same record; it shows as its 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SalesforceId(String);

impl SalesforceId {
    /// A 15- or 18-character id; None for anything else (wrong length, a character outside
    /// `A-Za-z0-9`, or an 18-character id whose suffix contradicts its first 15).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if !text.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return None;
        }
        match text.len() {
            15 => Some(Self(format!("{text}{}", suffix(text.as_bytes())))),
            18 => {
                let (head, tail) = text.split_at(15);
                let restored = restore_case(head.as_bytes(), tail.as_bytes())?;
                let canonical_tail = tail.to_ascii_uppercase();
                Some(Self(format!("{restored}{canonical_tail}")))
            }
            _ => None,
        }
    }

    /// The 18-character form (the one the API answers with).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 15 case-sensitive characters.
    pub fn short(&self) -> &str {
        self.0.get(..15).unwrap_or(&self.0)
    }

    /// The first three characters, which say what kind of record it is (`003` a contact,
    /// `00Q` a lead, `500` a case, `00D` an organization).
    pub fn key_prefix(&self) -> &str {
        self.0.get(..3).unwrap_or(&self.0)
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SalesforceId({})", self.0)
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The suffix of a 15-character id.
fn suffix(id15: &[u8]) -> String {
    id15.chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, byte)| byte.is_ascii_uppercase())
                .fold(0usize, |bits, (at, _)| bits | (1 << at));
            char::from(SUFFIX_ALPHABET[bits])
        })
        .collect()
}

/// The 15 case-sensitive characters an 18-character id stands for: the suffix says which letters
/// are uppercase (the rest are lowercase); a suffix that marks a digit as uppercase is no id.
fn restore_case(head: &[u8], tail: &[u8]) -> Option<String> {
    let mut restored = String::with_capacity(15);
    for (chunk, mark) in head.chunks(5).zip(tail) {
        let bits = SUFFIX_ALPHABET
            .iter()
            .position(|letter| *letter == mark.to_ascii_uppercase())?;
        for (at, byte) in chunk.iter().enumerate() {
            let upper = bits & (1 << at) != 0;
            let restored_byte = match (byte.is_ascii_alphabetic(), upper) {
                (true, true) => byte.to_ascii_uppercase(),
                (true, false) => byte.to_ascii_lowercase(),
                (false, false) => *byte,
                (false, true) => return None,
            };
            restored.push(char::from(restored_byte));
        }
    }
    Some(restored)
}

/// The id of a Salesforce organization (key prefix `00D`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrganizationId(SalesforceId);

impl OrganizationId {
    pub fn parse(text: &str) -> Option<Self> {
        SalesforceId::parse(text)
            .filter(|id| id.key_prefix() == "00D")
            .map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrganizationId({})", self.0.as_str())
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_15_character_id_gains_the_suffix_that_spells_its_case() {
        let cases = [
            ("70130000001tcyI", "70130000001tcyIAAQ"),
            ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
            ("00558000001N0Ke", "00558000001N0KeAAK"),
            ("AaaAABbbBBCccCC", "AaaAABbbBBCccCCZZZ"),
            ("ABCDEFGHIJKLMNO", "ABCDEFGHIJKLMNO555"),
            ("AAaAAbbBBBCcCCC", "AAaAAbbBBBCcCCC123"),
        ];
        for (short, long) in cases {
            let id = SalesforceId::parse(short).unwrap_or_else(|| panic!("{short}"));
            assert_eq!(id.as_str(), long, "{short}");
            assert_eq!(id.short(), short);
        }
    }

    #[test]
    fn the_same_record_is_the_same_id_in_either_form_and_in_any_case_of_the_long_form() {
        let short = SalesforceId::parse("80120000000tEst");
        let long = SalesforceId::parse("80120000000tEstAAE");
        let shouted = SalesforceId::parse("80120000000TESTAAE");
        let whispered = SalesforceId::parse("80120000000testaae");
        assert!(short.is_some());
        assert_eq!(short, long);
        assert_eq!(long, shouted, "the 18-character form is case-insensitive");
        assert_eq!(long, whispered);
        assert_eq!(
            shouted.map(|id| id.short().to_owned()),
            Some("80120000000tEst".to_owned())
        );
    }

    #[test]
    fn the_15_character_form_is_case_sensitive() {
        assert_ne!(
            SalesforceId::parse("80120000000test"),
            SalesforceId::parse("80120000000TEST")
        );
        assert_eq!(
            SalesforceId::parse("80120000000testAAA"),
            SalesforceId::parse("80120000000TESTAAA"),
            "in the long form the suffix, not the letters, says the case"
        );
    }

    #[test]
    fn anything_else_is_no_id() {
        let cases = [
            ("", "empty"),
            ("0035g00000ABCDE1", "16 characters"),
            ("0035g00000ABCDE-FGH", "19 characters"),
            ("0035g00000AB DE", "a space"),
            ("0035g00000ABCDé", "a letter outside ASCII"),
            ("0035g00000ABCD'", "a quote"),
            ("000000000000000BAA", "a suffix that marks a digit uppercase"),
            ("0035g00000ABCDE!!!", "a suffix outside its alphabet"),
            ("0035g00000ABCDE678", "a suffix digit above 5"),
        ];
        for (text, description) in cases {
            assert_eq!(SalesforceId::parse(text), None, "{description}: {text:?}");
        }
    }

    #[test]
    fn an_organization_id_is_a_00d_id_in_either_form() {
        let long = OrganizationId::parse("00D5g000004Xyz1EAC");
        assert!(long.is_some());
        let short = OrganizationId::parse("00D5g000004Xyz1");
        assert_eq!(long, short);
        assert_eq!(OrganizationId::parse("0035g000004Xyz1"), None, "a contact's id");
        assert_eq!(OrganizationId::parse("00d5g000004Xyz1"), None, "00d is not 00D");
    }
}
