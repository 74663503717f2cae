//! The consumer of `crm-edge-outbound-messages`: each queue message names one outbound message,
//! which is sent through its channel's provider and settled `sent` or `failed`, or put back on
//! the queue with a delay when the provider is busy or down.
//!
//! The retry policy (give up on the 5th attempt, with the last reason) counts the queue's own
//! deliveries of each message.

mod dispatch;

pub use dispatch::handle;

edge::queue_consumer!(edge::messaging::send_queue::QueuedSend, dispatch::handle);
