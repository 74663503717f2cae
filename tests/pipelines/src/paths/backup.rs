//! Backing up one business and restoring it where it was deleted, as `crm-edge admin backup` and
//! `restore` do through `POST /admin/businesses/{id}/backup` and `/restore`, for a business with
//! rows in every table a move copies (`move_business::populated`): every row of every table is
//! as it was (`SELECT *`, the keys the database numbers aside), but for what the restore's
//! quarantine changes (its accounts paused, connectors, webhooks and links off, queued sends
//! failed, pending work dead, keys and sessions revoked) until the operator resumes it. A restore
//! where the business exists, with another deployment's key, of a file that does not add up, or
//! of a line that is not as the backup wrote it (its MAC) is refused, and none leaves a business
//! behind that can write.

use super::crm_links::{Dashboard, add_page, custom_example, guide_crm};
use super::move_business::{SHARDS, assert_usage_kept, populated, rows_on, shard_of};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::Sizes;
use crate::partners::kustomer::Kustomer;
use crate::steps::api::assert_error;
use domain::backup::{Header, Line};
use domain::sealed::Place;
use domain::shard_move::MOVED_TABLES;
use edge::runtime::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Another deployment's keyring.
const OTHER_KEY: &str = "k1:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";

/// Seals the knowledge source's secrets `populated` wrote in clear, as the product's writes do.
async fn seal_the_clear_source(app: &App, business: &Business) {
    let env = edge::Env::new(app.stack.clone(), "test");
    let keys = env.keyring().unwrap_or_else(|error| panic!("{error:?}"));
    let place = Place {
        table: "knowledge_sources",
        column: "secrets",
        row_id: "src-1",
    };
    let sealed = edge::platform::secrets_key::seal(&keys, &place, "{}")
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
    app.stack.sql(SHARDS[shard_of(app, business)], |connection| {
        connection
            .execute(
                "UPDATE knowledge_sources SET secrets = ?1 WHERE id = 'src-1'",
                [&sealed],
            )
            .unwrap_or_else(|error| panic!("{error}"))
    });
}

/// Every page of the business's export, as the command asks for them: the file's header (the
/// last page's) and the lines.
async fn export(app: &App, business: &Business) -> (Header, Vec<Line>, usize) {
    let (mut lines, mut pages, mut cursor) = (Vec::new(), 0, Value::Null);
    loop {
        pages += 1;
        let page = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/backup", business.id),
                Some(json!({ "cursor": cursor })),
            )
            .await
            .expect(200)
            .json();
        let got: Vec<Line> = serde_json::from_value(page["lines"].clone()).unwrap_or_else(|e| panic!("{e}"));
        lines.extend(got);
        cursor = page["cursor"].clone();
        if cursor.is_null() {
            let header = serde_json::from_value::<Header>(page["last_header"].clone())
                .unwrap_or_else(|e| panic!("{e}"));
            return (header, lines, pages);
        }
    }
}

/// How one page of a restore is sent.
#[derive(Clone, Copy, Default)]
struct Page<'a> {
    first: bool,
    complete: bool,
    /// The MAC of the file's line before the page.
    chain: Option<&'a str>,
    /// The page's first row's line in the file.
    first_line: usize,
    verify_only: bool,
    keep_access: bool,
}

/// One page of a restore.
async fn restore(app: &App, header: &Header, lines: &[Line], page: Page<'_>) -> crate::app::Answer {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/restore", header.business_id),
        Some(json!({
            "header": header, "lines": lines, "first": page.first, "complete": page.complete,
            "chain": page.chain, "first_line": page.first_line, "verify_only": page.verify_only,
            "keep_access": page.keep_access,
        })),
    )
    .await
}

