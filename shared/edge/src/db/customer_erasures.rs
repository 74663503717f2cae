//! `customer_erasures`: the tombstone of each customer erased on request (`crate::ops::erasure`):
//! their id, when and by whom, where the erasure stands, what it deleted, the tokens their
//! CRM-link records were indexed by and the CRM work that deletes their contacts. Nothing in a
//! row says who the person was.

use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, Sql, Statement, number, text};
use domain::erasure::{Deleted, Status};
use domain::error::ApiError;
use domain::ids::{BusinessId, ConnectorId, CustomerId, SyncJobId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A connector's part of an erasure, as the row keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrmPart {
    pub connector_id: ConnectorId,
    pub kind: String,
    pub job_id: SyncJobId,
}

/// An erasure as its row holds it.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub customer_id: CustomerId,
    pub status: Status,
    pub requested_us: i64,
    pub requested_by: String,
    pub erased_us: Option<i64>,
    /// The tokens of the customer's subjects (`domain::bot::subject::token`).
    pub subjects: Vec<String>,
    pub crm: Vec<CrmPart>,
    pub deleted: Deleted,
}

const COLUMNS: &str = "id, status, requested_us, requested_by, erased_us, subjects, crm, messages_deleted, \
                       conversations_deleted, attachments_deleted, pieces_deleted";

#[derive(Deserialize)]
struct Row {
    id: CustomerId,
    status: String,
    requested_us: i64,
    requested_by: String,
    erased_us: Option<i64>,
    subjects: String,
    crm: String,
    messages_deleted: u64,
    conversations_deleted: u64,
    attachments_deleted: u64,
    pieces_deleted: u64,
}

impl Row {
    fn erasure(self) -> Result<Erasure, ApiError> {
        let corrupt = |what: &str| db::corrupt("customer erasure", self.id.as_str(), what);
        Ok(Erasure {
            status: Status::parse(&self.status).ok_or_else(|| corrupt("its status is unknown"))?,
            subjects: serde_json::from_str(&self.subjects)
                .map_err(|_| corrupt("its subjects are not a list"))?,
            crm: serde_json::from_str(&self.crm).map_err(|_| corrupt("its CRM work is unreadable"))?,
            requested_us: self.requested_us,
            requested_by: self.requested_by,
            erased_us: self.erased_us,
            deleted: Deleted {
                messages: self.messages_deleted,
                conversations: self.conversations_deleted,
                attachments: self.attachments_deleted,
                knowledge_pieces: self.pieces_deleted,
            },
            customer_id: self.id,
        })
    }
}

/// The statement that records an erasure begun: refused (a unique violation) when the customer
/// has one already.
pub fn begin(db: &Db, tenant: &Tenant, erasure: &Erasure) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO customer_erasures (id, business_id, requested_us, requested_by, status, subjects, crm) \
             VALUES (?2, ?1, ?3, ?4, 'erasing', ?5, ?6)",
        )
        .bind(&[
            text(erasure.customer_id.as_str()),
            number(erasure.requested_us),
            text(&erasure.requested_by),
            text(&serde_json::to_string(&erasure.subjects)?),
            text(&serde_json::to_string(&erasure.crm)?),
        ])?)
}

/// The statement that deletes the customer's finished erasure: a customer made again with its id
/// (from the same address) is being erased anew, and its new tombstone takes the place.
pub fn forget_erased(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM customer_erasures WHERE business_id = ?1 AND id = ?2 AND status = 'erased'",
        )
        .bind(&[text(customer.as_str())])?)
}

