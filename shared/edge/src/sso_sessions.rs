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
