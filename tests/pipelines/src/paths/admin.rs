//! The gateway's own answers and the admin API (the end-to-end suite's `admin.test.mjs`):
//! businesses, API keys, and the admin token that guards them.

use crate::app::{Answer, App, test};
use crate::steps::api::{
    UNKNOWN_ID, assert_error, first_key_id, is_rfc3339_utc, is_uuid, rfc3339_ms, wrong_admin_credentials,
};
use crate::steps::text;
use crate::steps::unique;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The fields of a key as listed (and as revoked), in order.
const LISTED_KEY: [&str; 9] = [
    "business_id",
    "created_at",
    "id",
    "last_used_address",
    "last_used_at",
    "last_used_endpoint",
    "name",
    "prefix",
    "revoked_at",
];

/// `cek_` and 48 lower-case hex digits.
fn is_key(text: &str) -> bool {
    text.strip_prefix("cek_").is_some_and(|secret| {
        secret.len() == 48
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn keys_of(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, _)| key.as_str())
        .collect();
    keys.sort_unstable();
    keys
}

/// `POST /admin/businesses`.
async fn create_business(app: &App, body: Value) -> Answer {
    app.admin(Method::Post, "/admin/businesses", Some(body)).await
}

async fn keys_listed(app: &App, business_id: &str) -> Value {
    app.admin(
        Method::Get,
        &format!("/admin/businesses/{business_id}/api-keys"),
        None,
    )
    .await
    .expect(200)
    .json()
}

#[test]
fn get_health_answers_status_ok() {
    test(|app| async move {
        let health = app
            .request(Method::Get, "/health", &[], Vec::new())
            .await
            .expect(200);
        assert_eq!(health.json(), json!({ "status": "ok" }));
    });
}

#[test]
fn the_guides_base_url_ending_in_functions_v1_reaches_the_same_api() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let synced = app
            .api(
                &acme.key,
                Method::Post,
                "/functions/v1/api-customers-sync",
                Some(json!({ "customers": [{ "external_id": "SF-1", "name": "Ann", "email": "ann@example.com" }] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            synced["results"]["created"], 1,
            "the body reached the function: {synced}"
        );
        let listed = app
            .api(
                &acme.key,
                Method::Get,
                "/functions/v1/api-customers?limit=5",
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            listed["customers"][0]["external_id"], "SF-1",
            "the query too: {listed}"
        );
        let unkeyed = app
            .request(Method::Get, "/functions/v1/api-customers", &[], Vec::new())
            .await;
        assert_error(&unkeyed, 401, "unauthorized", "the same key check");
        let health = app
            .request(Method::Get, "/functions/v1/health", &[], Vec::new())
            .await
            .expect(200);
        assert_eq!(health.json(), json!({ "status": "ok" }));
        for (path, description) in [
            ("/functions/v10/api-customers", "another prefix"),
            ("/functions/api-customers", "half the prefix"),
            ("/functions/v1/functions/v1/api-customers", "the prefix twice"),
        ] {
            let answer = app.api(&acme.key, Method::Get, path, None).await;
            assert_error(&answer, 404, "not_found", description);
        }
    });
}

#[test]
fn a_path_that_is_no_endpoint_answers_404_not_found() {
    test(|app| async move {
        let paths = [
            ("/", "the root"),
            ("/nope", "an unknown path"),
            ("/api-customers-syncx", "a known path with a suffix"),
            ("/api-customer", "a known path missing a letter"),
            ("/api-customers-sync/extra", "a known path with an extra segment"),
            ("/admin", "the admin prefix alone"),
            ("/API-CUSTOMERS", "a known path in upper case"),
        ];
        for (path, description) in paths {
            let answer = app.request(Method::Get, path, &[], Vec::new()).await;
            assert_error(&answer, 404, "not_found", description);
        }
    });
}

#[test]
fn creating_a_business_returns_its_id_name_upper_cased_default_country_and_creation_time() {
    test(|app| async move {
        let before = app.stack.now_ms();
        let name = unique("Acme");
        let created = create_business(&app, json!({ "name": name, "default_country": "ie" }))
            .await
            .expect(201)
            .json();
        assert_eq!(
            keys_of(&created),
            [
                "created_at",
                "default_country",
                "embed_frame_ancestors",
                "id",
                "name",
                "new_conversation_after_hours",
                "rate_limit"
            ]
        );
        assert_eq!(
            created["embed_frame_ancestors"],
            json!([]),
            "no site may frame the embedded inbox until one is allowed"
        );
        assert_eq!(
            created["rate_limit"],
            json!({ "per_minute": 600, "burst": 100 }),
            "the default limit of its keys"
        );
        assert!(is_uuid(text(&created["id"])), "{created}");
        assert_eq!(created["name"], name.as_str());
        assert_eq!(created["default_country"], "IE");
        assert!(is_rfc3339_utc(text(&created["created_at"])), "{created}");
        let at = rfc3339_ms(text(&created["created_at"])).unwrap_or_default();
        assert!(
            (at - before).abs() < 5 * 60_000,
            "created_at {} is about now",
            created["created_at"]
        );
    });
}

#[test]
fn a_business_created_without_a_default_country_has_default_country_null() {
    test(|app| async move {
        let created = create_business(&app, json!({ "name": "No Country Ltd" }))
            .await
            .expect(201)
            .json();
        assert_eq!(created["default_country"], Value::Null);
        assert_eq!(created["name"], "No Country Ltd");
    });
}

#[test]
fn a_created_business_can_be_read_back_unchanged_and_each_business_gets_its_own_id() {
    test(|app| async move {
        let body = json!({ "name": "Acme", "default_country": "GB" });
        let first = create_business(&app, body.clone()).await.expect(201).json();
        let second = create_business(&app, body).await.expect(201).json();
        assert_ne!(
            first["id"], second["id"],
            "two businesses with the same name are two businesses"
        );
        let read = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}", text(&first["id"])),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(read, first);
    });
}

