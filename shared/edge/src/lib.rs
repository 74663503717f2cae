//! The runtime side of crm-edge: requests and responses, who is calling, D1, KV, R2, queues and
//! outbound calls. Everything pure it needs comes from `domain`. Its top level is nine folders
//! (and `testing`, the tests' fixture), the lower three beneath the services:
//!
//! - `runtime`: the runtime itself, chosen at compile time: the Workers runtime in a bundle, its
//!   in-process twin natively (`runtime::native`), which tests run whole pipelines on;
//! - `platform`: what every function stands on: the bindings of one invocation (`env`), counted
//!   against Cloudflare's per-invocation limits (`meter`) and tallied for the businesses it served
//!   (`bill`); serving declared endpoints to typed handlers (`call`, `http`, `auth`, `signed`);
//!   the keyring (`secrets_key`), queues (`queue`), outbound calls (`bounded_fetch`,
//!   `provider_call`), the audit trail, console and inbox sessions;
//! - `db`: one module per table, with all of its SQL, and the typed seam to D1 (`db::batch`,
//!   `db::error`);
//!
//! and the services, which may use those three and each other:
//!
//! - `messaging`: storing what channels deliver, accepting and settling sends, files in R2,
//!   upserting customers;
//! - `events`: publishing and delivering events to a business's endpoints;
//! - `crm`: the CRM connectors and the sync that drives them;
//! - `knowledge`: the CRM links' data made searchable for the bot;
//! - `bot`: the bot's turns;
//! - `ops`: the periodic sweep, alert rules, backups and restores, moves between shards, erasure.

pub mod bot;
pub mod crm;
pub mod db;
pub mod events;
pub mod knowledge;
pub mod messaging;
pub mod ops;
pub mod platform;
pub mod runtime;
#[cfg(test)]
pub(crate) mod testing;

pub use platform::env::Env;

/// Binding names, declared in every `wrangler.toml` that uses them (`functions.toml`).
pub const DB: &str = "DB";
pub const AUTH_CACHE: &str = "AUTH_CACHE";
pub const WEBHOOK_NONCES: &str = "WEBHOOK_NONCES";
