//! `knowledge_sources`: the URLs of a business's CRM data, one per page and URL, with their
//! settings, sealed credentials, fetch status and schedule. Written by the CRM links API, the
//! webhook receiver of pushed data, the fetcher and the scheduler's sweep.
//!
//! Credentials (the API key, the custom headers, a webhook link's signing secret) are one JSON
//! object sealed as one value, bound to the source's id, as connectors' secrets are.

use crate::db::{self, Db, Statement, number, optional_number, optional_text, text};
use crate::secrets_key;
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::{BusinessId, SourceId};
use domain::links::document::Numbering;
use domain::links::fetch::{State, Verdict};
use domain::links::link::{Header, Link, LinkSecret, LinkType, PageId};
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A source with its credentials. It never leaves the worker: responses use the masked view of
/// [`Link::view`].
#[derive(Debug, Clone)]
pub struct Source {
    pub id: SourceId,
    pub page_id: PageId,
    /// The settings; `is_active` is whether any channel has it active.
    pub link: Link,
    pub webhook_secret: Option<LinkSecret>,
    pub status: Status,
    /// The run reading the source's data now, if one is.
    pub run: Option<Run>,
    /// A fetch was asked for at this time and has not started yet.
    pub asked_at: Option<String>,
    /// Where the last body pushed to a webhook link is kept.
    pub pushed_key: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A run: one pass over a source's data, page by page, in slices of one invocation each
/// (`knowledge::index`). What it has seen is committed page by page, so it resumes where it
/// stopped.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    /// Where it goes on; None once every page is read and what left the data is being removed.
    pub next: Option<RunNext>,
    /// The slice that goes on next: a queue message for another slice is a stale one.
    pub slice: i64,
    pub started_at: String,
    pub touched_at: Option<String>,
    pub records: i64,
    pub pieces: i64,
    pub embedded: i64,
    pub removed: i64,
    /// Whether the run added or removed anything.
    pub changed: bool,
    pub restarted: bool,
}

