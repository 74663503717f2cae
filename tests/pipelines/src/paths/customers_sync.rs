//! `POST /api-customers-sync`, the smart upsert (`tests/e2e/customers-sync.test.mjs`): customers
//! are matched by external_id, then email, then phone; what matches is updated, the rest created,
//! and one bad item never sinks the others. Concurrent syncs run with D1 answering after a
//! round trip's time, so that their reads and writes interleave as concurrent isolates' do.

use crate::app::{App, test};
use crate::steps::api::{assert_error, is_uuid, rfc3339_ms};
use crate::steps::customers::{
    assert_not_stored, at_once, batch_lookup, customer, customer_rows, details, stored, sync, sync_with,
    text_at,
};
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Every field a customer is answered with.
const CUSTOMER_KEYS: [&str; 15] = [
    "address",
    "created_at",
    "custom_fields",
    "email",
    "external_id",
    "external_system",
    "first_name",
    "id",
    "last_name",
    "name",
    "notes",
    "phone",
    "tags",
    "updated_at",
    "whatsapp_number",
];

/// `value` without the fields `names`.
fn without(value: &Value, names: &[&str]) -> Value {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        for name in names {
            object.remove(*name);
        }
    }
    value
}

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// `(action, matched_by)` of each detail.
fn actions_and_matches(body: &Value) -> Vec<(Value, Value)> {
    details(body)
        .iter()
        .map(|detail| (detail["action"].clone(), detail["matched_by"].clone()))
        .collect()
}

fn counts(body: &Value) -> [Value; 4] {
    let results = &body["results"];
    [
        results["total"].clone(),
        results["created"].clone(),
        results["updated"].clone(),
        results["failed"].clone(),
    ]
}

// Syncing new customers.

#[test]
fn a_new_customer_is_created_with_every_field_stored_as_sent_normalised_where_documented() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let custom_fields =
            json!({ "crm_segment": "enterprise", "contract_value": 50000, "nested": { "a": [1, 2] } });
        let sent = json!({
            "external_id": "CRM-1",
            "external_system": "hubspot",
            "name": "John Doe",
            "first_name": "John",
            "last_name": "Doe",
            "email": "John.Doe@Example.COM",
            "phone": "087 123 4567",
            "whatsapp_number": "+353 86 765 4321",
            "address": "123 Main St, Dublin",
            "notes": "VIP customer - handle with priority",
            "tags": ["vip", "enterprise"],
            "custom_fields": custom_fields
        });
        let before = app.stack.now_ms();
        let body = app
            .api(
                &acme.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [sent] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(body["success"], true, "{body}");
        assert_eq!(sorted_keys(&body), ["results", "success"]);
        let results = &body["results"];
        assert_eq!(counts(&body), [json!(1), json!(1), json!(0), json!(0)], "{body}");
        assert_eq!(details(&body).len(), 1);
        let detail = &results["details"][0];
        let id = text_at(detail, "/customer_id").to_owned();
        assert!(is_uuid(&id), "{detail}");
        assert_eq!(
            *detail,
            json!({ "index": 0, "external_id": "CRM-1", "customer_id": id, "action": "created", "matched_by": null })
        );

        let customer = stored(&app, &acme.key, "id", &id).await;
        assert_eq!(sorted_keys(&customer), CUSTOMER_KEYS);
        assert_eq!(
            without(&customer, &["created_at", "updated_at"]),
            json!({
                "id": id,
                "name": "John Doe",
                "email": "john.doe@example.com",
                "phone": "+353871234567",
                "whatsapp_number": "+353867654321",
                "first_name": "John",
                "last_name": "Doe",
                "address": "123 Main St, Dublin",
                "notes": "VIP customer - handle with priority",
                "tags": ["vip", "enterprise"],
                "external_id": "CRM-1",
                "external_system": "hubspot",
                "custom_fields": custom_fields
            })
        );
        let created_at = rfc3339_ms(text_at(&customer, "/created_at"))
            .unwrap_or_else(|| panic!("created_at is RFC 3339 UTC: {customer}"));
        assert_eq!(
            customer["updated_at"], customer["created_at"],
            "a new customer was last updated when created"
        );
        assert!(
            (created_at - before).abs() < 5 * 60_000,
            "created_at is about now: {customer}"
        );
    });
}

#[test]
fn a_customer_with_only_a_name_and_an_email_is_created_with_every_other_field_empty() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Minimal", "email": "minimal@example.com" }]),
        )
        .await;
        let customer = stored(
            &app,
            &acme.key,
            "id",
            text_at(&body, "/results/details/0/customer_id"),
        )
        .await;
        assert_eq!(
            without(&customer, &["id", "created_at", "updated_at"]),
            json!({
                "name": "Minimal",
                "email": "minimal@example.com",
                "phone": null,
                "whatsapp_number": null,
                "first_name": null,
                "last_name": null,
                "address": null,
                "notes": null,
                "tags": [],
                "external_id": null,
                "external_system": null,
                "custom_fields": {}
            })
        );
    });
}

#[test]
fn a_customer_with_only_a_name_and_a_phone_is_created() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Phone Only", "phone": "+44 20 7946 0958" }]),
        )
        .await;
        assert_eq!(body["results"]["details"][0]["action"], "created", "{body}");
        let customer = stored(&app, &acme.key, "phone", "+442079460958").await;
        assert_eq!(customer["email"], Value::Null);
        assert_eq!(customer["name"], "Phone Only");
    });
}

