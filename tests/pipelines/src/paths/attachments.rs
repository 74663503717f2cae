//! Attachments (`tests/e2e/attachments.test.mjs`): a business uploads a file (multipart, at most
//! 10 MB, of an accepted type whose content agrees with it) and downloads it with its API key or a
//! signed link; nobody else does.

use crate::app::{Answer, App, ORIGIN, test};
use crate::partners::form::Multipart;
use crate::paths::inbound::post;
use crate::steps::api::assert_error;
use edge::runtime::Method;
use serde_json::json;

/// A PNG's signature and a few bytes.
fn png() -> Vec<u8> {
    let mut bytes = vec![0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend_from_slice(b"a tiny png body");
    bytes
}

/// `POST /api-upload-attachment` of `bytes` as the file `filename` of type `kind` in the form
/// field `field`, with `key` if any.
async fn upload(
    app: &App,
    key: Option<&str>,
    bytes: &[u8],
    kind: &str,
    filename: &str,
    field: &str,
) -> Answer {
    let content_type = Multipart::content_type();
    let mut headers = vec![("content-type", content_type.as_str())];
    if let Some(key) = key {
        headers.push(("x-api-key", key));
    }
    let body = Multipart::new().file(field, filename, kind, bytes).finish();
    post(app, "/api-upload-attachment", &headers, body).await
}

async fn download(app: &App, path: &str, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|key| ("x-api-key", key)).into_iter().collect();
    app.request(Method::Get, path, &headers, Vec::new()).await
}

