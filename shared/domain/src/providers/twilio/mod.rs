//! Twilio Programmable Messaging: SMS and WhatsApp, one webhook format and one send API.

pub mod api;
pub mod webhook;
