//! The Krayin connector driven by Chatwoot's webhooks, ported from
//! `tests/e2e/crm/krayin-chatwoot.test.mjs`: the connector's settings checked against Krayin when
//! saved, the signed receiver at `/webhooks/chatwoot/{connector}` (deduplicated, refusing anything
//! unsigned, stale, malformed or too large), a Chatwoot contact as one Krayin person and lead (its
//! organization made once per company), conversations and messages as activities of the right
//! type, the toggles honoured with a reason in the sync log, and stage progression that moves a
//! lead forward once per step and never back.

use super::{Connect, Setup, chatwoot_id, krayin_business, pick, post};
use crate::app::{App, test};
use crate::partners::chatwoot::{
    self, API, Contact, Conversation, Delivery, EMAIL, Inbox, Message, SMS, WEB, WHATSAPP, agent,
};
use crate::partners::krayin;
use crate::partners::kustomer::Kustomer;
use crate::steps::api::assert_error;
use crate::steps::crms::operations;
use crate::steps::{unique_email, unique_number, unique_phone};
use edge::runtime::Method;
use serde_json::{Value, json};

/// A Chatwoot contact with an email and a number of its own.
fn jane() -> Contact {
    Contact::new(chatwoot_id(), "Jane Doe")
        .email(&unique_email("jane"))
        .phone(&unique_phone())
}

