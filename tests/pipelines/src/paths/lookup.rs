//! Finding customers (`tests/e2e/lookup.test.mjs`): `GET /api-customers` by one key, and
//! `POST /api-customers-batch-lookup` by many. Lookups normalise emails and phones exactly as
//! syncs store them.

use crate::app::{App, Business, test};
use crate::steps::api::assert_error;
use crate::steps::customers::{batch_lookup, customer, stored, sync};
use edge::runtime::Method;
use serde_json::{Value, json};

/// A business (default country IE) with two customers, each as the API answers it.
struct WithCustomers {
    business: Business,
    john: Value,
    mary: Value,
    john_external_id: String,
}

impl WithCustomers {
    fn key(&self) -> &str {
        &self.business.key
    }

    fn john_id(&self) -> &str {
        self.john["id"].as_str().unwrap_or_default()
    }
}

async fn business_with_customers(app: &App) -> WithCustomers {
    let business = app.business_in("Acme", Some("IE")).await;
    let john_external_id = "CRM-john-7f3a".to_owned();
    let body = sync(
        app,
        &business.key,
        json!([
            {
                "name": "John Doe",
                "email": "john@x.com",
                "phone": "087 123 4567",
                "external_id": john_external_id,
                "tags": ["vip"],
                "custom_fields": { "tier": "gold" }
            },
            { "name": "Mary Major", "email": "mary@example.ie", "phone": "+353 86 000 1111", "external_id": 777 }
        ]),
    )
    .await;
    assert_eq!(body["success"], true, "{body}");
    let id = |n: usize| {
        body["results"]["details"][n]["customer_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let john = stored(app, &business.key, "id", &id(0)).await;
    let mary = stored(app, &business.key, "id", &id(1)).await;
    WithCustomers {
        business,
        john,
        mary,
        john_external_id,
    }
}

/// A UUID no customer has (version 4's shape), the `n`th of its kind.
fn unknown_uuid(n: usize) -> String {
    format!("5b0c1d2e-3f40-4a5b-8c6d-{n:012x}")
}

fn ids_of(body: &Value) -> Vec<Value> {
    body["customers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|customer| customer["id"].clone())
        .collect()
}

// GET /api-customers.

#[test]
fn a_customer_is_found_by_id_external_id_email_and_phone_always_the_same_and_complete() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        assert_eq!(ctx.john["email"], "john@x.com");
        assert_eq!(ctx.john["phone"], "+353871234567");
        for (param, value) in [
            ("id", ctx.john_id()),
            ("external_id", ctx.john_external_id.as_str()),
            ("email", "john@x.com"),
            ("phone", "+353871234567"),
        ] {
            let answer = customer(&app, ctx.key(), param, value).await;
            assert_eq!(answer.status, 200, "by {param}: {}", answer.text());
            assert_eq!(answer.json(), ctx.john, "by {param}: the whole customer");
            assert!(
                answer
                    .header("content-type")
                    .is_some_and(|kind| kind.contains("application/json")),
                "by {param}: JSON"
            );
        }
    });
}

#[test]
fn an_integer_external_id_is_found_by_its_digits() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let answer = customer(&app, ctx.key(), "external_id", "777").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json(), ctx.mary);
    });
}

#[test]
fn email_lookups_ignore_case_and_surrounding_spaces() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        // As encodeURIComponent writes them: a space is %20.
        for (query, email) in [
            ("JOHN%40X.COM", "JOHN@X.COM"),
            ("John%40X.com", "John@X.com"),
            ("%20%20john%40x.com%20%20", "  john@x.com  "),
        ] {
            let answer = app
                .api(
                    ctx.key(),
                    Method::Get,
                    &format!("/api-customers?email={query}"),
                    None,
                )
                .await;
            assert_eq!(answer.status, 200, "email={email:?}: {}", answer.text());
            assert_eq!(answer.json()["id"], ctx.john["id"], "email={email:?}");
        }
    });
}

