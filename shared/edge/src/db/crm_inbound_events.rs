//! `crm_inbound_events`: the webhook deliveries each connector's CRM has made, by the CRM's event
//! id, so that a delivery made twice (CRMs deliver at least once) acts once. A delivery is
//! recorded once it has been handled: one that failed on our side is handled when it comes again.

use crate::db::Db;
use crate::db::{self, number, text};
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;

/// Whether the delivery of `event_id` was handled before.
pub async fn seen(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    event_id: &str,
) -> Result<bool, ApiError> {
    let row = db
        .prepare(
            "SELECT received_us FROM crm_inbound_events WHERE connector_id = ?2 AND event_id = ?3 AND business_id = ?1",
        )
        .bind(&[text(tenant.business_id.as_str()), text(connector.as_str()), text(event_id)])?
        .first::<serde_json::Value>(None)
        .await?;
    Ok(row.is_some())
}

/// Records the delivery of `event_id`; false when it was recorded before.
pub async fn first_time(
    db: &Db,
    tenant: &Tenant,
    connector: &ConnectorId,
    event_id: &str,
    now_us: i64,
) -> Result<bool, ApiError> {
    let result = db
        .prepare(
            "INSERT INTO crm_inbound_events (connector_id, event_id, business_id, received_us) VALUES (?2, ?3, ?1, ?4) \
             ON CONFLICT (connector_id, event_id) DO NOTHING",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(connector.as_str()),
            text(event_id),
            number(now_us),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Forgets the deliveries made before `before_us`: a CRM does not repeat one days later.
pub async fn forget_before(db: &Db, before_us: i64) -> Result<usize, ApiError> {
    let result = db
        .prepare("DELETE FROM crm_inbound_events WHERE received_us < ?1")
        .bind(&[number(before_us)])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
