//! Work recorded as pending: the work planned from events (each event's work once per connector,
//! only for the business's own connectors), work asked for through the API (an escalation, a
//! note) for each serving connector, and a delivery of the platform that feeds a connector (a
//! Chatwoot event), once however often it comes.

use super::{Contact, Job, find};
use crate::db::Rows;
use crate::db::{self, Db, Statement, number, text};
use crate::runtime;
use domain::crm::work::{ContactKey, Operation, PlannedJob};
use domain::error::ApiError;
use domain::ids::{ConnectorId, CustomerId, SyncJobId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    for row in result.rows::<Inserted>()? {
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

#[cfg(test)]
mod tests {
    use super::super::next_of_contact;
    use super::super::tests::{MustBeSome, contact, follow, new_id};
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::crm::work::JobStatus;
    use serde_json::json;

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
}
