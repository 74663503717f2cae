//! API keys at work (the end-to-end suite's `auth.test.mjs`): who may call the customer API, how
//! fast a revocation bites, that unknown keys never reach the shared key cache, and that one
//! business never sees or changes another's customers.

use crate::steps::api::{assert_error, first_key_id};
use crate::steps::customers::customer as lookup;
use crate::steps::customers::sync;
use crate::steps::text;
use crate::steps::unique;

use crate::app::{App, Business, test};
use crate::partners::unique_hex;
use edge::runtime::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// One harmless, valid request to each customer endpoint.
fn every_endpoint(tag: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::Get,
            format!("/api-customers?email={tag}%40example.com"),
            None,
        ),
        (
            Method::Post,
            "/api-customers-sync".to_owned(),
            Some(json!({ "customers": [{ "name": "Probe", "email": format!("{tag}-sync@example.com") }] })),
        ),
        (
            Method::Post,
            "/api-customers-bulk-create".to_owned(),
            Some(json!({ "customers": [{ "name": "Probe", "email": format!("{tag}-bulk@example.com") }] })),
        ),
        (
            Method::Post,
            "/api-customers-batch-lookup".to_owned(),
            Some(json!({ "emails": [format!("{tag}@example.com")] })),
        ),
    ]
}

/// A key of the right shape that was never issued.
fn never_issued_key() -> String {
    format!("cek_{}", unique_hex(48))
}

/// The key under which the shared cache (KV `AUTH_CACHE`) would hold `key`: its SHA-256 in hex,
/// computed here.
fn cache_entry(key: &str) -> String {
    format!("api-key:v2:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A request with exactly these headers (`x-api-key` among them or not).
async fn call(
    app: &App,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> crate::Answer {
    app.json(method, path, headers, body).await
}

/// Checks that the refused requests of `tag` stored no customer.
async fn assert_nothing_stored_for(app: &App, key: &str, tag: &str) {
    for email in [
        format!("{tag}-sync@example.com"),
        format!("{tag}-bulk@example.com"),
    ] {
        let answer = lookup(app, key, "email", &email).await;
        assert_eq!(
            answer.status,
            404,
            "a refused request stored nothing ({email}): {}",
            answer.text()
        );
    }
}

#[test]
fn every_customer_endpoint_refuses_a_request_without_x_api_key_with_401() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let tag = unique("nokey");
        for (method, path, body) in every_endpoint(&tag) {
            let answer = call(&app, method.clone(), &path, body, &[]).await;
            assert_error(
                &answer,
                401,
                "unauthorized",
                &format!("{method:?} {path} without a key"),
            );
        }
        assert_nothing_stored_for(&app, &business.key, &tag).await;
    });
}

#[test]
fn every_customer_endpoint_refuses_malformed_unknown_and_misplaced_keys_with_401() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key = business.key.clone();
        let tag = unique("badkey");
        let last = if key.ends_with('0') { '1' } else { '0' };
        let bad_keys = [
            (String::new(), "an empty key"),
            ("   ".to_owned(), "a blank key"),
            ("cek_".to_owned(), "the scheme alone"),
            (
                key[..key.len() - 1].to_owned(),
                "a real key missing its last character",
            ),
            (format!("{key}0"), "a real key with an extra character"),
            (
                format!("{}{last}", &key[..key.len() - 1]),
                "a real key with its last digit changed",
            ),
            (key.to_uppercase(), "a real key in upper case"),
            (key.replace("cek_", "sk_"), "a real secret under another scheme"),
            (never_issued_key(), "a well-formed key that was never issued"),
            (format!("Bearer {key}"), "a real key with a Bearer prefix"),
            (app.admin_token(), "the admin token"),
            ("' OR 1=1 --".to_owned(), "an injection attempt"),
            ("x".repeat(10_000), "a very long key"),
        ];
        for (method, path, body) in every_endpoint(&tag) {
            for (bad, description) in &bad_keys {
                let answer = call(&app, method.clone(), &path, body.clone(), &[("x-api-key", bad)]).await;
                assert_error(
                    &answer,
                    401,
                    "unauthorized",
                    &format!("{method:?} {path} with {description}"),
                );
            }
            let bearer = format!("Bearer {key}");
            let in_authorization =
                call(&app, method.clone(), &path, body, &[("authorization", &bearer)]).await;
            assert_error(
                &in_authorization,
                401,
                "unauthorized",
                &format!("{method:?} {path} with the key in Authorization"),
            );
        }
        assert_nothing_stored_for(&app, &key, &tag).await;
    });
}

