//! `crm_connectors`: a business's connections to CRM accounts, with their settings, sealed
//! secrets, request budget and health. Found by id for the sync consumer and for the CRM's
//! webhooks (the path names the connector, the connector names the business), listed and changed
//! by the admin API.
//!
//! Secrets are sealed (`domain::sealed`, bound to the connector's id) on every write and opened
//! on every read, as channel accounts' are. Every change bumps `revision` and lands only on the
//! revision it read, so two admins at once cannot undo each other.
//!
//! This file holds a connector as stored and its reads (by id, a business's list, the enabled
//! ones as planning work sees them); `writes` is what the admin API writes (a connector, its
//! change, refreshed secrets, its deletion with everything kept for it, a restore's quarantine);
//! `grants` grants the calls its budget allows; `calls` keeps what the calls to the CRM left (its
//! health, a pause, its key's expiry, its configuration) and reads it for the alert rules.

mod calls;
mod grants;
mod writes;

pub use calls::{alert_signals, pause, record_health, record_key_expiry, store_cache};
pub use grants::{grant, spent};
pub use writes::{Fields, Forgotten, delete, disable_all, enable_listed, insert, store_refreshed, update};

use crate::db::Rows;
use crate::db::{self, Db, Read, Statement, number, text};
use crate::platform::secrets_key;
use crate::runtime::D1Result;
use domain::crm::budget::{self, Budget};
use domain::crm::config::ConnectorSecrets;
use domain::crm::rollout::Rollout;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::{ConnectorId, CustomerId};
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use serde::Deserialize;
use serde_json::Value;

/// A connector with its secrets. It never leaves the worker: responses use a masked view.
#[derive(Debug, Clone)]
pub struct Connector {
    pub id: ConnectorId,
    pub tenant: Tenant,
    pub kind: ConnectorKind,
    pub name: String,
    /// As the kind's settings parser left them.
    pub settings: Value,
    /// Read by the kind's rules when the row is opened.
    pub secrets: ConnectorSecrets,
    pub enabled: bool,
    /// The share of customers it works for.
    pub rollout: Rollout,
    pub budget: Budget,
    pub paused_until_us: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_us: Option<i64>,
    pub last_success_us: Option<i64>,
    /// What the connector keeps of the CRM's own configuration (Krayin's pipelines), and when it
    /// was read.
    pub crm_cache: Option<Value>,
    pub crm_cache_us: Option<i64>,
    /// When its CRM key expires, as the CRM last reported it (None: no expiry reported).
    pub key_expires_us: Option<i64>,
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Calls granted in the UTC day that began at `day_start_us` (the daily budget's count).
    pub day_start_us: i64,
    pub day_count: i64,
}

impl Connector {
    /// The calls to the CRM granted so far in the UTC day of `now_us`, against `budget.per_day`.
    pub fn calls_today(&self, now_us: i64) -> i64 {
        if self.day_start_us == budget::day_start(now_us) {
            self.day_count
        } else {
            0
        }
    }
}

#[derive(Deserialize)]
struct Row {
    id: ConnectorId,
    business_id: String,
    default_country: Option<String>,
    kind: String,
    name: String,
    settings: String,
    secrets: String,
    enabled: i64,
    rollout_percent: i64,
    per_minute: Option<u32>,
    per_second: Option<u32>,
    per_day: Option<u32>,
    paused_until_us: Option<i64>,
    last_error: Option<String>,
    last_error_us: Option<i64>,
    last_success_us: Option<i64>,
    crm_cache: Option<String>,
    crm_cache_us: Option<i64>,
    key_expires_us: Option<i64>,
    revision: i64,
    created_at: String,
    updated_at: String,
    day_start_us: i64,
    day_count: i64,
}

pub(super) fn secrets_place(id: &ConnectorId) -> Place<'_> {
    Place {
        table: "crm_connectors",
        column: "secrets",
        row_id: id.as_str(),
    }
}

