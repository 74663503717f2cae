//! `knowledge_sources`: the URLs of a business's CRM data, one per page and URL, with their
//! settings, sealed credentials, fetch status and schedule. Written by the CRM links API, the
//! webhook receiver of pushed data, the fetcher and the scheduler's sweep.
//!
//! Credentials (the API key, the custom headers, a webhook link's signing secret) are one JSON
//! object sealed as one value, bound to the source's id, as connectors' secrets are.

use crate::db::Read;
use crate::db::directory::Moving;
use crate::db::{self, Db, Statement, number, optional_number, optional_text, text};
use crate::platform::secrets_key;
use crate::runtime::D1Result;
use domain::alerts::{self, Measure};
use domain::bot::subject::Holds;
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::{BusinessId, SourceId};
use domain::links::document::Numbering;
use domain::links::fetch::{State, Verdict};
use domain::links::identifiers::HoldsCheck;
use domain::links::link::{Header, Link, LinkSecret, LinkType, PageId, join_credentials, split_credentials};
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
    /// For a link of unstated holds: whether its data was seen to name customers.
    pub holds_check: HoldsCheck,
    /// Its row holds a secret in clear (a URL's credentials from before they were sealed) or
    /// sealed under a retired key: what its row holds, to write it again sealed.
    stored: Option<(String, String)>,
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
    /// Records of a customers link it left out for having no readable key.
    pub without_key: i64,
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
    /// Its pieces indexed already: a page of more pieces than a step handles is indexed over
    /// several steps, each committed with where the next goes on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: usize,
    /// The page the run keeps for its loop check (`domain::links::fetch::follow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<String>,
}

fn is_zero(offset: &usize) -> bool {
    *offset == 0
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
    /// Records of a customers link the last complete run left out for having no readable key:
    /// no customer's, so never searched.
    pub without_key: i64,
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
    /// The URL's credential query parameters (`api_token`, …), name and value in order: the
    /// stored URL holds them masked (`domain::links::link::split_credentials`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    url_credentials: Vec<(String, String)>,
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
    holds: Option<String>,
    holds_check: Option<String>,
    without_key: i64,
    run_id: Option<String>,
    run_next: Option<String>,
    run_slice: i64,
    run_started_at: Option<String>,
    run_touched_at: Option<String>,
    run_records: i64,
    run_without_key: i64,
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
        // A URL stored with its credentials in clear (before they were sealed) is the URL; one
        // stored masked takes them back from the sealed secrets.
        let (_, clear) = split_credentials(&self.url);
        let needs_sealing = !clear.is_empty() || opened.needs_resealing;
        let url = if clear.is_empty() {
            join_credentials(&self.url, &secrets.url_credentials)
        } else {
            self.url.clone()
        };
        // Stored URLs passed the destination rule when they were added; loopback is allowed here
        // only so that a local stack's own rows read back (the rule is applied on every fetch).
        let url = Destination::parse("url", &url, true).map_err(|_| corrupt("url"))?;
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
                without_key: self.run_without_key,
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
            holds_check: HoldsCheck::from_stored(self.holds_check.as_deref()),
            stored: needs_sealing.then(|| (self.url.clone(), self.secrets.clone())),
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
                holds: Holds::from_stored(self.holds.as_deref()).ok_or_else(|| corrupt("holds"))?,
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
                without_key: self.without_key,
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
     s.next_fetch_at, s.created_at, s.updated_at, s.pieces, s.last_embedded, s.last_removed, s.asked_at, s.pushed_key, s.holds, s.holds_check, s.without_key, s.run_id, s.run_next, s.run_slice, \
     s.run_started_at, s.run_touched_at, s.run_records, s.run_without_key, s.run_pieces, s.run_embedded, s.run_removed, s.run_changed, s.run_restarted, \
     EXISTS (SELECT 1 FROM knowledge_links l WHERE l.source_id = s.id AND l.is_active = 1) AS active \
     FROM knowledge_sources s";

/// Opens the rows read, writing again sealed those that hold a secret in clear or under a
/// retired key (a compare-and-set on what was read: a concurrent change wins).
async fn open_all(db: &Db, keys: &Keyring, tenant: &Tenant, rows: Vec<Row>) -> Result<Vec<Source>, ApiError> {
    let mut sources = Vec::with_capacity(rows.len());
    for row in rows {
        sources.push(row.open(keys).await?);
    }
    let mut statements = Vec::new();
    for source in &sources {
        let Some((url, secrets)) = &source.stored else {
            continue;
        };
        let fields = Fields {
            link: &source.link,
            state: source.status.state,
            next_fetch_at: None,
            webhook_secret: source.webhook_secret.as_ref(),
        };
        let sealed = sealed(keys, &source.id, &fields).await?;
        statements.push(
            db.scoped(
                tenant,
                "UPDATE knowledge_sources SET url = ?3, secrets = ?4 WHERE business_id = ?1 AND id = ?2 \
                 AND url = ?5 AND secrets = ?6",
            )
            .bind(&[
                text(source.id.as_str()),
                text(&stored_url(&source.link)),
                text(&sealed),
                text(url),
                text(secrets),
            ])?,
        );
    }
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(sources)
}

/// A link's URL as it is stored: its credentials masked (they are sealed with its secrets).
fn stored_url(link: &Link) -> String {
    split_credentials(link.url.as_str()).0
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
    Ok(open_all(db, keys, tenant, row.into_iter().collect()).await?.pop())
}

/// The page's source of `url`, credentials and all: the URL a view shows, its credentials
/// masked, names no link (which of the links behind it would be ambiguous); their ids do.
pub async fn find_by_url(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    page: &PageId,
    url: &str,
) -> Result<Option<Source>, ApiError> {
    // Stored masked (or, before credentials were sealed, in clear): its row is among those found
    // by the two, whose opened URL is the one given (links may differ in credentials alone).
    let rows = db
        .scoped(
            tenant,
            format!("{SELECT} WHERE s.business_id = ?1 AND s.page_id = ?2 AND s.url IN (?3, ?4)"),
        )
        .bind(&[text(page.as_str()), text(&split_credentials(url).0), text(url)])?
        .all()
        .await?
        .results::<Row>()?;
    let found = open_all(db, keys, tenant, rows).await?;
    Ok(found.into_iter().find(|source| source.link.url.as_str() == url))
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
    open_all(db, keys, tenant, rows).await
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
        url_credentials: split_credentials(fields.link.url.as_str()).1,
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
    let unbounded = Caps {
        of_business: i64::MAX,
        of_page: i64::MAX,
    };
    insert_within(db, keys, tenant, id, page, fields, now, unbounded).await
}

/// The most sources a business, and one of its pages, may have.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub of_business: i64,
    pub of_page: i64,
}

