//! `crm_contacts`: one writer per contact. A worker does a contact's CRM work for one connector
//! only while it holds the contact's lease, so two events about a new customer cannot both
//! create them in the CRM, and the contact's work is done in order.

use crate::db::{self, number, text};
use domain::error::ApiError;
use domain::ids::{ConnectorId, CustomerId};
use domain::tenant::Tenant;
use serde::Deserialize;
use worker::D1Database;

/// Takes the lease on the contact until `until_us` under `lease`, if nobody holds it; true when
/// it was taken.
pub async fn claim(
    db: &D1Database,
    tenant: &Tenant,
    connector: &ConnectorId,
    customer: &CustomerId,
    lease: &str,
    now_us: i64,
    until_us: i64,
) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        lease: Option<String>,
    }
    let row = db
        .prepare(
            "INSERT INTO crm_contacts (connector_id, customer_id, business_id, lease, leased_until_us) \
             VALUES (?2, ?3, ?1, ?4, ?6) ON CONFLICT (connector_id, customer_id) DO UPDATE \
             SET lease = excluded.lease, leased_until_us = excluded.leased_until_us \
             WHERE crm_contacts.leased_until_us <= ?5 RETURNING lease",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(connector.as_str()),
            text(customer.as_str()),
            text(lease),
            number(now_us),
            number(until_us),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.and_then(|row| row.lease).as_deref() == Some(lease))
}

/// Gives the lease back, if it is still `lease`.
pub async fn release(
    db: &D1Database,
    tenant: &Tenant,
    connector: &ConnectorId,
    customer: &CustomerId,
    lease: &str,
) -> Result<(), ApiError> {
    let result = db
        .prepare(
            "UPDATE crm_contacts SET lease = NULL, leased_until_us = 0 \
             WHERE business_id = ?1 AND connector_id = ?2 AND customer_id = ?3 AND lease = ?4",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(connector.as_str()),
            text(customer.as_str()),
            text(lease),
        ])?
        .run()
        .await?;
    let _ = db::changes(&result);
    Ok(())
}
