//! The whole paths, each a test.
mod crm_link;
mod crm_links;
mod whatsapp_to_kustomer;
