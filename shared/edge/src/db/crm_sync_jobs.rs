//! `crm_sync_jobs`: the sync log. Each row is one piece of CRM work for one contact of one
//! connector, from `pending` to how it ended; `seq` orders a contact's work, and the row keeps
//! what the CRM said (its id for the record, the status and reason of the last failure, how long
//! the work took). Work that follows an event is unique per connector and event, so planning
//! the same event twice records it once.

use crate::db::directory::Moving;
use crate::db::{self, number, optional_number, optional_text, text};
use crate::db::{Db, Statement};
use crate::runtime;
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

/// Records the same requested work as pending for each of `connectors`, one job each, in their
/// order (an escalation, a note asked for through the API).
#[allow(clippy::too_many_arguments)]
pub async fn insert_requested_for(
    db: &Db,
    tenant: &Tenant,
    connectors: &[ConnectorId],
    customer_id: &CustomerId,
    operation: Operation,
    subject_id: &str,
    input: &Value,
    now_us: i64,
) -> Result<Vec<Job>, ApiError> {
    let mut jobs = Vec::with_capacity(connectors.len());
    for connector_id in connectors {
        let requested = Requested {
            connector_id,
            customer_id,
            operation,
            subject_id,
            input,
        };
        jobs.push(
            insert_requested(
                db,
                tenant,
                &SyncJobId::generate(runtime::random()?),
                &requested,
                now_us,
            )
            .await?,
        );
    }
    Ok(jobs)
}

/// Records requested work as pending.
pub async fn insert_requested(
    db: &Db,
    tenant: &Tenant,
    id: &SyncJobId,
    work: &Requested<'_>,
    now_us: i64,
) -> Result<Job, ApiError> {
    request(db, tenant, id, work, now_us)?.run().await?;
    find(db, tenant, id)
        .await?
        .ok_or_else(|| ApiError::internal("recording CRM work", "the new row was not found"))
}

/// The statement that records requested work as pending, for a batch.
pub fn request(
    db: &Db,
    tenant: &Tenant,
    id: &SyncJobId,
    work: &Requested<'_>,
    now_us: i64,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO crm_sync_jobs (id, business_id, connector_id, customer_id, operation, subject_id, input, status, \
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
        ])?)
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
/// A contact whose oldest work waits (a retry, a spent budget) is not one, however overdue its
/// later work: its worker does the work in order, and was told when to come back.
pub async fn overdue_contacts(
    db: &Db,
    moving: &Moving,
    before_us: i64,
    now_us: i64,
    limit: usize,
) -> Result<Vec<Contact>, ApiError> {
    let result = db
        .unscoped(
            "SELECT j.business_id, j.connector_id, j.customer_id FROM crm_sync_jobs j \
             JOIN crm_connectors c ON c.id = j.connector_id AND c.business_id = j.business_id AND c.enabled = 1 \
             WHERE j.status = 'pending' AND j.next_attempt_us < ?1 \
             AND j.seq = (SELECT min(o.seq) FROM crm_sync_jobs o WHERE o.connector_id = j.connector_id \
                 AND o.customer_id = j.customer_id AND o.status = 'pending') \
             AND NOT EXISTS (SELECT 1 FROM crm_contacts k WHERE k.connector_id = j.connector_id \
                 AND k.customer_id = j.customer_id AND k.leased_until_us > ?2) \
             AND j.business_id NOT IN (SELECT value FROM json_each(?4)) LIMIT ?3",
        )
        .bind(&[
            number(before_us),
            number(now_us),
            number(limit as i64),
            moving.param(),
        ])?
        .all()
        .await?;
    Ok(result.results::<Contact>()?)
}

