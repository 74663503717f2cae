//! Messages in and out: storing what channels deliver (`ingest`, `held_inbound` while a business
//! moves), accepting and settling sends (`send_queue`, `message_status`), files in R2
//! (`media_store`, `inbound_media`), a conversation's status changes (`conversation_change`) and
//! upserting customers (`customer_upsert`).

pub mod conversation_change;
#[cfg(feature = "customer-upsert")]
pub mod customer_upsert;
pub mod held_inbound;
pub mod inbound_media;
pub mod ingest;
pub mod media_store;
pub mod message_status;
pub mod send_queue;
