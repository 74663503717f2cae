//! What a channel receiver hands over after verifying and parsing a provider's webhook: the
//! messages it carries and the status updates of messages we sent. Provider-neutral.

use crate::channel::MessageStatus;
use serde::{Deserialize, Serialize};

/// One message a customer sent us.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id of the message; a provider retry carries the same id.
    pub provider_message_id: String,
    /// The sender as the channel knows them: an E.164 phone (WhatsApp, SMS), a lowercased
    /// email address, or a page-scoped id (Messenger, Instagram).
    pub from: String,
    /// The sender's display name, when the provider gives one.
    pub sender_name: Option<String>,
    /// The text of the message (for email: the plain-text body, with the subject first).
    pub content: String,
    pub media: Vec<InboundMedia>,
}

/// A customer's comment on one of a page's posts, added, edited or removed: its conversation is
/// the author's under that post (`thread`, the post's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundComment {
    pub thread: String,
    pub change: CommentChange,
    /// The comment: its provider id (the same in its edits and its removal), its author, and its
    /// text (the new text of an edit; empty for a removal, whose author may be unknown).
    pub message: InboundMessage,
}

/// What happened to a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentChange {
    Added,
    Edited,
    Removed,
}

/// A file attached to an inbound message, and where its bytes are. The remote kinds are kept
/// (as JSON) with the pending attachment until the file is fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboundMedia {
    /// Carried in the webhook itself (email attachments).
    Inline {
        filename: String,
        mime_type: String,
        /// Base64 in JSON (a kept batch, `edge::messaging::held_inbound`): a third larger, not four times.
        #[serde(with = "base64_bytes")]
        bytes: Vec<u8>,
    },
    /// Served by the provider at a URL (Twilio `MediaUrlN`, Messenger/Instagram `payload.url`).
    Url {
        url: String,
        mime_type: Option<String>,
        filename: Option<String>,
    },
    /// A WhatsApp media id, resolved through the Graph API with the account's access token.
    WhatsappMediaId {
        id: String,
        mime_type: Option<String>,
        filename: Option<String>,
    },
}

impl InboundMedia {
    /// The filename and MIME type the provider declared for the file, where it did.
    pub fn declared(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Inline {
                filename, mime_type, ..
            } => (Some(filename), Some(mime_type)),
            Self::Url {
                filename, mime_type, ..
            }
            | Self::WhatsappMediaId {
                filename, mime_type, ..
            } => (filename.as_deref(), mime_type.as_deref()),
        }
    }
}

/// A provider's news about a message we sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub provider_message_id: String,
    pub status: MessageStatus,
    /// The provider's reason, for `failed`.
    pub reason: Option<String>,
}

/// Serialized only to be kept while its business is being moved, and read back by the same code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundBatch {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    /// Comments on a page's posts (Facebook).
    #[serde(default)]
    pub comments: Vec<InboundComment>,
}

/// What one delivery of a provider's webhook stored.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct IngestReport {
    pub stored: usize,
    pub duplicates: usize,
    pub statuses_applied: usize,
    /// Files stored with the message (those the webhook carried).
    pub media_stored: usize,
    /// Files to fetch from the provider: each is a `pending` attachment until the media
    /// fetcher stores it (or marks it failed).
    pub media_queued: usize,
    /// Files that could not be recorded or fetched at all; the message is stored.
    pub media_failed: usize,
    /// Stored comments whose author edited or removed them.
    pub comments_changed: usize,
}

/// Bytes as one base64 string rather than an array of numbers.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
