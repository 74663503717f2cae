//! Registering outbound webhook endpoints (`/api-webhooks`), end to end through the gateway:
//! create, read, update, delete, the secret shown only on creation, every bad input refused with
//! the field named, every endpoint private to its business; rotation; and "send test event",
//! which reports the receiver's answer at once and logs the attempt. (The end-to-end suite's
//! `webhooks-api.test.mjs`.)

use crate::app::test;
use crate::partners::webhook_endpoint::{Endpoint, standard_signature_match};
use crate::steps::api::UNKNOWN_ID;
use crate::steps::api::{assert_error, client_error, is_rfc3339_utc, raw};
use crate::steps::id_of;
use crate::steps::webhooks::{EVENTS, attempts_of, create_webhook, with_endpoint};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::Method;
use edge::runtime::native::Reply;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

/// Checks the shape every webhook in an answer has; never a secret.
fn assert_webhook_shape(webhook: &Value, description: &str) {
    let keys = [
        "id",
        "name",
        "url",
        "events",
        "enabled",
        "disabled_reason",
        "retry_schedule",
        "timeout_seconds",
        "disable_after_seconds",
        "failing_since",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    ];
    for key in keys {
        assert!(webhook.get(key).is_some(), "{description}: has {key} ({webhook})");
    }
    for key in webhook.as_object().into_iter().flat_map(|fields| fields.keys()) {
        assert!(!key.ends_with("secret"), "{description}: no secret field ({key})");
    }
    for key in ["created_at", "updated_at"] {
        assert!(
            webhook[key].as_str().is_some_and(is_rfc3339_utc),
            "{description}: {key} ({webhook})"
        );
    }
}

fn sorted(values: &Value) -> Vec<String> {
    let mut names: Vec<String> = values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[test]
fn an_endpoint_is_created_with_the_documented_defaults_and_its_secret_is_shown_only_once() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let created = app
            .api(
                &acme.key,
                Method::Post,
                "/api-webhooks",
                Some(json!({ "name": "CRM inbox", "url": endpoint.url() })),
            )
            .await
            .expect(201)
            .json();
        let (webhook, secret) = (
            &created["webhook"],
            created["secret"].as_str().unwrap_or_default(),
        );
        let encoded = secret.strip_prefix("whsec_").unwrap_or_default();
        assert!(
            !encoded.is_empty()
                && encoded.trim_end_matches('=').len() + 2 >= encoded.len()
                && encoded
                    .trim_end_matches('=')
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
            "the secret is whsec_ and base64: {secret}"
        );
        let key = STANDARD.decode(encoded).unwrap_or_default();
        assert!(
            key.len() >= 24,
            "the secret has at least 24 random bytes ({})",
            key.len()
        );
        assert_webhook_shape(webhook, "the created webhook");
        assert_eq!(webhook["name"], "CRM inbox");
        assert_eq!(webhook["url"], endpoint.url().as_str());
        let mut every = EVENTS.map(str::to_owned).to_vec();
        every.sort();
        assert_eq!(sorted(&webhook["events"]), every, "no events given: every event");
        assert_eq!(webhook["enabled"], true);
        assert_eq!(webhook["disabled_reason"], Value::Null);
        assert_eq!(webhook["retry_schedule"], "standard");
        assert_eq!(webhook["timeout_seconds"], 15);
        assert_eq!(webhook["disable_after_seconds"], 432_000);
        assert_eq!(webhook["failing_since"], Value::Null);
        assert_eq!(webhook["previous_secret_expires_at"], Value::Null);
        assert!(
            !webhook.to_string().contains(secret),
            "the webhook object never carries the secret"
        );

        let id = id_of(webhook);
        let one = app
            .api(&acme.key, Method::Get, &format!("/api-webhooks/{id}"), None)
            .await
            .expect(200);
        assert_eq!(
            &one.json()["webhook"],
            webhook,
            "reading it back gives the same webhook"
        );
        assert!(
            !one.text().contains(secret),
            "GET by id does not reveal the secret"
        );
        assert!(!one.text().contains(encoded), "not even without its prefix");

        let list = app
            .api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);
        let ids: Vec<Value> = list.json()["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w["id"].clone())
            .collect();
        assert_eq!(ids, vec![json!(id)], "the business has this one endpoint");
        assert!(
            !list.text().contains(encoded),
            "the list does not reveal the secret"
        );

        let (_, other) = create_webhook(
            &app,
            &acme.key,
            json!({ "url": endpoint.url(), "events": ["customer.created"] }),
        )
        .await;
        assert_ne!(other, secret, "each endpoint has its own secret");
    });
}