impl Row {
    async fn open(self, keys: &Keyring) -> Result<Connector, ApiError> {
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("CRM connector", &id, what);
        let opened = secrets_key::open(keys, &secrets_place(&self.id), &self.secrets).await?;
        let kind = ConnectorKind::parse(&self.kind).ok_or_else(|| corrupt("kind"))?;
        let secrets = serde_json::from_str(&opened.secret)
            .ok()
            .and_then(|secrets| domain::crm::config::secrets(kind, &secrets).ok())
            .ok_or_else(|| corrupt("secrets"))?;
        Ok(Connector {
            tenant: Tenant::from_stored(&self.business_id, self.default_country.as_deref())?,
            kind,
            settings: serde_json::from_str(&self.settings).map_err(|_| corrupt("settings"))?,
            secrets,
            enabled: self.enabled == 1,
            rollout: Rollout::from_stored(self.rollout_percent),
            budget: Budget {
                per_minute: self.per_minute,
                per_second: self.per_second,
                per_day: self.per_day,
            },
            name: self.name,
            paused_until_us: self.paused_until_us,
            last_error: self.last_error,
            last_error_us: self.last_error_us,
            last_success_us: self.last_success_us,
            // A cache that cannot be read is read again from the CRM.
            crm_cache: self.crm_cache.and_then(|cache| serde_json::from_str(&cache).ok()),
            crm_cache_us: self.crm_cache_us,
            key_expires_us: self.key_expires_us,
            revision: self.revision,
            created_at: self.created_at,
            updated_at: self.updated_at,
            day_start_us: self.day_start_us,
            day_count: self.day_count,
            id: self.id,
        })
    }
}

const SELECT: &str = "SELECT c.id, c.business_id, b.default_country, c.kind, c.name, c.settings, c.secrets, \
                      c.enabled, c.rollout_percent, c.per_minute, c.per_second, c.per_day, c.paused_until_us, c.last_error, \
                      c.last_error_us, c.last_success_us, c.crm_cache, c.crm_cache_us, c.key_expires_us, c.revision, c.created_at, \
                      c.updated_at, c.day_start_us, c.day_count \
                      FROM crm_connectors c JOIN businesses b ON b.id = c.business_id";

/// The connector `id`, of whichever business: for a CRM's webhook, whose path names only the
/// connector. Everything after this call is scoped by the tenant it returns.
pub async fn find_any(db: &Db, keys: &Keyring, id: &ConnectorId) -> Result<Option<Connector>, ApiError> {
    let statement = db
        .unscoped(format!("{SELECT} WHERE c.id = ?1"))
        .bind(&[text(id.as_str())])?;
    select_one(keys, statement).await
}

/// The connector `statement` (a [`SELECT`] and its filter) finds, opened.
async fn select_one(keys: &Keyring, statement: Statement) -> Result<Option<Connector>, ApiError> {
    match statement.first::<Row>(None).await? {
        Some(row) => Ok(Some(row.open(keys).await?)),
        None => Ok(None),
    }
}

/// The tenant's connector `id`.
pub async fn find(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &ConnectorId,
) -> Result<Option<Connector>, ApiError> {
    let statement = db
        .scoped(tenant, format!("{SELECT} WHERE c.business_id = ?1 AND c.id = ?2"))
        .bind(&[text(id.as_str())])?;
    select_one(keys, statement).await
}

/// Every connector of a business, oldest first; `enabled_only` leaves out the disabled ones.
pub async fn list(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    enabled_only: bool,
) -> Result<Vec<Connector>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "{SELECT} WHERE c.business_id = ?1 AND (?2 = 0 OR c.enabled = 1) ORDER BY c.created_at, c.id"
            ),
        )
        .bind(&[number(i64::from(enabled_only))])?
        .all()
        .await?;
    let mut connectors = Vec::new();
    for row in result.rows::<Row>()? {
        connectors.push(row.open(keys).await?);
    }
    Ok(connectors)
}

/// An enabled connector as planning work sees it: without its secrets.
#[derive(Debug, Clone)]
pub struct Enabled {
    pub id: ConnectorId,
    pub kind: ConnectorKind,
    /// The share of customers it works for.
    pub rollout: Rollout,
    /// As the kind's settings parser left them.
    pub settings: Value,
}

