//! Messages and conversations as the API returns them, and the polling cursor.

use crate::channel::{Channel, Direction, MessageStatus};
use crate::error::ApiError;
use crate::ids::{AttachmentId, ChannelAccountId, ConversationId, CustomerId, MessageId};
use crate::query::{Query, decode_cursor, encode_cursor};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A message as the seed's webhook payload and polling loop show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    pub content: String,
    /// The seed names the channel twice; both are kept for its clients.
    pub platform: Channel,
    pub channel: Channel,
    pub direction: Direction,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
    /// With include_attachments only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<Attachment>>,
    /// Position in the business's message order; the cursor, not shown.
    #[serde(skip)]
    pub created_us: i64,
}

/// A conversation as `/api-conversations-by-customer` returns it: a customer has one current
/// conversation per channel, and any earlier ones it followed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Conversation {
    pub id: ConversationId,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub channel_account_id: Option<ChannelAccountId>,
    /// The core guide's name for a WhatsApp conversation's account: its `channel_account_id`,
    /// absent on the other channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_account_id: Option<ChannelAccountId>,
    pub status: ConversationStatus,
    pub assignee: Option<String>,
    pub last_message_at: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
    pub message_count: i64,
    /// How often the customer reopened it by writing after it was resolved or closed.
    #[serde(default)]
    pub reopen_count: i64,
    /// With include_messages: the latest 200, in order.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub messages: Option<Vec<Message>>,
}

/// The statuses a conversation moves through. A customer has one current conversation per
/// channel: when they write to a resolved or closed one, it is reopened, unless it has been quiet
/// for the business's [`NewConversationAfter`], when a new conversation follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Pending,
    Resolved,
    Closed,
}

impl ConversationStatus {
    pub const ALL: [Self; 4] = [Self::Open, Self::Pending, Self::Resolved, Self::Closed];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    /// Over until the customer writes again.
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Resolved | Self::Closed)
    }
}

/// How long a resolved or closed conversation stays quiet (no message, not resolved again) before
/// the customer's next message on its channel opens a new conversation instead of reopening it:
/// whole hours, 0 to a year, each business its own (`new_conversation_after_hours`).
///
/// The default is four days, the time a solved ticket stays open to the customer's reply in
/// Zendesk before it closes and a reply makes a follow-up ticket: long enough that "thanks, one
/// more thing" the next day stays in its conversation, short enough that next week's order is a
/// case of its own. 0 is Chatwoot's choice for most inboxes (a resolved conversation is never
/// reopened); the year, nearly Intercom's (always reopened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConversationAfter(u16);

impl NewConversationAfter {
    pub const DEFAULT: Self = Self(96);
    pub const MAX_HOURS: u16 = 8760;

    /// The stored window: NULL is the default.
    pub fn stored(hours: Option<i64>) -> Self {
        hours
            .and_then(|hours| u16::try_from(hours).ok())
            .filter(|hours| *hours <= Self::MAX_HOURS)
            .map_or(Self::DEFAULT, Self)
    }

    /// The window a client gave (`field` names it in the error).
    pub fn parse(hours: i64, field: &str) -> Result<Self, ApiError> {
        u16::try_from(hours)
            .ok()
            .filter(|hours| *hours <= Self::MAX_HOURS)
            .map(Self)
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!("{field} is a whole number of hours from 0 to {}", Self::MAX_HOURS),
                )
            })
    }

    pub fn hours(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for ConversationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attachment as the API returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Attachment {
    pub id: AttachmentId,
    pub message_id: Option<MessageId>,
    pub filename: String,
    /// MIME type.
    #[serde(rename = "type")]
    pub mime_type: String,
    pub size: i64,
    /// RFC 3339 time.
    pub created_at: String,
    /// `stored`; for a file received with a message, `pending` while it is fetched from the
    /// provider, or `failed` when it could not be (`status_reason` says why).
    #[serde(default)]
    pub status: AttachmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Where the owning business downloads it with its API key (`/api/download-media?id=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

/// Whether an attachment's bytes are in storage.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttachmentStatus {
    #[default]
    Stored,
    Pending,
    Failed,
}

impl AttachmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

impl Attachment {
    /// Sets `download_url` under the deployment's `origin` (`https://api.example.com`).
    pub fn with_download_url(mut self, origin: &str) -> Self {
        self.download_url = Some(format!("{origin}/api/download-media?id={}", self.id));
        self
    }
}

/// Where a poll resumes: after the message created at this microsecond. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub after_us: i64,
}

const CURSOR_KIND: &str = "m1.";

impl Cursor {
    pub fn encode(self) -> String {
        encode_cursor(CURSOR_KIND, &self.after_us.to_string())
    }

    pub fn decode(token: &str) -> Option<Self> {
        let after_us = decode_cursor(CURSOR_KIND, token)?.parse().ok()?;
        Some(Self { after_us })
    }
}

/// The query of `/api-messages-since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinceQuery {
    pub after: Cursor,
    pub limit: usize,
    pub include_attachments: bool,
}