#[test]
fn every_create_field_is_stored_as_given_and_a_patch_changes_only_what_it_names() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let (webhook, _) = create_webhook(
            &app,
            &acme.key,
            json!({
                "name": "Everything",
                "url": "https://first.example.com/hooks",
                "events": ["customer.created", "message.received"],
                "enabled": false,
                "retry_schedule": "extended",
                "timeout_seconds": 30,
                "disable_after_seconds": 1
            }),
        )
        .await;
        assert_eq!(
            sorted(&webhook["events"]),
            ["customer.created", "message.received"]
        );
        assert_eq!(webhook["enabled"], false);
        assert_eq!(webhook["retry_schedule"], "extended");
        assert_eq!(webhook["timeout_seconds"], 30);
        assert_eq!(webhook["disable_after_seconds"], 1);

        app.stack.advance(Duration::from_secs(5));
        let id = id_of(&webhook);
        let patched = app
            .api(
                &acme.key,
                Method::Patch,
                &format!("/api-webhooks/{id}"),
                Some(json!({
                    "name": "Renamed",
                    "url": "https://second.example.com/hooks",
                    "events": ["conversation.assigned"],
                    "timeout_seconds": 1
                })),
            )
            .await
            .expect(200)
            .json();
        let after = &patched["webhook"];
        assert_webhook_shape(after, "the patched webhook");
        assert_eq!(after["name"], "Renamed");
        assert_eq!(after["url"], "https://second.example.com/hooks");
        assert_eq!(after["events"], json!(["conversation.assigned"]));
        assert_eq!(after["timeout_seconds"], 1);
        assert_eq!(after["enabled"], false, "enabled is kept when not named");
        assert_eq!(after["retry_schedule"], "extended", "retry_schedule is kept");
        assert_eq!(after["disable_after_seconds"], 1, "disable_after_seconds is kept");
        assert_eq!(after["created_at"], webhook["created_at"]);
        assert!(
            after["updated_at"].as_str() > webhook["updated_at"].as_str(),
            "updated_at moves forward: {} after {}",
            after["updated_at"],
            webhook["updated_at"]
        );

        let enabled = app
            .api(
                &acme.key,
                Method::Patch,
                &format!("/api-webhooks/{id}"),
                Some(json!({ "enabled": true, "retry_schedule": "standard" })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(enabled["webhook"]["enabled"], true);
        assert_eq!(enabled["webhook"]["retry_schedule"], "standard");
        assert_eq!(enabled["webhook"]["name"], "Renamed");
        let read = app
            .api(&acme.key, Method::Get, &format!("/api-webhooks/{id}"), None)
            .await
            .expect(200)
            .json();
        assert_eq!(read["webhook"], enabled["webhook"], "the PATCH is stored");
    });
}

#[test]
fn a_deleted_endpoint_is_gone() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let (webhook, _) =
            create_webhook(&app, &acme.key, json!({ "url": "https://crm.example.com/hooks" })).await;
        let path = format!("/api-webhooks/{}", id_of(&webhook));
        let removed = app.api(&acme.key, Method::Delete, &path, None).await.expect(204);
        assert_eq!(removed.text(), "", "a 204 has no body");
        assert_error(
            &app.api(&acme.key, Method::Get, &path, None).await,
            404,
            "not_found",
            "GET after DELETE",
        );
        assert_error(
            &app.api(&acme.key, Method::Patch, &path, Some(json!({ "name": "x" })))
                .await,
            404,
            "not_found",
            "PATCH after DELETE",
        );
        let list = app
            .api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200)
            .json();
        assert_eq!(list["webhooks"], json!([]), "the list is empty");
    });
}