fn entries_of(log: &[Value]) -> Vec<(String, String, String)> {
    log.iter()
        .map(|entry| {
            let text = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            (text("operation"), text("status"), text("customer_id"))
        })
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn a_krayin_connector_has_krayins_budget_a_chatwoot_webhook_path_and_no_secret_shown_and_the_connection_test_says_what_krayin_said()
 {
    test(|app| async move {
        let setup = krayin_business(
            &app,
            Connect {
                rate_limit: None,
                ..Connect::default()
            },
        )
        .await;
        let (connector, krayin) = (&setup.connector, &setup.krayin);
        assert_eq!(connector["kind"], "krayin");
        assert_eq!(
            connector["webhook_path"],
            format!("/webhooks/chatwoot/{}", setup.id())
        );
        let mut secrets: Vec<&str> = connector["secrets_set"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        secrets.sort_unstable();
        assert_eq!(secrets, ["api_token", "webhook_secret"]);
        assert_eq!(
            connector["rate_limit"],
            json!({ "per_minute": 60, "per_second": null, "per_day": null }),
            "Krayin's own 60 a minute by default"
        );
        let settings = &connector["settings"];
        assert!(
            settings["base_url"]
                .as_str()
                .is_some_and(|url| url.starts_with(&krayin.origin())),
            "base_url {}",
            settings["base_url"]
        );
        assert_eq!(
            [
                &settings["sync_organizations"],
                &settings["sync_conversations"],
                &settings["sync_messages"],
                &settings["stage_progression"]
            ],
            [&json!(true), &json!(true), &json!(true), &json!(false)],
            "the toggles' defaults"
        );
        let token_secret = krayin.token().split('|').nth(1).unwrap_or_default();
        let webhook_secret = setup.webhook_secret.clone().unwrap_or_default();
        let shown = connector.to_string();
        assert!(!shown.contains(token_secret), "the API token is not shown");
        assert!(
            !shown.contains(&webhook_secret),
            "the webhook secret is not shown"
        );
        assert!(connector["status"].is_object(), "the status is shown");
        let read = setup.shown(&app).await;
        assert_eq!(read["kind"], "krayin");
        assert_eq!(read["webhook_path"], connector["webhook_path"]);
        assert!(!read.to_string().contains(token_secret));

        let test_path = format!("/admin/connectors/{}/test", setup.id());
        let ok = app.admin(Method::Post, &test_path, None).await.expect(200).json();
        assert_eq!(ok["ok"], true, "{ok}");
        assert_eq!(ok["user"]["email"], krayin::USER_EMAIL, "the token's user: {ok}");
        assert!(
            krayin
                .calls()
                .iter()
                .any(|call| call.call.path() == "/api/v1/get"),
            "the test asked Krayin who the token is"
        );

        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{}", setup.id()),
            Some(json!({ "secrets": { "api_token": format!("1|{}", "x".repeat(40)) } })),
        )
        .await
        .expect(200);
        let refused = app.admin(Method::Post, &test_path, None).await.expect(200).json();
        assert_eq!(refused["ok"], false, "{refused}");
        assert_eq!(refused["status"], 401, "{refused}");
        assert!(
            refused["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a reason: {refused}"
        );

        krayin.down();
        let unreachable = app.admin(Method::Post, &test_path, None).await.expect(200).json();
        krayin.up();
        assert_eq!(unreachable["ok"], false, "{unreachable}");
        assert!(
            unreachable["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{unreachable}"
        );
    });
}

#[test]
fn settings_are_checked_when_saved_the_pipeline_and_its_stages_against_krayins_pipelines() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let connectors = format!("/admin/businesses/{}/connectors", setup.business.id);
        let base = krayin.origin();
        let token = krayin.token();
        let invalid = [
            (
                "no API token",
                json!({ "kind": "krayin", "settings": { "base_url": base }, "secrets": {} }),
                "secrets.api_token",
            ),
            (
                "no address",
                json!({ "kind": "krayin", "settings": {}, "secrets": { "api_token": token } }),
                "settings.base_url",
            ),
            (
                "a toggle that is not a boolean",
                json!({ "kind": "krayin", "settings": { "base_url": base, "sync_messages": "yes" }, "secrets": { "api_token": token } }),
                "settings.sync_messages",
            ),
            (
                "a misspelt setting",
                json!({ "kind": "krayin", "settings": { "base_url": base, "sync_message": false }, "secrets": { "api_token": token } }),
                "settings",
            ),
            (
                "a pipeline Krayin does not have",
                json!({ "kind": "krayin", "settings": { "base_url": base, "pipeline_id": 99 }, "secrets": { "api_token": token } }),
                "settings.pipeline_id",
            ),
            (
                "a stage of another pipeline",
                json!({ "kind": "krayin", "settings": { "base_url": base, "pipeline_id": 1, "stage_progression": true, "stage_on_conversation_created": 8 }, "secrets": { "api_token": token } }),
                "settings.stage_on_conversation_created",
            ),
            (
                "a stage not in the default pipeline, where leads go without pipeline_id",
                json!({ "kind": "krayin", "settings": { "base_url": base, "stage_progression": true, "stage_on_resolved": 9 }, "secrets": { "api_token": token } }),
                "settings.stage_on_resolved",
            ),
            (
                "a stage Krayin does not have",
                json!({ "kind": "krayin", "settings": { "base_url": base, "pipeline_id": 2, "stage_progression": true, "stage_on_first_response": 99 }, "secrets": { "api_token": token } }),
                "settings.stage_on_first_response",
            ),
        ];
        for (description, body, field) in invalid {
            let answer = app.admin(Method::Post, &connectors, Some(body)).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            let at = error["field"].as_str().unwrap_or_default();
            if field == "settings" {
                assert!(at.starts_with("settings"), "{description}: field {at}");
            } else {
                assert_eq!(at, field, "{description}: the field at fault");
            }
        }

        let read_before = krayin.count("GET", "/api/v1/settings/pipelines");
        let staged = app
            .admin(
                Method::Post,
                &connectors,
                Some(json!({
                    "kind": "krayin",
                    "name": "Partnerships",
                    "settings": { "base_url": base, "pipeline_id": 2, "stage_progression": true,
                                  "stage_on_conversation_created": 7, "stage_on_first_response": 8, "stage_on_resolved": 9 },
                    "secrets": { "api_token": token },
                    "rate_limit": super::no_budget(),
                })),
            )
            .await
            .expect(201)
            .json();
        assert!(
            krayin.count("GET", "/api/v1/settings/pipelines") > read_before,
            "Krayin's pipelines were read"
        );
        let settings = &staged["settings"];
        assert_eq!(
            [
                &settings["pipeline_id"],
                &settings["stage_on_conversation_created"],
                &settings["stage_on_first_response"],
                &settings["stage_on_resolved"]
            ],
            [&json!(2), &json!(7), &json!(8), &json!(9)]
        );

        let staged_path = format!("/admin/connectors/{}", staged["id"].as_str().unwrap_or_default());
        let wrong_stage = app
            .admin(
                Method::Patch,
                &staged_path,
                Some(json!({ "settings": { "stage_on_resolved": 5 } })),
            )
            .await;
        let error = assert_error(
            &wrong_stage,
            422,
            "validation_failed",
            "a PATCH to a stage of another pipeline",
        );
        assert_eq!(error["field"], "settings.stage_on_resolved");
        let other_pipeline = app
            .admin(
                Method::Patch,
                &staged_path,
                Some(json!({ "settings": { "pipeline_id": 1 } })),
            )
            .await;
        let error = assert_error(
            &other_pipeline,
            422,
            "validation_failed",
            "a PATCH to a pipeline the stages are not in",
        );
        assert!(
            error["field"]
                .as_str()
                .is_some_and(|field| field.starts_with("settings.stage_on_")),
            "the stages no longer fit the pipeline: {error}"
        );
        let unknown_pipeline = app
            .admin(
                Method::Patch,
                &format!("/admin/connectors/{}", setup.id()),
                Some(json!({ "settings": { "pipeline_id": 42 } })),
            )
            .await;
        let error = assert_error(
            &unknown_pipeline,
            422,
            "validation_failed",
            "a PATCH to an unknown pipeline",
        );
        assert_eq!(error["field"], "settings.pipeline_id");
        let kept = app
            .admin(Method::Get, &staged_path, None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            kept["settings"]["stage_on_resolved"], 9,
            "a refused PATCH changes nothing"
        );
        assert_eq!(kept["settings"]["pipeline_id"], 2);
    });
}

