//! The one-time tokens of signed webhooks that were already accepted, kept in KV
//! (`WEBHOOK_NONCES`) for as long as their signature could still pass (Mailgun's today).
//!
//! What is exact and what is not: a token is recorded only after its message was stored, so a
//! POST that failed on our side can be retried by the provider with the same signature, and every
//! 2xx answer means its token is refused from then on at the location that answered. KV is
//! eventually consistent across locations (a write may take about a minute to be seen
//! elsewhere), and two copies racing each other both pass the check before either is recorded:
//! such a replay is accepted, and stores nothing twice, because inbound messages are unique per
//! provider message id (a mail's Message-Id, else its token).

use crate::Env;
use crate::WEBHOOK_NONCES;
use domain::error::ApiError;
use domain::providers::mailgun::webhook::UsedToken;

/// True when the token was already accepted.
pub async fn is_used(env: &Env, token: &UsedToken) -> Result<bool, ApiError> {
    let stored = env.kv(WEBHOOK_NONCES)?.text(token.key()).await?;
    Ok(stored.is_some())
}

/// Records the token as accepted, for [`UsedToken::TTL_SECONDS`].
pub async fn record(env: &Env, token: &UsedToken) -> Result<(), ApiError> {
    env.kv(WEBHOOK_NONCES)?
        .put_expiring(token.key(), "used", UsedToken::TTL_SECONDS)
        .await?;
    Ok(())
}
