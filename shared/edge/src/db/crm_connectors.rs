//! `crm_connectors`: a business's connections to CRM accounts, with their settings, sealed
//! secrets, request budget and health. Found by id for the sync consumer and for the CRM's
//! webhooks (the path names the connector, the connector names the business), listed and changed
//! by the admin API.
//!
//! Secrets are sealed (`domain::sealed`, bound to the connector's id) on every write and opened
//! on every read, as channel accounts' are. Every change bumps `revision` and lands only on the
//! revision it read, so two admins at once cannot undo each other.

use crate::db::Batch;
use crate::db::Read;
use crate::db::directory::Moving;
use crate::db::{self, number, optional_number, text};
use crate::db::{Db, Statement};
use crate::platform::secrets_key;
use crate::runtime::D1Result;
use domain::alerts::ConnectorSignals;
use domain::crm::budget::{self, Budget, Spent};
use domain::crm::config::ConnectorSecrets;
use domain::crm::rollout::Rollout;
use domain::crm::work::ConnectorKind;
use domain::error::ApiError;
use domain::ids::{BusinessId, ConnectorId, CustomerId};
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

fn secrets_place(id: &ConnectorId) -> Place<'_> {
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
    for row in result.results::<Row>()? {
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

/// Records how the last call to the CRM went: its health as the status shows it.
pub async fn record_health(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    error: Option<&str>,
    now_us: i64,
) -> Result<(), ApiError> {
    // A failure after a success starts the connector's failing spell; a success ends it.
    let sql = if error.is_some() {
        "UPDATE crm_connectors SET last_error = ?3, last_error_us = ?4, \
         failing_since_us = coalesce(failing_since_us, ?4) WHERE business_id = ?1 AND id = ?2"
    } else {
        "UPDATE crm_connectors SET last_success_us = ?4, failing_since_us = NULL \
         WHERE business_id = ?1 AND id = ?2 AND ?3 IS NULL"
    };
    db.scoped(tenant, sql)
        .bind(&[text(id.as_str()), db::optional_text(error), number(now_us)])?
        .run()
        .await?;
    Ok(())
}

/// Keeps when the connector's CRM key expires, as its CRM just reported it (None: it reported
/// none); a credential saved since (`revision` moved on) is left to its own report.
pub async fn record_key_expiry(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    revision: i64,
    expires_us: Option<i64>,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_connectors SET key_expires_us = ?4 WHERE business_id = ?1 AND id = ?2 AND revision = ?3",
    )
    .bind(&[
        text(id.as_str()),
        number(revision),
        db::optional_number(expires_us),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The statement reading what the alert rules read of the shard's enabled connectors
/// (`domain::alerts`) whose condition may hold: failing, paused, half their daily budget spent,
/// with work waiting a minute or more, or a key expiring within the rule's longest threshold; at
/// most `limit`, businesses being moved left out. Each connector is read once, and its oldest
/// waiting job by an index seek.
pub fn alert_signals(
    db: &Db,
    moving: &Moving,
    now_us: i64,
    limit: usize,
) -> Result<Read<Vec<ConnectorSignals>>, ApiError> {
    Ok(Read::new(db
        .unscoped(
            "SELECT * FROM (SELECT c.business_id, c.id, c.name, c.failing_since_us, c.paused_until_us, c.per_day, c.key_expires_us, \
             CASE WHEN c.day_start_us = ?3 THEN c.day_count ELSE 0 END AS spent_today, \
             (SELECT j.created_us FROM crm_sync_jobs j WHERE j.business_id = c.business_id \
              AND j.connector_id = c.id AND j.status = 'pending' ORDER BY j.seq LIMIT 1) AS oldest_pending_us \
             FROM crm_connectors c WHERE c.enabled = 1 AND c.business_id NOT IN (SELECT value FROM json_each(?1))) \
             WHERE failing_since_us IS NOT NULL OR paused_until_us > ?2 \
             OR (per_day > 0 AND spent_today * 2 >= per_day) OR oldest_pending_us <= ?4 \
             OR key_expires_us <= ?6 \
             ORDER BY business_id, id LIMIT ?5",
        )
        .bind(&[
            moving.param(),
            number(now_us),
            number(budget::day_start(now_us)),
            number(now_us - 60_000_000),
            number(limit as i64),
            number(now_us + i64::from(domain::alerts::KEY_EXPIRY_MAX_DAYS) * 86_400_000_000),
        ])?, read_alert_signals))
}

/// The connectors the statement of [`alert_signals`] read.
fn read_alert_signals(answer: &D1Result) -> Result<Vec<ConnectorSignals>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: String,
        name: String,
        failing_since_us: Option<i64>,
        paused_until_us: Option<i64>,
        per_day: Option<i64>,
        spent_today: i64,
        oldest_pending_us: Option<i64>,
        key_expires_us: Option<i64>,
    }
    Ok(db::rows::<Row>(answer)?
        .into_iter()
        .map(|row| ConnectorSignals {
            business_id: row.business_id,
            id: row.id,
            name: row.name,
            failing_since_ms: row.failing_since_us.map(|us| us / 1000),
            paused_until_ms: row.paused_until_us.map(|us| us / 1000),
            per_day: row.per_day,
            spent_today: row.spent_today,
            oldest_waiting_ms: row.oldest_pending_us.map(|us| us / 1000),
            key_expires_ms: row.key_expires_us.map(|us| us / 1000),
        })
        .collect())
}

/// Pauses every call to the connector's CRM until `until_us` (a 429), unless it is paused longer.
pub async fn pause(db: &Db, tenant: &Tenant, id: &ConnectorId, until_us: i64) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_connectors SET paused_until_us = max(coalesce(paused_until_us, 0), ?3) \
         WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[text(id.as_str()), number(until_us)])?
    .run()
    .await?;
    Ok(())
}