#[test]
fn a_create_with_a_bad_field_is_refused_with_422_naming_the_field_and_nothing_is_stored() {
    test(|app| async move {
        // As in the local stack (`.dev.vars`): http to loopback is allowed, where test receivers
        // listen.
        app.stack.set_var("ALLOW_LOOPBACK_WEBHOOKS", "true");
        let acme = app.business("Acme").await;
        let url = "https://crm.example.com/hooks";
        let cases = [
            ("no name", json!({ "url": url }), "name"),
            ("an empty name", json!({ "name": "", "url": url }), "name"),
            (
                "a name of 101 characters",
                json!({ "name": "n".repeat(101), "url": url }),
                "name",
            ),
            ("no url", json!({ "name": "x" }), "url"),
            ("an empty url", json!({ "name": "x", "url": "" }), "url"),
            ("a relative url", json!({ "name": "x", "url": "/hooks" }), "url"),
            (
                "not a url",
                json!({ "name": "x", "url": "crm example com" }),
                "url",
            ),
            (
                "http to a public host",
                json!({ "name": "x", "url": "http://example.com/hooks" }),
                "url",
            ),
            (
                "http to a private, non-loopback address",
                json!({ "name": "x", "url": "http://10.0.0.1/hooks" }),
                "url",
            ),
            (
                "an ftp url",
                json!({ "name": "x", "url": "ftp://example.com/hooks" }),
                "url",
            ),
            (
                "a url with credentials",
                json!({ "name": "x", "url": "https://user:pw@example.com/hooks" }),
                "url",
            ),
            (
                "a loopback url with credentials",
                json!({ "name": "x", "url": "http://user:pw@127.0.0.1:9/hooks" }),
                "url",
            ),
            (
                "http to a host that only starts like localhost",
                json!({ "name": "x", "url": "http://localhost.example.com/hooks" }),
                "url",
            ),
            (
                "an empty list of events",
                json!({ "name": "x", "url": url, "events": [] }),
                "events",
            ),
            (
                "an unknown event",
                json!({ "name": "x", "url": url, "events": ["customer.created", "customer.deleted"] }),
                "events[1]",
            ),
            (
                "an event in the wrong case",
                json!({ "name": "x", "url": url, "events": ["Message.Received"] }),
                "events[0]",
            ),
            (
                "the test event, which is not subscribable",
                json!({ "name": "x", "url": url, "events": ["webhook.test"] }),
                "events[0]",
            ),
            (
                "an unknown retry schedule",
                json!({ "name": "x", "url": url, "retry_schedule": "forever" }),
                "retry_schedule",
            ),
            (
                "a timeout of 0",
                json!({ "name": "x", "url": url, "timeout_seconds": 0 }),
                "timeout_seconds",
            ),
            (
                "a timeout of 31 s",
                json!({ "name": "x", "url": url, "timeout_seconds": 31 }),
                "timeout_seconds",
            ),
            (
                "a negative timeout",
                json!({ "name": "x", "url": url, "timeout_seconds": -5 }),
                "timeout_seconds",
            ),
            (
                "disable after 0 s",
                json!({ "name": "x", "url": url, "disable_after_seconds": 0 }),
                "disable_after_seconds",
            ),
            (
                "disable after 30 days and 1 s",
                json!({ "name": "x", "url": url, "disable_after_seconds": 2_592_001 }),
                "disable_after_seconds",
            ),
        ];
        for (description, body, field) in cases {
            let answer = app
                .api(&acme.key, Method::Post, "/api-webhooks", Some(body))
                .await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(
                error["field"],
                field,
                "{description}: the field named ({})",
                answer.text()
            );
        }

        // Wrong types: refused as client errors (400 or 422), never stored.
        let typed = [
            ("a numeric name", json!({ "name": 42, "url": url })),
            (
                "events as a string",
                json!({ "name": "x", "url": url, "events": "customer.created" }),
            ),
            (
                "enabled as a string",
                json!({ "name": "x", "url": url, "enabled": "yes" }),
            ),
            (
                "a fractional timeout",
                json!({ "name": "x", "url": url, "timeout_seconds": 1.5 }),
            ),
            (
                "a timeout as text",
                json!({ "name": "x", "url": url, "timeout_seconds": "10" }),
            ),
            (
                "a JSON array instead of an object",
                json!([{ "name": "x", "url": url }]),
            ),
        ];
        for (description, body) in typed {
            client_error(
                &app.api(&acme.key, Method::Post, "/api-webhooks", Some(body))
                    .await,
                description,
            );
        }
        let list = app
            .api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200)
            .json();
        assert_eq!(list["webhooks"], json!([]), "no refused endpoint was stored");

        // The edges that are allowed.
        let allowed = [
            (
                "a name of 100 characters, timeout 1 s, disable after 1 s",
                json!({ "name": "n".repeat(100), "timeout_seconds": 1, "disable_after_seconds": 1 }),
            ),
            (
                "timeout 30 s, disable after 30 days",
                json!({ "timeout_seconds": 30, "disable_after_seconds": 2_592_000 }),
            ),
            ("http://localhost", json!({ "url": "http://localhost:9/hooks" })),
            (
                "https to a public host",
                json!({ "url": "https://crm.example.com/hooks" }),
            ),
        ];
        for (description, extra) in allowed {
            let mut body = json!({ "name": "edge", "url": url });
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            let answer = app
                .api(&acme.key, Method::Post, "/api-webhooks", Some(body))
                .await;
            assert_eq!(answer.status, 201, "{description}: {}", answer.text());
        }
    });
}

