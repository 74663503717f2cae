//! How a source's row is stored and read back: its credentials sealed as one value (and sealed
//! again when a row still holds them in clear or under a retired key), the row opened into a
//! [`Source`], and the reads: by id, by URL, the business of a source, a business's sources, and the
//! failing links the alert sweep measures.

use super::{Run, Source, Status};
use crate::db::Read;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, number, optional_text, text};
use crate::platform::secrets_key;
use crate::runtime::D1Result;
use domain::alerts::{self, Measure};
use domain::bot::subject::Holds;
use domain::destination::Destination;
use domain::error::ApiError;
use domain::ids::{BusinessId, SourceId};
use domain::links::fetch::State;
use domain::links::identifiers::HoldsCheck;
use domain::links::link::{Header, Link, LinkSecret, LinkType, PageId, join_credentials, split_credentials};
use domain::sealed::{Keyring, Place};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
pub(super) fn stored_url(link: &Link) -> String {
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
        .rows::<Row>()?;
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
        .rows::<Row>()?;
    open_all(db, keys, tenant, rows).await
}

/// What a source is written with.
pub struct Fields<'a> {
    pub link: &'a Link,
    pub state: State,
    pub next_fetch_at: Option<&'a str>,
    pub webhook_secret: Option<&'a LinkSecret>,
}

pub(super) async fn sealed(keys: &Keyring, id: &SourceId, fields: &Fields<'_>) -> Result<String, ApiError> {
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
    use super::super::tests::{URL, api_source, one};
    use super::super::{Fields, counts, insert};
    use super::*;
    use crate::testing::{Fixture, Must, link, page};

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
}