#[test]
fn a_valid_key_is_accepted_by_every_customer_endpoint() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let tag = unique("goodkey");
        let mut statuses = Vec::new();
        for (method, path, body) in every_endpoint(&tag) {
            statuses.push(app.api(&business.key, method, &path, body).await.status);
        }
        assert_eq!(
            statuses,
            [404, 200, 200, 200],
            "lookup of an unknown email is 404, the rest succeed"
        );
    });
}

#[test]
fn a_revoked_key_is_refused_at_once_on_every_endpoint_even_right_after_it_was_used() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        // Used on every endpoint first, so that any cache of it is warm.
        for (method, path, body) in every_endpoint(&unique("revoked")) {
            let answer = app.api(&business.key, method.clone(), &path, body).await;
            assert_ne!(
                answer.status, 401,
                "{method:?} {path} works before the revocation"
            );
        }
        app.admin(Method::Delete, &format!("/admin/api-keys/{key_id}"), None)
            .await
            .expect(200);

        let late = unique("late");
        for (method, path, body) in every_endpoint(&late) {
            let answer = app.api(&business.key, method.clone(), &path, body).await;
            assert_error(
                &answer,
                401,
                "unauthorized",
                &format!("{method:?} {path} with the revoked key"),
            );
        }
        let other = issue_key(&app, &business.id, "check").await;
        assert_nothing_stored_for(&app, &other, &late).await;
    });
}

/// A new key of the business; the key.
async fn issue_key(app: &App, business_id: &str, name: &str) -> String {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{business_id}/api-keys"),
        Some(json!({ "name": name })),
    )
    .await
    .expect(201)
    .json()["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn another_key_of_the_same_business_keeps_working_after_one_is_revoked_and_sees_the_same_customers() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        let second = issue_key(&app, &business.id, "second").await;
        let email = format!("{}@example.com", unique("shared"));
        let created = sync(
            &app,
            &business.key,
            json!([{ "name": "Shared Customer", "email": email }]),
        )
        .await;
        let customer_id = created["results"]["details"][0]["customer_id"].clone();

        app.admin(Method::Delete, &format!("/admin/api-keys/{key_id}"), None)
            .await
            .expect(200);
        assert_error(
            &lookup(&app, &business.key, "email", &email).await,
            401,
            "unauthorized",
            "the revoked key",
        );

        let found = lookup(&app, &second, "email", &email).await.expect(200).json();
        assert_eq!(found["id"], customer_id);
        let updated = sync(
            &app,
            &second,
            json!([{ "name": "Shared Customer Renamed", "email": email }]),
        )
        .await;
        assert_eq!(updated["results"]["details"][0]["action"], "updated");
        assert_eq!(updated["results"]["details"][0]["customer_id"], customer_id);
    });
}

#[test]
fn unknown_keys_are_refused_without_filling_the_shared_key_cache() {
    test(|app| async move {
        let keys: Vec<String> = (0..20).map(|_| never_issued_key()).collect();
        for key in &keys {
            let answer = app
                .api(
                    key,
                    Method::Post,
                    "/api-customers-batch-lookup",
                    Some(json!({ "emails": ["a@example.com"] })),
                )
                .await;
            assert_error(&answer, 401, "unauthorized", "an unknown key");
            let again = app
                .api(
                    key,
                    Method::Get,
                    "/api/download-media?id=00000000-0000-4000-8000-000000000000",
                    None,
                )
                .await;
            assert_error(
                &again,
                401,
                "unauthorized",
                "an unknown key on download-media, before any attachment is looked up",
            );
        }
        let filled: Vec<&String> = keys
            .iter()
            .filter(|key| app.stack.kv_read("AUTH_CACHE", &cache_entry(key)).is_some())
            .collect();
        assert!(filled.is_empty(), "no unknown key has a KV entry: {filled:?}");

        let Business { key, .. } = app.business("Acme").await;
        app.api(
            &key,
            Method::Post,
            "/api-customers-batch-lookup",
            Some(json!({ "emails": ["a@example.com"] })),
        )
        .await
        .expect(200);
        assert!(
            app.stack.kv_read("AUTH_CACHE", &cache_entry(&key)).is_some(),
            "a known key is cached"
        );
    });
}

