//! The common crate of crm-edge: everything two functions need, written once.
//!
//! The modules at the top are pure domain logic that `cargo test` runs natively, with the clock
//! and randomness passed in. `edge` holds the parts that touch the Workers runtime.

pub mod api_key;
pub mod channel;
pub mod customer;
pub mod email;
pub mod embed;
pub mod error;
pub mod ids;
pub mod inbound;
pub mod lookup;
pub mod media;
pub mod message;
pub mod phone;
pub mod sso;
pub mod time;
pub mod upsert;

pub mod edge;
pub mod outbound_clients;
pub mod providers;
pub mod webhook_signing;
pub mod webhooks;
