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
use crate::platform::secrets_key;
use crate::runtime::D1Result;
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::{BusinessId, ChannelAccountId};
use domain::links::link::PageId;
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
struct Opened {
    account: ChannelAccount,
    stored_secrets: String,
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
async fn open_all(db: &Db, keys: &Keyring, rows: Vec<AccountRow>) -> Result<Vec<Opened>, ApiError> {
    let mut reads = Vec::with_capacity(rows.len());
    for row in rows {
        reads.push(row.open(keys).await?);
    }
    reseal(db, keys, &reads).await?;
    Ok(reads)
}

const COLUMNS: &str = "a.id, a.business_id, b.default_country, a.channel, a.provider, a.address, a.name, \
                       a.settings, a.secrets, a.paused_at, a.created_at, a.updated_at";
/// Accounts (`a`) with their business (`b`).
const FROM: &str = "FROM channel_accounts a JOIN businesses b ON b.id = a.business_id";

async fn select_one(
    db: &Db,
    keys: &Keyring,
    filter: &str,
    params: &[db::Param],
) -> Result<Option<Opened>, ApiError> {
    let row = db
        .unscoped(format!("SELECT {COLUMNS} {FROM} WHERE {filter}"))
        .bind(params)?
        .first::<AccountRow>(None)
        .await?;
    Ok(open_all(db, keys, row.into_iter().collect()).await?.pop())
}

async fn read(db: &Db, keys: &Keyring, id: &ChannelAccountId) -> Result<Option<Opened>, ApiError> {
    select_one(db, keys, "a.id = ?1", &[text(id.as_str())]).await
}

/// The tenant's account `id`, read with what is stored of its secrets.
async fn read_of(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ChannelAccountId,
) -> Result<Option<Opened>, ApiError> {
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
/// The tenant's account that sends on a channel: its oldest.
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
/// [`sending_account`]).
pub fn for_sending_on(channel: Sql) -> Sql {
    sending_account(COLUMNS, channel)
}

/// An account as stored, its secrets sealed: what a batch reads, opened by [`opened`] after.
pub struct Sealed(Option<AccountRow>);

/// The read of the account [`for_sending_on`] selects, for a caller's batch.
pub fn sending_on_read(db: &Db, tenant: &Tenant, channel: Sql) -> Result<db::Read<Sealed>, ApiError> {
    Ok(db::Read::new(
        for_sending_on(channel).scoped(db, tenant)?,
        |answer| Ok(Sealed(db::first_row(answer)?)),
    ))
}

/// The account a [`sending_on_read`] found, its secrets opened, or None.
pub async fn opened(db: &Db, keys: &Keyring, sealed: Sealed) -> Result<Option<ChannelAccount>, ApiError> {
    let rows = sealed.0.into_iter().collect();
    Ok(open_all(db, keys, rows).await?.pop().map(|read| read.account))
}

/// The tenant's account, secrets opened, that sends on `channel` (the first created), or None.
pub async fn sending_on(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    channel: Channel,
) -> Result<Option<ChannelAccount>, ApiError> {
    let sealed = sending_on_read(db, tenant, on_channel(channel))?.run().await?;
    opened(db, keys, sealed).await
}

/// The provider and address of the tenant's account that sends on `channel` (the one
/// [`sending_on`] opens), without its secrets; None when it has none.
pub async fn sending_address(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
) -> Result<Option<(Provider, String)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        provider: String,
        address: String,
    }
    let row: Option<Row> = sending_account("a.provider, a.address", on_channel(channel))
        .scoped(db, tenant)?
        .first(None)
        .await?;
    Ok(row.and_then(|row| Some((Provider::parse(&row.provider)?, row.address))))
}

/// The statement reading the id of the tenant's account on `channel`, without its secrets (what
/// accepting a send needs, so the functions that only queue messages hold no key to the
/// secrets), for a caller's batch.
pub fn sending_account_id_of(
    db: &Db,
    tenant: &Tenant,
    channel: Channel,
) -> Result<db::Read<Option<ChannelAccountId>>, ApiError> {
    Ok(db::Read::new(
        sending_account("a.id", on_channel(channel)).scoped(db, tenant)?,
        read_sending_account_id,
    ))
}

