//! Exporting one business page by page and restoring it where it does not exist
//! (`POST /admin/businesses/{id}/backup` and `/restore`; `domain::backup` owns the file's format
//! and the page budgets). Both read and write rows as a move does (`db::moves`), every table of
//! `MOVED_TABLES` in its order, so a backup holds what a move copies and nothing is written twice.
//!
//! Per invocation (1,000 D1 queries, 128 MB): an export page is one batch of 28 statements (the
//! first page's bounds), one read of at most 16 rows per query until 200 rows or 4 MB, and a
//! directory read: under 60 queries. A restore page is one directory read, a claim per channel
//! account, and one batch of one insert a row (at most 200): under 450 queries with a discard's
//! deletions in front of it.
//!
//! A restore writes nothing partial that could be taken for the business: each page is one batch
//! (whole or not at all); the first places the business held as a move holds it (its writes
//! answered 503, the sweeps leaving it alone: `Entry::restoring`); the last checks every table's
//! rows against the header's counts before it lets the business go. A restore that broke off is
//! discarded by the next one's first page.

use crate::db::{Db, directory, moves};
use crate::env::Env;
use crate::secrets_key;
use domain::api::admin::{BackupOut, RestoreIn, RestoreOut};
use domain::backup::{
    Cursor, FORMAT, Header, KEY_CHECK_COLUMN, KEY_CHECK_TABLE, KEY_CHECK_TEXT, Line, PAGE_BYTES, PAGE_ROWS,
    ROWS_PER_READ,
};
use domain::error::{ApiError, ErrorCode};
use domain::ids::BusinessId;
use domain::sealed::{Keyring, OpenError, Place, SEALED_PREFIX, Stored};
use domain::shard_move::{Entry, MOVED_TABLES, MovedTable};
use domain::time::Timestamp;
use serde_json::Value;

fn key_check_place(business: &BusinessId) -> Place<'_> {
    Place {
        table: KEY_CHECK_TABLE,
        column: KEY_CHECK_COLUMN,
        row_id: business.as_str(),
    }
}

/// The next page of `business`'s export from `cursor` (none: the first, which answers the header).
pub async fn export_page(
    env: &Env,
    db: &Db,
    business: &BusinessId,
    cursor: Option<Cursor>,
    now: Timestamp,
) -> Result<BackupOut, ApiError> {
    let entry = directory::entry(db, business).await?;
    if entry.restoring() {
        return Err(ApiError::conflict(
            "the business is being restored: finish the restore before backing it up",
        ));
    }
    let source = db.on_shard(entry.shard);
    let (header, mut cursor) = match cursor {
        Some(cursor) => (None, cursor),
        None => {
            let last = moves::last_rowids(&source, business).await?;
            let keys = secrets_key::keyring(env)?;
            let key_check = secrets_key::seal(&keys, &key_check_place(business), KEY_CHECK_TEXT).await?;
            let header = Header {
                format: FORMAT,
                business_id: business.as_str().to_owned(),
                taken_at: now.to_rfc3339(),
                key_check,
                counts: MOVED_TABLES
                    .iter()
                    .zip(&last)
                    .map(|(table, (_, held))| (table.name.to_owned(), *held))
                    .collect(),
            };
            let bounds = last.iter().map(|(last, _)| *last).collect();
            (
                Some(header),
                Cursor {
                    table: 0,
                    after: 0,
                    bounds,
                },
            )
        }
    };
    let (mut lines, mut bytes) = (Vec::new(), 0);
    loop {
        let table = &MOVED_TABLES[cursor.table];
        let limit = ROWS_PER_READ.min(PAGE_ROWS - lines.len());
        let read = moves::rows_between(
            &source,
            table,
            business,
            (cursor.after, cursor.bounds[cursor.table]),
            limit,
        )
        .await?;
        for (row, rowid) in read.rows.into_iter().zip(&read.rowids) {
            if let Some(column) = clear_secret(table, &row) {
                return Err(ApiError::conflict(format!(
                    "{}.{column} of the row with rowid {rowid} holds a secret in clear text from before \
                     sealing, and a backup never holds one: read it once through the admin API (which \
                     seals it), then back up again",
                    table.name
                )));
            }
            bytes += Value::Object(row.clone()).to_string().len();
            lines.push(Line {
                table: table.name.to_owned(),
                row,
            });
        }
        if read.rowids.len() == limit {
            cursor.after = read.rowids.last().copied().unwrap_or(cursor.after);
        } else {
            cursor.table += 1;
            cursor.after = 0;
            if cursor.table == MOVED_TABLES.len() {
                return Ok(BackupOut {
                    header,
                    lines,
                    cursor: None,
                });
            }
        }
        if lines.len() >= PAGE_ROWS || bytes >= PAGE_BYTES {
            return Ok(BackupOut {
                header,
                lines,
                cursor: Some(cursor.to_string()),
            });
        }
    }
}