#[test]
fn a_name_of_exactly_200_characters_is_accepted() {
    test(|app| async move {
        let name = "N".repeat(200);
        let created = create_business(&app, json!({ "name": name }))
            .await
            .expect(201)
            .json();
        assert_eq!(created["name"], name.as_str());
    });
}

#[test]
fn a_business_with_a_missing_blank_or_too_long_name_or_an_unknown_country_is_refused_with_the_field_at_fault()
{
    test(|app| async move {
        let cases = [
            (json!({}), "name", "no name at all"),
            (json!({ "name": "" }), "name", "an empty name"),
            (json!({ "name": "    " }), "name", "a blank name"),
            (json!({ "name": "N".repeat(201) }), "name", "a 201-character name"),
            (
                json!({ "name": "Acme", "default_country": "XX" }),
                "default_country",
                "an unassigned country code",
            ),
            (
                json!({ "name": "Acme", "default_country": "IRL" }),
                "default_country",
                "an alpha-3 country code",
            ),
            (
                json!({ "name": "Acme", "default_country": "Ireland" }),
                "default_country",
                "a country name",
            ),
            (
                json!({ "name": "Acme", "default_country": "I" }),
                "default_country",
                "a single letter",
            ),
            (
                json!({ "name": "Acme", "default_country": "35" }),
                "default_country",
                "digits",
            ),
        ];
        for (body, field, description) in cases {
            let answer = create_business(&app, body).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], field, "{description}: field");
        }
    });
}

#[test]
fn a_default_country_that_is_not_a_string_is_refused_with_field_default_country() {
    test(|app| async move {
        let cases = [
            (json!({ "name": "Acme", "default_country": 353 }), "a number"),
            (json!({ "name": "Acme", "default_country": ["IE"] }), "an array"),
        ];
        for (body, description) in cases {
            let answer = create_business(&app, body).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], "default_country", "{description}: field");
        }
    });
}

#[test]
fn a_business_body_that_is_not_json_is_refused_with_400_malformed_request() {
    test(|app| async move {
        let bearer = format!("Bearer {}", app.admin_token());
        let cases = [
            ("{\"name\": \"Acme\"", "truncated JSON"),
            ("name=Acme", "a form body"),
            ("", "an empty body"),
        ];
        for (body, description) in cases {
            let answer = app
                .request(
                    Method::Post,
                    "/admin/businesses",
                    &[("authorization", &bearer), ("content-type", "application/json")],
                    body.as_bytes().to_vec(),
                )
                .await;
            assert_error(&answer, 400, "malformed_request", description);
        }
    });
}

#[test]
fn an_unknown_or_malformed_business_id_answers_404() {
    test(|app| async move {
        let cases = [
            (UNKNOWN_ID, "a well-formed id that names no business"),
            ("not-a-uuid", "an id that is not a UUID"),
            ("'%20OR%201%3D1%20--", "an injection attempt"),
        ];
        for (id, description) in cases {
            let answer = app
                .admin(Method::Get, &format!("/admin/businesses/{id}"), None)
                .await;
            assert_error(&answer, 404, "not_found", description);
        }
    });
}

