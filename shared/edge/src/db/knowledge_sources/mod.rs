//! `knowledge_sources`: the URLs of a business's CRM data, one per page and URL, with their
//! settings, sealed credentials, fetch status and schedule. Written by the CRM links API, the
//! webhook receiver of pushed data, the fetcher and the scheduler's sweep.
//!
//! Credentials (the API key, the custom headers, a webhook link's signing secret) are one JSON
//! object sealed as one value, bound to the source's id, as connectors' secrets are.
//!
//! This file holds what a source is (its settings, its run, its status); `rows` how its row is
//! stored, sealed and read back, `settings` what the CRM links API and the receiver of pushed data
//! write, and `runs` what the scheduler and the fetcher write as a run reads the data page by page.

mod rows;
mod runs;
mod settings;

pub use rows::{Fields, alert_measures, business_of, find, find_by_url, list};
pub use runs::{
    Due, PageDone, Step, finish_run, lease, next_slice, page_done, pieces_removed, record_failure, release,
    stalled_runs, start_run, take_due, unlease,
};
pub use settings::{
    Asked, Caps, Pushed, ask, counts, delete, insert, insert_within, record_push, reschedule, take_refresh,
    update_settings,
};

use domain::ids::SourceId;
use domain::links::document::Numbering;
use domain::links::fetch::State;
use domain::links::identifiers::HoldsCheck;
use domain::links::link::{Link, LinkSecret, PageId};
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Statement;
    use crate::testing::{Fixture, Must, link, page};
    use domain::links::link::{LinkChannel, LinkType};
    use domain::tenant::Tenant;

    pub(super) const URL: &str = "https://crm.example.com/customers";

    pub(super) async fn one(fixture: &Fixture, tenant: &Tenant, id: &SourceId) -> Source {
        find(&fixture.db, &fixture.keys(), tenant, id)
            .await
            .must()
            .unwrap_or_else(|| panic!("source {id}"))
    }

    pub(super) async fn api_source(fixture: &Fixture, tenant: &Tenant) -> SourceId {
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
    pub(super) async fn batch(fixture: &Fixture, statements: Vec<Statement>) {
        fixture.db.batch(statements).await.must();
    }

    pub(super) async fn start(fixture: &Fixture, tenant: &Tenant, id: &SourceId, run: &str) {
        let now = fixture.now().to_rfc3339();
        batch(
            fixture,
            vec![start_run(&fixture.db, tenant, id, run, &first_page(), false, &now).must()],
        )
        .await;
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
}
