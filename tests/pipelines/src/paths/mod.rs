//! The whole paths, each a test.
mod kustomer_api;
mod kustomer_backlog;
mod kustomer_limits;
mod kustomer_outage;
mod kustomer_support;
mod kustomer_sync;
mod kustomer_webhooks;
mod whatsapp_to_kustomer;
