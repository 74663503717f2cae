//! The parts of the common crate that touch the Workers runtime: bindings, HTTP, D1 and KV.

pub mod auth;
pub mod customer_upsert;
pub mod customers_repo;
pub mod d1;
pub mod http;
pub mod runtime;

/// Binding names, declared in every `wrangler.toml` that uses them.
pub const DB: &str = "DB";
pub const AUTH_CACHE: &str = "AUTH_CACHE";
