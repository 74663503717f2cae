//! `POST /api-customers-bulk-create`, the importer: customers are matched as the sync matches
//! them (external_id, then email, then phone), and a customer linked to one external_id never
//! takes another's record. Imports run at the seed's sizes (5000 customers in batches of 1000).

use crate::app::{App, test};
use crate::steps::api::{assert_error, is_uuid};
use crate::steps::customers::{
    assert_not_stored, at_once, batch_lookup, bulk_create, bulk_create_with, customer, customer_rows, stored,
    sync, text_at,
};
use edge::runtime::Method;
use serde_json::{Value, json};

/// What an import of many batches added up to, as the seed's `importCustomers` adds it.
#[derive(Default)]
struct Totals {
    created: u64,
    updated: u64,
    failed: u64,
    errors: Vec<Value>,
    /// Each reported customer, its index counted from the first batch's first item.
    customers: Vec<Value>,
}

/// The seed's `importCustomers`: customers sent in batches of 1000, counts added up.
async fn import_customers(app: &App, key: &str, customers: &[Value]) -> Totals {
    let mut totals = Totals::default();
    for (batch, chunk) in customers.chunks(1000).enumerate() {
        let body = bulk_create(app, key, Value::Array(chunk.to_vec())).await;
        let count = |field: &str| body[field].as_u64().unwrap_or_default();
        totals.created += count("created");
        totals.updated += count("updated");
        totals.failed += count("failed");
        totals
            .errors
            .extend(body["errors"].as_array().cloned().unwrap_or_default());
        for mut reported in body["customers"].as_array().cloned().unwrap_or_default() {
            let index = reported["index"].as_u64().unwrap_or(u64::MAX);
            reported["index"] = json!(index + 1000 * batch as u64);
            totals.customers.push(reported);
        }
    }
    totals
}

/// `[index, code, field]` of each error.
fn errors_of(body: &Value) -> Vec<Value> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!([e["index"], e["code"], e["field"]]))
        .collect()
}

/// `[index, action]` of each reported customer.
fn indexed_actions(body: &Value) -> Vec<Value> {
    body["customers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!([c["index"], c["action"]]))
        .collect()
}

fn totals_of(body: &Value, fields: &[&str]) -> Vec<Value> {
    fields.iter().map(|field| body[*field].clone()).collect()
}

#[test]
fn new_customers_are_created_and_each_is_reported_with_its_index_external_id_and_id() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let answer = app
            .api(
                &acme.key,
                Method::Post,
                "/api-customers-bulk-create",
                Some(json!({ "customers": [
                    { "name": "Ann", "external_id": "IMP-1", "email": "ann@example.com", "phone": "087 100 0001", "tags": ["import"] },
                    { "name": "Bob", "external_id": 2, "phone": "+353 87 100 0002" },
                    { "name": "Cat", "email": "cat@example.com" }
                ] })),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        let mut keys: Vec<&String> = body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        keys.sort();
        assert_eq!(
            keys,
            [
                "created",
                "customers",
                "errors",
                "failed",
                "success",
                "total",
                "updated"
            ]
        );
        assert_eq!(
            totals_of(&body, &["success", "total", "created", "updated", "failed"]),
            [json!(true), json!(3), json!(3), json!(0), json!(0)]
        );
        assert_eq!(body["errors"], json!([]));
        let reported: Vec<Value> = body["customers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| json!([c["index"], c["external_id"], c["action"]]))
            .collect();
        assert_eq!(
            reported,
            [
                json!([0, "IMP-1", "created"]),
                json!([1, "2", "created"]),
                json!([2, null, "created"])
            ]
        );
        for reported in body["customers"].as_array().into_iter().flatten() {
            assert!(is_uuid(text_at(reported, "/customer_id")), "{reported}");
            let mut keys: Vec<&String> = reported
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            keys.sort();
            assert_eq!(
                keys,
                ["action", "customer_id", "external_id", "index", "matched_by"]
            );
        }
        let ann = stored(&app, &acme.key, "external_id", "IMP-1").await;
        assert_eq!(ann["id"], body["customers"][0]["customer_id"]);
        assert_eq!(ann["phone"], "+353871000001");
        assert_eq!(ann["tags"], json!(["import"]));
        assert_eq!(
            stored(&app, &acme.key, "external_id", "2").await["phone"],
            "+353871000002"
        );
        assert_eq!(
            stored(&app, &acme.key, "email", "cat@example.com").await["id"],
            body["customers"][2]["customer_id"]
        );
    });
}

