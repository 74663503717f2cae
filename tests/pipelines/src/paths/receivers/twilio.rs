//! The Twilio receiver (SMS, WhatsApp): signed forms stored once and answered with empty TwiML,
//! status callbacks, and an MMS's files fetched by the media-fetcher from Twilio's hosts: with the
//! account's credentials on its API and without them elsewhere, within the size limit, through
//! a host that fails for a while, and rescued by the sweep when the queue lost them.

use super::{
    TwilioSetup, UNKNOWN_ID, deliver_meta, meta_account, post_twilio, post_twilio_signed, twilio_account,
    unique_phone,
};
use crate::app::{App, CALLED, ORIGIN, test};
use crate::partners::media_host::MediaHost;
use crate::partners::meta::{self as meta_partner, messaging_notification};
use crate::partners::twilio::{self as twilio_partner, with};
use crate::partners::webhook_endpoint::Endpoint;
use crate::paths::inbound::{download, post};
use crate::steps::api::assert_error;
use crate::steps::channels::messages_of;
use crate::steps::channels::messages_with_attachments;
use crate::steps::customers::customer;
use crate::steps::store::{execute, select};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

/// An MMS to the number with one file at `url` of type `kind`.
fn mms(setup: &TwilioSetup, body: &str, url: &str, kind: &str) -> Vec<(String, String)> {
    let params = setup.incoming(&unique_phone(), body);
    let params = with(params, "NumMedia", "1");
    let params = with(params, "MediaUrl0", url);
    with(params, "MediaContentType0", kind)
}

/// The first attachment of the message whose text is `content`.
async fn attachment_of(app: &App, setup: &TwilioSetup, content: &str) -> Value {
    crate::paths::inbound::attachment_of(app, &setup.business.key, content).await
}

#[test]
fn a_signed_sms_is_answered_with_empty_twiml_and_stored_from_a_customer_found_by_their_number() {
    test(|app| async move {
        let setup = twilio_account(&app, "sms").await;
        let from = unique_phone();
        let answer = post_twilio(
            &app,
            &setup,
            &setup.incoming(&from, "Is my order ready? 50% off & more"),
        )
        .await
        .expect(200);
        assert_eq!(answer.text(), EMPTY_TWIML);
        assert!(
            answer
                .header("content-type")
                .is_some_and(|kind| kind.starts_with("text/xml")),
            "{:?}",
            answer.headers
        );

        let messages = messages_of(&app, &setup.business.key).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0]["content"], "Is my order ready? 50% off & more");
        assert_eq!(messages[0]["channel"], "sms");
        assert_eq!(messages[0]["direction"], "inbound");
        let found = customer(&app, &setup.business.key, "phone", &from)
            .await
            .expect(200)
            .json();
        assert_eq!(found["id"], messages[0]["customer_id"]);
    });
}

#[test]
fn a_whatsapp_message_through_twilio_loses_its_whatsapp_prefix_and_keeps_the_profile_name() {
    test(|app| async move {
        let setup = twilio_account(&app, "whatsapp").await;
        let from = unique_phone();
        let params = setup.incoming(&format!("whatsapp:{from}"), "Hi via WhatsApp");
        post_twilio(&app, &setup, &with(params, "ProfileName", "Siobhan"))
            .await
            .expect(200);
        let messages = messages_of(&app, &setup.business.key).await;
        assert_eq!(messages[0]["content"], "Hi via WhatsApp");
        assert_eq!(messages[0]["channel"], "whatsapp");
        let found = customer(&app, &setup.business.key, "phone", &from)
            .await
            .expect(200)
            .json();
        assert_eq!(found["name"], "Siobhan");
    });
}