/// The next page of a run, and the numbering the pages before left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunNext {
    /// The page's URL; empty for the body pushed to a webhook link.
    pub url: String,
    pub numbering: Numbering,
    /// Pages read before it.
    pub pages: usize,
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
    /// Pieces the last complete run indexed (shown as `chunks`), and how many of them it embedded
    /// and removed.
    #[serde(rename = "chunks")]
    pub pieces: i64,
    pub last_embedded: i64,
    pub last_removed: i64,
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
    pieces: i64,
    last_embedded: i64,
    last_removed: i64,
    asked_at: Option<String>,
    pushed_key: Option<String>,
    run_id: Option<String>,
    run_next: Option<String>,
    run_slice: i64,
    run_started_at: Option<String>,
    run_touched_at: Option<String>,
    run_records: i64,
    run_pieces: i64,
    run_embedded: i64,
    run_removed: i64,
    run_changed: i64,
    run_restarted: i64,
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
        let run = match (self.run_id, self.run_started_at) {
            (Some(id), Some(started_at)) => Some(Run {
                id,
                next: self
                    .run_next
                    .map(|next| serde_json::from_str(&next).map_err(|_| corrupt("run_next")))
                    .transpose()?,
                slice: self.run_slice,
                started_at,
                touched_at: self.run_touched_at,
                records: self.run_records,
                pieces: self.run_pieces,
                embedded: self.run_embedded,
                removed: self.run_removed,
                changed: self.run_changed == 1,
                restarted: self.run_restarted == 1,
            }),
            _ => None,
        };
        Ok(Source {
            run,
            asked_at: self.asked_at,
            pushed_key: self.pushed_key,
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
                pieces: self.pieces,
                last_embedded: self.last_embedded,
                last_removed: self.last_removed,
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
     s.next_fetch_at, s.created_at, s.updated_at, s.pieces, s.last_embedded, s.last_removed, s.asked_at, s.pushed_key, s.run_id, s.run_next, s.run_slice, \
     s.run_started_at, s.run_touched_at, s.run_records, s.run_pieces, s.run_embedded, s.run_removed, s.run_changed, s.run_restarted, \
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
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &SourceId,
) -> Result<Option<Source>, ApiError> {
    let row = db
        .scoped(tenant, format!("{SELECT} WHERE s.business_id = ?1 AND s.id = ?2"))
        .bind(&[text(id.as_str())])?
        .first::<Row>(None)
        .await?;
    match row {
        Some(row) => Ok(Some(row.open(keys).await?)),
        None => Ok(None),
    }
}

pub async fn find_by_url(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    page: &PageId,
    url: &str,
) -> Result<Option<Source>, ApiError> {
    let row = db
        .scoped(
            tenant,
            format!("{SELECT} WHERE s.business_id = ?1 AND s.page_id = ?2 AND s.url = ?3"),
        )
        .bind(&[text(page.as_str()), text(url)])?
        .first::<Row>(None)
        .await?;
    match row {
        Some(row) => Ok(Some(row.open(keys).await?)),
        None => Ok(None),
    }
}

/// The business a source belongs to, for the receiver of pushed data (whose path names only the
/// source; its signature is then checked with the source's own secret).
pub async fn business_of(db: &Db, id: &SourceId) -> Result<Option<BusinessId>, ApiError> {
    #[derive(Deserialize)]
    struct Owner {
        business_id: BusinessId,
    }
    let owner = db
        .unscoped("SELECT business_id FROM knowledge_sources WHERE id = ?1")
        .bind(&[text(id.as_str())])?
        .first::<Owner>(None)
        .await?;
    Ok(owner.map(|owner| owner.business_id))
}

/// The sources of some pages of the business (all of them when `page` is None), oldest first.
pub async fn list(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    page: Option<&PageId>,
) -> Result<Vec<Source>, ApiError> {
    let rows = db
        .scoped(tenant, format!(
            "{SELECT} WHERE s.business_id = ?1 AND (?2 IS NULL OR s.page_id = ?2) ORDER BY s.created_at, s.id"
        ))
        .bind(&[
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
    db: &Db,
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
        .scoped(
            tenant,
            "INSERT INTO knowledge_sources (id, business_id, page_id, url, name, type, description, \
             fetch_interval_minutes, secrets, state, next_fetch_at, created_at, updated_at) \
             VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) ON CONFLICT DO NOTHING",
        )
        .bind(&[
            text(id.as_str()),
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
    db: &Db,
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
    db.scoped(
        tenant,
        "UPDATE knowledge_sources SET name = ?3, type = ?4, description = ?5, fetch_interval_minutes = ?6, \
         secrets = ?7, updated_at = ?8 WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
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
pub async fn reschedule(db: &Db, tenant: &Tenant, id: &SourceId, now: &str) -> Result<bool, ApiError> {
    let results = db
        .batch(vec![
            db.scoped(tenant, "UPDATE knowledge_sources SET next_fetch_at = NULL, updated_at = ?3 \
                 WHERE business_id = ?1 AND id = ?2 AND next_fetch_at IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM knowledge_links WHERE source_id = ?2 AND is_active = 1)",
            )
            .bind(&[text(id.as_str()), text(now)])?,
            db.scoped(tenant, "UPDATE knowledge_sources SET next_fetch_at = ?3, asked_at = COALESCE(asked_at, ?3), updated_at = ?3, \
                 state = CASE WHEN state = 'not_fetched' THEN 'pending' ELSE state END \
                 WHERE business_id = ?1 AND id = ?2 AND next_fetch_at IS NULL AND type IN ('api', 'file', 'webhook') \
                 AND EXISTS (SELECT 1 FROM knowledge_links WHERE source_id = ?2 AND is_active = 1)",
            )
            .bind(&[text(id.as_str()), text(now)])?,
        ])
        .await?;
    Ok(db::changes_at(&results, 1) == 1)
}

/// What asking for a fetch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The source was not asked for yet: the caller hands it to the fetcher.
    New,
    /// A fetch was asked for already and waits in the queue, or a run is reading the data now
    /// (it fetches again when it is done): nothing more to queue.
    Pending,
}

/// Asks for a fetch of the source now (it was added, refreshed or pushed to). Asks made while one
/// is queued or a run is reading are one fetch.
pub async fn ask(db: &Db, tenant: &Tenant, id: &SourceId, now: &str) -> Result<Asked, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        first: i64,
    }
    let row = db
        .scoped(
            tenant,
            "UPDATE knowledge_sources SET next_fetch_at = ?3, asked_at = COALESCE(asked_at, ?3) \
             WHERE business_id = ?1 AND id = ?2 \
             RETURNING (asked_at = ?3 AND run_id IS NULL) AS first",
        )
        .bind(&[text(id.as_str()), text(now)])?
        .first::<Row>(None)
        .await?;
    Ok(match row {
        Some(row) if row.first == 1 => Asked::New,
        _ => Asked::Pending,
    })
}

/// Counts a refresh asked through the API in `hour` (`2026-11-24T09`): false when the link had
/// `max` refreshes in that hour already.
pub async fn take_refresh(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    hour: &str,
    max: i64,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(tenant, "UPDATE knowledge_sources SET refresh_count = CASE WHEN refresh_hour IS ?3 THEN refresh_count + 1 ELSE 1 END, \
             refresh_hour = ?3 WHERE business_id = ?1 AND id = ?2 AND (refresh_hour IS NOT ?3 OR refresh_count < ?4)",
        )
        .bind(&[text(id.as_str()), text(hour), number(max)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// What recording a push found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The newest push so far: its body is the link's data now.
    Accepted,
    /// This push was accepted already (the CRM retried it).
    Repeated,
    /// A newer push was accepted already: this one is an older snapshot, or a replay.
    Stale,
}

/// Records a push signed at `seconds` with id `push_id`, whose body is kept at `key`, unless it
/// repeats the last one or is older than it. The previous body's key, if any, comes back with an
/// accepted push (the caller deletes it).
pub async fn record_push(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    push_id: &str,
    seconds: i64,
    key: &str,
) -> Result<(Pushed, Option<String>), ApiError> {
    #[derive(Deserialize)]
    struct Row {
        pushed_id: Option<String>,
        pushed_at_seconds: Option<i64>,
        pushed_key: Option<String>,
    }
    let current = db
        .scoped(tenant, "SELECT pushed_id, pushed_at_seconds, pushed_key FROM knowledge_sources WHERE business_id = ?1 AND id = ?2")
        .bind(&[text(id.as_str())])?
        .first::<Row>(None)
        .await?
        .ok_or_else(|| ApiError::not_found("no such CRM link"))?;
    if current.pushed_id.as_deref() == Some(push_id) {
        return Ok((Pushed::Repeated, None));
    }
    if current.pushed_at_seconds.is_some_and(|last| seconds < last) {
        return Ok((Pushed::Stale, None));
    }
    let result = db
        .scoped(
            tenant,
            "UPDATE knowledge_sources SET pushed_id = ?3, pushed_at_seconds = ?4, pushed_key = ?5 \
             WHERE business_id = ?1 AND id = ?2 AND pushed_id IS ?6 AND pushed_at_seconds IS ?7",
        )
        .bind(&[
            text(id.as_str()),
            text(push_id),
            number(seconds),
            text(key),
            optional_text(current.pushed_id.as_deref()),
            optional_number(current.pushed_at_seconds),
        ])?
        .run()
        .await?;
    // Another push landed between the read and the write: this one is not the newest.
    if db::changes(&result) == 0 {
        return Ok((Pushed::Stale, None));
    }
    Ok((
        Pushed::Accepted,
        current.pushed_key.filter(|previous| previous != key),
    ))
}

/// Deletes a source with its links and pieces (their vectors are deleted first, by the caller).
pub async fn delete(db: &Db, tenant: &Tenant, id: &SourceId) -> Result<(), ApiError> {
    db.batch(vec![
        db.scoped(
            tenant,
            "DELETE FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2",
        )
        .bind(&[text(id.as_str())])?,
        db.scoped(
            tenant,
            "DELETE FROM knowledge_run_seen WHERE business_id = ?1 AND source_id = ?2",
        )
        .bind(&[text(id.as_str())])?,
        db.scoped(
            tenant,
            "DELETE FROM knowledge_links WHERE business_id = ?1 AND source_id = ?2",
        )
        .bind(&[text(id.as_str())])?,
        db.scoped(
            tenant,
            "DELETE FROM knowledge_sources WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[text(id.as_str())])?,
    ])
    .await?;
    Ok(())
}

/// How many sources the business has, and how many of them are on `page`: the caps of the CRM
/// links API.
pub async fn counts(db: &Db, tenant: &Tenant, page: &PageId) -> Result<(i64, i64), ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business: i64,
        page: i64,
    }
    let row = db
        .scoped(
            tenant,
            "SELECT COUNT(*) AS business, COALESCE(SUM(page_id = ?2), 0) AS page FROM knowledge_sources \
             WHERE business_id = ?1",
        )
        .bind(&[text(page.as_str())])?
        .first::<Row>(None)
        .await?;
    Ok(row.map_or((0, 0), |row| (row.business, row.page)))
}

/// Which slice of which run a queue message continues.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    pub slice: i64,
}

/// A source handed to the fetcher: to start a run (`run` None), or to go on with one.
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Due {
    pub business_id: String,
    pub source_id: SourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Step>,
}

#[derive(Deserialize)]
struct DueRow {
    business_id: String,
    source_id: SourceId,
    run_id: Option<String>,
    run_slice: i64,
}

impl From<DueRow> for Due {
    fn from(row: DueRow) -> Self {
        Self {
            business_id: row.business_id,
            source_id: row.source_id,
            run: row.run_id.map(|id| Step {
                id,
                slice: row.run_slice,
            }),
        }
    }
}

/// Sources whose fetch time has passed, oldest due first: asked for (or, with a run that waits
/// out a failure, its next slice), each pushed `hold_seconds` into the future so that the next
/// sweep does not queue it again while it waits in the queue (the fetcher sets the real next time
/// when it is done). Across businesses: this is the scheduler.
pub async fn take_due(
    db: &Db,
    now: Timestamp,
    limit: usize,
    hold_seconds: i64,
) -> Result<Vec<Due>, ApiError> {
    let rows = db
        .unscoped(
            "UPDATE knowledge_sources SET next_fetch_at = ?2, asked_at = CASE WHEN run_id IS NULL \
             THEN COALESCE(asked_at, ?1) ELSE asked_at END \
             WHERE id IN (SELECT id FROM knowledge_sources \
             WHERE next_fetch_at IS NOT NULL AND next_fetch_at <= ?1 ORDER BY next_fetch_at LIMIT ?3) \
             RETURNING business_id, id AS source_id, run_id, run_slice",
        )
        .bind(&[
            text(&now.to_rfc3339()),
            text(&now.plus_seconds(hold_seconds).to_rfc3339()),
            number(limit as i64),
        ])?
        .all()
        .await?
        .results::<DueRow>()?;
    Ok(rows.into_iter().map(Due::from).collect())
}

/// Runs that stopped moving (their slice's queue message lost, their worker gone): not touched
/// since `before` and not leased. Across businesses: the sweep hands their next slice over.
pub async fn stalled_runs(db: &Db, before: &str, now: &str, limit: usize) -> Result<Vec<Due>, ApiError> {
    let rows = db
        .unscoped(
            "SELECT business_id, id AS source_id, run_id, run_slice FROM knowledge_sources \
             WHERE run_id IS NOT NULL AND run_touched_at < ?1 AND (lease_until IS NULL OR lease_until <= ?2) \
             AND (next_fetch_at IS NULL OR next_fetch_at <= ?2) ORDER BY run_touched_at LIMIT ?3",
        )
        .bind(&[text(before), text(now), number(limit as i64)])?
        .all()
        .await?
        .results::<DueRow>()?;
    Ok(rows.into_iter().map(Due::from).collect())
}

/// Takes the source for one slice until `until`; false when another slice holds it.
pub async fn lease(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    now: &str,
    until: &str,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE knowledge_sources SET lease_until = ?4 WHERE business_id = ?1 AND id = ?2 \
             AND (lease_until IS NULL OR lease_until <= ?3)",
        )
        .bind(&[text(id.as_str()), text(now), text(until)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// Starts a run (the one asked for, or over again) at `first`: what asked for it is taken.
pub fn start_run(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    run: &str,
    first: &RunNext,
    restarted: bool,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "UPDATE knowledge_sources SET run_id = ?3, run_next = ?4, run_slice = 0, run_started_at = ?5, \
             run_touched_at = ?5, run_records = 0, run_pieces = 0, run_embedded = 0, run_removed = 0, run_changed = 0, \
             run_restarted = ?6, asked_at = NULL, next_fetch_at = NULL WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[
            text(id.as_str()),
            text(run),
            text(&serde_json::to_string(first)?),
            text(now),
            number(i64::from(restarted)),
        ])?)
}

/// What one page added to its run.
pub struct PageDone<'a> {
    pub run: &'a str,
    pub next: Option<&'a RunNext>,
    pub records: usize,
    pub pieces: usize,
    pub embedded: usize,
    pub changed: bool,
}

/// The statement that records a page of the run as read: where the run goes on and what it saw.
/// It changes nothing if the run is no longer the source's.
pub fn page_done(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    done: &PageDone<'_>,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "UPDATE knowledge_sources SET run_next = ?4, run_records = run_records + ?5, run_pieces = run_pieces + ?6, \
             run_embedded = run_embedded + ?7, run_changed = MAX(run_changed, ?8), run_touched_at = ?9 \
             WHERE business_id = ?1 AND id = ?2 AND run_id = ?3",
        )
        .bind(&[
            text(id.as_str()),
            text(done.run),
            optional_text(done.next.map(serde_json::to_string).transpose()?.as_deref()),
            number(done.records as i64),
            number(done.pieces as i64),
            number(done.embedded as i64),
            number(i64::from(done.changed)),
            text(now),
        ])?)
}