#[test]
fn a_customer_whose_external_id_is_already_stored_is_updated() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let first = bulk_create(
            &app,
            &acme.key,
            json!([{ "name": "Old Name", "external_id": "UPD-1", "email": "upd@example.com", "notes": "keep me", "custom_fields": { "a": 1 } }]),
        )
        .await;
        let body = bulk_create(
            &app,
            &acme.key,
            json!([{ "name": "New Name", "external_id": "UPD-1", "email": "UPD@example.com", "custom_fields": { "b": 2 } }]),
        )
        .await;
        assert_eq!(
            totals_of(&body, &["success", "created", "updated", "failed"]),
            [json!(true), json!(0), json!(1), json!(0)],
            "{body}"
        );
        assert_eq!(body["customers"][0]["action"], "updated");
        assert_eq!(
            body["customers"][0]["customer_id"],
            first["customers"][0]["customer_id"]
        );
        let customer = stored(&app, &acme.key, "external_id", "UPD-1").await;
        assert_eq!(customer["name"], "New Name");
        assert_eq!(customer["notes"], "keep me");
        assert_eq!(customer["custom_fields"], json!({ "a": 1, "b": 2 }));
    });
}

#[test]
fn duplicates_are_found_by_email_or_phone_as_the_sync_finds_them_but_two_crm_records_are_never_merged() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([
                { "name": "Owner", "external_id": "OWN-1", "email": "owner@example.com", "phone": "087 500 0001" },
                { "name": "Walk-in", "email": "walk-in@example.com", "phone": "087 500 0002" }
            ]),
        )
        .await;
        let owner = stored(&app, &acme.key, "external_id", "OWN-1").await;
        let walk_in = stored(&app, &acme.key, "email", "walk-in@example.com").await;
        let body = bulk_create(
            &app,
            &acme.key,
            json!([
                { "name": "Owner", "email": "OWNER@example.com", "tags": ["imported"] },
                { "name": "Same email, new id", "external_id": "NEW-1", "email": "owner@example.com" },
                { "name": "Same phone, new id", "external_id": "NEW-2", "phone": "+353875000001" },
                { "name": "Walk-in", "external_id": "NEW-3", "email": "walk-in@example.com" },
                { "name": "Walk-in", "phone": "0875000002", "email": "walk-in.new@example.com" },
                { "name": "Fine", "external_id": "NEW-4", "email": "fine@example.com" }
            ]),
        )
        .await;
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(
            totals_of(&body, &["total", "created", "updated", "failed"]),
            [json!(6), json!(1), json!(3), json!(2)],
            "{body}"
        );
        let errors: Vec<Value> = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| json!([e["index"], e["external_id"], e["code"], e["field"]]))
            .collect();
        assert_eq!(
            errors,
            [
                json!([1, "NEW-1", "conflict", "external_id"]),
                json!([2, "NEW-2", "conflict", "external_id"]),
            ],
            "a customer linked to OWN-1 is not taken by another CRM record"
        );
        for error in body["errors"].as_array().into_iter().flatten() {
            let mut keys: Vec<&String> = error.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            keys.sort();
            assert_eq!(keys, ["code", "external_id", "field", "index", "message"]);
            assert!(
                error["message"].as_str().is_some_and(|m| m.contains("OWN-1")),
                "each error names the record it clashes with: {error}"
            );
        }
        let reported: Vec<Value> = body["customers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                json!([
                    c["index"],
                    c["action"],
                    c["matched_by"],
                    c["customer_id"] == owner["id"],
                    c["customer_id"] == walk_in["id"]
                ])
            })
            .collect();
        assert_eq!(
            reported,
            [
                json!([0, "updated", "email", true, false]),
                json!([3, "updated", "email", false, true]),
                json!([4, "updated", "phone", false, true]),
                json!([5, "created", null, false, false]),
            ]
        );
        let owner_now = stored(&app, &acme.key, "external_id", "OWN-1").await;
        assert_eq!(
            (&owner_now["id"], &owner_now["email"], &owner_now["tags"]),
            (&owner["id"], &json!("owner@example.com"), &json!(["imported"])),
        );
        let walk_in_now = stored(&app, &acme.key, "external_id", "NEW-3").await;
        assert_eq!(
            (&walk_in_now["id"], &walk_in_now["email"], &walk_in_now["phone"]),
            (
                &walk_in["id"],
                &json!("walk-in.new@example.com"),
                &json!("+353875000002")
            ),
            "the walk-in customer took the CRM's id, then its new email"
        );
        for external_id in ["NEW-1", "NEW-2"] {
            assert_error(
                &customer(&app, &acme.key, "external_id", external_id).await,
                404,
                "not_found",
                &format!("{external_id} was not stored"),
            );
        }
        assert_eq!(customer_rows(&app, &acme).len(), 3, "no customer was made twice");
    });
}

