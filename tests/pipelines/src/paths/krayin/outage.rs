//! The Krayin connector when things go wrong, ported from `tests/e2e/crm/krayin-outage.test.mjs`:
//! twenty Chatwoot events about one new contact at once make one person and one lead; Krayin down
//! under Chatwoot traffic loses nothing and doubles nothing (the receiver answering at once all
//! along); a 422 fails at once with Krayin's reason; a 429 pauses the connector for as long as
//! Krayin asks; 5xx are retried; and a budget keeps Krayin's own limit from ever answering 429.
//! Time is the stack's clock: minutes of outage take no real time.

use super::{Connect, chatwoot_id, krayin_business};
use crate::app::test;
use crate::partners::chatwoot::{self, Contact, Conversation, Message, SMS, WEB, WHATSAPP};
use crate::partners::krayin::{Fault, RateLimit};
use crate::steps::{unique_email, unique_phone};
use domain::time::Timestamp;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn someone(name: &str) -> Contact {
    Contact::new(chatwoot_id(), name)
        .email(&unique_email("c"))
        .phone(&unique_phone())
}

#[test]
fn twenty_chatwoot_events_about_one_new_contact_at_once_make_exactly_one_person_and_one_lead() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        // Workers that wait on Krayin interleave: the contact's lease is what keeps them apart.
        krayin.set_latency(Duration::from_millis(30));
        let person = someone("Rush Hour")
            .attribute("company_name", "Concurrent Ltd")
            .attribute("job_title", "Buyer");
        let conversation = Conversation::new(chatwoot_id(), WHATSAPP, &person);
        let mut events = vec![
            chatwoot::contact_created(&person),
            chatwoot::contact_updated(
                &person.named("Rush Hour Jr"),
                &[("name", json!("Rush Hour"), json!("Rush Hour Jr"))],
            ),
            chatwoot::conversation_created(&conversation),
        ];
        for i in 0..17 {
            let text = format!("rush message {i}.");
            let message = if i % 3 == 2 {
                Message::outgoing(chatwoot_id(), &conversation, &text)
            } else {
                Message::incoming(chatwoot_id(), &conversation, &text)
            };
            events.push(chatwoot::message_created(&message));
        }
        let answers =
            futures_util::future::join_all(events.iter().map(|event| setup.chatwoot(&app, event))).await;
        for (event, answer) in events.iter().zip(&answers) {
            assert_eq!(answer.status, 200, "{}: {}", event["event"], answer.text());
            assert!(
                answer.json()["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("queued")),
                "{}: {}",
                event["event"],
                answer.text()
            );
        }
        let log = setup.settled_log(&app, 20).await;
        assert_eq!(log.len(), 20, "one piece of work per delivery");
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        assert_eq!(krayin.persons().len(), 1, "one person");
        assert_eq!(krayin.leads().len(), 1, "one lead");
        assert_eq!(krayin.organizations().len(), 1, "one organization");
        assert_eq!(
            krayin.conversation_activities().len(),
            1,
            "one conversation activity"
        );
        let mut texts: Vec<String> = krayin
            .message_activities()
            .iter()
            .map(|a| a.comment().to_owned())
            .collect();
        assert_eq!(texts.len(), 17, "every message");
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 17, "each once: {texts:?}");
    });
}