#[test]
fn a_bad_patch_is_refused_with_422_naming_the_field_and_changes_nothing() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let (webhook, _) =
            create_webhook(&app, &acme.key, json!({ "url": "https://crm.example.com/hooks" })).await;
        let path = format!("/api-webhooks/{}", id_of(&webhook));
        let cases = [
            ("an empty name", json!({ "name": "" }), "name"),
            (
                "http to a public host",
                json!({ "url": "http://example.com/" }),
                "url",
            ),
            (
                "an unknown event",
                json!({ "events": ["message.received", "nope"] }),
                "events[1]",
            ),
            (
                "a timeout of 31 s",
                json!({ "timeout_seconds": 31 }),
                "timeout_seconds",
            ),
            (
                "disable after 0 s",
                json!({ "disable_after_seconds": 0 }),
                "disable_after_seconds",
            ),
            (
                "an unknown retry schedule",
                json!({ "retry_schedule": "sometimes" }),
                "retry_schedule",
            ),
        ];
        for (description, body, field) in cases {
            let answer = app.api(&acme.key, Method::Patch, &path, Some(body)).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], field, "{description}: the field named");
        }
        let read = app
            .api(&acme.key, Method::Get, &path, None)
            .await
            .expect(200)
            .json();
        assert_eq!(read["webhook"], webhook, "nothing changed");
    });
}

#[test]
fn malformed_oversized_and_unauthenticated_requests_are_refused() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let url = "https://crm.example.com/hooks";
        let (webhook, _) = create_webhook(&app, &acme.key, json!({ "url": url })).await;
        let id = id_of(&webhook);
        let key = Some(acme.key.as_str());
        let truncated = format!(r#"{{"name":"x","url":"{url}""#);
        for (description, body) in [
            ("truncated JSON", truncated.as_str()),
            ("not JSON", "name=x"),
            ("an empty body", ""),
        ] {
            assert_error(
                &raw(&app, key, Method::Post, "/api-webhooks", body.as_bytes()).await,
                400,
                "malformed_request",
                &format!("create with {description}"),
            );
            assert_error(
                &raw(
                    &app,
                    key,
                    Method::Patch,
                    &format!("/api-webhooks/{id}"),
                    body.as_bytes(),
                )
                .await,
                400,
                "malformed_request",
                &format!("PATCH with {description}"),
            );
        }
        for (method, path) in [
            (Method::Put, format!("/api-webhooks/{id}")),
            (Method::Delete, "/api-webhooks".to_owned()),
            (Method::Get, format!("/api-webhooks/{id}/test")),
        ] {
            let body = (method != Method::Get).then(|| json!({}));
            assert_error(
                &app.api(&acme.key, method.clone(), &path, body).await,
                405,
                "method_not_allowed",
                &format!("{method:?} {path}"),
            );
        }
        let huge = json!({ "name": "x", "url": url, "padding": "x".repeat(70 * 1024) }).to_string();
        assert_error(
            &raw(&app, key, Method::Post, "/api-webhooks", huge.as_bytes()).await,
            413,
            "payload_too_large",
            "a create body over 64 KiB",
        );

        let calls = [
            (Method::Get, "/api-webhooks".to_owned(), None),
            (
                Method::Post,
                "/api-webhooks".to_owned(),
                Some(json!({ "name": "x", "url": url })),
            ),
            (Method::Get, format!("/api-webhooks/{id}"), None),
            (
                Method::Patch,
                format!("/api-webhooks/{id}"),
                Some(json!({ "name": "y" })),
            ),
            (Method::Delete, format!("/api-webhooks/{id}"), None),
            (
                Method::Post,
                format!("/api-webhooks/{id}/rotate-secret"),
                Some(json!({})),
            ),
            (Method::Post, format!("/api-webhooks/{id}/test"), Some(json!({}))),
            (Method::Get, format!("/api-webhooks/{id}/deliveries"), None),
            (
                Method::Post,
                format!("/api-webhooks/{id}/replay"),
                Some(json!({ "delivery_id": UNKNOWN_ID })),
            ),
            (
                Method::Get,
                format!("/api-webhook-attempts?webhook_id={id}"),
                None,
            ),
        ];
        for (method, path, body) in calls {
            assert_error(
                &app.json(method.clone(), &path, &[], body.clone()).await,
                401,
                "unauthorized",
                &format!("{method:?} {path} without a key"),
            );
            assert_error(
                &app.api("cek_not-a-key", method.clone(), &path, body).await,
                401,
                "unauthorized",
                &format!("{method:?} {path} with an unknown key"),
            );
        }
        let still = app
            .api(&acme.key, Method::Get, &format!("/api-webhooks/{id}"), None)
            .await;
        assert_eq!(
            still.status, 200,
            "nothing an unauthenticated request asked for happened"
        );
        assert_eq!(still.json()["webhook"]["name"], webhook["name"]);

        assert_error(
            &app.api(&acme.key, Method::Get, "/api-webhook-attempts?limit=10", None)
                .await,
            422,
            "validation_failed",
            "the attempt log without webhook_id, event_id or delivery_id",
        );
        for limit in ["0", "501", "many"] {
            client_error(
                &app.api(
                    &acme.key,
                    Method::Get,
                    &format!("/api-webhooks/{id}/deliveries?limit={limit}"),
                    None,
                )
                .await,
                &format!("deliveries limit={limit}"),
            );
        }
        client_error(
            &app.api(
                &acme.key,
                Method::Get,
                &format!("/api-webhooks/{id}/deliveries?status=lost"),
                None,
            )
            .await,
            "deliveries status=lost",
        );
    });
}

