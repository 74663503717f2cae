//! The channels a business talks to its customers on, and the vocabulary of messages on them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A channel as the API names it (`channel` in the seed's send example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Whatsapp,
    Email,
    Sms,
    Facebook,
    Instagram,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Self::Whatsapp,
        Self::Email,
        Self::Sms,
        Self::Facebook,
        Self::Instagram,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Facebook => "facebook",
            Self::Instagram => "instagram",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == name.trim().to_ascii_lowercase())
    }

    /// How a customer is addressed on this channel.
    pub fn address_kind(self) -> AddressKind {
        match self {
            Self::Whatsapp | Self::Sms => AddressKind::Phone,
            Self::Email => AddressKind::Email,
            Self::Facebook | Self::Instagram => AddressKind::PageScopedId,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// E.164.
    Phone,
    Email,
    /// Messenger's page-scoped id or Instagram's scoped id: meaningful only to one page/account.
    PageScopedId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Where a message is in its life. Inbound messages are `received`; outbound ones go
/// `queued` → `sent` → `delivered` → `read`, or end `failed` with the provider's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Received,
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl MessageStatus {
    pub const ALL: [Self; 6] = [
        Self::Received,
        Self::Queued,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
        }
    }

    /// Status updates can arrive out of order (a `delivered` after its `read`); a message only
    /// moves forward. `failed` can follow anything but `read`.
    pub fn rank(self) -> u8 {
        match self {
            Self::Received | Self::Queued => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Failed => 3,
            Self::Read => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_as_the_seed_names_them() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
            assert_eq!(
                serde_json::to_value(channel).ok(),
                Some(serde_json::json!(channel.as_str()))
            );
        }
        assert_eq!(Channel::parse(" WhatsApp "), Some(Channel::Whatsapp));
        assert_eq!(Channel::parse("telegram"), None);
    }

    #[test]
    fn a_later_status_never_goes_back() {
        use MessageStatus::*;
        assert!(Delivered.rank() > Sent.rank());
        assert!(Read.rank() > Delivered.rank());
        assert!(Read.rank() > Failed.rank(), "a read message did not fail");
    }
}
