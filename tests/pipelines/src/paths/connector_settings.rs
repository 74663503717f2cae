//! Every setting of a connector changed after connecting, as the business console changes it (the
//! business's own `PATCH /api-connectors/{id}`): read back, then used by the next piece of work;
//! a new credential sealed and carried by the next CRM call; bad values refused beside their
//! field; and `DELETE /api-connectors/{id}`: the connector, its waiting work and its webhook URL
//! gone, for its own business only, audited.

use crate::app::{App, test};
use crate::partners::kustomer::PERMISSIONS;
use crate::partners::meta::Graph;
use crate::paths::krayin::{Connect, krayin_business};
use crate::steps::api::assert_error;
use crate::steps::channels::{receive_whatsapp, receive_whatsapp_from, whatsapp_account};
use crate::steps::crms::kustomer::{connected_business, settled_log};
use crate::steps::crms::{entry, sync_log};
use crate::steps::customers::sync;
use crate::steps::store::select;
use crate::steps::{text, unique_number, unique_phone};
use domain::crm::rollout::Rollout;
use domain::ids::{ConnectorId, CustomerId};
use edge::runtime::Method;
use serde_json::{Value, json};

/// `PATCH /api-connectors/{id}` with the business's key, as the console sends it.
async fn patch(app: &App, key: &str, id: &str, body: Value) -> crate::app::Answer {
    app.api(key, Method::Patch, &format!("/api-connectors/{id}"), Some(body))
        .await
}

async fn shown(app: &App, key: &str, id: &str) -> Value {
    app.api(key, Method::Get, &format!("/api-connectors/{id}"), None)
        .await
        .expect(200)
        .json()
}

#[test]
fn kustomers_phrases_hand_off_text_priorities_and_field_mapping_change_and_the_next_work_follows_them() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (id, key) = (setup.id().to_owned(), setup.business.key.clone());
        let settings = json!({
            "escalation_phrases": ["speak to sales"],
            "handoff_message": "Sales will call you within the hour.",
            "default_priority": 2,
            "escalation_priority": "urgent",
            "conversation_sync": true,
            "auto_assignment": false,
            "field_mapping": { "custom_fields.plan": "attributes.custom.tierStr" },
        });
        patch(&app, &key, &id, json!({ "settings": settings }))
            .await
            .expect(200);
        let read = shown(&app, &key, &id).await["settings"].clone();
        assert_eq!(
            (
                &read["escalation_phrases"],
                &read["handoff_message"],
                &read["default_priority"],
                &read["escalation_priority"]
            ),
            (
                &json!(["speak to sales"]),
                &json!("Sales will call you within the hour."),
                &json!(2),
                &json!(5)
            ),
            "read back as saved (urgent is 5): {read}"
        );
        assert_eq!(
            read["field_mapping"]["custom_fields.plan"], "attributes.custom.tierStr",
            "{read}"
        );

        let graph = Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let (polite, asking) = (unique_phone(), unique_phone());
        receive_whatsapp(&app, &whatsapp, &polite, "I want to talk to a human").await;
        receive_whatsapp(&app, &whatsapp, &asking, "Can I speak to sales please").await;
        let log = settled_log(&app, &id, 6).await;
        let escalated: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["operation"] == "escalate")
            .collect();
        assert_eq!(
            escalated.len(),
            1,
            "only the new phrase escalates, the default 'human' no longer does: {log:#?}"
        );
        assert_eq!(escalated[0]["status"], "succeeded", "{log:#?}");
        assert_eq!(
            graph.texts_sent_to(&asking),
            ["Sales will call you within the hour."],
            "the customer is told the new hand-off text"
        );
        assert!(graph.texts_sent_to(&polite).is_empty(), "no hand-off for 'human'");
        let priorities: Vec<Value> = setup
            .kustomer
            .conversations()
            .iter()
            .map(|conversation| conversation["attributes"]["priority"].clone())
            .collect();
        let mut sorted = priorities.clone();
        sorted.sort_by_key(|priority| priority.as_u64());
        assert_eq!(
            sorted,
            [json!(2), json!(5)],
            "a new conversation at the default priority, the escalated one at the escalation priority"
        );

        sync(
            &app,
            &key,
            json!([{ "external_id": "CRM-7", "name": "Ada", "email": "ada@example.com", "custom_fields": { "plan": "gold" } }]),
        )
        .await;
        app.settle().await;
        let ada = setup
            .kustomer
            .customers()
            .into_iter()
            .find(|customer| customer["attributes"]["externalId"] == "CRM-7")
            .unwrap_or_else(|| panic!("Ada is in Kustomer: {:#?}", setup.kustomer.customers()));
        assert_eq!(
            ada["attributes"]["custom"]["tierStr"], "gold",
            "the changed mapping: {ada}"
        );
    });
}

