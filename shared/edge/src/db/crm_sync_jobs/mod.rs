//! `crm_sync_jobs`: the sync log. Each row is one piece of CRM work for one contact of one
//! connector, from `pending` to how it ended; `seq` orders a contact's work, and the row keeps
//! what the CRM said (its id for the record, the status and reason of the last failure, how long
//! the work took). Work that follows an event is unique per connector and event, so planning
//! the same event twice records it once.
//!
//! This file holds a job as stored and the contact whose work it is; `record` records work
//! (planned from events, asked for through the API, delivered by a platform), `worker` is what a
//! worker does with a contact's work (its next piece, a try settled or put off), `log` reads the
//! log (a page, a summary, where some work stands) and replays it, and `upkeep` looks after work
//! from outside: the sweep's overdue contacts, retention, and the work a deleted connector, a
//! restore or an erasure ends.

mod log;
mod record;
mod upkeep;
mod worker;

pub use domain::crm::work::Summary;
pub use log::{Filter, JobState, list, replay, states, summary};
pub use record::{
    Delivered, Requested, insert_delivered, insert_planned, insert_requested, insert_requested_for, request,
};
pub use upkeep::{
    delete_settled_before, erase_of_customer, forget_connector, kill_pending, overdue_contacts,
};
pub use worker::{Settled, defer, next_of_contact, settle};

use crate::db::{self, Db, text};
use domain::crm::work::{ContactKey, JobStatus, Operation};
use domain::error::ApiError;
use domain::ids::{BusinessId, ConnectorId, SyncJobId};
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
pub(super) struct Row {
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

pub(super) const COLUMNS: &str = "seq, id, connector_id, customer_id, operation, subject_id, event_id, input, status, attempts, \
                       next_attempt_us, retry_from_us, crm_id, last_status, last_error, duration_ms, created_us, updated_us";

pub(super) fn jobs(rows: Vec<Row>) -> Result<Vec<Job>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::crm::work::PlannedJob;
    use domain::ids::{CustomerId, EventId};
    use domain::webhooks::EventType;
    use serde_json::json;

    pub(super) fn new_id() -> Result<SyncJobId, ApiError> {
        Ok(SyncJobId::generate(random()))
    }

    /// A job following a new event about `customer`.
    pub(super) fn follow(connector: &ConnectorId, customer: &CustomerId) -> PlannedJob {
        PlannedJob {
            connector_id: connector.clone(),
            customer_id: customer.clone(),
            operation: Operation::Follow(EventType::CustomerUpdated),
            subject_id: customer.to_string(),
            event_id: EventId::generate(random()),
            skipped: None,
        }
    }

    pub(super) fn contact(tenant: &Tenant, connector: &ConnectorId, customer: &CustomerId) -> Contact {
        Contact {
            business_id: tenant.business_id.clone(),
            connector_id: connector.clone(),
            key: ContactKey::Customer(customer.clone()),
        }
    }

    /// Records `jobs` now and returns them as stored, in the order given.
    pub(super) async fn record(fixture: &Fixture, tenant: &Tenant, jobs: &[PlannedJob]) -> Vec<Job> {
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

    pub(super) trait MustBeSome<T> {
        fn must_be_some(self) -> T;
    }

    impl<T> MustBeSome<T> for Option<T> {
        #[track_caller]
        fn must_be_some(self) -> T {
            self.unwrap_or_else(|| panic!("nothing was found"))
        }
    }

    pub(super) fn succeeded(crm_id: Option<&str>) -> Settled<'_> {
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
}
