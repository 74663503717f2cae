//! `webhook_endpoints`: where a business wants its events delivered, with the secrets that sign
//! them and the endpoint's health. Every statement is scoped by the tenant.
//!
//! `secret` and `previous_secret` are stored sealed (`domain::sealed`, each bound to its column
//! and the endpoint's id): this module seals on every write and opens on every read, so the rest
//! of the code sees clear `WebhookSecret`s and D1 never does. A value found clear (from before
//! sealing) or under a retired key is resealed by the read that finds it.
//!
//! This file holds an endpoint as stored, how its secrets are sealed and opened, and its reads;
//! `writes` is what the API writes (an endpoint within the business's cap, its change on the
//! revision it read, its deletion) and a restore's quarantine; `health` is what deliveries leave
//! on it (its health, the new secret confirmed, test sends counted) and the alert rules' reading.

mod health;
mod writes;

pub use health::{Health, alert_signals, confirm_new_secret, health_update, take_test_slot};
pub use writes::{MAX_PER_BUSINESS, delete, disable_all, enable_listed, insert, update};

use crate::db::{self, Db, text};
use crate::platform::secrets_key;
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
pub(super) async fn sealed_secrets(
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

/// The SQL condition that an enabled endpoint of the tenant (`:business`) subscribes to the
/// event type `type_expression`: events nobody subscribes to are not recorded.
pub fn subscribed_sql(type_expression: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM webhook_endpoints e, json_each(e.events) AS s \
         WHERE e.business_id = :business AND e.enabled = 1 AND s.value = {type_expression})"
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, new_endpoint};
    use serde_json::json;

    pub(super) async fn one(fixture: &Fixture, tenant: &Tenant, id: &EndpointId) -> Endpoint {
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
}