/// Deletes settled work last changed before `before_us` (at most `limit` rows): history
/// retention. Pending work is never deleted.
pub async fn delete_settled_before(
    db: &Db,
    moving: &Moving,
    before_us: i64,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM crm_sync_jobs WHERE seq IN (SELECT seq FROM crm_sync_jobs WHERE status <> 'pending' \
             AND updated_us < ?1 AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY seq LIMIT ?2)",
        )
        .bind(&[number(before_us), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// The statements that forget a deleted connector's work, for its deletion's batch: first the work
/// still pending (their changes count the work dropped), then the rest of its sync log.
pub fn forget_connector(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<[Statement; 2], ApiError> {
    Ok([
        db.scoped(
            tenant,
            "DELETE FROM crm_sync_jobs WHERE business_id = ?1 AND connector_id = ?2 AND status = 'pending'",
        )
        .bind(&[text(id.as_str())])?,
        db.scoped(
            tenant,
            "DELETE FROM crm_sync_jobs WHERE business_id = ?1 AND connector_id = ?2",
        )
        .bind(&[text(id.as_str())])?,
    ])
}

/// A restore's quarantine: the business's pending CRM work is dead-lettered with `reason` (listed
/// as dead, and replayed once the connector is resumed if it is still wanted).
pub fn kill_pending(db: &Db, tenant: &Tenant, reason: &str, now_us: i64) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE crm_sync_jobs SET status = 'dead', last_error = ?2, next_attempt_us = ?3, updated_us = ?3 \
             WHERE business_id = ?1 AND status = 'pending'",
        )
        .bind(&[text(reason), number(now_us)])?)
}

/// The statement that deletes the customer's CRM work but for their erasure's own: work still
/// waiting would read records that are going, and done work keeps what was sent (a note's text,
/// the CRM's answer).
pub fn erase_of_customer(db: &Db, tenant: &Tenant, customer: &CustomerId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_sync_jobs WHERE business_id = ?1 AND customer_id = ?2 AND operation <> ?3",
        )
        .bind(&[text(customer.as_str()), text(Operation::Erase.as_str())])?)
}

/// The state of each of `ids` (an erasure's CRM work), with the error of work that failed.
pub async fn states(db: &Db, tenant: &Tenant, ids: &[&SyncJobId]) -> Result<Vec<JobState>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: SyncJobId,
        status: String,
        last_error: Option<String>,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT id, status, last_error FROM crm_sync_jobs WHERE id IN (SELECT value FROM json_each(?2)) \
             AND +business_id = ?1",
        )
        .bind(&[db::json_list(ids.iter().map(|id| id.as_str()))])?
        .all()
        .await?
        .results::<Row>()?;
    rows.into_iter()
        .map(|row| {
            let status = JobStatus::parse(&row.status)
                .ok_or_else(|| db::corrupt("sync job", row.id.as_str(), "its status is unknown"))?;
            Ok(JobState {
                id: row.id,
                status,
                error: row.last_error,
            })
        })
        .collect()
}

/// Where one piece of CRM work stands.
pub struct JobState {
    pub id: SyncJobId,
    pub status: JobStatus,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::crm_contacts;
    use crate::testing::{Fixture, Must, random};
    use domain::ids::EventId;
    use domain::webhooks::EventType;
    use serde_json::json;
    use std::time::Duration;

    fn new_id() -> Result<SyncJobId, ApiError> {
        Ok(SyncJobId::generate(random()))
    }

    /// A job following a new event about `customer`.
    fn follow(connector: &ConnectorId, customer: &CustomerId) -> PlannedJob {
        PlannedJob {
            connector_id: connector.clone(),
            customer_id: customer.clone(),
            operation: Operation::Follow(EventType::CustomerUpdated),
            subject_id: customer.to_string(),
            event_id: EventId::generate(random()),
            skipped: None,
        }
    }

    fn contact(tenant: &Tenant, connector: &ConnectorId, customer: &CustomerId) -> Contact {
        Contact {
            business_id: tenant.business_id.clone(),
            connector_id: connector.clone(),
            key: ContactKey::Customer(customer.clone()),
        }
    }

    /// Records `jobs` now and returns them as stored, in the order given.
    async fn record(fixture: &Fixture, tenant: &Tenant, jobs: &[PlannedJob]) -> Vec<Job> {
        let now = fixture.now().micros();
        insert_planned(&fixture.db, tenant, jobs, new_id, now)
            .await
            .must();
        let mut stored = Vec::new();
        for job in jobs {
            let found = fixture
                .rows("crm_sync_jobs", "seq")
                .into_iter()
                .find(|row| row["event_id"] == json!(job.event_id.as_str()))
                .unwrap_or_else(|| panic!("the job of {} was recorded", job.event_id));
            let id = SyncJobId::parse(found["id"].as_str().unwrap_or_default()).must_be_some();
            stored.push(find(&fixture.db, tenant, &id).await.must().must_be_some());
        }
        stored
    }