#[test]
fn an_mmss_media_is_fetched_with_the_accounts_credentials_from_twilios_api_and_stored_with_its_message() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, twilio_partner::API_HOST);
        let setup = twilio_account(&app, "sms").await;
        let file_id = twilio_partner::message_sid();
        let url = format!("https://api.twilio.com/files/{file_id}");
        post_twilio(
            &app,
            &setup,
            &mms(&setup, "Photo of the receipt", &url, "image/jpeg"),
        )
        .await
        .expect(200);
        let messages = messages_of(&app, &setup.business.key).await;
        assert_eq!(messages[0]["content"], "Photo of the receipt");
        app.settle().await;

        let attachment = attachment_of(&app, &setup, "Photo of the receipt").await;
        assert_eq!(attachment["status"], "stored", "{attachment}");
        let served = media.served_for(&file_id);
        assert_eq!(served.len(), 1, "the media URL was fetched: {served:?}");
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", setup.account_sid, setup.auth_token))
        );
        assert_eq!(served[0].authorization.as_deref(), Some(basic.as_str()));
    });
}

#[test]
fn a_redirect_to_another_origin_is_followed_without_the_accounts_credentials() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, twilio_partner::API_HOST);
        media.serve_also(&app.stack, "mms.twiliocdn.com");
        media.redirect_to("mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let file_id = twilio_partner::message_sid();
        let url = format!("https://api.twilio.com/moved/{file_id}");
        post_twilio(
            &app,
            &setup,
            &mms(&setup, "Photo behind a redirect", &url, "image/jpeg"),
        )
        .await
        .expect(200);
        app.settle().await;

        let attachment = attachment_of(&app, &setup, "Photo behind a redirect").await;
        assert_eq!(attachment["status"], "stored", "{attachment}");
        let served = media.served_for(&file_id);
        assert_eq!(served.len(), 2, "{served:?}");
        let (asked, fetched) = (&served[0], &served[1]);
        assert_eq!(
            (asked.host.as_str(), fetched.host.as_str(), fetched.path.as_str()),
            (
                "api.twilio.com",
                "mms.twiliocdn.com",
                format!("/files/{file_id}").as_str()
            ),
            "{served:?}"
        );
        assert!(
            asked
                .authorization
                .as_deref()
                .is_some_and(|value| value.starts_with("Basic ")),
            "the API is asked with the credentials: {asked:?}"
        );
        assert_eq!(fetched.authorization, None, "the other origin is not given them");
    });
}

#[test]
fn media_of_10_mib_with_its_length_and_of_unknown_length_is_stored_byte_for_byte() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let large = media.large();
        for (route, bytes, kind) in [
            ("large", &large[..], "video/mp4"),
            ("chunked", &large[..3 * 1024 * 1024], "application/pdf"),
        ] {
            let content = format!("A {route} file");
            let url = format!(
                "https://mms.twiliocdn.com/{route}/{}",
                twilio_partner::message_sid()
            );
            post_twilio(&app, &setup, &mms(&setup, &content, &url, kind))
                .await
                .expect(200);
            app.settle().await;
            let attachment = attachment_of(&app, &setup, &content).await;
            assert_eq!(attachment["status"], "stored", "{route}: {attachment}");
            assert_eq!(attachment["size"], bytes.len(), "{route}");
            let stored = download(
                &app,
                attachment["download_url"].as_str().unwrap_or_default(),
                Some(&setup.business.key),
            )
            .await
            .expect(200);
            assert_eq!(
                hex::encode(Sha256::digest(&stored.body)),
                hex::encode(Sha256::digest(bytes)),
                "{route}: byte for byte"
            );
        }
    });
}

#[test]
fn a_file_that_declares_more_than_25_mib_is_refused_on_its_header_without_retries() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let file_id = twilio_partner::message_sid();
        let url = format!("https://mms.twiliocdn.com/huge/{file_id}");
        post_twilio(&app, &setup, &mms(&setup, "A very long video", &url, "video/mp4"))
            .await
            .expect(200);
        app.settle_within(Duration::from_secs(3600)).await;
        let attachment = attachment_of(&app, &setup, "A very long video").await;
        assert_eq!(attachment["status"], "failed", "{attachment}");
        assert!(
            attachment["status_reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("larger than 26214400 bytes")),
            "{attachment}"
        );
        assert_eq!(media.served_for(&file_id).len(), 1, "asked once");
    });
}