#[test]
fn an_integer_external_id_is_stored_reported_and_found_as_a_string() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(
            &app,
            &acme.key,
            json!([
                { "name": "Numeric", "email": "numeric@example.com", "external_id": 12345 },
                { "name": "Zero-padded", "email": "padded@example.com", "external_id": "012345" }
            ]),
        )
        .await;
        let reported: Vec<(Value, Value)> = details(&body)
            .iter()
            .map(|detail| (detail["external_id"].clone(), detail["action"].clone()))
            .collect();
        assert_eq!(
            reported,
            [
                (json!("12345"), json!("created")),
                (json!("012345"), json!("created"))
            ],
            "the number 12345 and the text \"012345\" are two different ids"
        );
        let customer = stored(&app, &acme.key, "external_id", "12345").await;
        assert_eq!(customer["external_id"], "12345");
        assert_eq!(customer["name"], "Numeric");
        let again = sync(
            &app,
            &acme.key,
            json!([{ "name": "Numeric Again", "email": "numeric@example.com", "external_id": "12345" }]),
        )
        .await;
        assert_eq!(again["results"]["details"][0]["action"], "updated", "{again}");
        assert_eq!(again["results"]["details"][0]["matched_by"], "external_id");
    });
}

#[test]
fn tags_are_trimmed_and_deduplicated_keeping_their_first_order() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Tagged", "email": "tagged@example.com", "tags": [" vip ", "b2b", "vip", "b2b ", "new"] }]),
        )
        .await;
        let customer = stored(&app, &acme.key, "email", "tagged@example.com").await;
        assert_eq!(customer["tags"], json!(["vip", "b2b", "new"]));
    });
}

#[test]
fn empty_string_fields_are_treated_as_absent() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([{
                "name": "Blank Cells",
                "email": "blank@example.com",
                "phone": "",
                "whatsapp_number": "",
                "first_name": "",
                "last_name": "",
                "address": "",
                "notes": "",
                "external_id": "",
                "external_system": ""
            }]),
        )
        .await;
        let customer = stored(&app, &acme.key, "email", "blank@example.com").await;
        for field in [
            "phone",
            "whatsapp_number",
            "first_name",
            "last_name",
            "address",
            "notes",
            "external_id",
            "external_system",
        ] {
            assert_eq!(
                customer[field],
                Value::Null,
                "{field} sent as \"\" is stored as null"
            );
        }
    });
}

#[test]
fn emails_are_stored_lowercased_and_phones_in_e164() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Case", "email": "  MiXeD.Case@Example.IE ", "phone": "(087) 765-4321" }]),
        )
        .await;
        let customer = stored(&app, &acme.key, "email", "mixed.case@example.ie").await;
        assert_eq!(customer["email"], "mixed.case@example.ie");
        assert_eq!(customer["phone"], "+353877654321");
    });
}

// Phone numbers and default countries.

#[test]
fn a_national_number_is_completed_with_the_business_default_country_ie() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Irish", "phone": "087 123 4567" }]),
        )
        .await;
        let customer = stored(&app, &acme.key, "phone", "+353871234567").await;
        assert_eq!(customer["phone"], "+353871234567");
    });
}

#[test]
fn every_common_way_of_writing_one_irish_number_matches_the_same_customer() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let created = sync(
            &app,
            &acme.key,
            json!([{ "name": "Original", "email": "original@example.com", "phone": "+353871234567" }]),
        )
        .await;
        let id = text_at(&created, "/results/details/0/customer_id").to_owned();
        let formats = [
            "087 123 4567",
            "0871234567",
            "087-123-4567",
            "(087) 123 4567",
            "087.123.4567",
            "+353 87 123 4567",
            "+353 (0)87 123 4567",
            "00353 87 123 4567",
            "+353-87-123-4567",
        ];
        let items: Vec<Value> = formats
            .iter()
            .enumerate()
            .map(|(n, phone)| json!({ "name": format!("Format {n}"), "phone": phone }))
            .collect();
        let body = sync(&app, &acme.key, Value::Array(items)).await;
        let details = details(&body);
        assert_eq!(details.len(), formats.len(), "{body}");
        for (format, detail) in formats.iter().zip(&details) {
            assert_eq!(
                detail["action"], "updated",
                "\"{format}\" matches the stored customer"
            );
            assert_eq!(detail["matched_by"], "phone", "\"{format}\" matched by phone");
            assert_eq!(
                detail["customer_id"], id,
                "\"{format}\" matches the same customer"
            );
        }
        let customer = stored(&app, &acme.key, "id", &id).await;
        assert_eq!(customer["phone"], "+353871234567");
        assert_eq!(
            customer["name"],
            format!("Format {}", formats.len() - 1),
            "updates apply in request order"
        );
    });
}

#[test]
fn without_a_default_country_a_national_number_fails_the_item_with_field_phone() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(
            &app,
            &acme.key,
            json!([
                { "name": "National", "email": "national@example.com", "phone": "087 123 4567" },
                { "name": "International", "email": "international@example.com", "phone": "+353 87 999 0000" }
            ]),
        )
        .await;
        assert_eq!(body["success"], false, "{body}");
        let details = details(&body);
        let (failed, ok) = (&details[0], &details[1]);
        assert_eq!(failed["action"], "failed");
        assert_eq!(failed["customer_id"], Value::Null);
        assert_eq!(failed["error"]["code"], "validation_failed");
        assert_eq!(failed["error"]["field"], "phone");
        assert_eq!(ok["action"], "created");
        assert_not_stored(&app, &acme.key, &["national@example.com"], "").await;
        assert_eq!(
            stored(&app, &acme.key, "email", "international@example.com").await["phone"],
            "+353879990000"
        );
    });
}

