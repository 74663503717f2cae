//! A backup's export, page by page: the first page answers the header (each table's rows counted
//! up to its bounds, MAC'd under the sealing key); each page reads rows of the tables in their
//! order up to a page's rows or bytes, each line MAC'd on the chain, and refuses a row that holds
//! a secret in clear text; the last page answers the header again with the counts it wrote.

use crate::db::{Db, directory, moves};
use crate::platform::env::Env;
use domain::api::admin::BackupOut;
use domain::backup::{Chain, Cursor, FORMAT, Header, PAGE_BYTES, PAGE_ROWS, ROWS_PER_READ, mac_key};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::links::link::split_credentials;
use domain::sealed::SEALED_PREFIX;
use domain::shard_move::{MOVED_TABLES, MovedTable};
use domain::time::Timestamp;
use serde_json::Value;

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
    let keys = env.keyring()?;
    // The sealing key MACs the file; a later page names it by the MACs it goes on from.
    let sealing = keys.sealing_key();
    let mac_key = mac_key(sealing.bytes, business.as_str());
    let (header, mut cursor, mut chain) = match cursor {
        Some(cursor) => {
            let chain = Chain::resumed(mac_key, &cursor.mac);
            (None, cursor, chain)
        }
        None => {
            let last = moves::last_rowids(&source, business).await?;
            let header = Header {
                format: FORMAT,
                business_id: business.as_str().to_owned(),
                // Whole milliseconds, as the cursor keeps it for the last page's header.
                taken_at: Timestamp::from_millis(now.millis()).to_rfc3339(),
                key_id: sealing.id.to_owned(),
                counts: MOVED_TABLES
                    .iter()
                    .zip(&last)
                    .map(|(table, (_, held))| (table.name.to_owned(), *held))
                    .collect(),
                mac: String::new(),
            }
            .signed(&mac_key);
            let bounds = last.iter().map(|(last, _)| *last).collect();
            let chain = Chain::signing(&header.taken_at, mac_key);
            (
                Some(header),
                Cursor {
                    taken_ms: now.millis(),
                    table: 0,
                    after: 0,
                    bounds,
                    written: vec![0; MOVED_TABLES.len()],
                    mac: String::new(),
                },
                chain,
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
                     sealing, and a backup never holds one: read it once through the API (its list seals \
                     it), then back up again",
                    table.name
                )));
            }
            bytes += Value::Object(row.clone()).to_string().len();
            cursor.written[cursor.table] += 1;
            lines.push(chain.sign(table.name, row));
        }
        if read.rowids.len() == limit {
            cursor.after = read.rowids.last().copied().unwrap_or(cursor.after);
        } else {
            cursor.table += 1;
            cursor.after = 0;
            if cursor.table == MOVED_TABLES.len() {
                // The file's first line, with the counts of the rows it holds (a row deleted
                // while the export ran is in neither): the chain's MACs were made after the
                // first header's, which this one's replaces only where it starts the file.
                return Ok(BackupOut {
                    header,
                    last_header: Some(final_header(business, &cursor, sealing.id, &mac_key)),
                    lines,
                    cursor: None,
                });
            }
        }
        if lines.len() >= PAGE_ROWS || bytes >= PAGE_BYTES {
            cursor.mac = chain.last().to_owned();
            return Ok(BackupOut {
                header,
                last_header: None,
                lines,
                cursor: Some(cursor.to_string()),
            });
        }
    }
}

/// The file's first line as an export that ended at `cursor` writes it: the counts of the rows it
/// wrote, under the header's MAC.
fn final_header(business: &BusinessId, cursor: &Cursor, key_id: &str, mac_key: &[u8; 32]) -> Header {
    Header {
        format: FORMAT,
        business_id: business.as_str().to_owned(),
        taken_at: Timestamp::from_millis(cursor.taken_ms).to_rfc3339(),
        key_id: key_id.to_owned(),
        counts: MOVED_TABLES
            .iter()
            .zip(&cursor.written)
            .map(|(table, written)| (table.name.to_owned(), *written))
            .collect(),
        mac: String::new(),
    }
    .signed(mac_key)
}

/// The first of the table's columns that holds a secret in clear text in `row`: a sealed column
/// from before sealing, or a link's URL whose credentials were not sealed yet.
fn clear_secret(table: &MovedTable, row: &serde_json::Map<String, Value>) -> Option<&'static str> {
    let sealed = table.sealed.iter().copied().find(|column| {
        matches!(row.get(*column), Some(Value::String(stored)) if !stored.starts_with(SEALED_PREFIX))
    });
    let url_in_clear = table.name == "knowledge_sources"
        && row
            .get("url")
            .and_then(Value::as_str)
            .is_some_and(|url| !split_credentials(url).1.is_empty());
    sealed.or(url_in_clear.then_some("url"))
}
