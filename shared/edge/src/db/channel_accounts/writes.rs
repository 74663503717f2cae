//! What the admin API writes: an account, its address claimed in the directory first (an address
//! belongs to one business, whatever its shard); a change, its settings merged in SQL and its
//! secrets merged, sealed again and written only over what was read; its deletion when nothing
//! refers to it; its address released or handed over; and a restore's quarantine, every account
//! paused and the chosen ones resumed.

use super::reads::{find, read_of};
use super::{ChannelAccount, seal_secrets};
use crate::db::directory;
use crate::db::{self, Db, Statement, text};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::{BusinessId, ChannelAccountId};
use domain::providers::Provider;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use serde::Deserialize;
use serde_json::{Map, Value};

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
    use super::super::tests::{create, map};
    use super::*;
    use crate::testing::{Fixture, Must};
    use serde_json::json;
    use std::time::Duration;

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
}