#[test]
fn default_country_in_the_request_overrides_the_business_default_for_that_request_only() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let gb = sync_with(
            &app,
            &acme.key,
            json!([{ "name": "British", "email": "brit@example.com", "phone": "07911 123456" }]),
            json!({ "default_country": "gb" }),
        )
        .await;
        assert_eq!(gb["success"], true, "{gb}");
        assert_eq!(
            stored(&app, &acme.key, "email", "brit@example.com").await["phone"],
            "+447911123456"
        );

        sync(
            &app,
            &acme.key,
            json!([{ "name": "Irish", "email": "irish@example.com", "phone": "087 111 2222" }]),
        )
        .await;
        assert_eq!(
            stored(&app, &acme.key, "email", "irish@example.com").await["phone"],
            "+353871112222",
            "the next request uses IE again"
        );
    });
}

#[test]
fn default_country_in_the_request_completes_national_numbers_for_a_business_without_one() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync_with(
            &app,
            &acme.key,
            json!([{ "name": "US", "phone": "(415) 555-0100" }]),
            json!({ "default_country": "US" }),
        )
        .await;
        assert_eq!(body["success"], true, "{body}");
        assert_eq!(
            stored(&app, &acme.key, "phone", "+14155550100").await["name"],
            "US"
        );
    });
}

#[test]
fn an_unknown_default_country_in_the_request_refuses_the_whole_request_and_stores_nothing() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        for (country, description) in [
            ("XX", "an unassigned code"),
            ("GBR", "an alpha-3 code"),
            ("United Kingdom", "a country name"),
        ] {
            let answer = app
                .api(
                    &acme.key,
                    Method::Post,
                    "/api-customers-sync",
                    Some(json!({
                        "customers": [{ "name": "Nobody", "email": "nobody-country@example.com" }],
                        "default_country": country
                    })),
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], "default_country", "{description}: field");
        }
        assert_not_stored(&app, &acme.key, &["nobody-country@example.com"], "").await;
    });
}

#[test]
fn whatsapp_numbers_are_normalised_like_phones() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Chatty", "email": "chatty@example.com", "whatsapp_number": "086 765 4321" }]),
        )
        .await;
        assert_eq!(
            stored(&app, &acme.key, "email", "chatty@example.com").await["whatsapp_number"],
            "+353867654321"
        );
    });
}

// Matching and updating.

#[test]
fn a_customer_is_matched_by_external_id_first_then_email_then_phone() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let created = sync(
            &app,
            &acme.key,
            json!([
                { "name": "One", "external_id": "CRM-1", "email": "one@example.com", "phone": "+353871111111" },
                { "name": "Two", "email": "two@example.com", "phone": "+353872222222" },
                { "name": "Three", "phone": "+353873333333" }
            ]),
        )
        .await;
        let ids: Vec<Value> = details(&created)
            .iter()
            .map(|detail| detail["customer_id"].clone())
            .collect();

        let body = sync(
            &app,
            &acme.key,
            json!([
                // external_id wins even though the email names nobody and the phone names Two.
                { "name": "One by id", "external_id": "CRM-1", "email": "one-new@example.com" },
                // email wins over phone: the email is Two's, the phone Three's.
                { "name": "Two by email", "email": "TWO@example.com" },
                { "name": "Three by phone", "phone": "087 333 3333" },
                { "name": "Four", "email": "four@example.com" }
            ]),
        )
        .await;
        assert_eq!(body["success"], true, "{body}");
        let got: Vec<Value> = details(&body)
            .iter()
            .map(|d| json!([d["index"], d["action"], d["matched_by"], d["customer_id"]]))
            .collect();
        assert_eq!(
            got,
            [
                json!([0, "updated", "external_id", ids[0]]),
                json!([1, "updated", "email", ids[1]]),
                json!([2, "updated", "phone", ids[2]]),
                json!([3, "created", null, body["results"]["details"][3]["customer_id"]]),
            ]
        );
        assert_eq!(counts(&body), [json!(4), json!(1), json!(3), json!(0)]);
        assert_eq!(
            stored(&app, &acme.key, "id", ids[0].as_str().unwrap_or_default()).await["email"],
            "one-new@example.com",
            "the update changed the email"
        );
        assert_error(
            &customer(&app, &acme.key, "email", "one@example.com").await,
            404,
            "not_found",
            "the old email is free",
        );
    });
}

#[test]
fn an_item_with_an_email_and_a_phone_is_matched_by_email_when_they_belong_to_no_one_else() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Emailed", "email": "emailed@example.com" }]),
        )
        .await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Emailed", "email": "emailed@example.com", "phone": "087 444 4444" }]),
        )
        .await;
        assert_eq!(body["results"]["details"][0]["matched_by"], "email", "{body}");
        assert_eq!(
            stored(&app, &acme.key, "email", "emailed@example.com").await["phone"],
            "+353874444444"
        );
    });
}

#[test]
fn emails_are_matched_case_insensitively() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let first = sync(
            &app,
            &acme.key,
            json!([{ "name": "Lower", "email": "case@example.com" }]),
        )
        .await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Upper", "email": "CASE@EXAMPLE.COM" }]),
        )
        .await;
        let detail = &body["results"]["details"][0];
        assert_eq!(detail["action"], "updated", "{body}");
        assert_eq!(detail["matched_by"], "email");
        assert_eq!(
            detail["customer_id"],
            first["results"]["details"][0]["customer_id"]
        );
    });
}