/// The statement that grants one request under `token` if the connector's budget allows it now:
/// not paused, fewer than its limits in the sliding minute and second (counted in
/// `crm_requests`) and in the UTC day (counted here). [`crate::db::crm_requests::record_grant`]
/// follows it in the same batch.
pub fn grant(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    token: &str,
    now_us: i64,
) -> Result<Statement, ApiError> {
    let today = budget::day_start(now_us);
    Ok(db
        .scoped(
            tenant,
            "UPDATE crm_connectors SET last_grant = ?3, \
             day_count = CASE WHEN day_start_us = ?5 THEN day_count + 1 ELSE 1 END, day_start_us = ?5 \
             WHERE business_id = ?1 AND id = ?2 \
             AND coalesce(paused_until_us, 0) <= ?4 \
             AND (per_day IS NULL OR day_start_us <> ?5 OR day_count < per_day) \
             AND (per_minute IS NULL OR (SELECT count(*) FROM crm_requests r WHERE r.connector_id = ?2 \
                  AND r.at_us > ?4 - 60000000) < per_minute) \
             AND (per_second IS NULL OR (SELECT count(*) FROM crm_requests r WHERE r.connector_id = ?2 \
                  AND r.at_us > ?4 - 1000000) < per_second)",
        )
        .bind(&[text(id.as_str()), text(token), number(now_us), number(today)])?)
}

/// What the budget has spent, read after a grant was refused, to know how long to wait.
pub async fn spent(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    limits: &Budget,
    now_us: i64,
) -> Result<Spent, ApiError> {
    let window = |length: i64, limit: Option<u32>| {
        format!(
            "(SELECT count(*) FROM crm_requests r WHERE r.connector_id = c.id AND r.at_us > ?3 - {length}), \
             (SELECT min(at_us) FROM (SELECT at_us FROM crm_requests r WHERE r.connector_id = c.id \
              AND r.at_us > ?3 - {length} ORDER BY at_us DESC LIMIT {}))",
            limit.unwrap_or(0)
        )
    };
    let sql = format!(
        "SELECT {}, {}, c.day_start_us, c.day_count, c.paused_until_us FROM crm_connectors c \
         WHERE c.business_id = ?1 AND c.id = ?2",
        window(budget::MINUTE_US, limits.per_minute),
        window(budget::SECOND_US, limits.per_second),
    );
    let rows: Vec<Vec<Value>> = db
        .scoped(tenant, sql)
        .bind(&[text(id.as_str()), number(now_us)])?
        .raw()
        .await?;
    let row = rows.into_iter().next().unwrap_or_default();
    let int = |at: usize| row.get(at).and_then(Value::as_i64);
    let count = |at: usize| int(at).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(Spent {
        minute_count: count(0),
        minute_frees_at_us: int(1),
        second_count: count(2),
        second_frees_at_us: int(3),
        day_start_us: int(4).unwrap_or(0),
        day_count: count(5),
        paused_until_us: int(6),
    })
}

