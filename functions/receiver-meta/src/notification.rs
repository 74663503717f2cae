//! A notification: verified against the app secret over the raw body, parsed for the account the
//! path names, and stored before Meta is answered (Meta retries anything but a 200).

use domain::error::ApiError;
use domain::providers::meta::webhook as meta;
use edge::db::channel_accounts::ChannelAccount;
use edge::http;
use edge::ingest::{self, IngestReport};
use serde::Serialize;
use worker::{Env, Request, Response, console_warn};

#[derive(Serialize)]
struct ReceivedOut {
    /// Messages the notification carried for this account.
    received: usize,
    /// Status updates it carried.
    statuses: usize,
    /// Entries about another number, page or account of the same app, not taken.
    ignored: usize,
    #[serde(flatten)]
    report: IngestReport,
}

pub async fn receive(mut req: Request, env: &Env, account: &ChannelAccount) -> Result<Response, ApiError> {
    let app_secret = account.required_secret("app_secret")?;
    let body = http::read_body(&mut req, meta::BODY_LIMIT).await?;
    let signature = req.headers().get(meta::SIGNATURE_HEADER)?;
    meta::verify_signature(app_secret, signature.as_deref(), &body)?;

    let notification = meta::parse(&body, account.channel, &account.address)?;
    if notification.ignored > 0 {
        console_warn!(
            "channel account {}: {} notification entries about another {} account were ignored",
            account.id,
            notification.ignored,
            account.channel
        );
    }
    let received = notification.batch.messages.len();
    let statuses = notification.batch.statuses.len();
    let report = ingest::ingest(env, account, notification.batch, &http::origin(&req)?).await?;
    http::json(
        200,
        &ReceivedOut {
            received,
            statuses,
            ignored: notification.ignored,
            report,
        },
    )
}