/// The statement that notes `count` pieces removed at the run's end.
pub fn pieces_removed(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    run: &str,
    count: usize,
    now: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "UPDATE knowledge_sources SET run_changed = 1, run_removed = run_removed + ?5, run_touched_at = ?4 \
             WHERE business_id = ?1 AND id = ?2 AND run_id = ?3",
        )
        .bind(&[
            text(id.as_str()),
            text(run),
            text(now),
            number(count as i64),
        ])?)
}

/// Hands the run's next slice over: true for the one caller that moved it on (the caller queues
/// the slice), and the source free.
pub async fn next_slice(
    db: &Db,
    tenant: &Tenant,
    id: &SourceId,
    step: &Step,
    now: &str,
) -> Result<bool, ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE knowledge_sources SET run_slice = run_slice + 1, run_touched_at = ?5, lease_until = NULL \
             WHERE business_id = ?1 AND id = ?2 AND run_id = ?3 AND run_slice = ?4",
        )
        .bind(&[text(id.as_str()), text(&step.id), number(step.slice), text(now)])?
        .run()
        .await?;
    Ok(db::changes(&result) == 1)
}

/// The statement that ends a run that read every page: the source ok with the run's records and
/// pieces, due again after its interval (at once when a fetch was asked for while it ran), free.
pub fn finish_run(
    db: &Db,
    tenant: &Tenant,
    source: &Source,
    run: &Run,
    now: Timestamp,
) -> Result<Statement, ApiError> {
    let next = source.link.link_type.is_fetchable().then(|| {
        now.plus_seconds(i64::from(source.link.fetch_interval_minutes) * 60)
            .to_rfc3339()
    });
    let now = now.to_rfc3339();
    Ok(db
        .scoped(tenant, "UPDATE knowledge_sources SET state = 'ok', last_fetched_at = ?4, last_http_status = 200, last_error = NULL, \
             failures = 0, records = run_records, pieces = run_pieces, last_embedded = run_embedded, \
             last_removed = run_removed, version = version + run_changed, \
             next_fetch_at = CASE WHEN asked_at IS NOT NULL THEN ?4 ELSE ?5 END, \
             run_id = NULL, run_next = NULL, run_slice = 0, run_started_at = NULL, run_touched_at = NULL, \
             run_records = 0, run_pieces = 0, run_embedded = 0, run_removed = 0, run_changed = 0, run_restarted = 0, \
             lease_until = NULL, updated_at = ?4 \
             WHERE business_id = ?1 AND id = ?2 AND run_id = ?3",
        )
        .bind(&[
            text(source.id.as_str()),
            text(&run.id),
            text(&now),
            optional_text(next.as_deref()),
        ])?)
}

