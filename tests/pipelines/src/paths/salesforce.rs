//! The Salesforce connector following our events: a customer's Contact (or Lead) found by email
//! or upserted by the business's External ID field, never made twice; every message a completed
//! Task on it, in order, once; an escalation one Case tied to the Contact; Salesforce down, its
//! daily allowance running out and its session expiring or being revoked losing nothing and
//! doubling nothing; the connection test naming the org, its allowance and what the user lacks.

use crate::app::test;
use crate::partners::salesforce::{Access, Notified, ORG_ID};
use crate::steps::channels::{receive_whatsapp, whatsapp_account};
use crate::steps::crms::kustomer::settled_log;
use crate::steps::crms::salesforce::{CLIENT_ID, CLIENT_SECRET, OUTBOUND_TOKEN, connected_business};
use crate::steps::crms::{connector_of, entry, sync_log};
use crate::steps::customers::sync;
use crate::steps::store::select;
use crate::steps::{text, unique_email, unique_phone};
use edge::runtime::Method;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// A field of a record as text.
fn field<'v>(record: &'v Map<String, Value>, name: &str) -> &'v str {
    record.get(name).and_then(Value::as_str).unwrap_or_default()
}

#[test]
fn a_whatsapp_conversation_is_one_contact_and_each_message_a_completed_task_on_it_in_order_once() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        for n in 1..=6 {
            receive_whatsapp(&app, &whatsapp, &from, &format!("message {n}")).await;
            app.stack.advance(Duration::from_millis(5));
        }
        settled_log(&app, setup.id(), 8).await;

        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 1, "one contact: {contacts:#?}");
        let (contact, fields) = &contacts[0];
        assert_eq!(field(fields, "Phone"), from);
        assert_eq!(field(fields, "MobilePhone"), from);
        assert_eq!(field(fields, "LastName"), "Sender", "{fields:?}");

        let tasks = setup.salesforce.records("Task");
        let subjects: Vec<&str> = tasks.iter().map(|(_, task)| field(task, "Subject")).collect();
        let expected: Vec<String> = (1..=6)
            .map(|n| format!("WhatsApp from the customer: message {n}"))
            .collect();
        assert_eq!(subjects, expected, "each message once, in order");
        for (_, task) in &tasks {
            assert_eq!(field(task, "WhoId"), contact, "on the contact: {task:?}");
            assert_eq!(field(task, "Status"), "Completed");
            assert_eq!(field(task, "TaskSubtype"), "Task");
            assert!(field(task, "Description").starts_with("Received on WhatsApp at "));
        }
        let log = sync_log(&app, setup.id(), "").await;
        let messages: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["operation"] == "message.received")
            .collect();
        assert_eq!(messages.len(), 6, "{log:#?}");
        assert!(
            messages.iter().all(|entry| entry["status"] == "succeeded"),
            "{log:#?}"
        );
    });
}

#[test]
fn a_customer_with_an_email_is_found_on_the_contact_salesforce_has_and_one_with_an_external_id_upserted_once()
{
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let email = unique_email("ada");
        let known = setup.salesforce.seed(
            "Contact",
            json!({ "LastName": "Known", "Email": email.to_uppercase() }),
        );
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada Lovelace", "email": email }]),
        )
        .await;
        settled_log(&app, setup.id(), 1).await;
        let contacts = setup.salesforce.records("Contact");
        assert_eq!(
            contacts.len(),
            1,
            "the org's own contact, not a second: {contacts:#?}"
        );
        assert_eq!(contacts[0].0, known);
        assert_eq!(
            field(&contacts[0].1, "LastName"),
            "Lovelace",
            "updated with what we know"
        );

        // With an External ID field, a customer without an email is upserted by our id: events
        // for them at once make one record.
        let setup = connected_business(&app, json!({ "external_id_field": "Chat_Customer_Id__c" })).await;
        setup.salesforce.add_external_id("Contact", "Chat_Customer_Id__c");
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        for n in 1..=4 {
            receive_whatsapp(&app, &whatsapp, &from, &format!("hello {n}")).await;
        }
        let log = settled_log(&app, setup.id(), 6).await;
        let customer = text(&entry(&log, "customer.created")["record_id"]);
        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 1, "{contacts:#?}");
        assert_eq!(field(&contacts[0].1, "Chat_Customer_Id__c"), customer);
        assert!(
            setup
                .salesforce
                .calls()
                .iter()
                .all(|call| !call.url.contains("/query")),
            "an upsert needs no search"
        );
    });
}

