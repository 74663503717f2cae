//! Backing up one business and restoring it where it was deleted, as `crm-edge admin backup` and
//! `restore` do through `POST /admin/businesses/{id}/backup` and `/restore`, for a business with
//! rows in every table a move copies (`move_business::populated`): every row of every table is
//! as it was (`SELECT *`, the keys the database numbers aside), and the business works again with
//! its key. A restore where the business exists, with another deployment's key, or of a file that
//! does not add up is refused, and the last leaves no business behind that can write.

use super::move_business::{SHARDS, populated, rows_on, shard_of};
use crate::app::{App, Business, test};
use domain::backup::{Header, Line};
use domain::sealed::Place;
use domain::shard_move::MOVED_TABLES;
use edge::runtime::Method;
use serde_json::{Value, json};

/// Another deployment's keyring.
const OTHER_KEY: &str = "k1:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000";

/// Seals the knowledge source's secrets `populated` wrote in clear, as the product's writes do.
async fn seal_the_clear_source(app: &App, business: &Business) {
    let env = edge::Env::new(app.stack.clone(), "test");
    let keys = edge::secrets_key::keyring(&env).unwrap_or_else(|error| panic!("{error:?}"));
    let place = Place {
        table: "knowledge_sources",
        column: "secrets",
        row_id: "src-1",
    };
    let sealed = edge::secrets_key::seal(&keys, &place, "{}")
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

/// Every page of the business's export, as the command asks for them: the header and the lines.
async fn export(app: &App, business: &Business) -> (Header, Vec<Line>, usize) {
    let (mut header, mut lines, mut pages, mut cursor) = (None, Vec::new(), 0, Value::Null);
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
        if header.is_none() {
            header = Some(
                serde_json::from_value::<Header>(page["header"].clone()).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let got: Vec<Line> = serde_json::from_value(page["lines"].clone()).unwrap_or_else(|e| panic!("{e}"));
        lines.extend(got);
        cursor = page["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    (header.unwrap_or_else(|| panic!("a header")), lines, pages)
}

/// One page of a restore.
async fn restore(
    app: &App,
    header: &Header,
    lines: &[Line],
    first: bool,
    complete: bool,
) -> crate::app::Answer {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/restore", header.business_id),
        Some(json!({ "header": header, "lines": lines, "first": first, "complete": complete })),
    )
    .await
}

/// Restores the whole backup, `size` rows a page: the last page's answer.
async fn restore_all(app: &App, header: &Header, lines: &[Line], size: usize) -> crate::app::Answer {
    let pages: Vec<&[Line]> = lines.chunks(size).collect();
    for (at, page) in pages.iter().enumerate() {
        let last = at + 1 == pages.len();
        let answer = restore(app, header, page, at == 0, last).await;
        if last || answer.status != 200 {
            return answer;
        }
    }
    unreachable!("a backup has a row")
}

/// Deletes everything of the business from its shard and the directory, as an empty database.
fn delete_everywhere(app: &App, business: &Business) {
    let shard = SHARDS[shard_of(app, business)];
    app.stack.sql(shard, |connection| {
        for table in MOVED_TABLES.iter().rev() {
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
            rows_on(app, at, business).values().all(Vec::is_empty),
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

        let exists = restore(&app, &header, &lines[..3], true, false)
            .await
            .expect(409)
            .text();
        assert!(exists.contains("exists"), "{exists}");

        delete_everywhere(&app, &business);
        let own_key = app.stack.secret("SECRETS_KEY").unwrap_or_default();
        app.stack.set_secret("SECRETS_KEY", OTHER_KEY);
        let other = restore_all(&app, &header, &lines, 7).await.expect(422).text();
        assert!(other.contains("SECRETS_KEY"), "another deployment's key: {other}");
        assert!(
            rows_on(&app, shard, &business).values().all(Vec::is_empty),
            "nothing was written"
        );
        app.stack.set_secret("SECRETS_KEY", &own_key);

        restore_all(&app, &header, &lines, 7).await.expect(200);
        let after = rows_on(&app, shard_of(&app, &business), &business);
        for table in &MOVED_TABLES {
            assert_eq!(
                after[table.name], before[table.name],
                "{}: every row as it was",
                table.name
            );
        }
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
        .expect(200);
        app.api(&business.key, Method::Post, "/api-console-links", None)
            .await
            .expect(201);
    });
}

#[test]
fn a_restore_that_does_not_add_up_is_refused_leaves_no_business_that_writes_and_is_discarded_by_the_next() {
    test(|app| async move {
        let business = populated(&app).await;
        seal_the_clear_source(&app, &business).await;
        let shard = shard_of(&app, &business);
        let before = rows_on(&app, shard, &business);
        let (header, lines, _) = export(&app, &business).await;
        delete_everywhere(&app, &business);

        // A file cut short that slipped past the command's check: its last page finds fewer rows.
        let cut = &lines[..lines.len() - 1];
        let refused = restore_all(&app, &header, cut, 50).await.expect(409).text();
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
        let mut edited = lines.clone();
        if let Some(line) = edited.iter_mut().find(|line| line.table == "customers") {
            line.row.insert("id".to_owned(), json!(null));
        }
        let page = restore(&app, &header, &edited[..40], false, false)
            .await
            .expect(409)
            .text();
        assert!(
            page.contains("nothing of it written"),
            "a page the database refuses: {page}"
        );

        // Run again from the start: the broken-off restore is discarded first, then written whole.
        let mut answer = restore(&app, &header, &lines[..20], true, false)
            .await
            .expect(200)
            .json();
        while answer["phase"] == "discarding" {
            answer = restore(&app, &header, &lines[..20], true, false)
                .await
                .expect(200)
                .json();
        }
        for (at, page) in lines[20..].chunks(20).enumerate() {
            let last = 20 + (at + 1) * 20 >= lines.len();
            restore(&app, &header, page, false, last).await.expect(200);
        }
        let after = rows_on(&app, shard_of(&app, &business), &business);
        for table in &MOVED_TABLES {
            assert_eq!(
                after[table.name], before[table.name],
                "{}: every row as it was",
                table.name
            );
        }
        app.api(&business.key, Method::Post, "/api-console-links", None)
            .await
            .expect(201);
    });
}