#[test]
fn media_on_a_host_that_is_not_the_providers_or_on_a_private_address_is_failed_without_a_request() {
    test(|app| async move {
        let setup = meta_account(&app, "facebook").await;
        let cases = [
            (
                "https://files.example.com/photo.jpg",
                "files.example.com",
                "files.example.com is not one of meta's media hosts",
            ),
            ("http://10.1.2.3/photo.jpg", "10.1.2.3", "private-network address"),
            (
                "https://169.254.169.254/latest/meta-data",
                "169.254.169.254",
                "link-local",
            ),
        ];
        for (url, host, reason) in cases {
            let mut event = meta_partner::messaging_text(&meta_partner::numeric_id(), &setup.address, "", "");
            event["message"] = json!({
                "mid": meta_partner::mid("m_att"),
                "attachments": [{ "type": "image", "payload": { "url": url } }]
            });
            deliver_meta(
                &app,
                &setup,
                &messaging_notification("page", &setup.address, vec![event]),
            )
            .await
            .expect(200);
            app.settle_within(Duration::from_secs(3600)).await;
            let messages = messages_with_attachments(&app, &setup.business.key).await;
            let attachment = messages
                .iter()
                .map(|message| &message["attachments"][0])
                .find(|attachment| {
                    attachment["status_reason"]
                        .as_str()
                        .is_some_and(|why| why.contains(host))
                })
                .cloned()
                .unwrap_or_else(|| panic!("{url}: no attachment settled for it: {messages:?}"));
            assert_eq!(attachment["status"], "failed", "{url}");
            assert!(
                attachment["status_reason"]
                    .as_str()
                    .is_some_and(|why| why.contains(reason)),
                "{url}: {attachment}"
            );
            assert_eq!(app.stack.calls_to(host).len(), 0, "{url}: no request is made");
        }
    });
}

#[test]
fn the_sweep_hands_a_file_no_fetch_settled_back_to_the_fetcher_once_and_fails_it_after_two_hours() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let lost_by_the_queue = |body: &'static str| {
            let app = &app;
            let setup = &setup;
            async move {
                let file_id = twilio_partner::message_sid();
                let url = format!("https://mms.twiliocdn.com/files/{file_id}");
                post_twilio(app, setup, &mms(setup, body, &url, "image/jpeg"))
                    .await
                    .expect(200);
                let lost = app.stack.purge("INBOUND_MEDIA");
                assert_eq!(lost.len(), 1, "{body}: its fetch was queued, and is lost");
                (attachment_of(app, setup, body).await, file_id)
            }
        };
        let (abandoned, _) = lost_by_the_queue("Never fetched").await;
        app.stack.advance(Duration::from_secs(140 * 60));
        let (lost, lost_file) = lost_by_the_queue("Lost by the queue").await;
        app.stack.advance(Duration::from_secs(40 * 60));

        let report = app
            .admin(Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200)
            .json();
        assert_eq!(report["failed"], json!([]), "{report}");
        assert_eq!(
            (report["media_requeued"].as_u64(), report["media_failed"].as_u64()),
            (Some(1), Some(1)),
            "{report}"
        );
        let given_up = select(
            &app,
            "SELECT * FROM attachments WHERE id = ?1",
            &[abandoned["id"].as_str().unwrap_or_default()],
        );
        assert_eq!(given_up.len(), 1, "{given_up:?}");
        assert_eq!(given_up[0]["status"], "failed");
        assert!(
            given_up[0]["status_reason"]
                .as_str()
                .is_some_and(|why| why.contains("not fetched within 2 hours")),
            "{given_up:?}"
        );

        app.settle().await;
        let refetched = attachment_of(&app, &setup, "Lost by the queue").await;
        assert_eq!(
            refetched["status"], "stored",
            "the handed-back file is stored: {refetched}"
        );
        assert_eq!(
            media.served_for(&lost_file).len(),
            1,
            "fetched again from its source"
        );
        let again = app
            .admin(Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200)
            .json();
        assert_eq!(again["media_requeued"], 0, "handed back once: {again}");
        let row = select(
            &app,
            "SELECT * FROM attachments WHERE id = ?1",
            &[lost["id"].as_str().unwrap_or_default()],
        );
        assert!(row[0]["requeued_at"].is_string(), "{row:?}");
    });
}

