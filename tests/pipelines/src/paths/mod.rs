//! The whole paths, each a test.
mod chatwoot_to_krayin;
mod krayin;
mod move_business;
mod send_with_retries;
mod whatsapp_to_kustomer;
