//! Embedded-inbox sessions: what a presented SSO token lets a page do (act for one customer of
//! one business, read-only or with replies), or why it lets it do nothing.

use crate::db;
use crate::db::Db;
use crate::db::sso_tokens::StoredToken;
use domain::customer::Customer;
use domain::error::{ApiError, ErrorCode};
use domain::lookup::CustomerKey;
use domain::sso::{FrameAncestors, Scope};
use domain::tenant::Tenant;
use domain::time::Timestamp;

/// What a valid token lets the embedded page do: act for one customer of one business.
pub struct Session {
    pub tenant: Tenant,
    pub customer: Customer,
    pub scope: Scope,
    pub expires_at: Timestamp,
    pub frame_ancestors: FrameAncestors,
}

/// Why a presented token grants nothing. The embedded page turns each into its own page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or one that was never issued (mistyped, truncated, forged).
    Unknown,
    Expired,
    Revoked,
    /// The token was valid but its customer is gone.
    CustomerGone,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Self::Unknown | Self::Expired => 401,
            Self::Revoked => 403,
            Self::CustomerGone => 404,
        }
    }

    pub fn into_error(self) -> ApiError {
        let (code, message) = match self {
            Self::Unknown => (ErrorCode::Unauthorized, "this link is not valid"),
            Self::Expired => (ErrorCode::Unauthorized, "this link has expired"),
            Self::Revoked => (ErrorCode::Forbidden, "this link was revoked"),
            Self::CustomerGone => (ErrorCode::NotFound, "this customer no longer exists"),
        };
        ApiError::new(code, message)
    }
}

/// The session a presented token grants at `now`, or why it grants none.
pub async fn resolve(
    db: &Db,
    presented: Option<&str>,
    now: Timestamp,
) -> Result<Result<Session, Refusal>, ApiError> {
    let Some(hash) = presented.and_then(domain::sso::parse_presented) else {
        return Ok(Err(Refusal::Unknown));
    };
    let Some(StoredToken {
        tenant,
        frame_ancestors,
        customer_id,
        scope,
        expires_at,
        revoked,
    }) = db::sso_tokens::find(db, &hash).await?
    else {
        return Ok(Err(Refusal::Unknown));
    };
    if revoked {
        return Ok(Err(Refusal::Revoked));
    }
    if now >= expires_at {
        return Ok(Err(Refusal::Expired));
    }
    let Some(customer) = db::customers::find_one(db, &tenant, &CustomerKey::Id(customer_id)).await? else {
        return Ok(Err(Refusal::CustomerGone));
    };
    Ok(Ok(Session {
        tenant,
        customer,
        scope,
        expires_at,
        frame_ancestors: FrameAncestors::from_stored(&frame_ancestors),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;
    use domain::ids::SsoTokenId;
    use serde_json::json;
    use std::time::Duration;

    /// A token for Ada of a new business, issued now for an hour: its plaintext.
    async fn issued(fixture: &Fixture, scope: Scope) -> (Tenant, String, SsoTokenId) {
        let tenant = fixture.business("Acme").await;
        let ada = fixture
            .customers(&tenant, json!([{ "name": "Ada", "email": "ada@example.com" }]))
            .await;
        let token = domain::sso::issue(crate::runtime::random().unwrap_or_else(|error| panic!("{error:?}")));
        let id = SsoTokenId::generate([6; 16]);
        let now = crate::runtime::now();
        db::sso_tokens::insert(
            &fixture.db,
            &tenant,
            &db::sso_tokens::NewToken {
                id: &id,
                customer_id: &ada[0].id,
                scope,
                issued: &token,
                created_at: now,
                expires_at: now.plus_seconds(3600),
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
        (tenant, token.plaintext, id)
    }

    async fn resolved(fixture: &Fixture, presented: Option<&str>) -> Result<Session, Refusal> {
        resolve(&fixture.db, presented, crate::runtime::now())
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn a_valid_token_acts_for_its_customer_of_its_business_within_its_scope() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, token, _) = issued(&fixture, Scope::InboxReply).await;
            let session = resolved(&fixture, Some(&token))
                .await
                .unwrap_or_else(|refusal| panic!("{refusal:?}"));
            assert_eq!(session.tenant, tenant);
            assert_eq!(session.customer.name, "Ada");
            assert_eq!(session.scope, Scope::InboxReply);
            assert_eq!(session.expires_at, crate::runtime::now().plus_seconds(3600));
        });
    }

    #[test]
    fn a_token_grants_nothing_when_unknown_expired_revoked_or_its_customer_is_gone() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, token, id) = issued(&fixture, Scope::Inbox).await;
            let never = domain::sso::issue([1; 32]).plaintext;
            for (presented, description) in [
                (None, "none"),
                (Some("nonsense"), "not a token"),
                (Some(never.as_str()), "never issued"),
            ] {
                assert_eq!(
                    resolved(&fixture, presented).await.err(),
                    Some(Refusal::Unknown),
                    "{description}"
                );
            }
            fixture.stack.advance(Duration::from_secs(3599));
            assert!(
                resolved(&fixture, Some(&token)).await.is_ok(),
                "a second before it expires"
            );
            fixture.stack.advance(Duration::from_secs(1));
            assert_eq!(
                resolved(&fixture, Some(&token)).await.err(),
                Some(Refusal::Expired)
            );
            db::sso_tokens::revoke(
                &fixture.db,
                &tenant,
                db::sso_tokens::Revoked::ById(&id),
                crate::runtime::now(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                resolved(&fixture, Some(&token)).await.err(),
                Some(Refusal::Revoked),
                "revoked says so, even expired"
            );
        });
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, token, _) = issued(&fixture, Scope::Inbox).await;
            for binding in fixture.stack.shard_bindings() {
                fixture.stack.sql(&binding, |connection| {
                    connection
                        .execute_batch(
                            "PRAGMA foreign_keys = OFF; DELETE FROM customers; PRAGMA foreign_keys = ON;",
                        )
                        .unwrap_or_else(|error| panic!("{error}"))
                });
            }
            assert_eq!(
                resolved(&fixture, Some(&token)).await.err(),
                Some(Refusal::CustomerGone)
            );
        });
    }

    #[test]
    fn each_refusal_is_its_own_page_and_status() {
        let cases = [
            (Refusal::Unknown, 401, "this link is not valid"),
            (Refusal::Expired, 401, "this link has expired"),
            (Refusal::Revoked, 403, "this link was revoked"),
            (Refusal::CustomerGone, 404, "this customer no longer exists"),
        ];
        for (refusal, status, message) in cases {
            let error = refusal.into_error();
            assert_eq!(
                (refusal.status(), error.status(), error.body.message.as_str()),
                (status, status, message),
                "{refusal:?}"
            );
        }
    }
}
