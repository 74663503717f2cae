//! Moving a business to the other shard, as an operator's command does it step by step through
//! `POST /admin/businesses/{id}/move`, for a business with rows in every table a move copies (CRM
//! link pieces, with their generated column, among them). Each step is first killed part of the
//! way through (the shard it writes stops answering), then resumed from the cursor the command
//! last had, then run once more from that same cursor (its answer lost): the move still ends with
//! every row on the new shard exactly once, none on the old one, and the business working. The
//! same move aborted after each of its steps (`POST .../move/abort`, its own steps killed and
//! resumed too) leaves every row where it was and nothing on the other shard; after the switch the
//! abort is refused. A business whose CRM link was indexed through the real fetcher and embedder
//! is found by meaning after its move, its pieces' vectors answering for the moved rows.

use super::crm_links::{Dashboard, SHOPIFY_HOST, add_page, shopify_example};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{Crm, Sizes, Source, record_name};
use crate::partners::kustomer::Kustomer;
use crate::partners::meta;
use crate::partners::webhook_endpoint::Endpoint;
use domain::shard_move::MOVED_TABLES;
use edge::runtime::Method;
use edge::runtime::native::{Reply, rusqlite};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const PHONE_NUMBER_ID: &str = "106540352242922";
const APP_SECRET: &str = "meta-app-secret";
pub(super) const SHARDS: [&str; 2] = ["DB", "DB_1"];

/// The shard the directory says the business lives on.
pub(super) fn shard_of(app: &App, business: &Business) -> usize {
    app.stack.sql("DB", |connection| {
        connection
            .query_row(
                "SELECT shard FROM business_shards WHERE business_id = ?1",
                [&business.id],
                |row| row.get::<_, i64>(0),
            )
            .map_or(0, |shard| usize::try_from(shard).unwrap_or(0))
    })
}

/// The business's rows of every moved table on a shard, as `SELECT *` gives them, without the keys
/// a move numbers afresh and without the columns SQLite computes.
pub(super) fn rows_on(
    app: &App,
    shard: usize,
    business: &Business,
) -> BTreeMap<&'static str, Vec<Map<String, Value>>> {
    let mut tables = BTreeMap::new();
    app.stack.sql(SHARDS[shard], |connection| {
        for table in &MOVED_TABLES {
            let sql = format!(
                "SELECT * FROM {} WHERE {} = ?1 ORDER BY rowid",
                table.name, table.business_column
            );
            let mut statement = connection
                .prepare(&sql)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            let names: Vec<String> = statement.column_names().map(str::to_owned).collect();
            let mut answer = statement
                .query([&business.id])
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            let mut rows = Vec::new();
            while let Some(row) = answer.next().unwrap_or_else(|error| panic!("{sql}: {error}")) {
                let mut object = Map::new();
                for (at, name) in names.iter().enumerate() {
                    if Some(name.as_str()) == table.renumbered || table.computed.contains(&name.as_str()) {
                        continue;
                    }
                    let value: rusqlite::types::Value = row.get(at).unwrap_or(rusqlite::types::Value::Null);
                    object.insert(name.clone(), json!(format!("{value:?}")));
                }
                rows.push(object);
            }
            tables.insert(table.name, rows);
        }
    });
    tables
}