/// The account id the statement of [`sending_account_id_of`] found.
fn read_sending_account_id(answer: &D1Result) -> Result<Option<ChannelAccountId>, ApiError> {
    #[derive(Deserialize)]
    struct IdRow {
        id: ChannelAccountId,
    }
    Ok(db::first_row::<IdRow>(answer)?.map(|row| row.id))
}

/// The statement reading the channels the tenant has an account on (each once), for a caller's
/// batch.
pub fn channels(db: &Db, tenant: &Tenant) -> Result<db::Read<Vec<Channel>>, ApiError> {
    Ok(db::Read::new(
        db.scoped(
            tenant,
            "SELECT DISTINCT channel FROM channel_accounts WHERE business_id = ?1",
        ),
        read_channels,
    ))
}

/// The channels a statement of [`channels`] (or [`super::customer_identities::channels_of`]) at
/// `position` of a batch found; names no channel has are left out.
pub(crate) fn read_channels(answer: &D1Result) -> Result<Vec<Channel>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        channel: String,
    }
    Ok(db::rows::<Row>(answer)?
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

/// The name of `page` when it is one of the business's Facebook pages; 404 when it is not (another
/// business's page reads as one that does not exist).
pub async fn own_page(db: &Db, tenant: &Tenant, page: &PageId) -> Result<Option<String>, ApiError> {
    facebook_pages(db, tenant)
        .await?
        .into_iter()
        .find(|(id, _)| id == page.as_str())
        .map(|(_, name)| name)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "page {} is not one of this business's Facebook pages (add it as a facebook channel account)",
                page.as_str()
            ))
        })
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

/// What deleting an account came to.
pub enum Deleted {
    /// Deleted, and its address released for any business to claim.
    Gone(Box<ChannelAccount>),
    /// The business has no such account.
    Missing,
    /// Conversations or CRM links refer to it (how many of each): it stays.
    InUse { conversations: i64, links: i64 },
}

/// Deletes the tenant's account `id` when nothing refers to it (its conversations keep their
/// channel, a page's CRM links their page), then releases its address in the directory.
pub async fn delete(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ChannelAccountId,
) -> Result<Deleted, ApiError> {
    #[derive(Deserialize)]
    struct Uses {
        conversations: i64,
        links: i64,
    }
    let Some(current) = read_of(db, keys, tenant, id).await? else {
        return Ok(Deleted::Missing);
    };
    let account = current.account;
    let uses = db
        .scoped(
            tenant,
            "SELECT (SELECT COUNT(*) FROM conversations WHERE business_id = ?1 AND channel_account_id = ?2) \
             AS conversations, (SELECT COUNT(*) FROM knowledge_sources WHERE business_id = ?1 AND page_id = ?3 \
             AND ?4 = 'facebook') AS links",
        )
        .bind(&[text(id.as_str()), text(&account.address), text(account.channel.as_str())])?
        .first::<Uses>(None)
        .await?
        .unwrap_or(Uses { conversations: 0, links: 0 });
    if uses.conversations > 0 || uses.links > 0 {
        return Ok(Deleted::InUse {
            conversations: uses.conversations,
            links: uses.links,
        });
    }
    let deleted = db
        .scoped(
            tenant,
            "DELETE FROM channel_accounts WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[text(id.as_str())])?
        .run()
        .await?;
    if db::changes(&deleted) == 0 {
        return Ok(Deleted::Missing);
    }
    directory::release_address(
        db,
        account.channel.as_str(),
        &account.address,
        &tenant.business_id,
    )
    .await?;
    Ok(Deleted::Gone(Box::new(account)))
}

/// Pauses the tenant's account `id` (it sends nothing, and keeps its conversations) and lets go
/// of its address: handed to `to` (the business that owns it) when given, else free for the next
/// business that claims it. The account's own row gives it up too (`released:<id>:<address>`), so
/// that an account of the owner's on the same shard can take it. None when the tenant has no
/// such account.
pub async fn release(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ChannelAccountId,
    to: Option<&BusinessId>,
    now: &str,
) -> Result<Option<ChannelAccount>, ApiError> {
    let Some(current) = read_of(db, keys, tenant, id).await? else {
        return Ok(None);
    };
    let account = current.account;
    db.scoped(
        tenant,
        "UPDATE channel_accounts SET paused_at = coalesce(paused_at, ?3), \
         address = 'released:' || id || ':' || address WHERE business_id = ?1 AND id = ?2 \
         AND address NOT LIKE 'released:%'",
    )
    .bind(&[text(id.as_str()), text(now)])?
    .run()
    .await?;
    let (channel, address) = (account.channel.as_str(), account.address.as_str());
    match to {
        Some(owner) => directory::hand_over_address(db, channel, address, &tenant.business_id, owner).await?,
        None => directory::release_address(db, channel, address, &tenant.business_id).await?,
    }
    Ok(read_of(db, keys, tenant, id).await?.map(|read| read.account))
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

/// A restore's quarantine: every account of the business that sends is paused (`paused_at`), so
/// nothing it held reaches a customer until the operator resumes it.
pub fn pause_all(db: &Db, tenant: &Tenant, now: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE channel_accounts SET paused_at = ?2 WHERE business_id = ?1 AND paused_at IS NULL",
        )
        .bind(&[text(now)])?)
}