#[test]
fn emails_with_accented_capitals_are_matched_case_insensitively_too() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let first = sync(
            &app,
            &acme.key,
            json!([{ "name": "Élodie", "email": "ÉLODIE@Exemple.FR" }]),
        )
        .await;
        assert_eq!(
            stored(&app, &acme.key, "email", "élodie@exemple.fr").await["email"],
            "élodie@exemple.fr"
        );
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Élodie B", "email": "élodie@EXEMPLE.fr" }]),
        )
        .await;
        assert_eq!(body["results"]["details"][0]["action"], "updated", "{body}");
        assert_eq!(
            body["results"]["details"][0]["customer_id"],
            first["results"]["details"][0]["customer_id"]
        );
    });
}

#[test]
fn custom_fields_arrays_and_values_replaced_by_a_different_type_are_replaced_whole() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Lists", "email": "lists@example.com", "custom_fields": { "list": [1, 2], "obj": { "a": 1 }, "n": 1 } }]),
        )
        .await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Lists", "email": "lists@example.com", "custom_fields": { "list": [3], "obj": "flat", "n": { "deep": true } } }]),
        )
        .await;
        assert_eq!(
            stored(&app, &acme.key, "email", "lists@example.com").await["custom_fields"],
            json!({ "list": [3], "obj": "flat", "n": { "deep": true } })
        );
    });
}

#[test]
fn an_update_keeps_absent_fields_merges_custom_fields_and_replaces_tags() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([{
                "name": "Before",
                "external_id": "MERGE-1",
                "external_system": "pipedrive",
                "email": "merge@example.com",
                "phone": "087 123 4567",
                "whatsapp_number": "087 123 4567",
                "first_name": "Be",
                "last_name": "Fore",
                "address": "Old Street",
                "notes": "old notes",
                "tags": ["a", "b"],
                "custom_fields": { "keep": 1, "overwrite": "old", "remove": true, "nested": { "x": 1, "y": 2 } }
            }]),
        )
        .await;
        let original = stored(&app, &acme.key, "external_id", "MERGE-1").await;
        app.stack.advance(Duration::from_millis(5));

        let body = sync(
            &app,
            &acme.key,
            json!([{
                "name": "After",
                "external_id": "MERGE-1",
                "email": "MERGE@example.com",
                "notes": "",
                "phone": "",
                "tags": ["c", " c "],
                "custom_fields": { "overwrite": "new", "remove": null, "added": [1], "nested": { "y": null, "z": 3 } }
            }]),
        )
        .await;
        assert_eq!(body["results"]["details"][0]["action"], "updated", "{body}");
        let after = stored(&app, &acme.key, "external_id", "MERGE-1").await;
        let mut expected = without(&original, &["updated_at"]);
        expected["name"] = json!("After");
        expected["tags"] = json!(["c"]);
        expected["custom_fields"] =
            json!({ "keep": 1, "overwrite": "new", "added": [1], "nested": { "x": 1, "z": 3 } });
        assert_eq!(
            without(&after, &["updated_at"]),
            expected,
            "absent and empty fields keep their stored values"
        );
        assert_eq!(
            after["created_at"], original["created_at"],
            "created_at never changes"
        );
        let moment = |customer: &Value| rfc3339_ms(text_at(customer, "/updated_at"));
        assert!(
            moment(&after) > moment(&original),
            "updated_at moves forward ({} -> {})",
            original["updated_at"],
            after["updated_at"]
        );
    });
}

#[test]
fn an_update_without_tags_or_custom_fields_keeps_them() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Keep", "email": "keep@example.com", "tags": ["x"], "custom_fields": { "a": 1 } }]),
        )
        .await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Keep 2", "email": "keep@example.com" }]),
        )
        .await;
        let customer = stored(&app, &acme.key, "email", "keep@example.com").await;
        assert_eq!(customer["tags"], json!(["x"]));
        assert_eq!(customer["custom_fields"], json!({ "a": 1 }));
        assert_eq!(customer["name"], "Keep 2");
    });
}

#[test]
fn an_empty_tag_list_clears_the_tags() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Clear", "email": "clear@example.com", "tags": ["x", "y"] }]),
        )
        .await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Clear", "email": "clear@example.com", "tags": [] }]),
        )
        .await;
        assert_eq!(
            stored(&app, &acme.key, "email", "clear@example.com").await["tags"],
            json!([])
        );
    });
}

#[test]
fn a_customer_found_by_email_gains_the_external_id_it_is_synced_with() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let first = sync(
            &app,
            &acme.key,
            json!([{ "name": "Unlinked", "email": "unlinked@example.com" }]),
        )
        .await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Linked", "email": "unlinked@example.com", "external_id": "LINK-1" }]),
        )
        .await;
        assert_eq!(body["results"]["details"][0]["matched_by"], "email", "{body}");
        let customer = stored(&app, &acme.key, "external_id", "LINK-1").await;
        assert_eq!(customer["id"], first["results"]["details"][0]["customer_id"]);
    });
}

