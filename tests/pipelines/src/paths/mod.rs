//! The whole paths, each a test.
mod inbound;
mod move_business;
mod receivers;
mod send_with_retries;
mod whatsapp_to_kustomer;
