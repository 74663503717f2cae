//! One forwarded mail: the signature fields scanned from the raw body and checked (signature,
//! timestamp, then that the token was not used before) before the form is parsed; then the
//! message and its files stored, and only then the token recorded as used. Mailgun retries
//! anything but a 2xx (and gives up on a 406), so a POST that failed on our side comes back with
//! the same token and is accepted.

use crate::form;
use domain::api::receivers::MailReceivedOut;
use domain::error::ApiError;
use domain::providers::mailgun::webhook::{self as mailgun, UsedToken};
use edge::Env;
use edge::db::channel_accounts::ChannelAccount;
use edge::ingest;
use edge::runtime::{Request, Response};
use edge::{http, runtime, used_tokens};

pub async fn receive(mut req: Request, env: &Env, account: &ChannelAccount) -> Result<Response, ApiError> {
    let signing_key = account.required_secret("signing_key")?;
    let raw = form::read(&mut req).await?;
    let token = mailgun::verify_signature(signing_key, &raw.signature_fields()?, runtime::now())?;
    let used = UsedToken::new(&account.id, &token);
    if used_tokens::is_used(env, &used).await? {
        return Err(UsedToken::replayed());
    }

    let origin = http::origin(&req, env)?;
    let form = raw.parse(&origin, &token).await?;
    let fields = form::fields(&form);
    let attachments = form::attachments(&form, fields.attachment_count()?).await?;
    let batch = mailgun::parse(&fields, &token, attachments)?;
    let received = batch.messages.len();
    let report = ingest::ingest(env, account, batch, &origin).await?;
    used_tokens::record(env, &used).await?;
    http::json(200, &MailReceivedOut { received, report })
}
