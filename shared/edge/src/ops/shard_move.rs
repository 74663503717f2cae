//! Moving a business to another shard, one bounded step a call (`domain::shard_move` says the
//! phases; `POST /admin/businesses/{id}/move` and `crm-edge admin businesses move` drive it), and
//! aborting a move before its switch (`POST /admin/businesses/{id}/move/abort`). Each step runs
//! at most [`ROWS_PER_STEP`] rows' statements, well inside an invocation's D1 queries.
//!
//! What is paused is what goes through the tenant's door (`Db::scoped`): every write of the
//! business's requests, queue consumers and CRM work, which fail as a database that does not
//! answer does (503, retried). The sweeps leave a moving business alone (`Entry::settled_on`).
//! Statements that are no one business's still run during the copy (a console link opened by its
//! hash): a copy they change fails its verification, which compares every stored column of every
//! row, and the command starts it over.
//!
//! A step that fails names the table it was at and the database's reason: the admin API is the
//! operator's alone, and the operator decides from it whether to go on or abort.

use crate::db::directory;
use crate::db::{Db, Shard, moves};
use crate::platform::audit::Audit;
use crate::platform::env::Env;
use domain::api::admin::MoveOut;
use domain::audit::Action;
use domain::error::{ApiError, ErrorCode};
use domain::ids::BusinessId;
use domain::shard_move::{
    Abort, Cursor, Entry, MOVED_TABLES, MovedTable, Phase, ROWS_PER_STEP, abort, phase,
};
use serde_json::{Map, Value, json};

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
    let entry = directory::entry(db, business).await.map_err(at_directory)?;
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
        // A cursor belongs to a move under way: this one ended (aborted) since it was answered.
        Phase::Start if cursor.is_some() => Err(ApiError::conflict(
            "the move this cursor belongs to is no longer under way (it was aborted): start again without a cursor",
        )),
        Phase::Start => {
            let paused = Entry {
                moving_to: Some(to),
                move_started_ms: Some(now_ms),
                ..entry
            };
            directory::record(db, business, &paused)
                .await
                .map_err(at_directory)?;
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
                    let (rows, left) = delete(db, to, business, table).await?;
                    (rows, left.unwrap_or(Cursor::COPY_ALL))
                }
                Cursor::Copy { table, after } => copy(db, business, entry.shard, to, table, after).await?,
                Cursor::Verify {
                    table,
                    source_after,
                    target_after,
                } => {
                    let (from, at) = (entry.shard, (source_after, target_after));
                    if let Some((rows, left)) = verify(db, business, from, to, table, at).await? {
                        return Ok(answer("verifying", 0, rows, Some(left)));
                    }
                    let switched = Entry {
                        shard: to,
                        moving_to: None,
                        move_started_ms: None,
                        moved_from: Some(entry.shard),
                        switched_ms: Some(now_ms),
                        revision: entry.revision,
                    };
                    directory::record(db, business, &switched)
                        .await
                        .map_err(at_directory)?;
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
            let (rows, left) = delete(db, from, business, table).await?;
            if left.is_some() {
                return Ok(answer("deleting", 0, rows, left));
            }
            let settled = Entry {
                moved_from: None,
                switched_ms: None,
                ..entry
            };
            directory::record(db, business, &settled)
                .await
                .map_err(at_directory)?;
            Ok(answer("done", 0, rows, None))
        }
    }
}

