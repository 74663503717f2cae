//! The Krayin connector following our own events, ported from
//! `tests/e2e/crm/krayin-events.test.mjs`: a synced customer as one Krayin person and lead
//! (custom fields mapped as Chatwoot's attributes are), a WhatsApp conversation as a call with
//! every message received or sent a done call, resolving it marking it done, twenty messages at
//! once making one person, the toggles honoured, and Krayin's refusals failing at once with its
//! reason.

use super::{Connect, krayin_business, pick};
use crate::app::test;
use crate::partners::krayin::Fault;
use crate::partners::meta::Graph;
use crate::steps::channels::{receive_whatsapp_from, whatsapp_account};
use crate::steps::crms::operations;
use crate::steps::customers::sync;
use crate::steps::{unique_email, unique_number, unique_phone};
use edge::runtime::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn record_of(log: &[Value], operation: &str) -> String {
    log.iter()
        .find(|entry| entry["operation"] == operation)
        .and_then(|entry| entry["record_id"].as_str())
        .unwrap_or_else(|| panic!("no {operation} in {log:#?}"))
        .to_owned()
}

#[test]
fn a_synced_customer_becomes_one_person_and_one_lead_with_its_custom_fields_and_an_update_changes_both() {
    test(|app| async move {
        let setup = krayin_business(
            &app,
            Connect::settings(
                json!({ "pipeline_id": 2, "lead_source_id": 5, "lead_type_id": 2, "user_id": 1 }),
            ),
        )
        .await;
        let krayin = &setup.krayin;
        let tag = unique_number();
        let email = unique_email("ada");
        let synced = sync(
            &app,
            &setup.business.key,
            json!([{
                "external_id": format!("CRM-{tag}"),
                "name": "Ada Lovelace",
                "email": email,
                "phone": "087 123 4567",
                "notes": "Met at the Dublin fair",
                "custom_fields": { "job_title": "Head of Operations", "company_name": "Analytical Engines",
                                   "company_city": "Dublin", "lead_value": 1200 },
            }]),
        )
        .await;
        let customer_id = synced["results"]["details"][0]["customer_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{synced}"))
            .to_owned();
        setup.settled_log(&app, 1).await;

        let persons = krayin.persons();
        assert_eq!((persons.len(), krayin.leads().len()), (1, 1), "{persons:#?}");
        let person = &persons[0];
        assert_eq!(person.name, "Ada Lovelace");
        assert_eq!(person.emails, [json!({ "value": email, "label": "work" })]);
        assert_eq!(
            person.contact_numbers,
            [json!({ "value": "+353871234567", "label": "work" })],
            "the phone in E.164"
        );
        assert_eq!(person.job_title, "Head of Operations");
        let organizations = krayin.organizations();
        assert_eq!(organizations.len(), 1);
        let organization = &organizations[0];
        assert_eq!(organization.name, "Analytical Engines");
        assert_eq!(
            organization.address["city"], "Dublin",
            "the company's city: {}",
            organization.address
        );
        assert_eq!(person.organization_id, Some(organization.id));

        let lead = krayin.leads()[0].clone();
        assert_eq!(lead.title, "Ada Lovelace");
        assert_eq!(lead.person_id, Some(person.id));
        assert_eq!(lead.lead_value.as_f64(), Some(1200.0));
        assert!(
            lead.description
                .as_str()
                .is_some_and(|d| d.contains("Met at the Dublin fair")),
            "the notes describe the lead: {}",
            lead.description
        );
        assert_eq!(
            (lead.lead_pipeline_id, lead.lead_pipeline_stage_id),
            (Some(2), Some(7))
        );
        assert_eq!(
            (lead.lead_source_id, lead.lead_type_id, lead.user_id),
            (Some(5), Some(2), Some(1))
        );

        let external_id = format!(
            "krayin:person:{}|krayin:lead:{}|krayin:organization:{}",
            person.id, lead.id, organization.id
        );
        let expected = json!({
            "contact": customer_id, "external_id": external_id, "person_id": person.id,
            "lead_id": lead.id, "organization_id": organization.id,
        });
        let keys = [
            "contact",
            "external_id",
            "person_id",
            "lead_id",
            "organization_id",
        ];
        let linked = setup.contact(&app, &customer_id).await.expect(200).json();
        assert_eq!(pick(&linked, &keys), expected);
        let found = setup
            .contact_by_external_id(&app, &format!("krayin:person:{}", person.id))
            .await
            .expect(200)
            .json();
        assert_eq!(found["contact"], customer_id.as_str());
        assert_eq!(
            setup
                .contact(&app, "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f")
                .await
                .status,
            404,
            "a customer the connector does not know"
        );
        let shown = app
            .api(
                &setup.business.key,
                Method::Get,
                &format!("/api-customers?id={customer_id}"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            shown["crm_ids"],
            json!([{ "connector_id": setup.id(), "kind": "krayin", "external_id": external_id }]),
            "the customer shows where Krayin keeps them"
        );

        sync(
            &app,
            &setup.business.key,
            json!([{ "external_id": format!("CRM-{tag}"), "name": "Ada King", "email": email,
                     "custom_fields": { "job_title": "Director" } }]),
        )
        .await;
        let log = setup.settled_log(&app, 2).await;
        let (persons, leads) = (krayin.persons(), krayin.leads());
        assert_eq!(
            (persons[0].name.as_str(), leads[0].title.as_str()),
            (Some("Ada King"), Some("Ada King"))
        );
        assert_eq!(persons[0].job_title, "Director");
        assert_eq!(persons.len(), 1, "updated, not created again");
        assert_eq!(leads.len(), 1);
        assert_eq!(krayin.organizations().len(), 1);
        assert_eq!(leads[0].lead_pipeline_stage_id, Some(7), "still where it stood");
        assert_eq!(
            operations(&log),
            [
                ("customer.updated".to_owned(), "succeeded".to_owned()),
                ("customer.created".to_owned(), "succeeded".to_owned()),
            ]
        );
        assert!(
            log.iter().all(|entry| entry["record_id"] == customer_id.as_str()
                && entry["customer_id"] == customer_id.as_str()),
            "{log:#?}"
        );
    });
}