/// Inserts the source when its URL is new on the page and the business and the page are under
/// their `caps`, counted in the same statement, so that adds at once cannot pass them together.
/// false: the URL is taken or a cap is reached ([`counts`] tells which).
#[allow(clippy::too_many_arguments)]
pub async fn insert_within(
    db: &Db,
    keys: &Keyring,
    tenant: &Tenant,
    id: &SourceId,
    page: &PageId,
    fields: &Fields<'_>,
    now: &str,
    caps: Caps,
) -> Result<bool, ApiError> {
    let secrets = sealed(keys, id, fields).await?;
    let link = fields.link;
    let inserted = db
        .scoped(
            tenant,
            "INSERT INTO knowledge_sources (id, business_id, page_id, url, name, type, description, \
             fetch_interval_minutes, secrets, state, next_fetch_at, created_at, updated_at, holds) \
             SELECT ?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?15 \
             WHERE (SELECT COUNT(*) FROM knowledge_sources WHERE business_id = ?1) < ?13 \
             AND (SELECT COUNT(*) FROM knowledge_sources WHERE business_id = ?1 AND page_id = ?3) < ?14 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&[
            text(id.as_str()),
            text(page.as_str()),
            text(&stored_url(link)),
            text(&link.name),
            text(link.link_type.as_str()),
            optional_text(link.description.as_deref()),
            number(i64::from(link.fetch_interval_minutes)),
            text(&secrets),
            text(fields.state.as_str()),
            optional_text(fields.next_fetch_at),
            text(now),
            number(caps.of_business),
            number(caps.of_page),
            optional_text(link.holds.stored().as_deref()),
        ])?
        .run()
        .await?;
    Ok(db::changes(&inserted) == 1)
}