/// The next step of aborting the move of `business`, from `cursor` (the last abort step's
/// answer): the first ends the pause, every step deletes part of the partial copy, and the last
/// (phase `aborted`) finds nothing of the business left there. Ending the pause first gives the
/// business its writes back at once; the copy it leaves is no one's to read (the directory names
/// the old shard) and the sweeps leave it alone, or delete it if the abort stops.
pub async fn abort_step(
    env: &Env,
    audit: &Audit,
    db: &Db,
    business: &BusinessId,
    cursor: Option<Cursor>,
) -> Result<MoveOut, ApiError> {
    let mut entry = directory::entry(db, business).await.map_err(at_directory)?;
    let (from, table) = match abort(&entry) {
        Abort::Conflict(why) => return Err(ApiError::conflict(why)),
        Abort::EndPause { to } => {
            let aborted = Entry {
                moving_to: None,
                move_started_ms: None,
                moved_from: Some(to),
                switched_ms: None,
                ..entry
            };
            entry = directory::record(db, business, &aborted)
                .await
                .map_err(at_directory)?;
            let detail = json!({ "from_shard": entry.shard, "to_shard": to });
            audit
                .record(
                    env,
                    business,
                    Action::BusinessMoveAborted,
                    Some(business.as_str()),
                    detail,
                )
                .await;
            (to, MOVED_TABLES.len() - 1)
        }
        Abort::Deleting { from } => match cursor {
            Some(Cursor::Delete { table }) => (from, table),
            _ => (from, MOVED_TABLES.len() - 1),
        },
    };
    let answer = |phase: &'static str, rows: usize, cursor: Option<Cursor>| MoveOut {
        business_id: business.clone(),
        shard: entry.shard,
        to_shard: from,
        phase,
        wait_seconds: 0,
        rows,
        cursor: cursor.map(|cursor| cursor.to_string()),
    };
    let (rows, left) = delete(db, from, business, table).await?;
    if left.is_some() {
        return Ok(answer("deleting", rows, left));
    }
    // A copy step that was under way when the pause ended may have written behind the deletion.
    let held = moves::counts(&db.on_shard(from), business)
        .await
        .map_err(|error| {
            failed(
                &format!("counting what is left of the copy on shard {from}"),
                error,
            )
        })?;
    if held.iter().any(|held| *held > 0) {
        return Ok(answer("deleting", rows, Some(Cursor::DELETE_ALL)));
    }
    let settled = Entry {
        moved_from: None,
        switched_ms: None,
        ..entry
    };
    directory::record(db, business, &settled)
        .await
        .map_err(at_directory)?;
    Ok(answer("aborted", rows, None))
}

/// The error of a step at `table` on `shard`, saying so: its status kept (a shard that did not
/// answer is still a 503 to retry), its message the table and the database's reason.
fn at_table(doing: &'static str, table: &'static MovedTable, shard: Shard) -> impl Fn(ApiError) -> ApiError {
    move |error| failed(&format!("{doing} {} on shard {shard}", table.name), error)
}

/// The error of a step's read or write of the business's directory entry (business_shards, on
/// the first shard), saying so.
fn at_directory(error: ApiError) -> ApiError {
    failed(
        "reading or writing the business's directory entry (business_shards on shard 0)",
        error,
    )
}

/// `error`, its message saying what failed and the database's reason, when it is the database's.
fn failed(what: &str, mut error: ApiError) -> ApiError {
    if matches!(
        error.code(),
        ErrorCode::InternalError | ErrorCode::ServiceUnavailable | ErrorCode::Conflict
    ) {
        let reason = error.detail().unwrap_or(&error.body.message).to_owned();
        error.body.message = format!("{what} failed: {reason}");
    }
    error
}

