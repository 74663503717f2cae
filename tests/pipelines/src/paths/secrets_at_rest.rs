//! Secrets at rest (the end-to-end suite's `secrets-at-rest.test.mjs`): webhook and provider
//! secrets are sealed (AES-256-GCM, `v1:<key id>:…`) in D1, so the stored rows show none of them,
//! while everything that uses them works as before; a value found in clear (from before sealing)
//! is sealed by the read that finds it; and a sealed value opens only in the row it was sealed
//! for. The rows are read straight from the shards (`SELECT *`), as a D1 export shows them.

use crate::app::{Answer, App, Business, test};
use crate::partners::meta::numeric_id;
use crate::partners::webhook_endpoint::{Endpoint, standard_signature_match};
use crate::steps::api::assert_error;
use crate::steps::store::{execute, select};
use crate::steps::text;
use crate::steps::unique;
use crate::steps::webhooks::with_endpoint;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::Method;
use serde_json::{Value, json};

/// `v1:<key id>:<sealed bytes>`, both parts URL-safe base64 without padding.
fn is_sealed(value: &Value) -> bool {
    let url_safe = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let parts: Vec<&str> = value.as_str().unwrap_or_default().split(':').collect();
    parts.len() == 3 && parts[0] == "v1" && url_safe(parts[1]) && url_safe(parts[2])
}

