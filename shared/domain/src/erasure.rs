//! Erasing one customer, as a person may ask by law (`edge::ops::erasure` does it): what an erasure
//! answers, how much one step deletes, and what each CRM is asked to do with the contact.
//!
//! An erasure deletes the customer's messages, their files, conversations, identities, SSO
//! tokens, bot answers, escalations, webhook events about them and the CRM-link pieces whose
//! subject is theirs, in steps each bounded well under one invocation's D1 queries, and keeps a
//! tombstone that names no one: the customer's id, when, by whom, and what was deleted.

use crate::bot::subject::{KeyKind, token};
use crate::crm::work::{ConnectorKind, JobStatus};
use crate::ids::{ConnectorId, CustomerId, SyncJobId};
use crate::phone::Country;
use crate::time::Timestamp;
use serde::Serialize;

/// Messages one step deletes, with their files, events and links: a customer with 100,000
/// messages is erased in 400 steps, about ten D1 queries each.
pub const MESSAGES_PER_STEP: usize = 250;
/// Conversations one step deletes, once their messages are gone.
pub const CONVERSATIONS_PER_STEP: usize = 250;
/// CRM-link pieces one step deletes, with their vectors (a vector store deletes up to 1,000
/// ids a call).
pub const PIECES_PER_STEP: usize = 500;
/// D1 queries an invocation spends on erasing at most: the rest of the 1,000 stays for the
/// request or sweep it runs in.
pub const QUERY_CEILING: u32 = crate::platform::D1_QUERIES / 2;

/// Where an erasure stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The customer can no longer be found by any key; their rows are being deleted.
    Erasing,
    /// Nothing of the customer is left here.
    Erased,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Erasing => "erasing",
            Self::Erased => "erased",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Erasing, Self::Erased]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// An erasure as the API answers it (202 while erasing, 200 once erased): no personal data.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ErasureOut {
    pub customer_id: CustomerId,
    pub status: Status,
    pub requested_at: Timestamp,
    /// `admin` (the operator) or `key:<prefix>` (one of the business's keys).
    pub requested_by: String,
    pub erased_at: Option<Timestamp>,
    pub deleted: Deleted,
    /// What each CRM connected when the erasure started is asked to do with the contact.
    pub crm: Vec<CrmErasure>,
}

/// What an erasure has deleted so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Deleted {
    pub messages: u64,
    pub conversations: u64,
    pub attachments: u64,
    pub knowledge_pieces: u64,
}

/// One CRM's part of an erasure: the work that deletes the contact there, done as any CRM work
/// is (retried, in the connector's sync log, replayable when dead).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CrmErasure {
    pub connector_id: ConnectorId,
    pub crm: ConnectorKind,
    /// What the CRM is asked to do: `delete` (Kustomer's and Krayin's delete of the record) or
    /// `gdpr_delete` (HubSpot's permanent deletion, which also blocks the email from being
    /// tracked again).
    pub action: &'static str,
    pub job_id: SyncJobId,
    /// The work's status; `pending` until the CRM answered.
    pub status: JobStatus,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a CRM is asked to do with an erased customer's contact.
pub fn crm_action(kind: ConnectorKind) -> &'static str {
    match kind {
        ConnectorKind::Kustomer | ConnectorKind::Krayin | ConnectorKind::Salesforce => "delete",
        ConnectorKind::HubSpot => "gdpr_delete",
    }
}

/// What an erased customer was known by: their keys, and their address on each channel.
pub struct Known<'a> {
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub whatsapp_number: Option<&'a str>,
    pub external_id: Option<&'a str>,
    /// (channel, address) of each of their identities.
    pub addresses: &'a [(String, String)],
}

/// The tokens of every subject a CRM-link record about the customer may have been indexed by
/// (`crate::bot::subject`): their email, phones, external id, and each address read as the key
/// its channel gives (an email's, a phone's, or a page-scoped id on Facebook and Instagram),
/// sorted, each once. A phone in national form is read in `country`, as records' phones are.
pub fn subject_tokens(known: &Known<'_>, country: Option<Country>) -> Vec<String> {
    let keys = [
        (KeyKind::Email, known.email),
        (KeyKind::Phone, known.phone),
        (KeyKind::Phone, known.whatsapp_number),
        (KeyKind::ExternalId, known.external_id),
    ];
    let addresses = known.addresses.iter().map(|(channel, address)| {
        let kind = match channel.as_str() {
            "email" => KeyKind::Email,
            "sms" | "whatsapp" => KeyKind::Phone,
            _ => KeyKind::PageScopedId,
        };
        (kind, Some(address.as_str()))
    });
    let mut tokens: Vec<String> = keys
        .into_iter()
        .chain(addresses)
        .filter_map(|(kind, value)| kind.subject(value?, country))
        .map(|subject| token(Some(&subject)))
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

/// Why the business's other CRM work for an erased customer was dropped.
pub const DROPPED_WORK: &str = "the customer was erased";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_as_it_is_written_and_nothing_else_is_one() {
        for status in [Status::Erasing, Status::Erased] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("deleted"), None);
    }

    #[test]
    fn every_key_and_address_of_the_customer_gives_the_token_its_records_were_indexed_by() {
        let ireland = Country::parse("IE").ok();
        let subject = |kind: KeyKind, value: &str| token(kind.subject(value, ireland).as_deref());
        let addresses = [
            ("email".to_owned(), "Ann@Example.com".to_owned()),
            ("whatsapp".to_owned(), "+353871234567".to_owned()),
            ("facebook".to_owned(), "2468".to_owned()),
        ];
        let known = Known {
            email: Some("ann@example.com"),
            phone: Some("087 765 4321"),
            whatsapp_number: None,
            external_id: Some("CRM-1"),
            addresses: &addresses,
        };
        let tokens = subject_tokens(&known, ireland);
        let mut expected = vec![
            subject(KeyKind::Email, "ann@example.com"),
            subject(KeyKind::Phone, "+353877654321"),
            subject(KeyKind::ExternalId, "CRM-1"),
            subject(KeyKind::Phone, "+353871234567"),
            subject(KeyKind::PageScopedId, "2468"),
        ];
        expected.sort();
        assert_eq!(
            tokens, expected,
            "the email given twice (in two cases) is one token"
        );
        let nobody = Known {
            email: None,
            phone: None,
            whatsapp_number: None,
            external_id: None,
            addresses: &[],
        };
        assert!(subject_tokens(&nobody, None).is_empty());
    }
}