/// The org's REST calls since `from` (of [`Salesforce::calls`]), as `METHOD path`.
fn rest_calls(salesforce: &crate::partners::salesforce::Salesforce, from: usize) -> Vec<String> {
    salesforce.calls()[from..]
        .iter()
        .filter(|call| call.url.contains("/services/data/"))
        .map(|call| {
            let path = call.url.split_once(".com").map_or(&*call.url, |(_, path)| path);
            format!("{} {}", call.method, path.split('?').next().unwrap_or(path))
        })
        .collect()
}

/// Nine customers synced at once: one whose email the org has already, seven new with an email
/// and one without.
async fn nine_customers(app: &crate::app::App, key: &str) -> Vec<String> {
    let emails: Vec<String> = (0..8).map(|n| unique_email(&format!("batch{n}"))).collect();
    let mut customers: Vec<Value> = emails
        .iter()
        .enumerate()
        .map(|(n, email)| json!({ "name": format!("Customer {n}"), "email": email }))
        .collect();
    customers.push(json!({ "name": "Phone Only", "phone": unique_phone() }));
    sync(app, key, Value::Array(customers)).await;
    emails
}

#[test]
fn a_batch_of_new_customers_is_one_query_and_one_collection_call_each_way_not_two_calls_a_customer() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let before = setup.salesforce.calls().len();
        let email = unique_email("known");
        let known = setup.salesforce.seed(
            "Contact",
            json!({ "LastName": "Known", "Email": email.to_uppercase() }),
        );
        let mut customers: Vec<Value> = (0..7)
            .map(|n| json!({ "name": format!("Customer {n}"), "email": unique_email(&format!("batch{n}")) }))
            .collect();
        customers.push(json!({ "name": "Ada Known", "email": email }));
        customers.push(json!({ "name": "Phone Only", "phone": unique_phone() }));
        sync(&app, &setup.business.key, Value::Array(customers)).await;
        let log = settled_log(&app, setup.id(), 9).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");

        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 9, "the org's own and eight new: {contacts:#?}");
        let kept = contacts
            .iter()
            .find(|(id, _)| *id == known)
            .map(|(_, fields)| fields);
        assert_eq!(
            kept.map(|fields| field(fields, "FirstName")),
            Some("Ada"),
            "updated with what we know"
        );
        assert_eq!(
            rest_calls(&setup.salesforce, before),
            [
                "GET /services/data/v66.0/query",
                "PATCH /services/data/v66.0/composite/sobjects",
                "POST /services/data/v66.0/composite/sobjects",
            ],
            "one search for every email, one update of the record found, one create of the rest"
        );
        let linked = select(
            &app,
            "SELECT local_id, crm_id FROM crm_links WHERE kind = 'customer' AND connector_id = ?1",
            &[setup.id()],
        );
        assert_eq!(linked.len(), 9, "{linked:#?}");
        assert!(linked.iter().any(|link| link["crm_id"] == known.as_str()));
    });
}

