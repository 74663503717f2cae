//! The whole paths, each a test.
mod chatwoot_to_krayin;
mod krayin;
mod whatsapp_to_kustomer;
