//! The WhatsApp Cloud API's part of a Meta notification: a `messages` change with the
//! messages a number received and the statuses of the messages it sent.

use super::graph_id::optional_id;
use super::notification::Notification;
use crate::channel::MessageStatus;
use crate::inbound::{InboundMedia, InboundMessage, StatusUpdate};
use crate::json::{Lenient, Rejection};
use crate::phone::Phone;
use crate::providers::display_name;
use serde::Deserialize;

/// Whether a change was about the account's own number (and taken into the batch) or about
/// another number of the same app (and ignored).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Relevance {
    Taken,
    AboutAnotherNumber,
}

/// Takes a change's messages and statuses into the notification; `path` is the change's
/// (`entry[0].changes[1]`). A message, status or contact that cannot be read is rejected on its
/// own, so its neighbours are still stored.
pub(super) fn whatsapp_change(
    change: Change,
    address: &str,
    path: &str,
    notification: &mut Notification,
) -> Relevance {
    if change.field.as_deref().is_some_and(|name| name != "messages") {
        return Relevance::Taken;
    }
    let Some(value) = change.value else {
        return Relevance::Taken;
    };
    let number_id = value.metadata.and_then(|metadata| metadata.phone_number_id);
    if number_id.is_some_and(|id| id != address) {
        return Relevance::AboutAnotherNumber;
    }
    let path = format!("{path}.value");
    let rejected = &mut notification.rejected;
    let contacts_sent = value.contacts.len();
    let contacts: Vec<Contact> = value
        .contacts
        .into_iter()
        .enumerate()
        .filter_map(|(at, contact)| contact.take(&format!("{path}.contacts[{at}]"), rejected))
        .collect();
    for (at, message) in value.messages.into_iter().enumerate() {
        let message_path = format!("{path}.messages[{at}]");
        let Some(message) = message.take(&message_path, rejected) else {
            continue;
        };
        let from = match Phone::parse(&format!("+{}", message.from), None) {
            Ok(phone) => phone.as_str().to_owned(),
            Err(error) => {
                rejected.push(Rejection::new(
                    format!("{message_path}.from"),
                    format!("not a phone number: {error}"),
                ));
                continue;
            }
        };
        // The only contact names the sender even without a matching `wa_id`, unless another
        // contact was sent and could not be read: then it may have been the sender's.
        let only_contact = match contacts.as_slice() {
            [only] if contacts_sent == 1 => Some(only),
            _ => None,
        };
        let sender_name = contacts
            .iter()
            .find(|contact| contact.wa_id.as_deref() == Some(message.from.as_str()))
            .or(only_contact)
            .and_then(|contact| contact.profile.as_ref())
            .and_then(|profile| display_name(profile.name.as_deref()));
        if let Some((content, media)) = whatsapp_content(message.body) {
            notification.batch.messages.push(InboundMessage {
                provider_message_id: message.id,
                from,
                sender_name,
                content,
                media,
            });
        }
    }
    for (at, status) in value.statuses.into_iter().enumerate() {
        let Some(status) = status.take(&format!("{path}.statuses[{at}]"), rejected) else {
            continue;
        };
        let Some(mapped) = whatsapp_status(&status.status) else {
            continue;
        };
        let reason = status.errors.first().and_then(WhatsappError::reason);
        notification.batch.statuses.push(StatusUpdate {
            provider_message_id: status.id,
            status: mapped,
            reason: (mapped == MessageStatus::Failed).then_some(reason).flatten(),
        });
    }
    Relevance::Taken
}

fn whatsapp_status(status: &str) -> Option<MessageStatus> {
    match status {
        "sent" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "read" => Some(MessageStatus::Read),
        "failed" => Some(MessageStatus::Failed),
        _ => None,
    }
}

/// The text a person would read for a WhatsApp message, and its media. None for a message that
/// carries nothing to keep (a reaction being removed).
fn whatsapp_content(body: WhatsappBody) -> Option<(String, Vec<InboundMedia>)> {
    let text_only = |text: String| Some((text, Vec::new()));
    match body {
        WhatsappBody::Text { text } => text_only(text.body),
        WhatsappBody::Image { image: media }
        | WhatsappBody::Video { video: media }
        | WhatsappBody::Audio { audio: media }
        | WhatsappBody::Document { document: media }
        | WhatsappBody::Sticker { sticker: media } => Some((
            media.caption.unwrap_or_default(),
            vec![InboundMedia::WhatsappMediaId {
                id: media.id,
                mime_type: media.mime_type,
                filename: media.filename,
            }],
        )),
        WhatsappBody::Location { location } => text_only(location.describe()),
        WhatsappBody::Contacts { contacts } => text_only(
            contacts
                .iter()
                .map(ContactCard::describe)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        WhatsappBody::Interactive { interactive } => text_only(interactive.describe()),
        WhatsappBody::Button { button } => text_only(button.text.or(button.payload).unwrap_or_default()),
        WhatsappBody::Reaction { reaction } => reaction
            .emoji
            .filter(|emoji| !emoji.is_empty())
            .map(|emoji| (format!("Reacted {emoji}"), Vec::new())),
        WhatsappBody::System { system } => text_only(system.body.unwrap_or_default()),
        WhatsappBody::Other { kind } => text_only(format!("[unsupported WhatsApp message: {kind}]")),
    }
}

#[derive(Deserialize)]
pub(super) struct Change {
    field: Option<String>,
    value: Option<ChangeValue>,
}

#[derive(Deserialize)]
struct ChangeValue {
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Lenient<Contact>>,
    #[serde(default)]
    messages: Vec<Lenient<WhatsappMessage>>,
    #[serde(default)]
    statuses: Vec<Lenient<WhatsappStatus>>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "optional_id")]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappMessage {
    id: String,
    from: String,
    #[serde(flatten)]
    body: WhatsappBody,
}

