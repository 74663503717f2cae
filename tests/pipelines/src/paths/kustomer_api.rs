//! The CRM API a business calls (tests/e2e/crm/kustomer-api.test.mjs): escalations (on demand and
//! when a customer asks for a person), internal notes, a customer's Kustomer history and the
//! analytics; each with the API key, and each refusing bad input with the one error shape.

use crate::app::{App, test};
use crate::partners::meta::Graph;
use crate::steps::api::assert_error;
use crate::steps::channels::{WhatsApp, receive_whatsapp, whatsapp_account};
use crate::steps::crms::kustomer::{Connected, connected_business, settled_log};
use crate::steps::crms::{connector_of, entry, rollout_leaving_out, sync_log};
use crate::steps::text;
use crate::steps::{unique_number, unique_phone};
use domain::crm::work::ContactKey;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// A business on WhatsApp and Kustomer with one synced conversation, begun with `first`.
struct WithConversation {
    setup: Connected,
    graph: Graph,
    whatsapp: WhatsApp,
    from: String,
    /// Our ids.
    conversation_id: String,
    customer_id: String,
}

async fn with_conversation(app: &App, fields: Value, first: &str) -> WithConversation {
    let setup = connected_business(app, fields).await;
    let graph = Graph::install(&app.stack);
    let whatsapp = whatsapp_account(app, &setup.business.id, None).await;
    let from = unique_phone();
    receive_whatsapp(app, &whatsapp, &from, first).await;
    let log = settled_log(app, setup.id(), 3).await;
    WithConversation {
        conversation_id: text(&entry(&log, "conversation.created")["record_id"]).to_owned(),
        customer_id: text(&entry(&log, "customer.created")["record_id"]).to_owned(),
        setup,
        graph,
        whatsapp,
        from,
    }
}

fn escalations(log: &[Value]) -> Vec<&Value> {
    log.iter()
        .filter(|entry| entry["operation"] == "escalate")
        .collect()
}