/// The customer's erasure, if one was asked for.
pub async fn find(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Option<Erasure>, ApiError> {
    db.scoped(
        tenant,
        format!("SELECT {COLUMNS} FROM customer_erasures WHERE business_id = ?1 AND id = ?2"),
    )
    .bind(&[text(customer.as_str())])?
    .first::<Row>(None)
    .await?
    .map(Row::erasure)
    .transpose()
}

/// The statement that adds what a step deleted to the erasure's counts.
pub fn count(
    db: &Db,
    tenant: &Tenant,
    customer: &CustomerId,
    deleted: &Deleted,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE customer_erasures SET messages_deleted = messages_deleted + ?3, \
             conversations_deleted = conversations_deleted + ?4, attachments_deleted = attachments_deleted + ?5, \
             pieces_deleted = pieces_deleted + ?6 WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[
            text(customer.as_str()),
            number(deleted.messages as i64),
            number(deleted.conversations as i64),
            number(deleted.attachments as i64),
            number(deleted.knowledge_pieces as i64),
        ])?)
}

/// The condition that the erasure of `customer` is still under way: the batch that finishes it
/// records `customer.erased` before marking it done, so a second finish (the request's and the
/// sweep's at once) records nothing.
pub fn under_way(customer: &CustomerId) -> Sql {
    Sql::new(
        "EXISTS (SELECT 1 FROM customer_erasures WHERE business_id = :business AND id = :erasing \
         AND status = 'erasing')",
    )
    .bind("erasing", text(customer.as_str()))
}

/// The statement that marks the erasure done, now.
pub fn finish(db: &Db, tenant: &Tenant, customer: &CustomerId, now_us: i64) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE customer_erasures SET status = 'erased', erased_us = ?3 \
             WHERE business_id = ?1 AND id = ?2 AND status = 'erasing'",
        )
        .bind(&[text(customer.as_str()), number(now_us)])?)
}

/// Up to `limit` erasures under way on the shard, oldest first, of businesses settled there: the
/// sweep's to go on with.
pub async fn erasing(
    db: &Db,
    moving: &Moving,
    limit: usize,
) -> Result<Vec<(BusinessId, CustomerId)>, ApiError> {
    #[derive(Deserialize)]
    struct Due {
        business_id: BusinessId,
        id: CustomerId,
    }
    let rows = db
        .unscoped(
            "SELECT business_id, id FROM customer_erasures WHERE status = 'erasing' \
             AND business_id NOT IN (SELECT value FROM json_each(?1)) ORDER BY requested_us LIMIT ?2",
        )
        .bind(&[moving.param(), number(limit as i64)])?
        .all()
        .await?
        .rows::<Due>()?;
    Ok(rows.into_iter().map(|row| (row.business_id, row.id)).collect())
}

/// SQL for the snapshot of the erasure of the customer `id_expression` names, as its
/// `customer.erased` event carries it: the tombstone, which names no one.
pub fn snapshot_sql(id_expression: &str) -> String {
    const AT: &str = "'%Y-%m-%dT%H:%M:%fZ'";
    format!(
        "(SELECT json_object('erasure', json_object('customer_id', e.id, 'requested_by', e.requested_by, \
         'requested_at', strftime({AT}, e.requested_us / 1000000.0, 'unixepoch'), \
         'erased_at', strftime({AT}, e.erased_us / 1000000.0, 'unixepoch'), \
         'deleted', json_object('messages', e.messages_deleted, 'conversations', e.conversations_deleted, \
         'attachments', e.attachments_deleted, 'knowledge_pieces', e.pieces_deleted))) \
         FROM customer_erasures e WHERE e.business_id = :business AND e.id = {id_expression})"
    )
}

/// The subject tokens of every customer the business erased: a customers link's next fetch
/// leaves their records out.
pub async fn subjects_of_business(db: &Db, tenant: &Tenant) -> Result<HashSet<String>, ApiError> {
    #[derive(Deserialize)]
    struct Token {
        value: String,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT json_each.value FROM customer_erasures, json_each(customer_erasures.subjects) \
             WHERE customer_erasures.business_id = ?1",
        )
        .all()
        .await?
        .rows::<Token>()?;
    Ok(rows.into_iter().map(|row| row.value).collect())
}
