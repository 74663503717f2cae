//! A notification, its signature over the raw body checked before it reaches here: parsed for the
//! account the path names, and stored before Meta is answered (Meta retries anything but a 200). What in it
//! could not be read is logged and counted, and the rest is stored and answered with a 200.

use domain::api::receivers::MetaReceivedOut;
use domain::error::ApiError;
use domain::json::Rejection;
use domain::providers::meta::webhook as meta;
use edge::Env;
use edge::console_warn;
use edge::db::channel_accounts::ChannelAccount;
use edge::messaging::ingest;
use edge::platform::http;
use edge::runtime::Response;

/// The most rejected items logged one by one for a notification; the rest are counted in one
/// line, so a notification of 1000 broken messages does not flood the log.
const REJECTIONS_LOGGED: usize = 20;

/// A notification whose signature held (`edge::platform::signed::Meta`), for `account`.
pub async fn receive(
    env: &Env,
    account: &ChannelAccount,
    body: &[u8],
    origin: &str,
) -> Result<Response, ApiError> {
    let mut notification = meta::parse(body, account.channel, &account.address)?;
    if notification.ignored > 0 {
        console_warn!(
            "channel account {}: {} notification entries about another {} account were ignored",
            account.id,
            notification.ignored,
            account.channel
        );
    }
    log_rejections(account, &notification.rejected);
    // Comments on the page's posts are stored as the author's conversation under each post.
    notification.batch.comments = std::mem::take(&mut notification.comments)
        .into_iter()
        .map(|comment| comment.inbound())
        .collect();
    let received = notification.batch.messages.len() + notification.batch.comments.len();
    let statuses = notification.batch.statuses.len();
    let report = ingest::ingest(env, account, notification.batch, origin).await?;
    http::json(
        200,
        &MetaReceivedOut {
            received,
            statuses,
            ignored: notification.ignored,
            rejected: notification.rejected.len(),
            report,
        },
    )
}

/// Logs where each rejected item was and why (paths and kinds of values, never the values).
fn log_rejections(account: &ChannelAccount, rejected: &[Rejection]) {
    for rejection in rejected.iter().take(REJECTIONS_LOGGED) {
        console_warn!(
            "channel account {}: skipped an unreadable part of a Meta notification at {rejection}",
            account.id
        );
    }
    if rejected.len() > REJECTIONS_LOGGED {
        console_warn!(
            "channel account {}: {} more unreadable parts of the same notification were skipped",
            account.id,
            rejected.len() - REJECTIONS_LOGGED
        );
    }
}