#[test]
fn the_same_person_twice_in_one_batch_is_created_once_and_then_updated() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let body = sync(
            &app,
            &acme.key,
            json!([
                { "name": "Joe", "email": "joe@example.com" },
                { "name": "Joe B", "email": "Joe@Example.com", "phone": "+353871234567" },
                { "name": "Joe C", "phone": "087 123 4567" },
                { "name": "Ext", "external_id": "TWICE", "email": "ext@example.com" },
                { "name": "Ext 2", "external_id": "TWICE", "email": "ext@example.com" }
            ]),
        )
        .await;
        assert_eq!(body["success"], true, "{body}");
        assert_eq!(
            actions_and_matches(&body),
            [
                (json!("created"), Value::Null),
                (json!("updated"), json!("email")),
                (json!("updated"), json!("phone")),
                (json!("created"), Value::Null),
                (json!("updated"), json!("external_id")),
            ]
        );
        let d = details(&body);
        assert_eq!(d[1]["customer_id"], d[0]["customer_id"]);
        assert_eq!(d[2]["customer_id"], d[0]["customer_id"]);
        assert_eq!(d[4]["customer_id"], d[3]["customer_id"]);
        assert_eq!(
            [&body["results"]["created"], &body["results"]["updated"]],
            [&json!(2), &json!(3)]
        );
        let joe = stored(&app, &acme.key, "id", text_at(&d[0], "/customer_id")).await;
        assert_eq!(joe["name"], "Joe C");
        assert_eq!(joe["phone"], "+353871234567");
        assert_eq!(
            stored(&app, &acme.key, "id", text_at(&d[3], "/customer_id")).await["name"],
            "Ext 2"
        );
    });
}

#[test]
fn details_come_back_in_request_order_one_per_item_with_the_external_id_as_sent() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let bad = |n: usize| n % 7 == 3;
        let items: Vec<Value> = (0..30)
            .map(|n| {
                json!({
                    "name": format!("Order {n}"),
                    "email": if bad(n) { "not-an-email".to_owned() } else { format!("order{n}@example.com") },
                    "external_id": if n % 2 == 1 { json!(n) } else { json!(format!("ORD-{n}")) }
                })
            })
            .collect();
        let body = sync(&app, &acme.key, Value::Array(items)).await;
        let details = details(&body);
        assert_eq!(details.len(), 30);
        for (n, detail) in details.iter().enumerate() {
            assert_eq!(detail["index"], n, "detail {n} is at its own index");
            let external_id = if n % 2 == 1 {
                n.to_string()
            } else {
                format!("ORD-{n}")
            };
            assert_eq!(detail["external_id"], external_id, "detail {n} external_id");
            assert_eq!(
                detail["action"],
                if bad(n) { "failed" } else { "created" },
                "detail {n} action"
            );
        }
        assert_eq!(body["results"]["failed"], 4);
        assert_eq!(body["results"]["created"], 26);
        assert_eq!(body["success"], false);
    });
}

// Conflicts.

#[test]
fn an_item_whose_email_belongs_to_a_customer_linked_to_another_external_id_fails_with_conflict_on_external_id()
 {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let first = sync(
            &app,
            &acme.key,
            json!([{ "name": "Linked", "external_id": "CRM-A", "email": "linked@example.com", "phone": "087 100 0000" }]),
        )
        .await;
        let before = stored(&app, &acme.key, "external_id", "CRM-A").await;
        let body = sync(
            &app,
            &acme.key,
            json!([
                { "name": "Impostor by email", "external_id": "CRM-B", "email": "LINKED@example.com" },
                { "name": "Impostor by phone", "external_id": "CRM-C", "phone": "+353871000000" },
                { "name": "Innocent", "email": "innocent@example.com" }
            ]),
        )
        .await;
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(
            [
                &body["results"]["created"],
                &body["results"]["updated"],
                &body["results"]["failed"]
            ],
            [&json!(1), &json!(0), &json!(2)]
        );
        let details = details(&body);
        for detail in &details[..2] {
            assert_eq!(detail["action"], "failed", "{detail}");
            assert_eq!(detail["customer_id"], Value::Null);
            assert_eq!(detail["error"]["code"], "conflict");
            assert_eq!(detail["error"]["field"], "external_id");
            assert!(detail["error"]["message"].is_string(), "{detail}");
        }
        assert_eq!(details[0]["external_id"], "CRM-B");
        assert_eq!(details[2]["action"], "created");
        assert_eq!(
            stored(&app, &acme.key, "external_id", "CRM-A").await,
            before,
            "the linked customer is untouched"
        );
        assert_eq!(before["id"], first["results"]["details"][0]["customer_id"]);
        assert_error(
            &customer(&app, &acme.key, "external_id", "CRM-B").await,
            404,
            "not_found",
            "CRM-B was not stored",
        );
    });
}

#[test]
fn an_update_that_would_take_another_customers_email_or_phone_fails_with_conflict_on_that_field() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([
                { "name": "Ann", "external_id": "ANN", "email": "ann@example.com", "phone": "087 200 0001" },
                { "name": "Bob", "external_id": "BOB", "email": "bob@example.com", "phone": "087 200 0002" }
            ]),
        )
        .await;
        let ann = stored(&app, &acme.key, "external_id", "ANN").await;
        let bob = stored(&app, &acme.key, "external_id", "BOB").await;
        let body = sync(
            &app,
            &acme.key,
            json!([
                { "name": "Ann takes email", "external_id": "ANN", "email": "BOB@example.com" },
                { "name": "Ann takes phone", "external_id": "ANN", "phone": "+353872000002" },
                { "name": "Bob renamed", "external_id": "BOB", "email": "bob@example.com" }
            ]),
        )
        .await;
        let details = details(&body);
        let (by_email, by_phone, fine) = (&details[0], &details[1], &details[2]);
        assert_eq!(by_email["action"], "failed", "{body}");
        assert_eq!(by_email["error"]["code"], "conflict");
        assert_eq!(by_email["error"]["field"], "email");
        assert_eq!(by_phone["action"], "failed");
        assert_eq!(by_phone["error"]["code"], "conflict");
        assert_eq!(by_phone["error"]["field"], "phone");
        assert_eq!(fine["action"], "updated");
        assert_eq!(
            stored(&app, &acme.key, "external_id", "ANN").await,
            ann,
            "Ann is untouched"
        );
        let bob_after = stored(&app, &acme.key, "external_id", "BOB").await;
        assert_eq!(bob_after["name"], "Bob renamed");
        assert_eq!(bob_after["email"], bob["email"]);
        assert_eq!(bob_after["phone"], bob["phone"]);
    });
}

