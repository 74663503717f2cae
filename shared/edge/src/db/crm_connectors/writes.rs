//! What the admin API writes: a connector, with its secrets sealed to its id; a change, landing
//! only on the revision it read; secrets an OAuth refresh renewed, unless an administrator changed
//! the connector since; its deletion with everything kept for it, in one batch; and a restore's
//! quarantine, every connector disabled and the chosen ones enabled again.

use super::{Connector, find, secrets_place};
use crate::db::{self, Batch, Db, Statement, number, optional_number, text};
use crate::platform::secrets_key;
use domain::crm::budget::Budget;
use domain::crm::config::ConnectorSecrets;
use domain::crm::rollout::Rollout;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::ConnectorId;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use serde_json::Value;

/// What a connector is written with.
pub struct Fields<'a> {
    pub name: &'a str,
    pub settings: &'a Value,
    pub secrets: &'a ConnectorSecrets,
    pub enabled: bool,
    pub rollout: Rollout,
    pub budget: Budget,
}

async fn sealed(keys: &Keyring, id: &ConnectorId, secrets: &ConnectorSecrets) -> Result<String, ApiError> {
    secrets_key::seal(
        keys,
        &secrets_place(id),
        &Value::Object(secrets.to_json()).to_string(),
    )
    .await
}

pub async fn insert(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ConnectorId,
    kind: ConnectorKind,
    fields: &Fields<'_>,
    now: &str,
) -> Result<Connector, ApiError> {
    let secrets = sealed(keys, id, fields.secrets).await?;
    db.scoped(tenant, "INSERT INTO crm_connectors (id, business_id, kind, name, settings, secrets, enabled, per_minute, per_second, \
         per_day, created_at, updated_at, rollout_percent) VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
    )
    .bind(&[
        text(id.as_str()),
        text(kind.as_str()),
        text(fields.name),
        text(&fields.settings.to_string()),
        text(&secrets),
        number(i64::from(fields.enabled)),
        optional_number(fields.budget.per_minute.map(i64::from)),
        optional_number(fields.budget.per_second.map(i64::from)),
        optional_number(fields.budget.per_day.map(i64::from)),
        text(now),
        number(i64::from(fields.rollout.percent()))])?
    .run()
    .await?;
    find(db, keys, tenant, id)
        .await?
        .ok_or_else(|| ApiError::internal("creating a connector", "the new row was not found"))
}