#[test]
fn with_an_external_id_field_a_batch_of_new_customers_is_one_upsert_call() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "external_id_field": "Chat_Customer_Id__c" })).await;
        setup.salesforce.add_external_id("Contact", "Chat_Customer_Id__c");
        let before = setup.salesforce.calls().len();
        nine_customers(&app, &setup.business.key).await;
        let log = settled_log(&app, setup.id(), 9).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 9, "{contacts:#?}");
        for entry in &log {
            let record = contacts
                .iter()
                .find(|(id, _)| entry["crm_id"] == id.as_str())
                .unwrap_or_else(|| panic!("{entry:#?}"));
            assert_eq!(field(&record.1, "Chat_Customer_Id__c"), text(&entry["record_id"]));
        }
        assert_eq!(
            rest_calls(&setup.salesforce, before),
            ["PATCH /services/data/v66.0/composite/sobjects/Contact/Chat_Customer_Id__c"]
        );
    });
}

#[test]
fn a_collection_call_that_fails_leaves_each_customer_to_its_own_work_which_makes_it_once() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup.salesforce.fail(
            1,
            |call| call.url.contains("/composite/sobjects"),
            edge::runtime::native::Reply::json(
                503,
                &json!([{ "message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE" }]),
            ),
        );
        let emails = nine_customers(&app, &setup.business.key).await;
        let log = settled_log(&app, setup.id(), 9).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 9, "each once: {contacts:#?}");
        for email in &emails {
            let with = contacts
                .iter()
                .filter(|(_, fields)| field(fields, "Email") == email)
                .count();
            assert_eq!(with, 1, "{email}: {contacts:#?}");
        }
    });
}

#[test]
fn an_escalation_opens_one_case_on_the_contact_and_a_second_one_a_note_and_its_priority() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "I want to talk to someone").await;
        let log = settled_log(&app, setup.id(), 3).await;
        let conversation = text(&entry(&log, "conversation.created")["record_id"]).to_owned();

        for (reason, priority) in [("refund over limit", "medium"), ("still waiting", "urgent")] {
            app.api(
                &setup.business.key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": conversation, "reason": reason, "priority": priority })),
            )
            .await
            .expect(202);
            app.settle().await;
        }
        let cases = setup.salesforce.records("Case");
        assert_eq!(cases.len(), 1, "one case: {cases:#?}");
        let (case, fields) = &cases[0];
        let contact = &setup.salesforce.records("Contact")[0].0;
        assert_eq!(field(fields, "Subject"), "Escalated: refund over limit");
        assert_eq!(field(fields, "ContactId"), contact, "tied to the contact");
        assert_eq!(field(fields, "Origin"), "Web");
        assert_eq!(field(fields, "Status"), "New");
        assert!(
            field(fields, "Description").contains("I want to talk to someone"),
            "the history: {fields:?}"
        );
        let now = setup
            .salesforce
            .record(case)
            .map(|record| record.fields)
            .unwrap_or_default();
        assert_eq!(
            field(&now, "Priority"),
            "High",
            "the second escalation's priority"
        );
        let notes: Vec<_> = setup
            .salesforce
            .records("Task")
            .into_iter()
            .filter(|(_, task)| field(task, "WhatId") == case)
            .collect();
        assert_eq!(notes.len(), 1, "{notes:#?}");
        assert_eq!(
            field(&notes[0].1, "Subject"),
            "Note: Escalated again: still waiting"
        );
        let escalations = sync_log(&app, setup.id(), "operation=escalate").await;
        assert!(
            escalations.iter().all(|entry| entry["status"] == "succeeded"),
            "{escalations:#?}"
        );
    });
}

#[test]
fn salesforce_down_for_minutes_then_back_loses_nothing_and_doubles_nothing() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        setup.salesforce.down(true);
        for n in 1..=4 {
            receive_whatsapp(&app, &whatsapp, &from, &format!("while down {n}")).await;
        }
        app.settle_within(Duration::from_secs(5 * 60)).await;
        assert!(setup.salesforce.records("Task").is_empty());
        let failed = sync_log(&app, setup.id(), "status=failed").await;
        assert!(failed.is_empty(), "retried, not failed: {failed:#?}");

        setup.salesforce.down(false);
        settled_log(&app, setup.id(), 6).await;
        assert_eq!(setup.salesforce.records("Contact").len(), 1);
        let subjects: Vec<String> = setup
            .salesforce
            .records("Task")
            .iter()
            .map(|(_, task)| field(task, "Subject").to_owned())
            .collect();
        let expected: Vec<String> = (1..=4)
            .map(|n| format!("WhatsApp from the customer: while down {n}"))
            .collect();
        assert_eq!(subjects, expected, "each once, in order");
    });
}

