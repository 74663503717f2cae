//! `customer_identities`: the address each customer is known by on each channel (a phone, an
//! email, or the page-scoped id Messenger and Instagram give). Inbound messages find their
//! customer here; sends to Messenger and Instagram find their recipient here.

use crate::db::Read;
use crate::db::Rows;
use crate::db::{self, Sql, text};
use crate::db::{Db, Statement};
use crate::runtime::D1Result;
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::CustomerId;
use domain::tenant::Tenant;
use serde::Deserialize;

/// Links the sender's address on `channel` to their customer, once: the customer holding their
/// phone (or WhatsApp number, the earliest), else their email, else `new_customer` (created by
/// the statement before this one in the batch).
pub fn link(
    db: &Db,
    tenant: &Tenant,
    channel: &str,
    address: &str,
    email: Option<&str>,
    phone: Option<&str>,
    new_customer: &CustomerId,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT OR IGNORE INTO customer_identities (business_id, channel, address, customer_id) VALUES (?1, ?2, ?3, COALESCE(\
             (SELECT id FROM customers WHERE business_id = ?1 AND ?5 IS NOT NULL AND phone = ?5), \
             (SELECT id FROM customers WHERE business_id = ?1 AND ?5 IS NOT NULL AND whatsapp_number = ?5 ORDER BY +created_at LIMIT 1), \
             (SELECT id FROM customers WHERE business_id = ?1 AND ?4 IS NOT NULL AND email = ?4), ?6))",
        )
        .bind(&[
            text(channel),
            text(address),
            db::optional_text(email),
            db::optional_text(phone),
            text(new_customer.as_str()),
        ])?)
}

/// The condition that the address is not linked to any customer yet when the statement runs.
pub fn not_linked(channel: &str, address: &str) -> Sql {
    Sql::new(
        "NOT EXISTS (SELECT 1 FROM customer_identities WHERE business_id = :business \
         AND channel = :identity_channel AND address = :identity_address)",
    )
    .bind("identity_channel", text(channel))
    .bind("identity_address", text(address))
}

/// The customer's latest address on `channel` (a customer who wrote to several pages has an id
/// per page; the latest is used).
pub async fn latest_address(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
    channel: Channel,
) -> Result<Option<String>, ApiError> {
    let customer = Sql::new(":customer").bind("customer", text(customer_id.as_str()));
    let channel = Sql::new(":channel").bind("channel", text(channel.as_str()));
    latest_address_read(db, tenant, customer, channel)?.run().await
}

/// The read of [`latest_address_of`], for a caller's batch.
pub fn latest_address_read(
    db: &Db,
    tenant: &Tenant,
    customer: Sql,
    channel: Sql,
) -> Result<Read<Option<String>>, ApiError> {
    Ok(Read::new(
        latest_address_of(customer, channel).scoped(db, tenant)?,
        read_address,
    ))
}

/// The statement reading the channels the tenant's customer has an address on in this table (each
/// once), for a caller's batch. By the customer's
/// index: `+business_id` keeps SQLite off the key's business prefix, which would walk every
/// address of the business (see the module note in `db`).
pub fn channels_of(
    db: &Db,
    tenant: &Tenant,
    customer_id: &CustomerId,
) -> Result<Read<Vec<Channel>>, ApiError> {
    Ok(Read::new(
        db.scoped(
            tenant,
            "SELECT DISTINCT channel FROM customer_identities WHERE +business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer_id.as_str())])?,
        super::channel_accounts::read_channels,
    ))
}

/// [`latest_address`] of the customer and on the channel the fragments select (a value or a
/// subquery of one column each), for a caller's batch. By the
/// customer's index, as [`channels_of`].
pub fn latest_address_of(customer: Sql, channel: Sql) -> Sql {
    Sql::compose(
        "SELECT address FROM customer_identities WHERE +business_id = :business AND customer_id = ({sql}) \
         AND +channel = ({sql}) ORDER BY rowid DESC LIMIT 1",
        vec![customer, channel],
    )
}

/// The address the statement of [`latest_address_of`] found.
fn read_address(answer: &D1Result) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        address: String,
    }
    Ok(db::first_row::<Row>(answer)?.map(|row| row.address))
}

/// The customer's addresses, as (channel, address).
pub async fn addresses_of(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
) -> Result<Vec<(String, String)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        channel: String,
        address: String,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT channel, address FROM customer_identities WHERE business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer.as_str())])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows.into_iter().map(|row| (row.channel, row.address)).collect())
}