#[test]
fn a_signed_delivery_is_queued_once_the_same_delivery_again_is_a_duplicate_and_other_events_are_ignored() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let secret = setup.webhook_secret.as_deref();
        let person = jane();
        let event = chatwoot::contact_created(&person);
        let first = setup.delivery(&event);
        let answer = post(&app, setup.path(), &first).await.expect(200).json();
        assert_eq!(answer["outcome"], "queued", "{answer}");
        app.settle().await;
        assert_eq!((krayin.persons().len(), krayin.leads().len()), (1, 1));

        let now = app.stack.now_ms() / 1000;
        let body = chatwoot::rails_json(&event);
        let delivery = first.header("x-chatwoot-delivery").unwrap_or_default().to_owned();
        let again = Delivery::signed_at(secret, &body, now, &delivery);
        // The delivery id is not signed: the same signed body under a new id is the same delivery.
        let replayed = Delivery::signed_at(secret, &body, now, "f00dface-0000-4000-8000-000000000001");
        for (delivery, description) in [(again, "the same delivery id"), (replayed, "a new delivery id")] {
            let answer = post(&app, setup.path(), &delivery).await.expect(200).json();
            assert!(
                answer["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("duplicate")),
                "{description}: {answer}"
            );
        }

        for event in ["conversation_typing_on", "webwidget_triggered", "contact_merged"] {
            let answer = setup
                .chatwoot(
                    &app,
                    &json!({ "event": event, "id": person.id, "account": { "id": 1, "name": "Acme Support" } }),
                )
                .await
                .expect(200)
                .json();
            assert!(
                answer["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("ignored: ") && o.len() > "ignored: ".len()),
                "{event}: {answer}"
            );
        }
        let log = setup.settled_log(&app, 1).await;
        assert_eq!(
            entries_of(&log),
            [(
                "chatwoot.contact_created".to_owned(),
                "succeeded".to_owned(),
                format!("chatwoot:{}", person.id)
            )]
        );
        assert_eq!(krayin.persons().len(), 1, "one person");
        assert_eq!(krayin.leads().len(), 1, "one lead");
    });
}

#[test]
fn unsigned_mis_signed_stale_malformed_and_oversized_deliveries_are_refused_and_unknown_connectors_are_404() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let secret = setup.webhook_secret.clone().unwrap_or_default();
        let payload = chatwoot::contact_created(&jane());
        let body = chatwoot::rails_json(&payload);
        let now = app.stack.now_ms() / 1000;

        let signed = Delivery::of(Some(&secret), &payload);
        let tampered_body = body.replace("Jane Doe", "Jane Dough").into_bytes();
        let refused = [
            (Delivery::of(None, &payload), "no signature"),
            (
                Delivery::of(Some("not-the-secret"), &payload),
                "signed with another secret",
            ),
            (
                signed.clone().with_body(tampered_body),
                "a body changed after signing",
            ),
            (
                Delivery::signed_at(Some(&secret), &body, now - 400, "d-stale"),
                "a timestamp 400 s old (a replayed capture)",
            ),
            (
                Delivery::signed_at(Some(&secret), &body, now + 400, "d-future"),
                "a timestamp 400 s ahead",
            ),
            (
                signed.clone().with_header("x-chatwoot-timestamp", None),
                "no timestamp",
            ),
            (
                signed
                    .clone()
                    .with_header("x-chatwoot-signature", Some("md5=abc")),
                "a signature not of Chatwoot's form",
            ),
        ];
        for (delivery, why) in refused {
            assert_error(
                &post(&app, setup.path(), &delivery).await,
                401,
                "unauthorized",
                why,
            );
        }

        for (raw, why) in [
            ("{not json", "not JSON"),
            ("[]", "not an object"),
            ("\"contact_created\"", "a string"),
            ("{\"id\": 5}", "no event"),
            ("{\"event\": 5, \"id\": 5}", "an event that is not text"),
        ] {
            let answer = post(&app, setup.path(), &Delivery::raw(Some(&secret), raw)).await;
            assert_error(&answer, 400, "malformed_request", why);
        }
        let huge = format!(
            "{{\"event\":\"contact_created\",\"id\":1,\"pad\":\"{}\"}}",
            "x".repeat(1024 * 1024)
        );
        let answer = post(&app, setup.path(), &Delivery::raw(Some(&secret), &huge)).await;
        assert_error(&answer, 413, "payload_too_large", "over 1 MiB");
        let answer = app.request(Method::Get, setup.path(), &[], Vec::new()).await;
        assert_error(&answer, 405, "method_not_allowed", "GET");

        let other = app
            .business(&format!("Kustomer business {}", unique_number()))
            .await;
        Kustomer::install(&app.stack, "acme", "kustomer-api-key");
        let kustomer = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/connectors", other.id),
                Some(json!({
                    "kind": "kustomer",
                    "settings": { "subdomain": "acme" },
                    "secrets": { "api_key": "kustomer-api-key" },
                    "rate_limit": super::no_budget(),
                })),
            )
            .await
            .expect(201)
            .json();
        for (id, why) in [
            ("00000000-0000-4000-8000-000000000000", "no such connector"),
            (
                kustomer["id"].as_str().unwrap_or_default(),
                "a Kustomer connector",
            ),
            ("not-a-connector", "not a connector id"),
        ] {
            let answer = post(
                &app,
                &format!("/webhooks/chatwoot/{id}"),
                &Delivery::of(Some(&secret), &payload),
            )
            .await;
            assert_error(&answer, 404, "not_found", why);
        }

        let secretless = krayin_business(
            &app,
            Connect {
                webhook_secret: None,
                ..Connect::default()
            },
        )
        .await;
        assert_eq!(secretless.connector["secrets_set"], json!(["api_token"]));
        for (delivery, why) in [
            (
                Delivery::of(Some(&secret), &payload),
                "a connector without a webhook secret",
            ),
            (
                Delivery::of(None, &payload),
                "unsigned, to a connector without a secret",
            ),
        ] {
            assert_error(
                &post(&app, secretless.path(), &delivery).await,
                401,
                "unauthorized",
                why,
            );
        }

        app.settle().await;
        assert!(setup.krayin.writes().is_empty(), "nothing refused reached Krayin");
        assert!(secretless.krayin.writes().is_empty());
        assert!(
            setup.log(&app, "").await.is_empty(),
            "nothing refused was recorded"
        );
    });
}

