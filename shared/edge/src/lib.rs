//! The runtime side of crm-edge: requests and responses, who is calling, D1, KV, R2, queues and
//! outbound calls. Everything pure it needs comes from `domain`.
//!
//! - `db/`: one module per table, with all of its SQL;
//! - `runtime`: the runtime itself, chosen at compile time: the Workers runtime in a bundle, its
//!   in-process twin natively (`runtime::native`), which tests run whole pipelines on;
//! - `env`: the bindings of one invocation, counted against Cloudflare's per-invocation limits
//!   (`meter`), and what it used tallied for the businesses it served and stored now and then
//!   (`bill`);
//! - `call`, `http`, `auth`, `queue`, `bounded_fetch`: the plumbing every function shares (`call`
//!   serves a function's declared endpoints to their handlers);
//! - `secrets_key`: the keyring that seals provider and webhook secrets before they reach D1;
//! - the rest are the operations that span tables: storing what channels deliver (`ingest`),
//!   accepting and settling sends (`send_queue`, `message_status`), upserting customers
//!   (`customer_upsert`), publishing and delivering events (`outbox`, `webhook_delivery`),
//!   files in R2 (`media_store`, `inbound_media`), embedded-inbox and console sessions (`sso_sessions`,
//!   `console`), the
//!   webhook tokens already accepted (`used_tokens`), the CRM links' data made searchable for the
//!   bot (`knowledge`), and the periodic sweep of lost work, due fetches and expired history
//!   (`maintenance`).

pub mod alerting;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bill;
pub mod bot;
pub mod bounded_fetch;
pub mod call;
pub mod console;
pub mod conversation_change;
pub mod crm;
#[cfg(feature = "customer-upsert")]
pub mod customer_upsert;
pub mod db;
pub mod env;
pub mod erasure;
pub mod held_inbound;
pub mod http;
#[cfg(feature = "idempotency")]
pub mod idempotency;
pub mod inbound_media;
pub mod ingest;
pub mod invocation;
pub mod knowledge;
pub mod maintenance;
pub mod media_store;
pub mod message_status;
pub mod meter;
pub mod outbox;
pub mod provider_call;
pub mod queue;
pub mod runtime;
pub mod secrets_key;
pub mod send_queue;
pub mod shard_move;
pub mod signed;
pub mod sso_sessions;
#[cfg(test)]
pub(crate) mod testing;
pub mod used_tokens;
pub mod webhook_delivery;

pub use env::Env;

/// Binding names, declared in every `wrangler.toml` that uses them (`functions.toml`).
pub const DB: &str = "DB";
pub const AUTH_CACHE: &str = "AUTH_CACHE";
pub const WEBHOOK_NONCES: &str = "WEBHOOK_NONCES";