#[test]
fn a_replaced_kustomer_key_is_never_shown_and_is_what_the_next_kustomer_call_carries() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (id, key) = (setup.id().to_owned(), setup.business.key.clone());
        let support = setup.kustomer.teams()[0]["id"].clone();
        patch(
            &app,
            &key,
            &id,
            json!({ "settings": { "default_team_id": support } }),
        )
        .await
        .expect(200);

        // Kustomer does not know this key: creation's check (the default team) refuses it, and
        // the key the connector holds stays.
        let unknown = format!("eyunknown{}", unique_number());
        let refused = patch(&app, &key, &id, json!({ "secrets": { "api_key": unknown } })).await;
        assert!(
            (400..600).contains(&refused.status) && refused.status != 200,
            "an unknown key is refused: {}",
            refused.text()
        );

        let replaced = format!("eyreplaced{}", unique_number());
        setup
            .kustomer
            .add_key(&replaced, &setup.kustomer.org(), &PERMISSIONS);
        let answer = patch(&app, &key, &id, json!({ "secrets": { "api_key": replaced } })).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(
            !answer.text().contains(&replaced),
            "never returned: {}",
            answer.text()
        );
        assert!(
            !shown(&app, &key, &id).await.to_string().contains(&replaced),
            "never shown"
        );
        let rows = select(&app, "SELECT * FROM crm_connectors WHERE id = ?1", &[&id]);
        assert_eq!(rows.len(), 1, "the connector's row is read");
        let stored = Value::Array(rows.into_iter().map(Value::Object).collect()).to_string();
        assert!(!stored.contains(&replaced), "sealed at rest: {stored}");

        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let before = setup.kustomer.calls().len();
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "Hello").await;
        settled_log(&app, &id, 3).await;
        let calls = setup.kustomer.calls();
        let after: Vec<Option<&str>> = calls[before..]
            .iter()
            .map(|call| call.header("authorization"))
            .collect();
        assert!(!after.is_empty(), "Kustomer was called");
        let expected = format!("Bearer {replaced}");
        assert!(
            after.iter().all(|header| *header == Some(expected.as_str())),
            "every call carries the new key: {after:?}"
        );
        let logs = format!("{:?}", app.stack.logs());
        assert!(!logs.contains(&replaced), "no key reaches the log");
    });
}

#[test]
fn bad_settings_are_refused_beside_their_field_and_nothing_is_saved() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (id, key) = (setup.id().to_owned(), setup.business.key.clone());
        let before = shown(&app, &key, &id).await["settings"].clone();
        let cases = [
            (
                json!({ "settings": { "escalation_phrases": "human" } }),
                "settings.escalation_phrases",
                "phrases not a list",
            ),
            (
                json!({ "settings": { "handoff_message": "x".repeat(1001) } }),
                "settings.handoff_message",
                "a hand-off text over 1,000 characters",
            ),
            (
                json!({ "settings": { "default_priority": 9 } }),
                "settings.default_priority",
                "a priority off the scale",
            ),
            (
                json!({ "settings": { "escalation_priority": "soon" } }),
                "settings.escalation_priority",
                "a priority by no name",
            ),
            (
                json!({ "settings": { "conversation_sync": "yes" } }),
                "settings.conversation_sync",
                "a flag not true or false",
            ),
            (
                json!({ "settings": { "field_mapping": { "customerEmail": "attributes.nowhere" } } }),
                "settings.field_mapping.customerEmail",
                "a mapping to no attribute",
            ),
            (
                json!({ "settings": { "field_mapping": "name" } }),
                "settings.field_mapping",
                "a mapping not an object",
            ),
            (
                json!({ "secrets": { "api_key": "" } }),
                "secrets.api_key",
                "an empty key",
            ),
            (
                json!({ "secrets": { "api_token": "t" } }),
                "secrets.api_token",
                "a Krayin secret on Kustomer",
            ),
        ];
        for (body, field, why) in cases {
            let refused = patch(&app, &key, &id, body).await;
            let error = assert_error(&refused, 422, "validation_failed", why);
            assert_eq!(error["field"], field, "{why}: {error}");
        }
        assert_eq!(
            shown(&app, &key, &id).await["settings"],
            before,
            "nothing refused was saved"
        );
    });
}