#[test]
fn phone_lookups_normalise_the_number_whatever_its_encoding_in_the_query_string() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let queries = [
            (
                "phone=087%201234567",
                "a national number with the default country IE",
            ),
            ("phone=0871234567", "a national number without spaces"),
            ("phone=%2B353871234567", "an encoded +"),
            ("phone=+353871234567", "an unencoded + (arrives as a space)"),
            (
                "phone=+353%2087%20123%204567",
                "an unencoded + and encoded spaces",
            ),
            ("phone=00353871234567", "the 00 international prefix"),
            (
                "phone=%2B353%20(0)87%20123-4567",
                "the (0) trunk prefix and separators",
            ),
        ];
        for (query, description) in queries {
            let answer = app
                .api(ctx.key(), Method::Get, &format!("/api-customers?{query}"), None)
                .await;
            assert_eq!(answer.status, 200, "{description} ({query}): {}", answer.text());
            assert_eq!(answer.json()["id"], ctx.john["id"], "{description} ({query})");
        }
    });
}

#[test]
fn an_id_in_upper_case_finds_the_customer() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let answer = customer(&app, ctx.key(), "id", &ctx.john_id().to_uppercase()).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["id"], ctx.john["id"]);
    });
}

#[test]
fn a_key_that_names_no_customer_answers_404_not_found() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let differing_in_case = ctx.john_external_id.to_lowercase();
        assert_ne!(differing_in_case, ctx.john_external_id);
        let cases = [
            ("id", unknown_uuid(1), "an unknown id"),
            ("external_id", "nobody-1".to_owned(), "an unknown external_id"),
            ("email", "nobody@x.com".to_owned(), "an unknown email"),
            ("phone", "+353879999999".to_owned(), "an unknown phone"),
            (
                "external_id",
                differing_in_case,
                "an external_id differing in case",
            ),
        ];
        for (param, value, description) in cases {
            assert_error(
                &customer(&app, ctx.key(), param, &value).await,
                404,
                "not_found",
                description,
            );
        }
    });
}

#[test]
fn a_query_naming_the_customer_twice_or_blank_answers_422_like_every_request_that_names_a_customer_none_lists()
 {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        for (query, description) in [("", "no query"), ("?", "an empty query")] {
            let listed = app
                .api(ctx.key(), Method::Get, &format!("/api-customers{query}"), None)
                .await;
            let text: String = listed.text().chars().take(200).collect();
            assert_eq!(listed.status, 200, "{description} lists the customers: {text}");
            assert!(listed.json()["customers"].is_array(), "{description}");
        }
        let john = ctx.john_id();
        let cases = [
            ("?name=John".to_owned(), "an unsupported parameter only"),
            ("?email=".to_owned(), "a blank email"),
            (
                "?email=john%40x.com&phone=%2B353871234567".to_owned(),
                "email and phone",
            ),
            (format!("?id={john}&external_id=x"), "id and external_id"),
            (
                format!("?id={john}&email=john%40x.com&phone=1&external_id=2"),
                "all four",
            ),
        ];
        for (query, description) in cases {
            let answer = app
                .api(ctx.key(), Method::Get, &format!("/api-customers{query}"), None)
                .await;
            assert_error(&answer, 422, "validation_failed", description);
        }
    });
}

#[test]
fn a_malformed_id_email_or_phone_answers_422_with_the_parameter_as_field() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let cases = [
            ("id", "not-a-uuid", "an id that is not a UUID"),
            ("id", "' OR 1=1 --", "an injection attempt as id"),
            ("email", "not-an-email", "an email without @"),
            ("email", "' OR 1=1 --", "an injection attempt as email"),
            ("phone", "call me", "prose as a phone"),
        ];
        for (param, value, description) in cases {
            let answer = customer(&app, ctx.key(), param, value).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], param, "{description}: field");
        }
    });
}

