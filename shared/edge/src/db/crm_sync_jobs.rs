//! `crm_sync_jobs`: the sync log. Each row is one piece of CRM work for one contact of one
//! connector, from `pending` to how it ended; `seq` orders a contact's work, and the row keeps
//! what the CRM said (its id for the record, the status and reason of the last failure, how long
//! the work took). Work that follows an event is unique per connector and event, so planning
//! the same event twice records it once.

use crate::db::Db;
use crate::db::{self, number, optional_number, optional_text, text};
use domain::crm::work::{ContactKey, JobStatus, Operation, PlannedJob};
use domain::error::ApiError;
use domain::ids::{BusinessId, ConnectorId, CustomerId, SyncJobId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One piece of work as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub id: SyncJobId,
    pub connector_id: ConnectorId,
    /// Whose work it is.
    pub contact: ContactKey,
    pub operation: Operation,
    pub subject_id: String,
    /// The event followed: one of ours (`evt_…`), or a delivery of the platform that feeds the
    /// connector (`chatwoot:<delivery id>`).
    pub event_id: Option<String>,
    pub input: Option<Value>,
    pub status: JobStatus,
    pub attempts: u32,
    pub next_attempt_us: i64,
    pub retry_from_us: i64,
    pub crm_id: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub duration_ms: Option<i64>,
    pub created_us: i64,
    pub updated_us: i64,
}

#[derive(Deserialize)]
struct Row {
    seq: i64,
    id: SyncJobId,
    connector_id: ConnectorId,
    customer_id: ContactKey,
    operation: String,
    subject_id: String,
    event_id: Option<String>,
    input: Option<String>,
    status: String,
    attempts: u32,
    next_attempt_us: i64,
    retry_from_us: i64,
    crm_id: Option<String>,
    last_status: Option<u16>,
    last_error: Option<String>,
    duration_ms: Option<i64>,
    created_us: i64,
    updated_us: i64,
}

impl Row {
    fn into_job(self) -> Result<Job, ApiError> {
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("sync job", &id, what);
        Ok(Job {
            operation: Operation::parse(&self.operation).ok_or_else(|| corrupt("operation"))?,
            status: JobStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            input: match self.input {
                Some(input) => Some(serde_json::from_str(&input).map_err(|_| corrupt("input"))?),
                None => None,
            },
            seq: self.seq,
            id: self.id,
            connector_id: self.connector_id,
            contact: self.customer_id,
            subject_id: self.subject_id,
            event_id: self.event_id,
            attempts: self.attempts,
            next_attempt_us: self.next_attempt_us,
            retry_from_us: self.retry_from_us,
            crm_id: self.crm_id,
            last_status: self.last_status,
            last_error: self.last_error,
            duration_ms: self.duration_ms,
            created_us: self.created_us,
            updated_us: self.updated_us,
        })
    }
}

const COLUMNS: &str = "seq, id, connector_id, customer_id, operation, subject_id, event_id, input, status, attempts, \
                       next_attempt_us, retry_from_us, crm_id, last_status, last_error, duration_ms, created_us, updated_us";

fn jobs(rows: Vec<Row>) -> Result<Vec<Job>, ApiError> {
    rows.into_iter().map(Row::into_job).collect()
}

/// A contact of a connector: whose work a worker is asked to do. Queued as JSON; the key keeps
/// the name it had when every contact was a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub business_id: BusinessId,
    pub connector_id: ConnectorId,
    #[serde(rename = "customer_id")]
    pub key: ContactKey,
}

#[derive(Serialize)]
struct PlannedRow<'a> {
    id: String,
    connector_id: &'a str,
    customer_id: &'a str,
    operation: &'static str,
    subject_id: &'a str,
    event_id: &'a str,
    status: &'static str,
    last_error: Option<&'static str>,
}

