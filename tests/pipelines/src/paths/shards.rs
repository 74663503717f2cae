//! Businesses spread over several D1 databases (the end-to-end suite's `shards.test.mjs`;
//! docs/scaling.md): a new business lands on any of them, the directory says where, everything of
//! a business stays on its own shard, nothing a user sees differs by shard, a shard that does not
//! answer holds up only its own businesses, a move pauses the business's writes while its reads
//! go on and copies in bounded steps, and the sweep visits every shard but leaves a moving
//! business's copies alone, and deletes an old copy its move's command never finished deleting.
//! (What a move leaves behind when its steps are killed, repeated or aborted is
//! `move_business.rs`.)

use crate::app::{Answer, App, Business, test};
use crate::partners::meta::numeric_id;
use crate::steps::api::assert_error;
use crate::steps::customers::{customer, sync};
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

const SHARDS: [&str; 2] = ["DB", "DB_1"];

/// The shard (its place in `SHARDS`) the directory says a business lives on; the directory has
/// it once.
fn directory_shard(app: &App, id: &str) -> usize {
    let shards: Vec<i64> = app.stack.sql("DB", |connection| {
        let mut statement = connection
            .prepare("SELECT shard FROM business_shards WHERE business_id = ?1")
            .unwrap_or_else(|error| panic!("{error}"));
        statement
            .query_map([id], |row| row.get(0))
            .unwrap_or_else(|error| panic!("{error}"))
            .map(|row| row.unwrap_or_else(|error| panic!("{error}")))
            .collect()
    });
    assert_eq!(shards.len(), 1, "the directory has business {id} once");
    usize::try_from(shards[0]).unwrap_or(usize::MAX)
}

/// How many rows `sql` (a `count(*)` with the business's id as `?1`) counts on each shard.
fn counts(app: &App, sql: &str, id: &str) -> Vec<i64> {
    SHARDS
        .iter()
        .map(|shard| {
            app.stack.sql(shard, |connection| {
                connection
                    .query_row(sql, [id], |row| row.get(0))
                    .unwrap_or_else(|error| panic!("{sql}: {error}"))
            })
        })
        .collect()
}

/// The shard that holds the business's row; it is on one shard only.
fn shard_holding(app: &App, id: &str) -> usize {
    let held = counts(app, "SELECT count(*) FROM businesses WHERE id = ?1", id);
    assert_eq!(
        held.iter().sum::<i64>(),
        1,
        "business {id} is on one shard only: {held:?}"
    );
    held.iter().position(|count| *count == 1).unwrap_or(usize::MAX)
}

/// How many rows of each of a business's tables each shard holds.
fn rows_on_each_shard(app: &App, id: &str) -> Vec<Vec<i64>> {
    let tables = [
        "businesses WHERE id = ?1",
        "customers WHERE business_id = ?1",
        "customer_identities WHERE business_id = ?1",
        "api_keys WHERE business_id = ?1",
        "channel_accounts WHERE business_id = ?1",
        "audit_log WHERE business_id = ?1",
    ];
    SHARDS
        .iter()
        .map(|shard| {
            tables
                .iter()
                .map(|from| {
                    app.stack.sql(shard, |connection| {
                        connection
                            .query_row(&format!("SELECT count(*) FROM {from}"), [id], |row| row.get(0))
                            .unwrap_or_else(|error| panic!("{from}: {error}"))
                    })
                })
                .collect()
        })
        .collect()
}

/// New businesses until two of them live on different shards: those two, with their shards.
async fn on_two_shards(app: &App) -> [(Business, usize); 2] {
    let mut created = Vec::new();
    for _ in 0..40 {
        let business = app.business(&unique("Business")).await;
        let shard = shard_holding(app, &business.id);
        created.push((business, shard));
        let first_shard = created[0].1;
        if let Some(at) = created.iter().position(|(_, shard)| *shard != first_shard) {
            let other = created.swap_remove(at);
            return [created.swap_remove(0), other];
        }
    }
    panic!("forty new businesses all landed on one shard");
}

fn name_of(answer: Answer) -> Value {
    answer.expect(200).json()["name"].clone()
}

