//! The Mailgun receiver (email): a forwarded mail, multipart or URL-encoded, stored once with its
//! files; its signature fields found and checked in the raw body before the form is parsed; a
//! token accepted once, and only once the mail was stored.

use super::{MailgunSetup, UNKNOWN_ID, mailgun_account};
use crate::app::{Answer, App, test};
use crate::partners::form::{BOUNDARY, Multipart, url_encoded};
use crate::partners::mailgun::{self as mailgun_partner, File, field, forwarded};
use crate::partners::unique_hex;
use crate::paths::inbound::{download, post};
use crate::steps::api::assert_error;
use crate::steps::channels::messages_of;
use crate::steps::channels::messages_with_attachments;
use crate::steps::customers::customer;
use edge::runtime::Method;
use serde_json::Value;

const MIB: usize = 1024 * 1024;

/// Mailgun's POST of a multipart `body`, its length declared.
async fn post_multipart(app: &App, setup: &MailgunSetup, body: Vec<u8>) -> Answer {
    post(
        app,
        &setup.path,
        &[("content-type", &Multipart::content_type())],
        body,
    )
    .await
}

/// Mailgun's POST of `fields` and `files` as multipart.
async fn post_mailgun(
    app: &App,
    setup: &MailgunSetup,
    fields: &[(String, String)],
    files: &[File<'_>],
) -> Answer {
    post_multipart(app, setup, forwarded(fields, files)).await
}

/// Mailgun's POST of `fields` URL-encoded.
async fn post_url_encoded(app: &App, setup: &MailgunSetup, fields: &[(String, String)]) -> Answer {
    post(
        app,
        &setup.path,
        &[("content-type", "application/x-www-form-urlencoded")],
        url_encoded(fields).into_bytes(),
    )
    .await
}

/// `a` followed by `b`.
fn and(a: &[(String, String)], b: &[(String, String)]) -> Vec<(String, String)> {
    a.iter().chain(b).cloned().collect()
}

/// Whether the replay store holds the token as accepted by the account.
fn token_recorded(app: &App, setup: &MailgunSetup, token: &str) -> bool {
    app.stack
        .kv_read(
            "WEBHOOK_NONCES",
            &format!("mailgun-token:v1:{}:{token}", setup.account_id),
        )
        .is_some()
}

async fn nothing_stored(app: &App, setup: &MailgunSetup, description: &str) {
    assert_eq!(
        messages_of(app, &setup.business.key).await,
        Vec::<Value>::new(),
        "{description}: no message is stored"
    );
}

fn sender(name: &str) -> String {
    format!("{name}-{}@example.com", unique_hex(8))
}

#[test]
fn a_signed_mail_is_stored_from_the_lowercased_sender_with_subject_and_body_and_its_file() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let tag = format!("ann-{}", unique_hex(8));
        let pdf = format!("%PDF-1.4 invoice {tag}").into_bytes();
        let fields = and(
            &setup.signed(&app),
            &setup.mail_with(
                &format!("{tag}@Example.COM"),
                &format!("Ann Lee <{tag}@example.com>"),
                "Order 1234",
            ),
        );
        let answer = post_mailgun(&app, &setup, &fields, &[("invoice.pdf", "application/pdf", &pdf)])
            .await
            .expect(200)
            .json();
        assert_eq!(
            (answer["stored"].as_u64(), answer["media_stored"].as_u64()),
            (Some(1), Some(1)),
            "{answer}"
        );

        let messages = messages_with_attachments(&app, &setup.business.key).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        let message = &messages[0];
        assert!(
            message["content"]
                .as_str()
                .is_some_and(|content| content.starts_with("Order 1234\n\nWhere is my parcel?")),
            "{message}"
        );
        assert_eq!(message["channel"], "email");
        let attachments = message["attachments"].as_array().cloned().unwrap_or_default();
        assert_eq!(attachments.len(), 1, "one attachment: {message}");
        assert_eq!(attachments[0]["filename"], "invoice.pdf");
        assert_eq!(attachments[0]["type"], "application/pdf");
        assert_eq!(attachments[0]["size"], pdf.len());
        let stored = download(
            &app,
            attachments[0]["download_url"].as_str().unwrap_or_default(),
            Some(&setup.business.key),
        )
        .await
        .expect(200);
        assert!(
            stored.body == pdf,
            "the stored attachment is the file, byte for byte"
        );

        let found = customer(&app, &setup.business.key, "email", &format!("{tag}@example.com"))
            .await
            .expect(200)
            .json();
        assert_eq!(found["id"], message["customer_id"]);
        assert_eq!(found["name"], "Ann Lee");
    });
}

