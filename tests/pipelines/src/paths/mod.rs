//! The whole paths, each a test.
mod destinations;
mod move_business;
mod send_message;
mod send_with_retries;
mod webhook_api;
mod webhooks_api;
mod webhooks_delivery;
mod webhooks_events;
mod whatsapp_to_kustomer;