#[test]
fn a_customer_krayin_refuses_fails_at_once_with_krayins_reason_and_is_not_retried() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let reason = "The emails.0.value has already been taken.";
        krayin.fail(
            Fault::status(422)
                .times(5)
                .body(json!({ "message": reason, "errors": { "emails.0.value": [reason] } }))
                .on("POST", "/api/v1/contacts/persons"),
        );
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Refused", "email": unique_email("refused") }]),
        )
        .await;
        let log = setup.settled_log(&app, 1).await;
        let entry = &log[0];
        assert_eq!(entry["status"], "failed", "{entry}");
        assert_eq!(entry["attempts"], 1, "not retried");
        assert_eq!(entry["last_status"], 422);
        assert!(
            entry["last_error"].as_str().is_some_and(|e| e.contains(reason)),
            "Krayin's message: {}",
            entry["last_error"]
        );
        assert_eq!(krayin.count("POST", "/api/v1/contacts/persons"), 1, "asked once");
        let status = &setup.shown(&app).await["status"];
        assert_eq!(status["last_24h"]["failed"], 1, "{status}");
    });
}

#[test]
fn a_whatsapp_conversation_is_a_call_each_message_received_or_sent_a_done_call_and_resolving_it_marks_it_done()
 {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        receive_whatsapp_from(
            &app,
            &whatsapp,
            &from,
            "Grace Hopper",
            "Can I get a quote for 40 seats?",
            None,
        )
        .await;
        let log = setup.settled_log(&app, 3).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        let conversation_id = record_of(&log, "conversation.created");
        let customer_id = record_of(&log, "customer.created");

        let persons = krayin.persons();
        assert_eq!(persons.len(), 1);
        assert_eq!(
            persons[0].contact_numbers,
            [json!({ "value": from, "label": "work" })]
        );
        let lead = krayin.leads()[0].clone();
        let conversations = krayin.conversation_activities();
        assert_eq!(conversations.len(), 1, "{:#?}", krayin.activities());
        let conversation = &conversations[0];
        assert_eq!(conversation.title, format!("Conversation #{conversation_id}"));
        assert_eq!(conversation.activity_type, "call", "WhatsApp is a call");
        assert_eq!(conversation.is_done, 0, "open");
        assert_eq!(conversation.lead_ids, [lead.id]);
        assert_eq!(
            conversation.participant_persons(),
            [persons[0].id],
            "the guide's Person ID: Link to Person"
        );
        let messages = krayin.message_activities();
        let received = messages.first().unwrap_or_else(|| panic!("the message"));
        assert_eq!(
            received.title,
            format!("Message from Grace Hopper - Conversation #{conversation_id}")
        );
        assert_eq!(received.activity_type, "call");
        assert_eq!(received.is_done, 1);
        assert!(received.comment().contains("Can I get a quote for 40 seats?"));
        assert_eq!(
            (received.lead_ids.as_slice(), received.participant_persons()),
            ([lead.id].as_slice(), vec![persons[0].id]),
            "the message: on the lead, with the person"
        );
        let shown = app
            .api(
                &setup.business.key,
                Method::Get,
                &format!("/api-customers?id={customer_id}"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            shown["crm_ids"],
            json!([{ "connector_id": setup.id(), "kind": "krayin", "external_id": format!(
                "krayin:person:{}|krayin:lead:{}|krayin:activity:{}",
                persons[0].id, lead.id, conversation.id
            ) }]),
            "the guide's External ID Format: no company, so no organization"
        );

        app.api(
            &setup.business.key,
            Method::Post,
            "/api-send-message",
            Some(json!({ "customer_id": customer_id, "channel": "whatsapp", "content": "Yes: 40 seats at 12 EUR each." })),
        )
        .await
        .expect(202);
        app.settle().await;
        let reply = krayin
            .message_activities()
            .into_iter()
            .find(|a| a.comment().contains("40 seats at 12 EUR"))
            .unwrap_or_else(|| panic!("the sent message in Krayin: {:#?}", krayin.activities()));
        let title = reply.title();
        assert!(
            title.starts_with("Message from ")
                && title.ends_with(&format!(" - Conversation #{conversation_id}"))
                && title.len() > "Message from  - Conversation #".len() + conversation_id.len(),
            "{title}"
        );
        assert_eq!(reply.activity_type, "call");
        assert_eq!(reply.is_done, 1);
        assert_eq!(reply.participant_persons(), [persons[0].id], "a sent message too");
        assert!(
            setup
                .log(&app, "")
                .await
                .iter()
                .any(|e| e["operation"] == "message.sent" && e["status"] == "succeeded"),
            "message.sent synced"
        );

        app.api(
            &setup.business.key,
            Method::Patch,
            &format!("/api-conversations/{conversation_id}"),
            Some(json!({ "status": "resolved" })),
        )
        .await
        .expect(200);
        app.settle().await;
        let done = krayin
            .activity_titled(&format!("Conversation #{conversation_id}"))
            .map(|a| a.is_done);
        assert_eq!(done, Some(1), "the conversation's activity done");
        assert_eq!(krayin.conversation_activities().len(), 1, "the same activity");
        assert_eq!(
            krayin.conversation_activities()[0].participant_persons(),
            [persons[0].id],
            "marking it done keeps its participants"
        );
        assert_eq!(krayin.message_activities().len(), 2);
        let linked = setup.contact(&app, &customer_id).await.expect(200).json();
        assert_eq!(
            (linked["person_id"].as_u64(), linked["lead_id"].as_u64()),
            (Some(persons[0].id), Some(lead.id))
        );
    });
}

