//! What the CRM links API and the receiver of pushed data write: a new source (within the caps of
//! the business and its page, counted in the same statement), its settings, the schedule its
//! links' channels decide, a fetch asked for, the refreshes of an hour, a push recorded once and
//! never behind the newest, and a source deleted with everything of it.

use super::Source;
use super::rows::{Fields, sealed, stored_url};
use crate::db::{self, Db, number, optional_number, optional_text, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::link::{Link, PageId};
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::super::finish_run;
    use super::super::tests::{URL, api_source, batch, one, start};
    use super::*;
    use crate::db::{knowledge_chunks, knowledge_links, knowledge_run_seen};
    use crate::testing::{Fixture, Must, link, page};
    use domain::bot::subject::Holds;
    use domain::links::fetch::State;
    use domain::links::link::{LinkChannel, LinkSecret, LinkType};
    use std::time::Duration;

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