#[test]
fn the_org_using_the_businesss_share_of_its_allowance_pauses_the_connector_and_a_spent_one_is_waited_out() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "api_share_percent": 50 })).await;
        // The org has used 49,990 of its 100,000 calls: a few more reach the business's half.
        setup.salesforce.set_usage(49_990, 100_000);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        for n in 1..=12 {
            receive_whatsapp(&app, &whatsapp, &from, &format!("busy day {n}")).await;
        }
        app.settle_within(Duration::from_secs(60)).await;
        let (used, _) = setup.salesforce.usage();
        assert!(used <= 50_001, "the connector stopped at its share: {used} used");
        let status = connector_of(&app, setup.id()).await["status"].clone();
        assert!(status["paused_until"].is_string(), "the pause is shown: {status}");
        let failed = sync_log(&app, setup.id(), "status=failed").await;
        assert!(failed.is_empty(), "nothing failed: {failed:#?}");

        // A new day: the org's usage falls. Then another integration spends the whole allowance
        // (403 REQUEST_LIMIT_EXCEEDED): the connector waits that out as well.
        setup.salesforce.set_usage(0, 100_000);
        app.settle_within(Duration::from_secs(2 * 3600)).await;
        setup.salesforce.set_usage(100_000, 100_000);
        receive_whatsapp(&app, &whatsapp, &from, "after the limit").await;
        app.settle_within(Duration::from_secs(60)).await;
        let refused = setup.salesforce.calls().len();
        assert!(refused > 0);
        let status = connector_of(&app, setup.id()).await["status"].clone();
        assert!(status["paused_until"].is_string(), "paused on the 403: {status}");
        assert!(
            text(&status["last_error"]).contains("REQUEST_LIMIT_EXCEEDED"),
            "{status}"
        );
        setup.salesforce.set_usage(0, 100_000);
        settled_log(&app, setup.id(), 15).await;
        let tasks = setup.salesforce.records("Task");
        assert_eq!(tasks.len(), 13, "every message once: {tasks:#?}");
        let failed = sync_log(&app, setup.id(), "status=failed").await;
        assert!(failed.is_empty(), "nothing lost: {failed:#?}");
    });
}

#[test]
fn an_expired_session_is_refreshed_on_its_401_and_a_revoked_authorisation_is_said_plainly() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        receive_whatsapp(&app, &whatsapp, &from, "first").await;
        settled_log(&app, setup.id(), 3).await;

        setup.salesforce.expire_sessions();
        receive_whatsapp(&app, &whatsapp, &from, "after the session timed out").await;
        settled_log(&app, setup.id(), 4).await;
        let refreshes: Vec<_> = setup
            .salesforce
            .calls()
            .into_iter()
            .filter(|call| call.path() == "/services/oauth2/token")
            .collect();
        assert_eq!(refreshes.len(), 1, "one refresh");
        assert!(refreshes[0].text().contains("grant_type=refresh_token"));
        assert_eq!(setup.salesforce.records("Task").len(), 2);

        setup.salesforce.revoke();
        receive_whatsapp(&app, &whatsapp, &from, "after the revocation").await;
        app.settle_within(Duration::from_secs(3600)).await;
        let failed = sync_log(&app, setup.id(), "status=failed").await;
        assert_eq!(failed.len(), 1, "{failed:#?}");
        let said = text(&failed[0]["last_error"]);
        assert!(
            said.contains("expired access/refresh token")
                && said.contains("Connect it again from the console"),
            "the revocation is said, with what to do: {said}"
        );
    });
}

