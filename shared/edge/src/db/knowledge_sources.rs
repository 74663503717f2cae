//! `knowledge_sources`: the URLs of a business's CRM data, one per page and URL, with their
//! settings, sealed credentials, fetch status and schedule. Written by the CRM links API, the
//! webhook receiver of pushed data, the fetcher and the scheduler's sweep.
//!
//! Credentials (the API key, the custom headers, a webhook link's signing secret) are one JSON
//! object sealed as one value, bound to the source's id, as connectors' secrets are.

use crate::db::{self, number, optional_number, optional_text, text};
use crate::secrets_key;
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::fetch::{State, Verdict};
use domain::links::link::{Header, Link, LinkSecret, LinkType, PageId};
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::D1Database;

/// A source with its credentials. It never leaves the worker: responses use the masked view of
/// [`Link::display_json`].
#[derive(Debug, Clone)]
pub struct Source {
    pub id: SourceId,
    pub page_id: PageId,
    /// The settings; `is_active` is whether any channel has it active.
    pub link: Link,
    pub webhook_secret: Option<LinkSecret>,
    pub status: Status,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// How the source's fetches went.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(serialize_with = "state_name")]
    pub state: State,
    pub last_fetched_at: Option<String>,
    pub last_http_status: Option<u16>,
    pub last_error: Option<String>,
    pub records: i64,
    pub next_fetch_at: Option<String>,
    #[serde(skip)]
    pub failures: u32,
}

fn state_name<S: serde::Serializer>(state: &State, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(state.as_str())
}

/// The sealed column's content.
#[derive(Serialize, Deserialize, Default)]
struct Secrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    /// In the order given: `[name, value]`.
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    id: SourceId,
    page_id: String,
    url: String,
    name: String,
    #[serde(rename = "type")]
    link_type: String,
    description: Option<String>,
    fetch_interval_minutes: u32,
    secrets: String,
    state: String,
    last_fetched_at: Option<String>,
    last_http_status: Option<u16>,
    last_error: Option<String>,
    failures: u32,
    records: i64,
    version: i64,
    next_fetch_at: Option<String>,
    active: i64,
    created_at: String,
    updated_at: String,
}

fn place(id: &SourceId) -> Place<'_> {
    Place {
        table: "knowledge_sources",
        column: "secrets",
        row_id: id.as_str(),
    }
}

impl Row {
    async fn open(self, keys: &Keyring) -> Result<Source, ApiError> {
        let id = self.id.to_string();
        let corrupt = |what: &str| db::corrupt("CRM link source", &id, what);
        let opened = secrets_key::open(keys, &place(&self.id), &self.secrets).await?;
        let secrets: Secrets = serde_json::from_str(&opened.secret).map_err(|_| corrupt("secrets"))?;
        // Stored URLs passed the destination rule when they were added; loopback is allowed here
        // only so that a local stack's own rows read back (the rule is applied on every fetch).
        let url = Destination::parse("url", &self.url, true).map_err(|_| corrupt("url"))?;
        Ok(Source {
            page_id: PageId::parse(&Value::from(self.page_id)).map_err(|_| corrupt("page_id"))?,
            link: Link {
                name: self.name,
                url,
                link_type: LinkType::parse(&self.link_type).ok_or_else(|| corrupt("type"))?,
                api_key: secrets.api_key.map(LinkSecret::stored),
                headers: secrets
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header {
                        name,
                        value: LinkSecret::stored(value),
                    })
                    .collect(),
                description: self.description,
                is_active: self.active == 1,
                fetch_interval_minutes: self.fetch_interval_minutes,
            },
            webhook_secret: secrets.webhook_secret.map(LinkSecret::stored),
            status: Status {
                state: State::parse(&self.state).ok_or_else(|| corrupt("state"))?,
                last_fetched_at: self.last_fetched_at,
                last_http_status: self.last_http_status,
                last_error: self.last_error,
                records: self.records,
                next_fetch_at: self.next_fetch_at,
                failures: self.failures,
            },
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id: self.id,
        })
    }
}

const SELECT: &str = "SELECT s.id, s.page_id, s.url, s.name, s.type, s.description, s.fetch_interval_minutes, \
     s.secrets, s.state, s.last_fetched_at, s.last_http_status, s.last_error, s.failures, s.records, s.version, \
     s.next_fetch_at, s.created_at, s.updated_at, \
     EXISTS (SELECT 1 FROM knowledge_links l WHERE l.source_id = s.id AND l.is_active = 1) AS active \
     FROM knowledge_sources s";