#[test]
fn the_sweep_holds_a_messages_event_while_its_file_is_still_being_fetched_and_lets_it_go_once_the_file_settles()
 {
    test(|app| async move {
        MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        // Events are recorded for a business that listens: an endpoint for message.received.
        let endpoint = Endpoint::install(&app.stack, "hooks.example.com");
        let hook = app
            .api(
                &setup.business.key,
                Method::Post,
                "/api-webhooks",
                Some(json!({ "name": "held", "url": endpoint.url(), "events": ["message.received"] })),
            )
            .await
            .expect(201)
            .json();
        endpoint.knows_secret(hook["secret"].as_str().unwrap_or_default());
        let url = format!(
            "https://mms.twiliocdn.com/files/{}",
            twilio_partner::message_sid()
        );
        post_twilio(
            &app,
            &setup,
            &mms(&setup, "Held for its file", &url, "image/jpeg"),
        )
        .await
        .expect(200);
        let attachment = attachment_of(&app, &setup, "Held for its file").await;
        assert_eq!(attachment["status"], "pending");
        let message_id = attachment["message_id"].as_str().unwrap_or_default().to_owned();
        let undispatched = |app: &App| {
            select(
                app,
                "SELECT * FROM webhook_events WHERE subject_id = ?1 AND dispatched_us IS NULL",
                &[&message_id],
            )
            .len()
        };
        assert!(undispatched(&app) >= 1, "the message has a held event");

        // Six minutes into its tries, past the sweep's five-minute grace for lost events.
        app.stack.advance(Duration::from_secs(6 * 60));
        app.admin(Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200);
        assert!(undispatched(&app) >= 1, "still held while its file is pending");
        assert_eq!(
            app.stack.queued("WEBHOOKS").len(),
            0,
            "nothing is on its way to the endpoint"
        );

        let settled = execute(
            &app,
            "UPDATE attachments SET status = 'stored' WHERE id = ?1",
            &[attachment["id"].as_str().unwrap_or_default()],
        );
        assert_eq!(settled, 1);
        app.admin(Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200);
        app.settle().await;
        assert_eq!(undispatched(&app), 0, "the event went out once the file settled");
        let received = endpoint.of_event("message.received");
        assert_eq!(received.len(), 1, "{:?}", endpoint.deliveries());
        assert_eq!(received[0].body["data"]["message"]["id"], message_id.as_str());
    });
}

#[test]
fn a_media_host_that_fails_twice_loses_nothing_the_message_is_stored_at_once_and_its_file_follows() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let file_id = twilio_partner::message_sid();
        let url = format!("https://mms.twiliocdn.com/flaky/2/{file_id}");
        post_twilio(
            &app,
            &setup,
            &mms(&setup, "Photo, eventually", &url, "image/jpeg"),
        )
        .await
        .expect(200);
        let before = attachment_of(&app, &setup, "Photo, eventually").await;
        assert_eq!(
            before["status"], "pending",
            "the message is there before its file"
        );

        app.settle().await;
        assert_eq!(media.served_for(&file_id).len(), 1, "asked once so far");
        assert_eq!(
            attachment_of(&app, &setup, "Photo, eventually").await["status"],
            "pending",
            "a 503 is tried again later"
        );
        app.settle_within(Duration::from_secs(60)).await;
        let attachment = attachment_of(&app, &setup, "Photo, eventually").await;
        assert_eq!(attachment["status"], "stored", "{attachment}");
        assert_eq!(attachment["size"], media.image().len());
        assert_eq!(media.served_for(&file_id).len(), 3, "two 503s, then the file");
        let stored = download(
            &app,
            attachment["download_url"].as_str().unwrap_or_default(),
            Some(&setup.business.key),
        )
        .await
        .expect(200);
        assert!(stored.body == media.image(), "byte for byte");
    });
}