#[test]
fn forty_seconds_of_krayin_down_under_chatwoot_traffic_lose_nothing_double_nothing_and_keep_each_conversation_in_order()
 {
    const OUTAGE_MS: i64 = 40_000;
    const EVERY_MS: i64 = 2_500;
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let people = [
            someone("Ann Outage"),
            someone("Bob Outage"),
            someone("Cat Outage"),
        ];
        let mut conversations: Vec<Conversation> = people
            .iter()
            .enumerate()
            .map(|(i, person)| {
                Conversation::new(9_000 + i as u64, if i == 1 { WEB } else { WHATSAPP }, person)
            })
            .collect();
        for (person, conversation) in people.iter().zip(&conversations) {
            setup.queued(&app, &chatwoot::contact_created(person)).await;
            setup
                .queued(&app, &chatwoot::conversation_created(conversation))
                .await;
        }
        setup.settled_log(&app, 6).await;

        krayin.down();
        let down_since = app.stack.now_ms();
        let late = someone("Dan Outage");
        let late_conversation = Conversation::new(9_100, SMS, &late);
        setup.queued(&app, &chatwoot::contact_created(&late)).await;
        setup
            .queued(&app, &chatwoot::conversation_created(&late_conversation))
            .await;
        conversations.push(late_conversation);
        let mut sent: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut n = 0;
        while app.stack.now_ms() - down_since < OUTAGE_MS {
            let conversation = &conversations[n % conversations.len()];
            n += 1;
            let text = format!("outage-message-{n:03}");
            sent.entry(conversation.id).or_default().push(text.clone());
            let before = app.stack.now_ms();
            let message = Message::incoming(chatwoot_id(), conversation, &text);
            setup.queued(&app, &chatwoot::message_created(&message)).await;
            assert_eq!(app.stack.now_ms(), before, "the receiver never waited on Krayin");
            // The consumer tries while Krayin is down; its retries wait their backoff.
            app.settle_within(Duration::from_millis(EVERY_MS as u64)).await;
            let next = before + EVERY_MS;
            if app.stack.now_ms() < next {
                app.stack
                    .advance(Duration::from_millis((next - app.stack.now_ms()) as u64));
            }
        }
        let during = setup.shown(&app).await["status"].clone();
        assert!(
            during["backlog"].as_u64().is_some_and(|backlog| backlog > 0),
            "the backlog is shown: {during}"
        );
        assert!(
            during["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "the last error is shown: {during}"
        );
        assert!(krayin.persons().len() < 4, "Dan waited for Krayin");
        krayin.up();

        app.settle_within(Duration::from_secs(15 * 60)).await;
        let total: usize = sent.values().map(Vec::len).sum();
        assert!(total >= 15, "{total} messages in 40 s");
        assert!(
            setup.log(&app, "status=pending").await.is_empty(),
            "no work pending"
        );
        assert_eq!(krayin.persons().len(), 4, "each person once");
        assert_eq!(krayin.leads().len(), 4, "each lead once");
        assert_eq!(
            krayin.conversation_activities().len(),
            4,
            "each conversation once"
        );
        assert_eq!(krayin.message_activities().len(), total, "each message once");
        for conversation in &conversations {
            let mut activities: Vec<_> = krayin
                .message_activities()
                .into_iter()
                .filter(|a| {
                    a.title()
                        .ends_with(&format!(" - Conversation #{}", conversation.id))
                })
                .collect();
            activities.sort_by_key(|a| a.id);
            let texts: Vec<String> = activities.iter().map(|a| a.comment().to_owned()).collect();
            assert_eq!(
                Some(&texts),
                sent.get(&conversation.id),
                "conversation #{}: every message once, in order",
                conversation.id
            );
        }
        let log = setup.log(&app, "").await;
        assert_eq!(log.len(), 6 + 2 + total);
        let unsettled: Vec<_> = log.iter().filter(|e| e["status"] != "succeeded").collect();
        assert!(
            unsettled.is_empty(),
            "everything succeeded in the end: {unsettled:#?}"
        );
    });
}

#[test]
fn a_422_fails_the_work_at_once_with_krayins_message() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        let reason = "The title field is required.";
        krayin.fail(
            Fault::status(422)
                .times(5)
                .body(json!({ "message": reason, "errors": { "title": [reason] } }))
                .on("POST", "/api/v1/leads"),
        );
        setup
            .queued(&app, &chatwoot::contact_created(&someone("No Lead")))
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
        assert_eq!(krayin.count("POST", "/api/v1/leads"), 1, "asked once");
    });
}