#[test]
fn another_businesss_endpoint_or_one_that_does_not_exist_is_404_everywhere() {
    test(|app| async move {
        let owner = app.business("Owner").await;
        let intruder = app.business("Intruder").await;
        let (webhook, _) = create_webhook(
            &app,
            &owner.key,
            json!({ "url": "https://crm.example.com/hooks" }),
        )
        .await;
        let theirs = id_of(&webhook);
        for id in [theirs.as_str(), UNKNOWN_ID, "not-an-id"] {
            let label = if id == theirs {
                "another business's webhook".to_owned()
            } else {
                format!("webhook {id}")
            };
            let calls = [
                (Method::Get, format!("/api-webhooks/{id}"), None),
                (
                    Method::Patch,
                    format!("/api-webhooks/{id}"),
                    Some(json!({ "name": "taken over" })),
                ),
                (
                    Method::Post,
                    format!("/api-webhooks/{id}/rotate-secret"),
                    Some(json!({})),
                ),
                (Method::Post, format!("/api-webhooks/{id}/test"), Some(json!({}))),
                (Method::Get, format!("/api-webhooks/{id}/deliveries"), None),
                (
                    Method::Post,
                    format!("/api-webhooks/{id}/replay"),
                    Some(json!({ "delivery_id": UNKNOWN_ID })),
                ),
                (Method::Delete, format!("/api-webhooks/{id}"), None),
            ];
            for (method, path, body) in calls {
                assert_error(
                    &app.api(&intruder.key, method.clone(), &path, body).await,
                    404,
                    "not_found",
                    &format!("{label}: {method:?} {path}"),
                );
            }
        }
        let list = app
            .api(&intruder.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200)
            .json();
        assert_eq!(list["webhooks"], json!([]), "the intruder's list is empty");
        let log = app
            .api(
                &intruder.key,
                Method::Get,
                &format!("/api-webhook-attempts?webhook_id={theirs}"),
                None,
            )
            .await;
        assert!(
            log.status == 404 || (log.status == 200 && log.json()["attempts"] == json!([])),
            "the attempt log of another business's webhook shows nothing: {}",
            log.text()
        );
        let intact = app
            .api(&owner.key, Method::Get, &format!("/api-webhooks/{theirs}"), None)
            .await
            .expect(200)
            .json();
        assert_eq!(intact["webhook"], webhook, "the owner still has it, unchanged");
    });
}