#[test]
fn an_update_by_external_id_that_would_take_another_customers_email_fails_with_conflict_on_email() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        bulk_create(
            &app,
            &acme.key,
            json!([
                { "name": "A", "external_id": "A", "email": "a@example.com" },
                { "name": "B", "external_id": "B", "email": "b@example.com" }
            ]),
        )
        .await;
        let body = bulk_create(
            &app,
            &acme.key,
            json!([{ "name": "A takes B", "external_id": "A", "email": "b@example.com" }]),
        )
        .await;
        assert_eq!(errors_of(&body), [json!([0, "conflict", "email"])], "{body}");
        assert_eq!(
            stored(&app, &acme.key, "external_id", "A").await["email"],
            "a@example.com"
        );
    });
}

#[test]
fn an_email_given_up_by_one_item_can_be_used_by_a_new_customer_later_in_the_same_batch() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let first = bulk_create(
            &app,
            &acme.key,
            json!([{ "name": "One", "external_id": "CRM-1", "email": "one@example.com" }]),
        )
        .await;
        let answer = app
            .api(
                &acme.key,
                Method::Post,
                "/api-customers-bulk-create",
                Some(json!({ "customers": [
                    { "name": "One", "external_id": "CRM-1", "email": "uno@example.com" },
                    { "name": "Newcomer", "external_id": "CRM-3", "email": "one@example.com" }
                ] })),
            )
            .await;
        assert_eq!(answer.status, 200, "the batch is accepted: {}", answer.text());
        assert_eq!(
            indexed_actions(&answer.json()),
            [json!([0, "updated"]), json!([1, "created"])]
        );
        assert_eq!(
            stored(&app, &acme.key, "email", "uno@example.com").await["id"],
            first["customers"][0]["customer_id"]
        );
        assert_eq!(
            stored(&app, &acme.key, "email", "one@example.com").await["external_id"],
            "CRM-3"
        );
    });
}

#[test]
fn the_same_external_id_twice_in_one_batch_is_created_once_and_then_updated() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = bulk_create(
            &app,
            &acme.key,
            json!([
                { "name": "First", "external_id": "DUP", "email": "dup@example.com" },
                { "name": "Second", "external_id": "DUP", "email": "dup@example.com" }
            ]),
        )
        .await;
        let actions: Vec<&Value> = body["customers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["action"])
            .collect();
        assert_eq!(actions, [&json!("created"), &json!("updated")], "{body}");
        assert_eq!(
            body["customers"][0]["customer_id"],
            body["customers"][1]["customer_id"]
        );
        assert_eq!(totals_of(&body, &["created", "updated"]), [json!(1), json!(1)]);
        assert_eq!(
            stored(&app, &acme.key, "external_id", "DUP").await["name"],
            "Second"
        );
    });
}

#[test]
fn the_same_email_twice_in_one_batch_without_external_ids_is_one_customer_created_then_updated() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = bulk_create(
            &app,
            &acme.key,
            json!([
                { "name": "First", "email": "twice@example.com" },
                { "name": "Second", "email": "Twice@example.com" }
            ]),
        )
        .await;
        assert_eq!(
            indexed_actions(&body),
            [json!([0, "created"]), json!([1, "updated"])],
            "{body}"
        );
        assert_eq!(body["customers"][1]["matched_by"], "email", "{body}");
        assert_eq!(
            body["customers"][0]["customer_id"], body["customers"][1]["customer_id"],
            "{body}"
        );
        assert_eq!(errors_of(&body), Vec::<Value>::new());
        assert_eq!(
            stored(&app, &acme.key, "email", "twice@example.com").await["name"],
            "Second",
            "the later item is the newer data"
        );
        assert_eq!(customer_rows(&app, &acme).len(), 1);
    });
}

