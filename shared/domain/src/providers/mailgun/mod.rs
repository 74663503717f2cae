//! Mailgun: inbound email through a route's `forward()` action, outbound through the Messages API.

pub mod api;
pub mod signed_fields;
pub mod webhook;
