//! What the API writes: an endpoint, stored unless the business has its most already (counted in
//! the same statement), its secrets sealed afresh on every write; a change of every field, landing
//! only on the revision it read; its deletion with its deliveries and their log; and a restore's
//! quarantine, every endpoint disabled and the chosen ones enabled again.

use super::{Endpoint, sealed_secrets};
use crate::db::{self, Db, Statement, text};
use domain::error::ApiError;
use domain::ids::EndpointId;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::webhook_signing::WebhookSecret;
use domain::webhooks::EventType;

fn events_json(events: &[EventType]) -> db::Param {
    db::json_list(events.iter().map(|event| event.as_str()))
}

/// The most endpoints one business may register (each event fans out to all of them).
pub const MAX_PER_BUSINESS: usize = 16;

/// The columns a write sets, and the values [`insert`] and [`update`] bind to them (`:business`
/// and `:id` aside).
const WRITTEN: [&str; 15] = [
    "name",
    "url",
    "events",
    "secret",
    "previous_secret",
    "previous_secret_until_us",
    "enabled",
    "disabled_reason",
    "retry_schedule",
    "timeout_seconds",
    "disable_after_seconds",
    "failing_since_us",
    "updated_at",
    "seed_signs_new",
    "created_at",
];

/// The values of [`WRITTEN`], the secrets as given (sealed).
fn written_values(endpoint: &Endpoint, secret: &str, previous_secret: Option<&str>) -> [db::Param; 15] {
    [
        db::text(&endpoint.name),
        db::text(&endpoint.url),
        events_json(&endpoint.events),
        db::text(secret),
        db::optional_text(previous_secret),
        db::optional_number(endpoint.previous_secret_until_us),
        db::number(i64::from(endpoint.enabled)),
        db::optional_text(endpoint.disabled_reason.as_deref()),
        db::text(endpoint.retry_schedule.as_str()),
        db::number(i64::from(endpoint.timeout_seconds)),
        db::number(i64::from(endpoint.disable_after_seconds)),
        db::optional_number(endpoint.failing_since_us),
        db::text(&endpoint.updated_at),
        db::number(i64::from(endpoint.seed_signs_new)),
        db::text(&endpoint.created_at),
    ]
}

/// Every value a write binds after the business (from `?2`, the endpoint's id), its secrets
/// sealed afresh.
async fn bound(keys: &Keyring, endpoint: &Endpoint) -> Result<Vec<db::Param>, ApiError> {
    let (secret, previous_secret) = sealed_secrets(
        keys,
        &endpoint.id,
        endpoint.secret.as_str(),
        endpoint.previous_secret.as_ref().map(WebhookSecret::as_str),
    )
    .await?;
    let mut values = vec![db::text(endpoint.id.as_str())];
    values.extend(written_values(endpoint, &secret, previous_secret.as_deref()));
    Ok(values)
}

