//! A Chatwoot contact's story, end to end: Chatwoot delivers its contact, conversation and
//! message events signed to the receiver of a business's Krayin connector, each is recorded once
//! however often Chatwoot redelivers it, and crm-sync writes them to Krayin: one Person (in its
//! company's Organization), one Lead in the first stage of the configured pipeline, and the
//! conversation's and the message's activities on that lead, as a Krayin user sees them.

use crate::app::test;
use crate::partners::chatwoot::{self, Contact, Conversation, Delivery, Message, WHATSAPP};
use crate::paths::krayin::{Connect, krayin_business, post};
use crate::steps::crms::{operations, rollout_leaving_out, sync_log};
use domain::crm::work::ContactKey;
use edge::runtime::Method;
use serde_json::json;
use std::time::Duration;

#[test]
fn a_chatwoot_contact_its_conversation_and_message_are_written_to_krayin_once_however_often_chatwoot_redelivers()
 {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::settings(json!({ "pipeline_id": 2 }))).await;
        let krayin = &setup.krayin;
        let jane = Contact::new(4242, "Jane Doe")
            .email("Jane@Example.com")
            .phone("+14155550123")
            .attribute("company_name", "Acme Corp")
            .attribute("job_title", "Buyer");
        let conversation = Conversation::new(77, WHATSAPP, &jane);
        let message = Message::incoming(9001, &conversation, "Do you ship to Canada? <quote> & more");
        let payloads = [
            chatwoot::contact_created(&jane),
            chatwoot::conversation_created(&conversation),
            chatwoot::message_created(&message),
        ];
        let asked_at_setup = krayin.calls().len();
        for payload in &payloads {
            let delivery = setup.delivery(payload);
            let first = post(&app, setup.path(), &delivery).await.expect(200).json();
            assert_eq!(first["outcome"], "queued", "{}: {first}", payload["event"]);
            // Chatwoot's retry of a delivery it saw no answer to: the same id, the same body.
            let again = post(&app, setup.path(), &delivery).await.expect(200).json();
            assert!(
                again["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("duplicate")),
                "{}: {again}",
                payload["event"]
            );
        }
        assert_eq!(
            krayin.calls().len(),
            asked_at_setup,
            "the receiver never calls Krayin (the admin API read its pipelines)"
        );
        app.settle().await;

        let persons = krayin.persons();
        assert_eq!(persons.len(), 1, "one person: {persons:#?}");
        let person = &persons[0];
        assert_eq!(person.name, "Jane Doe");
        assert_eq!(
            person.emails,
            [json!({ "value": "jane@example.com", "label": "work" })]
        );
        assert_eq!(
            person.contact_numbers,
            [json!({ "value": "+14155550123", "label": "work" })]
        );
        assert_eq!(person.job_title, "Buyer");
        let organizations = krayin.organizations();
        assert_eq!(organizations.len(), 1, "{organizations:#?}");
        assert_eq!(organizations[0].name, "Acme Corp");
        assert_eq!(person.organization_id, Some(organizations[0].id));

        let leads = krayin.leads();
        assert_eq!(leads.len(), 1, "one lead: {leads:#?}");
        let lead = &leads[0];
        assert_eq!(
            (lead.title.as_str(), lead.person_id),
            (Some("Jane Doe"), Some(person.id))
        );
        assert_eq!(
            (lead.lead_pipeline_id, lead.lead_pipeline_stage_id),
            (Some(2), Some(7)),
            "the first stage of the configured pipeline, Partnerships"
        );
        assert_eq!(
            lead.stage_history.len(),
            1,
            "never moved: {:?}",
            lead.stage_history
        );
        // What Krayin's own lead page reads: the lead's person, its organization and the stage.
        let shown = krayin
            .out("lead", lead.id)
            .unwrap_or_else(|| panic!("lead {}", lead.id));
        assert_eq!(
            (
                &shown["person"]["name"],
                &shown["person"]["organization"]["name"],
                &shown["lead_pipeline_stage_id"]
            ),
            (&json!("Jane Doe"), &json!("Acme Corp"), &json!(7)),
            "{shown}"
        );

        let activities = krayin.activities();
        assert_eq!(activities.len(), 2, "{activities:#?}");
        let opened = krayin
            .activity_titled("Conversation #77")
            .unwrap_or_else(|| panic!("the conversation's activity: {activities:#?}"));
        assert_eq!(opened.activity_type, "call", "WhatsApp is a call");
        assert_eq!(opened.is_done, 0, "open while the conversation is");
        assert_eq!(opened.lead_ids, [lead.id], "on the lead");
        assert_eq!(opened.participant_persons(), [person.id], "with the person");
        let said = krayin
            .activity_titled("Message from Jane Doe - Conversation #77")
            .unwrap_or_else(|| panic!("the message's activity: {activities:#?}"));
        assert_eq!(said.comment, "Do you ship to Canada? <quote> & more");
        assert_eq!((said.activity_type.as_str(), said.is_done), (Some("call"), 1));
        assert_eq!(said.lead_ids, [lead.id]);
        assert_eq!(said.participant_persons(), [person.id]);
        assert!(
            said.schedule_from.is_some(),
            "a call is scheduled at the message's time"
        );

        let writes: Vec<String> = krayin
            .writes()
            .iter()
            .map(|call| format!("{} {}", call.call.method, call.call.path()))
            .collect();
        assert_eq!(
            writes,
            [
                "POST /api/v1/contacts/organizations",
                "POST /api/v1/contacts/persons",
                "POST /api/v1/leads",
                "POST /api/v1/activities",
                "POST /api/v1/activities",
                &format!("PUT /api/v1/activities/{}", said.id),
            ],
            "each record written once; the message marked done after Krayin made it not done"
        );
        let log = setup.log(&app, "").await;
        assert_eq!(
            operations(&log),
            [
                ("chatwoot.message_created".to_owned(), "succeeded".to_owned()),
                ("chatwoot.conversation_created".to_owned(), "succeeded".to_owned()),
                ("chatwoot.contact_created".to_owned(), "succeeded".to_owned()),
            ]
        );

        // A minute on, Chatwoot's Sidekiq retries each delivery, signed again with a new
        // timestamp under a new id: the body is the same, so nothing is recorded again.
        app.stack.advance(Duration::from_secs(60));
        for payload in &payloads {
            let retried = Delivery::of(setup.webhook_secret.as_deref(), payload);
            let answer = post(&app, setup.path(), &retried).await.expect(200).json();
            assert!(
                answer["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("duplicate")),
                "{}: {answer}",
                payload["event"]
            );
        }
        app.settle().await;
        assert_eq!(krayin.writes().len(), writes.len(), "nothing written twice");
        assert_eq!(setup.log(&app, "").await.len(), 3);
    });
}

#[test]
fn a_chatwoot_contact_outside_the_krayin_connectors_rollout_is_not_written_to_krayin() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::settings(json!({}))).await;
        let (left_out, percent) = (1..)
            .find_map(|id| {
                rollout_leaving_out(setup.id(), &ContactKey::Chatwoot(id)).map(|percent| (id, percent))
            })
            .unwrap_or_else(|| panic!("some contact is outside some rollout"));
        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{}", setup.id()),
            Some(json!({ "rollout_percent": percent })),
        )
        .await
        .expect(200);
        let asked = setup.krayin.calls().len();
        let contact = Contact::new(left_out, "Left Out").email("left.out@example.com");
        let answer = setup
            .chatwoot(&app, &chatwoot::contact_created(&contact))
            .await
            .expect(200)
            .json();
        assert!(
            answer["outcome"]
                .as_str()
                .is_some_and(|outcome| outcome.contains("outside the connector's rollout")),
            "{answer}"
        );
        app.settle().await;
        assert_eq!(setup.krayin.calls().len(), asked, "nothing asked of Krayin");
        assert!(
            sync_log(&app, setup.id(), "").await.is_empty(),
            "no work recorded"
        );
    });
}