#[test]
fn an_api_escalation_raises_the_kustomer_conversation_to_the_team_with_a_note_and_tells_the_customer_once() {
    test(|app| async move {
        let with = with_conversation(
            &app,
            json!({ "settings": { "handoff_message": "A person will reply soon." } }),
            "Hello there",
        )
        .await;
        let id = with.setup.id();
        let teams = app
            .admin(Method::Get, &format!("/admin/connectors/{id}/teams"), None)
            .await
            .expect(200)
            .json();
        let support = teams["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|team| team["name"] == "Support")
            .unwrap_or_else(|| panic!("the teams are listed from Kustomer: {teams}"))
            .clone();
        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{id}"),
            Some(json!({ "settings": { "auto_assignment": true, "default_team_id": support["id"] } })),
        )
        .await
        .expect(200);
        let escalated = app
            .api(
                &with.setup.business.key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": with.conversation_id, "reason": "refund over limit" })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(escalated["escalation"]["trigger"], "api", "{escalated}");
        assert_eq!(escalated["work"].as_array().map(Vec::len), Some(1), "{escalated}");
        let log = settled_log(&app, id, 4).await;
        let escalation = entry(&log, "escalate");
        assert_eq!(escalation["status"], "succeeded", "{escalation}");
        let conversation = &with.setup.kustomer.conversations()[0];
        assert_eq!(conversation["attributes"]["priority"], 4, "high priority");
        assert_eq!(
            conversation["attributes"]["assignedTeams"],
            json!([support["id"]]),
            "the default team"
        );
        let notes = with.setup.kustomer.notes(text(&conversation["id"]));
        let note = text(&notes[0]["attributes"]["body"]);
        assert!(note.contains("refund over limit"), "{note}");
        assert!(
            note.contains("Hello there"),
            "the chat history is in the note: {note}"
        );
        assert_eq!(
            with.graph.texts_sent_to(&with.from),
            ["A person will reply soon."],
            "the customer is told once"
        );
    });
}

/// The id of the Kustomer team named `name`, as the admin API lists the connector's teams.
async fn team_named(app: &App, connector: &str, name: &str) -> String {
    let teams = app
        .admin(Method::Get, &format!("/admin/connectors/{connector}/teams"), None)
        .await
        .expect(200)
        .json();
    teams["teams"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|team| team["name"] == name)
        .map(|team| text(&team["id"]).to_owned())
        .unwrap_or_else(|| panic!("no team {name}: {teams}"))
}

#[test]
fn an_escalation_goes_at_the_priority_and_to_the_team_asked_and_is_routed_again_later() {
    test(|app| async move {
        let with = with_conversation(&app, json!({}), "Hello there").await;
        let (id, key) = (with.setup.id(), with.setup.business.key.clone());
        let (support, billing) = (
            team_named(&app, id, "Support").await,
            team_named(&app, id, "Billing").await,
        );
        let escalated = app
            .api(
                &key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": with.conversation_id, "reason": "outage", "priority": "urgent", "team_id": support })),
            )
            .await
            .expect(202)
            .json();
        let escalation = &escalated["escalation"];
        assert_eq!(
            (&escalation["priority"], &escalation["team_id"]),
            (&json!(5), &json!(support)),
            "{escalated}"
        );
        settled_log(&app, id, 4).await;
        let routed = |expected: (u64, &str), why: &str| {
            let conversation = &with.setup.kustomer.conversations()[0];
            assert_eq!(
                (
                    &conversation["attributes"]["priority"],
                    &conversation["attributes"]["assignedTeams"]
                ),
                (&json!(expected.0), &json!([expected.1])),
                "{why}: {conversation}"
            );
        };
        routed((5, &support), "urgent, to Support, though Auto Assignment is off");

        let path = format!("/api-escalations/{}", text(&escalation["id"]));
        let changed = app
            .api(&key, Method::Patch, &path, Some(json!({ "priority": 2 })))
            .await
            .expect(202)
            .json();
        assert_eq!(
            (
                &changed["escalation"]["priority"],
                &changed["escalation"]["team_id"]
            ),
            (&json!(2), &json!(support)),
            "the team asked before is kept: {changed}"
        );
        let log = settled_log(&app, id, 5).await;
        assert_eq!(
            entry(&log, "escalation_change")["status"],
            "succeeded",
            "{log:#?}"
        );
        routed((2, &support), "lowered, the team kept");
        app.api(&key, Method::Patch, &path, Some(json!({ "team_id": billing })))
            .await
            .expect(202);
        settled_log(&app, id, 6).await;
        routed((2, &billing), "handed to Billing, the priority kept");

        let other = app.business("Other").await;
        let missing = "/api-escalations/00000000-0000-4000-8000-000000000000";
        for (key, path, body, status, why) in [
            (&key, path.as_str(), json!({}), 422, "nothing to change"),
            (
                &key,
                path.as_str(),
                json!({ "priority": 9 }),
                422,
                "a priority above 5",
            ),
            (
                &key,
                path.as_str(),
                json!({ "team_id": "a team" }),
                422,
                "a team id with a space",
            ),
            (
                &key,
                path.as_str(),
                json!({ "priority": 3, "reason": "x" }),
                422,
                "an unknown field",
            ),
            (&key, missing, json!({ "priority": 3 }), 404, "no such escalation"),
            (
                &key,
                "/api-escalations/nope",
                json!({ "priority": 3 }),
                404,
                "not an id",
            ),
            (
                &other.key,
                path.as_str(),
                json!({ "priority": 3 }),
                404,
                "another business's escalation",
            ),
        ] {
            let code = if status == 404 {
                "not_found"
            } else {
                "validation_failed"
            };
            assert_error(
                &app.api(key, Method::Patch, path, Some(body)).await,
                status,
                code,
                why,
            );
        }
        let refused = app
            .api(
                &key,
                Method::Post,
                "/api-escalations",
                Some(
                    json!({ "conversation_id": with.conversation_id, "reason": "r", "priority": "critical" }),
                ),
            )
            .await;
        assert_error(&refused, 422, "validation_failed", "a priority not on the scale");
        app.settle().await;
        routed((2, &billing), "nothing refused changed the ticket");
    });
}

#[test]
fn a_customer_asking_for_a_human_escalates_once_and_not_with_automatic_ticket_creation_off() {
    test(|app| async move {
        let asking = with_conversation(&app, json!({}), "I want to talk to a person please").await;
        let log = sync_log(&app, asking.setup.id(), "").await;
        let escalated = escalations(&log);
        assert_eq!(escalated.len(), 1, "{log:#?}");
        assert_eq!(escalated[0]["status"], "succeeded", "{log:#?}");
        let kustomer = &asking.setup.kustomer;
        let notes = kustomer.notes(text(&kustomer.conversations()[0]["id"]));
        assert!(
            text(&notes[0]["attributes"]["body"]).contains("talk to a person"),
            "{notes:#?}"
        );

        let off = with_conversation(
            &app,
            json!({ "settings": { "ticket_creation": false } }),
            "get me a human",
        )
        .await;
        let log = sync_log(&app, off.setup.id(), "").await;
        assert!(escalations(&log).is_empty(), "no escalation recorded: {log:#?}");
        app.api(
            &off.setup.business.key,
            Method::Post,
            "/api-escalations",
            Some(json!({ "conversation_id": off.conversation_id, "reason": "asked" })),
        )
        .await
        .expect(202);
        let log = settled_log(&app, off.setup.id(), 4).await;
        let skipped = entry(&log, "escalate");
        assert_eq!(skipped["status"], "skipped", "{skipped}");
        assert_eq!(skipped["last_error"], "Automatic Ticket Creation is off");
    });
}

#[test]
fn bad_escalations_are_refused_with_the_error_shape_another_businesss_conversation_is_not_found() {
    test(|app| async move {
        let with = with_conversation(&app, json!({}), "Hello there").await;
        let key = with.setup.business.key.clone();
        let other = app.business("Other").await;
        let conversation = with.conversation_id.clone();
        let cases = [
            (json!({}), 422, "validation_failed", "no conversation or reason"),
            (
                json!({ "conversation_id": conversation }),
                422,
                "validation_failed",
                "no reason",
            ),
            (
                json!({ "conversation_id": conversation, "reason": "x".repeat(501) }),
                422,
                "validation_failed",
                "a long reason",
            ),
            (
                json!({ "conversation_id": "nope", "reason": "r" }),
                404,
                "not_found",
                "not an id",
            ),
            (
                json!({ "conversation_id": conversation, "reason": "r", "extra": 1 }),
                422,
                "validation_failed",
                "an unknown field",
            ),
            (
                json!({ "conversation_id": 5, "reason": "r" }),
                422,
                "validation_failed",
                "a number",
            ),
        ];
        for (body, status, code, why) in cases {
            let answer = app.api(&key, Method::Post, "/api-escalations", Some(body)).await;
            assert_error(&answer, status, code, why);
        }
        let malformed = app
            .request(
                Method::Post,
                "/api-escalations",
                &[("x-api-key", &key), ("content-type", "application/json")],
                b"{\"conversation_id\":".to_vec(),
            )
            .await;
        assert_error(&malformed, 400, "malformed_request", "not JSON");
        let elsewhere = app
            .api(
                &other.key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": conversation, "reason": "r" })),
            )
            .await;
        assert_error(&elsewhere, 404, "not_found", "another business");
        let keyless = app
            .json(
                Method::Post,
                "/api-escalations",
                &[],
                Some(json!({ "conversation_id": conversation, "reason": "r" })),
            )
            .await;
        assert_error(&keyless, 401, "unauthorized", "no key");
        assert_error(
            &app.api(&key, Method::Get, "/api-escalations", None).await,
            405,
            "method_not_allowed",
            "GET",
        );
        app.settle().await;
        assert!(
            escalations(&sync_log(&app, with.setup.id(), "").await).is_empty(),
            "nothing refused escalated"
        );
    });
}

#[test]
fn without_an_enabled_connector_an_escalation_is_still_recorded_counted_and_told_to_the_customer() {
    test(|app| async move {
        let with = with_conversation(&app, json!({}), "Hello there").await;
        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{}", with.setup.id()),
            Some(json!({ "enabled": false })),
        )
        .await
        .expect(200);
        let key = &with.setup.business.key;
        let escalated = app
            .api(
                key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": with.conversation_id, "reason": "no CRM here" })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(escalated["escalation"]["trigger"], "api", "{escalated}");
        assert_eq!(escalated["work"], json!([]), "no connector has work");
        app.settle().await;
        let told = with.graph.texts_sent_to(&with.from);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains("member of our team"),
            "the default hand-off message: {told:?}"
        );
        // The report's range ends now, exclusive: what happened this instant counts from the next.
        app.stack.advance(Duration::from_secs(1));
        let analytics = app
            .api(key, Method::Get, "/api-crm-analytics", None)
            .await
            .expect(200)
            .json();
        assert_eq!(analytics["escalations"]["count"], 1, "{analytics}");
    });
}

