//! Mailgun: inbound email through a route's `forward()` action, outbound through the Messages API.

pub mod api;
pub mod signed_fields;
pub mod webhook;

/// Where Mailgun serves stored messages and their attachments, each with its subdomains.
pub const MEDIA_HOSTS: &[&str] = &["mailgun.net", "mailgun.org"];