/// Writes `fields` over the connector if it is still at `revision`; false when someone changed it
/// first (the caller reads again and retries).
pub async fn update(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ConnectorId,
    revision: i64,
    fields: &Fields<'_>,
    now: &str,
) -> Result<bool, ApiError> {
    let secrets = sealed(keys, id, fields.secrets).await?;
    let result = db
        .scoped(tenant, "UPDATE crm_connectors SET name = ?4, settings = ?5, secrets = ?6, enabled = ?7, per_minute = ?8, \
             per_second = ?9, per_day = ?10, updated_at = ?11, rollout_percent = ?12, revision = revision + 1, \
             crm_cache = NULL, crm_cache_us = NULL \
             WHERE business_id = ?1 AND id = ?2 AND revision = ?3",
        )
        .bind(&[
            text(id.as_str()),
            number(revision),
            text(fields.name),
            text(&fields.settings.to_string()),
            text(&secrets),
            number(i64::from(fields.enabled)),
            optional_number(fields.budget.per_minute.map(i64::from)),
            optional_number(fields.budget.per_second.map(i64::from)),
            optional_number(fields.budget.per_day.map(i64::from)),
            text(now),
            number(i64::from(fields.rollout.percent())),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Keeps secrets whose access token was refreshed (OAuth), unless the connector was changed
/// since `revision` was read: an administrator's new secrets win over a refresh of the old ones.
/// The revision is left as it is, so that a refresh never makes an administrator's change lose
/// its race. Whether they were kept.
pub async fn store_refreshed(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ConnectorId,
    revision: i64,
    secrets: &ConnectorSecrets,
) -> Result<bool, ApiError> {
    let sealed = sealed(keys, id, secrets).await?;
    let result = db
        .scoped(
            tenant,
            "UPDATE crm_connectors SET secrets = ?4 WHERE business_id = ?1 AND id = ?2 AND revision = ?3",
        )
        .bind(&[text(id.as_str()), number(revision), text(&sealed)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// What went with a deleted connector: the changes of each statement of its deletion's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// Work still pending, dropped unsent.
    pub pending: usize,
    /// The rest of its sync log.
    pub log: usize,
    pub links: usize,
    pub contacts: usize,
}

/// Deletes the tenant's connector `id` with everything kept for it (its work, links, contacts,
/// CRM deliveries and requests), in one batch so that no part stays behind; None when the tenant
/// has no such connector. Work planned after this finds no connector and is not written
/// (`crm_sync_jobs::insert_planned`), and a contact already handed to the consumer is dropped
/// there. Satisfaction results stay: they are the business's analytics, not the connector's state.
pub async fn delete(db: &Db, tenant: &Tenant, id: &ConnectorId) -> Result<Option<Forgotten>, ApiError> {
    let [pending, log] = db::crm_sync_jobs::forget_connector(db, tenant, id)?;
    let connector = db
        .scoped(
            tenant,
            "DELETE FROM crm_connectors WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[text(id.as_str())])?;
    let mut batch = Batch::default();
    let pending = batch.write(pending);
    let log = batch.write(log);
    let links = batch.write(db::crm_links::forget_connector(db, tenant, id)?);
    let contacts = batch.write(db::crm_contacts::forget_connector(db, tenant, id)?);
    batch.push([
        db::crm_inbound_events::forget_connector(db, tenant, id)?,
        db::crm_requests::forget_connector(db, tenant, id)?,
        db::crm_call_minutes::forget(db, tenant, id.as_str())?,
    ]);
    let connector = batch.write(connector);
    let answers = batch.run(db).await?;
    if answers.changes(connector) == 0 {
        return Ok(None);
    }
    Ok(Some(Forgotten {
        pending: answers.changes(pending),
        log: answers.changes(log),
        links: answers.changes(links),
        contacts: answers.changes(contacts),
    }))
}

/// A restore's quarantine: every enabled connector of the business is disabled, so nothing it
/// held is written to a CRM until the operator resumes it.
pub fn disable_all(db: &Db, tenant: &Tenant) -> Result<Statement, ApiError> {
    Ok(db.scoped(
        tenant,
        "UPDATE crm_connectors SET enabled = 0 WHERE business_id = ?1 AND enabled = 1",
    ))
}

/// The connectors `ids` (of the tenant's) are enabled again.
pub fn enable_listed(db: &Db, tenant: &Tenant, ids: &[String]) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE crm_connectors SET enabled = 1 WHERE +business_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::Value::from(ids.to_vec()).to_string())])?)
}

#[cfg(test)]
mod tests {
    use super::super::store_cache;
    use super::super::tests::secrets;
    use super::*;
    use crate::testing::{Fixture, Must, UNLIMITED};
    use serde_json::json;

    #[test]
    fn a_change_lands_only_on_the_revision_it_read() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let keys = fixture.keys();
            let settings = json!({"base_url": "https://new.api.kustomer.test"});
            let new_secrets = secrets("key-2");
            let tenth = Rollout::parse("rollout_percent", 10).must();
            let change = |name| Fields {
                name,
                settings: &settings,
                secrets: &new_secrets,
                enabled: false,
                rollout: tenth,
                budget: UNLIMITED,
            };
            let now = fixture.now().to_rfc3339();
            let read_at = fixture.now().micros();
            store_cache(&fixture.db, &acme, &id, 0, &json!({"portal_id": 1}), read_at)
                .await
                .must();
            assert!(
                update(&fixture.db, &keys, &acme, &id, 0, &change("First"), &now)
                    .await
                    .must()
            );
            // What was read with the old credentials is forgotten, and a read made with them
            // that lands after the change is not kept.
            store_cache(&fixture.db, &acme, &id, 0, &json!({"portal_id": 1}), read_at)
                .await
                .must();
            let changed = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!((changed.crm_cache, changed.crm_cache_us), (None, None));
            assert!(
                !update(&fixture.db, &keys, &acme, &id, 0, &change("Second"), &now)
                    .await
                    .must(),
                "the second admin read revision 0 too"
            );
            let connector = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!((connector.name.as_str(), connector.revision), ("First", 1));
            assert_eq!((connector.enabled, connector.secrets), (false, secrets("key-2")));
            assert_eq!(connector.rollout, tenth);
            assert_eq!(connector.settings, settings);
            assert!(
                update(&fixture.db, &keys, &acme, &id, 1, &change("Second"), &now)
                    .await
                    .must()
            );
        });
    }
}