#[test]
fn a_chatwoot_contact_becomes_one_person_and_one_lead_with_its_details_and_an_update_changes_both_and_makes_no_second()
 {
    test(|app| async move {
        let setup = krayin_business(
            &app,
            Connect::settings(
                json!({ "pipeline_id": 2, "lead_source_id": 2, "lead_type_id": 1, "user_id": 1 }),
            ),
        )
        .await;
        let krayin = &setup.krayin;
        let person = jane()
            .attribute("job_title", "VP of Engineering")
            .attribute("company_name", "Acme Corp")
            .attribute("company_city", "San Francisco")
            .attribute("lead_value", 75_000);
        setup.queued(&app, &chatwoot::contact_created(&person)).await;
        setup.settled_log(&app, 1).await;

        let persons = krayin.persons();
        assert_eq!(persons.len(), 1, "{persons:#?}");
        let stored = &persons[0];
        assert_eq!(stored.name, "Jane Doe");
        assert_eq!(stored.emails, [json!({ "value": person.email, "label": "work" })]);
        assert_eq!(
            stored.contact_numbers,
            [json!({ "value": person.phone_number, "label": "work" })]
        );
        assert_eq!(stored.job_title, "VP of Engineering");
        let organizations = krayin.organizations();
        assert_eq!(organizations.len(), 1, "the company as an organization");
        let organization = &organizations[0];
        assert_eq!(organization.name, "Acme Corp");
        assert_eq!(stored.organization_id, Some(organization.id));

        let leads = krayin.leads();
        let lead = &leads[0];
        assert_eq!(lead.title, "Jane Doe");
        assert_eq!(lead.person_id, Some(stored.id));
        assert_eq!(lead.lead_value.as_f64(), Some(75_000.0));
        assert!(
            lead.description.as_str().is_some_and(|d| !d.trim().is_empty()),
            "a description: {}",
            lead.description
        );
        assert_eq!(
            (lead.lead_pipeline_id, lead.lead_pipeline_stage_id),
            (Some(2), Some(7)),
            "the first stage of the configured pipeline"
        );
        assert_eq!(
            (lead.lead_source_id, lead.lead_type_id, lead.user_id),
            (Some(2), Some(1), Some(1)),
            "source, type and owner from the settings"
        );

        let contact_key = format!("chatwoot:{}", person.id);
        let external_id = format!(
            "krayin:person:{}|krayin:lead:{}|krayin:organization:{}",
            stored.id, lead.id, organization.id
        );
        let expected = json!({
            "contact": contact_key,
            "external_id": external_id,
            "person_id": stored.id,
            "lead_id": lead.id,
            "organization_id": organization.id,
        });
        let keys = [
            "contact",
            "external_id",
            "person_id",
            "lead_id",
            "organization_id",
        ];
        let linked = setup.contact(&app, &contact_key).await.expect(200).json();
        assert_eq!(pick(&linked, &keys), expected);
        for external in [format!("krayin:person:{}", stored.id), external_id.clone()] {
            let found = setup.contact_by_external_id(&app, &external).await;
            assert_eq!(found.status, 200, "{external}: {}", found.text());
            assert_eq!(pick(&found.json(), &keys), expected, "{external}");
        }
        let nobody = setup
            .contact_by_external_id(&app, &format!("krayin:person:{}", stored.id + 1000))
            .await;
        assert_eq!(nobody.status, 404, "no contact of that person");
        let unknown = setup.contact(&app, &format!("chatwoot:{}", person.id + 1)).await;
        assert_eq!(unknown.status, 404, "no such contact");

        let renamed = person.named("Jane Q. Doe").attribute("job_title", "CTO");
        setup
            .queued(
                &app,
                &chatwoot::contact_updated(&renamed, &[("name", json!("Jane Doe"), json!("Jane Q. Doe"))]),
            )
            .await;
        let log = setup.settled_log(&app, 2).await;
        let (persons, leads) = (krayin.persons(), krayin.leads());
        assert_eq!(persons[0].name, "Jane Q. Doe");
        assert_eq!(leads[0].title, "Jane Q. Doe");
        assert_eq!(persons[0].job_title, "CTO");
        assert_eq!(persons.len(), 1, "updated, not created again");
        assert_eq!(leads.len(), 1, "one lead");
        assert_eq!(krayin.organizations().len(), 1, "one organization");
        assert_eq!(
            leads[0].lead_pipeline_stage_id,
            Some(7),
            "the update keeps the lead where it stands"
        );
        assert_eq!(
            entries_of(&log),
            [
                (
                    "chatwoot.contact_updated".to_owned(),
                    "succeeded".to_owned(),
                    contact_key.clone()
                ),
                (
                    "chatwoot.contact_created".to_owned(),
                    "succeeded".to_owned(),
                    contact_key.clone()
                ),
            ]
        );
    });
}

