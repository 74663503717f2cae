//! Indexing a source's data, of any size, within Cloudflare's per-invocation limits: a run reads
//! the data page by page, and each queue message does one slice of it (a few steps; stopped by
//! `domain::links::fetch::SLICE_*`), then hands the next slice over. A step is a page, or the
//! next `STEP_PIECES` pieces of a page that holds more (the run's state keeps where in the page
//! it goes on), so one huge page is spread over invocations too. A run ends, failing, past
//! `MAX_PAGES_PER_RUN` pages or when a next page repeats one it read (`fetch::follow`).
//!
//! For each step: the page's pieces are cut, those the source holds already are skipped, the new ones
//! are embedded unless the vector store holds them already (a slice that died after embedding),
//! their vectors written, and then, in one D1 batch, the new pieces, what the page saw and where
//! the run goes on. A piece held from before subjects has its vector written again with its
//! subject's token, from the store's own values (not embedded again).
//!
//! A link that holds customers' records gives each piece its record's subject (the business's
//! default country reads national phones), and leaves out, counting them, the records without a
//! readable key (`domain::links::document::pieces`). So a run resumes where it stopped and nothing is embedded twice. A refresh
//! writes only what changed: an unchanged piece is not written at all. New pieces are staged
//! under the run, unseen by search, until the run ends: a run that fails half-way leaves the data
//! indexed before exactly as it was. When the last page is read, the pieces the run did not see
//! (what left the data) are deleted, from the vector store first and then from D1, a thousand at a
//! time; then the staged pieces are published and the run ends.
//!
//! Failures keep the data indexed before (`domain::links::fetch`): a transient one waits and the
//! run goes on from the page that failed; a refusal of a page after the first starts the run over
//! once (its cursor may have expired), then ends it with the reason.
//!
//! This file holds the fetcher and its slices: a queue message's slice started or gone on with,
//! and its budget; `read` reads a page and cuts it into pieces, `step` indexes a step of a page
//! and commits it, and `end` ends a run: what it did not see removed and what it staged published,
//! or a failure waited out, started over or recorded.

mod end;
mod read;
mod step;

use crate::db::knowledge_run_seen;
use crate::db::knowledge_sources::{self, Due, Run, RunNext, Source, Step};
use crate::db::{Db, businesses};
use crate::knowledge::backend::Rag;
use crate::platform::queue::Settle;
use crate::{Env, runtime};
use crate::{console_log, console_warn};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::links::document::Numbering;
use domain::links::fetch::{
    SLICE_D1_QUERIES, SLICE_PAGES, SLICE_SECONDS, SLICE_SUBREQUESTS, STALE_RUN_SECONDS,
};
use domain::links::link::LinkType;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use read::Cut;

/// How long one slice holds its source: far longer than a slice runs.
const LEASE_SECONDS: i64 = 10 * 60;
/// A source another slice holds is looked at again after this.
const HELD_RETRY_SECONDS: u32 = 30;

/// What a fetcher needs.
pub struct Fetcher<'a> {
    pub env: &'a Env,
    pub db: &'a Db,
    pub keys: &'a Keyring,
    pub rag: &'a Rag,
    pub allow_loopback: bool,
}

/// How a slice ended.
enum Ended {
    /// The run is over (done, ended by a failure, or waiting out a failure): nothing to queue.
    Over,
    /// The budget of this slice is spent: the run's next slice goes on.
    HandOver(Step),
}

