//! The runtime side of crm-edge: requests and responses, who is calling, D1, KV, R2, queues and
//! outbound calls. Everything pure it needs comes from `domain`.

pub mod attachments;
pub mod auth;
pub mod bounded_post;
pub mod channel_accounts;
pub mod customer_upsert;
pub mod customers_repo;
pub mod d1;
pub mod events;
pub mod http;
pub mod ingest;
pub mod messages_repo;
pub mod outbound;
pub mod queue;
pub mod runtime;
pub mod send_queue;
pub mod sso_sessions;
pub mod webhook_delivery;
pub mod webhooks_repo;

/// Binding names, declared in every `wrangler.toml` that uses them.
pub const DB: &str = "DB";
pub const AUTH_CACHE: &str = "AUTH_CACHE";
