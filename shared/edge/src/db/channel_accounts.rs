//! `channel_accounts`: a business's accounts on channel providers, with their settings and
//! secrets. Found by id for receivers (the webhook path names the account, the account names
//! the business), by channel for senders (always within the tenant), and managed by the admin API.
//!
//! The `secrets` column holds the JSON object of secrets sealed as one value (`domain::sealed`,
//! bound to the account's id): this module seals on every write and opens on every read, so
//! everything above it sees clear secrets and D1 never does. A value found clear (from before
//! sealing) or under a retired key is resealed by the read that finds it.

use crate::db::directory;
use crate::db::{self, HOLE, Sql, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use crate::secrets_key;
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::ChannelAccountId;
use domain::providers::Provider;
use domain::providers::api::Sender;
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

/// Where an account's secrets are stored: what their seal is bound to.
fn secrets_place(id: &ChannelAccountId) -> Place<'_> {
    Place {
        table: "channel_accounts",
        column: "secrets",
        row_id: id.as_str(),
    }
}

/// The account's secrets sealed for its row.
async fn seal_secrets(
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
struct Read {
    account: ChannelAccount,
    stored_secrets: String,
    needs_resealing: bool,
}

impl AccountRow {
    async fn open(self, keys: &Keyring) -> Result<Read, ApiError> {
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
            created_at: self.created_at,
            updated_at: self.updated_at,
            id: self.id,
        };
        Ok(Read {
            account,
            stored_secrets: self.secrets,
            needs_resealing: opened.needs_resealing,
        })
    }
}