/// The first of the table's sealed columns that holds clear text in `row`.
fn clear_secret(table: &MovedTable, row: &serde_json::Map<String, Value>) -> Option<&'static str> {
    table.sealed.iter().copied().find(|column| {
        matches!(row.get(*column), Some(Value::String(stored)) if !stored.starts_with(SEALED_PREFIX))
    })
}

/// Writes one page of `business`'s backup (`RestoreIn` says which), where it does not exist.
pub async fn restore_page(
    env: &Env,
    db: &Db,
    business: &BusinessId,
    page: &RestoreIn,
    now_ms: i64,
) -> Result<RestoreOut, ApiError> {
    let header = &page.header;
    if header.business_id != business.as_str() {
        return Err(ApiError::invalid(
            "header.business_id",
            format!("the backup is of business {}, not {business}", header.business_id),
        ));
    }
    if header.format != FORMAT {
        return Err(ApiError::invalid(
            "header.format",
            format!(
                "format {} is not one this deployment reads ({FORMAT})",
                header.format
            ),
        ));
    }
    if page.lines.len() > PAGE_ROWS {
        return Err(ApiError::invalid(
            "lines",
            format!("a page holds at most {PAGE_ROWS} rows"),
        ));
    }
    let keys = secrets_key::keyring(env)?;
    let tables = page_tables(&keys, business, &page.lines)?;
    let mut entry = directory::entry(db, business).await?;
    let answer = |entry: &Entry, phase, rows| RestoreOut {
        business_id: business.clone(),
        shard: entry.shard,
        phase,
        rows,
    };
    if page.first {
        let opened = secrets_key::open(&keys, &key_check_place(business), &header.key_check).await;
        if !opened.is_ok_and(|opened| opened.secret == KEY_CHECK_TEXT) {
            return Err(ApiError::invalid(
                "header.key_check",
                "the backup's secrets were sealed under a key this deployment's SECRETS_KEY does not hold: \
                 restore it on the deployment that made it, or put that deployment's key in this one's ring",
            ));
        }
        if entry.restoring() {
            let (rows, left) =
                crate::shard_move::delete(db, entry.shard, business, MOVED_TABLES.len() - 1).await?;
            if left.is_some() {
                return Ok(answer(&entry, "discarding", rows));
            }
        } else {
            let held = moves::counts(&db.on_shard(entry.shard), business).await?;
            if held[0] > 0 || entry.moving_to.is_some() || entry.moved_from.is_some() {
                return Err(ApiError::conflict(format!(
                    "business {business} exists (on shard {}): a backup is restored only where its business does not",
                    entry.shard
                )));
            }
            let shard = directory::choose(business, db.open_shards());
            entry = Entry {
                shard,
                moving_to: Some(shard),
                move_started_ms: Some(now_ms),
                ..Entry::default()
            };
            directory::record(db, business, &entry).await?;
        }
    } else if !entry.restoring() {
        return Err(ApiError::conflict(format!(
            "no restore of business {business} is under way: start with the file's first page"
        )));
    }
    let target = db.on_shard(entry.shard);
    for (line, table) in page.lines.iter().zip(&tables) {
        if table.name == "channel_accounts" {
            let text = |column: &str| line.row.get(column).and_then(Value::as_str).unwrap_or_default();
            let (channel, address) = (text("channel"), text("address"));
            if !directory::claim_address(db, channel, address, business).await? {
                return Err(ApiError::conflict(format!(
                    "the {channel} address {address} belongs to another business of this deployment: \
                     release it there (delete that channel account) and restore again"
                )));
            }
        }
    }
    let mut statements = Vec::with_capacity(page.lines.len());
    for (line, table) in page.lines.iter().zip(&tables) {
        statements.extend(moves::insert_statements(
            &target,
            table,
            std::slice::from_ref(&line.row),
        )?);
    }
    if !statements.is_empty() {
        target
            .batch(statements)
            .await
            .map_err(|error| refused_page(ApiError::from(error)))?;
    }
    if !page.complete {
        return Ok(answer(&entry, "restoring", page.lines.len()));
    }
    let held = moves::counts(&target, business).await?;
    for (table, held) in MOVED_TABLES.iter().zip(&held) {
        let said = header.counts.get(table.name).copied().unwrap_or(0);
        if said != *held {
            return Err(ApiError::conflict(format!(
                "the restored business does not match its backup: {} holds {held} rows where the backup \
                 says {said}; restore again from the first page (it discards this restore)",
                table.name
            )));
        }
    }
    let restored = Entry {
        shard: entry.shard,
        ..Entry::default()
    };
    directory::record(db, business, &restored).await?;
    Ok(answer(&restored, "restored", page.lines.len()))
}

