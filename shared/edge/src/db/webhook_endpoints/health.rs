//! What deliveries leave on an endpoint: its health after an attempt (the first failure noted, a
//! success clearing it, a failing spell too long disabling it once), the new secret confirmed
//! once a receiver accepts it in the seed header, and test sends counted in windows; and the
//! alert rules' reading of the shard's failing and disabled endpoints.

use crate::db::directory::Moving;
use crate::db::{self, Db, Statement, number, text};
use crate::runtime::D1Result;
use domain::alerts::EndpointSignals;
use domain::error::ApiError;
use domain::ids::{BusinessId, EndpointId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::DISABLED_BY_BUSINESS;
use serde::Deserialize;

/// What the attempt does to its endpoint's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The endpoint answered well: it is not failing.
    Healthy,
    /// Another failure; it has been failing since the first one.
    Failing,
    /// It has failed for longer than it may: disabled, for this reason.
    Disable(String),
    /// A test send or an attempt that does not count for the endpoint's health.
    Unchanged,
}

/// The statement that applies `health` to the endpoint after an attempt at `at`; None when the
/// attempt leaves it unchanged.
pub fn health_update(
    db: &Db,
    tenant: &Tenant,
    id: &EndpointId,
    health: &Health,
    at: Timestamp,
) -> Result<Option<Statement>, ApiError> {
    let endpoint = text(id.as_str());
    let update = match health {
        Health::Unchanged => return Ok(None),
        Health::Healthy => (
            "UPDATE webhook_endpoints SET failing_since_us = NULL, revision = revision + 1 WHERE business_id = ?1 AND id = ?2 \
             AND failing_since_us IS NOT NULL",
            vec![endpoint],
        ),
        Health::Failing => (
            "UPDATE webhook_endpoints SET failing_since_us = ?3, revision = revision + 1 WHERE business_id = ?1 AND id = ?2 \
             AND failing_since_us IS NULL",
            vec![endpoint, number(at.micros())],
        ),
        Health::Disable(reason) => (
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?3, updated_at = ?4, revision = revision + 1, \
             failing_since_us = COALESCE(failing_since_us, ?5) WHERE business_id = ?1 AND id = ?2 AND enabled = 1",
            vec![
                endpoint,
                text(reason),
                text(&at.to_rfc3339()),
                number(at.micros()),
            ],
        ),
    };
    Ok(Some(db.scoped(tenant, update.0).bind(&update.1)?))
}

/// The statement that records that the receiver accepted a delivery whose seed header was
/// signed with the new secret: from now on the seed header uses it always.
pub fn confirm_new_secret(db: &Db, tenant: &Tenant, id: &EndpointId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE webhook_endpoints SET seed_signs_new = 1, revision = revision + 1 \
             WHERE business_id = ?1 AND id = ?2 AND seed_signs_new = 0",
        )
        .bind(&[text(id.as_str())])?)
}

/// Counts a test send against the endpoint's allowance of `per_window` per window of
/// `window_seconds`. Ok(None) when it may go; Ok(Some(seconds)) when the window is full and
/// opens again in that many seconds.
pub async fn take_test_slot(
    db: &Db,
    tenant: &Tenant,
    id: &EndpointId,
    now: Timestamp,
    per_window: u32,
    window_seconds: i64,
) -> Result<Option<u32>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        tests_window_us: Option<i64>,
    }
    let window_us = window_seconds * 1_000_000;
    let endpoint = text(id.as_str());
    let mut batch = db::Batch::default();
    let taken = batch.write(
        db.scoped(
            tenant,
            "UPDATE webhook_endpoints SET \
                 tests_in_window = CASE WHEN tests_window_us IS NULL OR tests_window_us <= ?3 - ?4 THEN 1 \
                   ELSE tests_in_window + 1 END, \
                 tests_window_us = CASE WHEN tests_window_us IS NULL OR tests_window_us <= ?3 - ?4 THEN ?3 \
                   ELSE tests_window_us END \
                 WHERE business_id = ?1 AND id = ?2 \
                 AND (tests_window_us IS NULL OR tests_window_us <= ?3 - ?4 OR tests_in_window < ?5)",
        )
        .bind(&[
            endpoint.clone(),
            number(now.micros()),
            number(window_us),
            number(i64::from(per_window)),
        ])?,
    );
    let window = batch.read(db::Read::<Option<Row>>::first(
        db.scoped(
            tenant,
            "SELECT tests_window_us FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[endpoint])?,
    ));
    let answers = batch.run(db).await?;
    if answers.changes(taken) == 1 {
        return Ok(None);
    }
    let opened = answers
        .take(window)?
        .and_then(|row| row.tests_window_us)
        .unwrap_or(now.micros());
    let wait_us = (opened + window_us - now.micros()).max(1_000_000);
    Ok(Some(((wait_us + 999_999) / 1_000_000) as u32))
}

