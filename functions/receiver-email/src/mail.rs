//! One forwarded mail: the signature and its timestamp checked first, then the message and its
//! files stored. Mailgun retries anything but a 2xx (and gives up on a 406).

use crate::form;
use domain::error::ApiError;
use domain::providers::mailgun::webhook as mailgun;
use edge::db::channel_accounts::ChannelAccount;
use edge::ingest::{self, IngestReport};
use edge::{http, runtime};
use serde::Serialize;
use worker::{Env, Request, Response};

#[derive(Serialize)]
struct ReceivedOut {
    received: usize,
    #[serde(flatten)]
    report: IngestReport,
}

pub async fn receive(mut req: Request, env: &Env, account: &ChannelAccount) -> Result<Response, ApiError> {
    let signing_key = account.required_secret("signing_key")?;
    let form = form::read(&mut req).await?;
    let fields = form::fields(&form);
    mailgun::verify_signature(signing_key, &fields, runtime::now())?;

    let attachments = form::attachments(&form, fields.attachment_count()?).await?;
    let batch = mailgun::parse(&fields, attachments)?;
    let received = batch.messages.len();
    let report = ingest::ingest(env, account, batch, &http::origin(&req, env)?).await?;
    http::json(200, &ReceivedOut { received, report })
}
