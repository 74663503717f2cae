//! Where a business may point our outbound calls: webhook endpoint URLs and a channel account's
//! `api_base_url` follow one rule, and an address inside a network (private, link-local, the
//! cloud metadata service, ...) is refused with 422 naming the field, in every spelling. As in
//! the local stack, loopback is allowed (`ALLOW_LOOPBACK_WEBHOOKS`), so these are the internal
//! hosts that stay refused even there. (The end-to-end suite's `destinations.test.mjs`.)

use crate::app::{App, test};
use crate::steps::api::assert_error;
use crate::steps::channels::whatsapp_account;
use crate::steps::id_of;
use crate::steps::webhooks::create_webhook;
use edge::runtime::Method;
use serde_json::json;

const HOSTILE: [(&str, &str); 24] = [
    ("a private address", "https://10.0.0.5/hooks"),
    ("a private address in 192.168/16", "https://192.168.1.1/hooks"),
    (
        "a private address written as one number",
        "https://3232235777/hooks",
    ),
    (
        "the cloud metadata address",
        "https://169.254.169.254/latest/meta-data/",
    ),
    ("the metadata address in hex", "https://0xa9fea9fe/"),
    ("the metadata address in octal", "https://0251.0376.0251.0376/"),
    ("the metadata address in a short form", "https://169.254.43518/"),
    (
        "the metadata name",
        "https://metadata.google.internal/computeMetadata/v1/",
    ),
    ("the unspecified address", "https://0.0.0.0/"),
    ("a carrier-grade NAT address", "https://100.64.0.1/"),
    ("a multicast address", "https://224.0.0.1/"),
    ("the broadcast address", "https://255.255.255.255/"),
    ("IPv6 link-local", "https://[fe80::1]/"),
    ("IPv6 unique local", "https://[fd00::1]/"),
    ("IPv6 unspecified", "https://[::]/"),
    ("an IPv4-mapped private address", "https://[::ffff:10.0.0.5]/"),
    ("an IPv4-mapped loopback address", "https://[::ffff:127.0.0.1]/"),
    ("a NAT64 metadata address", "https://[64:ff9b::a9fe:a9fe]/"),
    ("an mDNS name", "https://printer.local/"),
    ("a .corp name", "https://crm.corp/"),
    ("a .home.arpa name", "https://router.home.arpa/"),
    ("a single-label name", "https://intranet/"),
    (
        "credentials in front of a private address",
        "https://crm.example.com@10.0.0.5/",
    ),
    ("http to a private address", "http://10.0.0.5/hooks"),
];

/// A deployment configured as the local stack is: loopback allowed.
fn allow_loopback(app: &App) {
    app.stack.set_var("ALLOW_LOOPBACK_WEBHOOKS", "true");
}

#[test]
fn a_webhook_endpoint_at_an_internal_address_is_refused_with_422_naming_url_and_nothing_is_stored() {
    test(|app| async move {
        allow_loopback(&app);
        let acme = app.business("Acme").await;
        for (description, url) in HOSTILE {
            let answer = app
                .api(
                    &acme.key,
                    Method::Post,
                    "/api-webhooks",
                    Some(json!({ "name": "hostile", "url": url })),
                )
                .await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], "url", "{description}: the field named");
        }
        let list = app
            .api(&acme.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200)
            .json();
        assert_eq!(list["webhooks"], json!([]), "no refused endpoint was stored");
    });
}

#[test]
fn a_webhook_endpoint_cannot_be_moved_to_an_internal_address() {
    test(|app| async move {
        allow_loopback(&app);
        let acme = app.business("Acme").await;
        let (webhook, _) =
            create_webhook(&app, &acme.key, json!({ "url": "https://crm.example.com/hooks" })).await;
        let path = format!("/api-webhooks/{}", id_of(&webhook));
        for (description, url) in HOSTILE {
            let answer = app
                .api(&acme.key, Method::Patch, &path, Some(json!({ "url": url })))
                .await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], "url", "{description}: the field named");
        }
        let read = app
            .api(&acme.key, Method::Get, &path, None)
            .await
            .expect(200)
            .json();
        assert_eq!(
            read["webhook"]["url"], "https://crm.example.com/hooks",
            "the url did not change"
        );
    });
}

#[test]
fn a_channel_account_whose_api_base_url_is_internal_is_refused_with_422_naming_settings_api_base_url() {
    test(|app| async move {
        allow_loopback(&app);
        let acme = app.business("Acme").await;
        let account = whatsapp_account(&app, &acme.id, None).await;
        for (description, url) in HOSTILE {
            let patched = app
                .admin(
                    Method::Patch,
                    &format!("/admin/channel-accounts/{}", account.id),
                    Some(json!({ "settings": { "api_base_url": url } })),
                )
                .await;
            let error = assert_error(
                &patched,
                422,
                "validation_failed",
                &format!("PATCH with {description}"),
            );
            assert_eq!(
                error["field"], "settings.api_base_url",
                "PATCH with {description}: the field named"
            );
        }
        let created = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/channel-accounts", acme.id),
                Some(json!({
                    "channel": "facebook",
                    "provider": "meta",
                    "address": "91700000000000",
                    "secrets": { "app_secret": "a", "verify_token": "v", "access_token": "t" },
                    "settings": { "api_base_url": "https://169.254.169.254/" }
                })),
            )
            .await;
        let error = assert_error(
            &created,
            422,
            "validation_failed",
            "create with the metadata address",
        );
        assert_eq!(error["field"], "settings.api_base_url", "create: the field named");

        let listed = app
            .admin(
                Method::Get,
                &format!("/admin/businesses/{}/channel-accounts", acme.id),
                None,
            )
            .await
            .expect(200)
            .json();
        let accounts: Vec<(serde_json::Value, serde_json::Value)> = listed["channel_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (a["id"].clone(), a["settings"].clone()))
            .collect();
        assert_eq!(
            accounts,
            [(json!(account.id), json!({}))],
            "nothing refused was stored"
        );
    });
}

#[test]
fn public_destinations_and_in_the_local_stack_loopback_stubs_are_accepted() {
    test(|app| async move {
        allow_loopback(&app);
        let acme = app.business("Acme").await;
        let account = whatsapp_account(&app, &acme.id, None).await;
        let path = format!("/admin/channel-accounts/{}", account.id);
        for url in [
            "https://graph.example.com/v21.0",
            "https://[2606:4700::1111]/v21.0",
            "http://127.0.0.1:9/v21.0",
        ] {
            let answer = app
                .admin(
                    Method::Patch,
                    &path,
                    Some(json!({ "settings": { "api_base_url": url } })),
                )
                .await;
            assert_eq!(answer.status, 200, "{url}: {}", answer.text());
            assert_eq!(answer.json()["settings"]["api_base_url"], url);
        }
        let removed = app
            .admin(
                Method::Patch,
                &path,
                Some(json!({ "settings": { "api_base_url": null } })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(removed["settings"], json!({}), "null removes the setting");
    });
}