#[test]
fn new_businesses_land_on_every_shard_and_the_directory_says_where_each_lives() {
    test(|app| async move {
        let mut placed = Vec::new();
        for _ in 0..12 {
            let business = app.business(&unique("Business")).await;
            let shard = shard_holding(&app, &business.id);
            assert_eq!(
                directory_shard(&app, &business.id),
                shard,
                "the directory says where the business lives"
            );
            placed.push(shard);
        }
        placed.sort_unstable();
        placed.dedup();
        assert!(
            placed.len() >= 2,
            "twelve new businesses on {} shard(s)",
            placed.len()
        );
    });
}

#[test]
fn everything_of_a_business_stays_on_its_shard_and_two_businesses_on_two_shards_see_only_their_own() {
    test(|app| async move {
        let [(a, a_shard), (b, b_shard)] = on_two_shards(&app).await;
        let email = format!("{}@example.com", unique("same"));
        for (business, name) in [(&a, "On A"), (&b, "On B")] {
            let synced = sync(
                &app,
                &business.key,
                json!([{ "email": email, "name": name, "external_id": unique("X") }]),
            )
            .await;
            assert_eq!(
                synced["results"]["created"], 1,
                "the same email is a new customer in each business"
            );
        }
        assert_eq!(name_of(customer(&app, &a.key, "email", &email).await), "On A");
        assert_eq!(name_of(customer(&app, &b.key, "email", &email).await), "On B");
        for (business, shard) in [(&a, a_shard), (&b, b_shard)] {
            let customers = counts(
                &app,
                "SELECT count(*) FROM customers WHERE business_id = ?1",
                &business.id,
            );
            assert_eq!(customers[shard], 1, "the customer is on its business's shard");
            assert_eq!(customers.iter().sum::<i64>(), 1, "and on no other");
            let keys = counts(
                &app,
                "SELECT count(*) FROM api_keys WHERE business_id = ?1",
                &business.id,
            );
            assert_eq!(keys[shard], 1, "its key too");
        }
        // One business's ids are not found through the other, whichever shard each is on.
        let of_a = customer(&app, &a.key, "email", &email).await.expect(200).json();
        let crossed = app
            .api(
                &b.key,
                Method::Get,
                &format!("/api-customers?id={}", of_a["id"].as_str().unwrap_or_default()),
                None,
            )
            .await;
        assert_eq!(crossed.status, 404, "{}", crossed.text());
    });
}

#[test]
fn a_channel_address_is_one_businesss_whatever_the_shards() {
    test(|app| async move {
        let [(a, _), (b, _)] = on_two_shards(&app).await;
        let body = json!({
            "channel": "whatsapp", "provider": "meta", "address": numeric_id(),
            "secrets": { "app_secret": "s", "verify_token": "v", "access_token": "t" }
        });
        app.admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", a.id),
            Some(body.clone()),
        )
        .await
        .expect(201);
        let second = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/channel-accounts", b.id),
                Some(body),
            )
            .await;
        assert_eq!(
            second.status,
            409,
            "another shard's business cannot take the address: {}",
            second.text()
        );
    });
}

#[test]
fn a_shard_that_does_not_answer_tells_its_businesses_to_try_again_and_the_others_go_on() {
    test(|app| async move {
        // The shard that stops answering is not the first, which holds the directory: while the
        // first does not answer, a business no isolate has looked up lately cannot be placed,
        // whatever its shard.
        let [(first, first_shard), (second, _)] = on_two_shards(&app).await;
        let (a, b) = if first_shard == 0 {
            (second, first)
        } else {
            (first, second)
        };
        let held = SHARDS[directory_shard(&app, &a.id)];
        assert_ne!(held, "DB");
        let email = format!("{}@example.com", unique("held"));
        app.stack.outage(held, "Network connection lost.");
        let refused = app
            .api(
                &a.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [{ "email": email, "name": "Waits" }] })),
            )
            .await;
        let other = sync(&app, &b.key, json!([{ "email": email, "name": "Goes on" }])).await;
        assert_eq!(
            other["results"]["created"], 1,
            "the other shard's business writes as ever"
        );
        assert_eq!(name_of(customer(&app, &b.key, "email", &email).await), "Goes on");
        app.stack.restore(held);

        let error = assert_error(
            &refused,
            503,
            "service_unavailable",
            "a write to the shard that does not answer",
        );
        let retry_after: u64 = refused
            .header("retry-after")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        assert!(
            retry_after > 0,
            "Retry-After: {:?}",
            refused.header("retry-after")
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            !["shard", "SQLITE", "D1"]
                .iter()
                .any(|internal| message.contains(internal)),
            "no internals: {message}"
        );
        assert_eq!(
            customer(&app, &a.key, "email", &email).await.status,
            404,
            "nothing of the refused write was kept"
        );
        let retried = sync(&app, &a.key, json!([{ "email": email, "name": "Waits" }])).await;
        assert_eq!(
            retried["results"]["created"], 1,
            "the same write, tried again once the shard answers"
        );
    });
}