#[test]
fn a_429_with_retry_after_pauses_the_connector_and_the_work_then_succeeds() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        krayin.fail(Fault::status(429).retry_after(3));
        setup
            .queued(&app, &chatwoot::contact_created(&someone("Throttled")))
            .await;
        app.settle().await;
        let status = setup.shown(&app).await["status"].clone();
        let paused_until = status["paused_until"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_else(|| panic!("the pause shown: {status}"));
        assert!(
            paused_until.millis() >= app.stack.now_ms() + 2_900,
            "paused for the 3 s asked: {status}"
        );
        app.settle_within(Duration::from_secs(30)).await;
        let log = setup.settled_log(&app, 1).await;
        let entry = &log[0];
        assert_eq!(entry["status"], "succeeded", "{entry}");
        assert_eq!(entry["attempts"], 2, "one throttled try, one that worked");
        let calls = krayin.api_calls();
        let throttled = calls
            .iter()
            .position(|call| call.status == 429)
            .unwrap_or_else(|| panic!("a 429: {calls:#?}"));
        let after = calls
            .get(throttled + 1)
            .unwrap_or_else(|| panic!("a call after the 429"));
        let waited = after.call.at_ms - calls[throttled].call.at_ms;
        assert!(waited >= 3_000, "waited {waited} ms of the 3 s asked");
        assert_eq!(krayin.persons().len(), 1);
        assert_eq!(krayin.leads().len(), 1);
    });
}

#[test]
fn five_hundreds_are_retried_with_backoff_until_krayin_succeeds() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::default()).await;
        let krayin = &setup.krayin;
        krayin.fail(Fault::status(503).times(2));
        setup
            .queued(&app, &chatwoot::contact_created(&someone("Flaky")))
            .await;
        app.settle_within(Duration::from_secs(40)).await;
        let log = setup.settled_log(&app, 1).await;
        let entry = &log[0];
        assert_eq!(entry["status"], "succeeded", "{entry}");
        assert_eq!(entry["attempts"], 3);
        assert_eq!(krayin.persons().len(), 1);
        assert_eq!(krayin.leads().len(), 1);
        let failed: Vec<i64> = krayin
            .api_calls()
            .iter()
            .filter(|call| call.status == 503)
            .map(|call| call.call.at_ms)
            .collect();
        assert_eq!(failed.len(), 2);
        assert!(
            failed[1] - failed[0] >= 1_000,
            "a backoff between tries: {failed:?}"
        );
    });
}

#[test]
fn a_budget_of_one_call_a_second_keeps_a_krayin_that_allows_three_a_second_from_ever_answering_429() {
    test(|app| async move {
        let setup = krayin_business(
            &app,
            Connect {
                rate_limit: Some(json!({ "per_minute": null, "per_second": 1, "per_day": null })),
                ..Connect::default()
            },
        )
        .await;
        let krayin = &setup.krayin;
        krayin.set_rate_limit(Some(RateLimit {
            per_window: 3,
            window_ms: 1_000,
        }));
        let people: Vec<Contact> = (0..4).map(|i| someone(&format!("Budget {i}"))).collect();
        let events: Vec<_> = people.iter().map(chatwoot::contact_created).collect();
        futures_util::future::join_all(events.iter().map(|event| setup.queued(&app, event))).await;
        app.settle_within(Duration::from_secs(90)).await;
        let log = setup.settled_log(&app, 4).await;
        assert!(log.iter().all(|entry| entry["status"] == "succeeded"), "{log:#?}");
        assert!(krayin.throttles().is_empty(), "Krayin never said 429");
        assert_eq!(krayin.persons().len(), 4);
        assert_eq!(krayin.leads().len(), 4);
        let calls: Vec<i64> = krayin.api_calls().iter().map(|call| call.call.at_ms).collect();
        let seconds = (calls[calls.len() - 1] - calls[0]) as f64 / 1000.0;
        assert!(
            seconds >= (calls.len() - 2) as f64,
            "{} calls at one a second took {seconds} s",
            calls.len()
        );
    });
}
