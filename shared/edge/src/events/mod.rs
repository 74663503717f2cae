//! Events to a business's endpoints: published in the batch that makes them true (`outbox`) and
//! delivered, signed, retried and logged (`webhook_delivery`).

pub mod outbox;
pub mod webhook_delivery;