/// The moved table of each of the page's lines, after checking that each is the business's and
/// that its sealed values are sealed under a key of this deployment's ring.
fn page_tables(
    keys: &Keyring,
    business: &BusinessId,
    lines: &[Line],
) -> Result<Vec<&'static MovedTable>, ApiError> {
    lines
        .iter()
        .enumerate()
        .map(|(at, line)| {
            let field = |what: &str| format!("lines[{at}]{what}");
            let table = MOVED_TABLES
                .iter()
                .find(|table| table.name == line.table)
                .ok_or_else(|| ApiError::invalid(field(".table"), format!("{:?} is no table of a business", line.table)))?;
            let column = table.business_column;
            if line.row.get(column).and_then(Value::as_str) != Some(business.as_str()) {
                return Err(ApiError::invalid(
                    field(&format!(".row.{column}")),
                    format!("a row of another business than {business}"),
                ));
            }
            for column in table.sealed {
                let Some(Value::String(stored)) = line.row.get(*column) else {
                    continue;
                };
                let why = match keys.parse_stored(stored) {
                    Ok(Stored::Sealed { .. }) => continue,
                    Ok(Stored::Clear(_)) => "is clear text: a backup holds secrets sealed only".to_owned(),
                    Err(OpenError::UnknownKey(id)) => format!(
                        "is sealed under key {id}, which this deployment's SECRETS_KEY does not hold: restore \
                         on the deployment that made the backup, or put its key {id} in this one's ring"
                    ),
                    Err(error) => error.to_string(),
                };
                return Err(ApiError::invalid(field(&format!(".row.{column}")), why));
            }
            Ok(table)
        })
        .collect()
}

/// A page the database refused (a row that breaks a constraint): nothing of it was written.
fn refused_page(mut error: ApiError) -> ApiError {
    if error.code() == ErrorCode::InternalError {
        let reason = error.detail().unwrap_or(&error.body.message).to_owned();
        error = ApiError::conflict(format!(
            "the page was refused, and nothing of it written: {reason}; restore again from the first page"
        ));
    }
    error
}