#[test]
fn krayin_starts_with_contacts_then_conversations_and_a_new_lead_stage_set_through_the_api_key() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::settings(json!({ "sync_conversations": false }))).await;
        let (id, key) = (setup.id().to_owned(), setup.business.key.clone());
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp_from(&app, &whatsapp, &unique_phone(), "First", "hello", None).await;
        let log = setup.settled_log(&app, 3).await;
        assert_eq!(
            entry(&log, "conversation.created")["status"],
            "skipped",
            "{log:#?}"
        );
        assert!(setup.krayin.conversation_activities().is_empty(), "contacts only");
        let messages_before = setup.krayin.message_activities().len();

        let changed = patch(
            &app,
            &key,
            &id,
            json!({ "settings": {
                "sync_conversations": true, "sync_messages": false, "sync_organizations": false,
                "pipeline_id": 1, "stage_progression": true, "stage_on_contact_created": 2,
            } }),
        )
        .await
        .expect(200)
        .json();
        let settings = &changed["settings"];
        assert_eq!(
            (
                &settings["sync_conversations"],
                &settings["sync_messages"],
                &settings["stage_on_contact_created"]
            ),
            (&json!(true), &json!(false), &json!(2)),
            "{changed}"
        );

        receive_whatsapp_from(&app, &whatsapp, &unique_phone(), "Second", "hello again", None).await;
        setup.settled_log(&app, 6).await;
        assert_eq!(
            setup.krayin.conversation_activities().len(),
            1,
            "the second contact's conversation is synced now"
        );
        assert_eq!(
            setup.krayin.message_activities().len(),
            messages_before,
            "messages are off now"
        );
        let stages: Vec<Option<u64>> = setup
            .krayin
            .leads()
            .iter()
            .map(|lead| lead.lead_pipeline_stage_id)
            .collect();
        assert_eq!(stages.len(), 2, "{stages:?}");
        assert_eq!(
            stages[1],
            Some(2),
            "the new lead starts at the New Lead stage: {stages:?}"
        );

        let refused = patch(
            &app,
            &key,
            &id,
            json!({ "settings": { "stage_on_contact_created": 999 } }),
        )
        .await;
        let error = assert_error(&refused, 422, "validation_failed", "a stage Krayin does not have");
        assert_eq!(error["field"], "settings.stage_on_contact_created", "{error}");
    });
}

#[test]
fn a_deleted_connector_drops_its_waiting_work_answers_404_at_its_paths_and_is_audited() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let (id, key) = (setup.id().to_owned(), setup.business.key.clone());
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "Hello").await;
        settled_log(&app, &id, 3).await;
        setup.kustomer.down();
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "Anyone there?").await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "Hello?").await;
        app.settle().await;
        let pending = sync_log(&app, &id, "status=pending").await.len();
        assert_eq!(pending, 6, "two customers' work waits while Kustomer is down");
        let done = sync_log(&app, &id, "").await.len() - pending;

        let other = app.business("Other").await;
        let path = format!("/api-connectors/{id}");
        let answer = app.api(&other.key, Method::Delete, &path, None).await;
        assert_error(&answer, 404, "not_found", "another business's connector");

        let deleted = app
            .api(&key, Method::Delete, &path, None)
            .await
            .expect(200)
            .json();
        assert_eq!(deleted["id"], id.as_str(), "{deleted}");
        assert_eq!(
            deleted["dropped_work"], pending,
            "the waiting work is counted: {deleted}"
        );
        assert_eq!(deleted["sync_log_entries"], done, "{deleted}");
        assert!(
            deleted["links"].as_u64().is_some_and(|links| links > 0),
            "{deleted}"
        );

        for (method, path, why) in [
            (Method::Get, path.clone(), "the connector"),
            (Method::Delete, path.clone(), "deleted again"),
            (Method::Get, format!("{path}/sync-log"), "its sync log"),
        ] {
            let answer = app.api(&key, method, &path, None).await;
            assert_error(&answer, 404, "not_found", why);
        }
        let admin = app
            .admin(Method::Get, &format!("/admin/connectors/{id}"), None)
            .await;
        assert_error(&admin, 404, "not_found", "the connector, to the operator");
        let hook = app
            .request(
                Method::Post,
                setup.webhook_path(),
                &[("content-type", "application/json")],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(hook.status, 404, "its webhook URL: {}", hook.text());

        let left = [
            "crm_sync_jobs",
            "crm_links",
            "crm_contacts",
            "crm_inbound_events",
            "crm_requests",
        ]
        .map(|table| {
            let rows = select(
                &app,
                &format!("SELECT * FROM {table} WHERE connector_id = ?1"),
                &[&id],
            );
            (table, rows.len())
        });
        assert!(
            left.iter().all(|(_, count)| *count == 0),
            "nothing of it is left: {left:?}"
        );

        setup.kustomer.up();
        let calls = setup.kustomer.calls().len();
        app.sweep().await;
        app.settle_within(std::time::Duration::from_secs(3600)).await;
        assert_eq!(
            setup.kustomer.calls().len(),
            calls,
            "the dropped work never reaches Kustomer"
        );

        let audit = app
            .api(&key, Method::Get, "/api-audit-log", None)
            .await
            .expect(200)
            .json();
        let entry = audit["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| entry["action"] == "connector.deleted")
            .unwrap_or_else(|| panic!("audited: {audit}"))
            .clone();
        assert_eq!(entry["target"]["id"], id.as_str(), "{entry}");
        assert_eq!(text(&entry["actor"]), format!("key:{}", &key[..12]), "{entry}");
        assert_eq!(entry["detail"]["dropped_work"], pending, "{entry}");
    });
}