#[test]
fn without_a_pipeline_the_lead_starts_in_krayins_default_one_and_contacts_with_only_an_email_or_only_a_phone_are_persons_too()
 {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::settings(json!({ "default_lead_value": 500 }))).await;
        let krayin = &setup.krayin;
        let email_only = Contact::new(chatwoot_id(), "Only Email").email(&unique_email("only"));
        let phone_only = Contact::new(chatwoot_id(), "Only Phone").phone(&unique_phone());
        setup.queued(&app, &chatwoot::contact_created(&email_only)).await;
        setup.queued(&app, &chatwoot::contact_created(&phone_only)).await;
        let log = setup.settled_log(&app, 2).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let persons = krayin.persons();
        assert_eq!(persons.len(), 2);
        assert_eq!(krayin.leads().len(), 2);
        let by_name = |name: &str| {
            persons
                .iter()
                .find(|p| p.name == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name}: {persons:#?}"))
        };
        assert_eq!(
            by_name("Only Email").emails,
            [json!({ "value": email_only.email, "label": "work" })]
        );
        assert!(
            by_name("Only Email")
                .contact_numbers
                .iter()
                .all(|n| n["value"].as_str().is_none_or(str::is_empty)),
            "no number made up"
        );
        assert_eq!(
            by_name("Only Phone").contact_numbers,
            [json!({ "value": phone_only.phone_number, "label": "work" })]
        );
        assert!(by_name("Only Phone").emails.is_empty());
        for lead in krayin.leads() {
            assert_eq!(
                (lead.lead_pipeline_id, lead.lead_pipeline_stage_id),
                (Some(1), Some(1)),
                "the default pipeline's first stage"
            );
            assert_eq!(lead.lead_value.as_f64(), Some(500.0), "the default lead value");
        }
        assert!(krayin.organizations().is_empty(), "no company, no organization");
        let linked = setup
            .contact(&app, &format!("chatwoot:{}", email_only.id))
            .await
            .expect(200)
            .json();
        assert_eq!(
            linked.get("organization_id").cloned().unwrap_or_default(),
            Value::Null
        );
        assert!(
            !linked["external_id"]
                .as_str()
                .unwrap_or_default()
                .contains("organization"),
            "{linked}"
        );
    });
}

#[test]
fn two_contacts_of_one_company_share_one_organization_and_an_organization_krayin_already_has_is_reused() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let globex = krayin.seed_organization(json!({ "name": "Globex" }));
        let first = jane().named("Ann Initech").attribute("company_name", "Initech");
        let second = jane()
            .named("Bob Initech")
            .attribute("company_name", "Initech")
            .attribute("company_city", "Austin");
        let third = jane().named("Cid Globex").attribute("company_name", "Globex");
        for (at, contact) in [first, second, third].iter().enumerate() {
            setup.queued(&app, &chatwoot::contact_created(contact)).await;
            setup.settled_log(&app, at + 1).await;
        }
        let log = setup.log(&app, "").await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let persons = krayin.persons();
        assert_eq!(persons.len(), 3);
        let mut names: Vec<String> = krayin
            .organizations()
            .iter()
            .map(|o| o.name.as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["Globex", "Initech"],
            "Initech made once, Globex not again"
        );
        let initech = krayin
            .organizations()
            .into_iter()
            .find(|o| o.name == "Initech")
            .map(|o| o.id);
        let organization_of = |name: &str| {
            persons
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.organization_id)
        };
        assert_eq!(organization_of("Ann Initech"), initech);
        assert_eq!(organization_of("Bob Initech"), initech);
        assert_eq!(organization_of("Cid Globex"), Some(globex.id));
    });
}

