//! The Meta receiver (WhatsApp, Messenger, Instagram): signed notifications stored once, the
//! subscription handshake, statuses, and the files Meta links fetched from its hosts.

use super::{MetaSetup, UNKNOWN_ID, deliver_meta, meta_account, post_meta, twilio_account, unique_phone};
use crate::app::{App, test};
use crate::partners::form::url_encoded;
use crate::partners::media_host::MediaHost;
use crate::partners::meta::{
    self as meta_partner, messaging_notification, messaging_text, whatsapp_notification,
};
use crate::paths::inbound::{download, post};
use crate::steps::api::assert_error;
use crate::steps::channels::messages_of;
use crate::steps::channels::messages_with_attachments;
use crate::steps::customers::customer;
use edge::runtime::Method;
use serde_json::{Value, json};

/// A WhatsApp text from `from` (E.164) named `name`.
fn whatsapp_text(setup: &MetaSetup, from: &str, name: &str, text: &str) -> Value {
    meta_partner::whatsapp_text(
        &setup.address,
        from.trim_start_matches('+'),
        name,
        &meta_partner::mid("wamid."),
        text,
    )
}

async fn get(app: &App, path: &str) -> crate::app::Answer {
    app.request(Method::Get, path, &[], Vec::new()).await
}

#[test]
fn a_signed_whatsapp_text_is_stored_once_from_a_customer_found_by_their_number() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let from = unique_phone();
        let answer = deliver_meta(
            &app,
            &setup,
            &whatsapp_text(&setup, &from, "Kerry Fisher", "Do you open on Sunday?"),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (answer["received"].as_u64(), answer["stored"].as_u64()),
            (Some(1), Some(1)),
            "{answer}"
        );

        let messages = messages_of(&app, &setup.business.key).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        let message = &messages[0];
        assert_eq!(message["content"], "Do you open on Sunday?");
        assert_eq!(message["channel"], "whatsapp");
        assert_eq!(message["platform"], "whatsapp");
        assert_eq!(message["direction"], "inbound");
        assert_eq!(message["status"], "received");

        let found = customer(&app, &setup.business.key, "phone", &from)
            .await
            .expect(200)
            .json();
        assert_eq!(found["id"], message["customer_id"]);
        assert_eq!(found["name"], "Kerry Fisher");
    });
}

#[test]
fn the_same_notification_delivered_twice_is_one_message() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let notification = whatsapp_text(&setup, &unique_phone(), "Twice", "Hello from WhatsApp");
        deliver_meta(&app, &setup, &notification).await.expect(200);
        let second = deliver_meta(&app, &setup, &notification).await.expect(200).json();
        assert_eq!(second["duplicates"], 1, "{second}");
        assert_eq!(messages_of(&app, &setup.business.key).await.len(), 1);
    });
}

#[test]
fn a_bad_missing_or_misplaced_signature_is_refused_with_401_and_nothing_is_stored() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let from = unique_phone();
        let body = serde_json::to_vec(&whatsapp_text(&setup, &from, "Mallory", "Hello")).unwrap_or_default();
        let mut other_body = body.clone();
        other_body.push(b' ');
        let good = meta_partner::signature(&setup.app_secret, &body);
        let cases: [(&str, Option<String>); 6] = [
            ("no signature", None),
            ("an empty signature", Some(String::new())),
            (
                "signed with another secret",
                Some(meta_partner::signature("not-the-app-secret", &body)),
            ),
            (
                "the signature of another body",
                Some(meta_partner::signature(&setup.app_secret, &other_body)),
            ),
            (
                "a signature without its sha256= prefix",
                Some(good.trim_start_matches("sha256=").to_owned()),
            ),
            ("a signature that is not hex", Some("sha256=not-hex".to_owned())),
        ];
        for (description, signature) in cases {
            let answer = post_meta(&app, &setup, &body, signature.as_deref()).await;
            assert_error(&answer, 401, "unauthorized", description);
        }
        assert_eq!(
            messages_of(&app, &setup.business.key).await,
            Vec::<Value>::new(),
            "after refused notifications, no message is stored"
        );
        let nobody = customer(&app, &setup.business.key, "phone", &from).await;
        assert_eq!(nobody.status, 404, "no customer is created: {}", nobody.text());
    });
}

#[test]
fn the_get_handshake_echoes_the_challenge_for_our_verify_token_and_is_forbidden_otherwise() {
    test(|app| async move {
        let setup = meta_account(&app, "facebook").await;
        let query = |token: &str| {
            format!(
                "{}?{}",
                setup.path,
                url_encoded(&[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", token),
                    ("hub.challenge", "1158201444")
                ])
            )
        };
        let good = get(&app, &query(&setup.verify_token)).await.expect(200);
        assert_eq!(good.text(), "1158201444");
        assert!(
            good.header("content-type")
                .is_some_and(|kind| kind.starts_with("text/plain")),
            "{:?}",
            good.headers
        );

        assert_error(
            &get(&app, &query("not-the-token")).await,
            403,
            "forbidden",
            "a wrong verify token",
        );
        let another = meta_account(&app, "facebook").await;
        assert_error(
            &get(&app, &query(&another.verify_token)).await,
            403,
            "forbidden",
            "another account's verify token",
        );
        let no_mode = format!(
            "{}?hub.verify_token={}&hub.challenge=1",
            setup.path, setup.verify_token
        );
        assert_error(
            &get(&app, &no_mode).await,
            400,
            "malformed_request",
            "no hub.mode",
        );
    });
}