/// Stores a new endpoint unless the business has [`MAX_PER_BUSINESS`] already; false then.
pub async fn insert(db: &Db, keys: &Keyring, tenant: &Tenant, endpoint: &Endpoint) -> Result<bool, ApiError> {
    let columns = WRITTEN.join(", ");
    let values = (3..3 + WRITTEN.len())
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let result = db
        .scoped(
            tenant,
            format!(
                "INSERT INTO webhook_endpoints (business_id, id, {columns}) SELECT ?1, ?2, {values} \
             WHERE (SELECT COUNT(*) FROM webhook_endpoints WHERE business_id = ?1) < {MAX_PER_BUSINESS}"
            ),
        )
        .bind(&bound(keys, endpoint).await?)?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Writes every field of the endpoint if its row is still at the revision `endpoint` was read
/// at, and bumps the revision; false when it changed meanwhile (read again and re-apply) or is
/// gone.
pub async fn update(db: &Db, keys: &Keyring, tenant: &Tenant, endpoint: &Endpoint) -> Result<bool, ApiError> {
    let assignments = WRITTEN
        .iter()
        .zip(3..)
        .filter(|(column, _)| **column != "created_at")
        .map(|(column, n)| format!("{column} = ?{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values = bound(keys, endpoint).await?;
    // `?1` is the business, bound by `scoped`.
    let revision_at = values.len() + 2;
    values.push(db::number(endpoint.revision));
    let result = db
        .scoped(
            tenant,
            format!(
                "UPDATE webhook_endpoints SET {assignments}, revision = revision + 1 \
             WHERE business_id = ?1 AND id = ?2 AND revision = ?{revision_at}"
            ),
        )
        .bind(&values)?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Removes the endpoint with its deliveries and their log, in one transaction; false when the
/// tenant has no such endpoint.
pub async fn delete(db: &Db, tenant: &Tenant, id: &EndpointId) -> Result<bool, ApiError> {
    let mut batch = db::Batch::default();
    batch.push([
        db::webhook_attempts::delete_of_endpoint(db, tenant, id)?,
        db::webhook_deliveries::delete_of_endpoint(db, tenant, id)?,
    ]);
    let endpoint = batch.write(
        db.scoped(
            tenant,
            "DELETE FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[text(id.as_str())])?,
    );
    Ok(batch.run(db).await?.changes(endpoint) == 1)
}

/// A restore's quarantine: every enabled endpoint of the business is disabled, so no event it
/// held is delivered until the operator resumes it.
pub fn disable_all(db: &Db, tenant: &Tenant) -> Result<Statement, ApiError> {
    Ok(db.scoped(
        tenant,
        "UPDATE webhook_endpoints SET enabled = 0 WHERE business_id = ?1 AND enabled = 1",
    ))
}

/// The endpoints `ids` (of the tenant's) are enabled again.
pub fn enable_listed(db: &Db, tenant: &Tenant, ids: &[String]) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE webhook_endpoints SET enabled = 1 WHERE +business_id = ?1 \
             AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::Value::from(ids.to_vec()).to_string())])?)
}

#[cfg(test)]
mod tests {
    use super::super::list;
    use super::super::tests::one;
    use super::*;
    use crate::testing::{Fixture, Must, new_endpoint};

    #[test]
    fn a_business_registers_at_most_sixteen_endpoints() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            for _ in 0..MAX_PER_BUSINESS {
                fixture.endpoint(&acme, &[EventType::MessageSent]).await;
            }
            let one_more = new_endpoint(fixture.now(), &[EventType::MessageSent]);
            assert!(
                !insert(&fixture.db, &fixture.keys(), &acme, &one_more)
                    .await
                    .must()
            );
            assert!(
                insert(&fixture.db, &fixture.keys(), &globex, &one_more)
                    .await
                    .must(),
                "another business counts its own"
            );
            assert_eq!(
                list(&fixture.db, &fixture.keys(), &acme).await.must().len(),
                MAX_PER_BUSINESS
            );
        });
    }

    #[test]
    fn an_update_lands_only_on_the_revision_it_read() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::MessageSent]).await;
            let keys = fixture.keys();
            let renamed = Endpoint {
                name: "Renamed".to_owned(),
                ..endpoint.clone()
            };
            assert!(update(&fixture.db, &keys, &acme, &renamed).await.must());
            let disabled = Endpoint {
                enabled: false,
                ..endpoint.clone()
            };
            assert!(
                !update(&fixture.db, &keys, &acme, &disabled).await.must(),
                "read at revision 0, now 1"
            );
            let read = one(&fixture, &acme, &endpoint.id).await;
            assert_eq!(
                (read.name.as_str(), read.enabled, read.revision),
                ("Renamed", true, 1)
            );
            assert_eq!(
                read.created_at, endpoint.created_at,
                "an update keeps when it was made"
            );
            assert!(
                update(
                    &fixture.db,
                    &keys,
                    &acme,
                    &Endpoint {
                        enabled: false,
                        ..read
                    }
                )
                .await
                .must()
            );
            assert_eq!(one(&fixture, &acme, &endpoint.id).await.revision, 2);
        });
    }
}