/// Records the planned work (each with a fresh id from `ids`), leaving out work already recorded
/// for its event; returns the contacts that now have pending work.
pub async fn insert_planned(
    db: &Db,
    tenant: &Tenant,
    planned: &[PlannedJob],
    mut new_id: impl FnMut() -> Result<SyncJobId, ApiError>,
    now_us: i64,
) -> Result<Vec<Contact>, ApiError> {
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::with_capacity(planned.len());
    for job in planned {
        rows.push(PlannedRow {
            id: new_id()?.to_string(),
            connector_id: job.connector_id.as_str(),
            customer_id: job.customer_id.as_str(),
            operation: job.operation.as_str(),
            subject_id: &job.subject_id,
            event_id: job.event_id.as_str(),
            status: if job.skipped.is_some() {
                "skipped"
            } else {
                "pending"
            },
            last_error: job.skipped,
        });
    }
    #[derive(Deserialize)]
    struct Inserted {
        connector_id: ConnectorId,
        customer_id: ContactKey,
        status: String,
    }
    let field = |name: &str| format!("json_extract(j.value, '$.{name}')");
    let result = db
        .scoped(tenant, format!(
            "INSERT INTO crm_sync_jobs (id, business_id, connector_id, customer_id, operation, subject_id, event_id, \
             status, last_error, next_attempt_us, retry_from_us, created_us, updated_us) \
             SELECT {}, ?1, {}, {}, {}, {}, {}, {}, {}, ?3, ?3, ?3, ?3 FROM json_each(?2) AS j \
             WHERE EXISTS (SELECT 1 FROM crm_connectors c WHERE c.business_id = ?1 AND c.id = {}) \
             ORDER BY j.key \
             ON CONFLICT (connector_id, event_id) DO NOTHING RETURNING connector_id, customer_id, status",
            field("id"),
            field("connector_id"),
            field("customer_id"),
            field("operation"),
            field("subject_id"),
            field("event_id"),
            field("status"),
            field("last_error"),
            field("connector_id"),
        ))
        .bind(&[
            text(&serde_json::to_string(&rows)?),
            number(now_us),
        ])?
        .all()
        .await?;
    let mut contacts: Vec<Contact> = Vec::new();
    for row in result.results::<Inserted>()? {
        let contact = Contact {
            business_id: tenant.business_id.clone(),
            connector_id: row.connector_id,
            key: row.customer_id,
        };
        if row.status == "pending" && !contacts.contains(&contact) {
            contacts.push(contact);
        }
    }
    Ok(contacts)
}

/// Work asked for through the API (an escalation, a note).
pub struct Requested<'a> {
    pub connector_id: &'a ConnectorId,
    pub customer_id: &'a CustomerId,
    pub operation: Operation,
    pub subject_id: &'a str,
    pub input: &'a Value,
}

/// Records requested work as pending.
pub async fn insert_requested(
    db: &Db,
    tenant: &Tenant,
    id: &SyncJobId,
    work: &Requested<'_>,
    now_us: i64,
) -> Result<Job, ApiError> {
    db.scoped(tenant, "INSERT INTO crm_sync_jobs (id, business_id, connector_id, customer_id, operation, subject_id, input, status, \
         next_attempt_us, retry_from_us, created_us, updated_us) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?8, ?8)",
    )
    .bind(&[
        text(id.as_str()),
        text(work.connector_id.as_str()),
        text(work.customer_id.as_str()),
        text(work.operation.as_str()),
        text(work.subject_id),
        text(&work.input.to_string()),
        number(now_us),
    ])?
    .run()
    .await?;
    find(db, tenant, id)
        .await?
        .ok_or_else(|| ApiError::internal("recording CRM work", "the new row was not found"))
}

/// A delivery of the platform that feeds the connector (a Chatwoot event), as work for `contact`:
/// recorded once per delivery id. Returns the contact when the work is new (None: a redelivery).
pub struct Delivered<'a> {
    pub connector_id: &'a ConnectorId,
    pub contact: &'a ContactKey,
    pub operation: Operation,
    pub subject_id: &'a str,
    pub event_id: &'a str,
    pub input: &'a Value,
}