#[test]
fn a_national_phone_number_cannot_be_looked_up_in_a_business_without_a_default_country() {
    test(|app| async move {
        let acme = app.business_in("Acme", None).await;
        sync(
            &app,
            &acme.key,
            json!([{ "name": "Intl", "phone": "+353871234567" }]),
        )
        .await;
        let answer = customer(&app, &acme.key, "phone", "087 123 4567").await;
        let error = assert_error(
            &answer,
            422,
            "validation_failed",
            "a national number without a default country",
        );
        assert_eq!(error["field"], "phone");
        let found = app
            .api(&acme.key, Method::Get, "/api-customers?phone=+353871234567", None)
            .await;
        assert_eq!(found.status, 200, "the international form is found");
    });
}

#[test]
fn a_method_the_runtime_has_no_name_for_answers_405_not_a_get() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let customers = format!("/api-customers?id={}", ctx.john_id());
        for path in [
            "/console/assets/console.css",
            "/console/assets/console.js",
            "/health",
            &customers,
        ] {
            for method in ["QUERY", "FOO"] {
                let request = App::request_to(path, Method::Get)
                    .with_unknown_method(method)
                    .with_header("x-api-key", ctx.key());
                let answer = app.send(request).await;
                assert_error(&answer, 405, "method_not_allowed", &format!("{method} {path}"));
                assert_eq!(
                    answer.header("allow"),
                    Some("GET"),
                    "{method} {path}: Allow header"
                );
            }
        }
    });
}

#[test]
fn the_wrong_method_answers_405_with_allow_get() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let path = format!("/api-customers?id={}", ctx.john_id());
        for (method, name) in [
            (Method::Post, "POST"),
            (Method::Put, "PUT"),
            (Method::Delete, "DELETE"),
            (Method::Patch, "PATCH"),
        ] {
            let answer = app.api(ctx.key(), method, &path, None).await;
            assert_error(&answer, 405, "method_not_allowed", name);
            assert_eq!(answer.header("allow"), Some("GET"), "{name}: Allow header");
        }
        let still = customer(&app, ctx.key(), "id", ctx.john_id()).await;
        assert_eq!(still.json(), ctx.john, "the customer is untouched");
    });
}

// POST /api-customers-batch-lookup.

#[test]
fn customers_are_found_by_any_mix_of_keys_each_once_and_the_misses_are_listed_as_given() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let unknown = unknown_uuid(2);
        let answer = app
            .api(
                ctx.key(),
                Method::Post,
                "/api-customers-batch-lookup",
                Some(json!({
                    "ids": [ctx.john_id(), unknown],
                    "external_ids": [ctx.john_external_id, 777, "NOPE-1"],
                    "emails": ["JOHN@X.COM", "Nobody@X.com"],
                    "phones": ["087 123 4567", "+353 86 000 1111", "087 000 0000"]
                })),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        let mut keys: Vec<&String> = body.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        keys.sort();
        assert_eq!(keys, ["customers", "invalid", "not_found"]);
        let found = body["customers"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            found.len(),
            2,
            "John (named four times) and Mary (twice), each once: {body}"
        );
        let by_id = |id: &Value| found.iter().find(|c| c["id"] == *id).cloned();
        assert_eq!(by_id(&ctx.john["id"]), Some(ctx.john.clone()));
        assert_eq!(by_id(&ctx.mary["id"]), Some(ctx.mary.clone()));
        assert_eq!(
            body["not_found"],
            json!({
                "ids": [unknown],
                "external_ids": ["NOPE-1"],
                "emails": ["Nobody@X.com"],
                "phones": ["087 000 0000"]
            })
        );
        assert_eq!(body["invalid"], json!([]));
    });
}

