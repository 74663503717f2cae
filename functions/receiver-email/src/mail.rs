//! One forwarded mail whose signature held (`edge::platform::signed::Mailgun`: the signature fields scanned
//! from the raw body and checked, signature, timestamp, then that the token was not used before):
//! its form parsed, the message and its files stored, and only then the token recorded as used.
//! Mailgun retries anything but a 2xx (and gives up on a 406), so a POST that failed on our side
//! comes back with the same token and is accepted.

use crate::form;
use domain::api::receivers::MailReceivedOut;
use domain::error::ApiError;
use domain::providers::mailgun::webhook as mailgun;
use edge::Env;
use edge::db::channel_accounts::ChannelAccount;
use edge::platform::signed::MailgunForm;
use edge::runtime::Response;
use edge::{messaging::ingest, platform::http, platform::used_tokens};

pub async fn receive(
    env: &Env,
    account: &ChannelAccount,
    signed: MailgunForm,
    origin: &str,
) -> Result<Response, ApiError> {
    let MailgunForm {
        content_type,
        body,
        token,
        used,
    } = signed;
    let form = form::parse(&content_type, body, origin).await?;
    let fields = form::fields(&form);
    let attachments = form::attachments(&form, fields.attachment_count()?).await?;
    let batch = mailgun::parse(&fields, &token, attachments)?;
    let received = batch.messages.len();
    let report = ingest::ingest(env, account, batch, origin).await?;
    used_tokens::record(env, &used).await?;
    http::json(200, &MailReceivedOut { received, report })
}