#[test]
fn a_status_update_for_a_message_we_never_sent_is_accepted_and_changes_nothing() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        deliver_meta(
            &app,
            &setup,
            &whatsapp_text(&setup, &unique_phone(), "Known", "Hello"),
        )
        .await
        .expect(200);
        let before = messages_of(&app, &setup.business.key).await;
        let answer = deliver_meta(
            &app,
            &setup,
            &whatsapp_notification(
                &setup.address,
                json!({
                    "statuses": [
                        { "id": meta_partner::mid("wamid.unknown"), "status": "delivered", "timestamp": "1700000000", "recipient_id": "353870000000" },
                        { "id": meta_partner::mid("wamid.unknown"), "status": "failed", "errors": [{ "code": 131026, "title": "Message undeliverable" }] }
                    ]
                }),
            ),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (answer["statuses"].as_u64(), answer["statuses_applied"].as_u64()),
            (Some(2), Some(0)),
            "{answer}"
        );
        assert_eq!(messages_of(&app, &setup.business.key).await, before);
    });
}

#[test]
fn a_messenger_message_is_stored_from_its_page_scoped_sender_and_echoes_are_skipped() {
    test(|app| async move {
        let setup = meta_account(&app, "facebook").await;
        let psid = meta_partner::numeric_id();
        let mut echo = messaging_text(
            &setup.address,
            &psid,
            &meta_partner::mid("m_echo"),
            "Our own reply",
        );
        echo["message"]["is_echo"] = json!(true);
        let delivery = json!({
            "sender": { "id": psid },
            "recipient": { "id": setup.address },
            "delivery": { "mids": [meta_partner::mid("m_x")] }
        });
        let answer = deliver_meta(
            &app,
            &setup,
            &messaging_notification(
                "page",
                &setup.address,
                vec![
                    messaging_text(
                        &psid,
                        &setup.address,
                        &meta_partner::mid("m_fb"),
                        "Do you ship to Cork?",
                    ),
                    echo,
                    delivery,
                ],
            ),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(answer["received"], 1, "{answer}");

        let messages = messages_of(&app, &setup.business.key).await;
        let seen: Vec<(Value, Value, Value)> = messages
            .iter()
            .map(|message| {
                (
                    message["content"].clone(),
                    message["channel"].clone(),
                    message["direction"].clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![(json!("Do you ship to Cork?"), json!("facebook"), json!("inbound"))]
        );
        let sender = messages[0]["customer_id"].as_str().unwrap_or_default();
        customer(&app, &setup.business.key, "id", sender)
            .await
            .expect(200);
    });
}

#[test]
fn a_messenger_attachment_is_fetched_from_its_url_and_stored_with_its_message() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "scontent.xx.fbcdn.net");
        let setup = meta_account(&app, "facebook").await;
        let file_id = meta_partner::mid("fbfile");
        let mut event = messaging_text(
            &meta_partner::numeric_id(),
            &setup.address,
            &meta_partner::mid("m_att"),
            "",
        );
        event["message"] = json!({
            "mid": meta_partner::mid("m_att"),
            "attachments": [{ "type": "image", "payload": { "url": format!("https://scontent.xx.fbcdn.net/files/{file_id}") } }]
        });
        let answer = deliver_meta(
            &app,
            &setup,
            &messaging_notification("page", &setup.address, vec![event]),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(answer["media_queued"], 1, "{answer}");
        app.settle().await;

        let messages = messages_with_attachments(&app, &setup.business.key).await;
        let attachment = &messages[0]["attachments"][0];
        assert_eq!(attachment["status"], "stored", "{attachment}");
        assert_eq!(media.served_for(&file_id).len(), 1, "{:?}", media.served());
    });
}

#[test]
fn an_instagram_message_is_stored_and_a_second_sender_is_a_second_customer() {
    test(|app| async move {
        let setup = meta_account(&app, "instagram").await;
        let (ann, bob) = (meta_partner::numeric_id(), meta_partner::numeric_id());
        deliver_meta(
            &app,
            &setup,
            &messaging_notification(
                "instagram",
                &setup.address,
                vec![
                    messaging_text(
                        &ann,
                        &setup.address,
                        &meta_partner::mid("ig_"),
                        "Love the new range",
                    ),
                    messaging_text(&bob, &setup.address, &meta_partner::mid("ig_"), "Price?"),
                ],
            ),
        )
        .await
        .expect(200);
        let messages = messages_of(&app, &setup.business.key).await;
        let seen: Vec<(Value, Value)> = messages
            .iter()
            .map(|message| (message["content"].clone(), message["channel"].clone()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (json!("Love the new range"), json!("instagram")),
                (json!("Price?"), json!("instagram"))
            ]
        );
        assert_ne!(messages[0]["customer_id"], messages[1]["customer_id"]);
    });
}

