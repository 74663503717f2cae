//! Twilio Programmable Messaging: SMS and WhatsApp, one webhook format and one send API.

pub mod api;
pub mod webhook;

/// Where Twilio serves received media: its API (the `MediaUrl` of a webhook), which redirects to
/// its media CDN or to the S3 bucket that holds the file; each with its subdomains.
pub const MEDIA_HOSTS: &[&str] = &["twilio.com", "twiliocdn.com", "amazonaws.com"];
