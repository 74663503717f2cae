//! What the CRMs' tests build their records from: a message and a customer as the connectors
//! are handed them.

use crate::channel::{Channel, Direction, MessageStatus};
use crate::customer::Customer;
use crate::ids::{ConversationId, CustomerId, MessageId};
use crate::message::Message;
use serde_json::Map;

pub(crate) fn message(channel: Channel, direction: Direction, content: &str) -> Message {
    Message {
        id: MessageId::generate([1; 16]),
        conversation_id: ConversationId::generate([2; 16]),
        customer_id: CustomerId::generate([3; 16]),
        content: content.to_owned(),
        platform: channel,
        channel,
        direction,
        status: MessageStatus::Received,
        status_reason: None,
        created_at: "2026-11-27T10:00:00.000Z".to_owned(),
        updated_at: "2026-11-27T10:00:00.000Z".to_owned(),
        attachments: None,
        created_us: 0,
    }
}

pub(crate) fn customer(name: &str, email: Option<&str>, whatsapp: Option<&str>) -> Customer {
    Customer {
        id: CustomerId::generate([3; 16]),
        name: name.to_owned(),
        email: email.map(str::to_owned),
        phone: None,
        whatsapp_number: whatsapp.map(str::to_owned),
        first_name: None,
        last_name: None,
        address: None,
        notes: None,
        tags: Vec::new(),
        external_id: None,
        external_system: None,
        custom_fields: Map::new(),
        created_at: "2026-11-27T10:00:00.000Z".to_owned(),
        updated_at: "2026-11-27T10:00:00.000Z".to_owned(),
    }
}
