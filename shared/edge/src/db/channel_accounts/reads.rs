//! Accounts found: by id, of whichever business (a receiver's webhook path names only the
//! account, the operator's path too), or the tenant's own, opened with what is stored of their
//! secrets; a business's list, the channels it has accounts on, and its Facebook pages, the pages
//! CRM links belong to, read without a secret.

use super::{AccountRow, COLUMNS, ChannelAccount, FROM, Opened, open_all};
use crate::db::Rows;
use crate::db::{self, Db, text};
use crate::runtime::D1Result;
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::ChannelAccountId;
use domain::links::link::PageId;
use domain::providers::Provider;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use serde::Deserialize;

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
pub(super) async fn read_of(
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

/// The channels a statement of [`channels`] (or [`crate::db::customer_identities::channels_of`]) at
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
    let reads = open_all(db, keys, result.rows::<AccountRow>()?).await?;
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
        .rows::<Page>()?;
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

#[cfg(test)]
mod tests {
    use super::super::tests::{create, map};
    use super::super::{Change, sending_account_id_of, update};
    use super::*;
    use crate::testing::{Fixture, Must};
    use serde_json::{Map, json};

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
}
