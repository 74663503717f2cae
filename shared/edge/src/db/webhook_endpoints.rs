//! `webhook_endpoints`: where a business wants its events delivered, with the secrets that sign
//! them and the endpoint's health. Every statement is scoped by the tenant.
//!
//! `secret` and `previous_secret` are stored sealed (`domain::sealed`, each bound to its column
//! and the endpoint's id): this module seals on every write and opens on every read, so the rest
//! of the code sees clear `WebhookSecret`s and D1 never does. A value found clear (from before
//! sealing) or under a retired key is resealed by the read that finds it.

use crate::db::{self, number, text};
use crate::db::{Db, Statement};
use crate::secrets_key;
use domain::error::ApiError;
use domain::ids::EndpointId;
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::{self, WebhookSecret};
use domain::webhooks::{EventType, RetrySchedule};
use serde::Deserialize;

fn corrupt(what: &str, id: &str) -> ApiError {
    db::corrupt("webhook endpoint", id, what)
}

/// A registered endpoint as stored, secrets included: never returned to a client as is.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub name: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub secret: WebhookSecret,
    pub previous_secret: Option<WebhookSecret>,
    pub previous_secret_until_us: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub retry_schedule: RetrySchedule,
    pub timeout_seconds: u32,
    pub disable_after_seconds: u32,
    pub failing_since_us: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by every write: an update lands only on the revision it read.
    pub revision: i64,
    /// False after a rotation until a delivery signed with the new secret in the seed header
    /// has been accepted (see [`Endpoint::seed_secret`]).
    pub seed_signs_new: bool,
}

impl Endpoint {
    /// The secrets that sign a delivery at `now`: the current one first, then the previous one
    /// while its rotation grace lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until_us)
            && now.micros() < until
        {
            secrets.push(previous);
        }
        secrets
    }

    /// The secret that signs the seed header (`X-Webhook-Signature`, one signature only) for
    /// attempt `attempt` at `now`: see [`webhook_signing::seed_signs_with_previous`].
    pub fn seed_secret(&self, now: Timestamp, attempt: u32) -> &WebhookSecret {
        match self.signing_secrets(now).get(1) {
            Some(previous) if webhook_signing::seed_signs_with_previous(self.seed_signs_new, attempt) => {
                previous
            }
            _ => &self.secret,
        }
    }

    pub fn subscribes_to(&self, kind: EventType) -> bool {
        self.events.contains(&kind)
    }
}

const ENDPOINT_COLUMNS: &str = "id, name, url, events, secret, previous_secret, previous_secret_until_us, enabled, \
     disabled_reason, retry_schedule, timeout_seconds, disable_after_seconds, failing_since_us, created_at, updated_at, revision, seed_signs_new";

#[derive(Deserialize)]
struct EndpointRow {
    id: EndpointId,
    name: String,
    url: String,
    events: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until_us: Option<i64>,
    enabled: i64,
    disabled_reason: Option<String>,
    retry_schedule: String,
    timeout_seconds: u32,
    disable_after_seconds: u32,
    failing_since_us: Option<i64>,
    created_at: String,
    updated_at: String,
    revision: i64,
    seed_signs_new: i64,
}

/// Where a secret of the endpoint is stored (`secret` or `previous_secret`): what its seal is
/// bound to.
fn place<'a>(column: &'static str, id: &'a EndpointId) -> Place<'a> {
    Place {
        table: "webhook_endpoints",
        column,
        row_id: id.as_str(),
    }
}

/// The endpoint's two secret columns as they are to be stored: sealed.
async fn sealed_secrets(
    keys: &Keyring,
    id: &EndpointId,
    secret: &str,
    previous: Option<&str>,
) -> Result<(String, Option<String>), ApiError> {
    let sealed = secrets_key::seal(keys, &place("secret", id), secret).await?;
    let sealed_previous = match previous {
        Some(previous) => Some(secrets_key::seal(keys, &place("previous_secret", id), previous).await?),
        None => None,
    };
    Ok((sealed, sealed_previous))
}

/// An endpoint as read, with what its row stores in the secret columns (for a compare-and-set)
/// and, when they should be written again sealed under the current key, their clear values.
struct Read {
    endpoint: Endpoint,
    stored: (String, Option<String>),
    to_reseal: Option<(String, Option<String>)>,
}

