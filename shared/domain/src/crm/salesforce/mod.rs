//! Salesforce, as plain Rust: the pure half of the Salesforce connector.

pub mod api;
pub mod ids;
pub mod outbound;
pub mod settings;
pub mod timeline;