#[test]
fn a_url_encoded_mail_is_accepted_as_well() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let from = sender("bob");
        let fields = and(&setup.signed(&app), &setup.mail_with(&from, &from, "Plain form"));
        post_url_encoded(&app, &setup, &fields).await.expect(200);
        let messages = messages_of(&app, &setup.business.key).await;
        assert!(
            messages[0]["content"]
                .as_str()
                .is_some_and(|content| content.starts_with("Plain form\n\n")),
            "{messages:?}"
        );
    });
}

#[test]
fn a_mail_streamed_without_a_declared_length_is_read_and_one_over_25_mib_is_refused() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let from = sender("stream");
        let photo = vec![7u8; 300 * 1024];
        let fields = and(&setup.signed(&app), &setup.mail_with(&from, &from, "Streamed"));
        let body = forwarded(&fields, &[("photo.jpg", "image/jpeg", &photo)]);
        // No Content-Length: the body is read as it comes, as when a proxy streams it.
        let content_type = Multipart::content_type();
        let streamed = app
            .request(
                Method::Post,
                &setup.path,
                &[("content-type", &content_type)],
                body,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(streamed["media_stored"], 1, "{streamed}");

        let huge = vec![7u8; 26 * MIB];
        for (description, declared) in [("declared over 25 MiB", true), ("streamed past 25 MiB", false)] {
            let fields = and(&setup.signed(&app), &setup.mail_with(&from, &from, "Too big"));
            let body = forwarded(&fields, &[("huge.bin", "application/octet-stream", &huge)]);
            let answer = if declared {
                post_multipart(&app, &setup, body).await
            } else {
                app.request(
                    Method::Post,
                    &setup.path,
                    &[("content-type", &content_type)],
                    body,
                )
                .await
            };
            assert_error(&answer, 413, "payload_too_large", description);
        }
        let subjects: Vec<String> = messages_of(&app, &setup.business.key)
            .await
            .iter()
            .map(|message| {
                message["content"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(subjects, ["Streamed"]);
    });
}

#[test]
fn the_same_mail_delivered_twice_is_one_message() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let mail = setup.mail(&sender("twice"));
        for attempt in ["first", "retry"] {
            // A retry is signed afresh, with a new token, but carries the same Message-Id.
            let answer = post_mailgun(&app, &setup, &and(&setup.signed(&app), &mail), &[]).await;
            assert_eq!(answer.status, 200, "{attempt}: {}", answer.text());
        }
        assert_eq!(messages_of(&app, &setup.business.key).await.len(), 1);
    });
}

#[test]
fn a_bad_missing_or_stale_signature_is_refused_with_401_and_nothing_is_stored() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let from = sender("eve");
        let now = app.stack.now_ms() / 1000;
        let signed = setup.signed(&app);
        let pick = |names: &[&str]| -> Vec<(String, String)> {
            signed
                .iter()
                .filter(|(name, _)| names.contains(&name.as_str()))
                .cloned()
                .collect()
        };
        let mut changed_token = signed.clone();
        changed_token[1].1 = mailgun_partner::token();
        let cases: [(&str, Vec<(String, String)>); 6] = [
            ("no signature fields", Vec::new()),
            ("no signature", pick(&["timestamp", "token"])),
            (
                "signed with another key",
                mailgun_partner::signed("another-signing-key", now),
            ),
            ("a token changed after signing", changed_token),
            (
                "signed ten minutes ago",
                mailgun_partner::signed(&setup.signing_key, now - 600),
            ),
            (
                "signed ten minutes ahead",
                mailgun_partner::signed(&setup.signing_key, now + 600),
            ),
        ];
        for (description, signature) in cases {
            let answer = post_mailgun(&app, &setup, &and(&signature, &setup.mail(&from)), &[]).await;
            assert_error(&answer, 401, "unauthorized", description);
        }
        nothing_stored(&app, &setup, "after refused mail").await;
        let nobody = customer(&app, &setup.business.key, "email", &from).await;
        assert_eq!(nobody.status, 404, "no customer is created: {}", nobody.text());
    });
}