/// The statement reading what the alert rules read of the shard's endpoints (`domain::alerts`):
/// those failing, and those disabled for failing (not by their business); at most `limit`,
/// businesses being moved left out.
pub fn alert_signals(
    db: &Db,
    moving: &Moving,
    limit: usize,
) -> Result<db::Read<Vec<EndpointSignals>>, ApiError> {
    Ok(db::Read::new(db
        .unscoped(
            // The first term as the partial index webhook_endpoints_unwell names it.
            "SELECT business_id, id, name, enabled, failing_since_us FROM webhook_endpoints \
             WHERE (failing_since_us IS NOT NULL OR enabled = 0) AND ((enabled = 1 AND failing_since_us IS NOT NULL) \
             OR (enabled = 0 AND disabled_reason <> ?1)) \
             AND business_id NOT IN (SELECT value FROM json_each(?2)) ORDER BY business_id, id LIMIT ?3",
        )
        .bind(&[text(DISABLED_BY_BUSINESS), moving.param(), number(limit as i64)])?, read_alert_signals))
}

/// The endpoints the statement of [`alert_signals`] read.
fn read_alert_signals(answer: &D1Result) -> Result<Vec<EndpointSignals>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: String,
        name: String,
        enabled: i64,
        failing_since_us: Option<i64>,
    }
    Ok(db::rows::<Row>(answer)?
        .into_iter()
        .map(|row| EndpointSignals {
            business_id: row.business_id,
            id: row.id,
            name: row.name,
            disabled: row.enabled == 0,
            failing_since_ms: row.failing_since_us.map(|us| us / 1000),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;
    use super::super::{Endpoint, insert};
    use super::*;
    use crate::testing::{Fixture, Must, new_endpoint};
    use domain::webhooks::EventType;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn health_notes_the_first_failure_clears_on_success_and_disables_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::MessageSent]).await;
            let at = |seconds: i64| fixture.now().plus_seconds(seconds);
            let apply = |health: Health, when| {
                let statement = health_update(&fixture.db, &acme, &endpoint.id, &health, when).must();
                fixture.changes(statement.unwrap_or_else(|| panic!("a statement")))
            };
            assert!(
                health_update(&fixture.db, &acme, &endpoint.id, &Health::Unchanged, at(0))
                    .must()
                    .is_none()
            );
            let steps = [
                ("a success while healthy", Health::Healthy, 0, 0, None, true),
                ("the first failure", Health::Failing, 10, 1, Some(10), true),
                ("another failure", Health::Failing, 20, 0, Some(10), true),
                ("a success", Health::Healthy, 30, 1, None, true),
                ("failing again", Health::Failing, 40, 1, Some(40), true),
                (
                    "failing too long",
                    Health::Disable("down for 5 days".to_owned()),
                    50,
                    1,
                    Some(40),
                    false,
                ),
                (
                    "disabled already",
                    Health::Disable("again".to_owned()),
                    60,
                    0,
                    Some(40),
                    false,
                ),
            ];
            let mut revision = 0;
            for (description, health, seconds, changed, failing_since, enabled) in steps {
                assert_eq!(apply(health, at(seconds)).await, changed, "{description}");
                revision += changed as i64;
                let read = one(&fixture, &acme, &endpoint.id).await;
                assert_eq!(
                    read.failing_since_us,
                    failing_since.map(|s| at(s).micros()),
                    "{description}"
                );
                assert_eq!(
                    (read.enabled, read.revision),
                    (enabled, revision),
                    "{description}"
                );
            }
            let read = one(&fixture, &acme, &endpoint.id).await;
            assert_eq!(read.disabled_reason.as_deref(), Some("down for 5 days"));
            assert_eq!(read.updated_at, at(50).to_rfc3339());
        });
    }

    #[test]
    fn the_new_secret_is_confirmed_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let rotated = Endpoint {
                seed_signs_new: false,
                ..new_endpoint(fixture.now(), &[EventType::MessageSent])
            };
            insert(&fixture.db, &fixture.keys(), &acme, &rotated).await.must();
            assert_eq!(
                fixture
                    .changes(confirm_new_secret(&fixture.db, &acme, &rotated.id).must())
                    .await,
                1
            );
            assert_eq!(
                fixture
                    .changes(confirm_new_secret(&fixture.db, &acme, &rotated.id).must())
                    .await,
                0
            );
            let read = one(&fixture, &acme, &rotated.id).await;
            assert_eq!((read.seed_signs_new, read.revision), (true, 1));
        });
    }

    #[test]
    fn test_sends_are_counted_in_windows_and_the_wait_is_until_the_window_opens() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::MessageSent]).await;
            let slot = || take_test_slot(&fixture.db, &acme, &endpoint.id, fixture.now(), 2, 60);
            assert_eq!(slot().await.must(), None);
            fixture.stack.advance(Duration::from_secs(10));
            assert_eq!(slot().await.must(), None);
            assert_eq!(slot().await.must(), Some(50), "the window opened 10 s ago");
            fixture.stack.advance(Duration::from_millis(49_500));
            assert_eq!(slot().await.must(), Some(1), "a part of a second is a whole one");
            fixture.stack.advance(Duration::from_millis(500));
            assert_eq!(slot().await.must(), None, "a new window");
            let rows = fixture.rows("webhook_endpoints", "id");
            assert_eq!(rows[0]["tests_in_window"], json!(1));
            assert_eq!(rows[0]["tests_window_us"], json!(fixture.now().micros()));
            assert_eq!(
                rows[0]["revision"],
                json!(0),
                "a test send is not a change of the endpoint"
            );
        });
    }
}