#[test]
fn a_file_the_provider_no_longer_has_is_marked_failed_with_the_reason_and_cannot_be_downloaded() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let file_id = twilio_partner::message_sid();
        let url = format!("https://mms.twiliocdn.com/gone/{file_id}");
        post_twilio(
            &app,
            &setup,
            &mms(&setup, "Photo that is gone", &url, "image/jpeg"),
        )
        .await
        .expect(200);
        app.settle_within(Duration::from_secs(3600)).await;
        let attachment = attachment_of(&app, &setup, "Photo that is gone").await;
        assert_eq!(attachment["status"], "failed", "{attachment}");
        assert!(
            attachment["status_reason"]
                .as_str()
                .is_some_and(|why| why.contains("404")),
            "the reason names the answer: {attachment}"
        );
        assert_eq!(media.served_for(&file_id).len(), 1, "a 404 is not retried");
        let answer = download(
            &app,
            attachment["download_url"].as_str().unwrap_or_default(),
            Some(&setup.business.key),
        )
        .await;
        assert_eq!(answer.status, 404, "no bytes to download: {}", answer.text());
    });
}

#[test]
fn the_same_message_delivered_twice_is_one_message() {
    test(|app| async move {
        let setup = twilio_account(&app, "sms").await;
        let params = setup.incoming(&unique_phone(), "Hello by SMS");
        for attempt in ["first", "retry"] {
            let answer = post_twilio(&app, &setup, &params).await;
            assert_eq!(answer.status, 200, "{attempt}: {}", answer.text());
        }
        assert_eq!(messages_of(&app, &setup.business.key).await.len(), 1);
    });
}

#[test]
fn a_bad_or_missing_signature_is_refused_with_401_and_nothing_is_stored() {
    test(|app| async move {
        let setup = twilio_account(&app, "sms").await;
        let from = unique_phone();
        let params = setup.incoming(&from, "Hello by SMS");
        let token = setup.auth_token.as_str();
        let public = format!("{ORIGIN}{}", setup.path);
        let changed = with(params.clone(), "Body", "changed");
        let cases: [(&str, Option<String>); 6] = [
            ("no signature", None),
            (
                "signed with another token",
                Some(twilio_partner::signature("another-token", &public, &params)),
            ),
            (
                "signed for another URL",
                Some(twilio_partner::signature(
                    token,
                    &format!("{ORIGIN}/webhooks/twilio/{UNKNOWN_ID}"),
                    &params,
                )),
            ),
            (
                "signed for the URL the worker sees rather than the public one",
                Some(twilio_partner::signature(
                    token,
                    &format!("{CALLED}{}", setup.path),
                    &params,
                )),
            ),
            (
                "signed over other parameters",
                Some(twilio_partner::signature(token, &public, &changed)),
            ),
            ("not base64", Some("***".to_owned())),
        ];
        for (description, signature) in cases {
            let answer = post_twilio_signed(&app, &setup.path, &params, signature.as_deref()).await;
            assert_error(&answer, 401, "unauthorized", description);
        }
        assert_eq!(
            messages_of(&app, &setup.business.key).await,
            Vec::<Value>::new(),
            "after refused requests, no message is stored"
        );
        let nobody = customer(&app, &setup.business.key, "phone", &from).await;
        assert_eq!(nobody.status, 404, "no customer is created: {}", nobody.text());
    });
}