#[test]
fn keys_that_cannot_be_keys_are_listed_as_invalid_with_their_position_and_the_rest_still_answered() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let answer = app
            .api(
                ctx.key(),
                Method::Post,
                "/api-customers-batch-lookup",
                Some(json!({
                    "ids": ["not-a-uuid"],
                    "emails": ["john@x.com", "not-an-email", 7],
                    "phones": ["call me"]
                })),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        assert_eq!(ids_of(&body), [ctx.john["id"].clone()]);
        let invalid: Vec<Value> = body["invalid"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| json!([entry["field"], entry["value"]]))
            .collect();
        assert_eq!(
            invalid,
            [
                json!(["ids[0]", "not-a-uuid"]),
                json!(["emails[1]", "not-an-email"]),
                json!(["emails[2]", 7]),
                json!(["phones[0]", "call me"]),
            ]
        );
        for entry in body["invalid"].as_array().into_iter().flatten() {
            let mut keys: Vec<&String> = entry.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            keys.sort();
            assert_eq!(keys, ["field", "message", "value"]);
            assert!(
                entry["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{}: has a message",
                entry["field"]
            );
        }
        assert_eq!(
            body["not_found"],
            json!({ "ids": [], "external_ids": [], "emails": [], "phones": [] })
        );
    });
}

#[test]
fn a_lookup_with_nothing_to_look_up_answers_422_validation_failed() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let cases = [
            (json!({}), "no lists"),
            (
                json!({ "ids": [], "external_ids": [], "emails": [], "phones": [] }),
                "four empty lists",
            ),
            (json!({ "names": ["John"] }), "only an unsupported list"),
        ];
        for (body, description) in cases {
            let answer = app
                .api(ctx.key(), Method::Post, "/api-customers-batch-lookup", Some(body))
                .await;
            assert_error(&answer, 422, "validation_failed", description);
        }
    });
}

#[test]
fn more_than_1000_keys_in_all_answers_422_batch_too_large_1000_are_answered() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let too_many = [
            (
                json!({ "external_ids": (0..1001).map(|n| format!("K-{n}")).collect::<Vec<_>>() }),
                "1001 external ids",
            ),
            (
                json!({
                    "ids": (0..250).map(unknown_uuid).collect::<Vec<_>>(),
                    "external_ids": (0..250).map(|n| format!("K-{n}")).collect::<Vec<_>>(),
                    "emails": (0..250).map(|n| format!("k{n}@example.com")).collect::<Vec<_>>(),
                    "phones": (0..251).map(|n| format!("+3538700{n:05}")).collect::<Vec<_>>()
                }),
                "1001 keys over four lists",
            ),
        ];
        for (body, description) in too_many {
            let answer = app
                .api(ctx.key(), Method::Post, "/api-customers-batch-lookup", Some(body))
                .await;
            assert_error(&answer, 422, "batch_too_large", description);
        }
        let mut emails: Vec<String> = (0..999).map(|n| format!("miss{n}@example.com")).collect();
        emails.push("john@x.com".to_owned());
        let body = batch_lookup(&app, ctx.key(), json!({ "emails": emails })).await;
        assert_eq!(ids_of(&body), [ctx.john["id"].clone()]);
        assert_eq!(body["not_found"]["emails"].as_array().map(Vec::len), Some(999));
    });
}

#[test]
fn a_lookup_whose_lists_are_not_lists_answers_422_validation_failed() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let cases = [
            (json!({ "emails": "john@x.com" }), "emails as a string"),
            (json!({ "ids": { "a": 1 } }), "ids as an object"),
            (json!({ "phones": null }), "phones as null"),
        ];
        for (body, description) in cases {
            let answer = app
                .api(ctx.key(), Method::Post, "/api-customers-batch-lookup", Some(body))
                .await;
            assert_error(&answer, 422, "validation_failed", description);
        }
    });
}

#[test]
fn a_national_phone_in_a_batch_lookup_uses_the_business_default_country() {
    test(|app| async move {
        let ctx = business_with_customers(&app).await;
        let body = batch_lookup(&app, ctx.key(), json!({ "phones": ["0871234567"] })).await;
        assert_eq!(ids_of(&body), [ctx.john["id"].clone()]);
    });
}