#[test]
fn a_token_is_refreshed_before_the_orgs_session_timeout_runs_out_not_after_a_refusal() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "session_timeout_minutes": 30 })).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        let refreshes = || {
            setup
                .salesforce
                .calls()
                .iter()
                .filter(|call| call.path() == "/services/oauth2/token")
                .count()
        };
        // The first token's life is unknown (it came with the connector): it is refreshed when
        // Salesforce refuses it, and the new one lasts the org's 30 minutes.
        setup.salesforce.expire_sessions();
        receive_whatsapp(&app, &whatsapp, &from, "first").await;
        settled_log(&app, setup.id(), 3).await;
        assert_eq!(refreshes(), 1);

        // 26 minutes on, the token is within five minutes of its end: it is refreshed before the
        // next call, though Salesforce would still take it.
        app.stack.advance(Duration::from_secs(26 * 60));
        let before = setup.salesforce.calls().len();
        receive_whatsapp(&app, &whatsapp, &from, "later").await;
        settled_log(&app, setup.id(), 4).await;
        assert_eq!(refreshes(), 2, "refreshed ahead");
        let calls = setup.salesforce.calls();
        assert_eq!(
            calls[before].path(),
            "/services/oauth2/token",
            "the refresh comes first: {:?}",
            calls[before..].iter().map(|call| call.path()).collect::<Vec<_>>()
        );
        assert_eq!(setup.salesforce.records("Task").len(), 2);
    });
}

#[test]
fn a_server_app_gets_its_token_with_its_own_credentials_before_its_first_call() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let salesforce = crate::partners::salesforce::Salesforce::install(&app.stack, "unused");
        salesforce.revoke();
        salesforce.add_app(CLIENT_ID, CLIENT_SECRET, None);
        let connector = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/connectors", business.id),
                Some(json!({
                    "kind": "salesforce",
                    "settings": { "instance_url": "https://acme.my.salesforce.com" },
                    "secrets": { "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET },
                    "rate_limit": crate::steps::crms::no_budget(),
                })),
            )
            .await
            .expect(201)
            .json();
        let id = text(&connector["id"]).to_owned();
        let tested = app
            .admin(Method::Post, &format!("/admin/connectors/{id}/test"), None)
            .await
            .expect(200)
            .json();
        assert_eq!(tested["ok"], true, "{tested}");
        assert_eq!(tested["user"]["organization_id"], ORG_ID);
        let calls = salesforce.calls();
        assert_eq!(calls[0].path(), "/services/oauth2/token", "a token first");
        assert!(calls[0].text().starts_with("grant_type=client_credentials&"));
        let shown = connector_of(&app, &id).await;
        assert!(
            shown["secrets_set"]
                .as_array()
                .is_some_and(|set| set.iter().any(|name| name == "access_token")),
            "the token got is kept: {shown}"
        );
    });
}

#[test]
fn the_connection_test_names_the_org_its_allowance_and_each_object_permission_the_user_lacks() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let id = setup.id().to_owned();
        let test_connector = || async {
            app.admin(Method::Post, &format!("/admin/connectors/{id}/test"), None)
                .await
                .expect(200)
                .json()
        };
        let passed = test_connector().await;
        assert_eq!(passed["ok"], true, "{passed}");
        assert_eq!(passed["user"]["organization_id"], ORG_ID);
        assert_eq!(passed["user"]["api_requests"]["max"], 100_000);

        setup.salesforce.set_access("Case", Access::Read);
        setup.salesforce.set_access("Task", Access::None);
        let failed = test_connector().await;
        assert_eq!(failed["ok"], false, "{failed}");
        let reason = text(&failed["reason"]);
        for lacking in ["Task: Create", "Case: Create"] {
            assert!(reason.contains(lacking), "{lacking} in {reason}");
        }
        assert!(!reason.contains("Case: Read"), "{reason}");

        setup.salesforce.set_access("Case", Access::Edit);
        setup.salesforce.set_access("Task", Access::Edit);
        setup.salesforce.set_limits_readable(false);
        let warned = test_connector().await;
        assert_eq!(warned["ok"], true, "{warned}");
        assert!(
            text(&warned["warning"]).contains("View Setup and Configuration"),
            "{warned}"
        );
    });
}