/// Every column of the row `id` of `table`, as text.
fn stored_row(app: &App, table: &str, id: &str) -> Vec<String> {
    let rows = select(app, &format!("SELECT * FROM {table} WHERE id = ?1"), &[id]);
    assert_eq!(rows.len(), 1, "{table} {id} is stored once");
    rows[0]
        .values()
        .map(|value| match value {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Checks that no column of the row holds any of `secrets` (nor a webhook secret's base64 part).
fn assert_no_secret_in(app: &App, table: &str, id: &str, secrets: &[&str], description: &str) {
    let row = stored_row(app, table, id);
    for secret in secrets {
        for needle in [*secret, secret.trim_start_matches("whsec_")] {
            assert!(
                !row.iter().any(|column| column.contains(needle)),
                "{description}: {table} {id} shows a secret in clear: {}",
                row.join(" | ")
            );
        }
    }
}

/// The webhook endpoint's stored `secret` and `previous_secret`.
fn endpoint_secrets(app: &App, id: &str) -> (Value, Value) {
    let rows = select(
        app,
        "SELECT secret, previous_secret FROM webhook_endpoints WHERE id = ?1",
        &[id],
    );
    assert_eq!(rows.len(), 1, "webhook endpoint {id} is stored once");
    (rows[0]["secret"].clone(), rows[0]["previous_secret"].clone())
}

/// A business (in Ireland) with a webhook endpoint at `host`, which knows its secret.
struct WithEndpoint {
    business: Business,
    endpoint: Endpoint,
    id: String,
    secret: String,
}

async fn business_with_endpoint(app: &App, host: &str) -> WithEndpoint {
    let business = app.business("Acme").await;
    let endpoint = Endpoint::install(&app.stack, host);
    let (webhook, secret) = with_endpoint(app, &business.key, &endpoint, json!({})).await;
    WithEndpoint {
        business,
        endpoint,
        id: text(&webhook["id"]).to_owned(),
        secret,
    }
}

/// "Send test event" to the endpoint.
async fn send_test(app: &App, with: &WithEndpoint) -> Answer {
    app.api(
        &with.business.key,
        Method::Post,
        &format!("/api-webhooks/{}/test", with.id),
        Some(json!({})),
    )
    .await
}

#[test]
fn an_endpoint_stores_its_secret_sealed_and_deliveries_verify_with_the_secret_the_api_returned() {
    test(|app| async move {
        let with = business_with_endpoint(&app, "hooks.acme.example").await;
        let (stored, previous) = endpoint_secrets(&app, &with.id);
        assert!(
            is_sealed(&stored),
            "the secret column holds a sealed value: {stored}"
        );
        assert_eq!(previous, Value::Null);
        assert_no_secret_in(
            &app,
            "webhook_endpoints",
            &with.id,
            &[&with.secret],
            "after creation",
        );

        let sent = send_test(&app, &with).await.expect(200).json();
        assert_eq!(sent["delivered"], true, "{sent}");
        let deliveries = with.endpoint.deliveries();
        assert!(
            deliveries[0].seed_verified,
            "the seed's signature verifies with the returned secret"
        );
        assert!(
            deliveries[0].standard_verified,
            "the Standard Webhooks signature verifies with it"
        );
    });
}

#[test]
fn after_a_rotation_both_secrets_are_stored_sealed_and_both_sign() {
    test(|app| async move {
        let with = business_with_endpoint(&app, "hooks.acme.example").await;
        let rotated = app
            .api(
                &with.business.key,
                Method::Post,
                &format!("/api-webhooks/{}/rotate-secret", with.id),
                Some(json!({})),
            )
            .await
            .expect(200)
            .json();
        let second = text(&rotated["secret"]).to_owned();
        let (stored, previous) = endpoint_secrets(&app, &with.id);
        assert!(is_sealed(&stored), "the new secret is sealed: {stored}");
        assert!(is_sealed(&previous), "the previous secret is sealed: {previous}");
        assert_no_secret_in(
            &app,
            "webhook_endpoints",
            &with.id,
            &[&with.secret, &second],
            "after a rotation",
        );

        with.endpoint.knows_secret(&second);
        let sent = send_test(&app, &with).await.expect(200).json();
        assert_eq!(sent["delivered"], true, "{sent}");
        let delivery = &with.endpoint.deliveries()[0];
        assert!(delivery.seed_verified, "the new secret signs");
        let by_new = standard_signature_match(&second, &delivery.call);
        let by_old = standard_signature_match(&with.secret, &delivery.call);
        assert!(
            by_new.is_some() && by_old.is_some(),
            "both secrets sign during the grace period ({by_new:?}, {by_old:?})"
        );
    });
}

#[test]
fn a_webhook_secret_stored_in_clear_before_sealing_still_signs_and_is_sealed_by_the_read_that_finds_it() {
    test(|app| async move {
        let with = business_with_endpoint(&app, "hooks.acme.example").await;
        let legacy = format!("whsec_{}", STANDARD.encode(unique("legacy-secret-bytes")));
        execute(
            &app,
            "UPDATE webhook_endpoints SET secret = ?1 WHERE id = ?2",
            &[&legacy, &with.id],
        );
        with.endpoint.knows_secret(&legacy);

        let sent = send_test(&app, &with).await.expect(200).json();
        assert_eq!(sent["delivered"], true, "{sent}");
        assert!(
            with.endpoint.deliveries()[0].seed_verified,
            "the clear secret signed the delivery"
        );
        let (stored, _) = endpoint_secrets(&app, &with.id);
        assert!(is_sealed(&stored), "resealed: {stored}");
        assert_no_secret_in(&app, "webhook_endpoints", &with.id, &[&legacy], "after the read");
    });
}

#[test]
fn a_sealed_webhook_secret_copied_into_another_endpoints_row_does_not_open_there() {
    test(|app| async move {
        let victim = business_with_endpoint(&app, "hooks.victim.example").await;
        let thief = business_with_endpoint(&app, "hooks.thief.example").await;
        let (sealed, _) = endpoint_secrets(&app, &victim.id);
        execute(
            &app,
            "UPDATE webhook_endpoints SET secret = ?1 WHERE id = ?2",
            &[text(&sealed), &thief.id],
        );
        let answer = send_test(&app, &thief).await;
        assert_error(&answer, 500, "internal_error", "a secret bound to another row");
        assert!(!answer.text().contains("whsec_"), "the answer shows no secret");
        assert!(
            thief.endpoint.deliveries().is_empty() && victim.endpoint.deliveries().is_empty(),
            "nothing was signed with it"
        );
    });
}

/// A Meta (WhatsApp) account made through the admin API, with secrets of its own.
struct MetaAccount {
    id: String,
    path: String,
    secrets: Value,
}

async fn meta_account(app: &App) -> MetaAccount {
    let business = app.business("Acme").await;
    let secrets = json!({ "app_secret": unique("app"), "verify_token": unique("verify"), "access_token": unique("access") });
    let created = app
        .admin(
            Method::Post,
            &format!("/admin/businesses/{}/channel-accounts", business.id),
            Some(json!({ "channel": "whatsapp", "provider": "meta", "address": numeric_id(), "secrets": secrets })),
        )
        .await
        .expect(201)
        .json();
    MetaAccount {
        id: text(&created["id"]).to_owned(),
        path: text(&created["webhook_path"]).to_owned(),
        secrets,
    }
}

impl MetaAccount {
    fn secret_values(&self) -> Vec<String> {
        self.secrets
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, value)| text(value).to_owned())
            .collect()
    }
}

/// Meta's subscription handshake against the account: it needs the opened verify token.
async fn handshake(app: &App, account: &MetaAccount, token: &str) -> Answer {
    let query = crate::partners::form::url_encoded(&[
        ("hub.mode", "subscribe"),
        ("hub.verify_token", token),
        ("hub.challenge", "4242"),
    ]);
    app.request(Method::Get, &format!("{}?{query}", account.path), &[], Vec::new())
        .await
}

fn stored_secrets_of_account(app: &App, id: &str) -> Value {
    let rows = select(app, "SELECT secrets FROM channel_accounts WHERE id = ?1", &[id]);
    assert_eq!(rows.len(), 1, "channel account {id} is stored once");
    rows[0]["secrets"].clone()
}

#[test]
fn an_account_stores_its_secrets_sealed_opens_them_to_verify_and_keeps_them_sealed_after_a_rotation() {
    test(|app| async move {
        let account = meta_account(&app).await;
        let stored = stored_secrets_of_account(&app, &account.id);
        assert!(
            is_sealed(&stored),
            "the secrets column holds a sealed value: {stored}"
        );
        let values = account.secret_values();
        let all: Vec<&str> = values.iter().map(String::as_str).collect();
        assert_no_secret_in(&app, "channel_accounts", &account.id, &all, "after creation");

        let good = handshake(&app, &account, text(&account.secrets["verify_token"]))
            .await
            .expect(200);
        assert_eq!(good.text(), "4242", "the verify token was opened and matched");

        let new_token = unique("verify-rotated");
        let rotated = app
            .admin(
                Method::Patch,
                &format!("/admin/channel-accounts/{}", account.id),
                Some(json!({ "secrets": { "verify_token": new_token } })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            rotated["secrets_set"],
            json!(["access_token", "app_secret", "verify_token"]),
            "the others are kept"
        );
        let stored = stored_secrets_of_account(&app, &account.id);
        assert!(is_sealed(&stored), "{stored}");
        let mut every = all.clone();
        every.push(&new_token);
        assert_no_secret_in(&app, "channel_accounts", &account.id, &every, "after a rotation");
        handshake(&app, &account, &new_token).await.expect(200);
        assert_error(
            &handshake(&app, &account, text(&account.secrets["verify_token"])).await,
            403,
            "forbidden",
            "the old token no longer does",
        );

        let removed = app
            .admin(
                Method::Patch,
                &format!("/admin/channel-accounts/{}", account.id),
                Some(json!({ "secrets": { "access_token": null } })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            removed["secrets_set"],
            json!(["app_secret", "verify_token"]),
            "null removes a secret"
        );
    });
}

#[test]
fn provider_secrets_stored_in_clear_before_sealing_still_verify_and_are_sealed_by_the_read_that_finds_them() {
    test(|app| async move {
        let account = meta_account(&app).await;
        let legacy = json!({ "app_secret": unique("legacy-app"), "verify_token": unique("legacy-verify"), "access_token": unique("legacy-access") });
        execute(
            &app,
            "UPDATE channel_accounts SET secrets = ?1 WHERE id = ?2",
            &[&legacy.to_string(), &account.id],
        );
        let token = text(&legacy["verify_token"]);
        handshake(&app, &account, token).await.expect(200);
        let stored = stored_secrets_of_account(&app, &account.id);
        assert!(is_sealed(&stored), "resealed by the read: {stored}");
        let values: Vec<&str> = legacy
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, value)| text(value))
            .collect();
        assert_no_secret_in(&app, "channel_accounts", &account.id, &values, "after the read");
        handshake(&app, &account, token).await.expect(200);
    });
}

#[test]
fn sealed_provider_secrets_copied_into_another_accounts_row_do_not_open_there() {
    test(|app| async move {
        let victim = meta_account(&app).await;
        let thief = meta_account(&app).await;
        let sealed = stored_secrets_of_account(&app, &victim.id);
        execute(
            &app,
            "UPDATE channel_accounts SET secrets = ?1 WHERE id = ?2",
            &[text(&sealed), &thief.id],
        );
        let answer = handshake(&app, &thief, text(&victim.secrets["verify_token"])).await;
        assert_error(&answer, 500, "internal_error", "secrets bound to another row");
        assert_ne!(answer.text(), "4242");
    });
}