#[test]
fn a_note_lands_on_the_kustomer_conversation() {
    test(|app| async move {
        let with = with_conversation(&app, json!({}), "Hello there").await;
        let key = &with.setup.business.key;
        app.api(
            key,
            Method::Post,
            "/api-crm-notes",
            Some(json!({ "conversation_id": with.conversation_id, "body": "VIP: handle with care" })),
        )
        .await
        .expect(202);
        app.settle().await;
        let kustomer = &with.setup.kustomer;
        let notes = kustomer.notes(text(&kustomer.conversations()[0]["id"]));
        assert_eq!(notes.len(), 1, "{notes:#?}");
        assert_eq!(notes[0]["attributes"]["body"], "VIP: handle with care");
        assert_error(
            &app.api(
                key,
                Method::Post,
                "/api-crm-notes",
                Some(json!({ "conversation_id": with.conversation_id, "body": "x".repeat(10_241) })),
            )
            .await,
            422,
            "validation_failed",
            "too long",
        );
        assert_error(
            &app.api(
                key,
                Method::Post,
                "/api-crm-notes",
                Some(json!({ "conversation_id": with.conversation_id, "body": "x", "connector_id": kustomer.object_id() })),
            )
            .await,
            422,
            "validation_failed",
            "not a connector of the business",
        );
    });
}