pub async fn insert_delivered(
    db: &Db,
    tenant: &Tenant,
    id: &SyncJobId,
    work: &Delivered<'_>,
    now_us: i64,
) -> Result<Option<Contact>, ApiError> {
    let result = db
        .scoped(tenant, "INSERT INTO crm_sync_jobs (id, business_id, connector_id, customer_id, operation, subject_id, event_id, \
             input, status, next_attempt_us, retry_from_us, created_us, updated_us) \
             VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9, ?9, ?9) \
             ON CONFLICT (connector_id, event_id) DO NOTHING",
        )
        .bind(&[
            text(id.as_str()),
            text(work.connector_id.as_str()),
            text(&work.contact.to_string()),
            text(work.operation.as_str()),
            text(work.subject_id),
            text(work.event_id),
            text(&work.input.to_string()),
            number(now_us),
        ])?
        .run()
        .await?;
    Ok((db::changes(&result) == 1).then(|| Contact {
        business_id: tenant.business_id.clone(),
        connector_id: work.connector_id.clone(),
        key: work.contact.clone(),
    }))
}

pub async fn find(db: &Db, tenant: &Tenant, id: &SyncJobId) -> Result<Option<Job>, ApiError> {
    let row = db
        .scoped(
            tenant,
            format!("SELECT {COLUMNS} FROM crm_sync_jobs WHERE business_id = ?1 AND id = ?2"),
        )
        .bind(&[text(id.as_str())])?
        .first::<Row>(None)
        .await?;
    row.map(Row::into_job).transpose()
}

/// The contact's oldest pending work, due or not: its work is done in order, so when the oldest
/// waits for a retry, the rest waits with it.
pub async fn next_of_contact(db: &Db, tenant: &Tenant, contact: &Contact) -> Result<Option<Job>, ApiError> {
    let row = db
        .scoped(tenant, format!(
            "SELECT {COLUMNS} FROM crm_sync_jobs WHERE connector_id = ?2 AND customer_id = ?3 AND status = 'pending' \
             AND business_id = ?1 ORDER BY seq LIMIT 1"
        ))
        .bind(&[
            text(contact.connector_id.as_str()),
            text(&contact.key.to_string()),
        ])?
        .first::<Row>(None)
        .await?;
    row.map(Row::into_job).transpose()
}

/// How a try of a piece of work ended.
pub struct Settled<'a> {
    pub status: JobStatus,
    pub crm_id: Option<&'a str>,
    pub http_status: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    /// When it is tried next (pending work only).
    pub next_attempt_us: i64,
}

/// Records the end of one try of `job` (counted as an attempt), if it is still pending.
pub async fn settle(
    db: &Db,
    tenant: &Tenant,
    job: &Job,
    settled: &Settled<'_>,
    now_us: i64,
) -> Result<(), ApiError> {
    db.scoped(tenant, "UPDATE crm_sync_jobs SET status = ?3, crm_id = coalesce(?4, crm_id), last_status = ?5, last_error = ?6, \
         duration_ms = ?7, next_attempt_us = ?8, attempts = attempts + 1, updated_us = ?9 \
         WHERE business_id = ?1 AND id = ?2 AND status = 'pending'",
    )
    .bind(&[
        text(job.id.as_str()),
        text(settled.status.as_str()),
        optional_text(settled.crm_id),
        optional_number(settled.http_status.map(i64::from)),
        optional_text(settled.error),
        number(settled.duration_ms),
        number(settled.next_attempt_us),
        number(now_us),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Puts pending `job` off until `until_us` without counting a try (the budget was spent, or the
/// connector paused): no call was made.
pub async fn defer(db: &Db, tenant: &Tenant, job: &Job, until_us: i64) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_sync_jobs SET next_attempt_us = max(next_attempt_us, ?3) \
         WHERE business_id = ?1 AND id = ?2 AND status = 'pending'",
    )
    .bind(&[text(job.id.as_str()), number(until_us)])?
    .run()
    .await?;
    Ok(())
}

/// What the log is filtered by.
#[derive(Default)]
pub struct Filter<'a> {
    pub status: Option<JobStatus>,
    /// A customer, conversation or message id: work about it, or for that contact.
    pub record: Option<&'a str>,
    /// Only work with `seq` below this (the next page's cursor).
    pub before_seq: Option<i64>,
    pub limit: usize,
}

/// The connector's log, newest first.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    filter: &Filter<'_>,
) -> Result<Vec<Job>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM crm_sync_jobs WHERE business_id = ?1 AND connector_id = ?2 \
             AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR subject_id = ?4 OR customer_id = ?4) \
             AND (?5 IS NULL OR seq < ?5) ORDER BY seq DESC LIMIT ?6"
            ),
        )
        .bind(&[
            text(connector.as_str()),
            optional_text(filter.status.map(JobStatus::as_str)),
            optional_text(filter.record),
            optional_number(filter.before_seq),
            number(filter.limit as i64),
        ])?
        .all()
        .await?;
    jobs(result.results::<Row>()?)
}