#[test]
fn a_business_may_register_at_most_16_endpoints_and_the_17th_is_refused_until_one_is_deleted() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let mut created = Vec::new();
        for at in 0..16 {
            let url = format!("https://hooks{at}.example.com/hooks");
            created.push(create_webhook(&app, &acme.key, json!({ "url": url })).await.0);
        }
        let refused = app
            .api(
                &acme.key,
                Method::Post,
                "/api-webhooks",
                Some(json!({ "name": "one too many", "url": "https://more.example.com/hooks" })),
            )
            .await;
        let error = assert_error(&refused, 422, "validation_failed", "the 17th endpoint");
        assert!(
            error["message"].as_str().unwrap_or_default().contains("16"),
            "the message says the limit: {error}"
        );
        let list = app
            .api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            list["webhooks"].as_array().map(Vec::len),
            Some(16),
            "nothing was stored"
        );
        app.api(
            &acme.key,
            Method::Delete,
            &format!("/api-webhooks/{}", id_of(&created[0])),
            None,
        )
        .await
        .expect(204);
        create_webhook(
            &app,
            &acme.key,
            json!({ "url": "https://more.example.com/hooks" }),
        )
        .await;
    });
}

/// Natively the four requests do not interleave (the native D1 answers at once), so this holds
/// what the rotations leave; the next test holds the rule that keeps a race from losing one.
#[test]
fn concurrent_rotations_are_applied_one_after_another_and_none_is_lost() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let (webhook, original) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let path = format!("/api-webhooks/{}/rotate-secret", id_of(&webhook));
        let answers =
            join_all((0..4).map(|_| app.api(&acme.key, Method::Post, &path, Some(json!({}))))).await;
        let mut secrets = Vec::new();
        for answer in answers {
            assert_eq!(answer.status, 200, "every rotation lands: {}", answer.text());
            secrets.push(answer.json()["secret"].as_str().unwrap_or_default().to_owned());
        }
        let mut distinct = secrets.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "four different secrets");
        app.api(
            &acme.key,
            Method::Post,
            &format!("/api-webhooks/{}/test", id_of(&webhook)),
            Some(json!({})),
        )
        .await
        .expect(200);
        let deliveries = endpoint.deliveries();
        let delivery = deliveries.last().unwrap_or_else(|| panic!("no test delivery"));
        let all: Vec<&String> = std::iter::once(&original).chain(&secrets).collect();
        let signed_by: Vec<&&String> = all
            .iter()
            .filter(|secret| standard_signature_match(secret, &delivery.call).is_some())
            .collect();
        assert_eq!(
            signed_by.len(),
            2,
            "two secrets sign during the grace period ({:?})",
            delivery.call.header("webhook-signature")
        );
        assert!(
            !signed_by.contains(&&&original),
            "the original secret was rotated out by the first rotation, not kept by a later one"
        );
    });
}

/// What makes concurrent rotations safe, made to happen in order: a write prepared from a read
/// that another change has overtaken does not land (it is read again and re-applied).
#[test]
fn a_change_written_from_a_stale_read_of_an_endpoint_does_not_land_over_a_newer_one() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let env = edge::Env::new(app.stack.clone(), "test");
        let db = env.db().unwrap_or_else(|error| panic!("{error}"));
        let keys = env.keyring().unwrap_or_else(|error| panic!("{error:?}"));
        let tenant = domain::tenant::Tenant::for_background(
            domain::ids::BusinessId::parse(&acme.id).unwrap_or_else(|| panic!("{}", acme.id)),
        );
        let id = domain::ids::EndpointId::parse(&id_of(&webhook)).unwrap_or_else(|| panic!("{webhook}"));
        let read = || edge::db::webhook_endpoints::find(&db, &keys, &tenant, &id);
        let mut stale = read()
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("no endpoint {id}"));

        let rotated = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{id}/rotate-secret"),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        stale.name = "written from a stale read".to_owned();
        let landed = edge::db::webhook_endpoints::update(&db, &keys, &tenant, &stale)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert!(!landed, "a write from a read the rotation overtook does not land");
        let now = read()
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("no endpoint {id}"));
        assert_eq!(now.name, "hook", "the stale write changed nothing");
        assert_eq!(
            now.secret.as_str(),
            rotated["secret"].as_str().unwrap_or_default(),
            "the rotation holds"
        );
    });
}