/// A WhatsApp message by its `type`, each with the object named after the type.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WhatsappBody {
    Text {
        text: WhatsappText,
    },
    Image {
        image: WhatsappMedia,
    },
    Video {
        video: WhatsappMedia,
    },
    Audio {
        audio: WhatsappMedia,
    },
    Document {
        document: WhatsappMedia,
    },
    Sticker {
        sticker: WhatsappMedia,
    },
    Location {
        location: Location,
    },
    Contacts {
        contacts: Vec<ContactCard>,
    },
    Interactive {
        interactive: Interactive,
    },
    Button {
        button: Button,
    },
    Reaction {
        reaction: Reaction,
    },
    System {
        system: SystemNotice,
    },
    #[serde(untagged)]
    Other {
        #[serde(rename = "type")]
        kind: String,
    },
}

#[derive(Deserialize)]
struct WhatsappText {
    body: String,
}

#[derive(Deserialize)]
struct WhatsappMedia {
    id: String,
    mime_type: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
    name: Option<String>,
    address: Option<String>,
}

impl Location {
    fn describe(&self) -> String {
        let place = [&self.name, &self.address]
            .into_iter()
            .filter_map(|part| display_name(part.as_deref()))
            .collect::<Vec<_>>()
            .join(", ");
        let coordinates = match (self.latitude, self.longitude) {
            (Some(latitude), Some(longitude)) => format!("{latitude}, {longitude}"),
            _ => String::new(),
        };
        match (place.is_empty(), coordinates.is_empty()) {
            (false, false) => format!("Location: {place} ({coordinates})"),
            (false, true) => format!("Location: {place}"),
            _ => format!("Location: {coordinates}"),
        }
    }
}

#[derive(Deserialize)]
struct ContactCard {
    name: Option<ContactName>,
    #[serde(default)]
    phones: Vec<ContactPhone>,
}

impl ContactCard {
    fn describe(&self) -> String {
        let name = self
            .name
            .as_ref()
            .and_then(|name| display_name(name.formatted_name.as_deref()))
            .unwrap_or_else(|| "(no name)".to_owned());
        let phones: Vec<&str> = self
            .phones
            .iter()
            .filter_map(|phone| phone.phone.as_deref())
            .collect();
        if phones.is_empty() {
            format!("Contact: {name}")
        } else {
            format!("Contact: {name} ({})", phones.join(", "))
        }
    }
}

#[derive(Deserialize)]
struct ContactName {
    formatted_name: Option<String>,
}

#[derive(Deserialize)]
struct ContactPhone {
    phone: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
    nfm_reply: Option<FlowReply>,
}

impl Interactive {
    fn describe(self) -> String {
        if let Some(reply) = self.button_reply.or(self.list_reply) {
            return reply.title.or(reply.id).unwrap_or_default();
        }
        self.nfm_reply
            .and_then(|reply| reply.body.or(reply.response_json))
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Reply {
    id: Option<String>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct FlowReply {
    body: Option<String>,
    response_json: Option<String>,
}

#[derive(Deserialize)]
struct Button {
    text: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct SystemNotice {
    body: Option<String>,
}

#[derive(Deserialize)]
struct WhatsappStatus {
    id: String,
    status: String,
    #[serde(default)]
    errors: Vec<WhatsappError>,
}

#[derive(Deserialize)]
struct WhatsappError {
    code: Option<i64>,
    title: Option<String>,
    message: Option<String>,
}

impl WhatsappError {
    fn reason(&self) -> Option<String> {
        let text = display_name(self.title.as_deref()).or_else(|| display_name(self.message.as_deref()));
        match (text, self.code) {
            (Some(text), Some(code)) => Some(format!("{text} ({code})")),
            (Some(text), None) => Some(text),
            (None, Some(code)) => Some(format!("error {code}")),
            (None, None) => None,
        }
    }
}