impl Fetcher<'_> {
    /// Does the slice a queue message asks for: starts a run that was asked for, or goes on with
    /// the run it names. A message for a run or slice that is no longer current is dropped.
    pub async fn run(&self, due: &Due) -> Result<Settle, ApiError> {
        let Some(business) = BusinessId::parse(&due.business_id) else {
            console_warn!("a CRM link task names no business ({}); dropped", due.business_id);
            return Ok(Settle::Ack);
        };
        // The business's default country reads national phones in customers' records.
        let tenant = match businesses::find(self.db, &business).await? {
            Some(found) => Tenant::from_stored(found.id.as_str(), found.default_country.as_deref())?,
            None => Tenant::for_background(business),
        };
        let now = runtime::now();
        let until = now.plus_seconds(LEASE_SECONDS).to_rfc3339();
        if !knowledge_sources::lease(self.db, &tenant, &due.source_id, &now.to_rfc3339(), &until).await? {
            // Another slice of it is running; this message comes after it.
            return Ok(Settle::RetryIn(HELD_RETRY_SECONDS));
        }
        let Some(source) = knowledge_sources::find(self.db, self.keys, &tenant, &due.source_id).await? else {
            return Ok(Settle::Ack);
        };
        if !source.link.is_active || !source.link.link_type.is_indexed() {
            knowledge_sources::release(self.db, &tenant, &source.id).await?;
            return Ok(Settle::Ack);
        }
        let run = match (&due.run, &source.run) {
            (Some(step), Some(run)) if step.id == run.id && step.slice == run.slice => {
                if run.next.is_some() && started_long_ago(run, now) {
                    self.start(&tenant, &source, true).await?
                } else {
                    run.clone()
                }
            }
            (None, None) if source.asked_at.is_some() => self.start(&tenant, &source, false).await?,
            // A stale slice, or a start while a run goes on (the run fetches again at its end).
            _ => {
                knowledge_sources::unlease(self.db, &tenant, &source.id).await?;
                return Ok(Settle::Ack);
            }
        };
        if run.slice == 0 && run.next.as_ref().is_some_and(|next| next.pages == 0) {
            console_log!(
                "Starting CRM data fetch for page {} ({}, link {})",
                source.page_id.as_str(),
                source.link.name,
                source.id
            );
        }
        if let Ended::HandOver(step) = self.slice(&tenant, &source, run).await?
            && knowledge_sources::next_slice(
                self.db,
                &tenant,
                &source.id,
                &step,
                &runtime::now().to_rfc3339(),
            )
            .await?
        {
            let next = Due {
                business_id: due.business_id.clone(),
                source_id: source.id.clone(),
                run: Some(Step {
                    id: step.id,
                    slice: step.slice + 1,
                }),
            };
            crate::knowledge::hand_over(self.env, std::slice::from_ref(&next)).await;
        }
        Ok(Settle::Ack)
    }

    /// Starts a run at the link's first page (over again, `restarted`).
    async fn start(&self, tenant: &Tenant, source: &Source, restarted: bool) -> Result<Run, ApiError> {
        let id = hex::encode(runtime::random::<12>()?);
        let first = RunNext {
            url: match source.link.link_type {
                LinkType::Webhook => String::new(),
                _ => source.link.url.as_str().to_owned(),
            },
            numbering: Numbering::default(),
            pages: 0,
            offset: 0,
            mark: None,
        };
        let now = runtime::now().to_rfc3339();
        self.db
            .batch(vec![
                knowledge_run_seen::clear(self.db, tenant, &source.id)?,
                knowledge_sources::start_run(self.db, tenant, &source.id, &id, &first, restarted, &now)?,
            ])
            .await?;
        Ok(Run {
            id,
            next: Some(first),
            slice: 0,
            started_at: now,
            touched_at: None,
            records: 0,
            without_key: 0,
            pieces: 0,
            embedded: 0,
            removed: 0,
            changed: false,
            restarted,
        })
    }

    /// Reads pages, a step of each at a time, until the run ends or the slice's budget is spent.
    async fn slice(&self, tenant: &Tenant, source: &Source, mut run: Run) -> Result<Ended, ApiError> {
        let started = runtime::now();
        let mut steps = 0;
        // The page being indexed, read once for all of its steps in this slice.
        let mut cut: Option<Cut> = None;
        while let Some(next) = run.next.clone() {
            if steps > 0 && self.spent(started, steps) {
                return Ok(Ended::HandOver(step_of(&run)));
            }
            match self.step(tenant, source, &run, &next, &mut cut).await {
                Ok(None) => {
                    // A webhook link nothing was pushed to yet: nothing to index until a push.
                    knowledge_sources::release(self.db, tenant, &source.id).await?;
                    return Ok(Ended::Over);
                }
                Ok(Some(read)) => {
                    run.records += read.records as i64;
                    run.without_key += read.without_key as i64;
                    run.pieces += read.pieces as i64;
                    run.embedded += read.embedded as i64;
                    run.changed |= read.changed;
                    run.next = read.next;
                    steps += 1;
                }
                Err(failure) => return self.failed(tenant, source, run, &next, failure).await,
            }
        }
        self.finish(tenant, source, &run, started).await
    }

    /// Whether this slice has used its share of the invocation: steps, time, D1 queries or
    /// subrequests.
    fn spent(&self, started: Timestamp, steps: usize) -> bool {
        let usage = self.env.usage();
        steps >= SLICE_PAGES
            || runtime::now().seconds() - started.seconds() >= SLICE_SECONDS
            || usage.d1_queries >= SLICE_D1_QUERIES
            || usage.subrequests >= SLICE_SUBREQUESTS
    }
}

