//! A page of a run read and cut into pieces, held for the steps that index it: fetched (or the
//! body pushed to a webhook link), its next page checked for a loop or the page bound before
//! anything of it is indexed, its records numbered and cut, and, for a customers link, the
//! records of customers the business erased left out.

use super::Fetcher;
use crate::console_warn;
use crate::db::knowledge_sources::{RunNext, Source};
use crate::knowledge::fetch;
use crate::runtime;
use domain::bot::subject::{Holds, token};
use domain::error::ApiError;
use domain::links::chunk::ChunkOptions;
use domain::links::document::{Numbering, Piece, pieces, records};
use domain::links::fetch::{Failure, MAX_PAGE_BYTES, follow};
use domain::links::flatten::Limits;
use domain::links::identifiers::{HoldsCheck, identify};
use domain::tenant::Tenant;

impl Fetcher<'_> {
    /// Reads the page `next` names and cuts it into pieces; None when there is nothing to read (a
    /// webhook link nothing was pushed to). A next page that would loop, or run past the page
    /// bound, ends the run here, before anything of the page is indexed.
    /// A fetch counts in the link's health (`crm::health`): the CRM did not answer, or answered
    /// an error status, or it answered.
    pub(super) async fn read(
        &self,
        tenant: &Tenant,
        next: &RunNext,
        source: &Source,
    ) -> Result<Option<Cut>, Failure> {
        let page = if next.url.is_empty() {
            match fetch::pushed(self.env, source.pushed_key.as_deref(), &source.link).await? {
                Some(page) => page,
                None => return Ok(None),
            }
        } else {
            let started = runtime::now().millis();
            let fetched = fetch::page(self.env, &source.link, &next.url, self.allow_loopback).await;
            let failed = fetched.as_ref().err().is_some_and(Failure::is_the_crms);
            let millis = u64::try_from(runtime::now().millis() - started).unwrap_or(0);
            crate::crm::health::record(tenant, source.id.as_str(), millis, failed);
            fetched?
        };
        let after = match &page.next {
            None => None,
            Some(url) => {
                let mark = follow(next.pages + 1, &next.url, url, next.mark.as_deref())?;
                Some((url.clone(), mark))
            }
        };
        let mut numbering = next.numbering.clone();
        let limits = Limits {
            max_bytes: MAX_PAGE_BYTES,
            ..Limits::default()
        };
        let lines = numbering.page(&page.body, page.kind, &limits).map_err(|error| {
            Failure::Unreadable(format!(
                "the CRM's data cannot be indexed: {}",
                error.body.message
            ))
        })?;
        let cut = pieces(
            &lines,
            &ChunkOptions::for_embedding(),
            &source.link.holds,
            tenant.default_country,
        );
        let names_customers = match source.link.holds {
            Holds::Unstated => HoldsCheck::of(&identify(&lines)),
            Holds::General | Holds::Customers { .. } => None,
        };
        if let Some(HoldsCheck::NamesCustomers { field, .. }) = &names_customers {
            console_warn!(
                "CRM link {}: its records name customers (by {field}) and it does not say whose data it is: \
                 not searched until it does",
                source.id
            );
        }
        Ok(Some(Cut {
            names_customers,
            url: next.url.clone(),
            pages: next.pages,
            pieces: cut.pieces,
            without_key: cut.without_key,
            records: records(&lines),
            after,
            numbering,
            _page: page,
        }))
    }

    /// Leaves out of a customers link's page the records of the customers the business erased
    /// (`crate::ops::erasure`): their CRM still has them, the index must not have them again.
    pub(super) async fn leave_out_erased(
        &self,
        tenant: &Tenant,
        source: &Source,
        cut: &mut Cut,
    ) -> Result<(), ApiError> {
        if !matches!(source.link.holds, Holds::Customers { .. }) {
            return Ok(());
        }
        let erased = crate::db::customer_erasures::subjects_of_business(self.db, tenant).await?;
        if !erased.is_empty() {
            cut.pieces
                .retain(|piece| !erased.contains(&token(piece.subject.as_deref())));
        }
        Ok(())
    }
}

