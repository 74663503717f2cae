//! A backup's restore, page by page: each page's header, chain and rows checked (each row the
//! business's, its secrets sealed under a key of this deployment's ring); the first page places
//! the business held as a move holds it, where it does not exist, after discarding a restore that
//! broke off; each page's rows written in one batch with the quarantine; the last page checks
//! every table's rows against the header's counts before it lets the business go.

use super::quarantine::{forget_revoked, quarantine};
use crate::db::{Batch, Db, directory, moves};
use crate::platform::env::Env;
use domain::api::admin::{Quarantined, RestoreIn, RestoreOut};
use domain::backup::{Chain, FORMAT, Line, PAGE_ROWS, mac_key};
use domain::error::{ApiError, ErrorCode};
use domain::ids::BusinessId;
use domain::sealed::{Keyring, OpenError, Stored};
use domain::shard_move::{Entry, MOVED_TABLES, MovedTable};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde_json::Value;

/// The MAC key of `business`'s backups under the ring's key `key_id`; 422 naming the header's
/// key when this deployment's ring does not hold it.
fn mac_key_of(keys: &Keyring, key_id: &str, business: &BusinessId) -> Result<[u8; 32], ApiError> {
    let key = keys.key(key_id).ok_or_else(|| {
        ApiError::invalid(
            "header.key_id",
            format!(
                "the backup was made under key {key_id}, which this deployment's SECRETS_KEY does not hold: \
                 restore it on the deployment that made it, or put that key in this one's ring"
            ),
        )
    })?;
    Ok(mac_key(key.bytes, business.as_str()))
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
    let keys = env.keyring()?;
    let mac_key = mac_key_of(&keys, &header.key_id, business)?;
    match (page.first, &page.chain) {
        (true, Some(_)) => {
            return Err(ApiError::invalid(
                "chain",
                "the file's first page goes on from its header: it names no MAC before it",
            ));
        }
        (false, None) => {
            return Err(ApiError::invalid(
                "chain",
                "a page after the first names the MAC of the line before it (the previous page's last)",
            ));
        }
        _ => {}
    }
    let mut chain = Chain::checked(header, mac_key, page.chain.as_deref())
        .map_err(|why| ApiError::invalid("header", why))?;
    let first_line = page.first_line.unwrap_or(2);
    for (at, line) in page.lines.iter().enumerate() {
        chain
            .check(first_line + at, line)
            .map_err(|why| ApiError::invalid(format!("lines[{at}]"), why))?;
    }
    let tables = page_tables(&keys, business, &page.lines)?;
    let mut entry = directory::entry(db, business).await?;
    let chained = chain.last().to_owned();
    let answer = |entry: &Entry, phase, rows| RestoreOut {
        business_id: business.clone(),
        shard: entry.shard,
        phase,
        rows,
        chain: chained.clone(),
        quarantined: None,
    };
    if page.verify_only {
        return Ok(answer(&entry, "verified", page.lines.len()));
    }
    if page.first {
        if entry.restoring() {
            let (rows, left) =
                crate::ops::shard_move::delete(db, entry.shard, business, MOVED_TABLES.len() - 1).await?;
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
            let holding = Entry {
                shard,
                moving_to: Some(shard),
                move_started_ms: Some(now_ms),
                moved_from: None,
                switched_ms: None,
                revision: entry.revision,
            };
            entry = directory::record(db, business, &holding).await?;
            // Rows of the business still on the shard (work in flight when it was deleted, which
            // landed after) go first: the restored business holds the backup's rows, no others.
            let left = moves::counts(&db.on_shard(shard), business).await?;
            if left.iter().any(|rows| *rows > 0) {
                let (rows, left) =
                    crate::ops::shard_move::delete(db, shard, business, MOVED_TABLES.len() - 1).await?;
                if left.is_some() {
                    return Ok(answer(&entry, "discarding", rows));
                }
            }
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
    // Every page's rows and the quarantine are one batch: no row of the backup is ever live, not
    // even for the minutes between a restore's first page and its last (a sweep in between would
    // send a queued message, or deliver a pending delivery, that a page just wrote).
    let tenant = Tenant::for_background(business.clone());
    let mut batch = Batch::default();
    let quarantining = if statements.is_empty() {
        None
    } else {
        batch.push(statements);
        Some(quarantine(
            &db.holding(entry.shard),
            &tenant,
            Timestamp::from_millis(now_ms),
            page.keep_access,
            &mut batch,
        )?)
    };
    let quarantined = match quarantining {
        None => Quarantined::default(),
        Some(quarantining) => {
            let answers = batch
                .run(&target)
                .await
                .map_err(|error| refused_page(ApiError::from(error)))?;
            let (quarantined, revoked) = quarantining.counted(&answers);
            forget_revoked(env, revoked).await;
            quarantined
        }
    };
    if !page.complete {
        return Ok(RestoreOut {
            quarantined: Some(quarantined),
            ..answer(&entry, "restoring", page.lines.len())
        });
    }
    let held = moves::counts(&target, business).await?;
    for (table, held) in MOVED_TABLES.iter().zip(&held) {
        // The quarantine dropped every bot turn as its page wrote it.
        let said = match table.name {
            "bot_turns" => 0,
            name => header.counts.get(name).copied().unwrap_or(0),
        };
        if said != *held {
            return Err(ApiError::conflict(format!(
                "the restored business does not match its backup: {} holds {held} rows where the backup \
                 says {said}; restore again from the first page (it discards this restore)",
                table.name
            )));
        }
    }
    let restored = directory::record(
        db,
        business,
        &Entry {
            shard: entry.shard,
            revision: entry.revision,
            ..Entry::default()
        },
    )
    .await?;
    Ok(RestoreOut {
        quarantined: Some(quarantined),
        ..answer(&restored, "restored", page.lines.len())
    })
}

/// Discards a restore of `business` that broke off: a step of what it wrote deleted (phase
/// discarding, `rows` of them: call again), then, with nothing left, the addresses it claimed
/// and its directory entry let go (phase discarded). 409 when no restore of it is under way.
pub async fn discard(db: &Db, business: &BusinessId) -> Result<RestoreOut, ApiError> {
    let entry = directory::entry(db, business).await?;
    if !entry.restoring() {
        return Err(ApiError::conflict(format!(
            "no restore of business {business} is under way: nothing to discard"
        )));
    }
    let (rows, left) =
        crate::ops::shard_move::delete(db, entry.shard, business, MOVED_TABLES.len() - 1).await?;
    let phase = match left {
        Some(_) => "discarding",
        None => {
            directory::forget_business(db, business, &entry).await?;
            "discarded"
        }
    };
    Ok(RestoreOut {
        business_id: business.clone(),
        shard: entry.shard,
        phase,
        rows,
        chain: String::new(),
        quarantined: None,
    })
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
    if matches!(error.code(), ErrorCode::InternalError | ErrorCode::Conflict) {
        let reason = error.detail().unwrap_or(&error.body.message).to_owned();
        error = ApiError::conflict(format!(
            "the page was refused, and nothing of it written: {reason}; restore again from the first page"
        ));
    }
    error
}
