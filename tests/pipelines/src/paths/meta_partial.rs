//! A Meta notification with unreadable parts (`tests/e2e/meta_partial.test.mjs`): what can be
//! read is stored and answered with 200, what cannot is skipped and counted in `rejected`, so Meta
//! does not retry (and then drop) the whole batch for one bad message. Only a body that is no
//! notification at all is refused.

use crate::app::{App, test};
use crate::partners::meta::{self as meta_partner, whatsapp_notification};
use crate::paths::inbound::{MetaSetup, deliver_meta, meta_account, post_meta};
use crate::steps::api::assert_error;
use crate::steps::channels::messages_of;
use crate::steps::customers::customer;
use crate::steps::unique_phone;
use serde_json::{Value, json};

/// The texts of the business's messages, sorted.
async fn stored_contents(app: &App, setup: &MetaSetup) -> Vec<String> {
    let mut contents: Vec<String> = messages_of(app, &setup.business.key)
        .await
        .iter()
        .map(|message| message["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    contents.sort();
    contents
}

/// A WhatsApp text message from `from` (E.164), as it sits in a notification's `messages`.
fn text_message(from: &str, body: &str) -> Value {
    json!({
        "from": from.trim_start_matches('+'),
        "id": meta_partner::mid("wamid."),
        "timestamp": "1700000000",
        "type": "text",
        "text": { "body": body }
    })
}

#[test]
fn a_whatsapp_message_from_something_that_is_no_phone_number_is_rejected_and_its_neighbour_stored() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let from = unique_phone();
        let mut bad = text_message(&from, "The bad one");
        bad["from"] = json!("not-a-number");
        let answer = deliver_meta(
            &app,
            &setup,
            &whatsapp_notification(
                &setup.address,
                json!({
                    "contacts": [{ "profile": { "name": "Good Sender" }, "wa_id": from.trim_start_matches('+') }],
                    "messages": [text_message(&from, "The good one"), bad]
                }),
            ),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (
                answer["received"].as_u64(),
                answer["stored"].as_u64(),
                answer["rejected"].as_u64()
            ),
            (Some(1), Some(1), Some(1)),
            "{answer}"
        );
        assert_eq!(stored_contents(&app, &setup).await, ["The good one"]);
        let found = customer(&app, &setup.business.key, "phone", &from)
            .await
            .expect(200)
            .json();
        assert_eq!(found["name"], "Good Sender");
    });
}

#[test]
fn an_entry_that_is_not_an_object_and_a_change_of_the_wrong_shape_are_rejected_the_good_changes_stored() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let good = |text: &str| {
            whatsapp_notification(
                &setup.address,
                json!({ "messages": [text_message(&unique_phone(), text)] }),
            )["entry"][0]
                .clone()
        };
        let first = good("First entry");
        let mut second = good("Second entry");
        let third_change = good("Third change")["changes"][0].clone();
        if let Some(changes) = second["changes"].as_array_mut() {
            changes.push(json!({
                "field": "messages",
                "value": { "metadata": { "phone_number_id": setup.address }, "messages": "not a list" }
            }));
            changes.push(third_change);
        }
        let answer = deliver_meta(
            &app,
            &setup,
            &json!({
                "object": "whatsapp_business_account",
                "entry": [first, "not an entry", second, { "id": "WABA-ID", "changes": { "not": "a list" } }]
            }),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (
                answer["received"].as_u64(),
                answer["stored"].as_u64(),
                answer["rejected"].as_u64()
            ),
            (Some(3), Some(3), Some(3)),
            "{answer}"
        );
        assert_eq!(
            stored_contents(&app, &setup).await,
            ["First entry", "Second entry", "Third change"]
        );
    });
}

#[test]
fn a_messenger_event_of_the_wrong_shape_is_rejected_and_the_events_around_it_stored() {
    test(|app| async move {
        let setup = meta_account(&app, "facebook").await;
        let event = |sender: Value, text: &str| {
            json!({
                "sender": { "id": sender },
                "recipient": { "id": setup.address },
                "timestamp": 1_700_000_000_000_i64,
                "message": { "mid": meta_partner::mid("m_fb"), "text": text }
            })
        };
        let answer = deliver_meta(
            &app,
            &setup,
            &json!({
                "object": "page",
                "entry": [{
                    "id": setup.address,
                    "time": 1_700_000_000_000_i64,
                    "messaging": [
                        event(json!(meta_partner::numeric_id()), "Before"),
                        event(json!({ "not": "an id" }), "Lost"),
                        event(json!(meta_partner::numeric_id()), "After")
                    ]
                }]
            }),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (answer["received"].as_u64(), answer["rejected"].as_u64()),
            (Some(2), Some(1)),
            "{answer}"
        );
        assert_eq!(stored_contents(&app, &setup).await, ["After", "Before"]);
    });
}

#[test]
fn a_readable_notification_answers_rejected_0() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let answer = deliver_meta(
            &app,
            &setup,
            &whatsapp_notification(
                &setup.address,
                json!({ "messages": [text_message(&unique_phone(), "All fine")] }),
            ),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(answer["rejected"], 0, "{answer}");
    });
}

#[test]
fn a_body_that_is_no_notification_is_still_refused_and_nothing_is_stored() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let cases = [
            ("not JSON", "this is not json", 400, "malformed_request"),
            ("a JSON list", "[]", 422, "validation_failed"),
            ("no object", r#"{"entry":[]}"#, 422, "validation_failed"),
            (
                "entry is not a list",
                r#"{"object":"whatsapp_business_account","entry":{}}"#,
                422,
                "validation_failed",
            ),
            (
                "the object of another channel",
                r#"{"object":"page","entry":[]}"#,
                422,
                "validation_failed",
            ),
        ];
        for (description, body, status, code) in cases {
            let signature = meta_partner::signature(&setup.app_secret, body.as_bytes());
            let answer = post_meta(&app, &setup, body.as_bytes(), Some(&signature)).await;
            assert_error(&answer, status, code, description);
        }
        assert_eq!(stored_contents(&app, &setup).await, Vec::<String>::new());
    });
}