/// Restores the whole backup, `size` rows a page, each page going on from the MAC of the line
/// before it: the last page's answer (or the first refused).
async fn restore_all(
    app: &App,
    header: &Header,
    lines: &[Line],
    size: usize,
    keep_access: bool,
) -> crate::app::Answer {
    let pages: Vec<&[Line]> = lines.chunks(size).collect();
    // Each page's answer counts its own rows' quarantine; the last one is given the sum, as the
    // CLI shows it.
    let mut quarantined = serde_json::Map::new();
    for (at, page) in pages.iter().enumerate() {
        let last = at + 1 == pages.len();
        let chain = at.checked_sub(1).map(|before| {
            pages[before]
                .last()
                .map(|line| line.mac.as_str())
                .unwrap_or_default()
        });
        let answer = restore(
            app,
            header,
            page,
            Page {
                first: at == 0,
                complete: last,
                chain,
                first_line: 2 + at * size,
                keep_access,
                ..Page::default()
            },
        )
        .await;
        if answer.status != 200 {
            return answer;
        }
        let mut body = answer.json();
        for (kind, count) in body["quarantined"].as_object().into_iter().flatten() {
            let sum =
                quarantined.get(kind).and_then(Value::as_u64).unwrap_or(0) + count.as_u64().unwrap_or(0);
            quarantined.insert(kind.clone(), json!(sum));
        }
        if last {
            body["quarantined"] = Value::Object(quarantined);
            return crate::app::Answer {
                body: body.to_string().into_bytes(),
                ..answer
            };
        }
        // No row a page wrote is live, not even until the last page: a retry the queue held from
        // before the backup, arriving now, finds nothing to send, deliver or write.
        let live = live_rows(app, &header.business_id, keep_access);
        assert!(live.is_empty(), "live after page {}: {live:?}", at + 1);
        // Minutes between pages, as a large restore takes: the maintenance sweep runs meanwhile.
        app.stack.advance(std::time::Duration::from_secs(600));
        app.sweep().await;
        app.settle().await;
    }
    unreachable!("a backup has a row")
}

/// What of the business's rows could act (a send, a delivery, CRM work, an account, connector,
/// endpoint or link that is on, a key that opens the API), on any shard, as `table: count`.
fn live_rows(app: &App, business: &str, keep_access: bool) -> Vec<String> {
    let mut checks = vec![
        ("messages", "direction = 'outbound' AND status = 'queued'"),
        ("webhook_deliveries", "status = 'pending'"),
        ("crm_sync_jobs", "status = 'pending'"),
        ("bot_turns", "1"),
        ("channel_accounts", "paused_at IS NULL"),
        ("crm_connectors", "enabled = 1"),
        ("webhook_endpoints", "enabled = 1"),
        ("knowledge_links", "is_active = 1"),
    ];
    if !keep_access {
        checks.push(("api_keys", "revoked_at IS NULL"));
    }
    let mut live = Vec::new();
    for shard in SHARDS {
        for (table, condition) in &checks {
            let sql = format!("SELECT count(*) FROM {table} WHERE business_id = ?1 AND {condition}");
            let count: i64 = app.stack.sql(shard, |connection| {
                connection
                    .query_row(&sql, [business], |row| row.get(0))
                    .unwrap_or_else(|error| panic!("{sql}: {error}"))
            });
            if count > 0 {
                live.push(format!("{table}: {count}"));
            }
        }
    }
    live
}

/// The columns a restore's quarantine changes, by table: every other column of every row is as
/// the backup held it.
const QUARANTINED: [(&str, &str); 12] = [
    ("api_keys", "revoked_at"),
    ("businesses", "quarantine"),
    ("channel_accounts", "paused_at"),
    ("console_sessions", "revoked_at"),
    ("crm_connectors", "enabled"),
    ("crm_sync_jobs", "status"),
    ("knowledge_chunks", "embedder"),
    ("knowledge_links", "is_active"),
    ("messages", "status"),
    ("sso_tokens", "revoked_at"),
    ("webhook_deliveries", "status"),
    ("webhook_endpoints", "enabled"),
];