#[test]
fn a_status_callback_for_a_message_we_never_sent_is_answered_and_changes_nothing() {
    test(|app| async move {
        let setup = twilio_account(&app, "sms").await;
        post_twilio(&app, &setup, &setup.incoming(&unique_phone(), "Hello"))
            .await
            .expect(200);
        let before = messages_of(&app, &setup.business.key).await;
        for status in ["sent", "delivered", "undelivered", "queued"] {
            let params: Vec<(String, String)> = [
                ("MessageSid", twilio_partner::message_sid()),
                ("MessageStatus", status.to_owned()),
                ("SmsStatus", status.to_owned()),
                (
                    "ErrorCode",
                    if status == "undelivered" { "30005" } else { "" }.to_owned(),
                ),
                ("To", unique_phone()),
                ("From", setup.address.clone()),
                ("AccountSid", "AC00000000000000000000000000000000".to_owned()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
            let answer = post_twilio(&app, &setup, &params).await;
            assert_eq!(answer.status, 200, "{status}: {}", answer.text());
            assert_eq!(answer.text(), EMPTY_TWIML, "{status}");
        }
        assert_eq!(messages_of(&app, &setup.business.key).await, before);
    });
}

#[test]
fn an_unknown_account_and_a_wrong_method_are_refused() {
    test(|app| async move {
        let unknown = post(
            &app,
            &format!("/webhooks/twilio/{UNKNOWN_ID}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            b"Body=x".to_vec(),
        )
        .await;
        assert_error(&unknown, 404, "not_found", "an account id nobody has");
        let setup = twilio_account(&app, "sms").await;
        let get = app.request(Method::Get, &setup.path, &[], Vec::new()).await;
        assert_error(&get, 405, "method_not_allowed", "GET");
    });
}

/// Not in the end-to-end suite, where a host this slow would cost minutes of real time: the
/// fetch's two-minute bound, on the virtual clock.
#[test]
fn a_media_host_slower_than_two_minutes_is_given_up_on_at_each_try_and_the_file_failed_after_the_last() {
    test(|app| async move {
        let media = MediaHost::install(&app.stack, "mms.twiliocdn.com");
        let setup = twilio_account(&app, "sms").await;
        let (patient, hopeless) = (twilio_partner::message_sid(), twilio_partner::message_sid());
        for (content, url) in [
            (
                "In half a minute",
                format!("https://mms.twiliocdn.com/slow/30/{patient}"),
            ),
            (
                "In two and a half minutes",
                format!("https://mms.twiliocdn.com/slow/150/{hopeless}"),
            ),
        ] {
            post_twilio(&app, &setup, &mms(&setup, content, &url, "image/jpeg"))
                .await
                .expect(200);
        }
        let started = app.stack.now_ms();
        app.settle_within(Duration::from_secs(3600)).await;

        let waited = attachment_of(&app, &setup, "In half a minute").await;
        assert_eq!(
            waited["status"], "stored",
            "half a minute is waited for: {waited}"
        );
        assert_eq!(media.served_for(&patient).len(), 1);
        let abandoned = attachment_of(&app, &setup, "In two and a half minutes").await;
        assert_eq!(abandoned["status"], "failed", "{abandoned}");
        assert!(
            abandoned["status_reason"]
                .as_str()
                .is_some_and(|why| why.contains("did not arrive within 120 s")),
            "{abandoned}"
        );
        assert_eq!(
            media.served_for(&hopeless).len(),
            5,
            "tried five times, each abandoned"
        );
        let elapsed = app.stack.now_ms() - started;
        assert!(
            (5 * 120_000..3_600_000).contains(&elapsed),
            "five tries of two minutes and the waits between them, in virtual time: {elapsed} ms"
        );
    });
}