/// A business with rows in every table a move copies: made through the API where a client makes
/// them, and written directly where only a long pipeline would (a CRM link's pieces, a CRM's
/// inbound event and satisfaction score, a status that arrived before its message).
pub(super) async fn populated(app: &App) -> Business {
    let business = app.business("Acme").await;
    let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
    let hook = app
        .api(
            &business.key,
            Method::Post,
            "/api-webhooks",
            Some(json!({ "name": "CRM", "url": endpoint.url() })),
        )
        .await
        .expect(201)
        .json();
    endpoint.knows_secret(hook["secret"].as_str().unwrap_or_default());
    // The first delivery waits for a retry: a delivery its first attempt settles has no row.
    endpoint.answer_next([Reply::status(503)]);
    Kustomer::install(&app.stack, "acme", "kustomer-api-key");
    let connector = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/connectors", business.id),
            Some(json!({
                "kind": "kustomer",
                "settings": { "subdomain": "acme" },
                "secrets": { "api_key": "kustomer-api-key" },
                "rate_limit": { "per_minute": null, "per_second": null, "per_day": null }
            })),
        )
        .await
        .expect(201)
        .json();
    let account = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", business.id),
            Some(json!({
                "channel": "whatsapp", "provider": "meta", "address": PHONE_NUMBER_ID, "settings": {},
                "secrets": { "app_secret": APP_SECRET, "verify_token": "verify", "access_token": "access" }
            })),
        )
        .await
        .expect(201)
        .json();
    let path = account["webhook_path"].as_str().unwrap_or_default().to_owned();
    let notification = meta::whatsapp_text(
        PHONE_NUMBER_ID,
        "353871234567",
        "Ada",
        "wamid.one",
        "I need a manager",
    );
    let body = serde_json::to_vec(&notification).unwrap_or_default();
    let signature = meta::signature(APP_SECRET, &body);
    app.request(
        Method::Post,
        &path,
        &[
            ("content-type", "application/json"),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
    .await
    .expect(200);
    app.settle().await;
    let synced = app
        .api(
            &business.key,
            Method::Post,
            "/api-customers-sync",
            Some(json!({ "customers": [{ "external_id": "CRM-1", "name": "Grace", "email": "grace@example.com" }] })),
        )
        .await
        .expect(200)
        .json();
    let customer_id = synced["results"]["details"][0]["customer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let messages = app
        .api(
            &business.key,
            Method::Get,
            "/api-messages-since?since=1970-01-01T00:00:00Z",
            None,
        )
        .await
        .expect(200)
        .json();
    let conversation_id = messages["messages"][0]["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.api(
        &business.key,
        Method::Post,
        "/api-escalations",
        Some(json!({ "conversation_id": conversation_id, "reason": "asked for a manager" })),
    )
    .await
    .expect(202);
    app.json(
        Method::Post,
        "/api-sso-generate-token",
        &[("x-api-key", &business.key), ("idempotency-key", "sso-once")],
        Some(json!({ "customer_id": customer_id })),
    )
    .await
    .expect(201);
    app.api(&business.key, Method::Post, "/api-console-links", None)
        .await
        .expect(201);
    app.api(
        &business.key,
        Method::Patch,
        "/api-alert-settings",
        Some(json!({ "email_to": ["ops@example.com"] })),
    )
    .await
    .expect(200);
    let boundary = "native-boundary";
    let upload = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\ncontent-type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    app.request(
        Method::Post,
        "/api-upload-attachment",
        &[
            ("x-api-key", &business.key),
            (
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            ),
        ],
        upload.into_bytes(),
    )
    .await
    .expect(201);
    app.settle().await;

    let shard = SHARDS[shard_of(app, &business)];
    let connector_id = connector["id"].as_str().unwrap_or_default();
    let (id, now) = (&business.id, "2026-11-26T12:00:00Z");
    app.stack.sql(shard, |connection| {
        connection
            .execute_batch(&format!(
                "INSERT INTO early_statuses (business_id, channel, provider_message_id, status, received_us) \
                   VALUES ('{id}', 'whatsapp', 'wamid.later', 'delivered', 1);
                 INSERT INTO crm_inbound_events (connector_id, event_id, business_id, received_us) \
                   VALUES ('{connector_id}', 'evt-1', '{id}', 1);
                 INSERT INTO crm_satisfaction (connector_id, business_id, conversation_id, score, level, updated_us) \
                   VALUES ('{connector_id}', '{id}', 'kc-1', 4.5, 'satisfied', 1);
                 INSERT INTO knowledge_sources (id, business_id, page_id, url, name, type, fetch_interval_minutes, secrets, state, created_at, updated_at) \
                   VALUES ('src-1', '{id}', 'page-1', 'https://crm.example.com/customers', 'Customers', 'api', 30, '{{}}', 'ok', '{now}', '{now}');
                 INSERT INTO knowledge_chunks (id, business_id, source_id, hash, record, part, text, embedder, created_at, updated_at) \
                   VALUES ('piece-1', '{id}', 'src-1', 'h1', 'r1', 0, 'Ada prefers email', 'minilm', '{now}', '{now}'), \
                          ('piece-2', '{id}', 'src-1', 'h2', 'r2', 0, 'Grace prefers phone', 'minilm', '{now}', '{now}');
                 INSERT INTO knowledge_links (source_id, business_id, page_id, channel, is_active, created_at, updated_at) \
                   VALUES ('src-1', '{id}', 'page-1', 'messenger', 1, '{now}', '{now}');
                 INSERT INTO knowledge_run_seen (source_id, business_id, run_id, slice, page, hashes) \
                   VALUES ('src-1', '{id}', 'run-1', 0, 0, '[\"h1\"]');
                 INSERT INTO bots (business_id, page_id, channel, enabled, settings, created_at, updated_at) \
                   VALUES ('{id}', 'page-1', 'messenger', 1, '{{\"enabled\": true}}', '{now}', '{now}');
                 INSERT INTO bot_conversations (business_id, conversation_id, reopen_count, answers, updated_at) \
                   VALUES ('{id}', 'conv-1', 0, 1, '{now}');
                 INSERT INTO bot_answers (id, business_id, page_id, channel, question, action, total_ms, created_at) \
                   VALUES ('turn-1', '{id}', 'page-1', 'messenger', 'What plan am I on?', 'reply', 5, '{now}');
                 INSERT INTO bot_turns (business_id, message_id, page_id, channel, queued_ms) \
                   VALUES ('{id}', 'message-waiting', 'page-1', 'messenger', 1);
                 INSERT INTO oauth_states (nonce, business_id, expires_ms) VALUES ('nonce-1', '{id}', 1);
                 INSERT INTO customer_erasures (id, business_id, requested_us, requested_by, status, subjects, erased_us) \
                   VALUES ('8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f', '{id}', 1, 'admin', 'erased', '[\"0123456789abcdef\"]', 2);
                 INSERT INTO alerts (id, business_id, kind, subject_id, subject_name, threshold, value, message, \
                   raised_ms, resolved_ms, raised_email, resolved_email) \
                   VALUES ('alert-1', '{id}', 'connector_failing', '{connector_id}', 'Kustomer', 10, 12, 'failing', \
                   1, 2, 'sent', 'sent');"
            ))
            .unwrap_or_else(|error| panic!("{error}"));
    });
    business
}

/// One step of the move, as the command asks for it.
async fn step(app: &App, business: &Business, to: usize, cursor: Option<&str>) -> crate::app::Answer {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/move", business.id),
        Some(json!({ "to_shard": to, "cursor": cursor })),
    )
    .await
}

#[test]
fn a_business_with_rows_in_every_table_moves_through_killed_and_repeated_steps() {
    test(|app| async move {
        let business = populated(&app).await;
        let from = shard_of(&app, &business);
        let to = 1 - from;
        let before = rows_on(&app, from, &business);
        let empty: Vec<&str> = before
            .iter()
            .filter(|(_, rows)| rows.is_empty())
            .map(|(table, _)| *table)
            .collect();
        assert!(
            empty.is_empty(),
            "the business has rows in every moved table; none in {empty:?}"
        );

        let mut cursor: Option<String> = None;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 100, "the move ends");
            // Killed part of the way: the new shard stops answering after the step's first call to it.
            app.stack.outage_after(SHARDS[to], 1, "Network connection lost.");
            let killed = step(&app, &business, to, cursor.as_deref()).await;
            app.stack.restore(SHARDS[to]);
            assert!(
                matches!(killed.status, 200 | 503),
                "a step that dies is retried, never a fault of the client's: {} {}",
                killed.status,
                killed.text()
            );
            assert!(
                killed.status == 200 || killed.text().contains(" on shard "),
                "a step that dies says where: {}",
                killed.text()
            );
            // Resumed from the cursor the command had, and then again: its answer was lost.
            let resumed = step(&app, &business, to, cursor.as_deref())
                .await
                .expect(200)
                .json();
            let repeated = step(&app, &business, to, cursor.as_deref())
                .await
                .expect(200)
                .json();
            if repeated["phase"] == "done" {
                break;
            }
            let wait = repeated["wait_seconds"]
                .as_u64()
                .unwrap_or(0)
                .max(resumed["wait_seconds"].as_u64().unwrap_or(0));
            app.stack.advance(Duration::from_secs(wait));
            cursor = repeated["cursor"].as_str().map(str::to_owned);
        }

        assert_eq!(shard_of(&app, &business), to, "the directory names the new shard");
        let after = rows_on(&app, to, &business);
        for table in &MOVED_TABLES {
            let (was, is) = (&before[table.name], &after[table.name]);
            if table.name == "audit_log" {
                assert_eq!(is.len(), was.len() + 1, "the move is in the audit log once");
                assert_eq!(&is[..was.len()], &was[..], "audit_log as it was, then the move");
            } else if table.name == "business_usage" {
                assert_usage_kept(was, is, "moved");
            } else {
                assert_eq!(is, was, "{} holds every row exactly once, as it was", table.name);
            }
        }
        let left: Vec<&str> = rows_on(&app, from, &business)
            .into_iter()
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(table, _)| table)
            .collect();
        assert!(
            left.is_empty(),
            "nothing of the business is left on the old shard: {left:?}"
        );
        let pieces: i64 = app.stack.sql(SHARDS[to], |connection| {
            connection
                .query_row(
                    "SELECT count(*) FROM knowledge_fts WHERE knowledge_fts MATCH 'prefers'",
                    [],
                    |row| row.get(0),
                )
                .unwrap_or(-1)
        });
        assert_eq!(pieces, 2, "the moved pieces are searchable on the new shard");

        app.stack.restart_isolate();
        let found = app
            .api(
                &business.key,
                Method::Get,
                "/api-customers?external_id=CRM-1",
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(found["name"], "Grace");
        app.api(
            &business.key,
            Method::Post,
            "/api-customers-sync",
            Some(json!({ "customers": [{ "external_id": "CRM-2", "name": "Hedy" }] })),
        )
        .await
        .expect(200);
    });
}

