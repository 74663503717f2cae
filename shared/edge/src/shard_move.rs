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
