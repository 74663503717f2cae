//! What the embedded inbox shows: messages as the page renders them, with attachment links that
//! work without an API key for a short while, and which channel the reply box starts on.

use crate::channel::{Channel, Direction, MessageStatus};
use crate::ids::{BusinessId, MessageId};
use crate::media::MediaLinks;
use crate::message::{Attachment, Message};
use serde::Serialize;

/// Image types the page previews inline; every other attachment is a download link.
const PREVIEWED: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// A message as the page renders it: no ids of other records, links ready to use.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "EmbedMessage"))]
pub struct MessageView {
    pub id: MessageId,
    pub channel: Channel,
    pub direction: Direction,
    pub status: MessageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub content: String,
    /// RFC 3339 time.
    pub created_at: String,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AttachmentView {
    pub filename: String,
    #[serde(rename = "type")]
    pub mime_type: String,
    pub size: i64,
    /// A signed link under the deployment's origin, valid until `link_expires` (Unix seconds).
    pub url: String,
    pub preview: bool,
}

/// How attachment links are signed: the deployment's signer and origin, and when links expire.
pub struct LinkSigner<'a> {
    pub links: &'a MediaLinks,
    pub origin: &'a str,
    pub business_id: &'a BusinessId,
    pub expires: i64,
}

impl LinkSigner<'_> {
    fn link(&self, attachment: &Attachment) -> AttachmentView {
        AttachmentView {
            url: self
                .links
                .link(self.origin, self.business_id, &attachment.id, self.expires),
            preview: PREVIEWED.contains(&attachment.mime_type.as_str()),
            filename: attachment.filename.clone(),
            mime_type: attachment.mime_type.clone(),
            size: attachment.size,
        }
    }
}

pub fn view(message: Message, signer: &LinkSigner<'_>) -> MessageView {
    MessageView {
        attachments: message
            .attachments
            .iter()
            .flatten()
            .map(|attachment| signer.link(attachment))
            .collect(),
        id: message.id,
        channel: message.channel,
        direction: message.direction,
        status: message.status,
        status_reason: message.status_reason,
        content: message.content,
        created_at: message.created_at,
    }
}

/// The channel the reply box starts on: where the customer last wrote from, if the business can
/// answer there; otherwise the channel of the latest message it can answer on; otherwise the
/// first it can answer on. `messages` are oldest first.
pub fn default_reply_channel(messages: &[Message], available: &[Channel]) -> Option<Channel> {
    let latest = |direction: Option<Direction>| {
        messages
            .iter()
            .rev()
            .filter(|message| direction.is_none_or(|d| message.direction == d))
            .map(|message| message.channel)
            .find(|channel| available.contains(channel))
    };
    latest(Some(Direction::Inbound))
        .or_else(|| latest(None))
        .or_else(|| available.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AttachmentId, ConversationId, CustomerId};
    use crate::message::AttachmentStatus;

    fn message(channel: Channel, direction: Direction) -> Message {
        Message {
            id: MessageId::generate([1; 16]),
            conversation_id: ConversationId::generate([2; 16]),
            customer_id: CustomerId::generate([3; 16]),
            content: "hi".into(),
            platform: channel,
            channel,
            direction,
            status: MessageStatus::Received,
            status_reason: None,
            created_at: "2025-11-04T09:00:00.000000Z".into(),
            updated_at: "2025-11-04T09:00:00.000Z".into(),
            attachments: None,
            created_us: 0,
        }
    }

    #[test]
    fn the_reply_goes_where_the_customer_last_wrote_from_when_the_business_can_answer_there() {
        use Channel::*;
        use Direction::*;
        let history = [
            message(Email, Inbound),
            message(Whatsapp, Inbound),
            message(Sms, Outbound),
        ];
        type Case<'a> = (&'a [Message], &'a [Channel], Option<Channel>, &'a str);
        let cases: [Case; 5] = [
            (
                &history,
                &[Email, Whatsapp, Sms],
                Some(Whatsapp),
                "latest inbound",
            ),
            (
                &history,
                &[Email, Sms],
                Some(Email),
                "latest inbound it can answer",
            ),
            (
                &history,
                &[Sms],
                Some(Sms),
                "no inbound it can answer: latest message",
            ),
            (
                &[],
                &[Facebook, Sms],
                Some(Facebook),
                "no history: first available",
            ),
            (&history, &[], None, "nothing to answer on"),
        ];
        for (messages, available, expected, description) in cases {
            assert_eq!(
                default_reply_channel(messages, available),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn attachments_get_signed_links_and_images_a_preview() {
        let mut with_files = message(Channel::Whatsapp, Direction::Inbound);
        let attachment = |n: u8, kind: &str| Attachment {
            id: AttachmentId::generate([n; 16]),
            message_id: Some(MessageId::generate([1; 16])),
            filename: format!("{n}.bin"),
            mime_type: kind.into(),
            size: 10,
            created_at: "2025-11-04T09:00:00.000Z".into(),
            status: AttachmentStatus::Stored,
            status_reason: None,
            download_url: None,
        };
        with_files.attachments = Some(vec![
            attachment(10, "image/png"),
            attachment(11, "application/pdf"),
        ]);
        let business = BusinessId::generate([4; 16]);
        let links = MediaLinks::of(Some("secret".to_owned())).unwrap_or_else(|| panic!("a signer"));
        let signer = LinkSigner {
            links: &links,
            origin: "https://edge.example",
            business_id: &business,
            expires: 1_000,
        };
        let shown = view(with_files, &signer).attachments;
        assert_eq!(shown.iter().map(|a| a.preview).collect::<Vec<_>>(), [true, false]);
        let signature = shown[0].url.rsplit("signature=").next().unwrap_or_default();
        assert!(shown[0].url.starts_with(
            "https://edge.example/api/download-media?id=0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a&expires=1000&"
        ));
        let first = AttachmentId::generate([10; 16]);
        assert!(links.verify(&business, &first, 1_000, signature, 999));
    }
}
