//! A run's end. Once every page is read, the pieces the run did not see are removed (their
//! vectors first), the staged ones published, and the run finished, each a bounded step that hands
//! over when the slice's budget is spent. A failed page: a refusal after the first page starts
//! the run over once; a transient failure waits, on the queue when the wait is short; anything
//! else ends the run with the reason, keeping what was indexed before.

use super::{Ended, Fetcher, step_of};
use crate::db::knowledge_chunks;
use crate::db::knowledge_run_seen;
use crate::db::knowledge_sources::{self, Due, Run, RunNext, Source};
use crate::{console_log, console_warn, runtime};
use domain::error::ApiError;
use domain::links::fetch::Failure;
use domain::tenant::Tenant;
use domain::time::Timestamp;

/// Pieces removed per step at a run's end (ids per vector store call and per D1 statement).
const REMOVE_STEP: usize = 1_000;

/// Staged pieces published per statement at a run's end.
const PUBLISH_STEP: usize = 10_000;
/// A run that waits out a failure this long or less goes on through the queue's delay; a longer
/// wait is the sweep's (it queues the run's next slice once `next_fetch_at` has passed).
const RESUME_BY_QUEUE_SECONDS: i64 = 15 * 60;

impl Fetcher<'_> {
    /// Removes what the run did not see, then ends it; hands over when the budget is spent first.
    pub(super) async fn finish(
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
    pub(super) async fn failed(
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

#[cfg(test)]
mod tests {
    use super::super::Fetcher;
    use super::super::tests::{CRM, asked_source, crm_page, source_row};
    use crate::db::knowledge_sources::Due;
    use crate::runtime::Level;
    use crate::testing::Fixture;

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
}