/// The tenant's enabled connectors, oldest first, without opening their secrets: what planning
/// work and escalations need.
pub async fn enabled(db: &Db, tenant: &Tenant) -> Result<Vec<Enabled>, ApiError> {
    enabled_read(db, tenant).run().await
}

/// The read of [`enabled`], for a caller's batch.
pub fn enabled_read(db: &Db, tenant: &Tenant) -> Read<Vec<Enabled>> {
    Read::new(
        db.scoped(
            tenant,
            "SELECT id, kind, settings, rollout_percent FROM crm_connectors WHERE business_id = ?1 AND enabled = 1 \
             ORDER BY created_at, id",
        ),
        read_enabled,
    )
}

/// The connectors the read of [`enabled_read`] found.
fn read_enabled(answer: &D1Result) -> Result<Vec<Enabled>, ApiError> {
    #[derive(Deserialize)]
    struct EnabledRow {
        id: ConnectorId,
        kind: String,
        settings: String,
        rollout_percent: i64,
    }
    db::rows::<EnabledRow>(answer)?
        .into_iter()
        .map(|row| {
            let corrupt = |what: &str| db::corrupt("CRM connector", row.id.as_str(), what);
            Ok(Enabled {
                kind: ConnectorKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
                rollout: Rollout::from_stored(row.rollout_percent),
                settings: serde_json::from_str(&row.settings).map_err(|_| corrupt("settings"))?,
                id: row.id,
            })
        })
        .collect()
}

impl Enabled {
    /// Whether it works for `customer` (the customer is in its rollout).
    pub fn serves(&self, customer: &CustomerId) -> bool {
        self.rollout.includes(&self.id, customer)
    }
}

/// Of the `enabled` connectors, those that work for `customer`.
pub fn serving(enabled: &[Enabled], customer: &CustomerId) -> Vec<ConnectorId> {
    enabled
        .iter()
        .filter(|connector| connector.serves(customer))
        .map(|connector| connector.id.clone())
        .collect()
}

