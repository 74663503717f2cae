//! Kustomer, both directions, as plain Rust: the connector's settings and secrets, how our
//! customers map onto Kustomer's, the requests its REST API documents and how to read its
//! answers, its signed outbound webhooks, and when and how a conversation is handed to a person.
//!
//! The runtime sends what [`api`] builds to [`KustomerSettings::api_base`] with
//! `Authorization: Bearer <api_key>` and hands webhook bodies to [`webhook`] after
//! [`webhook::verify`]; nothing here touches the network, the clock or storage.

pub mod api;
pub mod escalation;
pub mod mapping;
pub mod permissions;
pub mod settings;
pub mod webhook;

pub use mapping::{FieldMapping, external_id_of};
pub use settings::{KustomerSecrets, KustomerSettings, Priority};

/// Kustomer refuses a note whose body is longer than this many characters.
pub const MAX_NOTE_CHARS: usize = 10_240;
