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

use crate::db::{self, Answers, Batch, Db, Handle, Written, directory, moves};
use crate::platform::env::Env;
use domain::api::admin::{BackupOut, Quarantined, RestoreIn, RestoreOut};
use domain::api_key::ApiKeyHash;
use domain::backup::{
    Chain, Cursor, FORMAT, Header, Line, PAGE_BYTES, PAGE_ROWS, Part, Quarantine, ROWS_PER_READ, mac_key,
};
use domain::error::{ApiError, ErrorCode};
use domain::ids::{BusinessId, SourceId};
use domain::links::link::split_credentials;
use domain::sealed::{Keyring, OpenError, SEALED_PREFIX, Stored};
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

/// How many revoked keys' cached lookups a restore forgets; a key beyond them stops working
/// within a minute, when its cached lookup is no longer trusted (`auth::CACHE_FRESHNESS_MS`).
const FORGOTTEN_AT_MOST: usize = 1_000;

/// Forgets the cached lookups of the keys the quarantine revoked, so that they stop working at
/// once where the restore ran. A cache that does not answer is logged: its entries are trusted
/// for a minute at most.
async fn forget_revoked(env: &Env, hashes: Vec<ApiKeyHash>) {
    for hash in hashes.iter().take(FORGOTTEN_AT_MOST) {
        if let Err(error) = crate::platform::auth::forget_cached_key(env, hash).await {
            crate::console_error!("a revoked key's cached lookup was not forgotten: {error:?}");
        }
    }
}

/// Why a restored send, delivery or piece of CRM work was not done.
const RESTORED: &str = "not done: the business was restored from a backup, which holds work of another moment \
     (send or replay it again if it is still wanted)";

/// What a page's batch reads back of the quarantine it holds.
struct Quarantining {
    paused: Written,
    connectors: Written,
    webhooks: Written,
    links: Written,
    sends: Written,
    deliveries: Written,
    crm_jobs: Written,
    bot_turns: Written,
    /// The keys revoked (their hashes), the console sessions and the embedding tokens.
    access: Option<(Handle<Vec<ApiKeyHash>>, Written, Written)>,
}

impl Quarantining {
    /// How much each part switched off, and the hashes of the keys revoked.
    fn counted(self, answers: &Answers) -> (Quarantined, Vec<ApiKeyHash>) {
        let (keys, sessions, tokens) = match self.access {
            None => (Vec::new(), 0, 0),
            Some((keys, sessions, tokens)) => {
                let keys = answers.take(keys).unwrap_or_else(|error| {
                    crate::console_error!("the restore's revoked keys were not read: {error:?}");
                    Vec::new()
                });
                (keys, answers.changes(sessions), answers.changes(tokens))
            }
        };
        let quarantined = Quarantined {
            channel_accounts_paused: answers.changes(self.paused),
            connectors_disabled: answers.changes(self.connectors),
            webhooks_disabled: answers.changes(self.webhooks),
            link_entries_paused: answers.changes(self.links),
            sends_failed: answers.changes(self.sends),
            deliveries_dead: answers.changes(self.deliveries),
            crm_jobs_dead: answers.changes(self.crm_jobs),
            bot_turns_dropped: answers.changes(self.bot_turns),
            api_keys_revoked: keys.len(),
            console_sessions_revoked: sessions,
            sso_tokens_revoked: tokens,
        };
        (quarantined, keys)
    }
}

/// The statements that put a restored business in quarantine, run after each page's rows in the
/// same batch: what is on is added to what earlier pages recorded; its channel accounts paused,
/// connectors, webhook endpoints and link entries switched off; its pieces marked for their
/// vectors to be written again; its queued sends failed, pending deliveries and CRM work
/// dead-lettered, the bot's turns dropped; unless `keep_access`, its keys, console sessions and
/// embedding tokens revoked.
fn quarantine(
    db: &Db,
    tenant: &Tenant,
    now: Timestamp,
    keep_access: bool,
    batch: &mut Batch,
) -> Result<Quarantining, ApiError> {
    let stamp = now.to_rfc3339();
    batch.push([db::businesses::record_quarantine(db, tenant, &stamp)?]);
    let paused = batch.write(db::channel_accounts::pause_all(db, tenant, &stamp)?);
    let connectors = batch.write(db::crm_connectors::disable_all(db, tenant)?);
    let webhooks = batch.write(db::webhook_endpoints::disable_all(db, tenant)?);
    let links = batch.write(db::knowledge_links::deactivate_all(db, tenant)?);
    batch.push([db::knowledge_chunks::mark_restored(db, tenant)?]);
    let sends = batch.write(db::messages::fail_queued(db, tenant, RESTORED, &stamp)?);
    let deliveries = batch.write(db::webhook_deliveries::kill_pending(
        db,
        tenant,
        RESTORED,
        now.micros(),
    )?);
    let crm_jobs = batch.write(db::crm_sync_jobs::kill_pending(
        db,
        tenant,
        RESTORED,
        now.micros(),
    )?);
    let bot_turns = batch.write(db::bot_turns::drop_all(db, tenant)?);
    let access = if keep_access {
        None
    } else {
        Some((
            batch.read(db::api_keys::revoke_all(db, tenant, &stamp)?),
            batch.write(db::console_sessions::revoke_all(db, tenant, &stamp)?),
            batch.write(db::sso_tokens::revoke_all(db, tenant, &stamp)?),
        ))
    };
    Ok(Quarantining {
        paused,
        connectors,
        webhooks,
        links,
        sends,
        deliveries,
        crm_jobs,
        bot_turns,
        access,
    })
}

/// Switches the parts of a restored business's quarantine named (every part when none is) back
/// on, exactly what the restore switched off: the parts resumed, and what still waits.
pub async fn resume(
    db: &Db,
    tenant: &Tenant,
    parts: &[Part],
) -> Result<(Vec<Part>, Option<Quarantine>, Vec<SourceId>), ApiError> {
    let Some(mut left) = db::businesses::quarantine(db, tenant).await? else {
        return Ok((Vec::new(), None, Vec::new()));
    };
    let mut statements = Vec::new();
    let mut resumed = Vec::new();
    let mut sources = Vec::new();
    for part in left
        .waiting()
        .into_iter()
        .filter(|part| parts.is_empty() || parts.contains(part))
    {
        statements.push(match part {
            Part::ChannelAccounts => db::channel_accounts::resume(db, tenant, &left.channel_accounts)?,
            Part::Connectors => db::crm_connectors::enable_listed(db, tenant, &left.connectors)?,
            Part::Webhooks => db::webhook_endpoints::enable_listed(db, tenant, &left.webhooks)?,
            Part::Links => {
                sources = left
                    .links
                    .iter()
                    .filter_map(|(source, _)| SourceId::parse(source))
                    .collect();
                sources.dedup();
                db::knowledge_links::activate_listed(db, tenant, &left.links)?
            }
        });
        left = left.without(part);
        resumed.push(part);
    }
    let waiting = Some(left).filter(|left| !left.waiting().is_empty());
    statements.push(db::businesses::set_quarantine(db, tenant, waiting.as_ref())?);
    db.batch(statements).await?;
    Ok((resumed, waiting, sources))
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
