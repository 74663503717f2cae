//! `channel_accounts`: a business's accounts on channel providers, with their settings and
//! secrets. Found by id for receivers (the webhook path names the account, the account names
//! the business), by channel for senders (always within the tenant), and managed by the admin API.
//!
//! The `secrets` column holds the JSON object of secrets sealed as one value (`domain::sealed`,
//! bound to the account's id): this module seals on every write and opens on every read, so
//! everything above it sees clear secrets and D1 never does. A value found clear (from before
//! sealing) or under a retired key is resealed by the read that finds it.
//!
//! This file holds an account as stored and how its secrets are sealed and opened; `reads` finds
//! accounts (by id, for a webhook, a business's list, its channels and Facebook pages), `sending`
//! finds the account a send goes through, and `writes` is what the admin API writes (an account,
//! its change, its deletion, its address released) and a restore's quarantine.

mod reads;
mod sending;
mod writes;

pub(crate) use reads::read_channels;
pub use reads::{channels, facebook_pages, find, for_webhook, list, own_page, owner};
pub use sending::{
    Sealed, for_sending_on, opened, sending_account_id_of, sending_address, sending_on, sending_on_read,
};
pub use writes::{Change, Deleted, NewAccount, delete, insert, pause_all, release, resume, update};

use crate::db::{self, Db, text};
use crate::platform::secrets_key;
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::ChannelAccountId;
use domain::providers::Provider;
use domain::providers::api::{Lacking, Sender};
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use serde::Deserialize;
use serde_json::{Map, Value};

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
    /// Paused by a restore until the operator resumes it: it sends nothing.
    pub paused_at: Option<String>,
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
    pub fn sender(&self) -> Result<Sender, Lacking> {
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
pub struct AccountRow {
    id: ChannelAccountId,
    business_id: String,
    default_country: Option<String>,
    channel: String,
    provider: String,
    address: String,
    name: Option<String>,
    settings: String,
    secrets: String,
    paused_at: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Where an account's secrets are stored: what their seal is bound to.
fn secrets_place(id: &ChannelAccountId) -> Place<'_> {
    Place {
        table: "channel_accounts",
        column: "secrets",
        row_id: id.as_str(),
    }
}

/// The account's secrets sealed for its row.
pub(super) async fn seal_secrets(
    keys: &Keyring,
    id: &ChannelAccountId,
    secrets: &Map<String, Value>,
) -> Result<String, ApiError> {
    secrets_key::seal(
        keys,
        &secrets_place(id),
        &Value::Object(secrets.clone()).to_string(),
    )
    .await
}

/// An account as read, with what its row stores in `secrets` (for a compare-and-set) and whether
/// that value should be written again sealed under the current key.
pub(super) struct Opened {
    pub(super) account: ChannelAccount,
    pub(super) stored_secrets: String,
    needs_resealing: bool,
}

impl AccountRow {
    async fn open(self, keys: &Keyring) -> Result<Opened, ApiError> {
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("channel account", &id, what);
        let opened = secrets_key::open(keys, &secrets_place(&self.id), &self.secrets).await?;
        let account = ChannelAccount {
            tenant: Tenant::from_stored(&self.business_id, self.default_country.as_deref())?,
            channel: Channel::parse(&self.channel).ok_or_else(|| corrupt("channel"))?,
            provider: Provider::parse(&self.provider).ok_or_else(|| corrupt("provider"))?,
            settings: serde_json::from_str(&self.settings).map_err(|_| corrupt("settings"))?,
            secrets: serde_json::from_str(&opened.secret).map_err(|_| corrupt("secrets"))?,
            address: self.address,
            name: self.name,
            paused_at: self.paused_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id: self.id,
        };
        Ok(Opened {
            account,
            stored_secrets: self.secrets,
            needs_resealing: opened.needs_resealing,
        })
    }
}

/// Writes the secrets of accounts read clear or under a retired key back sealed under the
/// current key. Each write is a compare-and-set on the value read, so a concurrent change wins.
async fn reseal(db: &Db, keys: &Keyring, reads: &[Opened]) -> Result<(), ApiError> {
    let mut statements = Vec::new();
    for read in reads.iter().filter(|read| read.needs_resealing) {
        let sealed = seal_secrets(keys, &read.account.id, &read.account.secrets).await?;
        statements.push(
            db.scoped(
                &read.account.tenant,
                "UPDATE channel_accounts SET secrets = ?3 WHERE business_id = ?1 AND id = ?2 AND secrets = ?4",
            )
            .bind(&[
                text(read.account.id.as_str()),
                text(&sealed),
                text(&read.stored_secrets),
            ])?,
        );
    }
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

/// Opens the rows read, resealing those that need it.
pub(super) async fn open_all(
    db: &Db,
    keys: &Keyring,
    rows: Vec<AccountRow>,
) -> Result<Vec<Opened>, ApiError> {
    let mut reads = Vec::with_capacity(rows.len());
    for row in rows {
        reads.push(row.open(keys).await?);
    }
    reseal(db, keys, &reads).await?;
    Ok(reads)
}

pub(super) const COLUMNS: &str = "a.id, a.business_id, b.default_country, a.channel, a.provider, a.address, a.name, \
                       a.settings, a.secrets, a.paused_at, a.created_at, a.updated_at";
/// Accounts (`a`) with their business (`b`).
pub(super) const FROM: &str = "FROM channel_accounts a JOIN businesses b ON b.id = a.business_id";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use serde_json::json;

    pub(super) fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    pub(super) async fn create(
        fixture: &Fixture,
        tenant: &Tenant,
        channel: Channel,
        address: &str,
    ) -> Option<ChannelAccount> {
        let id = ChannelAccountId::generate(random());
        let now = fixture.now().to_rfc3339();
        let settings = map(json!({"api_base": "https://graph.facebook.test"}));
        let secrets = map(json!({"access_token": "token-1", "app_secret": "app-secret-1"}));
        let new = NewAccount {
            id: &id,
            channel,
            provider: Provider::Meta,
            address,
            name: Some("Main"),
            settings: &settings,
            secrets: &secrets,
            now: &now,
        };
        insert(&fixture.db, &fixture.keys(), tenant, &new).await.must()
    }

    #[test]
    fn an_account_reads_back_with_its_secrets_sealed_at_rest() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let account = create(&fixture, &acme, Channel::Whatsapp, "1055501234").await;
            let account = account.unwrap_or_else(|| panic!("created"));
            assert_eq!(
                (account.tenant.clone(), account.channel, account.provider),
                (acme.clone(), Channel::Whatsapp, Provider::Meta)
            );
            assert_eq!(
                (account.address.as_str(), account.name.as_deref()),
                ("1055501234", Some("Main"))
            );
            assert_eq!(account.secret("access_token"), Some("token-1"));
            assert_eq!(account.secrets_set(), ["access_token", "app_secret"]);
            assert_eq!(account.setting("api_base"), Some("https://graph.facebook.test"));
            let rows = fixture.rows("channel_accounts", "id");
            let stored = rows[0]["secrets"].as_str().unwrap_or_default();
            assert!(
                stored.starts_with("v1:") && !stored.contains("token-1"),
                "{stored}"
            );
            let path = format!("/webhooks/meta/{}", account.id);
            let found = for_webhook(&fixture.db, &fixture.keys(), &path, Provider::Meta)
                .await
                .must();
            assert_eq!(
                found.id, account.id,
                "a webhook's path finds its account on any shard"
            );
            for (description, path, provider) in [
                (
                    "another provider's path",
                    format!("/webhooks/twilio/{}", account.id),
                    Provider::Twilio,
                ),
                (
                    "an unknown account",
                    format!("/webhooks/meta/{}", ChannelAccountId::generate(random())),
                    Provider::Meta,
                ),
                ("no account at all", "/webhooks/meta/".to_owned(), Provider::Meta),
            ] {
                let error = for_webhook(&fixture.db, &fixture.keys(), &path, provider)
                    .await
                    .err();
                assert_eq!(error.map(|error| error.status()), Some(404), "{description}");
            }
            assert_eq!(owner(&fixture.db, &account.id).await.must(), Some(acme));
        });
    }

    #[test]
    fn secrets_found_clear_are_sealed_by_the_read_that_finds_them() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = create(&fixture, &acme, Channel::Facebook, "page-1")
                .await
                .unwrap_or_else(|| panic!("created"));
            fixture.stack.sql("DB", |connection| {
                connection
                    .execute(
                        "UPDATE channel_accounts SET secrets = '{\"access_token\":\"clear\"}'",
                        [],
                    )
                    .must()
            });
            let read = find(&fixture.db, &fixture.keys(), &account.id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(read.secret("access_token"), Some("clear"));
            let stored = fixture.rows("channel_accounts", "id")[0]["secrets"].clone();
            assert!(
                stored.as_str().is_some_and(|stored| stored.starts_with("v1:")),
                "{stored}"
            );
        });
    }
}
