//! The whole paths, each a test.
mod move_business;
mod send_with_retries;
mod whatsapp_to_kustomer;
