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

use crate::db::knowledge_chunks::{self, NewPiece};
use crate::db::knowledge_run_seen;
use crate::db::knowledge_sources::{self, Due, PageDone, Run, RunNext, Source, Step};
use crate::db::{Db, Statement, businesses};
use crate::knowledge::backend::Rag;
use crate::knowledge::fetch;
use crate::platform::queue::Settle;
use crate::{Env, runtime};
use crate::{console_log, console_warn};
use domain::bot::subject::{Holds, token};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::links::chunk::ChunkOptions;
use domain::links::document::{Numbering, Piece, pieces, records};
use domain::links::fetch::{
    Failure, MAX_PAGE_BYTES, MAX_PIECES_PER_LINK, SLICE_D1_QUERIES, SLICE_PAGES, SLICE_SECONDS,
    SLICE_SUBREQUESTS, STALE_RUN_SECONDS, STEP_PIECES, follow,
};
use domain::links::flatten::Limits;
use domain::links::identifiers::{HoldsCheck, identify};
use domain::links::keyword::tokens;
use domain::links::link::LinkType;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use std::collections::{HashMap, HashSet};

/// How long one slice holds its source: far longer than a slice runs.
const LEASE_SECONDS: i64 = 10 * 60;
/// A source another slice holds is looked at again after this.
const HELD_RETRY_SECONDS: u32 = 30;
/// Pieces removed per step at a run's end (ids per vector store call and per D1 statement).
const REMOVE_STEP: usize = 1_000;
/// What a run saw is recorded per step, keyed by the page and the step's offset in it as one
/// number (`page * SEEN_PAGE_STRIDE + offset`), the same when a step is done again: a page has
/// fewer pieces than this (its 50,000 lines at most, or 4 MiB of long records).
const SEEN_PAGE_STRIDE: usize = 1_000_000;
/// Staged pieces published per statement at a run's end.
const PUBLISH_STEP: usize = 10_000;
/// A run that waits out a failure this long or less goes on through the queue's delay; a longer
/// wait is the sweep's (it queues the run's next slice once `next_fetch_at` has passed).
const RESUME_BY_QUEUE_SECONDS: i64 = 15 * 60;

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

    /// Reads the page `next` names and cuts it into pieces; None when there is nothing to read (a
    /// webhook link nothing was pushed to). A next page that would loop, or run past the page
    /// bound, ends the run here, before anything of the page is indexed.
    /// A fetch counts in the link's health (`crm::health`): the CRM did not answer, or answered
    /// an error status, or it answered.
    async fn read(&self, tenant: &Tenant, next: &RunNext, source: &Source) -> Result<Option<Cut>, Failure> {
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
    async fn leave_out_erased(
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

    /// Indexes the next step of a page (up to `STEP_PIECES` of its pieces, from where the run
    /// stands in it), reading the page unless `cut` holds it, and commits it; None when there is
    /// nothing to read (a webhook link nothing was pushed to).
    async fn step(
        &self,
        tenant: &Tenant,
        source: &Source,
        run: &Run,
        next: &RunNext,
        cut: &mut Option<Cut>,
    ) -> Result<Option<PageRead>, Failure> {
        let internal =
            |error: ApiError| Failure::Embedding(error.detail().unwrap_or(&error.body.message).to_owned());
        if cut
            .as_ref()
            .is_none_or(|cut| cut.url != next.url || cut.pages != next.pages)
        {
            // The page before is let go before the next is read.
            *cut = None;
            *cut = match self.read(tenant, next, source).await? {
                Some(mut read) => {
                    self.leave_out_erased(tenant, source, &mut read)
                        .await
                        .map_err(internal)?;
                    Some(read)
                }
                None => return Ok(None),
            };
        }
        let Some(page) = cut.as_ref() else {
            return Ok(None);
        };
        if next.offset == 0 && run.pieces as u64 + page.pieces.len() as u64 > MAX_PIECES_PER_LINK {
            return Err(Failure::Unreadable(format!(
                "the CRM's data is over {MAX_PIECES_PER_LINK} pieces: split it into several links (by segment or \
                 filter); what was indexed is kept"
            )));
        }
        let end = next.offset.saturating_add(STEP_PIECES).min(page.pieces.len());
        // A page that came back shorter than when its first steps were indexed ends here.
        let fresh = &page.pieces[next.offset.min(end)..end];
        let last = end == page.pieces.len();
        let embedder = self.rag.embedder.id();
        let hashes: Vec<&str> = fresh.iter().map(|piece| piece.hash.as_str()).collect();
        let stored = knowledge_chunks::stored_among(self.db, tenant, &source.id, &hashes, embedder)
            .await
            .map_err(internal)?;
        let new: Vec<usize> = (0..fresh.len())
            .filter(|&at| !stored.tagged.contains(&fresh[at].hash))
            .collect();
        let ids: Vec<String> = new
            .iter()
            .map(|&at| knowledge_chunks::chunk_id(&source.id, &fresh[at].hash))
            .collect();
        let subjects: Vec<String> = fresh
            .iter()
            .map(|piece| token(piece.subject.as_deref()))
            .collect();
        // A piece held from before subjects: its vector is written again with its token, from the
        // store's own values. A piece whose subject changed (what the link holds did) takes the
        // vector of the live piece of the same content, from the store too: neither is embedded.
        let (untagged, unseen): (Vec<Indexed<'_>>, Vec<Indexed<'_>>) = new
            .iter()
            .copied()
            .zip(&ids)
            .partition(|(at, _)| stored.untagged.contains(&fresh[*at].hash));
        let contents: Vec<&str> = unseen
            .iter()
            .map(|(at, _)| fresh[*at].content_hash.as_str())
            .collect();
        let same_content = knowledge_chunks::by_content(self.db, tenant, &source.id, &contents, embedder)
            .await
            .map_err(internal)?;
        // Each copied vector: the piece's place in the step, its id, and the id its values are read from.
        let copies: Vec<(usize, &String, String)> = untagged
            .iter()
            .map(|&(at, id)| (at, id, id.clone()))
            .chain(unseen.iter().filter_map(|&(at, id)| {
                same_content
                    .get(&fresh[at].content_hash)
                    .filter(|from| *from != id)
                    .map(|from| (at, id, from.clone()))
            }))
            .collect();
        let from_ids: Vec<String> = copies.iter().map(|(_, _, from)| from.clone()).collect();
        let held: HashMap<String, Vec<f32>> = self
            .rag
            .values(&from_ids)
            .await
            .map_err(Failure::Embedding)?
            .into_iter()
            .collect();
        let copied: Vec<(usize, &String, &[f32])> = copies
            .iter()
            .filter_map(|(at, id, from)| held.get(from).map(|values| (*at, *id, values.as_slice())))
            .collect();
        // A slice that died after writing vectors left them in the store: they are not made again.
        let unseen_ids: Vec<String> = unseen.iter().map(|(_, id)| (*id).clone()).collect();
        let already: HashSet<String> = self
            .rag
            .existing(&unseen_ids)
            .await
            .map_err(Failure::Embedding)?
            .into_iter()
            .collect();
        let to_embed: Vec<usize> = unseen
            .iter()
            .chain(&untagged)
            .filter(|(at, id)| !already.contains(*id) && !copied.iter().any(|(copy, _, _)| copy == at))
            .map(|(at, _)| *at)
            .collect();
        let contents: Vec<&str> = to_embed.iter().map(|&at| fresh[at].content.as_str()).collect();
        let vectors = self.rag.embed(&contents).await.map_err(Failure::Embedding)?;
        let items: Vec<(String, &[f32], &str)> = to_embed
            .iter()
            .zip(&vectors)
            .map(|(&at, vector)| {
                (
                    knowledge_chunks::chunk_id(&source.id, &fresh[at].hash),
                    vector.as_slice(),
                    subjects[at].as_str(),
                )
            })
            .chain(
                copied
                    .iter()
                    .map(|&(at, id, values)| (id.clone(), values, subjects[at].as_str())),
            )
            .collect();
        self.rag
            .upsert(tenant, source.page_id.as_str(), &source.id, &items)
            .await
            .map_err(Failure::Embedding)?;
        drop(items);
        drop(copied);
        drop(vectors);
        drop(held);
        let written: Vec<NewPiece<'_>> = new
            .iter()
            .zip(ids)
            .map(|(&at, id)| NewPiece {
                id,
                hash: &fresh[at].hash,
                content_hash: &fresh[at].content_hash,
                record: &fresh[at].record,
                part: fresh[at].part,
                text: &fresh[at].text,
                subject: &subjects[at],
            })
            .collect();
        let seen: Vec<&str> = hashes
            .iter()
            .map(|hash| knowledge_chunks::seen_key(hash))
            .collect();
        let after = if !last {
            Some(RunNext {
                offset: end,
                ..next.clone()
            })
        } else {
            page.after.clone().map(|(url, mark)| RunNext {
                url,
                numbering: page.numbering.clone(),
                pages: next.pages + 1,
                offset: 0,
                mark,
            })
        };
        let read = PageRead {
            // A page's records count once, with its last step.
            records: if last { page.records } else { 0 },
            without_key: if last { page.without_key } else { 0 },
            pieces: fresh.len(),
            embedded: to_embed.len(),
            changed: !new.is_empty(),
            next: after,
        };
        let now = runtime::now().to_rfc3339();
        let mut statements: Vec<Statement> =
            knowledge_chunks::insert(self.db, tenant, &source.id, &run.id, &written, embedder, &now)
                .map_err(internal)?;
        statements.push(
            knowledge_run_seen::record(
                self.db,
                tenant,
                &source.id,
                &run.id,
                run.slice,
                next.pages * SEEN_PAGE_STRIDE + next.offset,
                &seen,
            )
            .map_err(internal)?,
        );
        statements.push(
            knowledge_sources::page_done(
                self.db,
                tenant,
                &source.id,
                &PageDone {
                    run: &run.id,
                    next: read.next.as_ref(),
                    records: read.records,
                    without_key: read.without_key,
                    pieces: read.pieces,
                    tokens: fresh.iter().map(|piece| tokens(&piece.text).count()).sum(),
                    embedded: read.embedded,
                    changed: read.changed,
                    names_customers: page.names_customers.as_ref(),
                },
                &now,
            )
            .map_err(internal)?,
        );
        self.db
            .batch(statements)
            .await
            .map_err(|error| internal(error.into()))?;
        Ok(Some(read))
    }

    /// Removes what the run did not see, then ends it; hands over when the budget is spent first.
    async fn finish(
        &self,
        tenant: &Tenant,
        source: &Source,
        run: &Run,
        started: Timestamp,
    ) -> Result<Ended, ApiError> {
        let mut removed = 0;
        loop {
            let gone = knowledge_chunks::gone(self.db, tenant, &source.id, &run.id, REMOVE_STEP).await?;
            if gone.is_empty() {
                break;
            }
            let ids: Vec<String> = gone.into_iter().map(|piece| piece.id).collect();
            // The vectors go first: a piece whose vector is gone is not found; a vector whose
            // piece is gone would be found and lead nowhere.
            if let Err(why) = self.rag.delete(&ids).await {
                let verdict = Failure::Embedding(why).verdict(
                    runtime::now(),
                    source.link.fetch_interval_minutes,
                    source.status.failures + 1,
                );
                knowledge_sources::record_failure(self.db, tenant, source, &verdict, false, runtime::now())
                    .await?;
                return Ok(Ended::Over);
            }
            let now = runtime::now().to_rfc3339();
            self.db
                .batch(vec![
                    knowledge_chunks::delete(self.db, tenant, &source.id, &ids)?,
                    knowledge_sources::pieces_removed(self.db, tenant, &source.id, &run.id, ids.len(), &now)?,
                ])
                .await?;
            removed += ids.len();
            if self.spent(started, 1) {
                return Ok(Ended::HandOver(step_of(run)));
            }
        }
        while knowledge_chunks::publish(self.db, tenant, &source.id, &run.id, PUBLISH_STEP).await? > 0 {
            if self.spent(started, 1) {
                return Ok(Ended::HandOver(step_of(run)));
            }
        }
        let now = runtime::now();
        self.db
            .batch(vec![
                knowledge_sources::finish_run(self.db, tenant, source, run, now)?,
                knowledge_run_seen::clear(self.db, tenant, &source.id)?,
            ])
            .await?;
        console_log!(
            "Stored {} embeddings from CRM data (page {}, link {}: {} records, {} without a key, {} pieces, {} removed)",
            run.embedded,
            source.page_id.as_str(),
            source.id,
            run.records,
            run.without_key,
            run.pieces,
            run.removed + removed as i64
        );
        Ok(Ended::Over)
    }

    /// A page failed: a refusal after the first page starts the run over once; a transient failure
    /// waits and the run goes on from that page; anything else ends the run with the reason.
    async fn failed(
        &self,
        tenant: &Tenant,
        source: &Source,
        run: Run,
        next: &RunNext,
        failure: Failure,
    ) -> Result<Ended, ApiError> {
        let now = runtime::now();
        let transient = matches!(
            failure,
            Failure::RateLimited { .. }
                | Failure::Unavailable { .. }
                | Failure::TimedOut
                | Failure::Unreachable(_)
                | Failure::Embedding(_)
        );
        // A loop or a run past the page bound would only do the same again.
        let endless = matches!(failure, Failure::Endless(_));
        if !transient && !endless && next.pages > 0 && !run.restarted {
            console_warn!(
                "CRM link {}: page {} refused ({failure:?}); the run starts over from the first page",
                source.id,
                next.pages + 1
            );
            let restarted = self.start(tenant, source, true).await?;
            return Box::pin(self.slice(tenant, source, restarted)).await;
        }
        let verdict = failure.verdict(
            now,
            source.link.fetch_interval_minutes,
            source.status.failures + 1,
        );
        console_warn!(
            "Failed to fetch CRM data: {} (page {}, link {}; next try {})",
            verdict.error,
            source.page_id.as_str(),
            source.id,
            verdict.next_fetch_at.to_rfc3339()
        );
        knowledge_sources::record_failure(self.db, tenant, source, &verdict, !transient, now).await?;
        let wait = verdict.next_fetch_at.seconds() - now.seconds();
        if transient && wait <= RESUME_BY_QUEUE_SECONDS {
            // A short wait (a 429's Retry-After) is waited out on the queue, not until the sweep.
            let again = Due {
                business_id: tenant.business_id.to_string(),
                source_id: source.id.clone(),
                run: Some(step_of(&run)),
            };
            let delay = u32::try_from(wait.max(1)).unwrap_or(1);
            crate::knowledge::hand_over_in(self.env, std::slice::from_ref(&again), delay).await;
        }
        Ok(Ended::Over)
    }
}

/// A page read and cut into pieces, held for the steps that index it.
struct Cut {
    /// The page's URL and the pages read before it: which page of the run it is.
    url: String,
    pages: usize,
    pieces: Vec<Piece>,
    records: usize,
    /// Records of a customers link left out for having no readable key.
    without_key: usize,
    /// The page after it, and the page the run keeps for its loop check.
    after: Option<(String, Option<String>)>,
    /// The numbering after the page.
    numbering: Numbering,
    /// A link of unstated holds whose page names customers: what it is found to be.
    names_customers: Option<HoldsCheck>,
    /// The body, counted as held while the page is.
    _page: fetch::Page,
}

/// A piece of a step, by its place in the step, and its id.
type Indexed<'a> = (usize, &'a String);