#[test]
fn a_receiver_that_answers_200_is_reported_delivered_with_a_signed_test_event_and_the_attempt_is_logged() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        endpoint.answer_next([Reply::json(200, &json!({ "ok": "from the CRM" }))]);
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let result = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&webhook)),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(result["delivered"], true, "{result}");
        assert_eq!(result["status_code"], 200);
        assert!(result["duration_ms"].as_u64().is_some(), "{result}");
        assert!(
            result["response_body"]
                .as_str()
                .is_some_and(|body| body.contains("from the CRM")),
            "the receiver's answer is reported: {result}"
        );
        assert_eq!(result["error"], Value::Null);
        let event_id = result["event_id"].as_str().unwrap_or_default().to_owned();
        assert!(!event_id.is_empty(), "{result}");

        let deliveries = endpoint.deliveries();
        assert_eq!(deliveries.len(), 1, "the receiver got it before the answer came");
        let delivery = &deliveries[0];
        assert_eq!(delivery.call.method, "POST");
        assert!(
            delivery
                .call
                .header("content-type")
                .is_some_and(|kind| kind.starts_with("application/json"))
        );
        assert_eq!(delivery.body["event"], "webhook.test");
        assert_eq!(delivery.body["id"], event_id.as_str());
        assert_eq!(
            delivery.call.header("webhook-id"),
            Some(event_id.as_str()),
            "webhook-id is the event id"
        );
        assert_eq!(delivery.body["business_id"], acme.id.as_str());
        assert!(delivery.body["timestamp"].as_str().is_some_and(is_rfc3339_utc));
        assert_eq!(delivery.body["data"]["webhook_id"], webhook["id"]);
        assert!(delivery.body["data"]["message"].is_string());
        assert!(delivery.seed_verified, "the seed's signature verifies");
        assert!(
            delivery.standard_verified,
            "the Standard Webhooks signature verifies"
        );

        let attempts = attempts_of(&app, &acme.key, &format!("event_id={event_id}")).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        let attempt = &attempts[0];
        assert_eq!(attempt["webhook_id"], webhook["id"]);
        assert_eq!(attempt["event_type"], "webhook.test");
        assert_eq!(attempt["status_code"], 200);
        assert_eq!(attempt["outcome"], "delivered");
        assert_eq!(attempt["url"], endpoint.url().as_str());
        assert_eq!(attempt["attempt"], 1);
        assert!(attempt["attempted_at"].as_str().is_some_and(is_rfc3339_utc));
    });
}

#[test]
fn a_receiver_that_answers_500_is_reported_not_delivered_with_its_status_and_body() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        endpoint.answer_next([Reply::json(500, &json!({ "error": "database on fire" }))]);
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let result = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&webhook)),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(result["delivered"], false, "{result}");
        assert_eq!(result["status_code"], 500);
        assert!(
            result["response_body"]
                .as_str()
                .is_some_and(|body| body.contains("database on fire")),
            "{result}"
        );
        assert_eq!(endpoint.deliveries()[0].body["event"], "webhook.test");
        let event_id = result["event_id"].as_str().unwrap_or_default();
        let attempts = attempts_of(&app, &acme.key, &format!("event_id={event_id}")).await;
        let last = attempts.last().unwrap_or_else(|| panic!("the attempt is logged"));
        assert_eq!(last["status_code"], 500, "the attempt is logged with its status");
        assert!(
            last["response_body"]
                .as_str()
                .is_some_and(|body| body.contains("database on fire")),
            "{last}"
        );
    });
}

#[test]
fn a_receiver_that_streams_an_endless_answer_is_read_only_as_far_as_the_log_keeps_then_cut_off() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        // 8 MiB, 64 KiB a second: read whole, it would take two minutes, past the timeout.
        endpoint.answer_next([
            Reply::text(200, &"x".repeat(8 * 1024 * 1024)).in_chunks(64 * 1024, Duration::from_secs(1))
        ]);
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({ "timeout_seconds": 20 })).await;
        let started = app.stack.now_ms();
        let result = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&webhook)),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        let took = app.stack.now_ms() - started;
        assert_eq!(result["delivered"], true, "{result}");
        assert_eq!(result["status_code"], 200);
        let body = result["response_body"].as_str().unwrap_or_default();
        assert!(body.len() <= 1024, "the log keeps at most 1 KiB ({})", body.len());
        assert!(!body.is_empty() && body.bytes().all(|b| b == b'x'), "{body}");
        assert!(
            took < 2_000,
            "answered after the first chunk, without reading the rest of the stream ({took} ms)"
        );
    });
}

