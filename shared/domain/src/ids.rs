//! Opaque identifiers: UUID v4 strings, as the seed's clients store them (`UUID NOT NULL`).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Formats 16 random bytes as an RFC 9562 version 4 UUID.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid_form(bytes)
}

/// 16 bytes in the 8-4-4-4-12 form, written straight into their string: a sync draws two
/// thousand ids, and hex-encoding then formatting made three strings of each.
fn uuid_form(bytes: [u8; 16]) -> String {
    let mut id = String::with_capacity(36);
    for (at, byte) in bytes.into_iter().enumerate() {
        if matches!(at, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        push_hex(&mut id, byte);
    }
    id
}

/// Writes `byte` as two lowercase hex digits.
fn push_hex(text: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

/// True for the canonical lowercase 8-4-4-4-12 form.
pub fn is_uuid(candidate: &str) -> bool {
    candidate.len() == 36
        && candidate.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// True for 32 lowercase hex digits: the form D1 gives a delivery id (`lower(hex(randomblob(16)))`),
/// since deliveries are created in bulk by one statement.
fn is_hex128(candidate: &str) -> bool {
    candidate.len() == 32
        && candidate
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident $(, or $other:path, as $pattern:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn generate(random: [u8; 16]) -> Self {
                Self(uuid_v4(random))
            }

            /// Accepts only a canonical UUID, so that a value that exists is a well-formed id.
            pub fn parse(candidate: &str) -> Option<Self> {
                let candidate = candidate.trim().to_ascii_lowercase();
                let valid = is_uuid(&candidate) $(|| $other(&candidate))?;
                valid.then_some(Self(candidate))
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

        #[cfg(feature = "openapi")]
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                // An id that may take another form too is described by a pattern both match.
                let pattern: Option<&str> = None $(.or(Some($pattern)))?;
                match pattern {
                    Some(pattern) => schemars::json_schema!({ "type": "string", "pattern": pattern }),
                    None => schemars::json_schema!({ "type": "string", "format": "uuid" }),
                }
            }
        }

        /// Read back from D1, a queue or a request body, an id is checked like any other input:
        /// a stored value that is not an id is a corrupt row, not a string passed on.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
                Self::parse(&text).ok_or_else(|| {
                    D::Error::custom(format!(concat!("not a ", stringify!($name), ": {:?}"), text))
                })
            }
        }
    };
}

uuid_id!(
    /// A business (tenant). Every stored row belongs to exactly one.
    BusinessId
);
uuid_id!(
    /// A CRM link's source: one URL of one page, whatever channels it serves.
    SourceId
);
uuid_id!(
    /// A customer of a business.
    CustomerId
);
uuid_id!(
    /// An API key's public id (never the key itself).
    ApiKeyId
);
uuid_id!(
    /// A message, inbound or outbound.
    MessageId
);
uuid_id!(
    /// A customer's conversation on one channel.
    ConversationId
);
uuid_id!(
    /// A file uploaded by a business or received with a message.
    AttachmentId
);
uuid_id!(
    /// A business's account on a channel provider.
    ChannelAccountId
);
uuid_id!(
    /// A webhook endpoint a business registered.
    EndpointId
);
uuid_id!(
    /// A webhook event, recorded with the change it reports.
    EventId
);
uuid_id!(
    /// One event's delivery to one endpoint.
    DeliveryId, or is_hex128, as "^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
);
uuid_id!(
    /// An SSO token's public id (never the token itself).
    SsoTokenId
);
uuid_id!(
    /// A business's connection to one CRM account.
    ConnectorId
);
uuid_id!(
    /// One piece of CRM work in a connector's sync log.
    SyncJobId
);
uuid_id!(
    /// A conversation handed to a human.
    EscalationId
);
uuid_id!(
    /// An entry of a business's audit log.
    AuditEntryId
);
uuid_id!(
    /// A console link and the session it opens (never either secret).
    ConsoleSessionId
);
uuid_id!(
    /// An alert a rule raised (domain::alerts).
    AlertId
);

