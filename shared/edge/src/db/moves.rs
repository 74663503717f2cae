//! The statements of a business's move to another shard (`crate::ops::shard_move`): one shape for
//! every table of `domain::shard_move::MOVED_TABLES`, each run on the shard it names (`Db::on_shard`)
//! and each reading the business's column, so none reaches another business's rows. A row is
//! copied with the columns it was read with, as it was stored, but for a table's renumbered key and
//! the columns SQLite computes.

use crate::db::Read;
use crate::db::{Db, Param, Statement, number, text};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::shard_move::{MOVED_TABLES, MovedTable};
use serde_json::{Map, Value};

/// The column a read row carries its rowid in (the cursor of a copy).
const ROWID: &str = "move_rowid";

/// A business's rows of a table, as read for the copy: each row's rowid, and its columns.
pub struct Rows {
    pub rowids: Vec<i64>,
    pub rows: Vec<Map<String, Value>>,
}

fn select_after(table: &MovedTable) -> String {
    format!(
        "SELECT rowid AS {ROWID}, * FROM {} WHERE {} = ?1 AND rowid > ?2 AND rowid <= ?4 ORDER BY rowid LIMIT ?3",
        table.name, table.business_column
    )
}

fn last_rowid(table: &MovedTable) -> String {
    format!(
        "SELECT coalesce(max(rowid), 0) AS last, count(*) AS held FROM {} WHERE {} = ?1",
        table.name, table.business_column
    )
}

fn delete_some(table: &MovedTable) -> String {
    format!(
        "DELETE FROM {0} WHERE rowid IN (SELECT rowid FROM {0} WHERE {1} = ?1 LIMIT ?2)",
        table.name, table.business_column
    )
}

fn count(table: &MovedTable) -> String {
    format!(
        "SELECT count(*) AS held FROM {} WHERE {} = ?1",
        table.name, table.business_column
    )
}

fn count_until(table: &MovedTable) -> String {
    format!(
        "SELECT count(*) AS held FROM {} WHERE {} = ?1 AND rowid <= ?2",
        table.name, table.business_column
    )
}

fn delete_past(table: &MovedTable) -> String {
    format!(
        "DELETE FROM {0} WHERE rowid IN (SELECT rowid FROM {0} WHERE {1} = ?1 ORDER BY rowid LIMIT -1 OFFSET ?2)",
        table.name, table.business_column
    )
}