#[test]
fn issuing_a_key_returns_it_once_as_cek_and_48_hex_digits_with_its_12_character_prefix() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let issued = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/api-keys", business.id),
                Some(json!({ "name": "Zapier" })),
            )
            .await
            .expect(201)
            .json();
        assert_eq!(
            keys_of(&issued),
            [
                "business_id",
                "created_at",
                "id",
                "key",
                "last_used_address",
                "last_used_at",
                "last_used_endpoint",
                "name",
                "prefix",
                "revoked_at"
            ]
        );
        assert!(is_uuid(text(&issued["id"])), "{issued}");
        assert_eq!(issued["business_id"], business.id.as_str());
        assert_eq!(issued["name"], "Zapier");
        let key = text(&issued["key"]);
        assert!(is_key(key), "{key}");
        assert_eq!(issued["prefix"], &key[..12]);
        assert!(is_rfc3339_utc(text(&issued["created_at"])), "{issued}");
        assert_eq!(issued["revoked_at"], Value::Null);
    });
}

#[test]
fn a_key_can_be_issued_without_a_body_and_then_has_no_name() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let issued = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/api-keys", business.id),
                None,
            )
            .await
            .expect(201)
            .json();
        assert_eq!(issued["name"], Value::Null);
        assert!(is_key(text(&issued["key"])), "{issued}");
    });
}

#[test]
fn every_issued_key_is_different() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let mut keys = BTreeSet::new();
        for _ in 0..5 {
            let issued = app
                .admin(
                    Method::Post,
                    &format!("/admin/businesses/{}/api-keys", business.id),
                    Some(json!({})),
                )
                .await
                .expect(201)
                .json();
            keys.insert(text(&issued["key"]).to_owned());
        }
        assert_eq!(keys.len(), 5);
    });
}

#[test]
fn issuing_a_key_for_an_unknown_or_malformed_business_answers_404() {
    test(|app| async move {
        for (id, description) in [
            (UNKNOWN_ID, "an unknown business"),
            ("not-a-uuid", "a malformed business id"),
        ] {
            let path = format!("/admin/businesses/{id}/api-keys");
            let issued = app.admin(Method::Post, &path, Some(json!({ "name": "x" }))).await;
            assert_error(&issued, 404, "not_found", description);
            let listed = app.admin(Method::Get, &path, None).await;
            assert_error(
                &listed,
                404,
                "not_found",
                &format!("listing keys of {description}"),
            );
        }
    });
}

#[test]
fn listing_a_businesss_keys_shows_each_of_them_by_prefix_and_never_the_key_itself() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        // Keys are listed in the order they were issued (by time, to the millisecond).
        app.stack.advance(Duration::from_secs(1));
        let second = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/api-keys", business.id),
                Some(json!({ "name": "second" })),
            )
            .await
            .expect(201)
            .json();
        let other = app.business("Other").await;
        let other_key_id = first_key_id(&app, &other.id).await;

        let listed = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}/api-keys", business.id),
                None,
            )
            .await
            .expect(200);
        let body = listed.json();
        assert_eq!(keys_of(&body), ["api_keys"]);
        let keys = body["api_keys"].as_array().cloned().unwrap_or_default();
        assert_eq!(keys.len(), 2, "only this business's two keys: {body}");
        let (first, next) = (&keys[0], &keys[1]);
        assert_eq!(keys_of(first), LISTED_KEY);
        assert_eq!(first["id"], key_id.as_str());
        assert_eq!(
            first["name"], "native",
            "the name App::business issues its key under"
        );
        assert_eq!(first["prefix"], &business.key[..12]);
        assert_eq!(first["business_id"], business.id.as_str());
        assert_eq!(first["revoked_at"], Value::Null);
        assert_eq!(next["id"], second["id"]);
        assert_eq!(next["prefix"], second["prefix"]);

        let second_key = text(&second["key"]);
        for secret in [
            business.key.as_str(),
            second_key,
            &business.key[12..],
            &second_key[12..],
        ] {
            assert!(
                !listed.text().contains(secret),
                "the listing must not contain a key or its secret part"
            );
        }
        assert!(
            !listed.text().contains(&other_key_id),
            "another business's key is not listed"
        );
    });
}

#[test]
fn a_business_without_keys_lists_none() {
    test(|app| async move {
        let created = create_business(&app, json!({ "name": unique("Keyless") }))
            .await
            .expect(201)
            .json();
        assert_eq!(
            keys_listed(&app, text(&created["id"])).await,
            json!({ "api_keys": [] })
        );
    });
}

