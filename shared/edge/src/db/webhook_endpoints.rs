//! `webhook_endpoints`: where a business wants its events delivered, with the secrets that sign
//! them and the endpoint's health. Every statement is scoped by the tenant.
//!
//! `secret` and `previous_secret` are stored sealed (`domain::sealed`, each bound to its column
//! and the endpoint's id): this module seals on every write and opens on every read, so the rest
//! of the code sees clear `WebhookSecret`s and D1 never does. A value found clear (from before
//! sealing) or under a retired key is resealed by the read that finds it.

use crate::db::directory::Moving;
use crate::db::{self, number, text};
use crate::db::{Db, Statement};
use crate::platform::secrets_key;
use crate::runtime::D1Result;
use domain::alerts::EndpointSignals;
use domain::error::ApiError;
use domain::ids::{BusinessId, EndpointId};
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::{self, WebhookSecret};
use domain::webhooks::{DISABLED_BY_BUSINESS, EventType, RetrySchedule};
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
pub struct EndpointRow {
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
struct Opened {
    endpoint: Endpoint,
    stored: (String, Option<String>),
    to_reseal: Option<(String, Option<String>)>,
}

impl EndpointRow {
    async fn open(self, keys: &Keyring) -> Result<Opened, ApiError> {
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
        Ok(Opened {
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
    let sealed = list_read(db, tenant).run().await?;
    listed(db, keys, tenant, sealed).await
}

/// Endpoints as stored, their secrets sealed: what a batch reads, opened by [`listed`] after.
pub struct Sealed(Vec<EndpointRow>);

/// The read of [`list`], for a caller's batch.
pub fn list_read(db: &Db, tenant: &Tenant) -> db::Read<Sealed> {
    db::Read::new(
        db.scoped(
            tenant,
            format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE business_id = ?1 ORDER BY created_at, id"
            ),
        ),
        |answer| Ok(Sealed(db::rows(answer)?)),
    )
}

/// The endpoints a [`list_read`] found, their secrets opened.
pub async fn listed(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    sealed: Sealed,
) -> Result<Vec<Endpoint>, ApiError> {
    open_all(db, keys, tenant, sealed.0).await
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
    use super::*;
    use crate::testing::{Fixture, Must, new_endpoint};
    use serde_json::json;
    use std::time::Duration;

    async fn one(fixture: &Fixture, tenant: &Tenant, id: &EndpointId) -> Endpoint {
        find(&fixture.db, &fixture.keys(), tenant, id)
            .await
            .must()
            .unwrap_or_else(|| panic!("endpoint {id}"))
    }

    #[test]
    fn an_endpoint_reads_back_as_written_and_its_secrets_are_sealed_at_rest() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let mut written = new_endpoint(
                fixture.now(),
                &[EventType::MessageReceived, EventType::CustomerCreated],
            );
            let previous = new_endpoint(fixture.now(), &[]).secret;
            written.previous_secret = Some(previous.clone());
            written.previous_secret_until_us = Some(fixture.now().micros() + 3_600_000_000);
            written.retry_schedule = RetrySchedule::Extended;
            assert!(insert(&fixture.db, &fixture.keys(), &acme, &written).await.must());
            let read = one(&fixture, &acme, &written.id).await;
            assert_eq!(read.events, written.events);
            assert_eq!(read.secret, written.secret);
            assert_eq!(read.previous_secret, Some(previous.clone()));
            assert_eq!(read.previous_secret_until_us, written.previous_secret_until_us);
            assert_eq!(
                (read.name.as_str(), read.url.as_str()),
                ("Orders", "https://hooks.example.com/crm")
            );
            assert_eq!(
                (read.enabled, read.retry_schedule, read.timeout_seconds),
                (true, RetrySchedule::Extended, 10)
            );
            assert_eq!((read.revision, read.seed_signs_new), (0, true));
            let rows = fixture.rows("webhook_endpoints", "id");
            for column in ["secret", "previous_secret"] {
                let stored = rows[0][column].as_str().unwrap_or_default();
                assert!(stored.starts_with("v1:"), "{column} sealed: {stored}");
                assert!(
                    !stored.contains(&written.secret.as_str()[6..])
                        && !stored.contains(&previous.as_str()[6..])
                );
            }
            assert_eq!(
                rows[0]["events"],
                json!("[\"message.received\",\"customer.created\"]")
            );
        });
    }

    #[test]
    fn a_secret_found_clear_is_sealed_by_the_read_that_finds_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::MessageSent]).await;
            fixture.stack.sql("DB", |connection| {
                connection
                    .execute(
                        "UPDATE webhook_endpoints SET secret = ?1",
                        [endpoint.secret.as_str()],
                    )
                    .must()
            });
            let read = one(&fixture, &acme, &endpoint.id).await;
            assert_eq!(
                read.secret, endpoint.secret,
                "read clear as written before sealing"
            );
            let stored = fixture.rows("webhook_endpoints", "id")[0]["secret"].clone();
            assert!(
                stored.as_str().is_some_and(|stored| stored.starts_with("v1:")),
                "{stored}"
            );
            assert_eq!(one(&fixture, &acme, &endpoint.id).await.secret, endpoint.secret);
        });
    }

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

    #[test]
    fn another_business_neither_finds_nor_changes_an_endpoint() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let endpoint = fixture.endpoint(&acme, &[EventType::MessageSent]).await;
            let keys = fixture.keys();
            let now = fixture.now();
            assert!(
                find(&fixture.db, &keys, &globex, &endpoint.id)
                    .await
                    .must()
                    .is_none()
            );
            assert!(list(&fixture.db, &keys, &globex).await.must().is_empty());
            let taken = Endpoint {
                url: "https://evil.example".to_owned(),
                ..endpoint.clone()
            };
            assert!(!update(&fixture.db, &keys, &globex, &taken).await.must());
            for health in [Health::Failing, Health::Disable("theirs".to_owned())] {
                let statement = health_update(&fixture.db, &globex, &endpoint.id, &health, now).must();
                assert_eq!(
                    fixture
                        .changes(statement.unwrap_or_else(|| panic!("a statement")))
                        .await,
                    0
                );
            }
            assert_eq!(
                fixture
                    .changes(confirm_new_secret(&fixture.db, &globex, &endpoint.id).must())
                    .await,
                0
            );
            assert!(!delete(&fixture.db, &globex, &endpoint.id).await.must());
            let read = one(&fixture, &acme, &endpoint.id).await;
            assert_eq!(
                (read.url, read.enabled, read.revision, read.failing_since_us),
                (endpoint.url, true, 0, None)
            );
            assert!(delete(&fixture.db, &acme, &endpoint.id).await.must());
            assert!(list(&fixture.db, &keys, &acme).await.must().is_empty());
        });
    }

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
