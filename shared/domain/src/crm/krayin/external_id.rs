//! The ids of a contact's Krayin records, kept together in one external id string:
//! `krayin:person:123|krayin:lead:456|krayin:organization:789|krayin:activity:101`.

use super::ids::{ActivityId, LeadId, OrganizationId, PersonId};
use std::fmt;

/// Which Krayin records one of our contacts (or Chatwoot's) is linked to. Written in the
/// canonical order person, lead, organization, activity; read in any order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KrayinRefs {
    pub person: Option<PersonId>,
    pub lead: Option<LeadId>,
    pub organization: Option<OrganizationId>,
    /// The activity of the contact's current conversation.
    pub activity: Option<ActivityId>,
}

/// Longer than four parts of `krayin:organization:` and twenty digits is not ours.
const MAX_CHARS: usize = 200;

impl KrayinRefs {
    /// Reads the stored form. The empty string is no records. A kind given twice, an unknown
    /// kind, an id that is not a positive integer, or anything not of the form is refused, so a
    /// value written by something else is never half-read.
    pub fn parse(input: &str) -> Result<Self, String> {
        let input = input.trim();
        let mut refs = Self::default();
        if input.is_empty() {
            return Ok(refs);
        }
        if input.len() > MAX_CHARS {
            return Err(format!("a Krayin external id is at most {MAX_CHARS} characters"));
        }
        for part in input.split('|') {
            let mut pieces = part.split(':');
            let (Some("krayin"), Some(kind), Some(id), None) =
                (pieces.next(), pieces.next(), pieces.next(), pieces.next())
            else {
                return Err(format!("{part:.40} is not of the form krayin:<kind>:<id>"));
            };
            let id = (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
                .then(|| id.parse::<u64>().ok())
                .flatten()
                .filter(|id| *id > 0)
                .ok_or_else(|| format!("{id:.24} is not a Krayin id (a positive integer)"))?;
            let given_twice = match kind {
                "person" => refs.person.replace(PersonId(id)).is_some(),
                "lead" => refs.lead.replace(LeadId(id)).is_some(),
                "organization" => refs.organization.replace(OrganizationId(id)).is_some(),
                "activity" => refs.activity.replace(ActivityId(id)).is_some(),
                _ => {
                    return Err(format!(
                        "{kind:.24} is not person, lead, organization or activity"
                    ));
                }
            };
            if given_twice {
                return Err(format!("the {kind} id is given twice"));
            }
        }
        Ok(refs)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for KrayinRefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            ("person", self.person.map(|id| id.0)),
            ("lead", self.lead.map(|id| id.0)),
            ("organization", self.organization.map(|id| id.0)),
            ("activity", self.activity.map(|id| id.0)),
        ];
        let mut first = true;
        for (kind, id) in parts {
            if let Some(id) = id {
                if !first {
                    f.write_str("|")?;
                }
                write!(f, "krayin:{kind}:{id}")?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_example_is_read_and_written_back_unchanged() {
        let text = "krayin:person:123|krayin:lead:456|krayin:organization:789|krayin:activity:101";
        let refs = KrayinRefs::parse(text).unwrap_or_default();
        assert_eq!(
            refs,
            KrayinRefs {
                person: Some(PersonId(123)),
                lead: Some(LeadId(456)),
                organization: Some(OrganizationId(789)),
                activity: Some(ActivityId(101))
            }
        );
        assert_eq!(refs.to_string(), text);
    }

    #[test]
    fn parts_are_read_in_any_order_and_written_in_the_canonical_one() {
        let refs = KrayinRefs::parse(" krayin:activity:9|krayin:person:1 ").unwrap_or_default();
        assert_eq!(refs.to_string(), "krayin:person:1|krayin:activity:9");
        assert_eq!(KrayinRefs::parse(&refs.to_string()), Ok(refs));
    }

    #[test]
    fn every_combination_round_trips() {
        for mask in 0..16u64 {
            let pick = |bit: u64, id: u64| (mask & (1 << bit) != 0).then_some(id);
            let refs = KrayinRefs {
                person: pick(0, 1).map(PersonId),
                lead: pick(1, u64::MAX).map(LeadId),
                organization: pick(2, 30).map(OrganizationId),
                activity: pick(3, 4).map(ActivityId),
            };
            assert_eq!(KrayinRefs::parse(&refs.to_string()), Ok(refs), "{refs}");
        }
        assert!(KrayinRefs::default().is_empty());
        assert_eq!(KrayinRefs::default().to_string(), "");
    }

    #[test]
    fn malformed_external_ids_are_refused() {
        let cases = [
            ("krayin:person:1|krayin:person:2", "a repeated kind"),
            ("krayin:deal:1", "an unknown kind"),
            ("krayin:person:0", "id 0"),
            ("krayin:person:-1", "a negative id"),
            ("krayin:person:+1", "a signed id"),
            ("krayin:person:1.5", "a fraction"),
            ("krayin:person:", "no id"),
            ("krayin:person:99999999999999999999", "an id over u64"),
            ("kustomer:person:1", "another system"),
            ("krayin:person:1:2", "four pieces"),
            ("krayin:person:1|", "a trailing separator"),
            ("krayin:person:1||krayin:lead:2", "an empty part"),
            ("5f3c1a2b4d5e6f7a8b9c0d1e", "a Kustomer id"),
        ];
        for (text, description) in cases {
            assert!(KrayinRefs::parse(text).is_err(), "{description}");
        }
        assert!(
            KrayinRefs::parse(&"krayin:person:1|".repeat(20)).is_err(),
            "too long"
        );
    }
}