#[test]
fn history_loads_the_customers_past_kustomer_conversations_unknown_customers_are_404_kustomer_down_is_502() {
    test(|app| async move {
        let with = with_conversation(&app, json!({}), "Hello there").await;
        let kustomer = &with.setup.kustomer;
        let key = &with.setup.business.key;
        let theirs = text(&kustomer.customers()[0]["id"]).to_owned();
        kustomer.seed_conversation(&theirs, json!({ "name": "Old order question", "status": "done" }));
        let history = app
            .api(
                key,
                Method::Get,
                &format!("/api-crm-history?customer_id={}", with.customer_id),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(history["crm_customer_id"], theirs.as_str(), "{history}");
        let names: Vec<&str> = history["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|conversation| text(&conversation["name"]))
            .collect();
        assert_eq!(names.len(), 2, "{history}");
        assert!(names.contains(&"Old order question"), "{names:?}");
        assert_error(
            &app.api(
                key,
                Method::Get,
                "/api-crm-history?customer_id=00000000-0000-4000-8000-000000000000",
                None,
            )
            .await,
            404,
            "not_found",
            "no such customer",
        );
        kustomer.down();
        let down = app
            .api(
                key,
                Method::Get,
                &format!("/api-crm-history?customer_id={}", with.customer_id),
                None,
            )
            .await;
        assert_error(&down, 502, "crm_failed", "Kustomer down");
    });
}

#[test]
fn analytics_count_escalations_response_and_resolution_times_satisfaction_and_the_sync_success_rate() {
    test(|app| async move {
        let with = with_conversation(
            &app,
            json!({ "secrets": { "webhook_secret": "tok" } }),
            "Hello there",
        )
        .await;
        let key = &with.setup.business.key;
        app.api(
            key,
            Method::Post,
            "/api-escalations",
            Some(json!({ "conversation_id": with.conversation_id, "reason": "why not" })),
        )
        .await
        .expect(202);
        app.api(
            key,
            Method::Post,
            "/api-send-message",
            Some(json!({ "customer_id": with.customer_id, "channel": "whatsapp", "content": "On it!" })),
        )
        .await
        .expect(202);
        let kustomer = &with.setup.kustomer;
        let agent = kustomer.object_id();
        let webhook = kustomer.webhook(
            "tok",
            &json!({
                "name": "kustomer.conversation.update",
                "data": {
                    "type": "conversation",
                    "id": kustomer.conversations()[0]["id"],
                    "attributes": { "status": "done", "assignedUsers": [agent], "satisfaction": 5 }
                },
                "changes": { "attributes": { "status": { "before": "open", "after": "done" } } }
            }),
        );
        app.request(
            Method::Post,
            with.setup.webhook_path(),
            &webhook.header_pairs(),
            webhook.body.clone(),
        )
        .await
        .expect(200);
        app.settle().await;
        app.stack.advance(Duration::from_secs(1));
        let report = app
            .api(key, Method::Get, "/api-crm-analytics", None)
            .await
            .expect(200)
            .json();
        assert_eq!(report["conversations"], 1, "{report}");
        assert_eq!(
            report["escalations"],
            json!({ "count": 1, "rate": 1.0 }),
            "{report}"
        );
        assert_eq!(report["first_response"]["count"], 1, "{report}");
        assert!(
            report["first_response"]["p50_seconds"]
                .as_f64()
                .is_some_and(|seconds| seconds >= 0.0),
            "{report}"
        );
        assert_eq!(report["resolution"]["count"], 1, "{report}");
        assert_eq!(
            report["satisfaction"],
            json!({ "average": 5.0, "count": 1 }),
            "{report}"
        );
        assert_eq!(report["agents"][0]["assignee"], agent.as_str(), "{report}");
        assert_eq!(report["agents"][0]["resolved"], 1, "{report}");
        assert_eq!(report["sync"][0]["connector_id"], with.setup.id(), "{report}");
        assert!(
            report["sync"][0]["succeeded"].as_u64().is_some_and(|n| n >= 3),
            "{report}"
        );
        for (query, why) in [
            ("from=yesterday", "not a time"),
            ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "backwards"),
            ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "too long"),
        ] {
            assert_error(
                &app.api(key, Method::Get, &format!("/api-crm-analytics?{query}"), None)
                    .await,
                422,
                "validation_failed",
                why,
            );
        }
        assert_error(
            &app.json(Method::Get, "/api-crm-analytics", &[], None).await,
            401,
            "unauthorized",
            "no key",
        );
        let shown = app
            .admin(
                Method::Get,
                &format!("/admin/connectors/{}", with.setup.id()),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(shown["status"]["success_rate"], 1.0, "{shown}");
    });
}

#[test]
fn a_default_team_kustomer_does_not_have_is_refused_when_saved_naming_the_teams_it_has() {
    test(|app| async move {
        let with = connected_business(&app, json!({})).await;
        let id = with.id();
        let support = team_named(&app, id, "Support").await;
        let path = format!("/admin/connectors/{id}");
        let patch = |settings: Value| app.admin(Method::Patch, &path, Some(json!({ "settings": settings })));
        let refused =
            patch(json!({ "auto_assignment": true, "default_team_id": "000000000000000000000000" })).await;
        let error = assert_error(&refused, 422, "validation_failed", "a team of no one");
        assert_eq!(error["field"], "settings.default_team_id", "{error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("Support") && m.contains("Billing")),
            "the teams it has are named: {error}"
        );
        let shown = connector_of(&app, id).await;
        assert_eq!(
            shown["settings"]["default_team_id"],
            Value::Null,
            "nothing was saved: {shown}"
        );
        patch(json!({ "auto_assignment": true, "default_team_id": support }))
            .await
            .expect(200);
        assert_eq!(
            connector_of(&app, id).await["settings"]["default_team_id"],
            json!(support)
        );

        // A key that may not read teams cannot have its default team checked: saving says so.
        let other = app.business("Other").await;
        let key = format!("eyteamless{}", unique_number());
        with.kustomer
            .add_key(&key, &with.kustomer.org(), &["customers:read", "customers:write"]);
        let subdomain = with.kustomer.subdomain();
        let created = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/connectors", other.id),
                Some(json!({
                    "kind": "kustomer",
                    "settings": { "subdomain": subdomain, "default_team_id": support },
                    "secrets": { "api_key": key },
                })),
            )
            .await;
        assert!(created.status >= 400, "refused: {}", created.text());
        assert!(
            created.text().contains("teams:read"),
            "the missing permission is named: {}",
            created.text()
        );
    });
}