/// A fetch that failed: the verdict's state (or the same), error and next time; the source free.
/// A run `abandoned` ends (what it indexed stays; nothing is removed); otherwise a run goes on
/// from where it stopped at the next time.
pub async fn record_failure(
    db: &Db,
    tenant: &Tenant,
    source: &Source,
    verdict: &Verdict,
    abandoned: bool,
    now: Timestamp,
) -> Result<(), ApiError> {
    let mut statements = vec![
        db.scoped(tenant, "UPDATE knowledge_sources SET state = COALESCE(?3, state), last_fetched_at = ?4, last_http_status = ?5, \
             last_error = ?6, failures = failures + 1, next_fetch_at = ?7, lease_until = NULL, updated_at = ?4, \
             run_id = CASE WHEN ?8 = 1 THEN NULL ELSE run_id END, \
             run_next = CASE WHEN ?8 = 1 THEN NULL ELSE run_next END, \
             run_started_at = CASE WHEN ?8 = 1 THEN NULL ELSE run_started_at END \
             WHERE business_id = ?1 AND id = ?2",
        )
        .bind(&[
            text(source.id.as_str()),
            optional_text(verdict.state.map(State::as_str)),
            text(&now.to_rfc3339()),
            optional_number(verdict.http_status.map(i64::from)),
            text(&verdict.error),
            text(&verdict.next_fetch_at.to_rfc3339()),
            number(i64::from(abandoned)),
        ])?,
    ];
    if abandoned {
        statements.push(db::knowledge_run_seen::clear(db, tenant, &source.id)?);
    }
    db.batch(statements).await?;
    Ok(())
}

/// Lets go of a source that had nothing to fetch (inactive everywhere, a webhook link nothing was
/// pushed to yet, a database link): its run, if one started, ends unread, and no fetch is
/// scheduled until it is activated, pushed to or refreshed.
pub async fn release(db: &Db, tenant: &Tenant, id: &SourceId) -> Result<(), ApiError> {
    db.scoped(tenant, "UPDATE knowledge_sources SET lease_until = NULL, next_fetch_at = NULL, asked_at = NULL, run_id = NULL, \
         run_next = NULL WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[text(id.as_str())])?
    .run()
    .await?;
    Ok(())
}

/// Lets go of a source without changing its schedule (a stale queue message found it).
pub async fn unlease(db: &Db, tenant: &Tenant, id: &SourceId) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "UPDATE knowledge_sources SET lease_until = NULL WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[text(id.as_str())])?
    .run()
    .await?;
    Ok(())
}