fn step_of(run: &Run) -> Step {
    Step {
        id: run.id.clone(),
        slice: run.slice,
    }
}

/// A run that has not finished reading long after it started (its next pages' cursors may have
/// expired): it starts over.
fn started_long_ago(run: &Run, now: Timestamp) -> bool {
    Timestamp::parse_rfc3339(&run.started_at)
        .is_some_and(|started| now.seconds() - started.seconds() > STALE_RUN_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::knowledge_links;
    use crate::db::knowledge_sources::Fields;
    use crate::knowledge::backend::{EMBEDDER_URL, RAG_BACKEND};
    use crate::knowledge::local_server::{self, URL, unit};
    use crate::runtime::native::Reply;

    use crate::testing::Fixture;
    use domain::ids::SourceId;
    use domain::links::fetch::State;
    use domain::links::link::{LinkChannel, NewLink, PageId};
    use domain::platform::Resource;
    use serde_json::{Value, json};

    pub(super) const CRM: &str = "https://crm.example.com/customers";

    /// A link on a page whose CRM answers three pages of two customers (`?page=1` … `?page=3`,
    /// each naming the next in a `Link` header), asked for; the source's id and the fetcher's
    /// keys and backend.
    pub(super) async fn asked_source(
        fixture: &Fixture,
        tenant: &Tenant,
    ) -> (SourceId, std::rc::Rc<Keyring>, Rag) {
        let fail = |error: ApiError| -> ! { panic!("{error}") };
        local_server::install(&fixture.stack, |_| unit(0));
        fixture.stack.set_var(RAG_BACKEND, "local");
        fixture.stack.set_var(EMBEDDER_URL, URL);
        let rag = Rag::from_env(&fixture.env).unwrap_or_else(|error| fail(error));
        let keys = fixture.env.keyring().unwrap_or_else(|error| fail(error));
        let new = NewLink::parse(
            &json!({ "page_id": "104729000007919", "channels": ["messenger"], "name": "CRM", "url": CRM, "type": "api", "is_active": true }),
            false,
        )
        .unwrap_or_else(|error| fail(error));
        let id = SourceId::generate([9; 16]);
        let page = PageId::parse(&json!("104729000007919")).unwrap_or_else(|error| fail(error));
        let now = runtime::now().to_rfc3339();
        let fields = Fields {
            link: &new.link,
            state: State::Pending,
            next_fetch_at: None,
            webhook_secret: None,
        };
        knowledge_sources::insert(&fixture.db, &keys, tenant, &id, &page, &fields, &now)
            .await
            .unwrap_or_else(|error| fail(error));
        knowledge_links::insert(
            &fixture.db,
            tenant,
            &id,
            &page,
            &[LinkChannel::Messenger],
            true,
            &now,
        )
        .await
        .unwrap_or_else(|error| fail(error));
        knowledge_sources::ask(&fixture.db, tenant, &id, &now)
            .await
            .unwrap_or_else(|error| fail(error));
        (id, keys, rag)
    }

    /// The CRM's answer to `call`: its page, or `refused` for the pages it lists.
    pub(super) fn crm_page(url: &str, refused: &[&str]) -> Reply {
        let page: usize = url
            .split_once("page=")
            .and_then(|(_, page)| page.parse().ok())
            .unwrap_or(1);
        if refused.iter().any(|refused| url.ends_with(refused)) {
            return Reply::json(404, &json!({ "error": "cursor expired" }));
        }
        let customers: Vec<Value> = (0..2)
            .map(|at| json!({ "id": format!("c{page}{at}"), "name": format!("Customer {page} {at}") }))
            .collect();
        let reply = Reply::json(200, &json!({ "customers": customers }));
        if page < 3 {
            reply.header("link", &format!("<{CRM}?page={}>; rel=\"next\"", page + 1))
        } else {
            reply
        }
    }

    pub(super) fn source_row(fixture: &Fixture) -> serde_json::Map<String, Value> {
        fixture
            .rows("knowledge_sources", "id")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no source"))
    }

    #[test]
    fn a_slice_that_has_used_half_the_invocations_d1_queries_hands_the_rest_to_the_next_slice() {
        let fixture = Fixture::new();
        fixture
            .stack
            .partner("crm.example.com", |call| crm_page(&call.url, &[]));
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let (id, keys, rag) = asked_source(&fixture, &tenant).await;
            // What the invocation spent before this slice: all but a page's worth of its half.
            let used = fixture.env.usage().d1_queries;
            fixture
                .env
                .charge(Resource::D1Query, SLICE_D1_QUERIES - used - 5)
                .unwrap_or_else(|error| panic!("{error}"));
            let fetcher = Fetcher {
                env: &fixture.env,
                db: &fixture.db,
                keys: &keys,
                rag: &rag,
                allow_loopback: false,
            };
            let due = Due {
                business_id: tenant.business_id.to_string(),
                source_id: id.clone(),
                run: None,
            };
            let settled = fetcher.run(&due).await.unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(settled, Settle::Ack);
        });
        let pages: Vec<String> = fixture
            .stack
            .calls_to("crm.example.com")
            .iter()
            .map(|call| call.url.clone())
            .collect();
        assert_eq!(pages, [CRM], "one page, then the budget was spent");
        let queued = fixture.stack.queued(crate::knowledge::KNOWLEDGE);
        assert_eq!(queued.len(), 1, "the next slice is handed over");
        assert_eq!(queued[0].json()["run"]["slice"], 1, "{:?}", queued[0].json());
        let row = source_row(&fixture);
        let next: Value =
            serde_json::from_str(row["run_next"].as_str().unwrap_or("null")).unwrap_or_default();
        assert_eq!(
            (next["url"].as_str(), next["pages"].as_u64()),
            (Some(format!("{CRM}?page=2").as_str()), Some(1)),
            "it goes on from the second page: {row:?}"
        );
        assert_eq!(row["run_records"], 2, "{row:?}");
    }

    #[test]
    fn a_run_is_started_over_only_when_it_began_more_than_a_day_ago() {
        let now = runtime::now();
        let run = |started: Timestamp| Run {
            id: "r".to_owned(),
            next: None,
            slice: 3,
            started_at: started.to_rfc3339(),
            touched_at: None,
            records: 0,
            without_key: 0,
            pieces: 0,
            embedded: 0,
            removed: 0,
            changed: false,
            restarted: false,
        };
        let cases = [
            ("an hour ago", now.plus_seconds(-3_600), false),
            (
                "a day ago to the second",
                now.plus_seconds(-STALE_RUN_SECONDS),
                false,
            ),
            (
                "a day and a second ago",
                now.plus_seconds(-STALE_RUN_SECONDS - 1),
                true,
            ),
        ];
        for (description, started, stale) in cases {
            assert_eq!(started_long_ago(&run(started), now), stale, "{description}");
        }
        let mut unreadable = run(now);
        unreadable.started_at = "yesterday".to_owned();
        assert!(
            !started_long_ago(&unreadable, now),
            "a time that cannot be read is not a reason to start over"
        );
    }
}