/// The largest rollout that leaves the conversation's customer out of the connector's group.
fn leaving_out(with: &WithConversation) -> Option<i64> {
    rollout_leaving_out(with.setup.id(), &ContactKey::parse(&with.customer_id)?)
}

#[test]
fn a_customer_outside_the_connectors_rollout_gets_no_ticket_note_or_sync_there() {
    test(|app| async move {
        let mut with = with_conversation(&app, json!({}), "Hello there").await;
        let mut percent = leaving_out(&with);
        while percent.is_none() {
            with = with_conversation(&app, json!({}), "Hello there").await;
            percent = leaving_out(&with);
        }
        let (id, key) = (with.setup.id().to_owned(), with.setup.business.key.clone());
        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{id}"),
            Some(json!({ "rollout_percent": percent })),
        )
        .await
        .expect(200);

        let escalated = app
            .api(
                &key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": with.conversation_id, "reason": "refund" })),
            )
            .await
            .expect(202)
            .json();
        assert_eq!(
            escalated["work"],
            json!([]),
            "recorded, with no ticket in a CRM that does not work for the customer"
        );
        let note = app
            .api(
                &key,
                Method::Post,
                "/api-crm-notes",
                Some(json!({ "conversation_id": with.conversation_id, "body": "called back" })),
            )
            .await;
        let error = assert_error(&note, 422, "validation_failed", "a note for a customer outside");
        assert!(text(&error["message"]).contains("rollout"), "{error}");
        receive_whatsapp(&app, &with.whatsapp, &with.from, "I want to talk to a person").await;
        let log = settled_log(&app, &id, 4).await;
        assert!(
            escalations(&log).is_empty(),
            "no ticket from the phrase: {log:#?}"
        );
        let received: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["operation"] == "message.received")
            .collect();
        assert_eq!(
            received
                .iter()
                .map(|entry| text(&entry["status"]))
                .collect::<Vec<_>>(),
            ["skipped", "succeeded"],
            "the message after the narrowing is skipped, the first was followed"
        );

        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{id}"),
            Some(json!({ "rollout_percent": 100 })),
        )
        .await
        .expect(200);
        app.api(
            &key,
            Method::Post,
            "/api-crm-notes",
            Some(json!({ "conversation_id": with.conversation_id, "body": "called back" })),
        )
        .await
        .expect(202);
    });
}