pub use domain::crm::work::Summary;

pub async fn summary(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    since_us: i64,
    until_us: i64,
) -> Result<Summary, ApiError> {
    let settled = |status: &str| {
        format!("coalesce(sum(status = '{status}' AND updated_us >= ?3 AND updated_us < ?4), 0) AS {status}")
    };
    let row = db
        .scoped(
            tenant,
            format!(
                "SELECT coalesce(sum(status = 'pending'), 0) AS pending, {}, {}, {}, {}, \
             min(CASE WHEN status = 'pending' THEN created_us END) AS oldest_pending_us \
             FROM crm_sync_jobs WHERE business_id = ?1 AND connector_id = ?2",
                settled("succeeded"),
                settled("skipped"),
                settled("failed"),
                settled("dead"),
            ),
        )
        .bind(&[text(connector.as_str()), number(since_us), number(until_us)])?
        .first::<Summary>(None)
        .await?;
    Ok(row.unwrap_or_default())
}

/// Puts the connector's `statuses` work created in [from_us, to_us) back to pending, as new work
/// with a fresh retry window; returns the contacts that now have pending work.
pub async fn replay(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    statuses: &[JobStatus],
    from_us: i64,
    to_us: i64,
    now_us: i64,
) -> Result<Vec<Contact>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        customer_id: ContactKey,
    }
    let result = db
        .scoped(tenant, "UPDATE crm_sync_jobs SET status = 'pending', attempts = 0, next_attempt_us = ?6, retry_from_us = ?6, \
             updated_us = ?6 WHERE business_id = ?1 AND connector_id = ?2 \
             AND status IN (SELECT value FROM json_each(?3)) AND created_us >= ?4 AND created_us < ?5 \
             RETURNING customer_id",
        )
        .bind(&[
            text(connector.as_str()),
            db::json_list(statuses.iter().map(|status| status.as_str())),
            number(from_us),
            number(to_us),
            number(now_us),
        ])?
        .all()
        .await?;
    let mut contacts: Vec<Contact> = Vec::new();
    for row in result.results::<Row>()? {
        let contact = Contact {
            business_id: tenant.business_id.clone(),
            connector_id: connector.clone(),
            key: row.customer_id,
        };
        if !contacts.contains(&contact) {
            contacts.push(contact);
        }
    }
    Ok(contacts)
}

/// Contacts, of any business, whose oldest pending work was due before `before_us` and that no
/// worker holds, of enabled connectors: the sweep hands them to a worker again (at most `limit`).
pub async fn overdue_contacts(
    db: &Db,
    before_us: i64,
    now_us: i64,
    limit: usize,
) -> Result<Vec<Contact>, ApiError> {
    let result = db
        .unscoped(
            "SELECT DISTINCT j.business_id, j.connector_id, j.customer_id FROM crm_sync_jobs j \
             JOIN crm_connectors c ON c.id = j.connector_id AND c.business_id = j.business_id AND c.enabled = 1 \
             WHERE j.status = 'pending' AND j.next_attempt_us < ?1 \
             AND NOT EXISTS (SELECT 1 FROM crm_contacts k WHERE k.connector_id = j.connector_id \
                 AND k.customer_id = j.customer_id AND k.leased_until_us > ?2) \
             LIMIT ?3",
        )
        .bind(&[number(before_us), number(now_us), number(limit as i64)])?
        .all()
        .await?;
    Ok(result.results::<Contact>()?)
}

/// Deletes settled work last changed before `before_us` (at most `limit` rows): history
/// retention. Pending work is never deleted.
pub async fn delete_settled_before(db: &Db, before_us: i64, limit: usize) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM crm_sync_jobs WHERE seq IN (SELECT seq FROM crm_sync_jobs WHERE status <> 'pending' \
             AND updated_us < ?1 ORDER BY seq LIMIT ?2)",
        )
        .bind(&[number(before_us), number(limit as i64)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
