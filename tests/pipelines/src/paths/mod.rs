//! The whole paths, each a test.
mod whatsapp_to_kustomer;