#[test]
fn a_contact_merged_in_salesforce_keeps_our_customer_on_the_master_and_a_deleted_one_is_made_again() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let email = unique_email("ada");
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada Lovelace", "email": email }]),
        )
        .await;
        settled_log(&app, setup.id(), 1).await;
        let ours = setup.salesforce.records("Contact")[0].0.clone();
        let master = setup.salesforce.seed(
            "Contact",
            json!({ "LastName": "Lovelace", "FirstName": "Augusta" }),
        );
        setup.salesforce.merge(&master, &ours);

        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada King", "email": email }]),
        )
        .await;
        settled_log(&app, setup.id(), 2).await;
        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 1, "no third contact: {contacts:#?}");
        assert_eq!(contacts[0].0, master, "followed onto the master");
        assert_eq!(field(&contacts[0].1, "LastName"), "King");

        setup.salesforce.delete(&master);
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada Byron", "email": email }]),
        )
        .await;
        settled_log(&app, setup.id(), 3).await;
        let contacts = setup.salesforce.records("Contact");
        assert_eq!(contacts.len(), 1, "{contacts:#?}");
        assert_ne!(contacts[0].0, master, "made again");
        assert_eq!(field(&contacts[0].1, "LastName"), "Byron");
    });
}

/// A Case notification as a workflow rule on Case sends it.
fn case_notified<'a>(id: &'a str, case: &'a str, status: &'a str, modified: &'a str) -> Notified<'a> {
    Notified {
        id,
        object: "Case",
        fields: vec![
            ("Id", Some(case)),
            ("Status", Some(status)),
            ("SystemModstamp", Some(modified)),
        ],
    }
}

#[test]
fn a_case_closed_in_salesforce_resolves_its_conversation_once_whatever_order_its_notifications_come_in() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "I need a person").await;
        let log = settled_log(&app, setup.id(), 3).await;
        let conversation = text(&entry(&log, "conversation.created")["record_id"]).to_owned();
        app.api(
            &setup.business.key,
            Method::Post,
            "/api-escalations",
            Some(json!({ "conversation_id": conversation, "reason": "refund" })),
        )
        .await
        .expect(202);
        app.settle().await;
        let case = setup.salesforce.records("Case")[0].0.clone();
        let status = |app: &crate::app::App| {
            let rows = select(
                app,
                "SELECT status FROM conversations WHERE id = ?1",
                &[&conversation],
            );
            text(&rows[0]["status"]).to_owned()
        };
        assert_eq!(status(&app), "open");

        // Closed in Salesforce: the message comes twice (Salesforce sends until it is
        // acknowledged), then a notification of an earlier edit comes late.
        setup.salesforce.set_field(&case, "Status", json!("Closed"));
        setup.salesforce.set_field(&case, "IsClosed", json!(true));
        let closed = [case_notified(
            "04l5g000000AAA1",
            &case,
            "Closed",
            "2026-11-26T12:05:00.000Z",
        )];
        for _ in 0..2 {
            let answer = setup.notify(&app, ORG_ID, OUTBOUND_TOKEN, &closed).await;
            assert_eq!(answer.status, 200, "{}", answer.text());
            assert!(answer.text().contains("<Ack>true</Ack>"), "{}", answer.text());
            assert_eq!(status(&app), "resolved");
        }
        let reads = || {
            setup
                .salesforce
                .calls()
                .iter()
                .filter(|call| call.method == "GET" && call.path().contains("/sobjects/Case/"))
                .count()
        };
        assert_eq!(reads(), 1, "the second delivery is known by its id: no call");
        let late = [case_notified(
            "04l5g000000AAA2",
            &case,
            "Working",
            "2026-11-26T12:01:00.000Z",
        )];
        let answer = setup.notify(&app, ORG_ID, OUTBOUND_TOKEN, &late).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(
            status(&app),
            "resolved",
            "a late notification does not undo the close"
        );

        setup.salesforce.set_field(&case, "Status", json!("Working"));
        setup.salesforce.set_field(&case, "IsClosed", json!(false));
        let reopened = [case_notified(
            "04l5g000000AAA3",
            &case,
            "Working",
            "2026-11-26T12:10:00.000Z",
        )];
        setup
            .notify(&app, ORG_ID, OUTBOUND_TOKEN, &reopened)
            .await
            .expect(200);
        assert_eq!(status(&app), "open", "reopened in Salesforce");
        let log = sync_log(&app, setup.id(), "").await;
        assert!(
            !log.iter()
                .any(|entry| entry["operation"] == "conversation.status_changed"),
            "Salesforce's own change is not work for its connector: {log:#?}"
        );
    });
}