#[test]
fn a_notification_whose_object_is_not_the_accounts_channel_is_refused_with_422() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let answer = deliver_meta(&app, &setup, &json!({ "object": "page", "entry": [] })).await;
        let error = assert_error(
            &answer,
            422,
            "validation_failed",
            "a page notification at a WhatsApp account",
        );
        assert_eq!(error["field"], "object");
    });
}

#[test]
fn an_unknown_account_another_providers_account_a_wrong_method_and_an_oversized_body_are_refused() {
    test(|app| async move {
        let json_body = [("content-type", "application/json")];
        let unknown = post(
            &app,
            &format!("/webhooks/meta/{UNKNOWN_ID}"),
            &json_body,
            b"{}".to_vec(),
        )
        .await;
        assert_error(&unknown, 404, "not_found", "an account id nobody has");
        let not_an_id = get(&app, "/webhooks/meta/not-an-id?hub.mode=subscribe").await;
        assert_error(&not_an_id, 404, "not_found", "a path that is no account id");

        let twilio = twilio_account(&app, "sms").await;
        let elsewhere = post(
            &app,
            &format!("/webhooks/meta/{}", twilio.account_id),
            &json_body,
            b"{}".to_vec(),
        )
        .await;
        assert_error(
            &elsewhere,
            404,
            "not_found",
            "a Twilio account's id at the Meta path",
        );

        let setup = meta_account(&app, "whatsapp").await;
        let put = app
            .request(Method::Put, &setup.path, &json_body, b"{}".to_vec())
            .await;
        assert_error(&put, 405, "method_not_allowed", "PUT");

        let huge =
            json!({ "object": "whatsapp_business_account", "entry": [], "padding": "x".repeat(1024 * 1024) });
        let too_large = deliver_meta(&app, &setup, &huge).await;
        assert_error(&too_large, 413, "payload_too_large", "a notification over 1 MiB");
    });
}

#[test]
fn an_image_is_fetched_from_the_graph_api_with_the_access_token_and_stored_with_its_message() {
    test(|app| async move {
        // The Graph API describes the media; its bytes are on Meta's lookaside host.
        let media = MediaHost::install(&app.stack, meta_partner::GRAPH_HOST);
        media.serve_also(&app.stack, "lookaside.fbsbx.com");
        media.describe_files_at("lookaside.fbsbx.com");
        let setup = meta_account(&app, "whatsapp").await;
        let media_id = meta_partner::numeric_id();
        let from = unique_phone();
        let sender = from.trim_start_matches('+');
        let answer = deliver_meta(
            &app,
            &setup,
            &whatsapp_notification(
                &setup.address,
                json!({
                    "contacts": [{ "profile": { "name": "Photo Sender" }, "wa_id": sender }],
                    "messages": [{
                        "from": sender,
                        "id": meta_partner::mid("wamid.img"),
                        "type": "image",
                        "image": { "id": media_id, "mime_type": "image/jpeg", "sha256": "x", "caption": "The broken part" }
                    }]
                }),
            ),
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            (answer["stored"].as_u64(), answer["media_queued"].as_u64()),
            (Some(1), Some(1)),
            "{answer}"
        );
        app.settle().await;

        let asked = media.served_for(&media_id);
        let places: Vec<(String, String)> = asked
            .iter()
            .map(|served| (served.host.clone(), served.path.clone()))
            .collect();
        assert_eq!(
            places,
            vec![
                ("graph.facebook.com".to_owned(), format!("/v21.0/{media_id}")),
                ("lookaside.fbsbx.com".to_owned(), format!("/files/{media_id}")),
            ],
            "the media's description, then its bytes"
        );
        let bearer = format!("Bearer {}", setup.access_token);
        for served in &asked {
            assert_eq!(
                served.authorization.as_deref(),
                Some(bearer.as_str()),
                "{served:?}"
            );
        }

        let messages = messages_with_attachments(&app, &setup.business.key).await;
        let message = &messages[0];
        assert_eq!(message["content"], "The broken part");
        let attachments = message["attachments"].as_array().cloned().unwrap_or_default();
        assert_eq!(attachments.len(), 1, "one attachment: {message}");
        assert_eq!(attachments[0]["status"], "stored");
        assert_eq!(attachments[0]["type"], "image/jpeg");
        assert_eq!(attachments[0]["size"], media.image().len());
        let stored = download(
            &app,
            attachments[0]["download_url"].as_str().unwrap_or_default(),
            Some(&setup.business.key),
        )
        .await
        .expect(200);
        assert!(
            stored.body == media.image(),
            "the stored media is the file, byte for byte"
        );
    });
}