#[test]
fn an_email_given_up_by_one_item_can_be_used_by_a_new_customer_later_in_the_same_batch() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let first = sync(
            &app,
            &acme.key,
            json!([{ "name": "One", "external_id": "CRM-1", "email": "one@example.com" }]),
        )
        .await;
        let answer = app
            .api(
                &acme.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [
                    { "name": "One", "external_id": "CRM-1", "email": "uno@example.com" },
                    { "name": "Newcomer", "email": "one@example.com" }
                ] })),
            )
            .await;
        assert_eq!(answer.status, 200, "the batch is accepted: {}", answer.text());
        assert_eq!(
            actions_and_matches(&answer.json()),
            [
                (json!("updated"), json!("external_id")),
                (json!("created"), Value::Null)
            ]
        );
        assert_eq!(
            stored(&app, &acme.key, "email", "uno@example.com").await["id"],
            first["results"]["details"][0]["customer_id"]
        );
        assert_eq!(
            stored(&app, &acme.key, "email", "one@example.com").await["name"],
            "Newcomer"
        );
    });
}

#[test]
fn a_phone_given_up_by_one_customer_can_be_taken_by_another_customer_later_in_the_same_batch() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([
                { "name": "Ann", "external_id": "ANN", "email": "ann@example.com", "phone": "087 600 0001" },
                { "name": "Bob", "external_id": "BOB", "email": "bob@example.com", "phone": "087 600 0002" }
            ]),
        )
        .await;
        let answer = app
            .api(
                &acme.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [
                    { "name": "Bob", "external_id": "BOB", "email": "bob@example.com", "phone": "087 600 0003" },
                    { "name": "Ann", "external_id": "ANN", "email": "ann@example.com", "phone": "087 600 0002" }
                ] })),
            )
            .await;
        assert_eq!(answer.status, 200, "the batch is accepted: {}", answer.text());
        let actions: Vec<Value> = actions_and_matches(&answer.json())
            .into_iter()
            .map(|(action, _)| action)
            .collect();
        assert_eq!(actions, [json!("updated"), json!("updated")]);
        assert_eq!(
            stored(&app, &acme.key, "external_id", "ANN").await["phone"],
            "+353876000002"
        );
        assert_eq!(
            stored(&app, &acme.key, "external_id", "BOB").await["phone"],
            "+353876000003"
        );
    });
}

#[test]
fn two_items_with_different_external_ids_and_the_same_new_email_the_second_fails_with_conflict() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(
            &app,
            &acme.key,
            json!([
                { "name": "X", "external_id": "X", "email": "shared@example.com" },
                { "name": "Y", "external_id": "Y", "email": "shared@example.com" }
            ]),
        )
        .await;
        let details = details(&body);
        assert_eq!(details[0]["action"], "created", "{body}");
        assert_eq!(details[1]["action"], "failed");
        assert_eq!(details[1]["error"]["code"], "conflict");
        assert_eq!(details[1]["error"]["field"], "external_id");
        assert_error(
            &customer(&app, &acme.key, "external_id", "Y").await,
            404,
            "not_found",
            "Y was not stored",
        );
    });
}

#[test]
fn an_item_whose_email_names_one_customer_and_phone_another_fails_with_conflict_on_phone() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        sync(
            &app,
            &acme.key,
            json!([
                { "name": "Email Owner", "email": "owner@example.com" },
                { "name": "Phone Owner", "phone": "087 300 0003" }
            ]),
        )
        .await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "Mixed", "email": "owner@example.com", "phone": "087 300 0003" }]),
        )
        .await;
        let detail = &body["results"]["details"][0];
        assert_eq!(detail["action"], "failed", "{body}");
        assert_eq!(detail["error"]["code"], "conflict");
        assert_eq!(detail["error"]["field"], "phone");
        assert_eq!(
            stored(&app, &acme.key, "email", "owner@example.com").await["phone"],
            Value::Null
        );
    });
}

// Invalid items.

