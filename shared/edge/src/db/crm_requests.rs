//! `crm_requests`: the requests granted to each connector in the last two minutes, which its
//! budget counts over a sliding minute and second (`db::crm_connectors::grant`).

use crate::db::{Db, Statement};
use crate::db::{number, text};
use domain::crm::budget::MINUTE_US;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::tenant::Tenant;

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

/// The statement that forgets a deleted connector's requests, for its deletion's batch (before
/// the connector's own row goes: the business is read from it).
pub fn forget_connector(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM crm_requests WHERE connector_id = ?2 \
             AND EXISTS (SELECT 1 FROM crm_connectors WHERE business_id = ?1 AND id = ?2)",
        )
        .bind(&[text(id.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::crm_connectors;
    use crate::testing::{Fixture, Must};
    use serde_json::json;

    #[test]
    fn a_request_is_recorded_only_under_the_grant_that_took_its_token() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let now = fixture.now().micros();
            let mut batch =
                vec![crm_connectors::grant(&fixture.db, &acme, &connector, "granted", now).must()];
            batch.extend(record_grant(&fixture.db, &connector, "granted", now).must());
            fixture.db.batch(batch).await.must();
            // A token no grant took (a grant the budget refused) records nothing.
            let refused = record_grant(&fixture.db.on_shard(0), &connector, "refused", now + 1).must();
            fixture.db.on_shard(0).batch(refused).await.must();
            let rows = fixture.rows("crm_requests", "at_us");
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(rows[0]["connector_id"], json!(connector.as_str()));
            assert_eq!(rows[0]["at_us"], json!(now));
        });
    }

    #[test]
    fn requests_too_old_to_count_are_forgotten_by_the_next_grant() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let connector = fixture.connector(&acme).await;
            let other = fixture.connector(&acme).await;
            let grant_at = |connector: ConnectorId, token: &'static str, at: i64| {
                let db = fixture.db.clone();
                let acme = acme.clone();
                async move {
                    let mut batch = vec![crm_connectors::grant(&db, &acme, &connector, token, at).must()];
                    batch.extend(record_grant(&db, &connector, token, at).must());
                    db.batch(batch).await.must();
                }
            };
            let start = fixture.now().micros();
            grant_at(connector.clone(), "a", start).await;
            grant_at(other.clone(), "b", start).await;
            grant_at(connector.clone(), "c", start + 2 * MINUTE_US).await;
            let kept: Vec<(String, i64)> = fixture
                .rows("crm_requests", "at_us")
                .iter()
                .map(|row| {
                    (
                        row["connector_id"].as_str().unwrap_or_default().to_owned(),
                        row["at_us"].as_i64().unwrap_or(0),
                    )
                })
                .collect();
            assert_eq!(
                kept,
                [
                    (connector.to_string(), start),
                    (other.to_string(), start),
                    (connector.to_string(), start + 2 * MINUTE_US),
                ],
                "exactly two minutes old is kept; the other connector's are its own"
            );
            grant_at(connector.clone(), "d", start + 2 * MINUTE_US + 1).await;
            let left = fixture.rows("crm_requests", "at_us");
            assert_eq!(left.len(), 3, "the oldest of this connector went: {left:?}");
            assert_eq!(left[0]["connector_id"], json!(other.as_str()));
        });
    }
}