/// Writes the secrets of accounts read clear or under a retired key back sealed under the
/// current key. Each write is a compare-and-set on the value read, so a concurrent change wins.
async fn reseal(db: &Db, keys: &Keyring, reads: &[Read]) -> Result<(), ApiError> {
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
async fn open_all(db: &Db, keys: &Keyring, rows: Vec<AccountRow>) -> Result<Vec<Read>, ApiError> {
    let mut reads = Vec::with_capacity(rows.len());
    for row in rows {
        reads.push(row.open(keys).await?);
    }
    reseal(db, keys, &reads).await?;
    Ok(reads)
}

const COLUMNS: &str = "a.id, a.business_id, b.default_country, a.channel, a.provider, a.address, a.name, \
                       a.settings, a.secrets, a.created_at, a.updated_at";
/// Accounts (`a`) with their business (`b`).
const FROM: &str = "FROM channel_accounts a JOIN businesses b ON b.id = a.business_id";

async fn select_one(
    db: &Db,
    keys: &Keyring,
    filter: &str,
    params: &[db::Param],
) -> Result<Option<Read>, ApiError> {
    let row = db
        .unscoped(format!("SELECT {COLUMNS} {FROM} WHERE {filter}"))
        .bind(params)?
        .first::<AccountRow>(None)
        .await?;
    Ok(open_all(db, keys, row.into_iter().collect()).await?.pop())
}

async fn read(db: &Db, keys: &Keyring, id: &ChannelAccountId) -> Result<Option<Read>, ApiError> {
    select_one(db, keys, "a.id = ?1", &[text(id.as_str())]).await
}

/// The tenant's account `id`, read with what is stored of its secrets.
async fn read_of(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ChannelAccountId,
) -> Result<Option<Read>, ApiError> {
    let row = db
        .scoped(
            tenant,
            format!("SELECT {COLUMNS} {FROM} WHERE a.business_id = ?1 AND a.id = ?2"),
        )
        .bind(&[text(id.as_str())])?
        .first::<AccountRow>(None)
        .await?;
    Ok(open_all(db, keys, row.into_iter().collect()).await?.pop())
}

/// The business of account `id`, for the operator, whose path names only the account.
pub async fn owner(db: &Db, id: &ChannelAccountId) -> Result<Option<Tenant>, ApiError> {
    db::owner(
        db.unscoped(
            "SELECT b.id AS business_id, b.default_country FROM channel_accounts a \
             JOIN businesses b ON b.id = a.business_id WHERE a.id = ?1",
        )
        .bind(&[text(id.as_str())])?,
    )
    .await
}

pub async fn find(
    db: &Db,
    keys: &Keyring,
    id: &ChannelAccountId,
) -> Result<Option<ChannelAccount>, ApiError> {
    Ok(read(db, keys, id).await?.map(|read| read.account))
}

/// The account a webhook's path names, if it is an account of `provider`. A path that names no
/// account, or another provider's, is answered alike: not found.
pub async fn for_webhook(
    db: &Db,
    keys: &Keyring,
    path: &str,
    provider: Provider,
) -> Result<ChannelAccount, ApiError> {
    let id = domain::providers::account_id_from_path(path, provider).and_then(ChannelAccountId::parse);
    let found = match id {
        Some(id) => find(db, keys, &id).await?,
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

/// Which of the tenant's accounts sends on a channel: the first created, if several; `columns`
/// of it (see [`FROM`]). `channel` selects the channel (a value or a subquery).
fn sending_account(columns: &str, channel: Sql) -> Sql {
    channel.within(&format!(
        "SELECT {columns} {FROM} WHERE a.business_id = :business AND a.channel = ({HOLE}) \
             ORDER BY a.created_at, a.id LIMIT 1"
    ))
}

fn on_channel(channel: Channel) -> Sql {
    Sql::new(":channel").bind("channel", text(channel.as_str()))
}

/// The tenant's account, with its secrets, on the channel the fragment `channel` selects (see
/// [`sending_account`]), for a caller's batch; [`sending_account_at`] reads its answer.
pub fn for_sending_on(channel: Sql) -> Sql {
    sending_account(COLUMNS, channel)
}

/// The account, secrets opened, that the statement of [`for_sending_on`] at `position` of a
/// batch found, or None.
pub async fn sending_account_at(
    db: &Db,
    keys: &Keyring,
    results: &[D1Result],
    position: usize,
) -> Result<Option<ChannelAccount>, ApiError> {
    let rows = db::rows::<AccountRow>(results, position)?;
    Ok(open_all(db, keys, rows).await?.pop().map(|read| read.account))
}

/// The statement reading the id of the tenant's account on `channel`, without its secrets (what
/// accepting a send needs, so the functions that only queue messages hold no key to the
/// secrets), for a caller's batch; [`sending_account_id_at`] reads its answer.
pub fn sending_account_id_of(db: &Db, tenant: &Tenant, channel: Channel) -> Result<Statement, ApiError> {
    sending_account("a.id", on_channel(channel)).scoped(db, tenant)
}

/// The account id the statement of [`sending_account_id_of`] at `position` of a batch found.
pub fn sending_account_id_at(
    results: &[D1Result],
    position: usize,
) -> Result<Option<ChannelAccountId>, ApiError> {
    #[derive(Deserialize)]
    struct IdRow {
        id: ChannelAccountId,
    }
    Ok(db::first_row::<IdRow>(results, position)?.map(|row| row.id))
}

/// The statement reading the channels the tenant has an account on (each once), for a caller's
/// batch; [`channels_at`] reads its answer.
pub fn channels(db: &Db, tenant: &Tenant) -> Result<Statement, ApiError> {
    Ok(db.scoped(
        tenant,
        "SELECT DISTINCT channel FROM channel_accounts WHERE business_id = ?1",
    ))
}

/// The channels a statement of [`channels`] (or [`super::customer_identities::channels_of`]) at
/// `position` of a batch found; names no channel has are left out.
pub fn channels_at(results: &[D1Result], position: usize) -> Result<Vec<Channel>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        channel: String,
    }
    Ok(db::rows::<Row>(results, position)?
        .iter()
        .filter_map(|row| Channel::parse(&row.channel))
        .collect())
}

/// Every account of a business, oldest first.
pub async fn list(db: &Db, keys: &Keyring, tenant: &Tenant) -> Result<Vec<ChannelAccount>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!("SELECT {COLUMNS} {FROM} WHERE a.business_id = ?1 ORDER BY a.created_at, a.id"),
        )
        .all()
        .await?;
    let reads = open_all(db, keys, result.results::<AccountRow>()?).await?;
    Ok(reads.into_iter().map(|read| read.account).collect())
}

/// A business's Facebook pages (its facebook accounts), as `(page id, name)`, oldest first: the
/// pages CRM links belong to. No secret is read.
pub async fn facebook_pages(db: &Db, tenant: &Tenant) -> Result<Vec<(String, Option<String>)>, ApiError> {
    #[derive(Deserialize)]
    struct Page {
        address: String,
        name: Option<String>,
    }
    let pages = db
        .scoped(
            tenant,
            "SELECT address, name FROM channel_accounts WHERE business_id = ?1 AND channel = 'facebook' \
             ORDER BY created_at, id",
        )
        .all()
        .await?
        .results::<Page>()?;
    Ok(pages.into_iter().map(|page| (page.address, page.name)).collect())
}

