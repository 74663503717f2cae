//! `crm_links`: which record in a connector's CRM each of our customers, conversations and
//! messages is. Written once per record (the first writer wins); read by our id when work updates
//! the CRM, and by the CRM's id when its webhook tells us of a change; forgotten when the CRM
//! answers that it no longer has the record (someone deleted it there).

use crate::db::Rows;
use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use domain::crm::work::LinkKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::ids::CustomerId;
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

/// Forgets every link of our records of `kind` to the CRM's `crm_id` (the CRM deleted that
/// record): the next work for them makes it again. How many were forgotten.
pub async fn forget_crm_id(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    crm_id: &str,
) -> Result<usize, ApiError> {
    let result = db
        .scoped(
            tenant,
            "DELETE FROM crm_links WHERE connector_id = ?2 AND kind = ?3 AND crm_id = ?4 AND business_id = ?1",
        )
        .bind(&[text(connector.as_str()), text(kind.as_str()), text(crm_id)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// Moves every link of our records of `kind` to any of the CRM's `from` onto `into` (the CRM
/// merged those records into it). How many moved.
pub async fn relink(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    kind: LinkKind,
    from: &[String],
    into: &str,
) -> Result<usize, ApiError> {
    let from = serde_json::to_string(from)
        .map_err(|error| ApiError::internal("moving CRM links", error.to_string()))?;
    let result = db
        .scoped(
            tenant,
            "UPDATE crm_links SET crm_id = ?5 WHERE connector_id = ?2 AND kind = ?3 \
             AND crm_id IN (SELECT value FROM json_each(?4)) AND business_id = ?1",
        )
        .bind(&[
            text(connector.as_str()),
            text(kind.as_str()),
            text(&from),
            text(into),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result))
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

/// The statement that forgets every record id a deleted connector knew, for its deletion's batch.
/// (`+business_id` keeps SQLite on the connector's key, not walking every row of the business.)
pub fn forget_connector(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_links WHERE +business_id = ?1 AND connector_id = ?2",
        )
        .bind(&[text(id.as_str())])?)
}

/// The statement that deletes every connector's links of our records of `kind` that `ids`
/// selects (an erasure's).
pub fn erase_local(db: &Db, tenant: &Tenant, kind: LinkKind, ids: Sql) -> Result<Statement, ApiError> {
    ids.within(
        "DELETE FROM crm_links WHERE business_id = :business AND kind = :link_kind AND local_id IN ({sql})",
    )
    .bind("link_kind", text(kind.as_str()))
    .scoped(db, tenant)
}

/// A customer's contact in one connected CRM, as an erasure reads it before it forgets the link.
#[derive(Debug, Clone, Deserialize)]
pub struct CrmContact {
    pub connector_id: ConnectorId,
    pub kind: String,
    pub crm_id: String,
}

/// The customer's contacts in the business's connected CRMs, with each connector's kind.
pub async fn contacts_of_customer(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
) -> Result<Vec<CrmContact>, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT l.connector_id, c.kind, l.crm_id FROM crm_links l JOIN crm_connectors c ON c.id = l.connector_id \
             AND c.business_id = ?1 WHERE l.business_id = ?1 AND l.kind = 'customer' AND l.local_id = ?2 \
             ORDER BY l.connector_id",
        )
        .bind(&[text(customer.as_str())])?
        .all()
        .await?
        .rows::<CrmContact>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};
    use std::time::Duration;

    #[test]
    fn the_first_link_of_a_record_wins_and_is_found_both_ways() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let now = fixture.now().micros();
            let kind = LinkKind::Conversation;
            assert_eq!(
                link(&fixture.db, &acme, &connector, kind, "ours-1", "crm-1", now)
                    .await
                    .must(),
                "crm-1"
            );
            assert_eq!(
                link(&fixture.db, &acme, &connector, kind, "ours-1", "crm-2", now)
                    .await
                    .must(),
                "crm-1",
                "a second writer gets the first link"
            );
            assert_eq!(
                crm_id(&fixture.db, &acme, &connector, kind, "ours-1")
                    .await
                    .must()
                    .as_deref(),
                Some("crm-1")
            );
            assert_eq!(
                local_id(&fixture.db, &acme, &connector, kind, "crm-1")
                    .await
                    .must()
                    .as_deref(),
                Some("ours-1")
            );
            assert_eq!(
                local_id(&fixture.db, &acme, &connector, kind, "crm-2")
                    .await
                    .must(),
                None
            );
            let cases = [
                ("another kind", LinkKind::Message, "ours-1"),
                ("another record", kind, "ours-2"),
            ];
            for (description, kind, local) in cases {
                assert_eq!(
                    crm_id(&fixture.db, &acme, &connector, kind, local).await.must(),
                    None,
                    "{description}"
                );
            }
            let other = fixture.connector(&acme).await;
            assert_eq!(
                crm_id(&fixture.db, &acme, &other, kind, "ours-1").await.must(),
                None,
                "another connector"
            );
        });
    }

    #[test]
    fn a_crm_record_two_of_ours_link_to_is_the_earliest_ones() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let kind = LinkKind::Customer;
            link(
                &fixture.db,
                &acme,
                &connector,
                kind,
                "ours-b",
                "crm-1",
                fixture.now().micros(),
            )
            .await
            .must();
            fixture.stack.advance(Duration::from_secs(1));
            link(
                &fixture.db,
                &acme,
                &connector,
                kind,
                "ours-a",
                "crm-1",
                fixture.now().micros(),
            )
            .await
            .must();
            assert_eq!(
                local_id(&fixture.db, &acme, &connector, kind, "crm-1")
                    .await
                    .must()
                    .as_deref(),
                Some("ours-b")
            );
        });
    }

    #[test]
    fn unlinking_forgets_only_the_link_it_names() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let now = fixture.now().micros();
            let kind = LinkKind::Message;
            link(&fixture.db, &acme, &connector, kind, "ours-1", "crm-1", now)
                .await
                .must();
            unlink(&fixture.db, &acme, &connector, kind, "ours-1", "crm-2")
                .await
                .must();
            assert_eq!(
                crm_id(&fixture.db, &acme, &connector, kind, "ours-1")
                    .await
                    .must()
                    .as_deref(),
                Some("crm-1"),
                "a link made since to another record stays"
            );
            unlink(&fixture.db, &acme, &connector, kind, "ours-1", "crm-1")
                .await
                .must();
            assert_eq!(
                crm_id(&fixture.db, &acme, &connector, kind, "ours-1")
                    .await
                    .must(),
                None
            );
            assert_eq!(
                link(&fixture.db, &acme, &connector, kind, "ours-1", "crm-3", now)
                    .await
                    .must(),
                "crm-3",
                "linked anew"
            );
        });
    }

    #[test]
    fn another_business_neither_reads_nor_forgets_a_link() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let connector = fixture.connector(&acme).await;
            let kind = LinkKind::Customer;
            link(
                &fixture.db,
                &acme,
                &connector,
                kind,
                "ours-1",
                "crm-1",
                fixture.now().micros(),
            )
            .await
            .must();
            assert_eq!(
                crm_id(&fixture.db, &globex, &connector, kind, "ours-1")
                    .await
                    .must(),
                None
            );
            assert_eq!(
                local_id(&fixture.db, &globex, &connector, kind, "crm-1")
                    .await
                    .must(),
                None
            );
            unlink(&fixture.db, &globex, &connector, kind, "ours-1", "crm-1")
                .await
                .must();
            let rows = fixture.rows("crm_links", "local_id");
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(
                rows[0]["business_id"],
                serde_json::json!(acme.business_id.as_str())
            );
        });
    }
}