/// What one step added.
struct PageRead {
    records: usize,
    without_key: usize,
    pieces: usize,
    embedded: usize,
    changed: bool,
    next: Option<RunNext>,
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
    use crate::runtime::Level;
    use crate::runtime::native::Reply;

    use crate::testing::Fixture;
    use domain::bot::subject::GENERAL;
    use domain::ids::SourceId;
    use domain::links::fetch::{ENDLESS_RETRY_SECONDS, MAX_PAGES_PER_RUN, State};
    use domain::links::link::{LinkChannel, NewLink, PageId};
    use domain::platform::Resource;
    use serde_json::{Value, json};

    const CRM: &str = "https://crm.example.com/customers";

    /// A link on a page whose CRM answers three pages of two customers (`?page=1` … `?page=3`,
    /// each naming the next in a `Link` header), asked for; the source's id and the fetcher's
    /// keys and backend.
    async fn asked_source(fixture: &Fixture, tenant: &Tenant) -> (SourceId, std::rc::Rc<Keyring>, Rag) {
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
    fn crm_page(url: &str, refused: &[&str]) -> Reply {
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

    fn source_row(fixture: &Fixture) -> serde_json::Map<String, Value> {
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
    fn a_later_page_refused_starts_the_run_over_once_and_then_ends_it_with_the_reason() {
        let fixture = Fixture::new();
        fixture
            .stack
            .partner("crm.example.com", |call| crm_page(&call.url, &["page=2"]));
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let (id, keys, rag) = asked_source(&fixture, &tenant).await;
            let fetcher = Fetcher {
                env: &fixture.env,
                db: &fixture.db,
                keys: &keys,
                rag: &rag,
                allow_loopback: false,
            };
            let due = Due {
                business_id: tenant.business_id.to_string(),
                source_id: id,
                run: None,
            };
            fetcher.run(&due).await.unwrap_or_else(|error| panic!("{error}"));
        });
        let pages: Vec<String> = fixture
            .stack
            .calls_to("crm.example.com")
            .iter()
            .map(|call| call.url.clone())
            .collect();
        let second = format!("{CRM}?page=2");
        assert_eq!(
            pages,
            [CRM, second.as_str(), CRM, second.as_str()],
            "its cursor may have expired: the run starts over from the first page, once"
        );
        let row = source_row(&fixture);
        assert_eq!(
            (row["state"].as_str(), row["last_http_status"].as_i64()),
            (Some("failing"), Some(404)),
            "{row:?}"
        );
        assert!(
            row["last_error"]
                .as_str()
                .is_some_and(|error| error.starts_with("404 Not Found: check the URL")),
            "{row:?}"
        );
        assert!(row["run_id"].is_null(), "the run is over: {row:?}");
        assert!(
            fixture
                .rows("knowledge_chunks", "seq")
                .iter()
                .all(|piece| !piece["run_id"].is_null()),
            "nothing of it was published"
        );
        assert_eq!(
            fixture
                .stack
                .logged(Level::Warn, "the run starts over from the first page")
                .len(),
            1
        );
        assert!(
            fixture.stack.queued(crate::knowledge::KNOWLEDGE).is_empty(),
            "a refusal is not retried by the queue"
        );
    }

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

    /// The CRM of the subjects' tests: two customers with an email, one without.
    fn customers_crm(fixture: &Fixture) {
        fixture.stack.partner("crm.example.com", |_| {
            Reply::json(
                200,
                &json!({ "customers": [
                    { "email": "ann@example.com", "name": "Ann" },
                    { "email": "BOB@example.com", "name": "Bob" },
                    { "name": "Nobody" },
                ] }),
            )
        });
    }

    fn local_rag(fixture: &Fixture) -> (Rag, std::rc::Rc<embedder::vectors::Index>) {
        let index = local_server::install(&fixture.stack, |_| unit(0));
        fixture.stack.set_var(RAG_BACKEND, "local");
        fixture.stack.set_var(EMBEDDER_URL, URL);
        (
            Rag::from_env(&fixture.env).unwrap_or_else(|error| panic!("{error}")),
            index,
        )
    }

    /// The source's live pieces: (id, hash, subject token).
    fn pieces_of(fixture: &Fixture) -> Vec<(String, String, Option<String>)> {
        fixture
            .rows("knowledge_chunks", "seq")
            .into_iter()
            .map(|row| {
                let text = |name: &str| row[name].as_str().map(str::to_owned);
                (
                    text("id").unwrap_or_default(),
                    text("hash").unwrap_or_default(),
                    text("subject"),
                )
            })
            .collect()
    }

    fn texts_embedded(fixture: &Fixture) -> usize {
        fixture
            .stack
            .calls_to(local_server::HOST)
            .iter()
            .filter(|call| call.path().starts_with("/ai/run"))
            .map(|call| call.json()["text"].as_array().map_or(0, Vec::len))
            .sum()
    }

    #[test]
    fn what_a_link_holds_decides_its_pieces_subjects_and_a_change_of_it_re_tags_them_without_embedding() {
        let fixture = Fixture::new();
        customers_crm(&fixture);
        let (rag, index) = local_rag(&fixture);
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error}"));
            let id = crate::knowledge::linked::link(&fixture, &rag, &tenant, CRM, json!({ "type": "general" })).await;
            let general = pieces_of(&fixture);
            assert_eq!(general.len(), 3, "general knowledge: every record, the one without an email too");
            assert!(general.iter().all(|(_, _, subject)| subject.as_deref() == Some(GENERAL)));
            assert_eq!(
                general[0].1, "3901662e28b680dd16d0d92bf682dafaf5e63a161b298f08592a2decd4af400a",
                "a general piece's identity is the SHA-256 of its content, as before subjects: nothing indexed \
                 before is embedded again"
            );

            let source = knowledge_sources::find(&fixture.db, &keys, &tenant, &id)
                .await
                .unwrap_or_else(|error| panic!("{error}"))
                .unwrap_or_else(|| panic!("no source"));
            let customers = domain::links::link::Link {
                holds: domain::bot::subject::Holds::Customers {
                    field: "email".to_owned(),
                    kind: domain::bot::subject::KeyKind::Email,
                },
                ..source.link.clone()
            };
            let now = fixture.now().to_rfc3339();
            knowledge_sources::update_settings(&fixture.db, &keys, &tenant, &source, &customers, &now)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let embedded = texts_embedded(&fixture);
            crate::knowledge::linked::fetch(&fixture, &rag, &tenant, &id).await;
            let personal = pieces_of(&fixture);
            let (ann, bob) = (token(Some("email:ann@example.com")), token(Some("email:bob@example.com")));
            assert_eq!(
                personal.iter().map(|(_, _, subject)| subject.clone()).collect::<Vec<_>>(),
                [Some(ann.clone()), Some(bob.clone())],
                "each record its customer's; the one without a key is not indexed"
            );
            assert!(
                personal.iter().all(|(_, hash, _)| general.iter().all(|(_, before, _)| before != hash)),
                "the subject is part of a piece's identity"
            );
            assert_eq!(
                texts_embedded(&fixture) - embedded,
                0,
                "indexed again with their new subjects, their vectors taken from the store, not embedded again"
            );
            let vectors = index.vectors(&[personal[0].0.clone(), general[0].0.clone()]);
            assert_eq!(vectors.len(), 1, "the general pieces' vectors are gone");
            assert_eq!(vectors[0].metadata.subject, ann, "the vector carries its subject's token");
            let source = knowledge_sources::find(&fixture.db, &keys, &tenant, &id)
                .await
                .unwrap_or_else(|error| panic!("{error}"))
                .unwrap_or_else(|| panic!("no source"));
            assert_eq!(
                (source.status.records, source.status.without_key, source.status.pieces),
                (3, 1, 2),
                "the record without a key is counted, and shown"
            );
        });
    }

    #[test]
    fn a_piece_indexed_before_subjects_has_its_vector_written_again_with_its_token_without_being_embedded() {
        let fixture = Fixture::new();
        customers_crm(&fixture);
        let (rag, index) = local_rag(&fixture);
        fixture.run(async {
            // On the first shard, whose rows the test changes by hand.
            let tenant = fixture.business_on("Acme", 0).await;
            let id =
                crate::knowledge::linked::link(&fixture, &rag, &tenant, CRM, json!({ "type": "general" }))
                    .await;
            // As migration 0032 leaves what was indexed before it: no subject in D1, and vectors
            // written without one.
            fixture.stack.sql("DB", |connection| {
                let changed = connection
                    .execute("UPDATE knowledge_chunks SET subject = NULL", [])
                    .unwrap_or_else(|error| panic!("{error}"));
                assert_eq!(changed, 3);
            });
            let ids: Vec<String> = pieces_of(&fixture).into_iter().map(|(id, _, _)| id).collect();
            let untagged: Vec<embedder::vectors::Vector> = index
                .vectors(&ids)
                .into_iter()
                .map(|mut vector| {
                    vector.metadata.subject = String::new();
                    vector
                })
                .collect();
            index.upsert(untagged).unwrap_or_else(|error| panic!("{error}"));
            let before = texts_embedded(&fixture);
            crate::knowledge::linked::fetch(&fixture, &rag, &tenant, &id).await;
            assert_eq!(texts_embedded(&fixture), before, "nothing embedded again");
            assert!(
                index
                    .vectors(&ids)
                    .iter()
                    .all(|vector| vector.metadata.subject == GENERAL),
                "every vector written again with its token"
            );
            assert!(
                pieces_of(&fixture)
                    .iter()
                    .all(|(_, _, subject)| subject.as_deref() == Some(GENERAL))
            );
        });
    }
}