/// The guide's "Testing the Integration", steps 2 and 3, through a business's key: a Kustomer
/// customer found by email (or null), then a titled conversation opened on them on chat, as
/// Kustomer holds it; the operator's twin answers the same; bad input is refused before Kustomer
/// is called, a customer Kustomer lacks is 422 naming `customer_id`, and another business's key
/// finds no connector.
#[test]
fn the_guides_lookup_and_ticket_tests_find_a_kustomer_customer_and_open_a_titled_conversation() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (key, id) = (&setup.business.key, setup.id().to_owned());
        let seeded = setup.kustomer.seed_customer(json!({
            "name": "Test Customer",
            "emails": [{ "email": "test@example.com", "type": "home" }]
        }));
        let kustomer_id = text(&seeded["id"]).to_owned();

        let found = app
            .api(
                key,
                Method::Get,
                &format!("/api-connectors/{id}/crm-customers?email=test%40example.com"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(found["customer"]["id"], kustomer_id.as_str(), "{found}");
        assert_eq!(found["customer"]["type"], "customer");
        assert_eq!(found["customer"]["attributes"]["name"], "Test Customer");
        let operator = app
            .admin(
                Method::Get,
                &format!("/admin/connectors/{id}/crm-customers?email=TEST%40example.com"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            operator["customer"]["id"],
            kustomer_id.as_str(),
            "the operator's twin, any case"
        );
        let none = app
            .api(
                key,
                Method::Get,
                &format!("/api-connectors/{id}/crm-customers?email=nobody%40example.com"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(none, json!({ "customer": null }), "null when Kustomer has none");

        let opened = app
            .api(
                key,
                Method::Post,
                &format!("/api-connectors/{id}/crm-conversations"),
                Some(
                    json!({ "customer_id": kustomer_id, "title": "Test Support Request", "channel": "chat" }),
                ),
            )
            .await
            .expect(201)
            .json();
        let conversation = &opened["conversation"];
        assert_eq!(conversation["type"], "conversation", "{opened}");
        assert_eq!(conversation["attributes"]["name"], "Test Support Request");
        let held = setup.kustomer.conversations();
        assert_eq!(held.len(), 1, "one conversation in Kustomer");
        assert_eq!(held[0]["id"], conversation["id"]);
        assert_eq!(held[0]["attributes"]["replyChannel"], "chat");
        assert_eq!(
            held[0]["relationships"]["customer"]["data"]["id"],
            kustomer_id.as_str(),
            "on the customer found: {}",
            held[0]
        );

        let calls = setup.kustomer.calls().len();
        for (body, field) in [
            (json!({ "customer_id": "cust-1", "title": "t" }), "customer_id"),
            (json!({ "customer_id": kustomer_id, "title": " " }), "title"),
            (
                json!({ "customer_id": kustomer_id, "title": "t", "channel": "pigeon" }),
                "channel",
            ),
            (
                json!({ "customer_id": kustomer_id, "title": "t", "colour": "red" }),
                "colour",
            ),
        ] {
            let answer = app
                .api(
                    key,
                    Method::Post,
                    &format!("/api-connectors/{id}/crm-conversations"),
                    Some(body),
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", field);
            assert_eq!(error["field"], field);
        }
        for query in ["", "?email=", "?email=not-an-email"] {
            let answer = app
                .api(
                    key,
                    Method::Get,
                    &format!("/api-connectors/{id}/crm-customers{query}"),
                    None,
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", query);
            assert_eq!(error["field"], "email");
        }
        assert_eq!(
            setup.kustomer.calls().len(),
            calls,
            "nothing bad reached Kustomer"
        );
        let unknown = app
            .api(
                key,
                Method::Post,
                &format!("/api-connectors/{id}/crm-conversations"),
                Some(json!({ "customer_id": "5f1e0a2b3c4d5e6f7a8b9c0d", "title": "t" })),
            )
            .await;
        let error = assert_error(&unknown, 422, "validation_failed", "a customer Kustomer lacks");
        assert_eq!(error["field"], "customer_id");
        assert_eq!(setup.kustomer.conversations().len(), 1);

        let other = app.business("Other").await;
        let answer = app
            .api(
                &other.key,
                Method::Get,
                &format!("/api-connectors/{id}/crm-customers?email=test%40example.com"),
                None,
            )
            .await;
        assert_error(&answer, 404, "not_found", "another business's connector");
    })
}