impl SinceQuery {
    /// `since` (RFC 3339; messages created strictly after it) or `cursor` (from a previous
    /// page), `limit` (1..=500, default 100), `include_attachments`.
    pub fn parse(query: &Query) -> Result<Self, ApiError> {
        let after = match (query.get("cursor"), query.get("since")) {
            (Some(cursor), _) => Cursor::decode(cursor).ok_or_else(|| {
                ApiError::invalid(
                    "cursor",
                    "cursor is not one this API returned; pass next_cursor back unchanged",
                )
            })?,
            (None, Some(since)) => {
                // In a query string an unencoded '+' of an offset arrives as a space.
                let since = since.trim().replace(' ', "+");
                let stamp = Timestamp::parse_rfc3339(&since).ok_or_else(|| {
                    ApiError::invalid(
                        "since",
                        "since must be an RFC 3339 timestamp, like 2025-11-04T09:00:00Z",
                    )
                })?;
                Cursor {
                    after_us: stamp.micros(),
                }
            }
            (None, None) => {
                return Err(ApiError::malformed(
                    "give since (an RFC 3339 timestamp) or cursor",
                ));
            }
        };
        let limit = query.limit()?;
        let include_attachments = query.flag("include_attachments")?;
        Ok(Self {
            after,
            limit,
            include_attachments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_conversation_window_takes_hours_from_none_to_a_year_and_defaults_to_four_days() {
        assert_eq!(NewConversationAfter::stored(None).hours(), 96);
        assert_eq!(NewConversationAfter::stored(Some(0)).hours(), 0);
        assert_eq!(NewConversationAfter::stored(Some(8760)).hours(), 8760);
        for (given, why) in [(-1, "negative"), (8761, "over a year"), (i64::MAX, "huge")] {
            assert!(
                NewConversationAfter::parse(given, "w").is_err(),
                "{why} is refused"
            );
            assert_eq!(
                NewConversationAfter::stored(Some(given)),
                NewConversationAfter::DEFAULT,
                "{why} stored reads as the default"
            );
        }
        assert_eq!(
            NewConversationAfter::parse(24, "w")
                .map(NewConversationAfter::hours)
                .ok(),
            Some(24)
        );
    }

    fn query(list: &[(&str, &str)]) -> Query {
        let text: Vec<String> = list
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
            .collect();
        Query::parse(Some(&text.join("&")))
    }

    #[test]
    fn a_cursor_survives_a_round_trip_and_a_forged_one_is_refused() {
        let cursor = Cursor {
            after_us: 1_762_246_800_123_456,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("bTEuMTIz"), Some(Cursor { after_us: 123 }));
        for forged in ["", "xyz", "bTIuMTIz", "m1.123", "bTEuYWJj"] {
            assert_eq!(Cursor::decode(forged), None, "{forged}");
        }
    }

    #[test]
    fn since_is_exclusive_to_the_microsecond_and_keeps_its_offset() {
        let parsed = SinceQuery::parse(&query(&[("since", "2025-11-04T09:00:00.123456Z")]));
        assert_eq!(parsed.map(|q| q.after.after_us), Ok(1_762_246_800_123_456));
        let plus_as_space = SinceQuery::parse(&query(&[("since", "2025-11-04T10:00:00 01:00")]));
        assert_eq!(plus_as_space.map(|q| q.after.after_us), Ok(1_762_246_800_000_000));
    }

    #[test]
    fn bad_queries_are_refused_with_the_parameter_at_fault() {
        let cases = [
            (query(&[]), 400, None, "neither since nor cursor"),
            (
                query(&[("since", "yesterday")]),
                422,
                Some("since"),
                "prose since",
            ),
            (
                query(&[("cursor", "forged")]),
                422,
                Some("cursor"),
                "forged cursor",
            ),
            (
                query(&[("since", "2025-11-04T09:00:00Z"), ("limit", "0")]),
                422,
                Some("limit"),
                "limit 0",
            ),
            (
                query(&[("since", "2025-11-04T09:00:00Z"), ("limit", "501")]),
                422,
                Some("limit"),
                "limit over the cap",
            ),
            (
                query(&[("since", "2025-11-04T09:00:00Z"), ("limit", "ten")]),
                422,
                Some("limit"),
                "limit not a number",
            ),
            (
                query(&[
                    ("since", "2025-11-04T09:00:00Z"),
                    ("include_attachments", "maybe"),
                ]),
                422,
                Some("include_attachments"),
                "flag",
            ),
        ];
        for (pairs, status, field, description) in cases {
            let error = SinceQuery::parse(&pairs).err();
            assert_eq!(
                error.as_ref().map(ApiError::status),
                Some(status),
                "{description}"
            );
            assert_eq!(
                error.and_then(|e| e.body.field),
                field.map(str::to_owned),
                "{description}"
            );
        }
    }
}