/// One step of aborting the business's move, as the command asks for it.
async fn abort_step(app: &App, business: &Business, cursor: Option<&str>) -> crate::app::Answer {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/move/abort", business.id),
        Some(json!({ "cursor": cursor })),
    )
    .await
}

/// The directory's entry of the business: (shard, moving_to, moved_from).
fn entry_of(app: &App, business: &Business) -> (i64, Option<i64>, Option<i64>) {
    app.stack.sql("DB", |connection| {
        connection
            .query_row(
                "SELECT shard, moving_to, moved_from FROM business_shards WHERE business_id = ?1",
                [&business.id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap_or_else(|error| panic!("{error}"))
    })
}

#[test]
fn a_move_aborted_after_any_of_its_steps_leaves_every_row_where_it_was_and_no_copy_behind() {
    test(|app| async move {
        let business = populated(&app).await;
        let from = shard_of(&app, &business);
        let to = 1 - from;
        let mut before = rows_on(&app, from, &business);
        let mut aborted_in = Vec::new();
        let mut killed_steps = 0;
        for taken in 1.. {
            assert!(taken < 100, "the move switches");
            let mut cursor: Option<String> = None;
            let mut phase = String::new();
            for _ in 0..taken {
                let out = step(&app, &business, to, cursor.as_deref())
                    .await
                    .expect(200)
                    .json();
                app.stack
                    .advance(Duration::from_secs(out["wait_seconds"].as_u64().unwrap_or(0)));
                cursor = out["cursor"].as_str().map(str::to_owned);
                phase = out["phase"].as_str().unwrap_or_default().to_owned();
            }
            if phase == "switched" {
                let refused = abort_step(&app, &business, None).await;
                assert_eq!(refused.status, 409, "{}", refused.text());
                assert!(
                    refused.text().contains("the move finished"),
                    "the refusal says why: {}",
                    refused.text()
                );
                break;
            }
            // What the move would have done next: delete leftovers, copy, or verify.
            let next = cursor.as_deref().and_then(|cursor| cursor.split(':').next());
            aborted_in.push(next.unwrap_or_default().to_owned());

            // The abort, each of its steps first killed part of the way, then resumed.
            let mut abort_cursor: Option<String> = None;
            let mut steps = 0;
            loop {
                steps += 1;
                assert!(steps < 100, "the abort ends");
                app.stack.outage_after(SHARDS[to], 1, "Network connection lost.");
                let killed = abort_step(&app, &business, abort_cursor.as_deref()).await;
                app.stack.restore(SHARDS[to]);
                assert!(
                    matches!(killed.status, 200 | 503),
                    "a killed abort step is retried: {} {}",
                    killed.status,
                    killed.text()
                );
                if killed.status == 503 {
                    killed_steps += 1;
                    assert!(
                        killed.text().contains(" on shard "),
                        "it names the table and shard it was at: {}",
                        killed.text()
                    );
                }
                let resumed = abort_step(&app, &business, abort_cursor.as_deref()).await;
                if resumed.status == 409 && killed.status == 200 && killed.json()["phase"] == "aborted" {
                    break;
                }
                let resumed = resumed.expect(200).json();
                if resumed["phase"] == "aborted" {
                    break;
                }
                abort_cursor = resumed["cursor"].as_str().map(str::to_owned);
            }

            let what = format!("aborted after {taken} steps ({phase})");
            assert_eq!(
                entry_of(&app, &business),
                (from as i64, None, None),
                "{what}: the directory names the old shard, at rest"
            );
            let after = rows_on(&app, from, &business);
            for table in &MOVED_TABLES {
                let (was, is) = (&before[table.name], &after[table.name]);
                if table.name == "audit_log" {
                    assert_eq!(&is[..was.len()], &was[..], "{what}: audit_log as it was");
                    assert_eq!(is.len(), was.len() + 1, "{what}: then the abort");
                } else if table.name == "business_usage" {
                    assert_usage_kept(was, is, &what);
                } else {
                    assert_eq!(is, was, "{what}: {} holds every row, as it was", table.name);
                }
            }
            let left: Vec<&str> = rows_on(&app, to, &business)
                .into_iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(table, _)| table)
                .collect();
            assert!(
                left.is_empty(),
                "{what}: no copy left on the other shard: {left:?}"
            );
            app.stack.restart_isolate();
            app.api(
                &business.key,
                Method::Post,
                "/api-customers-sync",
                Some(
                    json!({ "customers": [{ "external_id": format!("CRM-after-{taken}"), "name": "Hedy" }] }),
                ),
            )
            .await
            .expect(200);
            before = rows_on(&app, from, &business);
        }
        assert!(
            ["delete", "copy", "verify"]
                .iter()
                .all(|next| aborted_in.iter().any(|seen| seen == next)),
            "aborted before each kind of step: {aborted_in:?}"
        );
        assert!(killed_steps > 0, "some abort steps were killed part of the way");
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let out = step(&app, &business, to, cursor.as_deref())
                .await
                .expect(200)
                .json();
            if out["phase"] == "done" {
                break;
            }
            app.stack
                .advance(Duration::from_secs(out["wait_seconds"].as_u64().unwrap_or(0)));
            cursor = out["cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(
            entry_of(&app, &business),
            (to as i64, None, None),
            "the move ends after all"
        );
    });
}

#[test]
fn a_business_whose_crm_link_was_indexed_moves_through_killed_steps_and_its_pieces_are_still_found_by_meaning()
 {
    test(|app| async move {
        let _embedder = app.embedder();
        let business = app.business("Acme").await;
        let page_id = add_page(&app, &business).await;
        let page = page_id.as_str();
        let crm = Crm::install(&app.stack, SHOPIFY_HOST, Sizes::SMALL);
        let dashboard = Dashboard::new(&app, &business);
        dashboard.add(shopify_example(page)).await;
        app.settle().await;
        let customers = crm.records(Source::Shopify);
        let question = format!("{}'s plan", record_name(&customers[3]));
        let search = [
            ("page_id", page),
            ("channel", "messenger"),
            ("q", question.as_str()),
        ];
        let found = dashboard.search(&search).await;
        assert_eq!(
            (found["mode"].as_str(), found["results"][0]["record"].as_str()),
            (Some("semantic"), Some("customers[3]")),
            "found by meaning before the move: {found}"
        );
        let from = shard_of(&app, &business);
        let to = 1 - from;
        let before = rows_on(&app, from, &business);
        assert!(
            !before["knowledge_chunks"].is_empty(),
            "the link's pieces are rows to move"
        );

        // Each step killed part of the way (the new shard stops answering), then resumed.
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            app.stack.outage_after(SHARDS[to], 1, "Network connection lost.");
            let killed = step(&app, &business, to, cursor.as_deref()).await;
            app.stack.restore(SHARDS[to]);
            assert!(matches!(killed.status, 200 | 503), "{}", killed.text());
            let out = step(&app, &business, to, cursor.as_deref())
                .await
                .expect(200)
                .json();
            if out["phase"] == "done" {
                break;
            }
            app.stack
                .advance(Duration::from_secs(out["wait_seconds"].as_u64().unwrap_or(0)));
            cursor = out["cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(shard_of(&app, &business), to);
        let after = rows_on(&app, to, &business);
        for table in ["knowledge_sources", "knowledge_chunks", "knowledge_links"] {
            assert_eq!(after[table], before[table], "{table} moved as it was");
        }
        app.stack.restart_isolate();
        let found = dashboard.search(&search).await;
        assert_eq!(
            (found["mode"].as_str(), found["results"][0]["record"].as_str()),
            (Some("semantic"), Some("customers[3]")),
            "found by meaning after the move: {found}"
        );
    });
}

/// `business_usage` after an operation on the business: each day it held, with every count as it
/// was or more (the operation's own invocations are counted as they end).
pub(super) fn assert_usage_kept(was: &[Map<String, Value>], is: &[Map<String, Value>], what: &str) {
    assert_eq!(
        is.len(),
        was.len(),
        "{what}: business_usage has the days it had: {is:?}"
    );
    for row in was {
        let kept = is
            .iter()
            .find(|kept| kept["day"] == row["day"])
            .unwrap_or_else(|| panic!("{what}: business_usage lost {row:?}"));
        // Rows are read as the driver shows each value: `Integer(220)`.
        let count = |value: &Value| {
            let shown = value.as_str().unwrap_or_default();
            shown
                .strip_prefix("Integer(")?
                .strip_suffix(')')?
                .parse::<i64>()
                .ok()
        };
        for (column, value) in row {
            match count(value) {
                Some(was) => assert!(
                    count(&kept[column]) >= Some(was),
                    "{what}: business_usage.{column} went down: {row:?} → {kept:?}"
                ),
                _ => assert_eq!(&kept[column], value, "{what}: business_usage.{column}"),
            }
        }
    }
}
