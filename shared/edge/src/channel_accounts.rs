//! Channel accounts in D1: found by id for receivers (the webhook path names the account, the
//! account names the business) and by channel for senders (always within the tenant).

use domain::channel::{Channel, Provider};
use crate::auth::Tenant;
use crate::d1;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::phone::Country;
use serde::Deserialize;
use serde_json::{Map, Value};
use worker::D1Database;

/// An account with its secrets. It never leaves the worker: responses use a masked view.
#[derive(Debug, Clone)]
pub struct ChannelAccount {
    pub id: String,
    pub tenant: Tenant,
    pub channel: Channel,
    pub provider: Provider,
    pub address: String,
    settings: Map<String, Value>,
    secrets: Map<String, Value>,
}

impl ChannelAccount {
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    }

    /// A secret the account must have to verify its webhooks. The admin API insists on it when
    /// the account is created; one missing later is a configuration fault of ours, not the
    /// provider's.
    pub fn required_secret(&self, name: &str) -> Result<&str, ApiError> {
        self.secret(name).ok_or_else(|| {
            ApiError::internal(
                "verifying a webhook",
                format!("channel account {} has no {name}", self.id),
            )
        })
    }

    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
    }
}

#[derive(Deserialize)]
struct AccountRow {
    id: String,
    business_id: String,
    default_country: Option<String>,
    channel: String,
    provider: String,
    address: String,
    settings: String,
    secrets: String,
}

impl AccountRow {
    fn into_account(self) -> Result<ChannelAccount, ApiError> {
        let corrupt = |what: &str| {
            ApiError::internal(
                "reading channel account",
                format!("stored {what} of {} is not valid", self.id),
            )
        };
        Ok(ChannelAccount {
            tenant: Tenant {
                business_id: BusinessId::parse(&self.business_id).ok_or_else(|| corrupt("business_id"))?,
                default_country: self
                    .default_country
                    .as_deref()
                    .and_then(|code| Country::parse(code).ok()),
            },
            channel: Channel::parse(&self.channel).ok_or_else(|| corrupt("channel"))?,
            provider: Provider::parse(&self.provider).ok_or_else(|| corrupt("provider"))?,
            settings: serde_json::from_str(&self.settings).map_err(|_| corrupt("settings"))?,
            secrets: serde_json::from_str(&self.secrets).map_err(|_| corrupt("secrets"))?,
            address: self.address,
            id: self.id,
        })
    }
}

const SELECT: &str = "SELECT a.id, a.business_id, b.default_country, a.channel, a.provider, a.address, a.settings, a.secrets \
                      FROM channel_accounts a JOIN businesses b ON b.id = a.business_id";

/// The account a webhook path names, or None. Ids that are not UUIDs are never looked up.
pub async fn find_for_webhook(db: &D1Database, id: &str) -> Result<Option<ChannelAccount>, ApiError> {
    if !domain::ids::is_uuid(id) {
        return Ok(None);
    }
    let row = db
        .prepare(format!("{SELECT} WHERE a.id = ?1"))
        .bind(&[d1::text(id)])?
        .first::<AccountRow>(None)
        .await?;
    row.map(AccountRow::into_account).transpose()
}

/// The tenant's account on `channel` (the first created, if several).
pub async fn find_for_sending(
    db: &D1Database,
    tenant: &Tenant,
    channel: Channel,
) -> Result<Option<ChannelAccount>, ApiError> {
    let row = db
        .prepare(format!(
            "{SELECT} WHERE a.business_id = ?1 AND a.channel = ?2 ORDER BY a.created_at, a.id LIMIT 1"
        ))
        .bind(&[d1::text(tenant.business_id.as_str()), d1::text(channel.as_str())])?
        .first::<AccountRow>(None)
        .await?;
    row.map(AccountRow::into_account).transpose()
}

/// The account a webhook's path names, if it is an account of `provider`. A path that names no
/// account, or another provider's, is answered alike: not found.
pub async fn for_webhook(
    db: &D1Database,
    path: &str,
    provider: Provider,
) -> Result<ChannelAccount, ApiError> {
    let id = domain::providers::account_id_from_path(path, provider).unwrap_or_default();
    find_for_webhook(db, id)
        .await?
        .filter(|account| account.provider == provider)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no {} channel account at this webhook path",
                provider.as_str()
            ))
        })
}