/// The accounts `ids` (of the tenant's) send again.
pub fn resume(db: &Db, tenant: &Tenant, ids: &[String]) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE channel_accounts SET paused_at = NULL WHERE +business_id = ?1 \
             AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::Value::from(ids.to_vec()).to_string())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use serde_json::json;
    use std::time::Duration;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    async fn create(
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
    fn an_address_belongs_to_one_business_whatever_its_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            assert!(
                create(&fixture, &acme, Channel::Whatsapp, "1055501234")
                    .await
                    .is_some()
            );
            assert!(
                create(&fixture, &globex, Channel::Whatsapp, "1055501234")
                    .await
                    .is_none(),
                "held by Acme"
            );
            assert!(
                create(&fixture, &acme, Channel::Whatsapp, "1055501234")
                    .await
                    .is_none(),
                "Acme has it already"
            );
            assert!(
                create(&fixture, &globex, Channel::Facebook, "1055501234")
                    .await
                    .is_some(),
                "another channel"
            );
            let accounts = fixture.rows("channel_accounts", "id");
            assert_eq!(accounts.len(), 2);
            let claims = fixture.rows("channel_addresses", "channel");
            let held: Vec<(String, String)> = claims
                .iter()
                .map(|row| {
                    (
                        row["channel"].as_str().unwrap_or_default().to_owned(),
                        row["business_id"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                held,
                [
                    ("facebook".to_owned(), globex.business_id.to_string()),
                    ("whatsapp".to_owned(), acme.business_id.to_string()),
                ],
                "claimed once, in the directory"
            );
        });
    }

    #[test]
    fn an_update_merges_settings_and_secrets_and_renames_when_asked() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = create(&fixture, &acme, Channel::Facebook, "page-1")
                .await
                .unwrap_or_else(|| panic!("created"));
            fixture.stack.advance(Duration::from_secs(1));
            let now = fixture.now().to_rfc3339();
            let change = Change {
                name: None,
                settings: &map(json!({"api_base": null, "version": "v19"})),
                secrets: &map(json!({"access_token": "token-2", "app_secret": null})),
                now: &now,
            };
            let updated = update(&fixture.db, &fixture.keys(), &acme, &account.id, &change)
                .await
                .must();
            let updated = updated.unwrap_or_else(|| panic!("found"));
            assert_eq!(updated.name.as_deref(), Some("Main"), "no name given: kept");
            assert_eq!(Value::Object(updated.settings.clone()), json!({"version": "v19"}));
            assert_eq!(updated.secrets_set(), ["access_token"]);
            assert_eq!(updated.secret("access_token"), Some("token-2"));
            assert_eq!(
                (updated.updated_at.as_str(), updated.created_at.as_str()),
                (now.as_str(), account.created_at.as_str())
            );
            let renamed = Change {
                name: Some("Shop page"),
                settings: &Map::new(),
                secrets: &Map::new(),
                now: &now,
            };
            let renamed = update(&fixture.db, &fixture.keys(), &acme, &account.id, &renamed)
                .await
                .must();
            assert_eq!(
                renamed.and_then(|account| account.name),
                Some("Shop page".to_owned())
            );
        });
    }

    #[test]
    fn another_business_neither_finds_nor_changes_an_account() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let account = create(&fixture, &acme, Channel::Facebook, "page-1")
                .await
                .unwrap_or_else(|| panic!("created"));
            let now = fixture.now().to_rfc3339();
            let change = Change {
                name: Some("Taken"),
                settings: &Map::new(),
                secrets: &map(json!({"access_token": "x"})),
                now: &now,
            };
            assert!(
                update(&fixture.db, &fixture.keys(), &globex, &account.id, &change)
                    .await
                    .must()
                    .is_none()
            );
            assert!(
                list(&fixture.db, &fixture.keys(), &globex)
                    .await
                    .must()
                    .is_empty()
            );
            assert!(facebook_pages(&fixture.db, &globex).await.must().is_empty());
            let found = sending_account_id_of(&fixture.db, &globex, Channel::Facebook)
                .must()
                .run()
                .await
                .must();
            assert_eq!(found, None);
            let unchanged = find(&fixture.db, &fixture.keys(), &account.id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(
                (unchanged.name.as_deref(), unchanged.secret("access_token")),
                (Some("Main"), Some("token-1"))
            );
        });
    }

    #[test]
    fn the_first_account_made_on_a_channel_sends_on_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let first = create(&fixture, &acme, Channel::Facebook, "page-1")
                .await
                .unwrap_or_else(|| panic!("created"));
            fixture.stack.advance(Duration::from_secs(1));
            let second = create(&fixture, &acme, Channel::Facebook, "page-2")
                .await
                .unwrap_or_else(|| panic!("created"));
            fixture.stack.advance(Duration::from_secs(1));
            create(&fixture, &acme, Channel::Instagram, "insta-1").await;
            let mut batch = db::Batch::default();
            let facebook = batch.read(sending_account_id_of(&fixture.db, &acme, Channel::Facebook).must());
            let sealed = batch.read(
                sending_on_read(
                    &fixture.db,
                    &acme,
                    Sql::new(":channel").bind("channel", text("facebook")),
                )
                .must(),
            );
            let on = batch.read(channels(&fixture.db, &acme).must());
            let sms = batch.read(sending_account_id_of(&fixture.db, &acme, Channel::Sms).must());
            let answers = batch.run(&fixture.db).await.must();
            assert_eq!(answers.take(facebook).must(), Some(first.id.clone()));
            let sender = opened(&fixture.db, &fixture.keys(), answers.take(sealed).must())
                .await
                .must();
            assert_eq!(
                sender.map(|account| (
                    account.id.clone(),
                    account.secret("access_token").map(str::to_owned)
                )),
                Some((first.id.clone(), Some("token-1".to_owned())))
            );
            let mut on = answers.take(on).must();
            on.sort_by_key(|channel| channel.as_str());
            assert_eq!(on, [Channel::Facebook, Channel::Instagram]);
            assert_eq!(answers.take(sms).must(), None, "no SMS account");
            let pages = facebook_pages(&fixture.db, &acme).await.must();
            assert_eq!(
                pages,
                [
                    ("page-1".to_owned(), Some("Main".to_owned())),
                    ("page-2".to_owned(), Some("Main".to_owned()))
                ]
            );
            let listed: Vec<ChannelAccountId> = list(&fixture.db, &fixture.keys(), &acme)
                .await
                .must()
                .into_iter()
                .map(|a| a.id)
                .collect();
            assert_eq!(listed.len(), 3);
            assert_eq!(listed[..2], [first.id, second.id]);
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
