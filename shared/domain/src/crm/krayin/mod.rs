//! Krayin CRM, as plain Rust: the ids of a contact's Krayin records.

pub mod external_id;

pub use external_id::KrayinRefs;
