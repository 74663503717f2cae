//! Chatwoot, the inbound side as plain Rust: its signed account webhooks and the contacts,
//! conversations and messages they carry, which the Krayin connector turns into CRM records.
//!
//! The runtime checks a delivery with [`webhook::verify`] (headers and raw body, its own clock
//! passed in), then reads it with [`webhook::parse`]; nothing here touches the network or storage.

pub mod webhook;

pub use webhook::{
    ChatwootAttachment, ChatwootChannel, ChatwootContact, ChatwootConversation, ChatwootEvent,
    ChatwootMessage, MessageType, Refusal, Topic,
};