#[test]
fn an_unreachable_receiver_is_reported_not_delivered_with_the_connection_error() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        // Nothing answers at this host: the connection is refused.
        let (webhook, _) = create_webhook(
            &app,
            &acme.key,
            json!({ "url": "https://nobody.example.com/hooks" }),
        )
        .await;
        let result = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&webhook)),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(result["delivered"], false, "{result}");
        assert_eq!(result["status_code"], Value::Null);
        assert!(
            result["error"].as_str().is_some_and(|error| !error.is_empty()),
            "the error says what happened: {result}"
        );
        let attempts = attempts_of(&app, &acme.key, &format!("webhook_id={}", id_of(&webhook))).await;
        assert!(
            attempts
                .iter()
                .any(|attempt| attempt["event_id"] == result["event_id"]
                    && attempt["status_code"].is_null()
                    && attempt["error"].as_str().is_some_and(|error| !error.is_empty())),
            "{attempts:?}"
        );
    });
}

#[test]
fn a_receiver_slower_than_the_endpoint_timeout_is_reported_as_a_timeout_after_about_that_long() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        endpoint.answer_next([Reply::text(200, "late").after(Duration::from_secs(5))]);
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({ "timeout_seconds": 2 })).await;
        let started = app.stack.now_ms();
        let result = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&webhook)),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        let took = app.stack.now_ms() - started;
        assert_eq!(result["delivered"], false, "{result}");
        assert_eq!(result["status_code"], Value::Null);
        assert!(
            result["error"]
                .as_str()
                .is_some_and(|error| error.to_lowercase().contains("time")),
            "the error says it timed out: {result}"
        );
        let duration = result["duration_ms"].as_u64().unwrap_or_default();
        assert!(
            (1_500..5_000).contains(&duration),
            "cut off after about 2 s ({duration} ms)"
        );
        assert!(
            took < 5_000,
            "the API answered before the receiver would have ({took} ms)"
        );
    });
}

#[test]
fn test_sends_are_limited_to_10_per_endpoint_a_minute_and_the_11th_is_429_with_retry_after() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let path = format!("/api-webhooks/{}/test", id_of(&webhook));
        for at in 1..=10 {
            let answer = app.api(&acme.key, Method::Post, &path, Some(json!({}))).await;
            assert_eq!(answer.status, 200, "test {at}: {}", answer.text());
        }
        let limited = app.api(&acme.key, Method::Post, &path, Some(json!({}))).await;
        assert_error(&limited, 429, "rate_limited", "the 11th test");
        let wait: u64 = limited
            .header("retry-after")
            .and_then(|wait| wait.parse().ok())
            .unwrap_or_default();
        assert!(
            (1..=60).contains(&wait),
            "Retry-After says when the window reopens ({:?})",
            limited.header("retry-after")
        );
        assert_eq!(endpoint.deliveries().len(), 10, "the refused test sent nothing");

        let other = app.business("Other").await;
        let elsewhere = Endpoint::install(&app.stack, "hooks.other.example");
        let (theirs, _) = with_endpoint(&app, &other.key, &elsewhere, json!({})).await;
        let answer = app
            .api(
                &other.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&theirs)),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            answer.status,
            200,
            "another endpoint has its own allowance: {}",
            answer.text()
        );
    });
}

#[test]
fn the_attempt_log_never_shows_a_test_of_one_business_to_another() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        let (webhook, _) = with_endpoint(&app, &acme.key, &endpoint, json!({})).await;
        let result = app
            .api(
                &acme.key,
                Method::Post,
                &format!("/api-webhooks/{}/test", id_of(&webhook)),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        let other = app.business("Other").await;
        let log = app
            .api(
                &other.key,
                Method::Get,
                &format!(
                    "/api-webhook-attempts?event_id={}",
                    result["event_id"].as_str().unwrap_or_default()
                ),
                None,
            )
            .await;
        assert!(
            log.status == 404 || (log.status == 200 && log.json()["attempts"] == json!([])),
            "another business sees nothing: {}",
            log.text()
        );
    });
}
