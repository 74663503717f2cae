//! The account a send goes through: the tenant's oldest account on the channel, read with its
//! secrets in a caller's batch and opened after, or only its id (what accepting a send needs, so
//! the functions that only queue messages hold no key to the secrets), or its provider and
//! address.

use super::{AccountRow, COLUMNS, ChannelAccount, FROM, open_all};
use crate::db::{self, Db, HOLE, Sql, text};
use crate::runtime::D1Result;
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::ChannelAccountId;
use domain::providers::Provider;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::super::tests::create;
    use super::super::{channels, facebook_pages, list};
    use super::*;
    use crate::testing::{Fixture, Must};
    use std::time::Duration;

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
}
