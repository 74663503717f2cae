//! What a worker does with a contact's work, in order: the contact's oldest pending piece (due or
//! not: when it waits, the rest waits with it), a try settled (counted as an attempt, only while
//! it is pending), or the piece put off without a try when the budget is spent or the connector
//! paused.

use super::{COLUMNS, Contact, Job, Row};
use crate::db::{Db, number, optional_number, optional_text, text};
use domain::crm::work::JobStatus;
use domain::error::ApiError;
use domain::tenant::Tenant;

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

#[cfg(test)]
mod tests {
    use super::super::find;
    use super::super::tests::{MustBeSome, contact, follow, record, succeeded};
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::ids::CustomerId;
    use std::time::Duration;

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
}