/// SQL that is true when the business `:business` has an enabled connector: its events are
/// recorded even when no webhook endpoint subscribes to them.
pub fn any_enabled_sql() -> &'static str {
    "EXISTS (SELECT 1 FROM crm_connectors WHERE business_id = :business AND enabled = 1)"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::crm_requests;
    use crate::testing::{Fixture, Must, UNLIMITED, random};
    use domain::crm::budget::DAY_US;
    use domain::crm::kustomer::settings::KustomerSecrets;
    use serde_json::json;
    use std::time::Duration;

    pub(super) fn secrets(key: &str) -> ConnectorSecrets {
        ConnectorSecrets::from(KustomerSecrets {
            api_key: key.to_owned(),
            webhook_secret: Some("hook-secret".to_owned()),
        })
    }

    /// Takes one request from the connector's budget now, as the CRM client does: whether it
    /// was granted.
    pub(super) async fn take(fixture: &Fixture, tenant: &Tenant, id: &ConnectorId) -> bool {
        let now = fixture.now().micros();
        let token = hex::encode(random::<16>());
        let mut batch = vec![grant(&fixture.db, tenant, id, &token, now).must()];
        batch.extend(crm_requests::record_grant(&fixture.db, id, &token, now).must());
        let results = db::write_together(&fixture.db, batch).await.must();
        results.first() == Some(&1)
    }

    #[test]
    fn a_connector_reads_back_as_written_and_its_secrets_are_sealed_at_rest() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = ConnectorId::generate(random());
            let budget = Budget {
                per_minute: Some(100),
                per_second: Some(5),
                per_day: None,
            };
            let settings = json!({"base_url": "https://acme.api.kustomer.test", "sync": {"notes": true}});
            let fields = Fields {
                name: "Support",
                settings: &settings,
                secrets: &secrets("key-1"),
                enabled: true,
                rollout: Rollout::EVERYONE,
                budget,
            };
            let now = fixture.now().to_rfc3339();
            let created = insert(
                &fixture.db,
                &fixture.keys(),
                &acme,
                &id,
                ConnectorKind::Kustomer,
                &fields,
                &now,
            )
            .await
            .must();
            assert_eq!(created.id, id);
            assert_eq!(created.tenant, acme);
            assert_eq!(
                (created.kind, created.name.as_str()),
                (ConnectorKind::Kustomer, "Support")
            );
            assert_eq!(created.settings, settings);
            assert_eq!(created.secrets, secrets("key-1"));
            assert_eq!(
                (created.enabled, created.rollout, created.budget, created.revision),
                (true, Rollout::EVERYONE, budget, 0)
            );
            assert_eq!(
                (created.created_at.as_str(), created.updated_at.as_str()),
                (now.as_str(), now.as_str())
            );
            assert_eq!(
                (
                    created.paused_until_us,
                    created.last_error.as_deref(),
                    created.crm_cache.as_ref()
                ),
                (None, None, None)
            );

            let rows = fixture.rows("crm_connectors", "id");
            let stored = rows[0]["secrets"].as_str().unwrap_or_default();
            assert!(stored.starts_with("v1:"), "sealed: {stored}");
            assert!(
                !stored.contains("key-1") && !stored.contains("hook-secret"),
                "{stored}"
            );
            let found = find_any(&fixture.db, &fixture.keys(), &id)
                .await
                .must()
                .map(|connector| connector.tenant);
            assert_eq!(
                found,
                Some(acme),
                "a CRM's webhook finds its connector's business"
            );
        });
    }

    #[test]
    fn another_business_neither_finds_nor_changes_a_connector() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let id = fixture.connector(&acme).await;
            let keys = fixture.keys();
            let now = fixture.now();
            assert!(find(&fixture.db, &keys, &globex, &id).await.must().is_none());
            assert!(list(&fixture.db, &keys, &globex, false).await.must().is_empty());
            assert!(enabled(&fixture.db, &globex).await.must().is_empty());
            let settings = json!({});
            let fields = Fields {
                name: "Taken",
                settings: &settings,
                secrets: &secrets("stolen"),
                enabled: false,
                rollout: Rollout::EVERYONE,
                budget: UNLIMITED,
            };
            assert!(
                !update(&fixture.db, &keys, &globex, &id, 0, &fields, &now.to_rfc3339())
                    .await
                    .must()
            );
            record_health(&fixture.db, &globex, &id, Some("broken"), now.micros())
                .await
                .must();
            pause(&fixture.db, &globex, &id, now.micros() + DAY_US)
                .await
                .must();
            store_cache(&fixture.db, &globex, &id, 0, &json!({"stages": []}), now.micros())
                .await
                .must();
            assert!(
                !take(&fixture, &globex, &id).await,
                "no grant from another business's budget"
            );
            let connector = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(
                (connector.name.as_str(), connector.revision, connector.enabled),
                ("Kustomer", 0, true)
            );
            assert_eq!(
                (
                    connector.last_error,
                    connector.paused_until_us,
                    connector.crm_cache
                ),
                (None, None, None)
            );
            assert_eq!(connector.day_count, 0);
        });
    }

    #[test]
    fn connectors_are_listed_oldest_first_and_the_disabled_left_out_when_asked() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let first = fixture.connector(&acme).await;
            fixture.stack.advance(Duration::from_secs(1));
            let off = fixture.connector_with(&acme, false, UNLIMITED).await;
            fixture.stack.advance(Duration::from_secs(1));
            let last = fixture.connector(&acme).await;
            fixture.connector(&globex).await;
            let keys = fixture.keys();
            let ids = |connectors: Vec<Connector>| connectors.into_iter().map(|c| c.id).collect::<Vec<_>>();
            assert_eq!(
                ids(list(&fixture.db, &keys, &acme, false).await.must()),
                [first.clone(), off, last.clone()]
            );
            assert_eq!(
                ids(list(&fixture.db, &keys, &acme, true).await.must()),
                [first.clone(), last.clone()]
            );
            let planning: Vec<(ConnectorId, ConnectorKind)> = enabled(&fixture.db, &acme)
                .await
                .must()
                .into_iter()
                .map(|c| (c.id, c.kind))
                .collect();
            assert_eq!(
                planning,
                [(first, ConnectorKind::Kustomer), (last, ConnectorKind::Kustomer)]
            );
        });
    }
}