/// One step of a move, as the operator's command asks for it.
async fn step(app: &App, id: &str, to: usize, cursor: Option<&str>) -> Answer {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{id}/move"),
        Some(json!({ "to_shard": to, "cursor": cursor })),
    )
    .await
}

/// Steps from `answer` on, each after the wait the last one asked for, until the move is done:
/// each step's phase, and the rows they moved.
async fn steps_to_the_end(app: &App, id: &str, to: usize, mut answer: Value) -> (Vec<String>, u64) {
    let (mut phases, mut rows) = (Vec::new(), 0);
    for _ in 0..40 {
        if answer["phase"] == "done" {
            break;
        }
        app.stack
            .advance(Duration::from_secs(answer["wait_seconds"].as_u64().unwrap_or(0)));
        answer = step(app, id, to, answer["cursor"].as_str())
            .await
            .expect(200)
            .json();
        phases.push(answer["phase"].as_str().unwrap_or_default().to_owned());
        rows += answer["rows"].as_u64().unwrap_or(0);
    }
    assert_eq!(answer["phase"], "done", "the move ends: {phases:?}");
    (phases, rows)
}

#[test]
fn a_business_moves_to_another_shard_its_writes_wait_meanwhile_and_everything_of_it_is_then_there() {
    test(|app| async move {
        let business = app.business("Moving").await;
        let emails: Vec<String> = (0..230)
            .map(|n| format!("{}@example.com", unique(&format!("m{n}"))))
            .collect();
        let customers: Vec<Value> = emails
            .iter()
            .enumerate()
            .map(|(n, email)| json!({ "email": email, "name": format!("Moved {n}") }))
            .collect();
        let synced = sync(&app, &business.key, Value::Array(customers)).await;
        assert_eq!(synced["results"]["created"], emails.len());
        app.admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", business.id),
            Some(json!({
                "channel": "whatsapp", "provider": "meta", "address": numeric_id(),
                "secrets": { "app_secret": "s", "verify_token": "v", "access_token": "t" }
            })),
        )
        .await
        .expect(201);
        let from = directory_shard(&app, &business.id);
        let to = 1 - from;
        let before = rows_on_each_shard(&app, &business.id);
        assert!(
            before[from][0] == 1 && before[from][1] == 230 && before[to].iter().all(|n| *n == 0),
            "all of it on one shard first: {before:?}"
        );

        let first = step(&app, &business.id, to, None).await.expect(200).json();
        assert_eq!(first["phase"], "pausing");
        let wait = first["wait_seconds"].as_u64().unwrap_or(0);
        assert!(wait > 0, "{first}");
        app.stack.advance(Duration::from_secs(wait));
        // Every isolate has seen the pause: the business's writes wait, its reads go on.
        let waiting = app
            .api(
                &business.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [{ "email": format!("{}@example.com", unique("late")), "name": "Late" }] })),
            )
            .await;
        let error = assert_error(
            &waiting,
            503,
            "service_unavailable",
            "a write while the business is moved",
        );
        assert!(
            waiting
                .header("retry-after")
                .and_then(|value| value.parse::<u64>().ok())
                .is_some_and(|seconds| seconds > 0),
            "{:?}",
            waiting.headers
        );
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|message| message.contains("being moved")),
            "{error}"
        );
        assert_eq!(
            name_of(customer(&app, &business.key, "email", &emails[7]).await),
            "Moved 7",
            "reads go on"
        );
        assert_error(
            &step(&app, &business.id, to, Some("copy:99:0")).await,
            422,
            "validation_failed",
            "a cursor no step answered",
        );

        let (phases, rows) = steps_to_the_end(&app, &business.id, to, first).await;
        assert!(
            phases.iter().filter(|phase| *phase == "copying").count() >= 2,
            "the copy took several bounded steps: {phases:?}"
        );
        assert!(phases.iter().any(|phase| phase == "switched"), "{phases:?}");
        assert!(rows >= 2 * 230, "copied and deleted every row ({rows})");
        assert_eq!(
            directory_shard(&app, &business.id),
            to,
            "the directory names the new shard"
        );

        let after = rows_on_each_shard(&app, &business.id);
        let (there, was) = (&after[to], &before[from]);
        assert_eq!(
            there[..there.len() - 1],
            was[..was.len() - 1],
            "every row is on the new shard"
        );
        assert_eq!(
            there[there.len() - 1],
            was[was.len() - 1] + 1,
            "the audit log too, and the move recorded in it"
        );
        assert!(
            after[from].iter().all(|count| *count == 0),
            "nothing is left on the old shard: {after:?}"
        );
        assert_eq!(
            name_of(customer(&app, &business.key, "email", &emails[200]).await),
            "Moved 200",
            "the same answers"
        );
        let written = sync(
            &app,
            &business.key,
            json!([{ "email": emails[0], "name": "Renamed after the move" }]),
        )
        .await;
        assert_eq!(written["results"]["updated"], 1, "writes go on, on the new shard");
        let audit = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}/audit-log", business.id),
                None,
            )
            .await
            .expect(200)
            .json();
        assert!(
            audit["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|entry| entry["action"] == "business.moved"),
            "{audit}"
        );
        let again = step(&app, &business.id, to, None).await.expect(200).json();
        assert_eq!(again["phase"], "done", "moving it where it is does nothing");

        // And back, step after step, as the operator's command does it.
        let back = step(&app, &business.id, from, None).await.expect(200).json();
        steps_to_the_end(&app, &business.id, from, back).await;
        assert_eq!(directory_shard(&app, &business.id), from);
        assert_eq!(
            name_of(customer(&app, &business.key, "email", &emails[0]).await),
            "Renamed after the move"
        );
    });
}