#[test]
fn invalid_items_are_reported_in_errors_with_their_field_and_the_rest_are_created() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = bulk_create(
            &app,
            &acme.key,
            json!([
                { "name": "Good", "external_id": "G-1", "email": "good@example.com" },
                { "external_id": "G-2", "email": "nameless@example.com" },
                { "name": "No contact", "external_id": "G-3" },
                { "name": "Bad email", "external_id": 44, "email": "bad@" },
                { "name": "National phone without a country", "phone": "087 123 4567" },
                { "name": "Good too", "email": "good2@example.com" }
            ]),
        )
        .await;
        assert_eq!(
            totals_of(&body, &["success", "total", "created", "failed"]),
            [json!(false), json!(6), json!(2), json!(4)],
            "{body}"
        );
        let errors: Vec<Value> = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| json!([e["index"], e["external_id"], e["code"], e["field"]]))
            .collect();
        assert_eq!(
            errors,
            [
                json!([1, "G-2", "validation_failed", "name"]),
                json!([2, "G-3", "validation_failed", "email"]),
                json!([3, "44", "validation_failed", "email"]),
                json!([4, null, "validation_failed", "phone"]),
            ]
        );
        let indexes: Vec<&Value> = body["customers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["index"])
            .collect();
        assert_eq!(indexes, [&json!(0), &json!(5)]);
        assert_not_stored(&app, &acme.key, &["nameless@example.com"], "").await;
    });
}

#[test]
fn the_request_default_country_completes_national_numbers() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = bulk_create_with(
            &app,
            &acme.key,
            json!([{ "name": "Brit", "phone": "020 7946 0958" }]),
            json!({ "default_country": "GB" }),
        )
        .await;
        assert_eq!(body["created"], 1, "{body}");
        assert_eq!(
            stored(&app, &acme.key, "phone", "+442079460958").await["name"],
            "Brit"
        );
    });
}

#[test]
fn five_thousand_customers_imported_in_5_batches_of_1000_are_all_created_and_reimporting_a_batch_updates_it()
{
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let tag = "imp";
        let customers: Vec<Value> = (0..5000)
            .map(|n| {
                json!({
                    "external_id": format!("{tag}-{n}"),
                    "name": format!("Imported {n}"),
                    "email": format!("{tag}-{n}@example.com"),
                    "phone": format!("+35386{n:07}"),
                    "tags": ["import", format!("batch-{}", n / 1000)],
                    "custom_fields": { "row": n }
                })
            })
            .collect();
        let totals = import_customers(&app, &acme.key, &customers).await;
        assert!(totals.errors.is_empty(), "no item failed: {:?}", totals.errors);
        assert_eq!((totals.created, totals.updated, totals.failed), (5000, 0, 0));
        assert_eq!(totals.customers.len(), 5000);
        let mut ids: Vec<&str> = totals
            .customers
            .iter()
            .map(|c| text_at(c, "/customer_id"))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5000, "5000 distinct customers");
        for (n, reported) in totals.customers.iter().enumerate() {
            assert!(
                reported["index"] == n && reported["external_id"] == format!("{tag}-{n}"),
                "customer {n} is reported at index {} with external_id {}",
                reported["index"],
                reported["external_id"]
            );
        }
        assert_eq!(customer_rows(&app, &acme).len(), 5000, "5000 rows");

        // Every one of them can be found again, 1000 at a time.
        let mut found = 0;
        for (batch, chunk) in customers.chunks(1000).enumerate() {
            let external_ids: Vec<&Value> = chunk.iter().map(|c| &c["external_id"]).collect();
            let lookup = batch_lookup(&app, &acme.key, json!({ "external_ids": external_ids })).await;
            assert_eq!(
                lookup["not_found"]["external_ids"],
                json!([]),
                "batch {batch}: nothing missing"
            );
            found += lookup["customers"].as_array().map_or(0, Vec::len);
        }
        assert_eq!(found, 5000);
        let last = stored(&app, &acme.key, "external_id", &format!("{tag}-4999")).await;
        assert_eq!(
            [
                &last["name"],
                &last["email"],
                &last["phone"],
                &last["tags"],
                &last["custom_fields"]
            ],
            [
                &json!("Imported 4999"),
                &json!(format!("{tag}-4999@example.com")),
                &json!("+353860004999"),
                &json!(["import", "batch-4"]),
                &json!({ "row": 4999 })
            ]
        );

        let renamed: Vec<Value> = customers[2000..3000]
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c["name"] = json!(format!("{} (again)", text_at(&c, "/name")));
                c
            })
            .collect();
        let again = bulk_create(&app, &acme.key, Value::Array(renamed)).await;
        assert_eq!(
            totals_of(&again, &["created", "updated", "failed"]),
            [json!(0), json!(1000), json!(0)]
        );
        for (n, reported) in again["customers"].as_array().into_iter().flatten().enumerate() {
            let first = &totals.customers[2000 + n]["customer_id"];
            assert_eq!(
                &reported["customer_id"], first,
                "re-imported item {n} updated {}, not {first}",
                reported["customer_id"]
            );
        }
        assert_eq!(
            stored(&app, &acme.key, "external_id", &format!("{tag}-2500")).await["name"],
            "Imported 2500 (again)"
        );
    });
}