#[test]
fn each_invalid_item_fails_with_the_field_at_fault_while_the_valid_ones_are_stored() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let many_tags: Vec<String> = (0..51).map(|n| format!("t{n}")).collect();
        #[rustfmt::skip]
        let cases = [
            (json!({ "email": "noname@example.com" }), "name", "no name"),
            (json!({ "name": "   ", "email": "blankname@example.com" }), "name", "a blank name"),
            (json!({ "name": "N".repeat(201), "email": "longname@example.com" }), "name", "a 201-character name"),
            (json!({ "name": "Nul\u{0000}Byte", "email": "nul@example.com" }), "name", "a NUL character in the name"),
            (json!({ "name": "Bell\u{0007}", "email": "bell@example.com" }), "name", "a control character in the name"),
            (json!({ "name": "No Contact" }), "email", "neither email nor phone"),
            (json!({ "name": "Blank Contact", "email": "", "phone": "" }), "email", "blank email and phone"),
            (json!({ "name": "WhatsApp Only", "whatsapp_number": "+353871234567" }), "email", "only a whatsapp number"),
            (json!({ "name": "Bad Email", "email": "not-an-email" }), "email", "an email without @"),
            (json!({ "name": "Bad Email", "email": "john@localhost" }), "email", "an email domain without a dot"),
            (json!({ "name": "Bad Email", "email": "john doe@example.com" }), "email", "a space in an email"),
            (json!({ "name": "Bad Phone", "phone": "call me maybe" }), "phone", "prose as a phone"),
            (json!({ "name": "Bad Phone", "phone": "+12" }), "phone", "a too short phone"),
            (json!({ "name": "Bad Phone", "phone": "+3538712345678901234" }), "phone", "a too long phone"),
            (json!({ "name": "Bad WhatsApp", "email": "wa@example.com", "whatsapp_number": "abc" }), "whatsapp_number", "a bad whatsapp number"),
            (json!({ "name": "Tags", "email": "tags@example.com", "tags": many_tags }), "tags", "51 tags"),
            (json!({ "name": "Tags", "email": "longtag@example.com", "tags": ["t".repeat(65)] }), "tags", "a 65-character tag"),
            (json!({ "name": "CF", "email": "cf@example.com", "custom_fields": { "big": "x".repeat(16 * 1024) } }), "custom_fields", "custom_fields over 16 KiB"),
        ];
        let mut items = vec![json!({ "name": "Valid Neighbour", "email": "valid-neighbour@example.com" })];
        items.extend(cases.iter().map(|(item, _, _)| item.clone()));
        items.push(json!({ "name": "Last Valid", "email": "last-valid@example.com" }));
        let total = items.len();
        let body = sync(&app, &acme.key, Value::Array(items)).await;
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["results"]["total"], total);
        assert_eq!(body["results"]["created"], 2, "both valid items are created");
        assert_eq!(body["results"]["failed"], cases.len());
        let details = details(&body);
        for (n, (_, field, description)) in cases.iter().enumerate() {
            let detail = &details[n + 1];
            assert_eq!(detail["index"], n + 1, "{description}: index");
            assert_eq!(detail["action"], "failed", "{description}: action");
            assert_eq!(
                detail["customer_id"],
                Value::Null,
                "{description}: no customer id"
            );
            assert_eq!(detail["matched_by"], Value::Null, "{description}: matched_by");
            assert_eq!(
                detail["error"]["code"], "validation_failed",
                "{description}: code"
            );
            assert_eq!(detail["error"]["field"], *field, "{description}: field");
            assert!(
                detail["error"]["message"]
                    .as_str()
                    .is_some_and(|message| !message.is_empty()),
                "{description}: message"
            );
        }
        let findable: Vec<&str> = cases
            .iter()
            .filter_map(|(item, _, _)| item["email"].as_str())
            .filter(|email| email.contains('@') && !email.contains(' ') && !email.ends_with("localhost"))
            .collect();
        assert_not_stored(&app, &acme.key, &findable, "invalid items").await;
        assert_eq!(
            stored(&app, &acme.key, "email", "valid-neighbour@example.com").await["name"],
            "Valid Neighbour"
        );
        assert_eq!(
            stored(&app, &acme.key, "email", "last-valid@example.com").await["name"],
            "Last Valid"
        );
    });
}

#[test]
fn items_of_the_wrong_type_fail_on_their_own() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        #[rustfmt::skip]
        let cases = [
            ("a string", json!("John")),
            ("a number", json!(42)),
            ("null", Value::Null),
            ("an array", json!([{ "name": "x", "email": "nested@example.com" }])),
            ("a name that is a number", json!({ "name": 7, "email": "seven@example.com" })),
            ("tags that are a string", json!({ "name": "T", "email": "tagstring@example.com", "tags": "vip" })),
            ("tags that hold a number", json!({ "name": "T", "email": "tagnum@example.com", "tags": ["ok", 5] })),
            ("custom_fields that are an array", json!({ "name": "C", "email": "cfarray@example.com", "custom_fields": [1] })),
            ("custom_fields that are a string", json!({ "name": "C", "email": "cfstring@example.com", "custom_fields": "{\"a\":1}" })),
            ("an external_id that is a fraction", json!({ "name": "E", "email": "fraction@example.com", "external_id": 4.5 })),
            ("an external_id that is a boolean", json!({ "name": "E", "email": "bool@example.com", "external_id": true })),
            ("an email that is an object", json!({ "name": "E", "email": { "address": "obj@example.com" } })),
        ];
        let mut items: Vec<Value> = cases.iter().map(|(_, item)| item.clone()).collect();
        items.push(json!({ "name": "Survivor", "email": "survivor@example.com" }));
        let body = sync(&app, &acme.key, Value::Array(items)).await;
        let details = details(&body);
        for (n, (description, _)) in cases.iter().enumerate() {
            assert_eq!(details[n]["action"], "failed", "{description}: fails");
            assert_eq!(
                details[n]["error"]["code"], "validation_failed",
                "{description}: code"
            );
        }
        assert_eq!(
            details.last().map(|detail| &detail["action"]),
            Some(&json!("created")),
            "the valid item is still created"
        );
        assert_not_stored(
            &app,
            &acme.key,
            &[
                "nested@example.com",
                "seven@example.com",
                "tagstring@example.com",
                "tagnum@example.com",
                "cfarray@example.com",
                "cfstring@example.com",
                "fraction@example.com",
                "bool@example.com",
            ],
            "",
        )
        .await;
    });
}

#[test]
fn a_batch_of_only_invalid_items_answers_200_with_success_false_and_stores_nothing() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(
            &app,
            &acme.key,
            json!([{ "name": "No Contact" }, { "email": "nameless@example.com" }]),
        )
        .await;
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(counts(&body), [json!(2), json!(0), json!(0), json!(2)]);
        assert_not_stored(&app, &acme.key, &["nameless@example.com"], "").await;
        assert!(customer_rows(&app, &acme).is_empty(), "no customer row");
    });
}

