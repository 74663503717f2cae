//! The steps the paths share, each written once and named for what it does: a business's
//! WhatsApp number, what Meta delivers to it and its messages as polled ([`channels`]), customers
//! synced and found ([`customers`]), webhook endpoints and their deliveries ([`webhooks`]), CRM
//! connectors and their sync log ([`crms`]), the API's answers ([`api`]), the store read and
//! written shard by shard ([`store`]), and the unique names and numbers that keep a test's records
//! apart. A path's setup that no other path shares stays in its file.

pub mod api;
pub mod channels;
pub mod crms;
pub mod customers;
pub mod store;
pub mod webhooks;

use serde_json::Value;
use std::cell::Cell;

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

/// A number no other call on this thread gave (each test runs on a thread of its own): what keeps
/// a test's names, addresses and ids apart.
pub fn unique_number() -> u64 {
    NEXT.with(|next| {
        next.set(next.get() + 1);
        next.get()
    })
}

/// `{prefix}-{n}`, a tag no other call on this thread gave.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", unique_number())
}

/// An Irish mobile number in E.164 no other call on this thread gave.
pub fn unique_phone() -> String {
    format!("+35387{:07}", unique_number() % 10_000_000)
}

/// An address at `example.com` no other call on this thread gave.
pub fn unique_email(prefix: &str) -> String {
    format!("{}@example.com", unique(prefix))
}

/// The text of a JSON string; empty for anything else.
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The `id` of an object the API answered with.
pub fn id_of(value: &Value) -> String {
    text(&value["id"]).to_owned()
}