#[test]
fn an_unknown_account_a_wrong_method_and_a_body_that_is_not_a_well_formed_form_are_refused() {
    test(|app| async move {
        let multipart_type = Multipart::content_type();
        let unknown = post(
            &app,
            &format!("/webhooks/mailgun/{UNKNOWN_ID}"),
            &[("content-type", &multipart_type)],
            Multipart::new().field("sender", "a@example.com").finish(),
        )
        .await;
        assert_error(&unknown, 404, "not_found", "an account id nobody has");

        let setup = mailgun_account(&app).await;
        let get = app.request(Method::Get, &setup.path, &[], Vec::new()).await;
        assert_error(&get, 405, "method_not_allowed", "GET");
        let json = post(
            &app,
            &setup.path,
            &[("content-type", "application/json")],
            br#"{"sender":"a@example.com"}"#.to_vec(),
        )
        .await;
        assert_error(&json, 415, "unsupported_media_type", "a JSON body");
        let unsigned = post(
            &app,
            &setup.path,
            &[("content-type", "multipart/form-data; boundary=XyZ")],
            b"this is not multipart".to_vec(),
        )
        .await;
        assert_error(
            &unsigned,
            401,
            "unauthorized",
            "a multipart body without its parts, so without a signature",
        );
        let fields = and(
            &setup.signed(&app),
            &[("sender".to_owned(), "a@example.com".to_owned())],
        );
        let broken = Multipart::new()
            .fields(&fields)
            .finish_with(format!("--{BOUNDARY}\r\nno end").as_bytes());
        let signed_broken = post_multipart(&app, &setup, broken).await;
        assert_error(
            &signed_broken,
            400,
            "malformed_request",
            "a signed body whose last part never ends",
        );
        let no_boundary = post(
            &app,
            &setup.path,
            &[("content-type", "multipart/form-data")],
            b"x".to_vec(),
        )
        .await;
        assert_error(
            &no_boundary,
            400,
            "malformed_request",
            "multipart without a boundary",
        );
    });
}

#[test]
fn the_same_signed_post_sent_twice_is_refused_the_second_time_as_a_replay_and_stored_once() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let signed = setup.signed(&app);
        let token = field(&signed, "token").to_owned();
        let fields = and(&signed, &setup.mail(&sender("replay")));
        post_mailgun(&app, &setup, &fields, &[]).await.expect(200);

        let replay = post_mailgun(&app, &setup, &fields, &[]).await;
        let error = assert_error(&replay, 401, "unauthorized", "the same POST again");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|message| message.contains("replay")),
            "{error}"
        );
        assert!(
            token_recorded(&app, &setup, &token),
            "the accepted token is recorded"
        );
        let url_encoded = post_url_encoded(&app, &setup, &fields).await;
        assert_error(
            &url_encoded,
            401,
            "unauthorized",
            "the same signature URL-encoded",
        );
        assert_eq!(
            messages_of(&app, &setup.business.key).await.len(),
            1,
            "one message is stored"
        );

        // The token is the account's: another account (with its own key) is not affected by it.
        let other = mailgun_account(&app).await;
        post_mailgun(
            &app,
            &other,
            &and(&other.signed(&app), &other.mail(&sender("o"))),
            &[],
        )
        .await
        .expect(200);
    });
}

#[test]
fn a_signed_post_refused_after_its_signature_does_not_use_up_its_token_so_mailgun_can_retry_it() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let signed = setup.signed(&app);
        let token = field(&signed, "token").to_owned();
        let fields = and(&signed, &setup.mail(&sender("retry")));
        let refused = post_mailgun(
            &app,
            &setup,
            &and(&fields, &[("attachment-count".to_owned(), "1".to_owned())]),
            &[],
        )
        .await;
        assert_error(
            &refused,
            400,
            "malformed_request",
            "attachment-count names a file that is not there",
        );
        assert!(
            !token_recorded(&app, &setup, &token),
            "a refused POST records no token"
        );
        nothing_stored(&app, &setup, "after the refused POST").await;

        let retried = post_mailgun(&app, &setup, &fields, &[]).await;
        assert_eq!(
            retried.status,
            200,
            "the retry with the same signature: {}",
            retried.text()
        );
        assert_eq!(messages_of(&app, &setup.business.key).await.len(), 1);
        assert!(token_recorded(&app, &setup, &token), "now the token is used");
    });
}

