//! The consumer of `crm-edge-inbound-media`: fetches each file received with a message from its
//! provider, with retries (see `edge::messaging::inbound_media`), and settles its attachment `stored` or
//! `failed`; when a message's last file settles, its `message.received` event goes out.

mod fetch;

pub use fetch::handle;

edge::queue_consumer!(edge::messaging::inbound_media::MediaFetch, fetch::handle);