/// `rows` without the columns a quarantine changes (and the columns that say why), and without
/// the audit entries of the restore and the resume.
fn unquarantined(table: &str, rows: &[Map<String, Value>]) -> Vec<Map<String, Value>> {
    let changed: Vec<&str> = QUARANTINED
        .iter()
        .filter(|(name, _)| *name == table)
        .map(|(_, column)| *column)
        .chain([
            "status_reason",
            "updated_at",
            "last_error",
            "next_attempt_us",
            "updated_us",
            "leased_until_us",
        ])
        .collect();
    // The restore's and the resume's own audit entries are new.
    let own_entry = |row: &Map<String, Value>| {
        let action = row.get("action").and_then(Value::as_str).unwrap_or_default();
        action.contains("business.restored") || action.contains("business.resumed")
    };
    rows.iter()
        .filter(|row| !own_entry(row))
        .map(|row| {
            let mut row = row.clone();
            row.retain(|name, _| !changed.contains(&name.as_str()));
            row
        })
        .collect()
}

/// A business's rows on its shard, by table.
type Tables = BTreeMap<&'static str, Vec<Map<String, Value>>>;

/// Every row of the business as the backup held it, but for what the quarantine changes, and
/// the bot's turns, which it drops (no answer of another moment is sent).
fn assert_restored(before: &Tables, after: &Tables) {
    for table in &MOVED_TABLES {
        let restored = unquarantined(table.name, &after[table.name]);
        if table.name == "bot_turns" {
            assert!(restored.is_empty(), "the bot's turns dropped: {restored:?}");
            continue;
        }
        if table.name == "business_usage" {
            assert_usage_kept(
                &unquarantined(table.name, &before[table.name]),
                &restored,
                "restored",
            );
            continue;
        }
        assert_eq!(
            restored,
            unquarantined(table.name, &before[table.name]),
            "{}: every row as it was, but for what the quarantine changes",
            table.name
        );
    }
}

/// Deletes everything of the business from its shard and the directory, as an empty database.
fn delete_everywhere(app: &App, business: &Business) {
    delete_everywhere_but(app, business, &[]);
}