#[test]
fn an_empty_batch_answers_200_with_zero_counts() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let body = sync(&app, &acme.key, json!([])).await;
        assert_eq!(
            body,
            json!({ "success": true, "results": { "total": 0, "created": 0, "updated": 0, "failed": 0, "details": [] } })
        );
    });
}

// Concurrent syncs.

/// `count` syncs of `customer` (named `{name} {n}`) at once; the detail of each.
async fn fire_together(app: &App, key: &str, count: usize, customer: Value) -> Vec<Value> {
    let name = text_at(&customer, "/name").to_owned();
    let answers = at_once(
        app,
        (0..count).map(|n| {
            let mut item = customer.clone();
            item["name"] = json!(format!("{name} {n}"));
            app.api(
                key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [item] })),
            )
        }),
    )
    .await;
    answers
        .into_iter()
        .map(|answer| {
            let text: String = answer.text().chars().take(300).collect();
            assert_eq!(
                answer.status, 200,
                "every concurrent sync succeeds: {} {text}",
                answer.status
            );
            answer.json()["results"]["details"][0].clone()
        })
        .collect()
}

/// Checks that exactly one detail created the customer and the others updated it (matched by
/// `matched_by`); the customer's id.
fn one_created_rest_updated(details: &[Value], matched_by: &str) -> String {
    let actions: Vec<&str> = details.iter().map(|d| text_at(d, "/action")).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "created").count(),
        1,
        "exactly one created: {actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "updated").count(),
        details.len() - 1,
        "the rest updated: {actions:?}"
    );
    let mut ids: Vec<&str> = details.iter().map(|d| text_at(d, "/customer_id")).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "all name the same customer: {details:?}");
    for detail in details.iter().filter(|d| d["action"] == "updated") {
        assert_eq!(detail["matched_by"], matched_by, "{detail}");
    }
    ids[0].to_owned()
}

#[test]
fn eight_simultaneous_syncs_of_the_same_new_email_create_exactly_one_customer() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let email = "race@example.com";
        let details = fire_together(&app, &acme.key, 8, json!({ "name": "Racer", "email": email })).await;
        let id = one_created_rest_updated(&details, "email");
        let lookup = batch_lookup(&app, &acme.key, json!({ "emails": [email] })).await;
        assert_eq!(lookup["customers"].as_array().map(Vec::len), Some(1), "{lookup}");
        assert_eq!(lookup["customers"][0]["id"], id);
        let rows = customer_rows(&app, &acme);
        assert_eq!(rows.len(), 1, "one row: {rows:?}");
    });
}

#[test]
fn eight_simultaneous_syncs_of_the_same_new_external_id_create_exactly_one_customer() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let external_id = "RACE-1";
        let details = fire_together(
            &app,
            &acme.key,
            8,
            json!({ "name": "Racer", "external_id": external_id, "email": format!("{external_id}@example.com") }),
        )
        .await;
        let id = one_created_rest_updated(&details, "external_id");
        assert_eq!(
            stored(&app, &acme.key, "external_id", external_id).await["id"],
            id
        );
        assert_eq!(customer_rows(&app, &acme).len(), 1, "one row");
    });
}

#[test]
fn eight_simultaneous_syncs_of_the_same_new_phone_create_exactly_one_customer() {
    test(|app| async move {
        let acme = app.business_in("Acme", Some("IE")).await;
        let details = fire_together(
            &app,
            &acme.key,
            8,
            json!({ "name": "Racer", "phone": "087 654 3210" }),
        )
        .await;
        let id = one_created_rest_updated(&details, "phone");
        assert_eq!(stored(&app, &acme.key, "phone", "+353876543210").await["id"], id);
        assert_eq!(customer_rows(&app, &acme).len(), 1, "one row");
    });
}

#[test]
fn two_simultaneous_syncs_of_the_same_50_new_customers_store_50_customers() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        let batch: Vec<Value> = (0..50)
            .map(|n| json!({ "name": format!("Pair {n}"), "email": format!("pair-{n}@example.com") }))
            .collect();
        let answers = at_once(
            &app,
            (0..2).map(|_| {
                app.api(
                    &acme.key,
                    Method::Post,
                    "/api-customers-sync",
                    Some(json!({ "customers": batch })),
                )
            }),
        )
        .await;
        let bodies: Vec<Value> = answers
            .iter()
            .map(|answer| {
                let text: String = answer.text().chars().take(300).collect();
                assert_eq!(answer.status, 200, "{text}");
                answer.json()
            })
            .collect();
        let sum = |field: &str| {
            bodies
                .iter()
                .map(|body| body["results"][field].as_u64().unwrap_or_default())
                .sum::<u64>()
        };
        assert_eq!(
            sum("created"),
            50,
            "each customer is created once over both requests"
        );
        assert_eq!(sum("updated"), 50, "and updated by the other request");
        let (first, second) = (details(&bodies[0]), details(&bodies[1]));
        assert_eq!(first.len(), 50);
        for (n, (a, b)) in first.iter().zip(&second).enumerate() {
            assert_eq!(
                a["customer_id"], b["customer_id"],
                "item {n} names the same customer in both responses"
            );
        }
        let emails: Vec<Value> = batch.iter().map(|customer| customer["email"].clone()).collect();
        let lookup = batch_lookup(&app, &acme.key, json!({ "emails": emails })).await;
        assert_eq!(lookup["customers"].as_array().map(Vec::len), Some(50));
        assert_eq!(lookup["not_found"]["emails"], json!([]));
        assert_eq!(customer_rows(&app, &acme).len(), 50, "50 rows");
    });
}