async fn open_all(rows: Vec<Row>, keys: &Keyring) -> Result<Vec<Source>, ApiError> {
    let mut sources = Vec::with_capacity(rows.len());
    for row in rows {
        sources.push(row.open(keys).await?);
    }
    Ok(sources)
}

pub async fn find(
    db: &D1Database,
    keys: &Keyring,
    tenant: &Tenant,
    id: &SourceId,
) -> Result<Option<Source>, ApiError> {
    let row = db
        .prepare(format!("{SELECT} WHERE s.business_id = ?1 AND s.id = ?2"))
        .bind(&[text(tenant.business_id.as_str()), text(id.as_str())])?
        .first::<Row>(None)
        .await?;
    match row {
        Some(row) => Ok(Some(row.open(keys).await?)),
        None => Ok(None),
    }
}

pub async fn find_by_url(
    db: &D1Database,
    keys: &Keyring,
    tenant: &Tenant,
    page: &PageId,
    url: &str,
) -> Result<Option<Source>, ApiError> {
    let row = db
        .prepare(format!(
            "{SELECT} WHERE s.business_id = ?1 AND s.page_id = ?2 AND s.url = ?3"
        ))
        .bind(&[text(tenant.business_id.as_str()), text(page.as_str()), text(url)])?
        .first::<Row>(None)
        .await?;
    match row {
        Some(row) => Ok(Some(row.open(keys).await?)),
        None => Ok(None),
    }
}

/// The business a source belongs to, for the receiver of pushed data (whose path names only the
/// source; its signature is then checked with the source's own secret).
pub async fn business_of(db: &D1Database, id: &SourceId) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Owner {
        business_id: String,
    }
    let owner = db
        .prepare("SELECT business_id FROM knowledge_sources WHERE id = ?1")
        .bind(&[text(id.as_str())])?
        .first::<Owner>(None)
        .await?;
    Ok(owner.map(|owner| owner.business_id))
}

/// The sources of some pages of the business (all of them when `page` is None), oldest first.
pub async fn list(
    db: &D1Database,
    keys: &Keyring,
    tenant: &Tenant,
    page: Option<&PageId>,
) -> Result<Vec<Source>, ApiError> {
    let rows = db
        .prepare(format!(
            "{SELECT} WHERE s.business_id = ?1 AND (?2 IS NULL OR s.page_id = ?2) ORDER BY s.created_at, s.id"
        ))
        .bind(&[
            text(tenant.business_id.as_str()),
            optional_text(page.map(PageId::as_str)),
        ])?
        .all()
        .await?
        .results::<Row>()?;
    open_all(rows, keys).await
}

/// What a source is written with.
pub struct Fields<'a> {
    pub link: &'a Link,
    pub state: State,
    pub next_fetch_at: Option<&'a str>,
    pub webhook_secret: Option<&'a LinkSecret>,
}

async fn sealed(keys: &Keyring, id: &SourceId, fields: &Fields<'_>) -> Result<String, ApiError> {
    let secrets = Secrets {
        api_key: fields.link.api_key.as_ref().map(|key| key.expose().to_owned()),
        headers: fields
            .link
            .headers
            .iter()
            .map(|header| (header.name.clone(), header.value.expose().to_owned()))
            .collect(),
        webhook_secret: fields.webhook_secret.map(|secret| secret.expose().to_owned()),
    };
    let json = serde_json::to_string(&secrets)
        .map_err(|error| ApiError::internal("sealing a link's secrets", error))?;
    secrets_key::seal(keys, &place(id), &json).await
}

