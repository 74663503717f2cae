//! The whole paths, each a test.
mod attachments;
mod inbound;
mod messages;
mod meta_partial;
mod move_business;
mod receivers;
mod send_with_retries;
mod surrogates;
mod whatsapp_to_kustomer;