#[test]
fn a_bad_signature_on_a_large_body_is_refused_before_the_form_is_parsed() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let from = sender("big");
        let large = vec![0x5a; 4 * MIB];
        // The last file part never ends: the runtime's form parser refuses such a body with 400.
        let body = |signature: &[(String, String)]| {
            let fields = and(
                &and(signature, &setup.mail(&from)),
                &[("attachment-count".to_owned(), "1".to_owned())],
            );
            let tail = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"attachment-2\"; filename=\"cut.bin\"\r\n\r\n{}",
                "x".repeat(1024)
            );
            Multipart::new()
                .fields(&fields)
                .file("attachment-1", "big.bin", "application/octet-stream", &large)
                .finish_with(tail.as_bytes())
        };
        let now = app.stack.now_ms() / 1000;
        let cases: [(&str, Vec<(String, String)>); 3] = [
            (
                "signed with another key",
                mailgun_partner::signed("another-signing-key", now),
            ),
            ("no signature fields", Vec::new()),
            (
                "signed ten minutes ago",
                mailgun_partner::signed(&setup.signing_key, now - 600),
            ),
        ];
        for (description, signature) in cases {
            let answer = post_multipart(&app, &setup, body(&signature)).await;
            assert_error(
                &answer,
                401,
                "unauthorized",
                &format!("{description}, with an unparseable tail (401, not the parser's 400)"),
            );
        }
        let signed = post_multipart(&app, &setup, body(&setup.signed(&app))).await;
        assert_error(
            &signed,
            400,
            "malformed_request",
            "the same body correctly signed reaches the parser, which refuses it",
        );
        nothing_stored(&app, &setup, "after the refused bodies").await;
    });
}

#[test]
fn signature_fields_after_a_large_file_are_found_and_the_mail_is_stored() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let from = sender("late");
        let photo = vec![0x3c; 3 * MIB];
        let signed = setup.signed(&app);
        let token = field(&signed, "token").to_owned();
        let body = Multipart::new()
            .file("attachment-1", "photo.jpg", "image/jpeg", &photo)
            .fields(&setup.mail_with(&from, &from, "Fields last"))
            .field("attachment-count", "1")
            .fields(&signed)
            .finish();
        let answer = post_multipart(&app, &setup, body).await.expect(200).json();
        assert_eq!(answer["media_stored"], 1, "{answer}");
        let messages = messages_with_attachments(&app, &setup.business.key).await;
        assert!(
            messages[0]["content"]
                .as_str()
                .is_some_and(|content| content.starts_with("Fields last\n\n")),
            "{messages:?}"
        );
        assert_eq!(messages[0]["attachments"][0]["size"], photo.len());
        assert!(token_recorded(&app, &setup, &token));
    });
}

#[test]
fn a_signature_field_sent_twice_or_longer_than_256_bytes_is_refused_before_the_form_is_parsed() {
    test(|app| async move {
        let setup = mailgun_account(&app).await;
        let signed = setup.signed(&app);
        let mail = setup.mail(&sender("dup"));
        let mut long_token = signed.clone();
        long_token[1].1 = "a".repeat(257);
        let cases: [(&str, Vec<(String, String)>); 2] = [
            (
                "a token sent twice",
                and(&signed, &[("token".to_owned(), "another".to_owned())]),
            ),
            ("a token of 257 bytes", long_token),
        ];
        for (description, signature) in cases {
            let answer = post_mailgun(&app, &setup, &and(&signature, &mail), &[]).await;
            let error = assert_error(&answer, 400, "malformed_request", description);
            assert_eq!(error["field"], "token", "{description}");
        }
        nothing_stored(&app, &setup, "after the refused POSTs").await;
    });
}