/// `%XX` sequences decoded (a `Content-Disposition`'s `filename*`).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                at += 3;
            }
            (other, _) => {
                decoded.push(other);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[test]
fn an_uploaded_file_is_downloaded_byte_for_byte_by_its_business() {
    test(|app| async move {
        let business = app.business("Uploader").await;
        let answer = upload(
            &app,
            Some(&business.key),
            &png(),
            "image/png",
            "receipt.png",
            "file",
        )
        .await
        .expect(201)
        .json();
        assert_eq!(answer["success"], true);
        let attachment = &answer["attachment"];
        assert_eq!(attachment["filename"], "receipt.png");
        assert_eq!(attachment["type"], "image/png");
        assert_eq!(attachment["size"], png().len());
        let id = attachment["id"].as_str().unwrap_or_default();
        assert_eq!(
            attachment["file_url"],
            format!("{ORIGIN}/api/download-media?id={id}"),
            "the link is under the public origin"
        );
        let file = download(&app, &format!("/api/download-media?id={id}"), Some(&business.key))
            .await
            .expect(200);
        assert!(file.body == png(), "byte for byte");
        assert_eq!(file.header("content-type"), Some("image/png"));
        assert!(
            file.header("content-disposition")
                .is_some_and(|value| value.contains(r#"attachment; filename="receipt.png""#)),
            "{:?}",
            file.headers
        );
        assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    });
}

#[test]
fn a_file_named_in_any_script_or_with_an_emoji_downloads_under_its_exact_name() {
    test(|app| async move {
        let business = app.business("Uploader").await;
        let name = "账单 №5 🧾.png";
        let answer = upload(&app, Some(&business.key), &png(), "image/png", name, "file")
            .await
            .expect(201)
            .json();
        assert_eq!(answer["attachment"]["filename"], name);
        let id = answer["attachment"]["id"].as_str().unwrap_or_default();
        let file = download(&app, &format!("/api/download-media?id={id}"), Some(&business.key))
            .await
            .expect(200);
        assert!(file.body == png());
        let disposition = file.header("content-disposition").unwrap_or_default();
        let (plain, encoded) = disposition
            .strip_prefix("attachment; filename=\"")
            .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
            .unwrap_or_else(|| panic!("an ASCII name and the exact one: {disposition}"));
        assert!(
            !plain.is_empty() && plain.bytes().all(|byte| (0x20..=0x7e).contains(&byte)),
            "the plain name is printable ASCII: {disposition}"
        );
        assert_eq!(percent_decoded(encoded), name, "the exact name, percent-encoded");
    });
}

#[test]
fn a_file_of_exactly_10_mb_is_accepted_and_one_byte_more_is_refused_with_413() {
    test(|app| async move {
        let business = app.business("Uploader").await;
        let limit = 10 * 1024 * 1024;
        let accepted = upload(
            &app,
            Some(&business.key),
            &vec![0x61; limit],
            "text/plain",
            "big.txt",
            "file",
        )
        .await
        .expect(201)
        .json();
        assert_eq!(accepted["attachment"]["size"], limit);
        let refused = upload(
            &app,
            Some(&business.key),
            &vec![0x61; limit + 1],
            "text/plain",
            "bigger.txt",
            "file",
        )
        .await;
        assert_error(&refused, 413, "payload_too_large", "one byte over 10 MB");
    });
}

#[test]
fn types_that_are_not_accepted_or_whose_content_lies_about_its_type_are_refused() {
    test(|app| async move {
        let business = app.business("Uploader").await;
        let cases: [(&[u8], &str, &str, &str); 3] = [
            (
                b"MZ\x90\x00",
                "application/x-msdownload",
                "tool.exe",
                "an executable",
            ),
            (
                b"MZ\x90\x00 pretending",
                "image/png",
                "photo.png",
                "an executable named and typed as png",
            ),
            (b"<script>alert(1)</script>", "text/html", "page.html", "html"),
        ];
        for (bytes, kind, filename, description) in cases {
            let answer = upload(&app, Some(&business.key), bytes, kind, filename, "file").await;
            assert_error(&answer, 415, "unsupported_media_type", description);
        }
    });
}

#[test]
fn malformed_uploads_are_refused_with_a_clear_error() {
    test(|app| async move {
        let business = app.business("Uploader").await;
        let other_field = upload(
            &app,
            Some(&business.key),
            &png(),
            "image/png",
            "photo.png",
            "document",
        )
        .await;
        assert_error(&other_field, 422, "validation_failed", "no field named file");
        let as_json = app
            .api(
                &business.key,
                Method::Post,
                "/api-upload-attachment",
                Some(json!({ "file": "base64?" })),
            )
            .await;
        assert_error(
            &as_json,
            415,
            "unsupported_media_type",
            "JSON instead of multipart",
        );
        let no_key = upload(&app, None, &png(), "image/png", "photo.png", "file").await;
        assert_error(&no_key, 401, "unauthorized", "no key");
    });
}

#[test]
fn a_business_cannot_download_another_businesss_attachment_and_links_need_a_key_or_a_valid_signature() {
    test(|app| async move {
        let mine = app.business("Mine").await;
        let other = app.business("Other").await;
        let uploaded = upload(&app, Some(&mine.key), &png(), "image/png", "photo.png", "file")
            .await
            .expect(201)
            .json();
        let id = uploaded["attachment"]["id"].as_str().unwrap_or_default();
        let path = format!("/api/download-media?id={id}");
        let cases = [
            (
                path.clone(),
                Some(other.key.as_str()),
                404,
                "another business sees nothing",
            ),
            (path.clone(), None, 401, "no key, no signature"),
            (
                format!(
                    "{path}&expires={}&signature={}",
                    app.stack.now_ms() / 1000 + 600,
                    "ab".repeat(32)
                ),
                None,
                403,
                "a forged signature",
            ),
            (
                "/api/download-media?id=8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f".to_owned(),
                Some(mine.key.as_str()),
                404,
                "an unknown id",
            ),
            (
                "/api/download-media?id=../../etc/passwd".to_owned(),
                Some(mine.key.as_str()),
                422,
                "a malformed id",
            ),
        ];
        for (path, key, status, description) in cases {
            let answer = download(&app, &path, key).await;
            assert_eq!(answer.status, status, "{description}: {}", answer.text());
        }
    });
}
