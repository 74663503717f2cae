//! The inbound channel webhooks (`tests/e2e/receivers.test.mjs`): what Meta (WhatsApp,
//! Messenger, Instagram), Twilio (SMS, WhatsApp) and Mailgun (email) post is verified, stored
//! once, and visible through the API; what they did not sign is refused and leaves nothing
//! behind; the files that come with messages are fetched by the media-fetcher from the
//! provider's hosts, with redirects, limits, retries and the sweep's rescue.
//!
//! Each provider's account is made here as the operator makes it, and each POST is signed by the
//! partner code (`partners::{meta, twilio, mailgun}`), never by the product's.

mod mailgun;
mod meta;
mod twilio;

use crate::app::{Answer, App, Business};
use crate::partners::form::url_encoded;
use crate::partners::{mailgun as mailgun_partner, twilio as twilio_partner, unique_hex};
use crate::paths::inbound::{MetaSetup, deliver_meta, meta_account, post_meta};
use crate::paths::inbound::{channel_account, post};
use crate::steps::api::UNKNOWN_ID;
use crate::steps::unique_phone;
use serde_json::json;

/// A business with one Twilio number on `channel` (`sms`, `whatsapp`), and what Twilio knows of it.
struct TwilioSetup {
    business: Business,
    account_id: String,
    channel: String,
    address: String,
    path: String,
    account_sid: String,
    auth_token: String,
}

async fn twilio_account(app: &App, channel: &str) -> TwilioSetup {
    let business = app.business("Twilio customer").await;
    let address = unique_phone();
    let account_sid = twilio_partner::account_sid();
    let auth_token = unique_hex(32);
    let account = channel_account(
        app,
        &business.id,
        json!({
            "channel": channel,
            "provider": "twilio",
            "address": address,
            "settings": { "account_sid": account_sid },
            "secrets": { "auth_token": auth_token }
        }),
    )
    .await;
    TwilioSetup {
        business,
        account_id: account["id"].as_str().unwrap_or_default().to_owned(),
        channel: channel.to_owned(),
        address,
        path: account["webhook_path"].as_str().unwrap_or_default().to_owned(),
        account_sid,
        auth_token,
    }
}

impl TwilioSetup {
    /// An incoming message to the number, from `from`, with Twilio's parameters.
    fn incoming(&self, from: &str, body: &str) -> Vec<(String, String)> {
        let to = if self.channel == "whatsapp" {
            format!("whatsapp:{}", self.address)
        } else {
            self.address.clone()
        };
        twilio_partner::incoming(&to, from, body, &twilio_partner::message_sid())
    }
}

/// Twilio's POST of `params` with `signature` as its `X-Twilio-Signature` (none when `None`).
async fn post_twilio_signed(
    app: &App,
    path: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Answer {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature", signature));
    }
    post(app, path, &headers, url_encoded(params).into_bytes()).await
}

/// Twilio's POST of `params`, signed for the public URL Twilio was given (the deployment's
/// configured origin and the path, not the name the request arrives by).
async fn post_twilio(app: &App, setup: &TwilioSetup, params: &[(String, String)]) -> Answer {
    let url = format!("{}{}", crate::app::ORIGIN, setup.path);
    let signature = twilio_partner::signature(&setup.auth_token, &url, params);
    post_twilio_signed(app, &setup.path, params, Some(&signature)).await
}

/// A business with one Mailgun inbound address, and what Mailgun knows of it.
struct MailgunSetup {
    business: Business,
    account_id: String,
    address: String,
    path: String,
    signing_key: String,
}

async fn mailgun_account(app: &App) -> MailgunSetup {
    let business = app.business("Mailgun customer").await;
    let address = format!("support-{}@in.example.com", unique_hex(8));
    let signing_key = unique_hex(32);
    let account = channel_account(
        app,
        &business.id,
        json!({
            "channel": "email",
            "provider": "mailgun",
            "address": address,
            "settings": { "domain": "in.example.com" },
            "secrets": { "signing_key": signing_key, "api_key": format!("key-{}", unique_hex(8)) }
        }),
    )
    .await;
    MailgunSetup {
        business,
        account_id: account["id"].as_str().unwrap_or_default().to_owned(),
        address,
        path: account["webhook_path"].as_str().unwrap_or_default().to_owned(),
        signing_key,
    }
}

impl MailgunSetup {
    /// The signature fields of a POST signed now (on the stack's clock) with the account's key.
    fn signed(&self, app: &App) -> Vec<(String, String)> {
        mailgun_partner::signed(&self.signing_key, app.stack.now_ms() / 1000)
    }

    /// A mail to the account's address from `sender`, its `From` the same, with the usual
    /// subject and body.
    fn mail(&self, sender: &str) -> Vec<(String, String)> {
        self.mail_with(sender, sender, "Order 1234")
    }

    fn mail_with(&self, sender: &str, from: &str, subject: &str) -> Vec<(String, String)> {
        mailgun_partner::Mail {
            recipient: &self.address,
            sender,
            from,
            subject,
            body: "Where is my parcel?",
            message_id: &mailgun_partner::message_id(),
        }
        .fields()
    }
}
