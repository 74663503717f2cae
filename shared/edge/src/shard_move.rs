//! Moving a business to another shard, one bounded step a call (`domain::shard_move` says the
//! phases; `POST /admin/businesses/{id}/move` and `crm-edge move-business` drive it). Each step
//! runs at most [`ROWS_PER_STEP`] rows' statements, well inside an invocation's D1 queries.
//!
//! What is paused is what goes through the tenant's door (`Db::scoped`): every write of the
//! business's requests, queue consumers and CRM work, which fail as a database that does not
//! answer does (503, retried). Statements that are no one business's still run during the copy
//! (the sweep deleting expired rows, a console link opened by its hash): a copy they change
//! fails its verification, and the command starts it over.

use crate::audit::Audit;
use crate::db::directory;
use crate::db::{Db, Shard, moves};
use crate::env::Env;
use domain::api::admin::MoveOut;
use domain::audit::Action;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::shard_move::{Cursor, Entry, MOVED_TABLES, Phase, ROWS_PER_STEP, phase};
use serde_json::json;

/// The next step of moving `business` to shard `to`, from `cursor` (the last step's answer), at
/// `now_ms`. The step that switches records the move in the business's audit log, as `audit`.
pub async fn step(
    env: &Env,
    audit: &Audit,
    db: &Db,
    business: &BusinessId,
    to: Shard,
    cursor: Option<Cursor>,
    now_ms: i64,
) -> Result<MoveOut, ApiError> {
    if usize::from(to) >= db.shard_count() {
        return Err(ApiError::invalid(
            "to_shard",
            format!("there are {} shards, numbered from 0", db.shard_count()),
        ));
    }
    let entry = directory::entry(db, business).await?;
    let answer = |phase: &'static str, wait_ms: i64, rows: usize, cursor: Option<Cursor>| MoveOut {
        business_id: business.clone(),
        shard: entry.shard,
        to_shard: to,
        phase,
        wait_seconds: u32::try_from((wait_ms + 999) / 1000).unwrap_or(0),
        rows,
        cursor: cursor.map(|cursor| cursor.to_string()),
    };
    match phase(&entry, to, now_ms, db.directory_fresh_ms()) {
        Phase::Conflict(why) => Err(ApiError::conflict(why)),
        Phase::Done => Ok(answer("done", 0, 0, None)),
        Phase::Start => {
            let paused = Entry {
                moving_to: Some(to),
                move_started_ms: Some(now_ms),
                ..entry
            };
            directory::record(db, business, &paused).await?;
            let wait_ms = match phase(&paused, to, now_ms, db.directory_fresh_ms()) {
                Phase::Pausing { wait_ms } => wait_ms,
                _ => 0,
            };
            Ok(answer("pausing", wait_ms, 0, Some(Cursor::DELETE_ALL)))
        }
        Phase::Pausing { wait_ms } => Ok(answer(
            "pausing",
            wait_ms,
            0,
            Some(cursor.unwrap_or(Cursor::DELETE_ALL)),
        )),
        Phase::Copying => {
            let (rows, next) = match cursor.unwrap_or(Cursor::DELETE_ALL) {
                Cursor::Delete { table } => {
                    let (rows, left) = delete(&db.on_shard(to), business, table).await?;
                    (rows, left.unwrap_or(Cursor::COPY_ALL))
                }
                Cursor::Copy { table, after } => copy(db, business, entry.shard, to, table, after).await?,
                Cursor::Verify => {
                    verify(db, business, entry.shard, to).await?;
                    let switched = Entry {
                        shard: to,
                        moving_to: None,
                        move_started_ms: None,
                        moved_from: Some(entry.shard),
                        switched_ms: Some(now_ms),
                    };
                    directory::record(db, business, &switched).await?;
                    let detail = json!({ "from_shard": entry.shard, "to_shard": to });
                    audit
                        .record(
                            env,
                            business,
                            Action::BusinessMoved,
                            Some(business.as_str()),
                            detail,
                        )
                        .await;
                    let wait_ms = db.directory_fresh_ms();
                    return Ok(MoveOut {
                        shard: to,
                        ..answer("switched", wait_ms, 0, Some(Cursor::DELETE_ALL))
                    });
                }
            };
            Ok(answer("copying", 0, rows, Some(next)))
        }
        Phase::Switched { wait_ms } => Ok(answer("switched", wait_ms, 0, Some(Cursor::DELETE_ALL))),
        Phase::Cleaning { from } => {
            let table = match cursor {
                Some(Cursor::Delete { table }) => table,
                _ => MOVED_TABLES.len() - 1,
            };
            let (rows, left) = delete(&db.on_shard(from), business, table).await?;
            if left.is_some() {
                return Ok(answer("deleting", 0, rows, left));
            }
            let settled = Entry {
                moved_from: None,
                switched_ms: None,
                ..entry
            };
            directory::record(db, business, &settled).await?;
            Ok(answer("done", 0, rows, None))
        }
    }
}

