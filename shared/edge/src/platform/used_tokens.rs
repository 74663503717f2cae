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
use crate::runtime::Internal;
use domain::error::ApiError;
use domain::providers::mailgun::webhook::UsedToken;

/// True when the token was already accepted.
pub async fn is_used(env: &Env, token: &UsedToken) -> Result<bool, ApiError> {
    let stored = env
        .kv(WEBHOOK_NONCES)
        .internal("KV")?
        .text(token.key())
        .await
        .internal("KV")?;
    Ok(stored.is_some())
}

/// Records the token as accepted, for [`UsedToken::TTL_SECONDS`].
pub async fn record(env: &Env, token: &UsedToken) -> Result<(), ApiError> {
    env.kv_write(WEBHOOK_NONCES)
        .internal("KV")?
        .put_expiring(token.key(), "used", UsedToken::TTL_SECONDS)
        .await
        .internal("KV")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;
    use domain::ids::ChannelAccountId;
    use domain::providers::mailgun::signed_fields::SignatureFields;
    use domain::providers::mailgun::webhook::verify_signature;
    use hmac::{Hmac, Mac};
    use std::time::Duration;

    /// A token Mailgun signed now with `key`, as the receiver has verified it.
    fn signed(fixture: &Fixture, account: &ChannelAccountId, token: &str) -> UsedToken {
        let timestamp = (fixture.stack.now_ms() / 1000).to_string();
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"signing-key")
            .unwrap_or_else(|error| panic!("{error}"));
        mac.update(format!("{timestamp}{token}").as_bytes());
        let fields = SignatureFields {
            timestamp: Some(timestamp),
            token: Some(token.to_owned()),
            signature: Some(hex::encode(mac.finalize().into_bytes())),
        };
        let verified = verify_signature("signing-key", &fields, crate::runtime::now())
            .unwrap_or_else(|error| panic!("{error:?}"));
        UsedToken::new(account, &verified)
    }

    async fn used(fixture: &Fixture, token: &UsedToken) -> bool {
        is_used(&fixture.env, token)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn a_token_is_refused_once_recorded_for_as_long_as_its_signature_could_pass() {
        let fixture = Fixture::new();
        let account = ChannelAccountId::generate([1; 16]);
        let token = signed(&fixture, &account, "t-1");
        fixture.run(async {
            assert!(!used(&fixture, &token).await);
            record(&fixture.env, &token)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(used(&fixture, &token).await);
            fixture
                .stack
                .advance(Duration::from_secs(UsedToken::TTL_SECONDS - 1));
            assert!(
                used(&fixture, &token).await,
                "within twice the five minutes' tolerance"
            );
            fixture.stack.advance(Duration::from_secs(1));
            assert!(
                !used(&fixture, &token).await,
                "forgotten once its signature cannot pass"
            );
        });
        assert_eq!(UsedToken::TTL_SECONDS, 600);
    }

    #[test]
    fn a_token_is_the_accounts_own() {
        let fixture = Fixture::new();
        let token = signed(&fixture, &ChannelAccountId::generate([1; 16]), "t-1");
        let elsewhere = signed(&fixture, &ChannelAccountId::generate([2; 16]), "t-1");
        let other = signed(&fixture, &ChannelAccountId::generate([1; 16]), "t-2");
        fixture.run(async {
            record(&fixture.env, &token)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(
                !used(&fixture, &elsewhere).await,
                "the same token at another account"
            );
            assert!(!used(&fixture, &other).await, "another token");
        });
    }
}