/// New settings for a source the page has (a POST that adds channels to its URL, or a PATCH,
/// which may change its URL too). The webhook secret stays the one it was given. What the link holds changes with them: the caller asks a
/// fetch when it did, so that its pieces are indexed again with their new subjects.
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
         secrets = ?7, updated_at = ?8, holds = ?9, url = ?10 WHERE business_id = ?1 AND id = ?2",
    )
    .bind(&[
        text(source.id.as_str()),
        text(&link.name),
        text(link.link_type.as_str()),
        optional_text(link.description.as_deref()),
        number(i64::from(link.fetch_interval_minutes)),
        text(&secrets),
        text(now),
        optional_text(link.holds.stored().as_deref()),
        text(&stored_url(link)),
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
    let changed = db::write_together(
        db,
        vec![
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
        ],
    )
    .await?;
    Ok(changed.get(1) == Some(&1))
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

/// Deletes a source with its links, pieces and call minutes (their vectors are deleted first, by
/// the caller).
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
        crate::db::crm_call_minutes::forget(db, tenant, id.as_str())?,
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

impl Due {
    /// A new run of the tenant's source `id`, asked for now.
    pub fn asked(tenant: &Tenant, id: &SourceId) -> Self {
        Self {
            business_id: tenant.business_id.to_string(),
            source_id: id.clone(),
            run: None,
        }
    }
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
    moving: &Moving,
    now: Timestamp,
    limit: usize,
    hold_seconds: i64,
) -> Result<Vec<Due>, ApiError> {
    let rows = db
        .unscoped(
            "UPDATE knowledge_sources SET next_fetch_at = ?2, asked_at = CASE WHEN run_id IS NULL \
             THEN COALESCE(asked_at, ?1) ELSE asked_at END \
             WHERE id IN (SELECT id FROM knowledge_sources \
             WHERE next_fetch_at IS NOT NULL AND next_fetch_at <= ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?4)) ORDER BY next_fetch_at LIMIT ?3) \
             RETURNING business_id, id AS source_id, run_id, run_slice",
        )
        .bind(&[
            text(&now.to_rfc3339()),
            text(&now.plus_seconds(hold_seconds).to_rfc3339()),
            number(limit as i64),
            moving.param(),
        ])?
        .all()
        .await?
        .results::<DueRow>()?;
    Ok(rows.into_iter().map(Due::from).collect())
}

/// Runs that stopped moving (their slice's queue message lost, their worker gone): not touched
/// since `before` and not leased. Across businesses: the sweep hands their next slice over.
pub async fn stalled_runs(
    db: &Db,
    moving: &Moving,
    before: &str,
    now: &str,
    limit: usize,
) -> Result<Vec<Due>, ApiError> {
    let rows = db
        .unscoped(
            "SELECT business_id, id AS source_id, run_id, run_slice FROM knowledge_sources \
             WHERE run_id IS NOT NULL AND run_touched_at < ?1 AND (lease_until IS NULL OR lease_until <= ?2) \
             AND (next_fetch_at IS NULL OR next_fetch_at <= ?2) \
             AND business_id NOT IN (SELECT value FROM json_each(?4)) ORDER BY run_touched_at LIMIT ?3",
        )
        .bind(&[text(before), text(now), number(limit as i64), moving.param()])?
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
             run_touched_at = ?5, run_records = 0, run_without_key = 0, run_pieces = 0, run_tokens = 0, run_embedded = 0, run_removed = 0, \
             run_changed = 0, run_restarted = ?6, asked_at = NULL, next_fetch_at = NULL WHERE business_id = ?1 AND id = ?2",
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
    /// Records of a customers link left out for having no readable key.
    pub without_key: usize,
    pub pieces: usize,
    /// The words of those pieces (their keyword index's length).
    pub tokens: usize,
    pub embedded: usize,
    pub changed: bool,
    /// A link of unstated holds whose page names customers: the check it keeps from now on
    /// (its data is nobody's knowledge until the business says whose it is).
    pub names_customers: Option<&'a HoldsCheck>,
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
             run_embedded = run_embedded + ?7, run_changed = MAX(run_changed, ?8), run_touched_at = ?9, \
             run_tokens = run_tokens + ?10, run_without_key = run_without_key + ?11, \
             holds_check = CASE WHEN holds IS NULL AND ?12 IS NOT NULL THEN ?12 ELSE holds_check END \
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
            number(done.tokens as i64),
            number(done.without_key as i64),
            optional_text(done.names_customers.and_then(HoldsCheck::stored).as_deref()),
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
             failures = 0, records = run_records, without_key = run_without_key, pieces = run_pieces, tokens = run_tokens, last_embedded = run_embedded, \
             last_removed = run_removed, version = version + run_changed, \
             next_fetch_at = CASE WHEN asked_at IS NOT NULL THEN ?4 ELSE ?5 END, \
             run_id = NULL, run_next = NULL, run_slice = 0, run_started_at = NULL, run_touched_at = NULL, \
             run_records = 0, run_without_key = 0, run_pieces = 0, run_tokens = 0, run_embedded = 0, run_removed = 0, \
             run_changed = 0, run_restarted = 0, lease_until = NULL, updated_at = ?4, \
             holds_check = CASE WHEN holds IS NULL AND holds_check IS NULL THEN 'clean' ELSE holds_check END \
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

/// The statement reading the shard's CRM links whose fetches are failing, as the "link failing"
/// rule measures them (`domain::alerts`): fetches failed in a row. At most `limit`, businesses
/// being moved left out.
pub fn alert_measures(db: &Db, moving: &Moving, limit: usize) -> Result<Read<Vec<Measure>>, ApiError> {
    Ok(Read::new(db
        .unscoped(
            // `state = 'failing'` as the partial index knowledge_sources_failing names it.
            "SELECT business_id, id, name, failures FROM knowledge_sources WHERE state = 'failing' AND failures > 0 \
             AND business_id NOT IN (SELECT value FROM json_each(?1)) ORDER BY business_id, id LIMIT ?2",
        )
        .bind(&[moving.param(), number(limit as i64)])?, read_alert_measures))
}

/// The measures the statement of [`alert_measures`] read.
fn read_alert_measures(answer: &D1Result) -> Result<Vec<Measure>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        business_id: BusinessId,
        id: String,
        name: String,
        failures: i64,
    }
    Ok(db::rows::<Row>(answer)?
        .into_iter()
        .map(|row| alerts::link_measure(row.business_id, row.id, row.name, row.failures))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{knowledge_chunks, knowledge_links, knowledge_run_seen};
    use crate::testing::{Fixture, Must, link, page};
    use domain::links::link::LinkChannel;
    use std::time::Duration;

    const URL: &str = "https://crm.example.com/customers";

    #[test]
    fn an_insert_past_the_businesss_or_the_pages_cap_is_refused_in_the_same_statement() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let now = fixture.now().to_rfc3339();
            let caps = Caps {
                of_business: 3,
                of_page: 2,
            };
            let add = |page_id: &'static str, n: usize| {
                let (fixture, tenant, now) = (&fixture, &tenant, &now);
                async move {
                    let link = link("Customers", &format!("{URL}?n={n}"), LinkType::Api);
                    let fields = Fields {
                        link: &link,
                        state: State::Pending,
                        next_fetch_at: None,
                        webhook_secret: None,
                    };
                    let id = SourceId::generate(crate::testing::random());
                    insert_within(
                        &fixture.db,
                        &fixture.keys(),
                        tenant,
                        &id,
                        &page(page_id),
                        &fields,
                        now,
                        caps,
                    )
                    .await
                    .must()
                }
            };
            let added = [
                add("101", 1).await,
                add("101", 2).await,
                add("101", 3).await,
                add("202", 4).await,
                add("202", 5).await,
            ];
            assert_eq!(
                added,
                [true, true, false, true, false],
                "two on the first page, its third refused; the second page's first fills the business"
            );
            assert_eq!(counts(&fixture.db, &tenant, &page("101")).await.must(), (3, 2));
        });
    }

    async fn one(fixture: &Fixture, tenant: &Tenant, id: &SourceId) -> Source {
        find(&fixture.db, &fixture.keys(), tenant, id)
            .await
            .must()
            .unwrap_or_else(|| panic!("source {id}"))
    }

    async fn api_source(fixture: &Fixture, tenant: &Tenant) -> SourceId {
        fixture
            .source(
                tenant,
                &page("1001"),
                &link("Customers", URL, LinkType::Api),
                &[LinkChannel::Messenger],
            )
            .await
    }

    fn first_page() -> RunNext {
        RunNext {
            url: URL.to_owned(),
            numbering: Numbering::default(),
            pages: 0,
            offset: 0,
            mark: None,
        }
    }

    /// Runs statements in one batch.
    async fn batch(fixture: &Fixture, statements: Vec<Statement>) {
        fixture.db.batch(statements).await.must();
    }

    async fn start(fixture: &Fixture, tenant: &Tenant, id: &SourceId, run: &str) {
        let now = fixture.now().to_rfc3339();
        batch(
            fixture,
            vec![start_run(&fixture.db, tenant, id, run, &first_page(), false, &now).must()],
        )
        .await;
    }

    #[test]
    fn a_source_reads_back_as_written_and_its_credentials_are_sealed() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let id = api_source(&fixture, &acme).await;
            let source = one(&fixture, &acme, &id).await;
            let now = fixture.now().to_rfc3339();
            assert_eq!(
                (
                    source.link.name.as_str(),
                    source.link.url.as_str(),
                    source.link.link_type
                ),
                ("Customers", URL, LinkType::Api)
            );
            assert_eq!(
                source.link.api_key.as_ref().map(LinkSecret::expose),
                Some("link-api-key")
            );
            let headers: Vec<(&str, &str)> = source
                .link
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.expose()))
                .collect();
            assert_eq!(headers, [("X-Tenant", "header-secret")]);
            assert_eq!(
                (source.link.is_active, source.link.fetch_interval_minutes),
                (true, 60)
            );
            assert_eq!(
                (source.status.state, source.status.next_fetch_at.as_deref()),
                (State::Pending, Some(now.as_str()))
            );
            assert_eq!((source.version, source.page_id.as_str()), (0, "1001"));
            assert!(source.run.is_none() && source.asked_at.is_none());
            let stored = fixture.rows("knowledge_sources", "id")[0]["secrets"].clone();
            assert!(
                stored
                    .as_str()
                    .is_some_and(|s| s.starts_with("v1:") && !s.contains("link-api-key")),
                "{stored}"
            );

            let keys = fixture.keys();
            let by_url = find_by_url(&fixture.db, &keys, &acme, &page("1001"), URL)
                .await
                .must()
                .map(|s| s.id);
            assert_eq!(by_url, Some(id.clone()));
            assert_eq!(
                business_of(&fixture.db, &id).await.must(),
                Some(acme.business_id.clone()),
                "on any shard"
            );
            let ids = |sources: Vec<Source>| sources.into_iter().map(|s| s.id).collect::<Vec<_>>();
            assert_eq!(
                ids(list(&fixture.db, &keys, &acme, None).await.must()),
                std::slice::from_ref(&id)
            );
            assert_eq!(
                ids(list(&fixture.db, &keys, &acme, Some(&page("1001"))).await.must()),
                std::slice::from_ref(&id)
            );
            assert!(
                list(&fixture.db, &keys, &acme, Some(&page("2002")))
                    .await
                    .must()
                    .is_empty()
            );
            assert_eq!(counts(&fixture.db, &acme, &page("1001")).await.must(), (1, 1));
            assert_eq!(counts(&fixture.db, &acme, &page("2002")).await.must(), (1, 0));

            let fields = Fields {
                link: &link("Again", URL, LinkType::File),
                state: State::Pending,
                next_fetch_at: None,
                webhook_secret: None,
            };
            let twice = insert(
                &fixture.db,
                &keys,
                &acme,
                &SourceId::generate(crate::testing::random()),
                &page("1001"),
                &fields,
                &now,
            )
            .await
            .must();
            assert!(!twice, "the page has that URL already");
            let elsewhere = insert(
                &fixture.db,
                &keys,
                &acme,
                &SourceId::generate(crate::testing::random()),
                &page("2002"),
                &fields,
                &now,
            )
            .await
            .must();
            assert!(elsewhere, "another page may");
        });
    }

    #[test]
    fn another_business_neither_finds_nor_changes_a_source() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let id = api_source(&fixture, &acme).await;
            let keys = fixture.keys();
            let now = fixture.now().to_rfc3339();
            assert!(find(&fixture.db, &keys, &globex, &id).await.must().is_none());
            assert!(
                find_by_url(&fixture.db, &keys, &globex, &page("1001"), URL)
                    .await
                    .must()
                    .is_none()
            );
            assert!(list(&fixture.db, &keys, &globex, None).await.must().is_empty());
            assert_eq!(counts(&fixture.db, &globex, &page("1001")).await.must(), (0, 0));
            assert!(!lease(&fixture.db, &globex, &id, &now, &now).await.must());
            assert!(
                !take_refresh(&fixture.db, &globex, &id, "2026-11-26T12", 5)
                    .await
                    .must()
            );
            let pushed = record_push(&fixture.db, &globex, &id, "push-1", 100, "k").await;
            assert_eq!(pushed.err().map(|error| error.status()), Some(404));
            assert!(
                !next_slice(
                    &fixture.db,
                    &globex,
                    &id,
                    &Step {
                        id: "r".to_owned(),
                        slice: 0
                    },
                    &now
                )
                .await
                .must()
            );
            let source = one(&fixture, &acme, &id).await;
            update_settings(
                &fixture.db,
                &keys,
                &globex,
                &source,
                &link("Taken", URL, LinkType::File),
                &now,
            )
            .await
            .must();
            release(&fixture.db, &globex, &id).await.must();
            delete(&fixture.db, &globex, &id).await.must();
            let kept = one(&fixture, &acme, &id).await;
            assert_eq!(
                (kept.link.name.as_str(), kept.status.next_fetch_at.is_some()),
                ("Customers", true)
            );
            assert_eq!(fixture.rows("knowledge_links", "channel").len(), 1);
        });
    }

    #[test]
    fn the_schedule_follows_whether_any_channel_has_the_source_active() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            let now = || fixture.now().to_rfc3339();
            knowledge_links::set_active(&fixture.db, &acme, &id, &[LinkChannel::Messenger], false, &now())
                .await
                .must();
            assert!(!reschedule(&fixture.db, &acme, &id, &now()).await.must());
            let idle = one(&fixture, &acme, &id).await;
            assert_eq!((idle.status.next_fetch_at, idle.link.is_active), (None, false));
            fixture.stack.advance(Duration::from_secs(5));
            knowledge_links::set_active(&fixture.db, &acme, &id, &[LinkChannel::Messenger], true, &now())
                .await
                .must();
            assert!(
                reschedule(&fixture.db, &acme, &id, &now()).await.must(),
                "due now"
            );
            assert!(
                !reschedule(&fixture.db, &acme, &id, &now()).await.must(),
                "scheduled already"
            );
            let due = one(&fixture, &acme, &id).await;
            assert_eq!(
                (due.status.next_fetch_at.clone(), due.asked_at.clone()),
                (Some(now()), Some(now()))
            );

            // A database link is never fetched; a webhook link not fetched yet waits for its data.
            let keys = fixture.keys();
            for (url, link_type, due) in [
                ("https://db.example.com/x", LinkType::Database, false),
                ("https://hook.example.com/x", LinkType::Webhook, true),
            ] {
                let other = SourceId::generate(crate::testing::random());
                let link = link("Other", url, link_type);
                let fields = Fields {
                    link: &link,
                    state: State::NotFetched,
                    next_fetch_at: None,
                    webhook_secret: None,
                };
                insert(&fixture.db, &keys, &acme, &other, &page("1001"), &fields, &now())
                    .await
                    .must();
                knowledge_links::insert(
                    &fixture.db,
                    &acme,
                    &other,
                    &page("1001"),
                    &[LinkChannel::Whatsapp],
                    true,
                    &now(),
                )
                .await
                .must();
                assert_eq!(
                    reschedule(&fixture.db, &acme, &other, &now()).await.must(),
                    due,
                    "{url}"
                );
                let state = one(&fixture, &acme, &other).await.status.state;
                assert_eq!(
                    state,
                    if due { State::Pending } else { State::NotFetched },
                    "{url}"
                );
            }
        });
    }

    #[test]
    fn asks_made_while_a_fetch_is_queued_or_running_are_one_fetch() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            let now = || fixture.now().to_rfc3339();
            assert_eq!(ask(&fixture.db, &acme, &id, &now()).await.must(), Asked::New);
            fixture.stack.advance(Duration::from_secs(1));
            assert_eq!(
                ask(&fixture.db, &acme, &id, &now()).await.must(),
                Asked::Pending,
                "one is queued"
            );
            start(&fixture, &acme, &id, "run-1").await;
            fixture.stack.advance(Duration::from_secs(1));
            assert_eq!(
                ask(&fixture.db, &acme, &id, &now()).await.must(),
                Asked::Pending,
                "a run is reading"
            );
            let asked = now();
            let source = one(&fixture, &acme, &id).await;
            let run = source.run.clone().unwrap_or_else(|| panic!("running"));
            fixture.stack.advance(Duration::from_secs(10));
            batch(
                &fixture,
                vec![finish_run(&fixture.db, &acme, &source, &run, fixture.now()).must()],
            )
            .await;
            let done = one(&fixture, &acme, &id).await;
            assert_eq!(
                done.status.next_fetch_at,
                Some(now()),
                "asked while it ran: due again at once"
            );
            assert_eq!(done.asked_at, Some(asked));
            assert_eq!(ask(&fixture.db, &acme, &id, &now()).await.must(), Asked::Pending);
        });
    }

    #[test]
    fn refreshes_asked_through_the_api_are_counted_per_hour() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            let take = |hour: &'static str| take_refresh(&fixture.db, &acme, &id, hour, 2);
            assert!(take("2026-11-26T12").await.must());
            assert!(take("2026-11-26T12").await.must());
            assert!(!take("2026-11-26T12").await.must(), "two an hour");
            assert!(take("2026-11-26T13").await.must(), "a new hour");
            assert!(take("2026-11-26T13").await.must());
            assert!(!take("2026-11-26T13").await.must());
        });
    }

    #[test]
    fn a_push_is_accepted_once_and_never_behind_the_newest() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("Pushed", "https://hook.example.com/x", LinkType::Webhook),
                    &[LinkChannel::Messenger],
                )
                .await;
            let push = |push_id: &'static str, seconds: i64, key: &'static str| {
                record_push(&fixture.db, &acme, &id, push_id, seconds, key)
            };
            let cases = [
                ("the first push", "p1", 100, "k1", Pushed::Accepted, None),
                ("the same push again", "p1", 100, "k1", Pushed::Repeated, None),
                ("an older snapshot", "p0", 90, "k0", Pushed::Stale, None),
                ("a newer push", "p2", 100, "k2", Pushed::Accepted, Some("k1")),
                (
                    "a newer push kept at the same key",
                    "p3",
                    200,
                    "k2",
                    Pushed::Accepted,
                    None,
                ),
            ];
            for (description, push_id, seconds, key, expected, previous) in cases {
                let (outcome, old) = push(push_id, seconds, key).await.must();
                assert_eq!((outcome, old.as_deref()), (expected, previous), "{description}");
            }
            let row = &fixture.rows("knowledge_sources", "id")[0];
            assert_eq!(
                (
                    row["pushed_id"].as_str(),
                    row["pushed_at_seconds"].as_i64(),
                    row["pushed_key"].as_str()
                ),
                (Some("p3"), Some(200), Some("k2"))
            );
            assert_eq!(one(&fixture, &acme, &id).await.pushed_key.as_deref(), Some("k2"));
        });
    }

    #[test]
    fn the_scheduler_takes_each_shards_due_sources_and_holds_them_while_they_wait() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let ours = api_source(&fixture, &acme).await;
            let theirs = api_source(&fixture, &globex).await;
            let waiting = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("Other", "https://crm.example.com/other", LinkType::Api),
                    &[LinkChannel::Whatsapp],
                )
                .await;
            start(&fixture, &acme, &waiting, "run-w").await;
            let failed = Verdict {
                state: None,
                http_status: Some(503),
                error: "busy".to_owned(),
                next_fetch_at: fixture.now().plus_seconds(30),
            };
            let source = one(&fixture, &acme, &waiting).await;
            record_failure(&fixture.db, &acme, &source, &failed, false, fixture.now())
                .await
                .must();
            let shards = fixture.db.each_shard();
            let now = fixture.now();
            let due = take_due(&shards[0], &Moving::NONE, now, 10, 300).await.must();
            let found: Vec<(String, SourceId, Option<Step>)> = due
                .into_iter()
                .map(|d| (d.business_id, d.source_id, d.run))
                .collect();
            assert_eq!(
                found,
                [(acme.business_id.to_string(), ours.clone(), None)],
                "the waiting run is not due for 30 s"
            );
            let held = one(&fixture, &acme, &ours).await;
            assert_eq!(
                (held.status.next_fetch_at, held.asked_at),
                (Some(now.plus_seconds(300).to_rfc3339()), Some(now.to_rfc3339()))
            );
            assert!(
                take_due(&shards[0], &Moving::NONE, now, 10, 300)
                    .await
                    .must()
                    .is_empty(),
                "held while it waits in the queue"
            );
            assert_eq!(
                take_due(&shards[1], &Moving::NONE, now, 10, 300)
                    .await
                    .must()
                    .into_iter()
                    .map(|d| d.source_id)
                    .collect::<Vec<_>>(),
                [theirs]
            );

            fixture.stack.advance(Duration::from_secs(30));
            let due = take_due(&shards[0], &Moving::NONE, fixture.now(), 10, 300)
                .await
                .must();
            let found: Vec<(SourceId, Option<Step>)> =
                due.into_iter().map(|d| (d.source_id, d.run)).collect();
            assert_eq!(
                found,
                [(
                    waiting.clone(),
                    Some(Step {
                        id: "run-w".to_owned(),
                        slice: 0
                    })
                )],
                "its next slice"
            );
            assert_eq!(
                one(&fixture, &acme, &waiting).await.asked_at,
                None,
                "a run's slice is no new ask"
            );
            fixture.stack.advance(Duration::from_secs(300));
            assert_eq!(
                take_due(&shards[0], &Moving::NONE, fixture.now(), 1, 300)
                    .await
                    .must()
                    .len(),
                1,
                "the limit"
            );
        });
    }

    /// Leases the source now for a minute.
    async fn take_lease(fixture: &Fixture, tenant: &Tenant, id: &SourceId) -> Result<bool, ApiError> {
        let now = fixture.now();
        lease(
            &fixture.db,
            tenant,
            id,
            &now.to_rfc3339(),
            &now.plus_seconds(60).to_rfc3339(),
        )
        .await
    }

    #[test]
    fn a_source_is_leased_by_one_slice_at_a_time() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            let take = || take_lease(&fixture, &acme, &id);
            assert!(take().await.must());
            assert!(!take().await.must(), "held");
            fixture.stack.advance(Duration::from_secs(59));
            assert!(!take().await.must());
            fixture.stack.advance(Duration::from_secs(1));
            assert!(take().await.must(), "the lease ran out");
            unlease(&fixture.db, &acme, &id).await.must();
            assert!(take().await.must(), "let go");
            assert!(
                one(&fixture, &acme, &id).await.status.next_fetch_at.is_some(),
                "unlease keeps the schedule"
            );
        });
    }

    /// What one page of ten records added: twelve pieces, seven of them new.
    fn done<'a>(run: &'a str, next: Option<&'a RunNext>) -> PageDone<'a> {
        PageDone {
            run,
            next,
            records: 10,
            without_key: 0,
            pieces: 12,
            tokens: 60,
            embedded: 7,
            changed: true,
            names_customers: None,
        }
    }

    #[test]
    fn a_run_goes_on_page_by_page_and_its_end_publishes_what_it_counted() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            let now = || fixture.now().to_rfc3339();
            ask(&fixture.db, &acme, &id, &now()).await.must();
            start(&fixture, &acme, &id, "run-1").await;
            let started = one(&fixture, &acme, &id).await;
            let run = started.run.clone().unwrap_or_else(|| panic!("a run"));
            assert_eq!(
                (run.id.as_str(), run.slice, run.records, run.restarted),
                ("run-1", 0, 0, false)
            );
            assert_eq!(run.next.as_ref().map(|next| next.url.as_str()), Some(URL));
            assert_eq!(
                (started.asked_at, started.status.next_fetch_at),
                (None, None),
                "what asked for it is taken"
            );

            let page_two = RunNext {
                url: format!("{URL}?page=2"),
                numbering: Numbering::default(),
                pages: 1,
                offset: 0,
                mark: None,
            };
            let page_two = &page_two;
            batch(
                &fixture,
                vec![page_done(&fixture.db, &acme, &id, &done("run-0", None), &now()).must()],
            )
            .await;
            batch(
                &fixture,
                vec![page_done(&fixture.db, &acme, &id, &done("run-1", Some(page_two)), &now()).must()],
            )
            .await;
            let step = Step {
                id: "run-1".to_owned(),
                slice: 0,
            };
            assert!(next_slice(&fixture.db, &acme, &id, &step, &now()).await.must());
            assert!(
                !next_slice(&fixture.db, &acme, &id, &step, &now()).await.must(),
                "handed over once"
            );
            batch(
                &fixture,
                vec![page_done(&fixture.db, &acme, &id, &done("run-1", None), &now()).must()],
            )
            .await;
            batch(
                &fixture,
                vec![pieces_removed(&fixture.db, &acme, &id, "run-1", 3, &now()).must()],
            )
            .await;
            let source = one(&fixture, &acme, &id).await;
            let run = source.run.clone().unwrap_or_else(|| panic!("a run"));
            assert_eq!(
                (
                    run.slice,
                    run.records,
                    run.pieces,
                    run.embedded,
                    run.removed,
                    run.changed
                ),
                (1, 20, 24, 14, 3, true)
            );
            assert!(run.next.is_none(), "every page read");

            fixture.stack.advance(Duration::from_secs(30));
            let finished_at = fixture.now();
            batch(
                &fixture,
                vec![finish_run(&fixture.db, &acme, &source, &run, finished_at).must()],
            )
            .await;
            let ended = one(&fixture, &acme, &id).await;
            assert!(ended.run.is_none());
            assert_eq!(
                (ended.status.state, ended.status.records, ended.status.pieces),
                (State::Ok, 20, 24)
            );
            assert_eq!(
                (
                    ended.status.last_embedded,
                    ended.status.last_removed,
                    ended.version
                ),
                (14, 3, 1)
            );
            let row = fixture.rows("knowledge_sources", "id").remove(0);
            assert_eq!(
                (&row["tokens"], &row["run_tokens"]),
                (&serde_json::json!(120), &serde_json::json!(0)),
                "the words of its pieces, for keyword search's average length"
            );
            assert_eq!(ended.status.last_fetched_at, Some(finished_at.to_rfc3339()));
            assert_eq!(
                ended.status.next_fetch_at,
                Some(finished_at.plus_seconds(3600).to_rfc3339()),
                "after its interval"
            );
            batch(
                &fixture,
                vec![finish_run(&fixture.db, &acme, &source, &run, fixture.now()).must()],
            )
            .await;
            assert_eq!(one(&fixture, &acme, &id).await.version, 1, "a run ends once");
        });
    }

    #[test]
    fn a_failed_fetch_goes_on_later_or_ends_its_run_when_abandoned() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            start(&fixture, &acme, &id, "run-1").await;
            batch(
                &fixture,
                vec![knowledge_run_seen::record(&fixture.db, &acme, &id, "run-1", 0, 0, &["abcd"]).must()],
            )
            .await;
            let next = fixture.now().plus_seconds(300);
            let verdict = |state| Verdict {
                state,
                http_status: Some(500),
                error: "server error".to_owned(),
                next_fetch_at: next,
            };
            let source = one(&fixture, &acme, &id).await;
            record_failure(
                &fixture.db,
                &acme,
                &source,
                &verdict(Some(State::Failing)),
                false,
                fixture.now(),
            )
            .await
            .must();
            let failing = one(&fixture, &acme, &id).await;
            assert_eq!(
                (
                    failing.status.state,
                    failing.status.failures,
                    failing.status.last_http_status
                ),
                (State::Failing, 1, Some(500))
            );
            assert_eq!(failing.status.next_fetch_at, Some(next.to_rfc3339()));
            assert_eq!(
                failing.run.map(|run| run.id),
                Some("run-1".to_owned()),
                "it goes on where it stopped"
            );
            record_failure(
                &fixture.db,
                &acme,
                &one(&fixture, &acme, &id).await,
                &verdict(None),
                true,
                fixture.now(),
            )
            .await
            .must();
            let abandoned = one(&fixture, &acme, &id).await;
            assert_eq!(
                (abandoned.status.state, abandoned.status.failures),
                (State::Failing, 2),
                "no verdict state: it stays"
            );
            assert!(abandoned.run.is_none());
            assert!(
                fixture.rows("knowledge_run_seen", "page").is_empty(),
                "what it saw is forgotten"
            );
        });
    }

    #[test]
    fn runs_that_stopped_moving_are_found_on_each_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let stalled = api_source(&fixture, &acme).await;
            let leased = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("Leased", "https://crm.example.com/l", LinkType::Api),
                    &[LinkChannel::Whatsapp],
                )
                .await;
            let theirs = api_source(&fixture, &globex).await;
            start(&fixture, &acme, &stalled, "run-s").await;
            start(&fixture, &acme, &leased, "run-l").await;
            start(&fixture, &globex, &theirs, "run-t").await;
            api_source_idle(&fixture, &acme).await;
            fixture.stack.advance(Duration::from_secs(600));
            let now = fixture.now();
            lease(
                &fixture.db,
                &acme,
                &leased,
                &now.to_rfc3339(),
                &now.plus_seconds(60).to_rfc3339(),
            )
            .await
            .must();
            let before = now.plus_seconds(-300).to_rfc3339();
            let shards = fixture.db.each_shard();
            let found = stalled_runs(&shards[0], &Moving::NONE, &before, &now.to_rfc3339(), 10)
                .await
                .must();
            let found: Vec<(SourceId, Option<Step>)> =
                found.into_iter().map(|d| (d.source_id, d.run)).collect();
            assert_eq!(
                found,
                [(
                    stalled,
                    Some(Step {
                        id: "run-s".to_owned(),
                        slice: 0
                    })
                )]
            );
            assert_eq!(
                stalled_runs(&shards[1], &Moving::NONE, &before, &now.to_rfc3339(), 10)
                    .await
                    .must()
                    .len(),
                1
            );
            assert!(
                stalled_runs(
                    &shards[0],
                    &Moving::NONE,
                    &now.plus_seconds(-900).to_rfc3339(),
                    &now.to_rfc3339(),
                    10
                )
                .await
                .must()
                .is_empty(),
                "touched since"
            );
        });
    }

    /// A source of the tenant that no run reads.
    async fn api_source_idle(fixture: &Fixture, tenant: &Tenant) -> SourceId {
        fixture
            .source(
                tenant,
                &page("3003"),
                &link("Idle", URL, LinkType::Api),
                &[LinkChannel::Whatsapp],
            )
            .await
    }

    #[test]
    fn a_release_ends_an_unread_run_and_schedules_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = api_source(&fixture, &acme).await;
            ask(&fixture.db, &acme, &id, &fixture.now().to_rfc3339())
                .await
                .must();
            start(&fixture, &acme, &id, "run-1").await;
            let now = fixture.now();
            lease(
                &fixture.db,
                &acme,
                &id,
                &now.to_rfc3339(),
                &now.plus_seconds(60).to_rfc3339(),
            )
            .await
            .must();
            release(&fixture.db, &acme, &id).await.must();
            let released = one(&fixture, &acme, &id).await;
            assert!(released.run.is_none());
            assert_eq!((released.status.next_fetch_at, released.asked_at), (None, None));
            assert!(
                lease(&fixture.db, &acme, &id, &now.to_rfc3339(), &now.to_rfc3339())
                    .await
                    .must(),
                "free"
            );
        });
    }

    #[test]
    fn new_settings_keep_the_webhook_secret_and_a_deleted_source_takes_everything_of_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let keys = fixture.keys();
            let id = SourceId::generate(crate::testing::random());
            let hook = link("Pushed", "https://hook.example.com/x", LinkType::Webhook);
            let secret = LinkSecret::stored("whsec-link".to_owned());
            let now = fixture.now().to_rfc3339();
            let fields = Fields {
                link: &hook,
                state: State::Pending,
                next_fetch_at: None,
                webhook_secret: Some(&secret),
            };
            insert(&fixture.db, &keys, &acme, &id, &page("1001"), &fields, &now)
                .await
                .must();
            knowledge_links::insert(
                &fixture.db,
                &acme,
                &id,
                &page("1001"),
                &[LinkChannel::Messenger],
                true,
                &now,
            )
            .await
            .must();
            let source = one(&fixture, &acme, &id).await;
            let renamed = Link {
                name: "Renamed".to_owned(),
                fetch_interval_minutes: 30,
                api_key: None,
                holds: Holds::Customers {
                    field: "contact.email".to_owned(),
                    kind: domain::bot::subject::KeyKind::Email,
                },
                ..hook.clone()
            };
            update_settings(&fixture.db, &keys, &acme, &source, &renamed, &now)
                .await
                .must();
            let updated = one(&fixture, &acme, &id).await;
            assert_eq!(
                (updated.link.name.as_str(), updated.link.fetch_interval_minutes),
                ("Renamed", 30)
            );
            assert!(updated.link.api_key.is_none());
            assert_eq!(updated.link.holds, renamed.holds, "what it holds, read back");
            assert_eq!(hook.holds, Holds::General);
            assert_eq!(
                updated.webhook_secret.as_ref().map(LinkSecret::expose),
                Some("whsec-link")
            );

            let piece = knowledge_chunks::NewPiece {
                id: knowledge_chunks::chunk_id(&id, "ab12"),
                hash: "ab12",
                content_hash: "ab12",
                record: "customers[0]",
                part: 0,
                text: "Ann",
                subject: "general",
            };
            let mut statements =
                knowledge_chunks::insert(&fixture.db, &acme, &id, "run-1", &[piece], "m", &now).must();
            statements
                .push(knowledge_run_seen::record(&fixture.db, &acme, &id, "run-1", 0, 0, &["ab12"]).must());
            batch(&fixture, statements).await;
            delete(&fixture.db, &acme, &id).await.must();
            for table in [
                "knowledge_sources",
                "knowledge_links",
                "knowledge_chunks",
                "knowledge_run_seen",
            ] {
                assert!(fixture.rows(table, "1").is_empty(), "{table}");
            }
        });
    }
}
