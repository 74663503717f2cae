//! The sync log as the API reads it: a connector's work newest first, filtered and paged by its
//! cursor; a summary of what waits and what settled in a window; where some pieces of work stand
//! (an erasure's); and a replay, which puts chosen work back as new and names each contact once.

use super::{COLUMNS, Contact, Job, Row, Summary, jobs};
use crate::db::Rows;
use crate::db::{self, Db, number, optional_number, optional_text, text};
use domain::crm::work::{ContactKey, JobStatus};
use domain::error::ApiError;
use domain::ids::{ConnectorId, SyncJobId};
use domain::tenant::Tenant;
use serde::Deserialize;

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
    jobs(result.rows::<Row>()?)
}

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
    for row in result.rows::<Row>()? {
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
        .rows::<Row>()?;
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
    use super::super::tests::{MustBeSome, contact, follow, record, succeeded};
    use super::super::{Settled, find, settle};
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::crm::work::{Operation, PlannedJob};
    use domain::ids::CustomerId;
    use domain::webhooks::EventType;
    use std::time::Duration;

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
}