/// Deletes the business's rows on the shard of `db` from `MOVED_TABLES[table]` back to the
/// first table, up to a step's rows: how many, and where to go on (`None`: nothing is left).
async fn delete(db: &Db, business: &BusinessId, table: usize) -> Result<(usize, Option<Cursor>), ApiError> {
    let mut deleted = 0;
    let mut table = table;
    loop {
        let budget = ROWS_PER_STEP - deleted;
        let gone = moves::delete_rows(db, &MOVED_TABLES[table], business, budget).await?;
        deleted += gone;
        if gone == budget {
            return Ok((deleted, Some(Cursor::Delete { table })));
        }
        if table == 0 {
            return Ok((deleted, None));
        }
        table -= 1;
    }
}

/// Copies the business's rows from `MOVED_TABLES[table]` past rowid `after` on, up to a step's
/// rows: how many, and where to go on. The same cursor copies the same rows however often it is
/// given (a command that lost a step's answer, or whose step broke off, gives it again).
async fn copy(
    db: &Db,
    business: &BusinessId,
    from: Shard,
    to: Shard,
    table: usize,
    after: i64,
) -> Result<(usize, Cursor), ApiError> {
    let (source, target) = (db.on_shard(from), db.on_shard(to));
    // A step that broke off may have written part of what it copies: start from where its cursor
    // says, so that running a step again with the same cursor copies each row once.
    let kept = moves::count_up_to(&source, &MOVED_TABLES[table], business, after).await?;
    moves::trim(&target, &MOVED_TABLES[table..], business, kept).await?;
    let (mut copied, mut table, mut after) = (0, table, after);
    loop {
        let budget = ROWS_PER_STEP - copied;
        let read = moves::rows_after(&source, &MOVED_TABLES[table], business, after, budget).await?;
        if !read.rows.is_empty() {
            moves::insert_rows(&target, &MOVED_TABLES[table], &read.rows).await?;
        }
        copied += read.rows.len();
        if read.rows.len() == budget {
            let last = read.rowids.last().copied().unwrap_or(after);
            return Ok((copied, Cursor::Copy { table, after: last }));
        }
        table += 1;
        after = 0;
        if table == MOVED_TABLES.len() {
            return Ok((copied, Cursor::Verify));
        }
    }
}

