//! The parts of the common crate that touch the Workers runtime: bindings, HTTP, D1 and KV.

pub mod attachments;
pub mod auth;
pub mod bounded_post;
pub mod channel_accounts;
pub mod customer_upsert;
pub mod customers_repo;
pub mod d1;
pub mod events;
pub mod http;
pub mod inbound;
pub mod messages_repo;
pub mod outbound;
pub mod queue;
pub mod runtime;
pub mod send;
pub mod sso;
pub mod webhook_delivery;
pub mod webhooks_repo;

/// Binding names, declared in every `wrangler.toml` that uses them.
pub const DB: &str = "DB";
pub const AUTH_CACHE: &str = "AUTH_CACHE";
