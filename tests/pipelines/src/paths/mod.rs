//! The whole paths, each a test.
mod chatwoot_to_krayin;
mod crm_link;
mod crm_links;
mod krayin;
mod kustomer_api;
mod kustomer_backlog;
mod kustomer_limits;
mod kustomer_outage;
mod kustomer_support;
mod kustomer_sync;
mod kustomer_webhooks;
mod move_business;
mod send_with_retries;
mod whatsapp_to_kustomer;
