//! Meta: the WhatsApp Cloud API, the Messenger Platform, Instagram Messaging and Facebook Page
//! comments, which share one app secret, one webhook format and the Graph API.

pub mod api;
mod feed;
mod graph_id;
mod messaging;
mod notification;
pub mod webhook;
mod whatsapp;

/// Where Meta serves received media (Messenger and Instagram attachment links, WhatsApp media
/// downloads), each with its subdomains.
pub const MEDIA_HOSTS: &[&str] = &[
    "fbcdn.net",
    "fbsbx.com",
    "facebook.com",
    "cdninstagram.com",
    "instagram.com",
    "whatsapp.net",
];
/// The media hosts that are sent the access token: WhatsApp media downloads
/// (`lookaside.fbsbx.com`) require it.
pub const MEDIA_CREDENTIAL_HOSTS: &[&str] = &["fbsbx.com"];