/// A new source; false when the page already has that URL (someone added it first).
pub async fn insert(
    db: &D1Database,
    keys: &Keyring,
    tenant: &Tenant,
    id: &SourceId,
    page: &PageId,
    fields: &Fields<'_>,
    now: &str,
) -> Result<bool, ApiError> {
    let secrets = sealed(keys, id, fields).await?;
    let link = fields.link;
    let inserted = db
        .prepare(
            "INSERT INTO knowledge_sources (id, business_id, page_id, url, name, type, description, \
             fetch_interval_minutes, secrets, state, next_fetch_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) ON CONFLICT DO NOTHING",
        )
        .bind(&[
            text(id.as_str()),
            text(tenant.business_id.as_str()),
            text(page.as_str()),
            text(link.url.as_str()),
            text(&link.name),
            text(link.link_type.as_str()),
            optional_text(link.description.as_deref()),
            number(i64::from(link.fetch_interval_minutes)),
            text(&secrets),
            text(fields.state.as_str()),
            optional_text(fields.next_fetch_at),
            text(now),
        ])?
        .run()
        .await?;
    Ok(db::changes(&inserted) == 1)
}

/// New settings for a source the page has (a POST that adds channels to its URL). The webhook
/// secret stays the one it was given.
pub async fn update_settings(
    db: &D1Database,
    keys: &Keyring,
    tenant: &Tenant,
    source: &Source,
    link: &Link,
    now: &str,
) -> Result<(), ApiError> {
    let fields = Fields {
        link,
        state: source.status.state,
        next_fetch_at: None,
        webhook_secret: source.webhook_secret.as_ref(),
    };
    let secrets = sealed(keys, &source.id, &fields).await?;
    db.prepare(
        "UPDATE knowledge_sources SET name = ?3, type = ?4, description = ?5, fetch_interval_minutes = ?6, \
         secrets = ?7, updated_at = ?8 WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
        text(tenant.business_id.as_str()),
        text(source.id.as_str()),
        text(&link.name),
        text(link.link_type.as_str()),
        optional_text(link.description.as_deref()),
        number(i64::from(link.fetch_interval_minutes)),
        text(&secrets),
        text(now),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Brings the schedule in line with the source's links: due now when some channel has it active
/// and it had no fetch scheduled (a webhook link then indexes what was pushed to it while it was
/// inactive, if anything); no fetch when no channel has it active.
/// True when it became due now (the caller hands it to the fetcher).
pub async fn reschedule(
    db: &D1Database,
    tenant: &Tenant,
    id: &SourceId,
    now: &str,
) -> Result<bool, ApiError> {
    let results = db
        .batch(vec![
            db.prepare(
                "UPDATE knowledge_sources SET next_fetch_at = NULL, updated_at = ?3 \
                 WHERE business_id = ?1 AND id = ?2 AND next_fetch_at IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM knowledge_links WHERE source_id = ?2 AND is_active = 1)",
            )
            .bind(&[text(tenant.business_id.as_str()), text(id.as_str()), text(now)])?,
            db.prepare(
                "UPDATE knowledge_sources SET next_fetch_at = ?3, updated_at = ?3, \
                 state = CASE WHEN state = 'not_fetched' THEN 'pending' ELSE state END \
                 WHERE business_id = ?1 AND id = ?2 AND next_fetch_at IS NULL AND type IN ('api', 'file', 'webhook') \
                 AND EXISTS (SELECT 1 FROM knowledge_links WHERE source_id = ?2 AND is_active = 1)",
            )
            .bind(&[text(tenant.business_id.as_str()), text(id.as_str()), text(now)])?,
        ])
        .await?;
    Ok(db::changes_at(&results, 1) == 1)
}

/// Makes a source due now (a refresh asked for, or data pushed to it).
pub async fn due_now(db: &D1Database, tenant: &Tenant, id: &SourceId, now: &str) -> Result<(), ApiError> {
    db.prepare("UPDATE knowledge_sources SET next_fetch_at = ?3 WHERE business_id = ?1 AND id = ?2")
        .bind(&[text(tenant.business_id.as_str()), text(id.as_str()), text(now)])?
        .run()
        .await?;
    Ok(())
}

/// Deletes a source with its links and pieces.
pub async fn delete(db: &D1Database, tenant: &Tenant, id: &SourceId) -> Result<(), ApiError> {
    let business = text(tenant.business_id.as_str());
    db.batch(vec![
        db.prepare("DELETE FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2")
            .bind(&[business.clone(), text(id.as_str())])?,
        db.prepare("DELETE FROM knowledge_links WHERE business_id = ?1 AND source_id = ?2")
            .bind(&[business.clone(), text(id.as_str())])?,
        db.prepare("DELETE FROM knowledge_sources WHERE business_id = ?1 AND id = ?2")
            .bind(&[business, text(id.as_str())])?,
    ])
    .await?;
    Ok(())
}

/// A source the scheduler found due.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Due {
    pub business_id: String,
    pub source_id: SourceId,
}

/// Sources whose fetch time has passed, oldest due first; each is pushed `hold_seconds` into the
/// future, so the next sweep does not queue it again while it waits in the queue (the fetcher
/// sets the real next time when it is done). Across businesses: this is the scheduler.
pub async fn take_due(
    db: &D1Database,
    now: Timestamp,
    limit: usize,
    hold_seconds: i64,
) -> Result<Vec<Due>, ApiError> {
    let rows = db
        .prepare(
            "UPDATE knowledge_sources SET next_fetch_at = ?2 WHERE id IN (SELECT id FROM knowledge_sources \
             WHERE next_fetch_at IS NOT NULL AND next_fetch_at <= ?1 ORDER BY next_fetch_at LIMIT ?3) \
             RETURNING business_id, id AS source_id",
        )
        .bind(&[
            text(&now.to_rfc3339()),
            text(&now.plus_seconds(hold_seconds).to_rfc3339()),
            number(limit as i64),
        ])?
        .all()
        .await?
        .results::<Due>()?;
    Ok(rows)
}

/// Takes the source for one fetch until `until`; false when another fetch holds it.
pub async fn lease(
    db: &D1Database,
    tenant: &Tenant,
    id: &SourceId,
    now: &str,
    until: &str,
) -> Result<bool, ApiError> {
    let result = db
        .prepare(
            "UPDATE knowledge_sources SET lease_until = ?4 WHERE business_id = ?1 AND id = ?2 \
             AND (lease_until IS NULL OR lease_until <= ?3)",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            text(id.as_str()),
            text(now),
            text(until),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// A fetch that indexed the data: the source is ok, due again after its interval, and free.
pub async fn record_success(
    db: &D1Database,
    tenant: &Tenant,
    source: &Source,
    records: usize,
    changed: bool,
    now: Timestamp,
) -> Result<(), ApiError> {
    let next = source.link.link_type.is_fetchable().then(|| {
        now.plus_seconds(i64::from(source.link.fetch_interval_minutes) * 60)
            .to_rfc3339()
    });
    db.prepare(
        "UPDATE knowledge_sources SET state = 'ok', last_fetched_at = ?3, last_http_status = 200, last_error = NULL, \
         failures = 0, records = ?4, version = version + ?5, \
         next_fetch_at = ?6, lease_until = NULL, updated_at = ?3 WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
        text(tenant.business_id.as_str()),
        text(source.id.as_str()),
        text(&now.to_rfc3339()),
        number(records as i64),
        number(i64::from(changed)),
        optional_text(next.as_deref()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// A fetch that failed: the verdict's state (or the same), error and next time; the source free.
/// (A fetch asked for while this one ran waits in the queue for the lease, so it is not lost.)
pub async fn record_failure(
    db: &D1Database,
    tenant: &Tenant,
    source: &Source,
    verdict: &Verdict,
    now: Timestamp,
) -> Result<(), ApiError> {
    db.prepare(
        "UPDATE knowledge_sources SET state = COALESCE(?3, state), last_fetched_at = ?4, last_http_status = ?5, \
         last_error = ?6, failures = failures + 1, next_fetch_at = ?7, lease_until = NULL, updated_at = ?4 \
         WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
        text(tenant.business_id.as_str()),
        text(source.id.as_str()),
        optional_text(verdict.state.map(State::as_str)),
        text(&now.to_rfc3339()),
        optional_number(verdict.http_status.map(i64::from)),
        text(&verdict.error),
        text(&verdict.next_fetch_at.to_rfc3339()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// Lets go of a source that had nothing to fetch (inactive everywhere, a webhook link nothing was
/// pushed to yet, a database link): no fetch is scheduled until it is activated, pushed to or
/// refreshed.
pub async fn release(db: &D1Database, tenant: &Tenant, id: &SourceId) -> Result<(), ApiError> {
    db.prepare("UPDATE knowledge_sources SET lease_until = NULL, next_fetch_at = NULL WHERE business_id = ?1 AND id = ?2")
        .bind(&[text(tenant.business_id.as_str()), text(id.as_str())])?
        .run()
        .await?;
    Ok(())
}