/// The share of customers a connector at `percent` works for, by our ids.
fn rollout(percent: i64) -> Rollout {
    Rollout::parse("rollout_percent", percent).unwrap_or_else(|error| panic!("{error:?}"))
}

fn includes(percent: i64, connector: &str, customer: &str) -> bool {
    let (Some(connector), Some(customer)) = (ConnectorId::parse(connector), CustomerId::parse(customer))
    else {
        panic!("ids: {connector} {customer}");
    };
    rollout(percent).includes(&connector, &customer)
}

#[test]
fn a_connector_at_a_share_of_customers_follows_those_only_and_widening_keeps_them_in() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "rollout_percent": 25 })).await;
        let (id, key) = (setup.id().to_owned(), setup.business.key.clone());
        assert_eq!(shown(&app, &key, &id).await["rollout_percent"], 25);
        for refused in [json!(0), json!(101), json!(-1), json!("25"), json!(2.5)] {
            let answer = patch(&app, &key, &id, json!({ "rollout_percent": refused })).await;
            assert_error(
                &answer,
                422,
                "validation_failed",
                &format!("rollout_percent {refused}"),
            );
        }

        let people: Vec<Value> = (0..40)
            .map(|n| json!({ "name": format!("Person {n}"), "email": format!("rollout{n}@example.com") }))
            .collect();
        let synced = sync(&app, &key, Value::Array(people.clone())).await;
        let ids: Vec<String> = synced["results"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|detail| text(&detail["customer_id"]).to_owned())
            .collect();
        let inside: Vec<&String> = ids
            .iter()
            .filter(|customer| includes(25, &id, customer))
            .collect();
        assert!(
            !inside.is_empty() && inside.len() < ids.len(),
            "{} of 40 inside a quarter",
            inside.len()
        );
        let log = settled_log(&app, &id, ids.len()).await;
        let mut followed: Vec<&str> = log
            .iter()
            .filter(|entry| entry["status"] == "succeeded")
            .map(|entry| text(&entry["record_id"]))
            .collect();
        followed.sort_unstable();
        let mut expected: Vec<&str> = inside.iter().map(|customer| customer.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(followed, expected, "the customers inside, and only they");
        for skipped in log.iter().filter(|entry| entry["status"] == "skipped") {
            assert!(
                text(&skipped["last_error"]).contains("outside the connector's rollout"),
                "{skipped}"
            );
        }
        assert_eq!(setup.kustomer.customers().len(), inside.len());

        // Widened: everyone who was in stays in; the next change of each customer is followed.
        let widened = patch(&app, &key, &id, json!({ "rollout_percent": 100 }))
            .await
            .expect(200)
            .json();
        assert_eq!(widened["rollout_percent"], 100);
        let renamed: Vec<Value> = people
            .iter()
            .map(|person| json!({ "name": format!("{} again", text(&person["name"])), "email": person["email"] }))
            .collect();
        sync(&app, &key, Value::Array(renamed)).await;
        let log = settled_log(&app, &id, 2 * ids.len()).await;
        let updated: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["operation"] == "customer.updated")
            .collect();
        assert_eq!(updated.len(), ids.len());
        assert!(
            updated.iter().all(|entry| entry["status"] == "succeeded"),
            "{updated:#?}"
        );
        assert_eq!(
            setup.kustomer.customers().len(),
            ids.len(),
            "the customers first left out are created when they next change"
        );
    });
}