#[test]
fn a_whatsapp_conversation_is_a_call_on_the_lead_its_messages_done_calls_with_their_text_and_files_and_resolving_it_marks_it_done()
 {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let person = jane().named("Wendy Whatsapp");
        let display = unique_number();
        let conversation = Conversation::new(display, WHATSAPP, &person);
        setup.queued(&app, &chatwoot::contact_created(&person)).await;
        setup
            .queued(&app, &chatwoot::conversation_created(&conversation))
            .await;
        let receipt = "https://chat.acme.example/rails/active_storage/blobs/receipt.png";
        let incoming = Message::incoming(chatwoot_id(), &conversation, "Here is my receipt")
            .attachment("image", receipt);
        setup.queued(&app, &chatwoot::message_created(&incoming)).await;
        let outgoing = Message::outgoing(chatwoot_id(), &conversation, "Thanks, a quote follows");
        setup.queued(&app, &chatwoot::message_created(&outgoing)).await;
        let mut entries = 4;
        let system = Message::activity(
            chatwoot_id(),
            &conversation,
            "Conversation was resolved by Priya Raman",
        );
        let answer = setup
            .chatwoot(&app, &chatwoot::message_created(&system))
            .await
            .expect(200)
            .json();
        if answer["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("queued"))
        {
            entries += 1;
        }
        setup.settled_log(&app, entries).await;

        let lead = krayin.leads()[0].clone();
        let krayin_person = krayin.persons()[0].id;
        let title = format!("Conversation #{display}");
        let activity = krayin
            .activity_titled(&title)
            .unwrap_or_else(|| panic!("an activity titled {title}: {:#?}", krayin.activities()));
        assert_eq!(activity.activity_type, "call", "WhatsApp is a call");
        assert_eq!(activity.is_done, 0, "open while the conversation is");
        assert_eq!(activity.lead_ids, [lead.id], "on the lead");
        assert_eq!(
            activity.participant_persons(),
            [krayin_person],
            "the guide's Person ID: Link to Person"
        );

        let received = krayin
            .activity_titled(&format!("Message from Wendy Whatsapp - Conversation #{display}"))
            .unwrap_or_else(|| panic!("the contact's message: {:#?}", krayin.activities()));
        assert_eq!(received.activity_type, "call");
        assert_eq!(received.is_done, 1, "a message happened: done");
        assert!(
            received.comment().contains("Here is my receipt"),
            "{}",
            received.comment()
        );
        assert!(
            received.comment().contains(receipt),
            "the file's link: {}",
            received.comment()
        );
        assert_eq!(received.lead_ids, [lead.id]);
        assert_eq!(
            received.participant_persons(),
            [krayin_person],
            "the contact's message"
        );
        let replied = krayin
            .activity_titled(&format!(
                "Message from {} - Conversation #{display}",
                agent().name
            ))
            .unwrap_or_else(|| panic!("the agent's message: {:#?}", krayin.activities()));
        assert_eq!(replied.is_done, 1);
        assert!(replied.comment().contains("Thanks, a quote follows"));
        assert_eq!(
            (replied.lead_ids.as_slice(), replied.participant_persons()),
            ([lead.id].as_slice(), vec![krayin_person]),
            "the agent's message: on the lead, with the contact"
        );
        assert!(
            !krayin
                .activities()
                .iter()
                .any(|a| a.comment().contains("was resolved by")),
            "Chatwoot's activity messages are not messages"
        );
        assert_eq!(krayin.activities().len(), 3);

        let linked = setup
            .contact(&app, &format!("chatwoot:{}", person.id))
            .await
            .expect(200)
            .json();
        let organization = krayin
            .organizations()
            .first()
            .map(|organization| format!("|krayin:organization:{}", organization.id))
            .unwrap_or_default();
        assert_eq!(
            linked["external_id"],
            format!(
                "krayin:person:{krayin_person}|krayin:lead:{}{organization}|krayin:activity:{}",
                lead.id, activity.id
            ),
            "the guide's External ID Format, with the conversation's activity"
        );

        setup
            .queued(
                &app,
                &chatwoot::conversation_status_changed(&conversation.with_status("resolved"), "open"),
            )
            .await;
        let log = setup.settled_log(&app, entries + 1).await;
        let resolved = krayin
            .activity_titled(&title)
            .unwrap_or_else(|| panic!("{title}"));
        assert_eq!(resolved.is_done, 1, "the conversation's activity done");
        assert_eq!(
            resolved.participant_persons(),
            [krayin_person],
            "marking it done keeps its participants"
        );
        assert_eq!(
            krayin.conversation_activities().len(),
            1,
            "the same activity, not a new one"
        );
        assert_eq!(krayin.activities().len(), 3);
        let kept: Vec<Value> = log
            .iter()
            .filter(|entry| entry["status"] != "skipped")
            .cloned()
            .collect();
        assert_eq!(
            operations(&kept),
            owned(&[
                ("chatwoot.conversation_status_changed", "succeeded"),
                ("chatwoot.message_created", "succeeded"),
                ("chatwoot.message_created", "succeeded"),
                ("chatwoot.conversation_created", "succeeded"),
                ("chatwoot.contact_created", "succeeded"),
            ])
        );
        assert!(
            log.iter()
                .all(|entry| entry["customer_id"] == format!("chatwoot:{}", person.id)),
            "{log:#?}"
        );
    });
}

#[test]
fn sms_and_whatsapp_conversations_are_calls_email_ones_emails_and_web_widget_api_and_other_inboxes_are_notes()
{
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let person = jane().named("Multi Channel");
        setup.queued(&app, &chatwoot::contact_created(&person)).await;
        let bandwidth = Inbox {
            id: 9,
            name: "Bandwidth SMS",
            channel: "Channel::Sms",
        };
        let telegram = Inbox {
            id: 10,
            name: "Telegram",
            channel: "Channel::Telegram",
        };
        let inboxes = [
            (WHATSAPP, "call"),
            (SMS, "call"),
            (bandwidth, "call"),
            (EMAIL, "email"),
            (WEB, "note"),
            (API, "note"),
            (telegram, "note"),
        ];
        let conversations: Vec<(Conversation, &str)> = inboxes
            .iter()
            .zip(500..)
            .map(|((inbox, kind), id)| (Conversation::new(id, *inbox, &person), *kind))
            .collect();
        for (conversation, _) in &conversations {
            setup
                .queued(&app, &chatwoot::conversation_created(conversation))
                .await;
        }
        let email = &conversations[3].0;
        let mail = Message::incoming(chatwoot_id(), email, "Please send the invoice by mail");
        setup.queued(&app, &chatwoot::message_created(&mail)).await;
        let log = setup.settled_log(&app, inboxes.len() + 2).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        for (conversation, kind) in &conversations {
            let activity = krayin
                .activity_titled(&format!("Conversation #{}", conversation.id))
                .unwrap_or_else(|| panic!("{}: an activity", conversation.inbox.channel));
            assert_eq!(
                activity.activity_type, *kind,
                "{} is a {kind}",
                conversation.inbox.channel
            );
        }
        let messages = krayin.message_activities();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].activity_type, "email",
            "an email message is an email activity, as the guide's channel table says"
        );
        assert!(
            messages[0].schedule_from.is_some() && messages[0].schedule_to.is_some(),
            "an email is scheduled at the message time, as Krayin wants of every type but note and file"
        );
        assert_eq!(messages[0].is_done, 1, "and marked done: it happened");
    });
}