/// As [`delete_everywhere`], leaving the rows of `kept` where they are (as work in flight when
/// the business was deleted writes them after).
fn delete_everywhere_but(app: &App, business: &Business, kept: &[&str]) {
    let shard = SHARDS[shard_of(app, business)];
    app.stack.sql(shard, |connection| {
        for table in MOVED_TABLES
            .iter()
            .rev()
            .filter(|table| !kept.contains(&table.name))
        {
            let sql = format!("DELETE FROM {} WHERE {} = ?1", table.name, table.business_column);
            connection
                .execute(&sql, [&business.id])
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
    });
    app.stack.sql("DB", |connection| {
        for sql in [
            "DELETE FROM business_shards WHERE business_id = ?1",
            "DELETE FROM channel_addresses WHERE business_id = ?1",
        ] {
            connection
                .execute(sql, [&business.id])
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
    });
    for at in 0..SHARDS.len() {
        assert!(
            rows_on(app, at, business)
                .iter()
                .all(|(table, rows)| rows.is_empty() || kept.contains(table)),
            "nothing of it is left on shard {at}"
        );
    }
}

#[test]
fn a_business_backed_up_and_restored_where_it_was_deleted_holds_every_row_it_held_and_works() {
    test(|app| async move {
        let business = populated(&app).await;
        let refused = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/backup", business.id),
                Some(json!({})),
            )
            .await
            .expect(409)
            .text();
        assert!(
            refused.contains("knowledge_sources.secrets") && refused.contains("clear text"),
            "a secret in clear is never put in a backup: {refused}"
        );
        seal_the_clear_source(&app, &business).await;
        let shard = shard_of(&app, &business);
        let before = rows_on(&app, shard, &business);
        let (header, lines, pages) = export(&app, &business).await;
        assert_eq!(header.business_id, business.id);
        for table in &MOVED_TABLES {
            let held = before[table.name].len();
            assert!(held > 0, "{} has a row of the business", table.name);
            assert_eq!(
                header.counts.get(table.name),
                Some(&held),
                "{}: the header counts it",
                table.name
            );
        }
        assert_eq!(lines.len(), before.values().map(Vec::len).sum::<usize>());
        assert!(pages >= 1);
        let text = serde_json::to_string(&lines).unwrap_or_default();
        for secret in ["meta-app-secret", "kustomer-api-key", "whsec_"] {
            assert!(
                !text.contains(secret),
                "the backup holds no secret in clear ({secret})"
            );
        }

        let exists = restore(
            &app,
            &header,
            &lines[..3],
            Page {
                first: true,
                first_line: 2,
                ..Page::default()
            },
        )
        .await
        .expect(409)
        .text();
        assert!(exists.contains("exists"), "{exists}");

        // CRM work in flight when the business was deleted, its links written after (a table no
        // foreign key ties to the business): the restore deletes what is left of the business
        // before it writes the backup's rows.
        delete_everywhere_but(&app, &business, &["crm_links"]);
        let own_key = app.stack.secret("SECRETS_KEY").unwrap_or_default();
        app.stack.set_secret("SECRETS_KEY", OTHER_KEY);
        let other = restore_all(&app, &header, &lines, 7, false)
            .await
            .expect(422)
            .text();
        assert!(other.contains("SECRETS_KEY"), "another deployment's key: {other}");
        assert!(
            rows_on(&app, shard, &business)
                .iter()
                .all(|(table, rows)| rows.is_empty() || *table == "crm_links"),
            "nothing was written"
        );
        app.stack.set_secret("SECRETS_KEY", &own_key);

        let restored = restore_all(&app, &header, &lines, 7, false)
            .await
            .expect(200)
            .json();
        let quarantined = &restored["quarantined"];
        for kind in ["channel_accounts_paused", "api_keys_revoked"] {
            assert!(
                quarantined[kind].as_u64().is_some_and(|count| count > 0),
                "{kind}: {restored}"
            );
        }
        let after = rows_on(&app, shard_of(&app, &business), &business);
        assert_restored(&before, &after);
        for account in &after["channel_accounts"] {
            assert!(account["paused_at"].is_string(), "paused: {account:?}");
        }
        for key in &after["api_keys"] {
            assert!(key["revoked_at"].is_string(), "revoked: {key:?}");
        }
        assert!(
            after["messages"]
                .iter()
                .all(|message| message["status"] != "queued"),
            "no send of the backup's waits to go out"
        );
        let claimed = app.stack.sql("DB", |connection| {
            connection
                .query_row(
                    "SELECT business_id FROM channel_addresses WHERE channel = 'whatsapp'",
                    [],
                    |row| row.get::<_, String>(0),
                )
                .unwrap_or_default()
        });
        assert_eq!(
            claimed, business.id,
            "its WhatsApp number is its own again, for inbound messages"
        );
        app.api(
            &business.key,
            Method::Get,
            "/api-messages-since?since=1970-01-01T00:00:00Z",
            None,
        )
        .await
        .expect(401);
        let resumed = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/resume", business.id),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(resumed["waiting"], Value::Null, "{resumed}");
        let resumed_rows = rows_on(&app, shard_of(&app, &business), &business);
        for table in [
            "channel_accounts",
            "crm_connectors",
            "webhook_endpoints",
            "knowledge_links",
        ] {
            assert_eq!(
                resumed_rows[table], before[table],
                "{table}: on again exactly as the backup held it"
            );
        }
    });
}

#[test]
fn a_restore_that_does_not_add_up_or_holds_an_edited_line_is_refused_leaves_no_business_that_writes_and_is_discarded_by_the_next()
 {
    test(|app| async move {
        let business = populated(&app).await;
        seal_the_clear_source(&app, &business).await;
        let shard = shard_of(&app, &business);
        let before = rows_on(&app, shard, &business);
        let (header, lines, _) = export(&app, &business).await;
        delete_everywhere(&app, &business);

        // A file cut short that slipped past the command's check: its last page finds fewer rows.
        let cut = &lines[..lines.len() - 1];
        let refused = restore_all(&app, &header, cut, 50, true).await.expect(409).text();
        assert!(refused.contains("does not match its backup"), "{refused}");
        let held = app
            .api(&business.key, Method::Post, "/api-console-links", None)
            .await
            .expect(503)
            .text();
        assert!(
            held.contains("being restored from a backup"),
            "the business's own requests are told why: {held}"
        );
        // A line edited in the file: refused by its MAC, naming its line, before it is written.
        let mut edited = lines.clone();
        let at = edited
            .iter()
            .position(|line| line.table == "customers")
            .unwrap_or_else(|| panic!("a customer"));
        edited[at]
            .row
            .insert("email".to_owned(), json!("attacker@evil.example"));
        let forged = restore(
            &app,
            &header,
            &edited[at..at + 1],
            Page {
                chain: Some(&edited[at - 1].mac),
                first_line: at + 2,
                ..Page::default()
            },
        )
        .await
        .expect(422)
        .text();
        assert!(
            forged.contains(&format!("line {}", at + 2)),
            "the line named: {forged}"
        );
        // A page the database refuses (its rows written already): nothing of it is written.
        let again = restore(
            &app,
            &header,
            &lines[1..3],
            Page {
                chain: Some(&lines[0].mac),
                first_line: 3,
                ..Page::default()
            },
        )
        .await
        .expect(409)
        .text();
        assert!(
            again.contains("nothing of it written"),
            "a page the database refuses: {again}"
        );

        // The operator gives up on it: what it wrote is deleted in steps, then its addresses and
        // its directory entry let go, so nothing of it is held any more.
        let discard = format!("/admin/businesses/{}/restore/discard", business.id);
        let mut steps = 0;
        let discarded = loop {
            let answer = app.admin(Method::Post, &discard, None).await.expect(200).json();
            steps += 1;
            if answer["phase"] != "discarding" || steps > 50 {
                break answer;
            }
        };
        assert_eq!(discarded["phase"], "discarded", "{discarded}");
        for at in 0..SHARDS.len() {
            assert!(
                rows_on(&app, at, &business).values().all(Vec::is_empty),
                "nothing of the restore is left on shard {at}"
            );
        }
        let directory = app.stack.sql("DB", |connection| {
            connection
                .query_row(
                    "SELECT (SELECT count(*) FROM business_shards WHERE business_id = ?1) \
                     + (SELECT count(*) FROM channel_addresses WHERE business_id = ?1)",
                    [&business.id],
                    |row| row.get::<_, i64>(0),
                )
                .unwrap_or_else(|error| panic!("{error}"))
        });
        assert_eq!(directory, 0, "no entry and no address is kept for it");
        let twice = app.admin(Method::Post, &discard, None).await;
        assert_error(&twice, 409, "conflict", "no restore is under way any more");
        // A restore's first page again, left there to break off.
        let first = Page {
            first: true,
            first_line: 2,
            keep_access: true,
            ..Page::default()
        };
        restore(&app, &header, &lines[..20], first).await.expect(200);

        // Run again from the start: the broken-off restore is discarded first, then written whole.
        let mut answer = restore(&app, &header, &lines[..20], first)
            .await
            .expect(200)
            .json();
        while answer["phase"] == "discarding" {
            answer = restore(&app, &header, &lines[..20], first)
                .await
                .expect(200)
                .json();
        }
        for (at, page) in lines[20..].chunks(20).enumerate() {
            let from = 20 + at * 20;
            let last = from + page.len() >= lines.len();
            let page_of = Page {
                complete: last,
                chain: Some(&lines[from - 1].mac),
                first_line: from + 2,
                keep_access: true,
                ..Page::default()
            };
            restore(&app, &header, page, page_of).await.expect(200);
        }
        let after = rows_on(&app, shard_of(&app, &business), &business);
        assert_restored(&before, &after);
        app.api(&business.key, Method::Post, "/api-console-links", None)
            .await
            .expect(201);
    });
}

/// The hosts of the partners `populated` set up: Meta (its WhatsApp number), the business's
/// webhook endpoint and its Kustomer organization.
const PARTNERS: [&str; 3] = [
    "graph.facebook.com",
    "hooks.acme.example",
    "acme.api.kustomerapp.com",
];

/// How many calls went to each partner so far.
fn partner_calls(app: &App) -> [usize; 3] {
    PARTNERS.map(|host| app.stack.calls_to(host).len())
}

/// Rows of `sql` (one text column) on the business's shard.
fn texts(app: &App, business: &Business, sql: &str) -> Vec<String> {
    app.stack.sql(SHARDS[shard_of(app, business)], |connection| {
        let mut statement = connection.prepare(sql).unwrap_or_else(|error| panic!("{error}"));
        statement
            .query_map([&business.id], |row| row.get::<_, String>(0))
            .unwrap_or_else(|error| panic!("{error}"))
            .map(|row| row.unwrap_or_else(|error| panic!("{error}")))
            .collect()
    })
}

#[test]
fn a_restored_business_reaches_no_customer_endpoint_or_crm_until_resumed_and_then_each_piece_of_work_once() {
    test(|app| async move {
        let business = populated(&app).await;
        seal_the_clear_source(&app, &business).await;
        // Work under way when the backup is taken: a send whose queue message was lost (queued),
        // a contact's CRM work waiting (pending), and `populated`'s delivery waiting for a retry.
        let ada = app
            .api(
                &business.key,
                Method::Get,
                "/api-messages-since?since=1970-01-01T00:00:00Z",
                None,
            )
            .await
            .expect(200)
            .json()["messages"][0]["customer_id"]
            .clone();
        app.api(
            &business.key,
            Method::Post,
            "/api-send-message",
            Some(json!({ "customer_id": ada, "channel": "whatsapp", "content": "Your order has shipped" })),
        )
        .await
        .expect(202);
        app.stack.purge("OUTBOUND");
        let kustomer = Kustomer::install(&app.stack, "acme", "kustomer-api-key");
        kustomer.down();
        app.api(
            &business.key,
            Method::Post,
            "/api-customers-sync",
            Some(json!({ "customers": [{ "external_id": "CRM-2", "name": "Hedy", "email": "hedy@example.com" }] })),
        )
        .await
        .expect(200);
        app.settle().await;
        let waiting = |sql: &str| texts(&app, &business, sql).len();
        assert_eq!(
            (
                waiting("SELECT id FROM messages WHERE business_id = ?1 AND status = 'queued'"),
                waiting("SELECT id FROM webhook_deliveries WHERE business_id = ?1 AND status = 'pending'"),
                waiting("SELECT id FROM crm_sync_jobs WHERE business_id = ?1 AND status = 'pending'"),
            ),
            (2, 1, 1),
            "two sends (the hand-off's and ours), a delivery and a CRM job wait when the backup is taken"
        );
        let (header, lines, _) = export(&app, &business).await;
        delete_everywhere(&app, &business);
        app.embedder().forget_vectors();

        kustomer.up();
        let calls = partner_calls(&app);
        let restored = restore_all(&app, &header, &lines, 40, false)
            .await
            .expect(200)
            .json();
        let quarantined = &restored["quarantined"];
        assert_eq!(
            (
                &quarantined["sends_failed"],
                &quarantined["deliveries_dead"],
                &quarantined["crm_jobs_dead"]
            ),
            (&json!(2), &json!(1), &json!(1)),
            "{restored}"
        );
        assert_eq!(
            partner_calls(&app),
            calls,
            "no call to Meta, the endpoint or Kustomer while the restore runs, its sweeps between pages"
        );
        // Hours of sweeps: nothing of the backup's moment is sent, delivered or written.
        for _ in 0..6 {
            app.stack.advance(std::time::Duration::from_secs(3_600));
            app.sweep().await;
            app.settle().await;
        }
        assert_eq!(
            partner_calls(&app),
            calls,
            "no call to Meta, the endpoint or Kustomer while the business is in quarantine"
        );
        app.api(
            &business.key,
            Method::Get,
            "/api-messages-since?since=1970-01-01T00:00:00Z",
            None,
        )
        .await
        .expect(401);
        let failed = texts(
            &app,
            &business,
            "SELECT status_reason FROM messages WHERE business_id = ?1 AND direction = 'outbound' AND content = 'Your order has shipped'",
        );
        assert!(
            failed.len() == 1 && failed[0].contains("restored from a backup"),
            "the send is failed, saying why: {failed:?}"
        );

        // Resumed, the business's own work goes on, and what was dead-lettered goes out once
        // each when it is replayed: the delivery to the endpoint, the contact to Kustomer.
        let resumed = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/resume", business.id),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(resumed["waiting"], Value::Null, "{resumed}");
        let key = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/api-keys", business.id),
                Some(json!({ "name": "after the restore" })),
            )
            .await
            .expect(201)
            .json()["key"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let hook = texts(
            &app,
            &business,
            "SELECT id FROM webhook_endpoints WHERE business_id = ?1",
        );
        app.api(
            &key,
            Method::Post,
            &format!("/api-webhooks/{}/replay", hook[0]),
            Some(json!({ "from": "1970-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z" })),
        )
        .await
        .expect(202);
        let connector = texts(
            &app,
            &business,
            "SELECT id FROM crm_connectors WHERE business_id = ?1",
        );
        app.admin(
            Method::Post,
            &format!("/admin/connectors/{}/replay", connector[0]),
            Some(json!({ "statuses": ["dead"] })),
        )
        .await
        .expect(200);
        for _ in 0..3 {
            app.settle().await;
            app.stack.advance(std::time::Duration::from_secs(600));
            app.sweep().await;
        }
        let now = partner_calls(&app);
        assert_eq!(
            (now[0] - calls[0], now[1] - calls[1]),
            (0, 1),
            "the failed send is not sent; the replayed delivery is delivered once"
        );
        let hedy = app
            .stack
            .calls_to(PARTNERS[2])
            .iter()
            .skip(calls[2])
            .filter(|call| String::from_utf8_lossy(&call.body).contains("hedy@example.com"))
            .count();
        assert_eq!(hedy, 1, "the replayed contact is written to Kustomer once");
    });
}

#[test]
fn a_restored_businesss_link_pieces_are_found_again_once_its_links_are_resumed_on_a_deployment_without_their_vectors()
 {
    test(|app| async move {
        let embedder = app.embedder();
        let _crm = guide_crm(&app, Sizes::SMALL);
        let business = app.business("Acme").await;
        let page = add_page(&app, &business).await;
        let dashboard = Dashboard::new(&app, &business);
        dashboard.add(custom_example(&page)).await;
        app.settle().await;
        let question = [
            ("page_id", page.as_str()),
            ("channel", "facebook"),
            ("q", "What plan is John Doe on?"),
        ];
        let found = dashboard.search(&question).await;
        let text = found["results"][0]["text"].clone();
        assert!(text.is_string(), "found before the backup: {found}");

        let (header, lines, _) = export(&app, &business).await;
        delete_everywhere(&app, &business);
        embedder.forget_vectors();
        restore_all(&app, &header, &lines, 50, true).await.expect(200);
        app.settle().await;
        let paused = dashboard.search(&question).await;
        assert_eq!(
            paused["count"], 0,
            "a link in quarantine answers nothing: {paused}"
        );

        let embedded = embedder.texts_embedded();
        app.admin(
            Method::Post,
            &format!("/admin/businesses/{}/resume", business.id),
            Some(json!({ "parts": ["links"] })),
        )
        .await
        .expect(200);
        app.settle().await;
        assert!(
            embedder.texts_embedded() > embedded,
            "the restored pieces are embedded again, the index holding none of them"
        );
        let again = dashboard.search(&question).await;
        assert_eq!(again["results"][0]["text"], text, "found again: {again}");
    });
}
