//! `crm_inbound_events`: the webhook deliveries each connector's CRM has made, by the CRM's event
//! id, so that a delivery made twice (CRMs deliver at least once), or twice at once, acts once. A
//! delivery is claimed before it is handled, and let go again when it failed on our side, so that
//! it is handled when it comes again.

use crate::db::Db;
use crate::db::{self, number, text};
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
pub async fn forget_before(db: &Db, before_us: i64) -> Result<usize, ApiError> {
    let result = db
        .unscoped("DELETE FROM crm_inbound_events WHERE received_us < ?1")
        .bind(&[number(before_us)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