#[test]
fn the_sweep_visits_every_shard() {
    test(|app| async move {
        let businesses = on_two_shards(&app).await;
        let mut keys = Vec::new();
        for (business, shard) in &businesses {
            let key = unique("old-key");
            app.json(
                Method::Post,
                "/api-customers-sync",
                &[("x-api-key", &business.key), ("idempotency-key", &key)],
                Some(json!({ "customers": [{ "email": format!("{}@example.com", unique("k")) }] })),
            )
            .await
            .expect(200);
            let stored = counts(&app, "SELECT count(*) FROM idempotency_keys WHERE key = ?1", &key);
            assert_eq!(
                stored[*shard], 1,
                "the key is kept on its business's shard: {stored:?}"
            );
            keys.push(key);
        }
        // Both keys become as old as the sweep deletes (past the idempotency window).
        app.stack.advance(Duration::from_secs(40 * 24 * 3600));
        let swept = app
            .admin(Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200)
            .json();
        assert!(
            swept["idempotency_keys_deleted"]
                .as_u64()
                .is_some_and(|deleted| deleted >= 2),
            "the sweep deleted both: {swept}"
        );
        for key in &keys {
            assert_eq!(
                counts(&app, "SELECT count(*) FROM idempotency_keys WHERE key = ?1", key),
                [0, 0],
                "deleted on its shard"
            );
        }
    });
}