/// Keeps what was read of the CRM's configuration, at `now_us`, if the connector is still at the
/// `revision` it was read with: any reader may refresh it, but what was read with credentials or
/// settings since changed is not kept (a change of the connector forgets it).
pub async fn store_cache(
    db: &Db,
    tenant: &Tenant,
    id: &ConnectorId,
    revision: i64,
    cache: &Value,
    now_us: i64,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE crm_connectors SET crm_cache = ?3, crm_cache_us = ?4 \
         WHERE business_id = ?1 AND id = ?2 AND revision = ?5",
    )
    .bind(&[
        text(id.as_str()),
        text(&cache.to_string()),
        number(now_us),
        number(revision),
    ])?
    .run()
    .await?;
    Ok(())
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
    use super::*;
    use crate::db::crm_requests;
    use crate::testing::{Fixture, Must, UNLIMITED, random};
    use domain::crm::budget::{DAY_US, MINUTE_US, SECOND_US};
    use domain::crm::kustomer::settings::KustomerSecrets;
    use serde_json::json;
    use std::time::Duration;

    fn secrets(key: &str) -> ConnectorSecrets {
        ConnectorSecrets::from(KustomerSecrets {
            api_key: key.to_owned(),
            webhook_secret: Some("hook-secret".to_owned()),
        })
    }

    /// Takes one request from the connector's budget now, as the CRM client does: whether it
    /// was granted.
    async fn take(fixture: &Fixture, tenant: &Tenant, id: &ConnectorId) -> bool {
        let now = fixture.now().micros();
        let token = hex::encode(random::<16>());
        let mut batch = vec![grant(&fixture.db, tenant, id, &token, now).must()];
        batch.extend(crm_requests::record_grant(&fixture.db, id, &token, now).must());
        let results = db::write_together(&fixture.db, batch).await.must();
        results.first() == Some(&1)
    }

    async fn spent_now(fixture: &Fixture, tenant: &Tenant, id: &ConnectorId, limits: &Budget) -> Spent {
        spent(&fixture.db, tenant, id, limits, fixture.now().micros())
            .await
            .must()
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

    #[test]
    fn health_keeps_the_last_error_and_the_last_success_apart() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let keys = fixture.keys();
            let t1 = fixture.now().micros();
            record_health(&fixture.db, &acme, &id, Some("401 from the CRM"), t1)
                .await
                .must();
            record_health(&fixture.db, &acme, &id, None, t1 + 5).await.must();
            let connector = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(
                connector.last_error.as_deref(),
                Some("401 from the CRM"),
                "a success does not erase it"
            );
            assert_eq!(
                (connector.last_error_us, connector.last_success_us),
                (Some(t1), Some(t1 + 5))
            );
            assert_eq!(connector.revision, 0, "health is not a change of the connector");
        });
    }

    #[test]
    fn a_pause_is_only_ever_extended_and_the_cache_kept_with_its_time() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let keys = fixture.keys();
            let now = fixture.now().micros();
            pause(&fixture.db, &acme, &id, now + 60 * SECOND_US).await.must();
            pause(&fixture.db, &acme, &id, now + 10 * SECOND_US).await.must();
            store_cache(&fixture.db, &acme, &id, 0, &json!({"pipelines": [1, 2]}), now)
                .await
                .must();
            let connector = find(&fixture.db, &keys, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(connector.paused_until_us, Some(now + 60 * SECOND_US));
            assert_eq!(
                (connector.crm_cache, connector.crm_cache_us),
                (Some(json!({"pipelines": [1, 2]})), Some(now))
            );
        });
    }

    #[test]
    fn the_budget_grants_up_to_its_limits_in_the_sliding_second_and_minute() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let limits = Budget {
                per_minute: Some(3),
                per_second: Some(2),
                per_day: None,
            };
            let id = fixture.connector_with(&acme, true, limits).await;
            let start = fixture.now().micros();
            assert!(take(&fixture, &acme, &id).await);
            assert!(take(&fixture, &acme, &id).await);
            assert!(!take(&fixture, &acme, &id).await, "two in a second");
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!((spent.second_count, spent.second_frees_at_us), (2, Some(start)));
            assert_eq!(
                fixture.rows("crm_requests", "at_us").len(),
                2,
                "a refused grant is no request"
            );

            fixture.stack.advance(Duration::from_secs(1));
            assert!(take(&fixture, &acme, &id).await, "the second has passed");
            assert!(!take(&fixture, &acme, &id).await, "three in a minute");
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!(
                (spent.minute_count, spent.minute_frees_at_us),
                (3, Some(start)),
                "the third newest frees a place"
            );
            assert_eq!(spent.second_count, 1);

            fixture.stack.advance(Duration::from_secs(59));
            assert!(take(&fixture, &acme, &id).await, "the first two left the minute");
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!(spent.minute_count, 2);
            assert_eq!(start + MINUTE_US, fixture.now().micros());
        });
    }

    #[test]
    fn the_budget_counts_the_utc_day_and_starts_again_the_next() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let limits = Budget {
                per_minute: None,
                per_second: None,
                per_day: Some(2),
            };
            let id = fixture.connector_with(&acme, true, limits).await;
            assert!(take(&fixture, &acme, &id).await);
            assert!(take(&fixture, &acme, &id).await);
            assert!(!take(&fixture, &acme, &id).await, "two a day");
            let now = fixture.now().micros();
            let today = budget::day_start(now);
            let spent = spent_now(&fixture, &acme, &id, &limits).await;
            assert_eq!((spent.day_start_us, spent.day_count), (today, 2));
            let connector = find(&fixture.db, &fixture.keys(), &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(connector.calls_today(now), 2);

            fixture.stack.advance(Duration::from_micros(
                u64::try_from(today + DAY_US - now).unwrap_or(0),
            ));
            assert!(take(&fixture, &acme, &id).await, "a new UTC day");
            let connector = find(&fixture.db, &fixture.keys(), &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!((connector.day_start_us, connector.day_count), (today + DAY_US, 1));
        });
    }

    #[test]
    fn a_paused_connector_is_granted_nothing_until_the_pause_ends() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture.connector(&acme).await;
            let until = fixture.now().micros() + 10 * SECOND_US;
            pause(&fixture.db, &acme, &id, until).await.must();
            assert!(!take(&fixture, &acme, &id).await);
            assert_eq!(
                spent_now(&fixture, &acme, &id, &UNLIMITED).await.paused_until_us,
                Some(until)
            );
            fixture.stack.advance(Duration::from_secs(10));
            assert!(take(&fixture, &acme, &id).await, "the pause ended");
        });
    }
}