    trait MustBeSome<T> {
        fn must_be_some(self) -> T;
    }

    impl<T> MustBeSome<T> for Option<T> {
        #[track_caller]
        fn must_be_some(self) -> T {
            self.unwrap_or_else(|| panic!("nothing was found"))
        }
    }

    fn succeeded(crm_id: Option<&str>) -> Settled<'_> {
        Settled {
            status: JobStatus::Succeeded,
            crm_id,
            http_status: Some(200),
            error: None,
            duration_ms: 40,
            next_attempt_us: 0,
        }
    }

    #[test]
    fn planning_an_event_twice_records_its_work_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let (ann, bob) = (CustomerId::generate(random()), CustomerId::generate(random()));
            let skipped = PlannedJob {
                skipped: Some("the change came from this CRM"),
                ..follow(&connector, &ann)
            };
            let planned = [
                follow(&connector, &ann),
                follow(&connector, &bob),
                follow(&connector, &ann),
                skipped,
            ];
            let now = fixture.now().micros();
            let contacts = insert_planned(&fixture.db, &acme, &planned, new_id, now)
                .await
                .must();
            assert_eq!(
                contacts,
                [contact(&acme, &connector, &ann), contact(&acme, &connector, &bob)],
                "each contact with pending work, once; skipped work makes no contact's work"
            );
            let rows = fixture.rows("crm_sync_jobs", "seq");
            assert_eq!(rows.len(), 4, "{rows:?}");
            for (row, job) in rows.iter().zip(&planned) {
                assert_eq!(row["event_id"], json!(job.event_id.as_str()));
                assert_eq!(row["business_id"], json!(acme.business_id.as_str()));
                assert_eq!(row["operation"], json!("customer.updated"));
                assert_eq!(row["attempts"], json!(0));
                assert_eq!(row["next_attempt_us"], json!(now));
                assert_eq!(row["retry_from_us"], json!(now));
                assert_eq!(row["created_us"], json!(now));
            }
            assert_eq!(rows[3]["status"], json!("skipped"));
            assert_eq!(rows[3]["last_error"], json!("the change came from this CRM"));
            assert_eq!(rows[0]["status"], json!("pending"));
            assert_eq!(rows[0]["last_error"], json!(null));

            let again = insert_planned(&fixture.db, &acme, &planned, new_id, now + 1)
                .await
                .must();
            assert!(again.is_empty(), "the same events again: {again:?}");
            assert_eq!(fixture.rows("crm_sync_jobs", "seq").len(), 4);
        });
    }

    #[test]
    fn work_for_another_business_connector_is_not_recorded() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let theirs = fixture.connector(&globex).await;
            let job = follow(&theirs, &CustomerId::generate(random()));
            let now = fixture.now().micros();
            let contacts = insert_planned(&fixture.db, &acme, &[job], new_id, now)
                .await
                .must();
            assert!(contacts.is_empty(), "{contacts:?}");
            assert!(fixture.rows("crm_sync_jobs", "seq").is_empty());
        });
    }

    #[test]
    fn a_contacts_work_comes_oldest_first_and_leaves_the_queue_once_settled() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let (ann, bob) = (CustomerId::generate(random()), CustomerId::generate(random()));
            let jobs = record(
                &fixture,
                &acme,
                &[
                    follow(&connector, &bob),
                    follow(&connector, &ann),
                    follow(&connector, &ann),
                ],
            )
            .await;
            let anns = contact(&acme, &connector, &ann);
            let next = next_of_contact(&fixture.db, &acme, &anns).await.must();
            assert_eq!(next.map(|job| job.id), Some(jobs[1].id.clone()), "Ann's oldest");

            // A try that will be retried keeps the work first, whenever it is due.
            let later = fixture.now().micros() + 60_000_000;
            let retry = Settled {
                status: JobStatus::Pending,
                crm_id: Some("crm-ann"),
                http_status: Some(503),
                error: Some("unavailable"),
                duration_ms: 12,
                next_attempt_us: later,
            };
            settle(&fixture.db, &acme, &jobs[1], &retry, fixture.now().micros())
                .await
                .must();
            let next = next_of_contact(&fixture.db, &acme, &anns)
                .await
                .must()
                .must_be_some();
            assert_eq!(next.id, jobs[1].id, "not due, and still first");
            assert_eq!(next.attempts, 1);
            assert_eq!(next.next_attempt_us, later);
            assert_eq!(next.last_status, Some(503));
            assert_eq!(next.last_error.as_deref(), Some("unavailable"));

            fixture.stack.advance(Duration::from_secs(61));
            let done_at = fixture.now().micros();
            settle(&fixture.db, &acme, &next, &succeeded(None), done_at)
                .await
                .must();
            let settled = find(&fixture.db, &acme, &jobs[1].id).await.must().must_be_some();
            assert_eq!(settled.status, JobStatus::Succeeded);
            assert_eq!(settled.attempts, 2);
            assert_eq!(
                settled.crm_id.as_deref(),
                Some("crm-ann"),
                "an answer without an id keeps the one known"
            );
            assert_eq!(settled.last_error, None);
            assert_eq!(settled.duration_ms, Some(40));
            assert_eq!(settled.updated_us, done_at);
            let next = next_of_contact(&fixture.db, &acme, &anns).await.must();
            assert_eq!(
                next.map(|job| job.id),
                Some(jobs[2].id.clone()),
                "then Ann's next"
            );

            // A late second settling of settled work changes nothing.
            let failed = Settled {
                status: JobStatus::Failed,
                ..succeeded(Some("other"))
            };
            settle(&fixture.db, &acme, &settled, &failed, done_at + 5)
                .await
                .must();
            let unchanged = find(&fixture.db, &acme, &jobs[1].id).await.must().must_be_some();
            assert_eq!(unchanged.status, JobStatus::Succeeded);
            assert_eq!(unchanged.attempts, 2);
            assert_eq!(unchanged.crm_id.as_deref(), Some("crm-ann"));
        });
    }

    #[test]
    fn deferred_work_waits_without_a_try_and_is_never_brought_forward() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let jobs = record(
                &fixture,
                &acme,
                &[follow(&connector, &CustomerId::generate(random()))],
            )
            .await;
            let now = fixture.now().micros();
            defer(&fixture.db, &acme, &jobs[0], now + 60_000_000).await.must();
            defer(&fixture.db, &acme, &jobs[0], now + 10_000_000).await.must();
            let job = find(&fixture.db, &acme, &jobs[0].id).await.must().must_be_some();
            assert_eq!(job.next_attempt_us, now + 60_000_000);
            assert_eq!(job.attempts, 0, "no call was made");
            assert_eq!(job.status, JobStatus::Pending);

            settle(&fixture.db, &acme, &job, &succeeded(None), now)
                .await
                .must();
            defer(&fixture.db, &acme, &job, now + 120_000_000).await.must();
            let settled = find(&fixture.db, &acme, &jobs[0].id).await.must().must_be_some();
            assert_eq!(settled.next_attempt_us, 0, "settled work is not deferred");
        });
    }

    #[test]
    fn the_log_is_newest_first_filtered_and_paged_by_its_cursor() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let other = fixture.connector(&acme).await;
            let (ann, bob) = (CustomerId::generate(random()), CustomerId::generate(random()));
            let conversation = "c0a8d5b6-1f1e-4c3b-9a55-6f7b6f0c1e2d";
            let about_conversation = PlannedJob {
                operation: Operation::Follow(EventType::ConversationCreated),
                subject_id: conversation.to_owned(),
                ..follow(&connector, &bob)
            };
            let jobs = record(
                &fixture,
                &acme,
                &[
                    follow(&connector, &ann),
                    follow(&connector, &bob),
                    about_conversation,
                    follow(&connector, &ann),
                    follow(&other, &ann),
                ],
            )
            .await;
            settle(
                &fixture.db,
                &acme,
                &jobs[1],
                &succeeded(None),
                fixture.now().micros(),
            )
            .await
            .must();
            let ids = |found: &[Job]| found.iter().map(|job| job.id.clone()).collect::<Vec<_>>();

            let first = list(
                &fixture.db,
                &acme,
                &connector,
                &Filter {
                    limit: 2,
                    ..Filter::default()
                },
            )
            .await
            .must();
            assert_eq!(
                ids(&first),
                [jobs[3].id.clone(), jobs[2].id.clone()],
                "newest first"
            );
            let after_first = Filter {
                limit: 2,
                before_seq: first.last().map(|job| job.seq),
                ..Filter::default()
            };
            let next = list(&fixture.db, &acme, &connector, &after_first).await.must();
            assert_eq!(
                ids(&next),
                [jobs[1].id.clone(), jobs[0].id.clone()],
                "the next page"
            );
            let after_next = Filter {
                limit: 2,
                before_seq: next.last().map(|job| job.seq),
                ..Filter::default()
            };
            let end = list(&fixture.db, &acme, &connector, &after_next).await.must();
            assert!(
                end.is_empty(),
                "the other connector's work is not in this log: {end:?}"
            );

            let bob_id = bob.to_string();
            let cases = [
                (
                    "by status",
                    Filter {
                        status: Some(JobStatus::Succeeded),
                        limit: 10,
                        ..Filter::default()
                    },
                    vec![jobs[1].id.clone()],
                ),
                (
                    "by the record the work is about",
                    Filter {
                        record: Some(conversation),
                        limit: 10,
                        ..Filter::default()
                    },
                    vec![jobs[2].id.clone()],
                ),
                (
                    "by the contact whose work it is",
                    Filter {
                        record: Some(&bob_id),
                        limit: 10,
                        ..Filter::default()
                    },
                    vec![jobs[2].id.clone(), jobs[1].id.clone()],
                ),
                (
                    "by status and contact",
                    Filter {
                        status: Some(JobStatus::Pending),
                        record: Some(&bob_id),
                        limit: 10,
                        ..Filter::default()
                    },
                    vec![jobs[2].id.clone()],
                ),
            ];
            for (description, filter, expected) in cases {
                let found = list(&fixture.db, &acme, &connector, &filter).await.must();
                assert_eq!(ids(&found), expected, "{description}");
            }
        });
    }

    #[test]
    fn the_summary_counts_pending_work_and_what_settled_in_the_window() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let other = fixture.connector(&acme).await;
            let customer = || CustomerId::generate(random());
            let start = fixture.now().micros();
            let early = record(
                &fixture,
                &acme,
                &[follow(&connector, &customer()), follow(&connector, &customer())],
            )
            .await;
            settle(&fixture.db, &acme, &early[0], &succeeded(None), start)
                .await
                .must();
            fixture.stack.advance(Duration::from_secs(60));
            let window_from = fixture.now().micros();
            let late = record(
                &fixture,
                &acme,
                &[
                    follow(&connector, &customer()),
                    follow(&connector, &customer()),
                    follow(&connector, &customer()),
                    follow(&other, &customer()),
                ],
            )
            .await;
            let now = fixture.now().micros();
            settle(&fixture.db, &acme, &late[0], &succeeded(None), now)
                .await
                .must();
            let dead = Settled {
                status: JobStatus::Dead,
                ..succeeded(None)
            };
            settle(&fixture.db, &acme, &late[1], &dead, now).await.must();
            settle(&fixture.db, &acme, &late[3], &succeeded(None), now)
                .await
                .must();

            let counted = summary(&fixture.db, &acme, &connector, window_from, now + 1)
                .await
                .must();
            assert_eq!(
                (
                    counted.pending,
                    counted.succeeded,
                    counted.skipped,
                    counted.failed,
                    counted.dead
                ),
                (2, 1, 0, 0, 1),
                "the early success is outside the window; the other connector's is not this one's"
            );
            assert_eq!(
                counted.oldest_pending_us,
                Some(start),
                "the oldest pending work, whenever"
            );

            let idle = fixture.connector(&acme).await;
            let none = summary(&fixture.db, &acme, &idle, 0, now + 1).await.must();
            assert_eq!(
                (none.pending, none.succeeded, none.oldest_pending_us),
                (0, 0, None)
            );
        });
    }

    #[test]
    fn a_replay_puts_the_chosen_work_back_as_new_and_names_each_contact_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let (ann, bob, cat) = (
                CustomerId::generate(random()),
                CustomerId::generate(random()),
                CustomerId::generate(random()),
            );
            let before_window = record(&fixture, &acme, &[follow(&connector, &ann)]).await;
            fixture.stack.advance(Duration::from_secs(60));
            let from = fixture.now().micros();
            let jobs = record(
                &fixture,
                &acme,
                &[
                    follow(&connector, &ann),
                    follow(&connector, &ann),
                    follow(&connector, &bob),
                    follow(&connector, &cat),
                ],
            )
            .await;
            let now = fixture.now().micros();
            let dead = Settled {
                status: JobStatus::Dead,
                ..succeeded(None)
            };
            let failed = Settled {
                status: JobStatus::Failed,
                ..succeeded(None)
            };
            for (job, how) in [
                (&before_window[0], &dead),
                (&jobs[0], &dead),
                (&jobs[1], &dead),
                (&jobs[2], &failed),
                (&jobs[3], &succeeded(None)),
            ] {
                settle(&fixture.db, &acme, job, how, now).await.must();
            }
            fixture.stack.advance(Duration::from_secs(5));
            let replayed_at = fixture.now().micros();
            let contacts = replay(
                &fixture.db,
                &acme,
                &connector,
                &[JobStatus::Dead, JobStatus::Failed],
                from,
                replayed_at,
                replayed_at,
            )
            .await
            .must();
            assert_eq!(
                contacts,
                [contact(&acme, &connector, &ann), contact(&acme, &connector, &bob)]
            );
            for job in &jobs[..3] {
                let again = find(&fixture.db, &acme, &job.id).await.must().must_be_some();
                assert_eq!(again.status, JobStatus::Pending);
                assert_eq!(
                    (again.attempts, again.next_attempt_us, again.retry_from_us),
                    (0, replayed_at, replayed_at)
                );
            }
            let kept = find(&fixture.db, &acme, &jobs[3].id).await.must().must_be_some();
            assert_eq!(kept.status, JobStatus::Succeeded, "a success is not replayed");
            let outside = find(&fixture.db, &acme, &before_window[0].id)
                .await
                .must()
                .must_be_some();
            assert_eq!(
                outside.status,
                JobStatus::Dead,
                "work created before the window stays dead"
            );
        });
    }

    #[test]
    fn another_business_neither_finds_nor_changes_a_job() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let connector = fixture.connector(&acme).await;
            let jobs = record(
                &fixture,
                &acme,
                &[follow(&connector, &CustomerId::generate(random()))],
            )
            .await;
            let job = &jobs[0];
            let now = fixture.now().micros();
            assert!(find(&fixture.db, &globex, &job.id).await.must().is_none());
            let contact = Contact {
                business_id: globex.business_id.clone(),
                ..contact(&acme, &connector, &CustomerId::generate(random()))
            };
            assert!(
                next_of_contact(
                    &fixture.db,
                    &globex,
                    &Contact {
                        key: job.contact.clone(),
                        ..contact
                    }
                )
                .await
                .must()
                .is_none()
            );
            settle(&fixture.db, &globex, job, &succeeded(Some("x")), now)
                .await
                .must();
            defer(&fixture.db, &globex, job, now + 60_000_000).await.must();
            let listed = list(
                &fixture.db,
                &globex,
                &connector,
                &Filter {
                    limit: 10,
                    ..Filter::default()
                },
            )
            .await
            .must();
            assert!(listed.is_empty());
            let replayed = replay(
                &fixture.db,
                &globex,
                &connector,
                &[JobStatus::Pending],
                0,
                now + 1,
                now,
            )
            .await
            .must();
            assert!(replayed.is_empty());
            let counted = summary(&fixture.db, &globex, &connector, 0, now + 1).await.must();
            assert_eq!(counted.pending, 0);
            let unchanged = find(&fixture.db, &acme, &job.id).await.must().must_be_some();
            assert_eq!(
                (
                    unchanged.status,
                    unchanged.attempts,
                    unchanged.next_attempt_us,
                    unchanged.crm_id
                ),
                (JobStatus::Pending, 0, job.next_attempt_us, None)
            );
        });
    }

    #[test]
    fn a_platform_delivery_is_work_once_however_often_it_comes() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let key = ContactKey::Chatwoot(42);
            let input = json!({"event": "message_created", "id": 7});
            let work = Delivered {
                connector_id: &connector,
                contact: &key,
                operation: Operation::Note,
                subject_id: "7",
                event_id: "chatwoot:delivery-1",
                input: &input,
            };
            let now = fixture.now().micros();
            let first = insert_delivered(&fixture.db, &acme, &SyncJobId::generate(random()), &work, now)
                .await
                .must();
            assert_eq!(
                first,
                Some(Contact {
                    business_id: acme.business_id.clone(),
                    connector_id: connector.clone(),
                    key: key.clone()
                })
            );
            let again = insert_delivered(&fixture.db, &acme, &SyncJobId::generate(random()), &work, now)
                .await
                .must();
            assert_eq!(again, None, "a redelivery");
            let rows = fixture.rows("crm_sync_jobs", "seq");
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0]["customer_id"], json!("chatwoot:42"));
            assert_eq!(rows[0]["input"], json!(input.to_string()));
            let job = next_of_contact(&fixture.db, &acme, &first.must_be_some())
                .await
                .must()
                .must_be_some();
            assert_eq!(job.contact, key);
            assert_eq!(job.input, Some(input));
        });
    }

    #[test]
    fn requested_work_is_recorded_every_time_it_is_asked_for() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let customer = CustomerId::generate(random());
            let input = json!({"reason": "asked for a person"});
            let work = Requested {
                connector_id: &connector,
                customer_id: &customer,
                operation: Operation::Escalate,
                subject_id: "c0a8d5b6-1f1e-4c3b-9a55-6f7b6f0c1e2d",
                input: &input,
            };
            let now = fixture.now().micros();
            let first = insert_requested(&fixture.db, &acme, &SyncJobId::generate(random()), &work, now)
                .await
                .must();
            let second = insert_requested(&fixture.db, &acme, &SyncJobId::generate(random()), &work, now)
                .await
                .must();
            assert_ne!(first.id, second.id);
            for job in [&first, &second] {
                assert_eq!(job.status, JobStatus::Pending);
                assert_eq!(job.event_id, None, "work asked through the API follows no event");
                assert_eq!(job.input.as_ref(), Some(&input));
                assert_eq!(job.operation, Operation::Escalate);
                assert_eq!(job.contact, ContactKey::Customer(customer.clone()));
            }
            assert!(second.seq > first.seq);
        });
    }

    #[test]
    fn the_sweep_finds_each_shards_overdue_contacts_that_nobody_holds() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let acmes = fixture.connector(&acme).await;
            let disabled = fixture
                .connector_with(&acme, false, crate::testing::UNLIMITED)
                .await;
            let globexs = fixture.connector(&globex).await;
            let customer = || CustomerId::generate(random());
            let (lost, held, off, waiting, theirs) =
                (customer(), customer(), customer(), customer(), customer());
            record(
                &fixture,
                &acme,
                &[
                    follow(&acmes, &lost),
                    follow(&acmes, &lost),
                    follow(&acmes, &held),
                    follow(&disabled, &off),
                ],
            )
            .await;
            let deferred = record(&fixture, &acme, &[follow(&acmes, &waiting)]).await;
            record(&fixture, &globex, &[follow(&globexs, &theirs)]).await;
            let now = fixture.now().micros();
            defer(&fixture.db, &acme, &deferred[0], now + 3_600_000_000)
                .await
                .must();
            assert!(
                crm_contacts::claim(
                    &fixture.db,
                    &acme,
                    &acmes,
                    &ContactKey::Customer(held.clone()),
                    "worker",
                    now,
                    now + 3_600_000_000
                )
                .await
                .must()
            );
            fixture.stack.advance(Duration::from_secs(600));
            let now = fixture.now().micros();
            let before = now - 120_000_000;
            let shards = fixture.db.each_shard();
            let first = overdue_contacts(&shards[0], &Moving::NONE, before, now, 10)
                .await
                .must();
            assert_eq!(first, [contact(&acme, &acmes, &lost)], "on the first shard");
            let second = overdue_contacts(&shards[1], &Moving::NONE, before, now, 10)
                .await
                .must();
            assert_eq!(
                second,
                [contact(&globex, &globexs, &theirs)],
                "on the second shard"
            );
            assert!(
                overdue_contacts(&shards[0], &Moving::NONE, now - 3_600_000_000, now, 10)
                    .await
                    .must()
                    .is_empty(),
                "nothing was due an hour ago"
            );

            // Once the lease runs out, the held contact is lost work too.
            fixture.stack.advance(Duration::from_secs(3600));
            let now = fixture.now().micros();
            let found = overdue_contacts(&shards[0], &Moving::NONE, now - 120_000_000, now, 10)
                .await
                .must();
            assert_eq!(
                found.len(),
                3,
                "lost, held and waiting are overdue now: {found:?}"
            );
            assert_eq!(
                overdue_contacts(&shards[0], &Moving::NONE, now - 120_000_000, now, 2)
                    .await
                    .must()
                    .len(),
                2,
                "at most the limit"
            );
        });
    }

    #[test]
    fn a_contact_whose_oldest_work_waits_is_not_overdue_for_its_later_work() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let ann = CustomerId::generate(random());
            let first = record(&fixture, &acme, &[follow(&connector, &ann)]).await;
            // The budget was spent: the oldest work waits an hour, and its worker is told so.
            let now = fixture.now().micros();
            defer(&fixture.db, &acme, &first[0], now + 3_600_000_000)
                .await
                .must();
            record(&fixture, &acme, &[follow(&connector, &ann)]).await;
            fixture.stack.advance(Duration::from_secs(600));
            let now = fixture.now().micros();
            let found = overdue_contacts(&fixture.db, &Moving::NONE, now - 120_000_000, now, 10)
                .await
                .must();
            assert!(
                found.is_empty(),
                "the worker would find the oldest work not due and wait again: {found:?}"
            );
            fixture.stack.advance(Duration::from_secs(3600));
            let now = fixture.now().micros();
            let found = overdue_contacts(&fixture.db, &Moving::NONE, now - 120_000_000, now, 10)
                .await
                .must();
            assert_eq!(
                found,
                [contact(&acme, &connector, &ann)],
                "once the oldest is overdue, once"
            );
        });
    }

    #[test]
    fn retention_deletes_settled_work_before_the_cutoff_and_never_pending_work() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let acmes = fixture.connector(&acme).await;
            let globexs = fixture.connector(&globex).await;
            let customer = || CustomerId::generate(random());
            let old = record(
                &fixture,
                &acme,
                &[
                    follow(&acmes, &customer()),
                    follow(&acmes, &customer()),
                    follow(&acmes, &customer()),
                ],
            )
            .await;
            let theirs = record(&fixture, &globex, &[follow(&globexs, &customer())]).await;
            let now = fixture.now().micros();
            settle(&fixture.db, &acme, &old[0], &succeeded(None), now)
                .await
                .must();
            settle(
                &fixture.db,
                &acme,
                &old[1],
                &Settled {
                    status: JobStatus::Dead,
                    ..succeeded(None)
                },
                now,
            )
            .await
            .must();
            settle(&fixture.db, &globex, &theirs[0], &succeeded(None), now)
                .await
                .must();
            fixture.stack.advance(Duration::from_secs(60));
            let recent = record(&fixture, &acme, &[follow(&acmes, &customer())]).await;
            settle(
                &fixture.db,
                &acme,
                &recent[0],
                &succeeded(None),
                fixture.now().micros(),
            )
            .await
            .must();

            let cutoff = now + 1;
            let shards = fixture.db.each_shard();
            assert_eq!(
                delete_settled_before(&shards[0], &Moving::NONE, cutoff, 1)
                    .await
                    .must(),
                1,
                "at most the limit"
            );
            assert_eq!(
                delete_settled_before(&shards[0], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                1
            );
            assert_eq!(
                delete_settled_before(&shards[0], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                0
            );
            let left: Vec<SyncJobId> = fixture
                .rows("crm_sync_jobs", "seq")
                .iter()
                .filter_map(|row| SyncJobId::parse(row["id"].as_str().unwrap_or_default()))
                .collect();
            assert_eq!(
                left,
                [old[2].id.clone(), recent[0].id.clone(), theirs[0].id.clone()],
                "pending work, work settled after the cutoff, and the other shard's stay (shard by shard)"
            );
            assert_eq!(
                delete_settled_before(&shards[1], &Moving::NONE, cutoff, 10)
                    .await
                    .must(),
                1,
                "the second shard's own"
            );
        });
    }
}
