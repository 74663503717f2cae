//! `crm_requests`: the requests granted to each connector in the last two minutes, which its
//! budget counts over a sliding minute and second (`db::crm_connectors::grant`).

use crate::db::{Db, Statement};
use crate::db::{number, text};
use domain::crm::budget::MINUTE_US;
use domain::error::ApiError;
use domain::ids::ConnectorId;

/// The statement that records the request granted under `token`: it writes only when the grant
/// before it in the batch took the token, and forgets requests too old to count.
pub fn record_grant(db: &Db, id: &ConnectorId, token: &str, now_us: i64) -> Result<Vec<Statement>, ApiError> {
    Ok(vec![
        db.unscoped(
            "INSERT INTO crm_requests (connector_id, at_us) SELECT ?1, ?3 \
             WHERE (SELECT last_grant FROM crm_connectors WHERE id = ?1) = ?2",
        )
        .bind(&[text(id.as_str()), text(token), number(now_us)])?,
        db.unscoped("DELETE FROM crm_requests WHERE connector_id = ?1 AND at_us < ?2")
            .bind(&[text(id.as_str()), number(now_us - 2 * MINUTE_US)])?,
    ])
}
