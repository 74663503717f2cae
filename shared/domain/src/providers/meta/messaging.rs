//! The Messenger Platform's and Instagram Messaging's part of a Meta notification: an entry's
//! `messaging` events (messages, postbacks, deliveries and reads).

use super::graph_id::id;
use crate::channel::MessageStatus;
use crate::inbound::{InboundBatch, InboundMedia, InboundMessage, StatusUpdate};
use serde::Deserialize;

pub(super) fn messaging_event(event: MessagingEvent, batch: &mut InboundBatch) {
    let sender = event.sender.map(|party| party.id);
    if let Some(message) = event.message {
        if message.is_echo || message.is_deleted {
            return;
        }
        let (Some(mid), Some(from)) = (message.mid, sender) else {
            return;
        };
        let media = message
            .attachments
            .into_iter()
            .filter_map(|attachment| {
                let url = attachment.payload?.url.filter(|url| !url.is_empty())?;
                Some(InboundMedia::Url {
                    url,
                    mime_type: None,
                    filename: None,
                })
            })
            .collect();
        batch.messages.push(InboundMessage {
            provider_message_id: mid,
            from,
            sender_name: None,
            content: message.text.unwrap_or_default(),
            media,
        });
    } else if let Some(postback) = event.postback {
        // A tapped button is the customer's answer; it is kept when Meta gives it an id.
        if let (Some(mid), Some(from)) = (postback.mid, sender) {
            batch.messages.push(InboundMessage {
                provider_message_id: mid,
                from,
                sender_name: None,
                content: postback.title.or(postback.payload).unwrap_or_default(),
                media: Vec::new(),
            });
        }
    } else if let Some(delivery) = event.delivery {
        batch
            .statuses
            .extend(delivery.mids.into_iter().map(|mid| StatusUpdate {
                provider_message_id: mid,
                status: MessageStatus::Delivered,
                reason: None,
            }));
    } else if let Some(mid) = event.read.and_then(|read| read.mid) {
        // Messenger marks reads with a watermark only (nothing to apply to one message);
        // Instagram names the message read.
        batch.statuses.push(StatusUpdate {
            provider_message_id: mid,
            status: MessageStatus::Read,
            reason: None,
        });
    }
}

// The notification as Meta sends it. Unknown fields are ignored: Meta adds fields freely.

#[derive(Deserialize)]
pub(super) struct MessagingEvent {
    sender: Option<Party>,
    message: Option<MessengerMessage>,
    postback: Option<Postback>,
    delivery: Option<Delivery>,
    read: Option<Read>,
}

#[derive(Deserialize)]
struct Party {
    #[serde(deserialize_with = "id")]
    id: String,
}

#[derive(Deserialize)]
struct MessengerMessage {
    mid: Option<String>,
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
}

#[derive(Deserialize)]
struct Attachment {
    payload: Option<AttachmentPayload>,
}

#[derive(Deserialize)]
struct AttachmentPayload {
    url: Option<String>,
}

#[derive(Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(default)]
    mids: Vec<String>,
}

#[derive(Deserialize)]
struct Read {
    mid: Option<String>,
}
