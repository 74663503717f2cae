//! The pure domain of crm-edge: what a customer, a message, an event or a provider payload is,
//! and every rule about them, as plain Rust that `cargo test` runs natively.
//!
//! This crate does not depend on the Workers runtime, so the compiler keeps it pure: the clock
//! and randomness are passed in by the callers in `edge` and the functions.

pub mod alerts;
pub mod api;
pub mod api_key;
pub mod audit;
pub mod backup;
pub mod batch_lookup;
pub mod bot;
pub mod channel;
pub mod console;
pub mod cost;
pub mod crm;
pub mod crypto;
pub mod customer;
pub mod customer_list;
pub mod destination;
pub mod email;
pub mod embed;
pub mod erasure;
pub mod error;
pub mod idempotency;
pub mod identify;
pub mod ids;
pub mod inbound;
pub mod json;
pub mod key_usage;
pub mod links;
pub mod lookup;
pub mod maintenance;
pub mod media;
pub mod message;
pub mod outgoing;
pub mod phone;
pub mod platform;
pub mod pricing;
pub mod providers;
pub mod query;
pub mod rate_limit;
pub mod request_url;
pub mod retry_after;
pub mod sealed;
pub mod shard_move;
pub mod sso;
pub mod tenant;
pub mod text;
pub mod time;
pub mod upsert;
pub mod webhook_signing;
pub mod webhooks;