/// An account to create.
pub struct NewAccount<'a> {
    pub id: &'a ChannelAccountId,
    pub channel: Channel,
    pub provider: Provider,
    pub address: &'a str,
    pub name: Option<&'a str>,
    pub settings: &'a Map<String, Value>,
    pub secrets: &'a Map<String, Value>,
    pub now: &'a str,
}

/// Creates the account; None when the channel already has an account at that address.
pub async fn insert(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    new: &NewAccount<'_>,
) -> Result<Option<ChannelAccount>, ApiError> {
    let sealed = seal_secrets(keys, new.id, new.secrets).await?;
    let (channel, business) = (new.channel.as_str(), &tenant.business_id);
    if !directory::claim_address(db, channel, new.address, business).await? {
        return Ok(None);
    }
    let inserted = db
        .scoped(
            tenant,
            "INSERT INTO channel_accounts (id, business_id, channel, provider, address, name, settings, secrets, \
             created_at, updated_at) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(&[
            text(new.id.as_str()),
            text(new.channel.as_str()),
            text(new.provider.as_str()),
            text(new.address),
            db::optional_text(new.name),
            text(&Value::Object(new.settings.clone()).to_string()),
            text(&sealed),
            text(new.now),
        ])?
        .run()
        .await;
    let inserted = match inserted {
        Ok(inserted) => inserted,
        Err(error) => {
            directory::release_address(db, channel, new.address, business).await?;
            return Err(error.into());
        }
    };
    if db::changes(&inserted) == 0 {
        return Ok(None);
    }
    find(db, keys, new.id).await
}

/// Writes to one account that lose a race with another (see [`update`]) are tried this often.
const UPDATE_TRIES: usize = 3;

/// Merges `settings` and `secrets` into the stored ones (RFC 7396: a key set to null is
/// removed), and renames the account when `name` is given; None when there is no such account.
///
/// Settings merge in SQL; the secrets are sealed, so they are opened, merged and sealed again
/// here, and written only if the row still holds what was read (a compare-and-set): of two
/// rotations at once, neither loses the other's secret.
/// What an update changes of an account: its name (when given), and what merges into its
/// settings and its secrets.
pub struct Change<'a> {
    pub name: Option<&'a str>,
    pub settings: &'a Map<String, Value>,
    pub secrets: &'a Map<String, Value>,
    pub now: &'a str,
}

pub async fn update(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ChannelAccountId,
    change: &Change<'_>,
) -> Result<Option<ChannelAccount>, ApiError> {
    let Change {
        name,
        settings,
        secrets,
        now,
    } = *change;
    for _ in 0..UPDATE_TRIES {
        let Some(current) = read_of(db, keys, tenant, id).await? else {
            return Ok(None);
        };
        let sealed = seal_secrets(keys, id, &merged(current.account.secrets, secrets)).await?;
        let updated = db
            .scoped(
                tenant,
                "UPDATE channel_accounts SET name = COALESCE(?3, name), settings = json_patch(settings, ?4), \
                 secrets = ?5, updated_at = ?6 WHERE business_id = ?1 AND id = ?2 AND secrets = ?7",
            )
            .bind(&[
                text(id.as_str()),
                db::optional_text(name),
                text(&Value::Object(settings.clone()).to_string()),
                text(&sealed),
                text(now),
                text(&current.stored_secrets),
            ])?
            .run()
            .await?;
        if db::changes(&updated) == 1 {
            return Ok(read_of(db, keys, tenant, id).await?.map(|read| read.account));
        }
    }
    Err(ApiError::conflict(format!(
        "channel account {id} is being changed by another request; try again"
    )))
}

/// `patch` merged into `secrets` as RFC 7396 merges objects of strings: null removes a key.
fn merged(mut secrets: Map<String, Value>, patch: &Map<String, Value>) -> Map<String, Value> {
    for (name, value) in patch {
        if value.is_null() {
            secrets.remove(name);
        } else {
            secrets.insert(name.clone(), value.clone());
        }
    }
    secrets
}
