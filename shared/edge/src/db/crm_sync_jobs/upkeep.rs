//! The work looked after from outside a worker: the sweep's overdue contacts (of any business,
//! held by nobody, whose oldest work is due), retention of settled work, and the work ended by
//! something else: a deleted connector's forgotten, a restore's pending work dead-lettered, an
//! erased customer's deleted.

use super::Contact;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, Statement, number, text};
use domain::crm::work::Operation;
use domain::error::ApiError;
use domain::ids::{ConnectorId, CustomerId};
use domain::tenant::Tenant;

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
    Ok(result.rows::<Contact>()?)
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

#[cfg(test)]
mod tests {
    use super::super::tests::{contact, follow, record, succeeded};
    use super::super::{Settled, defer, settle};
    use super::*;
    use crate::db::crm_contacts;
    use crate::testing::{Fixture, Must, random};
    use domain::crm::work::{ContactKey, JobStatus};
    use domain::ids::SyncJobId;
    use std::time::Duration;

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
