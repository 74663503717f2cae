//! What the scheduler and the fetcher write. The scheduler takes the sources that are due (and
//! finds runs that stopped moving); the fetcher leases a source for one slice, starts a run,
//! records each page it read, hands the next slice over, and ends the run: finished, failed
//! (to go on later, or abandoned), or released with nothing to fetch.

use super::{Run, RunNext, Source};
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, Statement, number, optional_number, optional_text, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::fetch::{State, Verdict};
use domain::links::identifiers::HoldsCheck;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::{Deserialize, Serialize};

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
        .rows::<DueRow>()?;
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
        .rows::<DueRow>()?;
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

#[cfg(test)]
mod tests {
    use super::super::ask;
    use super::super::tests::{URL, api_source, batch, one, start};
    use super::*;
    use crate::db::knowledge_run_seen;
    use crate::testing::{Fixture, Must, link, page};
    use domain::links::document::Numbering;
    use domain::links::link::{LinkChannel, LinkType};
    use std::time::Duration;

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
}
