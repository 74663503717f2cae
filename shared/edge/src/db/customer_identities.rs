//! `customer_identities`: the address each customer is known by on each channel (a phone, an
//! email, or the page-scoped id Messenger and Instagram give). Inbound messages find their
//! customer here; sends to Messenger and Instagram find their recipient here.

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
    let result = latest_address_of(customer, channel)
        .scoped(db, tenant)?
        .all()
        .await?;
    address_at(&[result], 0)
}

/// The statement reading the channels the tenant's customer has an address on in this table (each
/// once), for a caller's batch; `channel_accounts::channels_at` reads its answer. By the customer's
/// index: `+business_id` keeps SQLite off the key's business prefix, which would walk every
/// address of the business (see the module note in `db`).
pub fn channels_of(db: &Db, tenant: &Tenant, customer_id: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT DISTINCT channel FROM customer_identities WHERE +business_id = ?1 AND customer_id = ?2",
        )
        .bind(&[text(customer_id.as_str())])?)
}

/// [`latest_address`] of the customer and on the channel the fragments select (a value or a
/// subquery of one column each), for a caller's batch; [`address_at`] reads its answer. By the
/// customer's index, as [`channels_of`].
pub fn latest_address_of(customer: Sql, channel: Sql) -> Sql {
    Sql::compose(
        "SELECT address FROM customer_identities WHERE +business_id = :business AND customer_id = ({sql}) \
         AND +channel = ({sql}) ORDER BY rowid DESC LIMIT 1",
        vec![customer, channel],
    )
}

/// The address the statement of [`latest_address_of`] at `position` of a batch found.
pub fn address_at(results: &[D1Result], position: usize) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        address: String,
    }
    Ok(db::first_row::<Row>(results, position)?.map(|row| row.address))
}
