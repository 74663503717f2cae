//! `crm_inbound_events`: the webhook deliveries each connector's CRM has made, by the CRM's event
//! id, so that a delivery made twice (CRMs deliver at least once), or twice at once, acts once. A
//! delivery is claimed before it is handled, and let go again when it failed on our side, so that
//! it is handled when it comes again.

use crate::db::directory::Moving;
use crate::db::{self, number, text};
use crate::db::{Db, Statement};
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;

/// Claims the delivery of `event_id`; false when it was claimed before.
async fn first_time(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    event_id: &str,
    now_us: i64,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(tenant, "INSERT INTO crm_inbound_events (connector_id, event_id, business_id, received_us) VALUES (?2, ?3, ?1, ?4) \
             ON CONFLICT (connector_id, event_id) DO NOTHING",
        )
        .bind(&[
            text(connector.as_str()),
            text(event_id),
            number(now_us),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Runs `act` for the delivery of `event_id` unless it was claimed before (None then). The claim
/// is taken first, so two deliveries at once act once, and let go when `act` fails on our side, so
/// the CRM's next delivery acts.
pub async fn once<T>(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    event_id: &str,
    act: impl Future<Output = Result<T, ApiError>>,
) -> Result<Option<T>, ApiError> {
    if !first_time(db, tenant, connector, event_id, crate::runtime::now().micros()).await? {
        return Ok(None);
    }
    match act.await {
        Ok(done) => Ok(Some(done)),
        Err(error) => {
            forget(db, tenant, connector, event_id).await?;
            Err(error)
        }
    }
}

/// Lets the claim on `event_id` go (its handling failed on our side).
async fn forget(db: &Db, tenant: &Tenant, connector: &ConnectorId, event_id: &str) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "DELETE FROM crm_inbound_events WHERE business_id = ?1 AND connector_id = ?2 AND event_id = ?3",
    )
    .bind(&[text(connector.as_str()), text(event_id)])?
    .run()
    .await?;
    Ok(())
}

/// Forgets the deliveries made before `before_us`: a CRM does not repeat one days later.
pub async fn forget_before(db: &Db, moving: &Moving, before_us: i64) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM crm_inbound_events WHERE received_us < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[number(before_us), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// The statement that forgets the deliveries a deleted connector's CRM made, for its deletion's
/// batch (found by the table's key, which starts with the connector).
pub fn forget_connector(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_inbound_events WHERE business_id = ?1 AND connector_id = ?2",
        )
        .bind(&[text(id.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must};
    use std::cell::Cell;
    use std::time::Duration;

    #[test]
    fn a_delivery_acts_once_however_often_it_comes() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let acted = Cell::new(0);
            let act = || async {
                acted.set(acted.get() + 1);
                Ok::<_, ApiError>(acted.get())
            };
            assert_eq!(
                once(&fixture.db, &acme, &connector, "evt-1", act()).await.must(),
                Some(1)
            );
            assert_eq!(
                once(&fixture.db, &acme, &connector, "evt-1", act()).await.must(),
                None
            );
            assert_eq!(acted.get(), 1, "the repeated delivery did not act");
            assert_eq!(
                once(&fixture.db, &acme, &connector, "evt-2", act()).await.must(),
                Some(2)
            );
            let other = fixture.connector(&acme).await;
            assert_eq!(
                once(&fixture.db, &acme, &other, "evt-1", act()).await.must(),
                Some(3),
                "another connector's event of the same id"
            );
        });
    }

    #[test]
    fn a_delivery_whose_handling_failed_acts_when_it_comes_again() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let failed = once(&fixture.db, &acme, &connector, "evt-1", async {
                Err::<(), _>(ApiError::internal("handling", "the store was out"))
            })
            .await;
            assert!(failed.is_err());
            assert!(
                fixture.rows("crm_inbound_events", "event_id").is_empty(),
                "the claim was let go"
            );
            let again = once(&fixture.db, &acme, &connector, "evt-1", async {
                Ok::<_, ApiError>("done")
            })
            .await;
            assert_eq!(again.must(), Some("done"));
        });
    }

    #[test]
    fn deliveries_before_the_cutoff_are_forgotten_on_each_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let (acmes, globexs) = (fixture.connector(&acme).await, fixture.connector(&globex).await);
            let ok = || async { Ok::<_, ApiError>(()) };
            once(&fixture.db, &acme, &acmes, "old", ok()).await.must();
            once(&fixture.db, &globex, &globexs, "theirs", ok()).await.must();
            fixture.stack.advance(Duration::from_secs(60));
            let cutoff = fixture.now().micros();
            once(&fixture.db, &acme, &acmes, "new", ok()).await.must();
            let shards = fixture.db.each_shard();
            assert_eq!(forget_before(&shards[0], &Moving::NONE, cutoff).await.must(), 1);
            let left: Vec<String> = fixture
                .rows("crm_inbound_events", "event_id")
                .iter()
                .map(|row| row["event_id"].as_str().unwrap_or_default().to_owned())
                .collect();
            assert_eq!(left, ["new", "theirs"]);
            assert_eq!(forget_before(&shards[1], &Moving::NONE, cutoff).await.must(), 1);
            assert_eq!(
                once(&fixture.db, &acme, &acmes, "old", ok()).await.must(),
                Some(()),
                "a delivery forgotten acts again (a CRM does not repeat one days later)"
            );
        });
    }
}
