//! `crm_contacts`: one writer per contact. A worker does a contact's CRM work for one connector
//! only while it holds the contact's lease, so two events about a new customer cannot both
//! create them in the CRM, and the contact's work is done in order. The row also keeps the
//! contact's records in the CRM in the CRM's external id form (found by it through an index),
//! and the stage moves made for it; only the lease holder writes them.

use crate::db::{self, number, optional_text, text};
use domain::crm::work::ContactKey;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;
use serde::Deserialize;
use worker::D1Database;

/// Takes the lease on the contact until `until_us` under `lease`, if nobody holds it; true when
/// it was taken.
pub async fn claim(
    db: &D1Database,
    tenant: &Tenant,
    connector: &ConnectorId,
    customer: &ContactKey,
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
            text(&customer.to_string()),
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
    customer: &ContactKey,
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
            text(&customer.to_string()),
            text(lease),
        ])?
        .run()
        .await?;
    let _ = db::changes(&result);
    Ok(())
}

/// What the connector keeps of a contact: its records in the CRM (the CRM's external id form)
/// and the stage moves made for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Kept {
    pub customer_id: String,
    pub external_id: Option<String>,
    pub stages_done: Option<String>,
}

/// What the connector keeps of the contact (None: it has never had work).
pub async fn kept(
    db: &D1Database,
    tenant: &Tenant,
    connector: &ConnectorId,
    contact: &ContactKey,
) -> Result<Option<Kept>, ApiError> {
    Ok(db
        .prepare(
            "SELECT customer_id, external_id, stages_done FROM crm_contacts \
             WHERE business_id = ?1 AND connector_id = ?2 AND customer_id = ?3",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(connector.as_str()),
            text(&contact.to_string()),
        ])?
        .first::<Kept>(None)
        .await?)
}

/// The contact whose external id is `external_id`, or begins with it followed by `|` (the
/// first record named, Krayin's person, finds its contact); through the index, either way.
pub async fn by_external_id(
    db: &D1Database,
    tenant: &Tenant,
    connector: &ConnectorId,
    external_id: &str,
) -> Result<Option<Kept>, ApiError> {
    Ok(db
        .prepare(
            "SELECT customer_id, external_id, stages_done FROM crm_contacts \
             WHERE business_id = ?1 AND connector_id = ?2 \
             AND (external_id = ?3 OR (external_id > ?3 || '|' AND external_id < ?3 || '}')) \
             ORDER BY external_id LIMIT 1",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(connector.as_str()),
            text(external_id),
        ])?
        .first::<Kept>(None)
        .await?)
}

/// Writes what the connector keeps of the contact, under the lease its writer holds.
pub async fn keep(
    db: &D1Database,
    tenant: &Tenant,
    connector: &ConnectorId,
    contact: &ContactKey,
    external_id: Option<&str>,
    stages_done: Option<&str>,
) -> Result<(), ApiError> {
    db.prepare(
        "UPDATE crm_contacts SET external_id = ?4, stages_done = ?5 \
         WHERE business_id = ?1 AND connector_id = ?2 AND customer_id = ?3",
    )
    .bind(&[
        text(tenant.business_id.as_str()),
        text(connector.as_str()),
        text(&contact.to_string()),
        optional_text(external_id),
        optional_text(stages_done),
    ])?
    .run()
    .await?;
    Ok(())
}

/// A contact's external id in one connector's CRM.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ExternalId {
    pub connector_id: String,
    pub external_id: String,
}

/// The contact's external ids in each connector's CRM that has them, oldest connector first.
pub async fn external_ids(
    db: &D1Database,
    tenant: &Tenant,
    contact: &ContactKey,
) -> Result<Vec<ExternalId>, ApiError> {
    let result = db
        .prepare(
            "SELECT k.connector_id, k.external_id FROM crm_contacts k \
             JOIN crm_connectors c ON c.id = k.connector_id AND c.business_id = k.business_id \
             WHERE k.business_id = ?1 AND k.customer_id = ?2 AND k.external_id IS NOT NULL \
             ORDER BY c.created_at, c.id",
        )
        .bind(&[text(tenant.business_id.as_str()), text(&contact.to_string())])?
        .all()
        .await?;
    Ok(result.results::<ExternalId>()?)
}