/// Deletes the business's rows on the shard of `db` from `MOVED_TABLES[table]` back to the
/// first table, up to a step's rows: how many, and where to go on (`None`: nothing is left).
pub(crate) async fn delete(
    db: &Db,
    shard: Shard,
    business: &BusinessId,
    table: usize,
) -> Result<(usize, Option<Cursor>), ApiError> {
    let db = db.on_shard(shard);
    let mut deleted = 0;
    let mut table = table;
    loop {
        let budget = ROWS_PER_STEP - deleted;
        let moved = &MOVED_TABLES[table];
        let gone = moves::delete_rows(&db, moved, business, budget)
            .await
            .map_err(at_table("deleting", moved, shard))?;
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
    let moved = &MOVED_TABLES[table];
    let kept = moves::count_up_to(&source, moved, business, after)
        .await
        .map_err(at_table("reading", moved, from))?;
    moves::trim(&target, &MOVED_TABLES[table..], business, kept)
        .await
        .map_err(at_table("trimming a broken-off copy of", moved, to))?;
    let (mut copied, mut table, mut after) = (0, table, after);
    loop {
        let budget = ROWS_PER_STEP - copied;
        let moved = &MOVED_TABLES[table];
        let read = moves::rows_after(&source, moved, business, after, budget)
            .await
            .map_err(at_table("reading", moved, from))?;
        if !read.rows.is_empty() {
            moves::insert_rows(&target, moved, &read.rows)
                .await
                .map_err(at_table("copying", moved, to))?;
        }
        copied += read.rows.len();
        if read.rows.len() == budget {
            let last = read.rowids.last().copied().unwrap_or(after);
            return Ok((copied, Cursor::Copy { table, after: last }));
        }
        table += 1;
        after = 0;
        if table == MOVED_TABLES.len() {
            return Ok((copied, Cursor::VERIFY_ALL));
        }
    }
}

/// Compares the business's rows of `MOVED_TABLES[table]` on both shards from the rowids `at` on
/// (old shard's, new shard's), then the tables after it, up to a step's rows of each shard: every
/// stored column of every row, in the order they were copied (the new shard numbers its rows in
/// that order). `None` when every table verified; else the rows compared and where to go on. A
/// row changed, added or deleted on either shard since it was copied fails it, naming the table,
/// and the command copies everything over.
///
/// D1 has no hash function, and one written in SQL would walk every byte, so the rows themselves
/// are compared here: the same reads as the copy's, a page at a time. A change that lands on a
/// page after it was compared and before the switch is not seen; the sweeps, which are what
/// changes a paused business's rows, leave it alone (`directory::Moving`).
async fn verify(
    db: &Db,
    business: &BusinessId,
    from: Shard,
    to: Shard,
    table: usize,
    at: (i64, i64),
) -> Result<Option<(usize, Cursor)>, ApiError> {
    let (source, target) = (db.on_shard(from), db.on_shard(to));
    let (mut compared, mut table, (mut source_after, mut target_after)) = (0, table, at);
    loop {
        let budget = ROWS_PER_STEP - compared;
        let moved = &MOVED_TABLES[table];
        let held = moves::rows_after(&source, moved, business, source_after, budget)
            .await
            .map_err(at_table("verifying", moved, from))?;
        let copied = moves::rows_after(&target, moved, business, target_after, budget)
            .await
            .map_err(at_table("verifying", moved, to))?;
        if let Some(why) = difference(&held.rows, &copied.rows, (from, to)) {
            return Err(ApiError::conflict(format!(
                "the copy did not verify: {}: {why} (changed on one of them since it was copied); \
                 move again without a cursor to copy it over, or abort the move",
                moved.name
            )));
        }
        compared += held.rows.len();
        if held.rows.len() == budget {
            source_after = held.rowids.last().copied().unwrap_or(source_after);
            target_after = copied.rowids.last().copied().unwrap_or(target_after);
            let left = Cursor::Verify {
                table,
                source_after,
                target_after,
            };
            return Ok(Some((compared, left)));
        }
        table += 1;
        (source_after, target_after) = (0, 0);
        if table == MOVED_TABLES.len() {
            return Ok(None);
        }
    }
}

/// How the old shard's page of rows differs from the copy's, in words; none when they are the
/// same. `shards`: (old, new).
fn difference(
    held: &[Map<String, Value>],
    copied: &[Map<String, Value>],
    (from, to): (Shard, Shard),
) -> Option<String> {
    if held.len() != copied.len() {
        return Some(format!(
            "shard {from} holds {} rows where shard {to} holds {} (from the same place on)",
            held.len(),
            copied.len()
        ));
    }
    let (at, (held, copied)) = held
        .iter()
        .zip(copied)
        .enumerate()
        .find(|(_, (held, copied))| held != copied)?;
    let columns: Vec<&str> = held
        .keys()
        .chain(copied.keys().filter(|column| !held.contains_key(*column)))
        .filter(|column| held.get(*column) != copied.get(*column))
        .map(String::as_str)
        .collect();
    Some(format!(
        "a row differs between shard {from} and shard {to} in {} (row {} of the step's page)",
        columns.join(", "),
        at + 1
    ))
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
        let db = env.db().unwrap_or_else(|error| panic!("{error}"));
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
            let db = env.db().unwrap_or_else(|error| panic!("{error}"));
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
            let db = env.db().unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(new_key(&tenant, &db).await, None, "writes go on");
            assert_eq!(count(&held(&fixture, "DB", id)), 0);
        });
    }

    /// Stores a new key of `tenant` through `db`: the error, if the write is refused.
    async fn new_key(tenant: &Tenant, db: &Db) -> Option<ApiError> {
        let issued =
            domain::api_key::issue(crate::runtime::random().unwrap_or_else(|error| panic!("{error:?}")));
        let key = crate::db::api_keys::ApiKey {
            id: domain::ids::ApiKeyId::generate(
                crate::runtime::random().unwrap_or_else(|error| panic!("{error:?}")),
            ),
            business_id: tenant.business_id.clone(),
            name: None,
            prefix: issued.prefix,
            created_at: crate::runtime::now().to_rfc3339(),
            revoked_at: None,
            last_used_at: None,
            last_used_address: None,
            last_used_endpoint: None,
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
                        if out.phase == "copying" && out.cursor.as_deref() == Some("verify:0:0:0") {
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

    /// One step of aborting the move of `business`.
    async fn abort_next(
        fixture: &Fixture,
        business: &BusinessId,
        cursor: Option<&str>,
    ) -> Result<MoveOut, ApiError> {
        let cursor = cursor.map(|text| Cursor::parse(text).unwrap_or_else(|error| panic!("{error}")));
        let audit = Audit::new(Actor::Admin, None);
        let env = Env::new(fixture.stack.clone(), "fetch");
        let db = env.db().unwrap_or_else(|error| panic!("{error}"));
        abort_step(&env, &audit, &db, business, cursor).await
    }

    /// Steps an abort to its end as the command does; every step.
    async fn abort_all(fixture: &Fixture, business: &BusinessId) -> Vec<MoveOut> {
        let mut steps: Vec<MoveOut> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let out = abort_next(fixture, business, cursor.as_deref())
                .await
                .unwrap_or_else(|error| panic!("{error:?} after {:?}", said(&steps)));
            cursor = out.cursor.clone();
            let aborted = out.phase == "aborted";
            steps.push(out);
            if aborted {
                return steps;
            }
        }
        panic!("no end: {:?}", said(&steps));
    }

    #[test]
    fn a_move_aborted_after_any_of_its_steps_before_the_switch_leaves_the_business_as_it_was() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = business(&fixture).await;
            let id = &tenant.business_id;
            let mut before = held(&fixture, "DB", id);
            let mut aborted_after = Vec::new();
            for taken in 1.. {
                assert!(taken < 100, "the move switches");
                let mut cursor: Option<String> = None;
                let mut last = None;
                for _ in 0..taken {
                    let out = next(&fixture, id, 1, cursor.as_deref())
                        .await
                        .unwrap_or_else(|error| panic!("step of {taken}: {error:?}"));
                    fixture
                        .stack
                        .advance(Duration::from_secs(u64::from(out.wait_seconds)));
                    cursor = out.cursor.clone();
                    last = Some(out.phase);
                }
                if last == Some("switched") {
                    let refused = abort_next(&fixture, id, None).await.err();
                    assert_eq!(
                        refused.as_ref().map(|error| error.status()),
                        Some(409),
                        "after the switch"
                    );
                    assert!(
                        refused.is_some_and(|error| error.body.message.contains("the move finished")),
                        "the refusal says the move finished"
                    );
                    break;
                }
                aborted_after.push(last);
                // Every other abort stops after its first step and is run again from the start
                // (unless that step found nothing left to delete).
                let mut steps = Vec::new();
                if taken % 2 == 0 {
                    let first = abort_next(&fixture, id, None)
                        .await
                        .unwrap_or_else(|error| panic!("{error:?}"));
                    assert_eq!(first.shard, 0, "the business stays where it was");
                    steps.push(first);
                }
                if steps.last().is_none_or(|out| out.phase != "aborted") {
                    steps.extend(abort_all(&fixture, id).await);
                }
                assert!(steps.iter().all(|out| out.rows <= ROWS_PER_STEP));
                let what = format!("aborted after {taken} steps ({last:?})");
                assert_eq!(
                    differing(&held(&fixture, "DB", id), &before),
                    Vec::new(),
                    "{what}: every row where it was"
                );
                assert_eq!(count(&held(&fixture, "DB_1", id)), 0, "{what}: no copy left");
                let entry = directory::entry(&fixture.db, id)
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
                assert_eq!(
                    Entry { revision: 0, ..entry },
                    Entry::default(),
                    "{what}: at rest on the first shard"
                );
                fixture.stack.restart_isolate();
                let env = Env::new(fixture.stack.clone(), "fetch");
                let db = env.db().unwrap_or_else(|error| panic!("{error}"));
                assert_eq!(new_key(&tenant, &db).await, None, "{what}: writes go on");
                before = held(&fixture, "DB", id);
                let stale = next(&fixture, id, 1, cursor.as_deref()).await.err();
                assert_eq!(
                    stale.map(|error| error.status()),
                    Some(409),
                    "{what}: the aborted move's command does not start another"
                );
                let nothing = abort_next(&fixture, id, None).await.err();
                assert_eq!(
                    nothing.map(|error| error.status()),
                    Some(409),
                    "{what}: nothing to abort"
                );
            }
            assert!(
                aborted_after.contains(&Some("pausing"))
                    && aborted_after.contains(&Some("copying"))
                    && aborted_after.contains(&Some("verifying")),
                "aborted in every phase before the switch: {aborted_after:?}"
            );
            drive(&fixture, id, 1).await;
            let moved: Vec<String> = fixture
                .rows("audit_log", "at_us")
                .into_iter()
                .filter_map(|row| row["action"].as_str().map(str::to_owned))
                .filter(|action| action.starts_with("business.mov"))
                .collect();
            assert_eq!(moved.last().map(String::as_str), Some("business.moved"));
            assert_eq!(
                moved.len(),
                aborted_after.len() + 1,
                "each abort in the audit log: {moved:?}"
            );
        });
    }

    #[test]
    fn a_row_changed_on_the_old_shard_after_its_table_was_copied_fails_verification_though_the_counts_agree()
    {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = business(&fixture).await;
            let id = &tenant.business_id;
            let customers = domain::shard_move::MOVED_TABLES
                .iter()
                .position(|table| table.name == "customers")
                .unwrap_or_else(|| panic!("customers are moved"));
            let mut cursor: Option<String> = None;
            let mut changed = false;
            let failure = loop {
                match next(&fixture, id, 1, cursor.as_deref()).await {
                    Ok(out) => {
                        assert_ne!(out.phase, "switched", "the copy verified");
                        // Past the customers' table: an unscoped UPDATE (a sweep's) lands on the
                        // old shard, as a counter or a time would.
                        let past = out
                            .cursor
                            .as_deref()
                            .and_then(|text| Cursor::parse(text).ok())
                            .is_some_and(|cursor| matches!(cursor, Cursor::Copy { table, .. } if table > customers));
                        if past && !changed {
                            changed = true;
                            fixture.stack.sql("DB", |connection| {
                                connection
                                    .execute(
                                        "UPDATE customers SET updated_at = '2030-01-01T00:00:00Z' \
                                         WHERE rowid = (SELECT max(rowid) FROM customers WHERE business_id = ?1)",
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
            assert!(changed, "the update landed");
            assert_eq!(
                moves::counts(&fixture.db.on_shard(0), id).await.ok(),
                moves::counts(&fixture.db.on_shard(1), id).await.ok(),
                "counts alone would have passed"
            );
            assert_eq!(failure.status(), 409);
            assert!(
                failure
                    .body
                    .message
                    .starts_with("the copy did not verify: customers: a row differs between shard 0 and shard 1 in updated_at"),
                "{}",
                failure.body.message
            );
        });
    }

    #[test]
    fn a_step_that_fails_names_the_table_and_the_databases_reason() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = business(&fixture).await;
            let id = &tenant.business_id;
            // Another business on the new shard already holds one of the customers' ids.
            let other = fixture.business_on("Globex", 1).await;
            fixture.stack.sql("DB", |connection| {
                let customer: String = connection
                    .query_row(
                        "SELECT id FROM customers WHERE business_id = ?1 LIMIT 1",
                        [id.as_str()],
                        |row| row.get(0),
                    )
                    .unwrap_or_else(|error| panic!("{error}"));
                fixture.stack.sql("DB_1", |target| {
                    target
                        .execute(
                            "INSERT INTO customers (id, business_id, name, created_at, updated_at) \
                             VALUES (?1, ?2, 'Taken', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
                            [customer.as_str(), other.business_id.as_str()],
                        )
                        .unwrap_or_else(|error| panic!("{error}"))
                })
            });
            let mut cursor: Option<String> = None;
            let failure = loop {
                match next(&fixture, id, 1, cursor.as_deref()).await {
                    Ok(out) => {
                        assert_ne!(out.phase, "switched", "the copy went through");
                        fixture
                            .stack
                            .advance(Duration::from_secs(u64::from(out.wait_seconds)));
                        cursor = out.cursor;
                    }
                    Err(error) => break error,
                }
            };
            assert_eq!(failure.status(), 500);
            assert!(
                failure
                    .body
                    .message
                    .starts_with("copying customers on shard 1 failed: ")
                    && failure
                        .body
                        .message
                        .contains("UNIQUE constraint failed: customers.id"),
                "{}",
                failure.body.message
            );
            // The way back: abort, and nothing of it is left on the new shard.
            abort_all(&fixture, id).await;
            assert_eq!(count(&held(&fixture, "DB_1", id)), 0);
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