/// The 16 bytes an id's hex digits spell (dashes skipped); None unless there are 32 digits.
fn bytes_of(id: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = id.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 {
        return None;
    }
    let value = |digit: u8| char::from(digit).to_digit(16).map(|v| v as u8);
    let mut bytes = [0u8; 16];
    for (at, pair) in digits.chunks(2).enumerate() {
        bytes[at] = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(bytes)
}

/// What masks an event's bytes into its delivery's id at one endpoint.
fn delivery_mask(endpoint: &EndpointId) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest([b"crm-edge delivery ", endpoint.as_str().as_bytes()].concat());
    std::array::from_fn(|at| digest[at])
}

impl DeliveryId {
    /// The id of `event`'s delivery to `endpoint`, known before any row holds it (a delivery
    /// settled by its first attempt has none): the event's bytes masked by the endpoint's, as 32
    /// hex digits. One endpoint's deliveries never share an id (the mask is a bijection), two
    /// endpoints' share one by chance as rarely as two random ids, and the endpoint and the id
    /// give the event back ([`DeliveryId::event_at`]).
    pub fn of(endpoint: &EndpointId, event: &EventId) -> Self {
        let mask = delivery_mask(endpoint);
        let event = bytes_of(event.as_str()).unwrap_or_default();
        let mut id = String::with_capacity(32);
        for (byte, mask) in event.into_iter().zip(mask) {
            push_hex(&mut id, byte ^ mask);
        }
        Self(id)
    }

    /// The event whose delivery to `endpoint` has this id, when [`DeliveryId::of`] made it.
    pub fn event_at(&self, endpoint: &EndpointId) -> Option<EventId> {
        if !is_hex128(&self.0) {
            return None;
        }
        let mask = delivery_mask(endpoint);
        let bytes = bytes_of(&self.0)?;
        EventId::parse(&uuid_form(std::array::from_fn(|at| bytes[at] ^ mask[at])))
    }
}

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
        let counting = EventId::generate(std::array::from_fn(|at| at as u8 * 0x11));
        assert_eq!(
            counting.as_str(),
            "00112233-4455-4677-8899-aabbccddeeff",
            "each byte's two digits in order, the version and variant set"
        );
    }

    #[test]
    fn ids_are_checked_when_read_from_json() {
        let read: Result<MessageId, _> = serde_json::from_str("\"FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF\"");
        assert_eq!(
            read.ok().as_ref().map(MessageId::as_str),
            Some("ffffffff-ffff-4fff-bfff-ffffffffffff")
        );
        let corrupt: Result<MessageId, _> = serde_json::from_str("\"not-an-id\"");
        assert!(corrupt.is_err(), "a stored value that is no id is refused");
        let legacy: Result<DeliveryId, _> = serde_json::from_str("\"0123456789abcdef0123456789abcdef\"");
        assert!(legacy.is_ok(), "D1 makes delivery ids as 32 hex digits");
        let legacy_message: Result<MessageId, _> =
            serde_json::from_str("\"0123456789abcdef0123456789abcdef\"");
        assert!(legacy_message.is_err(), "only deliveries had such ids");
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

    #[test]
    fn a_delivery_id_comes_from_its_event_and_endpoint_and_gives_the_event_back() {
        let endpoint = EndpointId::generate([7; 16]);
        let other = EndpointId::generate([8; 16]);
        let event = EventId::generate(std::array::from_fn(|at| at as u8 * 0x11));
        let delivery = DeliveryId::of(&endpoint, &event);
        assert_eq!(
            delivery,
            DeliveryId::of(&endpoint, &event),
            "the same pair, the same id"
        );
        assert!(is_hex128(delivery.as_str()), "{delivery}");
        assert_ne!(
            delivery,
            DeliveryId::of(&other, &event),
            "another endpoint, another id"
        );
        let next = EventId::generate(std::array::from_fn(|at| at as u8 * 0x10 + 1));
        assert_ne!(
            delivery,
            DeliveryId::of(&endpoint, &next),
            "another event, another id"
        );
        assert_eq!(delivery.event_at(&endpoint), Some(event.clone()));
        assert_ne!(
            delivery.event_at(&other),
            Some(event),
            "only its own endpoint unmasks it"
        );
        let random =
            DeliveryId::parse("8f14e45f-ceea-467f-a8ad-0c9b6c1d1b55").unwrap_or_else(|| panic!("an id"));
        assert_eq!(
            random.event_at(&endpoint),
            None,
            "a random delivery id names no event"
        );
    }
}