#[test]
fn a_key_issued_after_another_was_revoked_works_at_once() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let key_id = first_key_id(&app, &business.id).await;
        app.admin(Method::Delete, &format!("/admin/api-keys/{key_id}"), None)
            .await
            .expect(200);
        let fresh = issue_key(&app, &business.id, "fresh").await;
        app.api(
            &fresh,
            Method::Post,
            "/api-customers-batch-lookup",
            Some(json!({ "emails": ["a@example.com"] })),
        )
        .await
        .expect(200);
    });
}

/// Two businesses in Ireland, A with one customer: A, B, the customer as synced and as stored.
async fn two_businesses_with_a_customer_in_a(app: &App) -> (Business, Business, Value, Value) {
    let a = app.business("A").await;
    let b = app.business("B").await;
    let customer = json!({
        "name": "Alice of A",
        "email": format!("{}@example.com", unique("alice")),
        "phone": "087 123 4567",
        "external_id": unique("CRM"),
        "notes": "belongs to A",
        "tags": ["a-only"],
        "custom_fields": { "owner": "A" }
    });
    let result = sync(app, &a.key, json!([customer])).await;
    assert_eq!(result["results"]["details"][0]["action"], "created");
    let email = customer["email"].as_str().unwrap_or_default();
    let stored = lookup(app, &a.key, "email", email).await.expect(200).json();
    (a, b, customer, stored)
}

#[test]
fn business_b_cannot_read_business_as_customer_by_id_external_id_email_or_phone() {
    test(|app| async move {
        let (_, b, customer, stored) = two_businesses_with_a_customer_in_a(&app).await;
        let lookups = [
            ("id", text(&stored["id"])),
            ("external_id", text(&customer["external_id"])),
            ("email", text(&customer["email"])),
            ("phone", "+353871234567"),
            ("phone", "087 123 4567"),
        ];
        for (param, value) in lookups {
            let answer = lookup(&app, &b.key, param, value).await;
            let description = format!("B looking up A's customer by {param}={value}");
            assert_error(&answer, 404, "not_found", &description);
            assert!(
                !answer.text().contains("Alice of A"),
                "{description}: does not leak A's customer"
            );
            if param != "id" {
                assert!(
                    !answer.text().contains(text(&stored["id"])),
                    "{description}: does not leak A's customer id"
                );
            }
        }
    });
}

