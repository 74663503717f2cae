//! What every function stands on: the bindings of one invocation and what it may use of them
//! (`env`, `meter`, `invocation`, `bill`), serving declared endpoints to typed handlers (`call`,
//! `http`, `auth`, `idempotency`, `signed` for partners' proofs), the keyring that seals secrets
//! (`secrets_key`), typed queue producers (`queue`), outbound calls held to their limits
//! (`bounded_fetch`, `provider_call`), the audit trail (`audit`), console and inbox sessions
//! (`console`, `sso_sessions`) and the webhook tokens already accepted (`used_tokens`).
//!
//! Below the services: nothing here imports `messaging`, `events`, `ops`, `crm`, `knowledge` or
//! `bot` (`scripts/check-structure.mjs`).

pub mod audit;
pub mod auth;
pub mod bill;
pub mod bounded_fetch;
pub mod call;
pub mod console;
pub mod env;
pub mod http;
#[cfg(feature = "idempotency")]
pub mod idempotency;
pub mod invocation;
pub mod meter;
pub mod provider_call;
pub mod queue;
pub mod secrets_key;
pub mod signed;
pub mod sso_sessions;
pub mod used_tokens;