#[test]
fn with_the_toggles_off_nothing_is_made_in_krayin_for_them_and_the_sync_log_says_skipped() {
    test(|app| async move {
        let off = krayin_business(
            &app,
            Connect::settings(
                json!({ "sync_organizations": false, "sync_conversations": false, "sync_messages": false }),
            ),
        )
        .await;
        let person = jane().named("Toggle Off").attribute("company_name", "Hidden Co");
        let conversation = Conversation::new(unique_number(), WEB, &person);
        off.queued(&app, &chatwoot::contact_created(&person)).await;
        off.queued(&app, &chatwoot::conversation_created(&conversation))
            .await;
        off.queued(
            &app,
            &chatwoot::message_created(&Message::incoming(chatwoot_id(), &conversation, "not synced")),
        )
        .await;
        let log = off.settled_log(&app, 3).await;
        let mut seen = operations(&log);
        seen.sort();
        assert_eq!(
            seen,
            owned(&[
                ("chatwoot.contact_created", "succeeded"),
                ("chatwoot.conversation_created", "skipped"),
                ("chatwoot.message_created", "skipped"),
            ])
        );
        for entry in log.iter().filter(|entry| entry["status"] == "skipped") {
            assert!(
                entry["last_error"].as_str().is_some_and(|e| !e.is_empty()),
                "{} says why it was skipped",
                entry["operation"]
            );
        }
        let krayin = &off.krayin;
        assert_eq!(krayin.persons().len(), 1, "the contact is still synced");
        assert_eq!(krayin.leads().len(), 1);
        assert_eq!(
            krayin.persons()[0].organization_id,
            None,
            "no organization linked"
        );
        assert!(krayin.organizations().is_empty(), "no organization made");
        assert!(krayin.activities().is_empty(), "no activity");

        let messages_off = krayin_business(&app, Connect::settings(json!({ "sync_messages": false }))).await;
        let other = jane().named("Messages Off");
        let other_conversation = Conversation::new(unique_number(), WHATSAPP, &other);
        messages_off
            .queued(&app, &chatwoot::contact_created(&other))
            .await;
        messages_off
            .queued(&app, &chatwoot::conversation_created(&other_conversation))
            .await;
        messages_off
            .queued(
                &app,
                &chatwoot::message_created(&Message::incoming(
                    chatwoot_id(),
                    &other_conversation,
                    "not synced either",
                )),
            )
            .await;
        let other_log = messages_off.settled_log(&app, 3).await;
        let status_of = |operation: &str| {
            other_log
                .iter()
                .find(|entry| entry["operation"] == operation)
                .map(|entry| entry["status"].clone())
        };
        assert_eq!(status_of("chatwoot.message_created"), Some(json!("skipped")));
        assert_eq!(
            status_of("chatwoot.conversation_created"),
            Some(json!("succeeded"))
        );
        assert_eq!(
            messages_off.krayin.conversation_activities().len(),
            1,
            "the conversation is synced"
        );
        assert!(
            messages_off.krayin.message_activities().is_empty(),
            "its messages are not"
        );
    });
}

/// Delivers `payload`, lets the work run, and checks the lead's stage.
async fn step(app: &App, setup: &Setup, entries: &mut usize, payload: &Value, stage: u64, description: &str) {
    setup.queued(app, payload).await;
    *entries += 1;
    let log = setup.settled_log(app, *entries).await;
    assert_eq!(log[0]["status"], "succeeded", "{description}: {}", log[0]);
    let leads = setup.krayin.leads();
    assert_eq!(leads.len(), 1, "{description}: one lead");
    assert_eq!(
        leads[0].lead_pipeline_stage_id,
        Some(stage),
        "{description}: the lead's stage"
    );
}

#[test]
fn stage_progression_moves_the_lead_forward_once_per_step_and_never_back() {
    test(|app| async move {
        let setup = krayin_business(
            &app,
            Connect::settings(json!({
                "pipeline_id": 1, "stage_progression": true,
                "stage_on_conversation_created": 2, "stage_on_first_response": 3, "stage_on_resolved": 4,
            })),
        )
        .await;
        let person = jane().named("Stage Walker");
        let conversation = Conversation::new(unique_number(), WEB, &person).assigned(agent());
        let entries = &mut 0;
        let say = |message: Message| chatwoot::message_created(&message);
        step(
            &app,
            &setup,
            entries,
            &chatwoot::contact_created(&person),
            1,
            "a new contact",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &chatwoot::conversation_created(&conversation),
            2,
            "a conversation started",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &say(Message::incoming(chatwoot_id(), &conversation, "Hello?")),
            2,
            "the contact writes",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &say(Message::outgoing(chatwoot_id(), &conversation, "internal: VIP").private()),
            2,
            "a private note is no response",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &say(Message::outgoing(
                chatwoot_id(),
                &conversation,
                "Hi! How can I help?",
            )),
            3,
            "the first agent response",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &say(Message::outgoing(chatwoot_id(), &conversation, "Anything else?")),
            3,
            "a second response",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &chatwoot::conversation_status_changed(&conversation.with_status("resolved"), "open"),
            4,
            "resolved",
        )
        .await;
        let next = Conversation::new(conversation.id + 1, WEB, &person);
        step(
            &app,
            &setup,
            entries,
            &chatwoot::conversation_created(&next),
            4,
            "a new conversation does not move it back",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &say(Message::outgoing(chatwoot_id(), &next, "Welcome back")),
            4,
            "nor its first response",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &chatwoot::contact_updated(
                &person.named("Stage Walker Jr"),
                &[("name", json!("Stage Walker"), json!("Stage Walker Jr"))],
            ),
            4,
            "nor a contact update",
        )
        .await;

        let history: Vec<(Option<u64>, u64)> = setup.krayin.leads()[0]
            .stage_history
            .iter()
            .map(|moved| (moved.from, moved.to))
            .collect();
        assert_eq!(
            history,
            [(None, 1), (Some(1), 2), (Some(2), 3), (Some(3), 4)],
            "each move once"
        );
    });
}

