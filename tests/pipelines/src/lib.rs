//! Whole pipelines of crm-edge natively, in one process: every function on edge's native runtime
//! (`edge::runtime::native`), reached through the gateway as a client reaches it, its queues
//! consumed by their functions when a test says so, and the partners it calls (Meta, Kustomer,
//! Krayin, a business's webhook endpoint, a CRM's pages) answered by the scripts in [`partners`],
//! which speak their real protocols. A test takes milliseconds, not a 29-worker stack.
//!
//! [`App`] is a deployment: a new one per test, with fresh D1 shards migrated from
//! `migrations/`. The paths under `paths/` are the tests; the steps they share are in `steps/`.

pub mod app;
pub mod partners;

#[cfg(test)]
mod paths;
#[cfg(test)]
mod steps;

pub use app::{Answer, App, Business};