#[test]
fn an_outbound_message_with_the_wrong_token_from_another_org_or_not_xml_is_refused_and_applies_nothing() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "hello").await;
        settled_log(&app, setup.id(), 3).await;
        let contact = setup.salesforce.records("Contact")[0].0.clone();
        let deleted = [Notified {
            id: "04l5g000000BBB1",
            object: "Contact",
            fields: vec![("Id", Some(&contact)), ("IsDeleted", Some("true"))],
        }];
        let links = |app: &crate::app::App| {
            select(app, "SELECT crm_id FROM crm_links WHERE kind = 'customer'", &[]).len()
        };
        assert_eq!(links(&app), 1);

        let wrong = setup
            .notify(&app, ORG_ID, "xT7kq2Vd9Lz4Xw8Rb3Nc6Hy1Mf5Pj0Gs", &deleted)
            .await;
        assert_eq!(wrong.status, 401, "{}", wrong.text());
        let other_org = setup
            .notify(&app, "00D5g000009Zzz9EAC", OUTBOUND_TOKEN, &deleted)
            .await;
        assert_eq!(other_org.status, 403, "{}", other_org.text());
        assert!(other_org.text().contains("<faultcode>soapenv:Client</faultcode>"));
        let path = format!("/api/webhooks/salesforce/{}/{OUTBOUND_TOKEN}", setup.id());
        let json_body = app
            .request(
                Method::Post,
                &path,
                &[("content-type", "application/json")],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(json_body.status, 415, "{}", json_body.text());
        let entity = app
            .request(
                Method::Post,
                &path,
                &[("content-type", "text/xml")],
                br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#.to_vec(),
            )
            .await;
        assert_eq!(entity.status, 400, "{}", entity.text());
        let nobody = app
            .request(
                Method::Post,
                &format!("/api/webhooks/salesforce/00000000-0000-4000-8000-000000000000/{OUTBOUND_TOKEN}"),
                &[("content-type", "text/xml")],
                b"<x/>".to_vec(),
            )
            .await;
        assert_eq!(nobody.status, 404, "{}", nobody.text());
        assert_eq!(links(&app), 1, "nothing refused was applied");

        setup
            .notify(&app, ORG_ID, OUTBOUND_TOKEN, &deleted)
            .await
            .expect(200);
        assert_eq!(links(&app), 0, "the deleted contact is forgotten");
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "again").await;
        app.settle().await;
        assert!(links(&app) >= 1, "made again by the customer's next work");
    });
}