#[test]
fn a_chatwoot_that_signs_nothing_delivers_to_the_token_url_once_and_a_wrong_missing_or_rotated_token_is_refused()
 {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let secret = setup.webhook_secret.clone().unwrap_or_default();
        let set_token = async |token: &str| {
            app.admin(
                Method::Patch,
                &format!("/admin/connectors/{}", setup.id()),
                Some(json!({ "secrets": { "webhook_token": token } })),
            )
            .await
            .expect(200)
            .json()
        };
        let token = format!("{:0>64}", unique_number());
        let shown = set_token(&token).await;
        assert!(
            !shown.to_string().contains(&token),
            "the token is never shown back: {shown}"
        );
        let jane = jane();
        let payload = chatwoot::contact_created(&jane);
        // Chatwoot before 4.11.2: no signature, timestamp or delivery id.
        let unsigned = Delivery::of(None, &payload)
            .with_header("x-chatwoot-delivery", None)
            .with_header("x-chatwoot-timestamp", None);
        let at = |token: &str| format!("{}/{token}", setup.path());

        let first = post(&app, &at(&token), &unsigned).await;
        assert_eq!(first.status, 200, "{}", first.text());
        assert!(
            first.json()["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("queued")),
            "{}",
            first.text()
        );
        let again = post(&app, &at(&token), &unsigned).await;
        assert_eq!(again.status, 200, "{}", again.text());
        assert!(
            again.json()["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("duplicate")),
            "the same body twice is recorded once: {}",
            again.text()
        );
        setup.settled_log(&app, 1).await;
        let persons = setup.krayin.persons();
        assert_eq!(persons.len(), 1, "one Krayin person for Jane");

        let signed_then_changed = Delivery::of(
            Some(&secret),
            &chatwoot::contact_created(&jane.named("Jane Dough")),
        )
        .with_body(
            chatwoot::rails_json(&payload)
                .replace("Jane Doe", "Jane Roe")
                .into_bytes(),
        );
        let rotated = format!("{:0>64}", unique_number());
        for (path, delivery, why) in [
            (setup.path().to_owned(), &unsigned, "unsigned on the signed path"),
            (at(&format!("{token}x")), &unsigned, "another token"),
            (at(&token[1..]), &unsigned, "a token cut short"),
            (
                at(&token),
                &signed_then_changed,
                "a signature that does not match is checked on the token URL too",
            ),
        ] {
            assert_error(&post(&app, &path, delivery).await, 401, "unauthorized", why);
        }

        set_token(&rotated).await;
        let renamed = chatwoot::contact_updated(
            &jane.named("Jane Roe"),
            &[("name", json!("Jane Doe"), json!("Jane Roe"))],
        );
        let fresh = Delivery::of(None, &renamed)
            .with_header("x-chatwoot-delivery", None)
            .with_header("x-chatwoot-timestamp", None);
        let answer = post(&app, &at(&token), &fresh).await;
        let error = assert_error(&answer, 401, "unauthorized", "the token before the rotation");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("webhook_token")),
            "{error}"
        );
        assert_eq!(
            post(&app, &at(&rotated), &fresh).await.status,
            200,
            "the rotated token"
        );

        let tokenless = krayin_business(&app, Connect::default()).await;
        let answer = post(&app, &format!("{}/{token}", tokenless.path()), &unsigned).await;
        assert_error(
            &answer,
            401,
            "unauthorized",
            "a connector without a webhook token",
        );

        let logs = format!("{:?}", app.stack.logs());
        assert!(
            !logs.contains(&token) && !logs.contains(&rotated),
            "no token reaches the log"
        );
    });
}

#[test]
fn with_a_new_lead_stage_a_contacts_lead_starts_there_and_moves_on_from_it() {
    test(|app| async move {
        let setup = krayin_business(
            &app,
            Connect::settings(json!({
                "pipeline_id": 1, "stage_progression": true,
                "stage_on_contact_created": 2, "stage_on_conversation_created": 3,
            })),
        )
        .await;
        let person = jane().named("New Lead");
        let conversation = Conversation::new(unique_number(), WEB, &person);
        let entries = &mut 0;
        step(
            &app,
            &setup,
            entries,
            &chatwoot::contact_created(&person),
            2,
            "a new contact, at the New Lead stage",
        )
        .await;
        step(
            &app,
            &setup,
            entries,
            &chatwoot::conversation_created(&conversation),
            3,
            "a conversation started",
        )
        .await;
        let shown = setup.shown(&app).await;
        assert_eq!(shown["settings"]["stage_on_contact_created"], 2, "{shown}");
    });
}