/// The insert of one row with these columns.
fn insert(table: &MovedTable, columns: &[&str]) -> String {
    let marks: Vec<String> = (1..=columns.len()).map(|at| format!("?{at}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        columns.join(", "),
        marks.join(", ")
    )
}

/// Up to `limit` of the business's rows of `table` past rowid `after`, in rowid order, on the
/// shard of `db` (one from `Db::on_shard`).
pub async fn rows_after(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    after: i64,
    limit: usize,
) -> Result<Rows, ApiError> {
    rows_between(db, table, business, (after, i64::MAX), limit).await
}

/// Up to `limit` of the business's rows of `table` with a rowid past `after` and up to `until`,
/// in rowid order, on the shard of `db` (a backup's read: nothing written since it began).
pub async fn rows_between(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    (after, until): (i64, i64),
    limit: usize,
) -> Result<Rows, ApiError> {
    let read = db
        .unscoped(select_after(table))
        .bind(&[
            text(business.as_str()),
            number(after),
            number(limit as i64),
            number(until),
        ])?
        .all()
        .await?
        .results::<Map<String, Value>>()
        .map_err(|error| ApiError::internal("reading rows to move", error))?;
    let mut rows = Rows {
        rowids: Vec::with_capacity(read.len()),
        rows: Vec::with_capacity(read.len()),
    };
    for mut row in read {
        let rowid = row
            .remove(ROWID)
            .and_then(|value| value.as_i64())
            .ok_or_else(|| {
                ApiError::internal(
                    "reading rows to move",
                    format!("{}: a row without its rowid", table.name),
                )
            })?;
        if let Some(key) = table.renumbered {
            row.remove(key);
        }
        for computed in table.computed {
            row.remove(*computed);
        }
        rows.rowids.push(rowid);
        rows.rows.push(row);
    }
    Ok(rows)
}

/// Writes the rows on the shard of `db`, all or none (one batch).
pub async fn insert_rows(db: &Db, table: &MovedTable, rows: &[Map<String, Value>]) -> Result<(), ApiError> {
    db.batch(insert_statements(db, table, rows)?).await?;
    Ok(())
}

/// The inserts of the rows on the shard of `db`, for a batch of the caller's.
pub fn insert_statements(
    db: &Db,
    table: &MovedTable,
    rows: &[Map<String, Value>],
) -> Result<Vec<Statement>, ApiError> {
    let mut statements = Vec::with_capacity(rows.len());
    for row in rows {
        let columns: Vec<&str> = row.keys().map(String::as_str).collect();
        if let Some(odd) = columns.iter().find(|column| {
            !column
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }) {
            return Err(ApiError::internal(
                "moving rows",
                format!("{}: column {odd:?}", table.name),
            ));
        }
        let values: Vec<Param> = row.values().map(param).collect::<Result<_, _>>()?;
        statements.push(db.unscoped(insert(table, &columns)).bind(&values)?);
    }
    Ok(statements)
}

fn param(value: &Value) -> Result<Param, ApiError> {
    Ok(match value {
        Value::Null => Param::Null,
        Value::String(text) => Param::Text(text.clone()),
        Value::Number(value) => Param::Number(value.as_f64().unwrap_or_default()),
        Value::Bool(flag) => Param::Number(f64::from(u8::from(*flag))),
        other => {
            return Err(ApiError::internal(
                "moving rows",
                format!("a stored value {other}"),
            ));
        }
    })
}

/// Deletes up to `limit` of the business's rows of `table` on the shard of `db`: how many.
pub async fn delete_rows(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(delete_some(table))
        .bind(&[text(business.as_str()), number(limit as i64)])?
        .run()
        .await?;
    Ok(crate::db::changes(&result))
}

/// How many of the business's rows of `table` the shard of `db` holds up to rowid `until`.
pub async fn count_up_to(
    db: &Db,
    table: &MovedTable,
    business: &BusinessId,
    until: i64,
) -> Result<usize, ApiError> {
    #[derive(serde::Deserialize)]
    struct Count {
        held: usize,
    }
    let counted = db
        .unscoped(count_until(table))
        .bind(&[text(business.as_str()), number(until)])?
        .first::<Count>(None)
        .await?;
    Ok(counted.map_or(0, |count| count.held))
}

/// Leaves the business's rows of `tables[0]` on the shard of `db` to the first `kept` (in rowid
/// order, the order they were copied in), and none in the tables after it, in one batch: what a
/// copy step that broke off part of the way wrote is gone before it is copied again.
pub async fn trim(
    db: &Db,
    tables: &[MovedTable],
    business: &BusinessId,
    kept: usize,
) -> Result<(), ApiError> {
    let mut statements = Vec::with_capacity(tables.len());
    for (at, table) in tables.iter().enumerate().rev() {
        let keep = if at == 0 { kept } else { 0 };
        statements.push(
            db.unscoped(delete_past(table))
                .bind(&[text(business.as_str()), number(keep as i64)])?,
        );
    }
    db.batch(statements).await?;
    Ok(())
}

/// Each table of [`MOVED_TABLES`]'s last rowid of the business's rows on the shard of `db` (0
/// when it has none), and how many it holds, in one batch: where a backup begins.
pub async fn last_rowids(db: &Db, business: &BusinessId) -> Result<Vec<(i64, usize)>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Last {
        last: i64,
        held: usize,
    }
    let mut statements = Vec::with_capacity(MOVED_TABLES.len());
    for table in &MOVED_TABLES {
        let statement = db.unscoped(last_rowid(table)).bind(&[text(business.as_str())])?;
        statements.push(Read::<Option<Last>>::first(statement));
    }
    Ok(crate::db::read_together(db, statements)
        .await?
        .into_iter()
        .map(|last| last.map_or((0, 0), |last| (last.last, last.held)))
        .collect())
}

