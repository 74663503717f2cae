//! The consumer of crm-edge-inbound-held: what the channel receivers (and receiver-chatwoot) kept
//! while a business was being moved is stored here once the move is over (`edge::messaging::held_inbound`
//! keeps it, `store` stores it). A function of its own, so that no receiver carries the storing
//! of every provider's batches and Chatwoot's deliveries to answer its one webhook.

mod store;

pub use store::handle;

edge::queue_consumer!(edge::messaging::held_inbound::HeldInbound, handle);