#[test]
fn a_full_batch_of_1000_new_customers_without_external_ids_is_created() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let customers: Vec<Value> = (0..1000)
            .map(|n| json!({ "name": format!("Full {n}"), "email": format!("full-{n}@example.com") }))
            .collect();
        let body = bulk_create(&app, &acme.key, Value::Array(customers)).await;
        assert_eq!(
            totals_of(&body, &["success", "total", "created", "updated", "failed"]),
            [json!(true), json!(1000), json!(1000), json!(0), json!(0)]
        );
        assert_eq!(body["customers"].as_array().map(Vec::len), Some(1000));
        assert_eq!(
            stored(&app, &acme.key, "email", "full-999@example.com").await["name"],
            "Full 999"
        );
    });
}

#[test]
fn eight_simultaneous_imports_of_the_same_new_external_id_create_exactly_one_customer() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let external_id = "RACE-1";
        let answers = at_once(&app, (0..8).map(|n| {
            app.api(
                &acme.key,
                Method::Post,
                "/api-customers-bulk-create",
                Some(json!({ "customers": [
                    { "name": format!("Racer {n}"), "external_id": external_id, "email": format!("{external_id}@example.com") }
                ] })),
            )
        }))
        .await;
        let outcomes: Vec<Value> = answers
            .iter()
            .map(|answer| {
                let text: String = answer.text().chars().take(300).collect();
                assert_eq!(answer.status, 200, "{text}");
                answer.json()["customers"][0].clone()
            })
            .collect();
        let count = |action: &str| outcomes.iter().filter(|c| c["action"] == action).count();
        assert_eq!(count("created"), 1, "exactly one created: {outcomes:?}");
        assert_eq!(count("updated"), 7, "the rest updated: {outcomes:?}");
        let mut ids: Vec<&str> = outcomes.iter().map(|c| text_at(c, "/customer_id")).collect();
        ids.dedup();
        assert_eq!(ids.len(), 1, "all name the same customer");
        let lookup = batch_lookup(
            &app,
            &acme.key,
            json!({ "external_ids": [external_id], "emails": [format!("{external_id}@example.com")] }),
        )
        .await;
        assert_eq!(lookup["customers"].as_array().map(Vec::len), Some(1), "{lookup}");
        assert_eq!(customer_rows(&app, &acme).len(), 1, "one row");
    });
}

#[test]
fn an_empty_batch_answers_200_with_zero_counts() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = bulk_create(&app, &acme.key, json!([])).await;
        assert_eq!(
            body,
            json!({ "success": true, "total": 0, "created": 0, "updated": 0, "failed": 0, "customers": [], "errors": [] })
        );
    });
}