#[test]
fn business_bs_batch_lookup_finds_none_of_business_as_customers() {
    test(|app| async move {
        let (_, b, customer, stored) = two_businesses_with_a_customer_in_a(&app).await;
        let keys = json!({
            "ids": [stored["id"]],
            "external_ids": [customer["external_id"]],
            "emails": [customer["email"]],
            "phones": ["+353871234567"]
        });
        let found = app
            .api(
                &b.key,
                Method::Post,
                "/api-customers-batch-lookup",
                Some(keys.clone()),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(found["customers"], json!([]));
        assert_eq!(found["not_found"], keys);
        assert_eq!(found["invalid"], json!([]));
    });
}

#[test]
fn business_b_syncing_as_external_id_email_and_phone_creates_bs_own_customer_and_leaves_as_untouched() {
    test(|app| async move {
        let (a, b, customer, stored) = two_businesses_with_a_customer_in_a(&app).await;
        let takeover = json!({
            "name": "Mallory of B",
            "email": customer["email"],
            "phone": customer["phone"],
            "external_id": customer["external_id"],
            "notes": "overwritten?",
            "tags": ["b"],
            "custom_fields": { "owner": "B" }
        });
        let result = sync(&app, &b.key, json!([takeover])).await;
        let detail = &result["results"]["details"][0];
        assert_eq!(detail["action"], "created", "B gets a customer of its own");
        assert_eq!(detail["matched_by"], Value::Null);
        assert_ne!(detail["customer_id"], stored["id"]);

        let in_a = customer_of(&app, &a.key, "id", text(&stored["id"])).await;
        assert_eq!(in_a, stored, "A's customer is exactly as it was");
        let in_b = customer_of(&app, &b.key, "external_id", text(&customer["external_id"])).await;
        assert_eq!(in_b["id"], detail["customer_id"]);
        assert_eq!(in_b["name"], "Mallory of B");

        // Each business keeps seeing only its own customer under the shared keys.
        let a_by_email = customer_of(&app, &a.key, "email", text(&customer["email"])).await;
        assert_eq!(a_by_email["id"], stored["id"]);
        assert_error(
            &lookup(&app, &b.key, "id", text(&stored["id"])).await,
            404,
            "not_found",
            "B by A's id",
        );
        assert_error(
            &lookup(&app, &a.key, "id", text(&detail["customer_id"])).await,
            404,
            "not_found",
            "A by B's id",
        );
    });
}

async fn customer_of(app: &App, key: &str, param: &str, value: &str) -> Value {
    lookup(app, key, param, value).await.expect(200).json()
}

#[test]
fn business_b_bulk_creating_as_external_id_creates_bs_own_customer_and_leaves_as_untouched() {
    test(|app| async move {
        let (a, b, customer, stored) = two_businesses_with_a_customer_in_a(&app).await;
        let result = app
            .api(
                &b.key,
                Method::Post,
                "/api-customers-bulk-create",
                Some(json!({ "customers": [{
                    "name": "Mallory of B",
                    "email": customer["email"],
                    "external_id": customer["external_id"],
                    "notes": "mine now"
                }] })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(result["created"], 1, "{result}");
        assert_eq!(result["updated"], 0);
        assert_ne!(result["customers"][0]["customer_id"], stored["id"]);
        let in_a = customer_of(&app, &a.key, "id", text(&stored["id"])).await;
        assert_eq!(in_a, stored, "A's customer is exactly as it was");
    });
}

#[test]
fn a_key_revoked_where_the_shared_cache_was_not_told_stops_working_within_a_minute() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let lookup_once = || async {
            app.api(
                &business.key,
                Method::Post,
                "/api-customers-batch-lookup",
                Some(json!({ "emails": ["a@example.com"] })),
            )
            .await
        };
        lookup_once().await.expect(200);
        assert!(
            app.stack
                .kv_read("AUTH_CACHE", &cache_entry(&business.key))
                .is_some(),
            "the key's answer is cached"
        );
        // Revoked in D1 by another location, whose deletion of the cache entry this one's KV has
        // not seen yet (KV's edge caches keep a value up to a minute).
        let revoked = crate::steps::store::execute(
            &app,
            "UPDATE api_keys SET revoked_at = '2026-11-26T12:00:00Z' WHERE business_id = ?1",
            &[&business.id],
        );
        assert_eq!(revoked, 1);
        app.stack.advance(Duration::from_secs(30));
        lookup_once().await.expect(200);
        app.stack.advance(Duration::from_secs(31));
        assert_error(
            &lookup_once().await,
            401,
            "unauthorized",
            "a minute after the cached answer was read from D1",
        );
    });
}

#[test]
fn a_client_rotating_through_the_64s_of_its_ipv6_site_is_held_to_the_sites_budget() {
    test(|app| async move {
        let failing = |address: String| {
            let app = &app;
            async move {
                let key = never_issued_key();
                app.request(
                    Method::Get,
                    "/api-webhooks",
                    &[("x-api-key", &key), ("cf-connecting-ip", &address)],
                    Vec::new(),
                )
                .await
            }
        };
        // Each /64 stays under its own budget of 120; the site's 1,920 runs out on the 20th.
        let mut refused_at = None;
        'rotating: for block in 0..30u32 {
            for _ in 0..100 {
                let answer = failing(format!("2001:db8:7:{block:x}::1")).await;
                match answer.status {
                    401 => {}
                    429 => {
                        assert_error(&answer, 429, "rate_limited", "the site over its budget");
                        refused_at = Some(block);
                        break 'rotating;
                    }
                    other => panic!("a failed authentication answered {other}"),
                }
            }
        }
        assert_eq!(
            refused_at,
            Some(19),
            "the site is refused once 1,920 failed, on its 20th /64"
        );
        let fresh = failing("2001:db8:7:ffff::1".to_owned()).await;
        assert_eq!(
            fresh.status, 429,
            "a /64 of the site that never failed is refused too"
        );
        let elsewhere = failing("2001:db8:8::1".to_owned()).await;
        assert_eq!(elsewhere.status, 401, "another site is not");
    });
}
