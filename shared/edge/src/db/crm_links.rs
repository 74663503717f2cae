//! `crm_links`: which record in a connector's CRM each of our customers, conversations and
//! messages is. Written once per record (the first writer wins); read by our id when work updates
//! the CRM, and by the CRM's id when its webhook tells us of a change; forgotten when the CRM
//! answers that it no longer has the record (someone deleted it there).

use crate::db::Db;
use crate::db::{self, Sql, number, text};
use domain::crm::work::LinkKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;
use serde::Deserialize;

/// The CRM's id for our record `local_id`, if it has one.
pub async fn crm_id(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    local_id: &str,
) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        crm_id: String,
    }
    let row = db
        .scoped(tenant, "SELECT crm_id FROM crm_links WHERE connector_id = ?2 AND kind = ?3 AND local_id = ?4 AND business_id = ?1",
        )
        .bind(&[
            text(connector.as_str()),
            text(kind.as_str()),
            text(local_id),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.map(|row| row.crm_id))
}

/// SQL selecting `customer_id, connector_id, external_id` (the CRM's bare id) and `linked` (1)
/// of every customer link of the business `:business` among the customer ids `customers` selects.
pub fn customer_ids_sql(customers: Sql) -> Sql {
    Sql::compose(
        "SELECT l.local_id AS customer_id, l.connector_id, l.crm_id AS external_id, 1 AS linked FROM crm_links l \
         WHERE l.business_id = :business AND l.kind = 'customer' AND l.local_id IN ({sql})",
        vec![customers],
    )
}

/// Our record for the CRM's `crm_id`, if we know it.
pub async fn local_id(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    crm_id: &str,
) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        local_id: String,
    }
    let row = db
        .scoped(tenant, "SELECT local_id FROM crm_links WHERE connector_id = ?2 AND kind = ?3 AND crm_id = ?4 AND business_id = ?1 \
             ORDER BY created_us LIMIT 1",
        )
        .bind(&[
            text(connector.as_str()),
            text(kind.as_str()),
            text(crm_id),
        ])?
        .first::<Row>(None)
        .await?;
    Ok(row.map(|row| row.local_id))
}

/// Links `local_id` to `crm_id` unless it is linked already; returns the CRM id the record is
/// linked to afterwards (the earlier link's, if there was one).
pub async fn link(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    local_id: &str,
    crm_id: &str,
    now_us: i64,
) -> Result<String, ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO crm_links (connector_id, business_id, kind, local_id, crm_id, created_us) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6) ON CONFLICT (connector_id, kind, local_id) DO NOTHING",
    )
    .bind(&[
        text(connector.as_str()),
        text(kind.as_str()),
        text(local_id),
        text(crm_id),
        number(now_us),
    ])?
    .run()
    .await?;
    crm_id_or_corrupt(db, tenant, connector, kind, local_id).await
}

/// Forgets the link of `local_id` to `crm_id` (the CRM no longer has that record), if it is still
/// that link.
pub async fn unlink(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    local_id: &str,
    crm_id: &str,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "DELETE FROM crm_links WHERE connector_id = ?2 AND kind = ?3 AND local_id = ?4 AND crm_id = ?5 \
         AND business_id = ?1",
    )
    .bind(&[
        text(connector.as_str()),
        text(kind.as_str()),
        text(local_id),
        text(crm_id),
    ])?
    .run()
    .await?;
    Ok(())
}

async fn crm_id_or_corrupt(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    local_id: &str,
) -> Result<String, ApiError> {
    self::crm_id(db, tenant, connector, kind, local_id)
        .await?
        .ok_or_else(|| db::corrupt("CRM link", local_id, "it was not kept"))
}