impl EndpointRow {
    async fn open(self, keys: &Keyring) -> Result<Read, ApiError> {
        let secret = secrets_key::open(keys, &place("secret", &self.id), &self.secret).await?;
        let previous = match self.previous_secret.as_deref() {
            Some(stored) => Some(secrets_key::open(keys, &place("previous_secret", &self.id), stored).await?),
            None => None,
        };
        let to_reseal = (secret.needs_resealing || previous.as_ref().is_some_and(|p| p.needs_resealing))
            .then(|| (secret.secret.clone(), previous.as_ref().map(|p| p.secret.clone())));
        let stored = (self.secret.clone(), self.previous_secret.clone());
        let names: Vec<String> =
            serde_json::from_str(&self.events).map_err(|_| corrupt("events", self.id.as_str()))?;
        let endpoint = Endpoint {
            events: names.iter().filter_map(|name| EventType::parse(name)).collect(),
            secret: WebhookSecret::parse(&secret.secret)
                .ok_or_else(|| corrupt("secret", self.id.as_str()))?,
            previous_secret: previous.and_then(|p| WebhookSecret::parse(&p.secret)),
            retry_schedule: RetrySchedule::parse(&self.retry_schedule)
                .ok_or_else(|| corrupt("retry_schedule", self.id.as_str()))?,
            enabled: self.enabled != 0,
            id: self.id,
            name: self.name,
            url: self.url,
            previous_secret_until_us: self.previous_secret_until_us,
            disabled_reason: self.disabled_reason,
            timeout_seconds: self.timeout_seconds,
            disable_after_seconds: self.disable_after_seconds,
            failing_since_us: self.failing_since_us,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
            seed_signs_new: self.seed_signs_new != 0,
        };
        Ok(Read {
            endpoint,
            stored,
            to_reseal,
        })
    }
}

/// Opens the rows read and writes back sealed, under the current key, the secrets found clear or
/// under a retired key. Each write is a compare-and-set on the values read, so a concurrent
/// change (a rotation) wins.
async fn open_all(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    rows: Vec<EndpointRow>,
) -> Result<Vec<Endpoint>, ApiError> {
    let mut reads = Vec::with_capacity(rows.len());
    for row in rows {
        reads.push(row.open(keys).await?);
    }
    let mut statements = Vec::new();
    for read in &reads {
        let Some((secret, previous)) = &read.to_reseal else {
            continue;
        };
        let id = &read.endpoint.id;
        let (sealed, sealed_previous) = sealed_secrets(keys, id, secret, previous.as_deref()).await?;
        statements.push(
            db.scoped(
                tenant,
                "UPDATE webhook_endpoints SET secret = ?3, previous_secret = ?4 \
                 WHERE business_id = ?1 AND id = ?2 AND secret = ?5 AND previous_secret IS ?6",
            )
            .bind(&[
                text(id.as_str()),
                text(&sealed),
                db::optional_text(sealed_previous.as_deref()),
                text(&read.stored.0),
                db::optional_text(read.stored.1.as_deref()),
            ])?,
        );
    }
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(reads.into_iter().map(|read| read.endpoint).collect())
}

fn events_json(events: &[EventType]) -> db::Param {
    db::json_list(events.iter().map(|event| event.as_str()))
}

/// The SQL condition that an enabled endpoint of the tenant (`:business`) subscribes to the
/// event type `type_expression`: events nobody subscribes to are not recorded.
pub fn subscribed_sql(type_expression: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM webhook_endpoints e, json_each(e.events) AS s \
         WHERE e.business_id = :business AND e.enabled = 1 AND s.value = {type_expression})"
    )
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

pub async fn list(db: &Db, keys: &Keyring, tenant: &Tenant) -> Result<Vec<Endpoint>, ApiError> {
    let result = db
        .scoped(tenant, format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE business_id = ?1 ORDER BY created_at, id"
        ))
        .all()
        .await?;
    open_all(db, keys, tenant, result.results::<EndpointRow>()?).await
}

pub async fn find(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &EndpointId,
) -> Result<Option<Endpoint>, ApiError> {
    let row = db
        .scoped(
            tenant,
            format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2"),
        )
        .bind(&[db::text(id.as_str())])?
        .first::<EndpointRow>(None)
        .await?;
    Ok(open_all(db, keys, tenant, row.into_iter().collect()).await?.pop())
}

/// The statement that removes the endpoint (after its deliveries and their log: see
/// `webhook_deliveries::delete_of_endpoint` and `webhook_attempts::delete_of_endpoint`).
pub fn delete(db: &Db, tenant: &Tenant, id: &EndpointId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[text(id.as_str())])?)
}

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
    let results = db
        .batch(vec![
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
            db.scoped(
                tenant,
                "SELECT tests_window_us FROM webhook_endpoints WHERE business_id = ?1 AND id = ?2",
            )
            .bind(&[endpoint])?,
        ])
        .await?;
    if db::changes_at(&results, 0) == 1 {
        return Ok(None);
    }
    let opened = db::first_row::<Row>(&results, 1)?
        .and_then(|row| row.tests_window_us)
        .unwrap_or(now.micros());
    let wait_us = (opened + window_us - now.micros()).max(1_000_000);
    Ok(Some(((wait_us + 999_999) / 1_000_000) as u32))
}