#[test]
fn the_sweep_leaves_a_moving_businesss_copies_alone_and_deletes_the_old_copy_its_command_left() {
    test(|app| async move {
        let business = app.business(&unique("Business")).await;
        let id = business.id.as_str();
        let from = shard_holding(&app, id);
        let to = 1 - from;
        let key = unique("old-key");
        app.json(
            Method::Post,
            "/api-customers-sync",
            &[("x-api-key", &business.key), ("idempotency-key", &key)],
            Some(json!({ "customers": [{ "email": format!("{}@example.com", unique("k")) }] })),
        )
        .await
        .expect(200);
        let keys = "SELECT count(*) FROM idempotency_keys WHERE business_id = ?1";

        // Copied, not verified yet; then the key becomes as old as the sweep deletes.
        let mut answer = step(&app, id, to, None).await.expect(200).json();
        while !answer["cursor"]
            .as_str()
            .is_some_and(|cursor| cursor.starts_with("verify"))
        {
            app.stack
                .advance(Duration::from_secs(answer["wait_seconds"].as_u64().unwrap_or(0)));
            answer = step(&app, id, to, answer["cursor"].as_str())
                .await
                .expect(200)
                .json();
        }
        app.stack.advance(Duration::from_secs(40 * 24 * 3600));
        let held = counts(&app, keys, id);
        assert_eq!((held[from], held[to]), (1, 1), "the key on both copies");
        app.sweep().await;
        assert_eq!(
            counts(&app, keys, id),
            held,
            "neither copy is swept while it moves"
        );

        // The copy verifies (nothing changed under it) and the business switches.
        let switched = step(&app, id, to, answer["cursor"].as_str())
            .await
            .expect(200)
            .json();
        assert_eq!(switched["phase"], "switched", "{switched}");
        app.sweep().await;
        let held = counts(&app, keys, id);
        assert_eq!(
            (held[from], held[to]),
            (1, 0),
            "the new shard's copy is swept, the old copy is left alone"
        );

        // The command stops before deleting the old copy; an hour on, the sweep deletes it.
        app.stack.advance(Duration::from_secs(3600 + 60));
        app.sweep().await;
        let left = rows_on_each_shard(&app, id);
        assert!(
            left[from].iter().all(|rows| *rows == 0),
            "nothing of the business is left on its old shard: {left:?}"
        );
        assert!(
            left[to][0] == 1,
            "the business is whole on its new shard: {left:?}"
        );
        let settled = step(&app, id, to, None).await.expect(200).json();
        assert_eq!(
            settled["phase"], "done",
            "the move has nothing left to do: {settled}"
        );
    });
}

#[test]
fn a_row_changed_on_the_old_shard_after_the_copy_fails_verification_naming_its_table_and_a_new_copy_then_verifies()
 {
    test(|app| async move {
        let business = app.business(&unique("Business")).await;
        let id = business.id.as_str();
        let from = shard_holding(&app, id);
        let to = 1 - from;
        sync(
            &app,
            &business.key,
            json!([{ "email": format!("{}@example.com", unique("c")), "name": "Ada" }]),
        )
        .await;
        let mut answer = step(&app, id, to, None).await.expect(200).json();
        while !answer["cursor"]
            .as_str()
            .is_some_and(|cursor| cursor.starts_with("verify"))
        {
            app.stack
                .advance(Duration::from_secs(answer["wait_seconds"].as_u64().unwrap_or(0)));
            answer = step(&app, id, to, answer["cursor"].as_str())
                .await
                .expect(200)
                .json();
        }
        // A statement that is no one business's changes the old copy: the counts still agree.
        app.stack.sql(SHARDS[from], |connection| {
            connection
                .execute(
                    "UPDATE customers SET name = 'Changed' WHERE business_id = ?1",
                    [id],
                )
                .unwrap_or_else(|error| panic!("{error}"))
        });
        let customers = "SELECT count(*) FROM customers WHERE business_id = ?1";
        let held = counts(&app, customers, id);
        assert_eq!(held[from], held[to], "as many rows on both shards");
        let refused = step(&app, id, to, answer["cursor"].as_str()).await;
        assert_eq!(refused.status, 409, "{}", refused.text());
        let message = refused.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.starts_with("the copy did not verify: customers: a row differs")
                && message.contains("name"),
            "names the table and the column: {message}"
        );
        assert_eq!(directory_shard(&app, id), from, "nothing switched");

        // Moved again without a cursor: copied over, it verifies, and the change went with it.
        let again = step(&app, id, to, None).await.expect(200).json();
        steps_to_the_end(&app, id, to, again).await;
        assert_eq!(directory_shard(&app, id), to);
        let names: Vec<String> = app.stack.sql(SHARDS[to], |connection| {
            let mut statement = connection
                .prepare("SELECT name FROM customers WHERE business_id = ?1")
                .unwrap_or_else(|error| panic!("{error}"));
            statement
                .query_map([id], |row| row.get(0))
                .unwrap_or_else(|error| panic!("{error}"))
                .map(|row| row.unwrap_or_else(|error| panic!("{error}")))
                .collect()
        });
        assert_eq!(names, ["Changed"]);
    });
}