#[test]
fn revoking_a_key_sets_revoked_at_and_revoking_it_again_answers_the_same_revocation() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        let path = format!("/admin/api-keys/{key_id}");
        let revoked = app.admin(Method::Delete, &path, None).await.expect(200);
        let body = revoked.json();
        assert_eq!(keys_of(&body), LISTED_KEY);
        assert_eq!(body["id"], key_id.as_str());
        assert_eq!(body["business_id"], business.id.as_str());
        assert_eq!(body["prefix"], &business.key[..12]);
        assert!(is_rfc3339_utc(text(&body["revoked_at"])), "{body}");
        assert!(
            !revoked.text().contains(&business.key),
            "the revocation does not show the key"
        );

        let listed = keys_listed(&app, &business.id).await;
        assert_eq!(
            listed["api_keys"][0]["revoked_at"], body["revoked_at"],
            "the listing shows the revocation"
        );

        let again = app.admin(Method::Delete, &path, None).await.expect(200);
        assert_eq!(again.json(), body, "revoking twice changes nothing");
    });
}

#[test]
fn revoking_an_unknown_or_malformed_key_id_answers_404() {
    test(|app| async move {
        for (id, description) in [
            (UNKNOWN_ID, "an unknown key id"),
            ("not-a-uuid", "a malformed key id"),
        ] {
            let answer = app
                .admin(Method::Delete, &format!("/admin/api-keys/{id}"), None)
                .await;
            assert_error(&answer, 404, "not_found", description);
        }
    });
}

#[test]
fn a_key_name_longer_than_200_characters_is_refused() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let answer = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/api-keys", business.id),
                Some(json!({ "name": "k".repeat(201) })),
            )
            .await;
        let error = assert_error(&answer, 422, "validation_failed", "a 201-character key name");
        assert_eq!(error["field"], "name");
    });
}

#[test]
fn every_admin_endpoint_refuses_a_missing_or_wrong_admin_token_with_401() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        let token = app.admin_token();
        let id = &business.id;
        let endpoints = [
            (
                Method::Post,
                "/admin/businesses".to_owned(),
                Some(json!({ "name": "Sneaky" })),
            ),
            (Method::Get, format!("/admin/businesses/{id}"), None),
            (
                Method::Post,
                format!("/admin/businesses/{id}/api-keys"),
                Some(json!({ "name": "sneaky" })),
            ),
            (Method::Get, format!("/admin/businesses/{id}/api-keys"), None),
            (Method::Delete, format!("/admin/api-keys/{key_id}"), None),
            (Method::Post, "/admin/maintenance/sweep".to_owned(), None),
        ];
        let credentials = wrong_admin_credentials(&token);
        for (method, path, body) in endpoints {
            for (headers, description) in &credentials {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(name, value)| (*name, value.as_str()))
                    .collect();
                let answer = app.json(method.clone(), &path, &headers, body.clone()).await;
                assert_error(
                    &answer,
                    401,
                    "unauthorized",
                    &format!("{method:?} {path} with {description}"),
                );
            }
        }
        let still = keys_listed(&app, id).await;
        assert_eq!(
            still["api_keys"].as_array().map(Vec::len),
            Some(1),
            "no key was issued by the refused requests"
        );
        assert_eq!(
            still["api_keys"][0]["revoked_at"],
            Value::Null,
            "the key was not revoked by a refused request"
        );
    });
}

#[test]
fn a_wrong_method_on_a_known_admin_path_answers_405_with_an_allow_header() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        let id = &business.id;
        let cases = [
            (Method::Get, "/admin/businesses".to_owned(), "POST"),
            (Method::Delete, "/admin/businesses".to_owned(), "POST"),
            (Method::Put, format!("/admin/businesses/{id}"), "GET, PATCH"),
            (Method::Delete, format!("/admin/businesses/{id}"), "GET, PATCH"),
            (
                Method::Patch,
                format!("/admin/businesses/{id}/api-keys"),
                "GET, POST",
            ),
            (
                Method::Delete,
                format!("/admin/businesses/{id}/api-keys"),
                "GET, POST",
            ),
            (Method::Get, format!("/admin/api-keys/{key_id}"), "DELETE"),
            (Method::Post, format!("/admin/api-keys/{key_id}"), "DELETE"),
        ];
        for (method, path, allow) in cases {
            let answer = app.admin(method.clone(), &path, None).await;
            let description = format!("{method:?} {path}");
            assert_error(&answer, 405, "method_not_allowed", &description);
            assert_eq!(answer.header("allow"), Some(allow), "{description}: Allow header");
        }
        let listed = keys_listed(&app, id).await;
        assert_eq!(
            listed["api_keys"][0]["revoked_at"],
            Value::Null,
            "a refused method revoked nothing"
        );
    });
}

#[test]
fn an_unknown_admin_path_answers_404() {
    test(|app| async move {
        for path in ["/admin/users", "/admin/businesses/x/y/z", "/admin/api-keys"] {
            let answer = app.admin(Method::Get, path, None).await;
            assert_error(&answer, 404, "not_found", path);
        }
    });
}
