//! Meta: the WhatsApp Cloud API, the Messenger Platform and Instagram Messaging, which share one
//! app secret, one webhook format and the Graph API.

pub mod api;
mod graph_id;
mod messaging;
pub mod webhook;
mod whatsapp;