#[test]
fn twenty_messages_from_one_new_customer_at_once_make_exactly_one_person_one_lead_and_one_conversation() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        // Workers that wait on Krayin interleave: the contact's lease is what keeps them apart.
        krayin.set_latency(Duration::from_millis(30));
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        let texts: Vec<String> = (0..20).map(|i| format!("burst message {i}.")).collect();
        futures_util::future::join_all(
            texts
                .iter()
                .map(|text| receive_whatsapp_from(&app, &whatsapp, &from, "WhatsApp Sender", text, None)),
        )
        .await;
        let log = setup.settled_log(&app, 22).await;
        assert_eq!(
            log.len(),
            22,
            "the customer, the conversation and twenty messages"
        );
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        assert_eq!(krayin.persons().len(), 1, "one person");
        assert_eq!(krayin.leads().len(), 1, "one lead");
        assert_eq!(krayin.conversation_activities().len(), 1, "one conversation");
        let mut seen: Vec<String> = krayin
            .message_activities()
            .iter()
            .filter_map(|a| {
                texts
                    .iter()
                    .find(|text| a.comment().contains(text.as_str()))
                    .cloned()
            })
            .collect();
        assert_eq!(seen.len(), 20, "every message once");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 20, "each message once");
    });
}

#[test]
fn with_message_sync_off_messages_are_skipped_and_with_conversation_sync_off_conversations_are() {
    test(|app| async move {
        let messages_off = krayin_business(&app, Connect::settings(json!({ "sync_messages": false }))).await;
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &messages_off.business.id, None).await;
        receive_whatsapp_from(&app, &whatsapp, &unique_phone(), "Sender", "not in Krayin", None).await;
        let log = messages_off.settled_log(&app, 3).await;
        let received = log
            .iter()
            .find(|entry| entry["operation"] == "message.received")
            .unwrap_or_else(|| panic!("{log:#?}"));
        assert_eq!(received["status"], "skipped", "{received}");
        assert!(
            received["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "says why"
        );
        assert_eq!(
            messages_off.krayin.conversation_activities().len(),
            1,
            "the conversation is synced"
        );
        assert!(
            messages_off.krayin.message_activities().is_empty(),
            "its message is not"
        );

        let conversations_off =
            krayin_business(&app, Connect::settings(json!({ "sync_conversations": false }))).await;
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &conversations_off.business.id, None).await;
        receive_whatsapp_from(
            &app,
            &whatsapp,
            &unique_phone(),
            "Sender",
            "no conversation in Krayin",
            None,
        )
        .await;
        let log = conversations_off.settled_log(&app, 3).await;
        let created = log
            .iter()
            .find(|entry| entry["operation"] == "conversation.created")
            .unwrap_or_else(|| panic!("{log:#?}"));
        assert_eq!(created["status"], "skipped", "{created}");
        assert!(
            created["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "says why"
        );
        assert!(
            conversations_off.krayin.conversation_activities().is_empty(),
            "no conversation activity"
        );
        assert_eq!(
            conversations_off.krayin.persons().len(),
            1,
            "the customer is still synced"
        );
    });
}
