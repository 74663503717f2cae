//! `channel_accounts`: a business's accounts on channel providers, with their settings and
//! secrets. Found by id for receivers (the webhook path names the account, the account names
//! the business), by channel for senders (always within the tenant), and managed by the admin API.

use crate::db::{self, text};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::{BusinessId, ChannelAccountId};
use domain::providers::Provider;
use domain::providers::api::Sender;
use domain::tenant::Tenant;
use serde::Deserialize;
use serde_json::{Map, Value};
use worker::D1Database;

/// An account with its secrets. It never leaves the worker: responses use a masked view.
#[derive(Debug, Clone)]
pub struct ChannelAccount {
    pub id: ChannelAccountId,
    pub tenant: Tenant,
    pub channel: Channel,
    pub provider: Provider,
    pub address: String,
    pub name: Option<String>,
    pub settings: Map<String, Value>,
    secrets: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
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

    /// The names of the secrets that are set, sorted: all a response ever says of them.
    pub fn secrets_set(&self) -> Vec<String> {
        let mut names: Vec<String> = self.secrets.keys().cloned().collect();
        names.sort();
        names
    }

    /// The account as its provider's API sees it; Err names what it lacks.
    pub fn sender(&self) -> Result<Sender, String> {
        Sender::configure(
            self.provider,
            &self.address,
            |name| self.setting(name).map(str::to_owned),
            |name| self.secret(name).map(str::to_owned),
        )
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
    id: ChannelAccountId,
    business_id: String,
    default_country: Option<String>,
    channel: String,
    provider: String,
    address: String,
    name: Option<String>,
    settings: String,
    secrets: String,
    created_at: String,
    updated_at: String,
}

impl AccountRow {
    fn into_account(self) -> Result<ChannelAccount, ApiError> {
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("channel account", &id, what);
        Ok(ChannelAccount {
            tenant: Tenant::from_stored(&self.business_id, self.default_country.as_deref())?,
            channel: Channel::parse(&self.channel).ok_or_else(|| corrupt("channel"))?,
            provider: Provider::parse(&self.provider).ok_or_else(|| corrupt("provider"))?,
            settings: serde_json::from_str(&self.settings).map_err(|_| corrupt("settings"))?,
            secrets: serde_json::from_str(&self.secrets).map_err(|_| corrupt("secrets"))?,
            address: self.address,
            name: self.name,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id: self.id,
        })
    }
}

const SELECT: &str = "SELECT a.id, a.business_id, b.default_country, a.channel, a.provider, a.address, a.name, \
                      a.settings, a.secrets, a.created_at, a.updated_at \
                      FROM channel_accounts a JOIN businesses b ON b.id = a.business_id";

async fn select_one(
    db: &D1Database,
    filter: &str,
    params: &[worker::wasm_bindgen::JsValue],
) -> Result<Option<ChannelAccount>, ApiError> {
    let row = db
        .prepare(format!("{SELECT} WHERE {filter}"))
        .bind(params)?
        .first::<AccountRow>(None)
        .await?;
    row.map(AccountRow::into_account).transpose()
}

pub async fn find(db: &D1Database, id: &ChannelAccountId) -> Result<Option<ChannelAccount>, ApiError> {
    select_one(db, "a.id = ?1", &[text(id.as_str())]).await
}

/// The account a webhook's path names, if it is an account of `provider`. A path that names no
/// account, or another provider's, is answered alike: not found.
pub async fn for_webhook(
    db: &D1Database,
    path: &str,
    provider: Provider,
) -> Result<ChannelAccount, ApiError> {
    let id = domain::providers::account_id_from_path(path, provider).and_then(ChannelAccountId::parse);
    let found = match id {
        Some(id) => find(db, &id).await?,
        None => None,
    };
    found
        .filter(|account| account.provider == provider)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no {} channel account at this webhook path",
                provider.as_str()
            ))
        })
}

/// The tenant's account on `channel` (the first created, if several).
pub async fn find_for_sending(
    db: &D1Database,
    tenant: &Tenant,
    channel: Channel,
) -> Result<Option<ChannelAccount>, ApiError> {
    select_one(
        db,
        "a.business_id = ?1 AND a.channel = ?2 ORDER BY a.created_at, a.id LIMIT 1",
        &[text(tenant.business_id.as_str()), text(channel.as_str())],
    )
    .await
}

/// Every account of a business, oldest first.
pub async fn list(db: &D1Database, business_id: &BusinessId) -> Result<Vec<ChannelAccount>, ApiError> {
    let result = db
        .prepare(format!(
            "{SELECT} WHERE a.business_id = ?1 ORDER BY a.created_at, a.id"
        ))
        .bind(&[text(business_id.as_str())])?
        .all()
        .await?;
    result
        .results::<AccountRow>()?
        .into_iter()
        .map(AccountRow::into_account)
        .collect()
}

/// An account to create.
pub struct NewAccount<'a> {
    pub id: &'a ChannelAccountId,
    pub business_id: &'a BusinessId,
    pub channel: Channel,
    pub provider: Provider,
    pub address: &'a str,
    pub name: Option<&'a str>,
    pub settings: &'a Map<String, Value>,
    pub secrets: &'a Map<String, Value>,
    pub now: &'a str,
}

/// Creates the account; None when the channel already has an account at that address.
pub async fn insert(db: &D1Database, new: &NewAccount<'_>) -> Result<Option<ChannelAccount>, ApiError> {
    let inserted = db
        .prepare(
            "INSERT INTO channel_accounts (id, business_id, channel, provider, address, name, settings, secrets, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(&[
            text(new.id.as_str()),
            text(new.business_id.as_str()),
            text(new.channel.as_str()),
            text(new.provider.as_str()),
            text(new.address),
            db::optional_text(new.name),
            text(&Value::Object(new.settings.clone()).to_string()),
            text(&Value::Object(new.secrets.clone()).to_string()),
            text(new.now),
        ])?
        .run()
        .await?;
    if db::changes(&inserted) == 0 {
        return Ok(None);
    }
    find(db, new.id).await
}

/// Merges `settings` and `secrets` into the stored ones (RFC 7396: a key set to null is
/// removed), and renames the account when `name` is given; None when there is no such account.
pub async fn update(
    db: &D1Database,
    id: &ChannelAccountId,
    name: Option<&str>,
    settings: &Map<String, Value>,
    secrets: &Map<String, Value>,
    now: &str,
) -> Result<Option<ChannelAccount>, ApiError> {
    let updated = db
        .prepare(
            "UPDATE channel_accounts SET name = COALESCE(?2, name), settings = json_patch(settings, ?3), \
             secrets = json_patch(secrets, ?4), updated_at = ?5 WHERE id = ?1",
        )
        .bind(&[
            text(id.as_str()),
            db::optional_text(name),
            text(&Value::Object(settings.clone()).to_string()),
            text(&Value::Object(secrets.clone()).to_string()),
            text(now),
        ])?
        .run()
        .await?;
    if db::changes(&updated) == 0 {
        return Ok(None);
    }
    find(db, id).await
}