/// A page read and cut into pieces, held for the steps that index it.
pub(super) struct Cut {
    /// The page's URL and the pages read before it: which page of the run it is.
    pub(super) url: String,
    pub(super) pages: usize,
    pub(super) pieces: Vec<Piece>,
    pub(super) records: usize,
    /// Records of a customers link left out for having no readable key.
    pub(super) without_key: usize,
    /// The page after it, and the page the run keeps for its loop check.
    pub(super) after: Option<(String, Option<String>)>,
    /// The numbering after the page.
    pub(super) numbering: Numbering,
    /// A link of unstated holds whose page names customers: what it is found to be.
    pub(super) names_customers: Option<HoldsCheck>,
    /// The body, counted as held while the page is.
    _page: fetch::Page,
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CRM, asked_source, source_row};
    use super::*;
    use crate::db::knowledge_sources::{self, Due, Step};
    use crate::knowledge::backend::Rag;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::links::fetch::{ENDLESS_RETRY_SECONDS, MAX_PAGES_PER_RUN};
    use domain::sealed::Keyring;
    use domain::time::Timestamp;
    use serde_json::json;

    fn fetcher<'a>(fixture: &'a Fixture, keys: &'a Keyring, rag: &'a Rag) -> Fetcher<'a> {
        Fetcher {
            env: &fixture.env,
            db: &fixture.db,
            keys,
            rag,
            allow_loopback: false,
        }
    }

    /// The link's state, error and next fetch, and whether a run is on, as its row holds them.
    fn ended(fixture: &Fixture) -> (String, String, String, bool) {
        let row = source_row(fixture);
        let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
        (
            text("state"),
            text("last_error"),
            text("next_fetch_at"),
            !row["run_id"].is_null(),
        )
    }

    #[test]
    fn a_page_that_names_itself_as_its_next_ends_the_run_and_the_link_says_why() {
        let fixture = Fixture::new();
        fixture.stack.partner("crm.example.com", |call| {
            Reply::json(200, &json!({ "customers": [{ "id": "c1", "name": "Ann" }] }))
                .header("link", &format!("<{}>; rel=\"next\"", call.url))
        });
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let (id, keys, rag) = asked_source(&fixture, &tenant).await;
            let due = Due {
                business_id: tenant.business_id.to_string(),
                source_id: id,
                run: None,
            };
            fetcher(&fixture, &keys, &rag)
                .run(&due)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        });
        assert_eq!(
            fixture.stack.calls_to("crm.example.com").len(),
            1,
            "read once, not again"
        );
        let (state, error, next, running) = ended(&fixture);
        assert_eq!(state, "failing");
        assert!(error.starts_with("the CRM's pages loop: page 1 names"), "{error}");
        assert!(!running, "the run is over");
        let next = Timestamp::parse_rfc3339(&next).unwrap_or_else(|| panic!("a next fetch: {next}"));
        assert!(
            next.seconds() - runtime::now().seconds() >= ENDLESS_RETRY_SECONDS - 1,
            "not tried again within a day"
        );
        assert!(
            fixture.stack.queued(crate::knowledge::KNOWLEDGE).is_empty(),
            "nothing handed over"
        );
        assert!(
            fixture.rows("knowledge_chunks", "seq").is_empty(),
            "nothing of the looping page was indexed"
        );
    }

    #[test]
    fn a_run_that_reaches_the_page_bound_ends_with_the_reason() {
        // Empty pages without end, each naming the next; the run is taken up three pages
        // before the bound.
        let fixture = Fixture::new();
        fixture.stack.partner("crm.example.com", |call| {
            let page: usize = call
                .url
                .split_once("page=")
                .and_then(|(_, page)| page.parse().ok())
                .unwrap_or(1);
            Reply::json(200, &json!({ "customers": [] }))
                .header("link", &format!("<{CRM}?page={}>; rel=\"next\"", page + 1))
        });
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let (id, keys, rag) = asked_source(&fixture, &tenant).await;
            let near = RunNext {
                url: format!("{CRM}?page={}", MAX_PAGES_PER_RUN - 2),
                numbering: Numbering::default(),
                pages: MAX_PAGES_PER_RUN - 3,
                offset: 0,
                mark: None,
            };
            let now = runtime::now().to_rfc3339();
            let statement =
                knowledge_sources::start_run(&fixture.db, &tenant, &id, "run-1", &near, false, &now)
                    .unwrap_or_else(|error| panic!("{error}"));
            fixture
                .db
                .batch(vec![statement])
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let due = Due {
                business_id: tenant.business_id.to_string(),
                source_id: id,
                run: Some(Step {
                    id: "run-1".to_owned(),
                    slice: 0,
                }),
            };
            fetcher(&fixture, &keys, &rag)
                .run(&due)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        });
        assert_eq!(
            fixture.stack.calls_to("crm.example.com").len(),
            3,
            "pages 9,998 to 10,000, the last of which names a next"
        );
        let (state, error, _, running) = ended(&fixture);
        assert_eq!(state, "failing");
        assert!(error.contains("past 10000 pages"), "{error}");
        assert!(!running, "the run is over");
        assert!(fixture.stack.queued(crate::knowledge::KNOWLEDGE).is_empty());
    }
}