/// The statement that deletes the customer's addresses on every channel (an erasure's first: a
/// message from one of them afterwards is a new customer's).
pub fn erase_of_customer(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM customer_identities WHERE business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, draft};
    use domain::customer::CustomerDraft;
    use domain::email::Email;
    use domain::phone::Phone;
    use std::time::Duration;

    fn phone(text: &str) -> Option<Phone> {
        Some(Phone::parse(text, None).must())
    }

    async fn link_now(
        fixture: &Fixture,
        tenant: &Tenant,
        channel: &str,
        address: &str,
        email: Option<&str>,
        phone: Option<&str>,
        new: &CustomerId,
    ) -> usize {
        let statement = link(&fixture.db, tenant, channel, address, email, phone, new).must();
        fixture.changes(statement).await
    }

    #[test]
    fn an_address_is_linked_to_the_customer_its_phone_or_email_names_else_the_new_one() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let by_phone = fixture
                .customer_with(
                    &acme,
                    CustomerDraft {
                        phone: phone("+353870000001"),
                        ..draft("P")
                    },
                )
                .await;
            let whatsapp_first = fixture
                .customer_with(
                    &acme,
                    CustomerDraft {
                        whatsapp_number: phone("+353870000002"),
                        ..draft("W1")
                    },
                )
                .await;
            fixture.stack.advance(Duration::from_secs(1));
            fixture
                .customer_with(
                    &acme,
                    CustomerDraft {
                        whatsapp_number: phone("+353870000002"),
                        ..draft("W2")
                    },
                )
                .await;
            let by_email = fixture
                .customer_with(
                    &acme,
                    CustomerDraft {
                        email: Some(Email::parse("e@example.com").must()),
                        ..draft("E")
                    },
                )
                .await;
            let new = fixture.customer(&acme, "New").await;
            let cases = [
                (
                    "a phone",
                    "sms",
                    "+353870000001",
                    None,
                    Some("+353870000001"),
                    &by_phone,
                ),
                (
                    "a WhatsApp number: the earliest holder",
                    "whatsapp",
                    "+353870000002",
                    None,
                    Some("+353870000002"),
                    &whatsapp_first,
                ),
                (
                    "an email",
                    "email",
                    "e@example.com",
                    Some("e@example.com"),
                    None,
                    &by_email,
                ),
                (
                    "the phone before the email",
                    "sms",
                    "+353870000001x",
                    Some("e@example.com"),
                    Some("+353870000001"),
                    &by_phone,
                ),
                ("nobody known", "facebook", "psid-1", None, None, &new),
            ];
            for (description, channel, address, email, phone, expected) in cases {
                assert_eq!(
                    link_now(&fixture, &acme, channel, address, email, phone, &new).await,
                    1,
                    "{description}"
                );
                let customer = Sql::new(":c").bind("c", text(expected.as_str()));
                let found = latest_address_read(
                    &fixture.db,
                    &acme,
                    customer,
                    Sql::new(":ch").bind("ch", text(channel)),
                )
                .must()
                .run()
                .await
                .must();
                assert_eq!(found.as_deref(), Some(address), "{description}");
            }
        });
    }

    #[test]
    fn an_address_is_linked_once_and_its_latest_is_used() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (ann, bob) = (
                fixture.customer(&acme, "Ann").await,
                fixture.customer(&acme, "Bob").await,
            );
            assert_eq!(
                link_now(&fixture, &acme, "facebook", "psid-page-1", None, None, &ann).await,
                1
            );
            assert_eq!(
                link_now(&fixture, &acme, "facebook", "psid-page-1", None, None, &bob).await,
                0,
                "linked already"
            );
            assert_eq!(
                link_now(&fixture, &acme, "facebook", "psid-page-2", None, None, &ann).await,
                1
            );
            assert_eq!(
                link_now(&fixture, &acme, "sms", "+353870000001", None, None, &ann).await,
                1
            );
            let latest = latest_address(&fixture.db, &acme, &ann, Channel::Facebook)
                .await
                .must();
            assert_eq!(latest.as_deref(), Some("psid-page-2"), "the page written to last");
            assert_eq!(
                latest_address(&fixture.db, &acme, &bob, Channel::Facebook)
                    .await
                    .must(),
                None
            );
            assert_eq!(
                latest_address(&fixture.db, &acme, &ann, Channel::Instagram)
                    .await
                    .must(),
                None
            );
            let statement = channels_of(&fixture.db, &acme, &ann).must();
            let mut channels = statement.run().await.must();
            channels.sort_by_key(|channel| channel.as_str());
            assert_eq!(channels, [Channel::Facebook, Channel::Sms], "each once");

            // Identities are the business's: another business links the same address its own way.
            assert_eq!(
                latest_address(&fixture.db, &globex, &ann, Channel::Facebook)
                    .await
                    .must(),
                None
            );
            let theirs = fixture.customer(&globex, "Theirs").await;
            assert_eq!(
                link_now(&fixture, &globex, "facebook", "psid-page-1", None, None, &theirs).await,
                1
            );
            let held = |tenant: &Tenant| {
                not_linked("facebook", "psid-page-1")
                    .within("SELECT {sql} AS free")
                    .scoped(&fixture.db, tenant)
            };
            #[derive(serde::Deserialize)]
            struct Free {
                free: i64,
            }
            for tenant in [&acme, &globex] {
                let free = held(tenant)
                    .must()
                    .first::<Free>(None)
                    .await
                    .must()
                    .map(|row| row.free);
                assert_eq!(free, Some(0));
            }
            let free = not_linked("facebook", "psid-page-9")
                .within("SELECT {sql} AS free")
                .scoped(&fixture.db, &acme);
            assert_eq!(
                free.must().first::<Free>(None).await.must().map(|row| row.free),
                Some(1)
            );
        });
    }
}