/// The copy holds as many of the business's rows of each table as the old shard.
async fn verify(db: &Db, business: &BusinessId, from: Shard, to: Shard) -> Result<(), ApiError> {
    let held = moves::counts(&db.on_shard(from), business).await?;
    let copied = moves::counts(&db.on_shard(to), business).await?;
    for ((table, held), copied) in MOVED_TABLES.iter().zip(held).zip(copied) {
        if held != copied {
            return Err(ApiError::conflict(format!(
                "the copy did not verify: {} holds {held} rows on shard {from} and {copied} on shard {to} \
                 (rows changed during the copy); move again without a cursor to copy it over",
                table.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ADA_PHONE, Fixture, WHATSAPP_NUMBER_ID};
    use domain::audit::Actor;
    use domain::tenant::Tenant;
    use serde_json::{Value, json};
    use std::time::Duration;

    /// Every row of the business in every moved table on shard `binding`, as `SELECT *` gives
    /// them, each table's rows sorted; a renumbered table's key left out (the new shard numbers
    /// its rows afresh).
    fn held(fixture: &Fixture, binding: &str, business: &BusinessId) -> Vec<(String, Vec<String>)> {
        MOVED_TABLES
            .iter()
            .map(|table| {
                let rows = fixture.stack.sql(binding, |connection| {
                    let sql = format!(
                        "SELECT * FROM {} WHERE {} = ?1",
                        table.name, table.business_column
                    );
                    let mut statement = connection
                        .prepare(&sql)
                        .unwrap_or_else(|error| panic!("{sql}: {error}"));
                    let names: Vec<String> = statement.column_names().map(str::to_owned).collect();
                    let mut answer = statement
                        .query([business.as_str()])
                        .unwrap_or_else(|error| panic!("{sql}: {error}"));
                    let mut rows = Vec::new();
                    while let Some(row) = answer.next().unwrap_or_else(|error| panic!("{error}")) {
                        let mut object = serde_json::Map::new();
                        for (at, name) in names.iter().enumerate() {
                            if Some(name.as_str()) == table.renumbered {
                                continue;
                            }
                            let value: rusqlite::types::Value =
                                row.get(at).unwrap_or_else(|error| panic!("{error}"));
                            object.insert(name.clone(), json!(format!("{value:?}")));
                        }
                        rows.push(Value::Object(object).to_string());
                    }
                    rows.sort();
                    rows
                });
                (table.name.to_owned(), rows)
            })
            .collect()
    }

    /// What each step said, for a failure's message.
    fn said(steps: &[MoveOut]) -> Vec<(&'static str, usize, Option<String>)> {
        steps
            .iter()
            .map(|out| (out.phase, out.rows, out.cursor.clone()))
            .collect()
    }

    /// The tables whose rows differ between `a` and `b`, with how many each holds, the audit log
    /// aside (the move writes its own entry).
    fn differing(a: &[(String, Vec<String>)], b: &[(String, Vec<String>)]) -> Vec<(String, usize, usize)> {
        a.iter()
            .zip(b)
            .filter(|((name, rows_a), (_, rows_b))| name != "audit_log" && rows_a != rows_b)
            .map(|((name, rows_a), (_, rows_b))| (name.clone(), rows_a.len(), rows_b.len()))
            .collect()
    }

    fn count(rows: &[(String, Vec<String>)]) -> usize {
        rows.iter().map(|(_, rows)| rows.len()).sum()
    }

    /// A business on the first shard with customers (more than a step copies), a message,
    /// an endpoint and its events, an account and a key.
    async fn business(fixture: &Fixture) -> Tenant {
        let tenant = fixture.business_on("Acme", 0).await;
        fixture.api_key(&tenant).await;
        let account = fixture.on_whatsapp(&tenant, WHATSAPP_NUMBER_ID).await;
        let customers: Vec<Value> = (0..250)
            .map(|n| json!({ "name": format!("c{n}"), "email": format!("c{n}@example.com") }))
            .collect();
        fixture.customers(&tenant, Value::Array(customers)).await;
        let message = domain::inbound::InboundMessage {
            provider_message_id: "wamid.1".to_owned(),
            from: ADA_PHONE.to_owned(),
            sender_name: Some("Ada".to_owned()),
            content: "Hi".to_owned(),
            media: Vec::new(),
        };
        fixture.ingest_one(&account, message).await;
        tenant
    }

    async fn next(
        fixture: &Fixture,
        business: &BusinessId,
        to: Shard,
        cursor: Option<&str>,
    ) -> Result<MoveOut, ApiError> {
        let cursor = cursor.map(|text| Cursor::parse(text).unwrap_or_else(|error| panic!("{error}")));
        let audit = Audit::new(Actor::Admin, None);
        // Each step is a request of its own: one invocation's queries.
        let env = Env::new(fixture.stack.clone(), "fetch");
        let db = env.d1(crate::DB).unwrap_or_else(|error| panic!("{error}"));
        step(&env, &audit, &db, business, to, cursor, fixture.stack.now_ms()).await
    }

    /// Steps the move to its end as the command does, waiting as each step says; every step.
    async fn drive(fixture: &Fixture, business: &BusinessId, to: Shard) -> Vec<MoveOut> {
        let mut steps: Vec<MoveOut> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let out = next(fixture, business, to, cursor.as_deref())
                .await
                .unwrap_or_else(|error| panic!("{error:?} after {:?}", said(&steps)));
            fixture
                .stack
                .advance(Duration::from_secs(u64::from(out.wait_seconds)));
            cursor = out.cursor.clone();
            let done = out.phase == "done";
            steps.push(out);
            if done {
                return steps;
            }
        }
        panic!("no end: {:?}", said(&steps));
    }

    #[test]
    fn a_moved_business_holds_on_its_new_shard_exactly_the_rows_it_held_and_nothing_is_left_behind() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = business(&fixture).await;
            let id = &tenant.business_id;
            let before = held(&fixture, "DB", id);
            assert!(count(&before) > ROWS_PER_STEP, "more rows than one step copies");
            assert_eq!(count(&held(&fixture, "DB_1", id)), 0);
            let steps = drive(&fixture, id, 1).await;
            let phases: Vec<&str> = steps.iter().map(|out| out.phase).collect();
            assert_eq!(phases.first(), Some(&"pausing"));
            assert!(
                phases.contains(&"copying") && phases.contains(&"switched"),
                "{phases:?}"
            );
            assert!(
                steps.iter().all(|out| out.rows <= ROWS_PER_STEP),
                "{:?}",
                said(&steps)
            );
            assert_eq!(differing(&held(&fixture, "DB_1", id), &before), Vec::new());
            assert_eq!(count(&held(&fixture, "DB", id)), 0, "the old copy is deleted");
            let entry = directory::entry(&fixture.db, id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!((entry.shard, entry.moving_to, entry.moved_from), (1, None, None));
            let moved: Vec<_> = fixture
                .rows("audit_log", "at_us")
                .into_iter()
                .filter(|row| row["action"] == "business.moved")
                .collect();
            assert_eq!(moved.len(), 1);
            assert_eq!(moved[0]["detail"], r#"{"from_shard":0,"to_shard":1}"#);
            assert_eq!(
                next(&fixture, id, 1, None).await.map(|out| out.phase).ok(),
                Some("done"),
                "again: nothing to do"
            );
        });
    }

    #[test]
    fn while_it_moves_the_businesss_writes_are_a_503_and_after_they_land_on_the_new_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = business(&fixture).await;
            let id = &tenant.business_id;
            let paused = next(&fixture, id, 1, None)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(paused.phase, "pausing");
            assert_eq!(paused.wait_seconds, 62, "the directory's minute, and a margin");
            fixture
                .stack
                .advance(Duration::from_secs(u64::from(paused.wait_seconds)));
            fixture.stack.restart_isolate();
            let env = crate::Env::new(fixture.stack.clone(), "fetch");
            let db = env.d1(crate::DB).unwrap_or_else(|error| panic!("{error}"));
            let read = crate::db::api_keys::list(&db, &tenant).await;
            assert!(read.is_ok(), "reads go on");
            let refused = new_key(&tenant, &db).await;
            assert_eq!(
                refused.map(|error| (error.status(), error.retry_after_seconds)),
                Some((503, Some(10)))
            );
            drive(&fixture, id, 1).await;
            fixture.stack.restart_isolate();
            let env = crate::Env::new(fixture.stack.clone(), "fetch");
            let db = env.d1(crate::DB).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(new_key(&tenant, &db).await, None, "writes go on");
            assert_eq!(count(&held(&fixture, "DB", id)), 0);
        });
    }

    /// Stores a new key of `tenant` through `db`: the error, if the write is refused.
    async fn new_key(tenant: &Tenant, db: &Db) -> Option<ApiError> {
        let issued = domain::api_key::issue([9; 24]);
        let key = crate::db::api_keys::ApiKey {
            id: domain::ids::ApiKeyId::generate(
                crate::runtime::random().unwrap_or_else(|error| panic!("{error:?}")),
            ),
            business_id: tenant.business_id.clone(),
            name: None,
            prefix: issued.prefix,
            created_at: crate::runtime::now().to_rfc3339(),
            revoked_at: None,
        };
        crate::db::api_keys::insert(db, tenant, &key, &issued.hash)
            .await
            .err()
    }

    #[test]
    fn a_copy_that_changed_under_it_does_not_verify_and_a_move_from_the_start_copies_it_over() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = business(&fixture).await;
            let id = &tenant.business_id;
            let mut cursor: Option<String> = None;
            let mut steps = 0;
            let failure = loop {
                steps += 1;
                assert!(steps < 100, "the copy verified");
                match next(&fixture, id, 1, cursor.as_deref()).await {
                    Ok(out) => {
                        if out.phase == "copying" && out.cursor.as_deref() == Some("verify") {
                            // A statement no one business's changes the old copy (the sweep).
                            fixture.stack.sql("DB", |connection| {
                                connection
                                    .execute(
                                        "DELETE FROM webhook_events WHERE business_id = ?1",
                                        [id.as_str()],
                                    )
                                    .unwrap_or_else(|error| panic!("{error}"))
                            });
                        }
                        fixture
                            .stack
                            .advance(Duration::from_secs(u64::from(out.wait_seconds)));
                        cursor = out.cursor;
                    }
                    Err(error) => break error,
                }
            };
            assert_eq!(failure.status(), 409);
            assert!(
                failure
                    .body
                    .message
                    .contains("the copy did not verify: webhook_events"),
                "{}",
                failure.body.message
            );
            let entry = directory::entry(&fixture.db, id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                (entry.shard, entry.moving_to),
                (0, Some(1)),
                "still on its shard, still paused"
            );
            let before = held(&fixture, "DB", id);
            drive(&fixture, id, 1).await;
            assert_eq!(differing(&held(&fixture, "DB_1", id), &before), Vec::new());
        });
    }

    #[test]
    fn a_move_to_a_shard_that_is_not_there_or_against_another_move_is_refused() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business_on("Acme", 0).await;
            let id = &tenant.business_id;
            let nowhere = next(&fixture, id, 2, None).await.err();
            assert_eq!(
                nowhere.map(|error| (error.status(), error.body.field)),
                Some((422, Some("to_shard".to_owned())))
            );
            next(&fixture, id, 1, None)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let back = next(&fixture, id, 0, None).await.err();
            assert_eq!(
                back.map(|error| error.status()),
                Some(409),
                "another move stands in the way"
            );
            let here = fixture.business_on("Globex", 1).await;
            let stay = next(&fixture, &here.business_id, 1, None).await.ok();
            assert_eq!(stay.map(|out| (out.phase, out.rows)), Some(("done", 0)));
        });
    }
}