#[test]
fn a_contact_merged_in_salesforce_and_notified_keeps_our_customer_on_the_one_it_went_into() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada Lovelace", "email": unique_email("ada") }]),
        )
        .await;
        settled_log(&app, setup.id(), 1).await;
        let ours = setup.salesforce.records("Contact")[0].0.clone();
        let master = setup
            .salesforce
            .seed("Contact", json!({ "LastName": "Lovelace" }));
        setup.salesforce.merge(&master, &ours);
        let merged = [Notified {
            id: "04l5g000000CCC1",
            object: "Contact",
            fields: vec![
                ("Id", Some(&ours)),
                ("MasterRecordId", Some(&master)),
                ("IsDeleted", Some("true")),
            ],
        }];
        setup
            .notify(&app, ORG_ID, OUTBOUND_TOKEN, &merged)
            .await
            .expect(200);
        let kept = select(&app, "SELECT crm_id FROM crm_links WHERE kind = 'customer'", &[]);
        assert_eq!(text(&kept[0]["crm_id"]), master, "{kept:?}");
    });
}

/// The query parameter `name` of `url`.
fn parameter(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap_or_else(|problem| panic!("{url}: {problem}"))
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}

#[test]
fn a_person_connects_the_org_with_oauth_and_pkce_and_the_connector_is_for_the_org_the_token_answer_names() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let salesforce = crate::partners::salesforce::Salesforce::install(&app.stack, "unused");
        salesforce.add_app(CLIENT_ID, CLIENT_SECRET, None);
        let start = || async {
            app.api(
                &business.key,
                Method::Post,
                "/api-connector-authorizations",
                Some(json!({
                    "kind": "salesforce", "name": "Sales", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "settings": { "instance_url": "https://acme.my.salesforce.com" },
                })),
            )
            .await
            .expect(201)
            .json()
        };
        let complete = |state: String, code: String| {
            let (app, key) = (&app, business.key.clone());
            async move {
                app.api(
                    &key,
                    Method::Post,
                    "/api-connector-authorizations/complete",
                    Some(json!({ "state": state, "code": code })),
                )
                .await
            }
        };
        let first = start().await;
        let page = text(&first["authorize_url"]).to_owned();
        assert_eq!(parameter(&page, "code_challenge_method"), "S256");
        let challenge = parameter(&page, "code_challenge");
        assert_eq!(challenge.len(), 43, "a SHA-256 in base64url");
        let second = start().await;
        assert_ne!(
            parameter(text(&second["authorize_url"]), "code_challenge"),
            challenge,
            "each authorisation its own verifier"
        );
        assert!(
            !text(&first["state"]).contains(&challenge),
            "the verifier travels sealed"
        );

        // A code traded with another authorisation's state (so its verifier) is refused by
        // Salesforce, and connects nothing.
        let back = salesforce
            .consent(&page)
            .unwrap_or_else(|shown| panic!("the consent page showed: {shown}"));
        let code = parameter(&back, "code");
        let crossed = complete(text(&second["state"]).to_owned(), code.clone()).await;
        let refused = crossed.expect(422).json();
        assert_eq!(refused["error"]["field"], "code", "{refused}");
        assert!(
            text(&refused["error"]["message"]).contains("invalid"),
            "{refused}"
        );

        let again = salesforce
            .consent(&page)
            .unwrap_or_else(|shown| panic!("the consent page showed: {shown}"));
        let connector = complete(parameter(&again, "state"), parameter(&again, "code"))
            .await
            .expect(201)
            .json();
        assert_eq!(connector["settings"]["organization_id"], ORG_ID, "{connector}");
        assert_eq!(
            connector["settings"]["instance_url"],
            "https://acme.my.salesforce.com"
        );
        assert!(
            connector["secrets_set"]
                .as_array()
                .is_some_and(|set| set.iter().any(|name| name == "refresh_token")),
            "{connector}"
        );
        let id = text(&connector["id"]).to_owned();
        let tested = app
            .api(
                &business.key,
                Method::Post,
                &format!("/api-connectors/{id}/test"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(tested["ok"], true, "{tested}");
    });
}