/// How many rows of each table of [`MOVED_TABLES`] the business has on the shard of `db`.
pub async fn counts(db: &Db, business: &BusinessId) -> Result<Vec<usize>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Count {
        held: usize,
    }
    let mut statements = Vec::with_capacity(MOVED_TABLES.len());
    for table in &MOVED_TABLES {
        let statement = db.unscoped(count(table)).bind(&[text(business.as_str())])?;
        statements.push(Read::<Option<Count>>::first(statement));
    }
    Ok(crate::db::read_together(db, statements)
        .await?
        .into_iter()
        .map(|count| count.map_or(0, |count| count.held))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statements::migrated;
    use std::collections::BTreeSet;

    /// The first column of every row `sql` answers, as text.
    fn texts(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
        db.prepare(sql)
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    #[test]
    fn every_table_with_a_business_is_moved_parents_first_and_its_statements_prepare() {
        let db = migrated();
        let mut tables: BTreeSet<String> = texts(
            &db,
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND c.name = 'business_id'",
        )
        .into_iter()
        .collect();
        tables.insert("businesses".to_owned());
        for directory in ["business_shards", "channel_addresses"] {
            tables.remove(directory);
        }
        let moved: BTreeSet<String> = MOVED_TABLES.iter().map(|table| table.name.to_owned()).collect();
        assert_eq!(
            moved, tables,
            "MOVED_TABLES holds every table with a business's rows"
        );

        for (at, table) in MOVED_TABLES.iter().enumerate() {
            let parents = texts(
                &db,
                &format!("SELECT \"table\" FROM pragma_foreign_key_list('{}')", table.name),
            );
            for parent in parents {
                let before = MOVED_TABLES[..at].iter().any(|earlier| earlier.name == parent);
                assert!(
                    before,
                    "{} is copied after {parent}, which it refers to",
                    table.name
                );
            }
            let columns = texts(
                &db,
                &format!("SELECT name FROM pragma_table_info('{}')", table.name),
            );
            if let Some(key) = table.renumbered {
                assert!(columns.iter().any(|column| column == key), "{}.{key}", table.name);
            }
            // pragma_table_info leaves generated columns out; table_xinfo tells them (hidden 2, 3).
            let generated = texts(
                &db,
                &format!(
                    "SELECT name FROM pragma_table_xinfo('{}') WHERE hidden IN (2, 3)",
                    table.name
                ),
            );
            assert_eq!(
                generated, table.computed,
                "{}: the columns SQLite computes are the ones the move leaves out",
                table.name
            );
            for column in table.sealed {
                assert!(
                    columns.iter().any(|held| held == column),
                    "{}.{column} is sealed",
                    table.name
                );
            }
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            for sql in [
                select_after(table),
                last_rowid(table),
                delete_some(table),
                count(table),
                count_until(table),
                delete_past(table),
                insert(table, &columns),
            ] {
                if let Err(error) = db.prepare(&sql) {
                    panic!("{sql}: {error}");
                }
            }
        }
    }

    use crate::db::{
        api_keys, audit_log, console_sessions, crm_contacts, crm_inbound_events, crm_links, crm_satisfaction,
        crm_sync_jobs, early_statuses, escalations, idempotency_keys, knowledge_chunks, knowledge_run_seen,
        sso_tokens, webhook_attempts, webhook_deliveries, webhook_events,
    };
    use crate::testing::{Fixture, Must, link, page, random};
    use domain::api_key::ApiKeyHash;
    use domain::audit::Action;
    use domain::channel::{Channel, MessageStatus};
    use domain::crm::work::{ContactKey, LinkKind, Operation};
    use domain::ids::{
        ApiKeyId, AttachmentId, AuditEntryId, ConsoleSessionId, ConversationId, EscalationId, SsoTokenId,
        SyncJobId,
    };
    use domain::links::link::{LinkChannel, LinkType};
    use domain::tenant::Tenant;
    use domain::webhooks::EventType;
    use serde_json::json;

    /// Writes at least one row of every moved table for the tenant, through the table modules.
    async fn a_row_in_every_table(fixture: &Fixture, tenant: &Tenant) {
        let db = &fixture.db;
        let now = fixture.now();
        let stamp = now.to_rfc3339();
        let account = fixture.account(tenant, Channel::Whatsapp).await;
        let message = fixture
            .receive(
                tenant,
                Channel::Whatsapp,
                &account,
                "+353871234567",
                "hi",
                "wamid.1",
            )
            .await;
        let message = message.unwrap_or_else(|| panic!("stored"));
        let ann = fixture.customer(tenant, "Ann").await;
        let sent = fixture
            .send(tenant, &ann, Channel::Whatsapp, &account, "hello")
            .await;
        let file = AttachmentId::generate(random());
        let pending = crate::db::attachments::NewPending {
            id: &file,
            message_id: &message,
            account_id: &account,
            filename: "a.jpg",
            mime_type: "image/jpeg",
            storage_key: "k",
            source: "{}",
            created_at: &stamp,
        };
        let keep = domain::inbound::StatusUpdate {
            provider_message_id: "wamid.out".to_owned(),
            status: MessageStatus::Delivered,
            reason: None,
        };
        db.batch(vec![
            crate::db::attachments::insert_pending(db, tenant, &pending).must(),
            early_statuses::keep_unmatched(db, tenant, Channel::Whatsapp, &keep, now).must(),
        ])
        .await
        .must();
        let key = api_keys::ApiKey {
            id: ApiKeyId::generate(random()),
            business_id: tenant.business_id.clone(),
            name: None,
            prefix: "ck_live_abcd".to_owned(),
            created_at: stamp.clone(),
            revoked_at: None,
            last_used_at: None,
            last_used_address: None,
            last_used_endpoint: None,
        };
        api_keys::insert(db, tenant, &key, &ApiKeyHash::of(&hex::encode(random::<16>())))
            .await
            .must();
        let mut used = domain::key_usage::Tally::default();
        used.count(
            now.millis(),
            Some("203.0.113.7"),
            "GET /api-customers",
            200,
            false,
        );
        let used = used.take().unwrap_or_else(|| panic!("counted"));
        crate::db::api_key_usage::record(db, tenant, &key.id, &used)
            .await
            .must();
        let units = domain::pricing::Units::default().with(domain::pricing::Meter::D1RowsWritten, 3);
        crate::db::business_usage::add(db, tenant, &domain::cost::day_of(now), &units)
            .await
            .must();
        let mut alert_settings = domain::alerts::Settings::default();
        alert_settings
            .apply(&json!({ "email_to": ["ops@acme.example"] }))
            .must();
        crate::db::alert_settings::put(db, tenant, &alert_settings, &stamp)
            .await
            .must();
        let raise = domain::alerts::Raise {
            measure: domain::alerts::Measure {
                business_id: tenant.business_id.clone(),
                kind: domain::alerts::Kind::ErrorRate,
                subject_id: tenant.business_id.to_string(),
                subject_name: "API requests".to_owned(),
                value: 9,
            },
            threshold: 5,
            message: "9 %".to_owned(),
        };
        let alert = domain::ids::AlertId::generate(random());
        let raised = crate::db::alerts::raise(db, tenant, &alert, &raise, true, now.millis()).must();
        db.batch(vec![raised]).await.must();
        let entry = AuditEntryId::generate(random());
        audit_log::insert(
            db,
            &audit_log::NewEntry {
                id: &entry,
                business_id: &tenant.business_id,
                at_us: now.micros(),
                actor: "admin",
                action: Action::ApiKeyIssued,
                target_id: None,
                detail: "{}",
                client_ip: None,
            },
        )
        .await
        .must();
        let link_hash = domain::console::issue_link(crate::runtime::random().must()).hash;
        let session = ConsoleSessionId::generate(random());
        console_sessions::insert_link(
            db,
            tenant,
            &console_sessions::NewLink {
                id: &session,
                issued_by: "admin",
                link_hash: &link_hash,
                link_expires_at: now.plus_seconds(60),
                created_at: now,
            },
        )
        .await
        .must();
        let issued = domain::sso::issue(crate::runtime::random().must());
        let token = SsoTokenId::generate(random());
        sso_tokens::insert(
            db,
            tenant,
            &sso_tokens::NewToken {
                id: &token,
                customer_id: &ann,
                scope: domain::sso::Scope::Inbox,
                issued: &issued,
                created_at: now,
                expires_at: now.plus_seconds(60),
            },
        )
        .await
        .must();

        let connector = fixture.connector(tenant).await;
        let mut calls = domain::crm::health::Minute::default();
        calls.record(120, false);
        let calls = crate::db::crm_call_minutes::SourceMinute {
            source: connector.as_str().to_owned(),
            minute_ms: 0,
            counts: calls,
        };
        let calls = crate::db::crm_call_minutes::add(db, tenant, &[calls]).must();
        db.batch(vec![calls]).await.must();
        let contact = ContactKey::Customer(ann.clone());
        crm_contacts::claim(db, tenant, &connector, &contact, "w", 0, 1)
            .await
            .must();
        crm_inbound_events::once(db, tenant, &connector, "evt-1", async { Ok::<_, ApiError>(()) })
            .await
            .must();
        crm_links::link(db, tenant, &connector, LinkKind::Customer, ann.as_str(), "k-1", 0)
            .await
            .must();
        let rating = crm_satisfaction::Rating {
            score: Some(4.0),
            level: None,
            comment: None,
        };
        crm_satisfaction::record(db, tenant, &connector, &sent.conversation_id, &rating, 0)
            .await
            .must();
        for _ in 0..3 {
            let requested = crm_sync_jobs::Requested {
                connector_id: &connector,
                customer_id: &ann,
                operation: Operation::Note,
                subject_id: "s",
                input: &json!({"body": "x"}),
            };
            crm_sync_jobs::insert_requested(db, tenant, &SyncJobId::generate(random()), &requested, 0)
                .await
                .must();
        }
        let escalation = EscalationId::generate(random());
        let conversation = ConversationId::generate(random());
        escalations::insert(
            db,
            tenant,
            &escalations::NewEscalation {
                id: &escalation,
                conversation_id: &conversation,
                customer_id: &ann,
                reason: "r",
                trigger: escalations::Trigger::Api,
                message_id: None,
                routing: &domain::crm::work::Routing::default(),
            },
            0,
        )
        .await
        .must();
        let bot = domain::bot::target::BotTarget {
            page_id: page("1001"),
            channel: domain::bot::target::BotChannel::Messenger,
        };
        let settings = domain::bot::settings::BotSettings::parse(&json!({"enabled": true})).must();
        crate::db::bots::put(db, tenant, &bot, &settings, &stamp)
            .await
            .must();
        let turn_id = hex::encode(random::<16>());
        let turn = crate::db::bot_answers::NewTurn {
            id: &turn_id,
            target: &bot,
            customer_id: Some(&ann),
            conversation_id: Some(&conversation),
            message_id: Some(&message),
            question: "q",
            action: "reply",
            reason: None,
            text: Some("a"),
            public_text: None,
            pieces: &[],
            refusals: &[],
            model: Some("m"),
            generator_ms: Some(1),
            total_ms: 2,
            reply_message_id: None,
            private_message_id: None,
            created_at: &stamp,
        };
        let spell = crate::db::bot_conversations::Spell {
            reopen_count: 0,
            conversation: domain::bot::settings::Conversation::default(),
        };
        db.batch(vec![
            crate::db::bot_conversations::record(
                db,
                tenant,
                &conversation,
                &message,
                &spell,
                true,
                None,
                &stamp,
            )
            .must(),
            crate::db::bot_answers::insert(db, tenant, &turn).must(),
            crate::db::bot_turns::pending(
                db,
                tenant,
                "1001",
                domain::bot::target::BotChannel::Messenger,
                &message,
                None,
                0,
            )
            .must(),
        ])
        .await
        .must();
        crate::db::oauth_states::start(db, tenant, &format!("nonce-{}", tenant.business_id), 1)
            .await
            .must();
        let erased = crate::db::customer_erasures::Erasure {
            customer_id: domain::ids::CustomerId::generate(random()),
            status: domain::erasure::Status::Erasing,
            requested_us: 1,
            requested_by: "admin".to_owned(),
            erased_us: None,
            subjects: vec!["0123456789abcdef0123456789abcdef".to_owned()],
            crm: Vec::new(),
            deleted: domain::erasure::Deleted::default(),
        };
        crate::db::customer_erasures::begin(db, tenant, &erased)
            .must()
            .run()
            .await
            .must();
        let idempotency = domain::idempotency::IdempotencyKey::from_header(Some("key-1"))
            .must()
            .unwrap_or_else(|| panic!("a key"));
        idempotency_keys::claim(
            db,
            tenant,
            &idempotency_keys::Claim {
                key: &idempotency,
                fingerprint: "f",
                claim: "c",
                now_us: 0,
                lease_until_us: 1,
                expired_before_us: -1,
            },
        )
        .await
        .must();

        let source = fixture
            .source(
                tenant,
                &page("1001"),
                &link("A", "https://crm.example.com/a", LinkType::Api),
                &[LinkChannel::Messenger],
            )
            .await;
        let hashes = ["aa00", "bb00", "cc00"];
        let pieces: Vec<knowledge_chunks::NewPiece<'_>> = hashes
            .iter()
            .map(|hash| knowledge_chunks::NewPiece {
                id: knowledge_chunks::chunk_id(&source, hash),
                hash,
                content_hash: hash,
                record: "r",
                part: 0,
                text: "Felix",
                subject: "general",
            })
            .collect();
        let mut statements =
            knowledge_chunks::insert(db, tenant, &source, "run-1", &pieces, "m", &stamp).must();
        statements.push(knowledge_run_seen::record(db, tenant, &source, "run-1", 0, 0, &hashes).must());
        db.batch(statements).await.must();

        fixture.endpoint(tenant, &[EventType::MessageSent]).await;
        let event = fixture
            .event(tenant, EventType::MessageSent, sent.id.as_str())
            .await
            .unwrap_or_else(|| panic!("recorded"));
        let delivery = webhook_deliveries::first_due(db, tenant, std::slice::from_ref(&event))
            .must()
            .run()
            .await
            .must()
            .remove(0);
        db.batch(vec![
            webhook_deliveries::hand_on(db, tenant, &[&delivery], now).must(),
            webhook_events::dispatched(db, tenant, &[(&event, Some("{}"))], now).must(),
        ])
        .await
        .must();
        for _ in 0..2 {
            let record = webhook_attempts::AttemptRecord {
                endpoint_id: &delivery.endpoint_id,
                delivery_id: Some(&delivery.delivery_id),
                event_id: &event,
                event_type: "message.sent",
                attempt: 1,
                replay: 0,
                url: "https://hooks.example.com",
                status_code: Some(200),
                response_body: None,
                duration_ms: 5,
                error: None,
                outcome: webhook_attempts::AttemptOutcome::Delivered,
                at: now,
            };
            db.batch(vec![webhook_attempts::insert(db, tenant, &record).must()])
                .await
                .must();
        }
    }

    /// Every row of the business in `table` on the shard bound as `binding`, as `SELECT *` gives
    /// them, in rowid order, without the table's renumbered key.
    fn stored(
        fixture: &Fixture,
        binding: &str,
        table: &MovedTable,
        business: &BusinessId,
    ) -> Vec<Map<String, Value>> {
        fixture
            .rows_on(binding, table.name, "rowid")
            .into_iter()
            .filter(|row| row.get(table.business_column) == Some(&json!(business.as_str())))
            .map(|mut row| {
                if let Some(key) = table.renumbered {
                    row.remove(key);
                }
                row
            })
            .collect()
    }

    /// Copies the business's rows of every table from `from` to `to`, `page` rows at a time, as
    /// a move does: how many rows.
    async fn copy(fixture: &Fixture, business: &BusinessId, from: u16, to: u16, page: usize) -> usize {
        let (source, target) = (fixture.db.on_shard(from), fixture.db.on_shard(to));
        let mut copied = 0;
        for table in &MOVED_TABLES {
            let mut after = 0;
            loop {
                let read = rows_after(&source, table, business, after, page).await.must();
                if read.rows.is_empty() {
                    break;
                }
                insert_rows(&target, table, &read.rows)
                    .await
                    .unwrap_or_else(|error| panic!("{}: {error:?}", table.name));
                copied += read.rows.len();
                after = read.rowids.last().copied().unwrap_or(after);
            }
        }
        copied
    }

    #[test]
    fn a_business_is_copied_to_another_shard_row_for_row_and_deleted_from_the_first() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let initech = fixture.business_on("Initech", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            for tenant in [&acme, &initech, &globex] {
                a_row_in_every_table(&fixture, tenant).await;
            }
            let business = &acme.business_id;
            let held = counts(&fixture.db.on_shard(0), business).await.must();
            for (table, held) in MOVED_TABLES.iter().zip(&held) {
                assert!(*held > 0, "{} has a row of the business to move", table.name);
            }
            let copied = copy(&fixture, business, 0, 1, 2).await;
            assert_eq!(copied, held.iter().sum::<usize>());
            assert_eq!(
                counts(&fixture.db.on_shard(1), business).await.must(),
                held,
                "the copy verifies"
            );
            for table in &MOVED_TABLES {
                assert_eq!(
                    stored(&fixture, "DB_1", table, business),
                    stored(&fixture, "DB", table, business),
                    "{}: every column as it was stored",
                    table.name
                );
            }

            // The old copy goes, table by table from the last, a few rows at a time.
            let source = fixture.db.on_shard(0);
            for table in MOVED_TABLES.iter().rev() {
                while delete_rows(&source, table, business, 2).await.must() > 0 {}
            }
            assert!(
                counts(&source, business)
                    .await
                    .must()
                    .iter()
                    .all(|held| *held == 0)
            );
            for (tenant, binding) in [(&initech, "DB"), (&globex, "DB_1")] {
                let theirs = counts(
                    &fixture.db.on_shard(if binding == "DB" { 0 } else { 1 }),
                    &tenant.business_id,
                )
                .await
                .must();
                assert!(
                    theirs.iter().all(|held| *held > 0),
                    "another business's rows are untouched: {theirs:?}"
                );
            }
        });
    }

    #[test]
    fn rows_are_read_in_pages_of_the_business_alone() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let initech = fixture.business_on("Initech", 0).await;
            let table = MOVED_TABLES
                .iter()
                .find(|table| table.name == "crm_sync_jobs")
                .unwrap_or_else(|| panic!("listed"));
            for tenant in [&acme, &initech, &acme, &acme] {
                let connector = fixture.connector(tenant).await;
                let customer = domain::ids::CustomerId::generate(random());
                let requested = crm_sync_jobs::Requested {
                    connector_id: &connector,
                    customer_id: &customer,
                    operation: Operation::Note,
                    subject_id: "s",
                    input: &json!({}),
                };
                crm_sync_jobs::insert_requested(
                    &fixture.db,
                    tenant,
                    &SyncJobId::generate(random()),
                    &requested,
                    0,
                )
                .await
                .must();
            }
            let source = fixture.db.on_shard(0);
            let first = rows_after(&source, table, &acme.business_id, 0, 2).await.must();
            assert_eq!(first.rows.len(), 2);
            assert!(first.rows.iter().all(
                |row| !row.contains_key("seq") && row["business_id"] == json!(acme.business_id.as_str())
            ));
            let next = rows_after(&source, table, &acme.business_id, first.rowids[1], 2)
                .await
                .must();
            assert_eq!(next.rows.len(), 1, "Initech's row is not Acme's");
            assert!(next.rowids[0] > first.rowids[1]);
            assert!(
                rows_after(&source, table, &acme.business_id, next.rowids[0], 2)
                    .await
                    .must()
                    .rows
                    .is_empty()
            );
        });
    }

    #[test]
    fn a_page_that_does_not_fit_is_written_whole_or_not_at_all() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let table = MOVED_TABLES
                .iter()
                .find(|table| table.name == "customers")
                .unwrap_or_else(|| panic!("listed"));
            fixture.customer(&acme, "Ann").await;
            fixture.customer(&acme, "Bob").await;
            let read = rows_after(&fixture.db.on_shard(0), table, &acme.business_id, 0, 10)
                .await
                .must();
            // The same rows again on the same shard: the second already exists.
            let target = fixture.db.on_shard(0);
            let mut rows = read.rows.clone();
            if let Some(first) = rows.first_mut() {
                first.insert(
                    "id".to_owned(),
                    json!(domain::ids::CustomerId::generate(random()).as_str()),
                );
                first.insert("email".to_owned(), json!("new@example.com"));
            }
            let refused = insert_rows(&target, table, &rows).await;
            assert!(refused.is_err());
            assert_eq!(
                fixture.rows("customers", "rowid").len(),
                2,
                "the first row was not kept either"
            );
            let odd = vec![Map::from_iter([(
                "name; DROP TABLE customers".to_owned(),
                json!("x"),
            )])];
            assert!(
                insert_rows(&target, table, &odd).await.is_err(),
                "a column that is not a name"
            );
        });
    }
}
