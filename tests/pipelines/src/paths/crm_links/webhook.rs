//! tests/e2e/links/webhook.test.mjs: webhook links, whose CRM pushes its data instead of being
//! fetched. Adding one answers its webhook_url and, that once, its Standard Webhooks secret; a
//! push signed with it (JSON or CSV) becomes the link's data exactly as a fetch would, a later
//! push replaces it, and a push with a bad signature, a stale or future timestamp, or to an
//! unknown link is refused without effect.

use super::{
    CUSTOM_HOST, DETAILS, Dashboard, LINKS, add_page, guide_crm, guide_john_doe, now_seconds, push, query,
    standard_webhook_headers,
};
use crate::app::{App, Business, ORIGIN, test};
use crate::partners::crm_pages::{Crm, Sizes, Source, ordered_json, record_email, record_name};
use crate::steps::api::assert_error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::cell::Cell;
use std::time::Duration;

/// A webhook link on a page, its POST answer's link, and the CRM's first four custom customers.
struct Hooked {
    business: Business,
    page: String,
    url: String,
    link: Value,
    crm: Crm,
    customers: Vec<Value>,
}

impl Hooked {
    fn secret(&self) -> &str {
        self.link["webhook_secret"].as_str().unwrap_or_default()
    }

    fn webhook_url(&self) -> &str {
        self.link["webhook_url"].as_str().unwrap_or_default()
    }

    /// Pushes `body` signed with the link's secret, now.
    async fn push(&self, app: &App, body: &str, content_type: &str) -> crate::app::Answer {
        let headers = standard_webhook_headers(self.secret(), body, &message_id(), now_seconds(app));
        push(app, self.webhook_url(), body, content_type, &headers).await
    }

    async fn status(&self, app: &App) -> Value {
        Dashboard::new(app, &self.business)
            .status(&self.page, &self.url, "messenger")
            .await
    }

    async fn john_by_keyword(&self, app: &App) -> Vec<Value> {
        Dashboard::new(app, &self.business)
            .results_of(
                &[
                    ("page_id", &self.page),
                    ("channel", "messenger"),
                    ("q", "John Doe"),
                    ("mode", "keyword"),
                ],
                &self.link["id"],
            )
            .await
    }
}

thread_local! {
    static MESSAGES: Cell<u32> = const { Cell::new(0) };
}

/// A new `webhook-id`.
fn message_id() -> String {
    MESSAGES.with(|count| {
        count.set(count.get() + 1);
        format!("msg_2f{:08}", count.get())
    })
}

async fn hooked(app: &App, active: bool, path: &str) -> Hooked {
    let _ = app.embedder();
    let crm = guide_crm(app, Sizes::SMALL);
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    let url = format!("https://{CUSTOM_HOST}{path}");
    let added = Dashboard::new(app, &business)
        .add(json!({
            "page_id": page, "channels": ["messenger"], "name": "CRM push", "url": url, "type": "webhook",
            "description": "pushed by the CRM", "is_active": active
        }))
        .await;
    Hooked {
        customers: crm.records(Source::Custom),
        link: added["crm_link"].clone(),
        business,
        page,
        url,
        crm,
    }
}

/// The push's body, with each customer's fields in the CRM's order.
fn customers_json(customers: &[Value]) -> String {
    ordered_json(&json!({ "customers": customers }))
}

#[test]
fn its_post_answer_carries_the_webhook_url_and_a_standard_webhooks_secret_shown_only_there() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        let link = &hooked.link;
        assert_eq!(link["type"], "webhook");
        assert!(
            hooked.webhook_url().starts_with(&format!("{ORIGIN}/")),
            "webhook_url is on the deployment's public origin, not the address called: {}",
            hooked.webhook_url()
        );
        let key = hooked
            .secret()
            .strip_prefix("whsec_")
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .unwrap_or_else(|| panic!("webhook_secret is whsec_ and base64: {link}"));
        assert!(key.len() >= 24, "the key is at least 24 bytes");
        let dashboard = Dashboard::new(&app, &hooked.business);
        let entry = dashboard
            .entry(&hooked.page, &hooked.url, "messenger")
            .await
            .unwrap_or_default();
        assert_eq!(
            entry["webhook_url"], link["webhook_url"],
            "the list shows the webhook URL"
        );
        assert!(entry.get("webhook_secret").is_none(), "but not the secret");
        let secret = &hooked.secret()["whsec_".len()..];
        for path in [
            format!("{LINKS}?{}", query(&[("page_id", &hooked.page)])),
            format!("{LINKS}/all"),
            format!(
                "{DETAILS}?{}",
                query(&[("page_id", &hooked.page), ("source", "crm")])
            ),
        ] {
            let answer = dashboard.call(Method::Get, &path, None).await.expect(200);
            assert!(!answer.text().contains(secret), "{path} does not show the secret");
        }
        app.settle().await;
        app.stack.advance(Duration::from_secs(3600));
        app.sweep().await;
        app.settle().await;
        assert!(
            hooked.crm.served().is_empty(),
            "a webhook link is not fetched from its url"
        );
    });
}

#[test]
fn a_signed_json_push_becomes_its_data_as_a_fetch_would() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        let answer = hooked
            .push(&app, &customers_json(&hooked.customers), "application/json")
            .await;
        assert_eq!(answer.status, 202, "{}", answer.text());
        app.settle().await;
        let status = hooked.status(&app).await;
        assert_eq!(
            (status["state"].as_str(), status["records"].as_u64()),
            (Some("ok"), Some(4)),
            "{status}"
        );
        let found = hooked.john_by_keyword(&app).await;
        assert_eq!(
            found.first().map(|top| top["text"].clone()),
            Some(json!(guide_john_doe(0))),
            "John Doe in the guide's processed text"
        );
        // The end-to-end test asks "which tier did Jon pay for", a paraphrase only the real model
        // understands; the stand-in embedder needs a word in common.
        let semantic = Dashboard::new(&app, &hooked.business)
            .results_of(
                &[
                    ("page_id", &hooked.page),
                    ("channel", "messenger"),
                    ("q", "which subscription did John pay for"),
                ],
                &hooked.link["id"],
            )
            .await;
        assert_eq!(
            semantic.first().map(|top| top["text"].clone()),
            Some(json!(guide_john_doe(0))),
            "semantic search finds the pushed data"
        );
    });
}

#[test]
fn a_later_push_replaces_the_data_exactly() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        hooked
            .push(&app, &customers_json(&hooked.customers), "application/json")
            .await
            .expect(202);
        app.settle().await;
        let earlier = hooked.status(&app).await;
        app.stack.advance(Duration::from_secs(1));
        let kept = &hooked.customers[1..3];
        hooked
            .push(&app, &customers_json(kept), "application/json")
            .await
            .expect(202);
        app.settle().await;
        let status = hooked.status(&app).await;
        assert_eq!(status["records"], 2, "{status}");
        assert!(
            status["last_fetched_at"].as_str() > earlier["last_fetched_at"].as_str(),
            "{status}"
        );
        let dashboard = Dashboard::new(&app, &hooked.business);
        assert!(
            dashboard
                .texts_containing(&hooked.page, "messenger", "john@example.com", "John Doe")
                .await
                .is_empty(),
            "John Doe, no longer pushed, is gone"
        );
        // An unchanged record is not written again, so it keeps the number it was first indexed under.
        for (index, customer) in kept.iter().enumerate() {
            let line = format!("customers[{}].email: {}", index + 1, record_email(customer));
            let found = dashboard
                .texts_containing(&hooked.page, "messenger", &line, &record_name(customer))
                .await;
            assert!(
                !found.is_empty(),
                "{} is still found, as customers[{}]",
                record_name(customer),
                index + 1
            );
        }
    });
}

#[test]
fn a_csv_push_is_read_as_rows() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        let columns = ["id", "name", "email", "subscription", "support_level"];
        let mut csv = format!("{}\r\n", columns.join(","));
        for customer in &hooked.customers {
            let fields: Vec<&str> = columns
                .iter()
                .map(|column| customer[*column].as_str().unwrap_or_default())
                .collect();
            csv.push_str(&format!("{}\r\n", fields.join(",")));
        }
        hooked.push(&app, &csv, "text/csv").await.expect(202);
        app.settle().await;
        assert_eq!(hooked.status(&app).await["records"], 4);
        let found = hooked.john_by_keyword(&app).await;
        assert_eq!(
            found.first().map(|top| top["text"].clone()),
            Some(json!(guide_john_doe(0).replace("customers[0]", "rows[0]"))),
            "one line per column"
        );
    });
}

#[test]
fn a_push_with_a_bad_signature_or_a_stale_or_future_timestamp_is_refused_with_401_and_changes_nothing() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        hooked
            .push(&app, &customers_json(&hooked.customers), "application/json")
            .await
            .expect(202);
        app.settle().await;
        let body = json!({ "customers": [{ "id": "cust-666", "name": "Mallory Intruder", "email": "mallory@evil.example" }] }).to_string();
        let now = now_seconds(&app);
        let other_secret = format!("whsec_{}", STANDARD.encode("another-secret-of-24-bytes!!"));
        let secret = hooked.secret();
        let signed =
            |text: &str, timestamp: i64| standard_webhook_headers(secret, text, &message_id(), timestamp);
        let replace = |mut headers: Vec<(String, String)>, name: &str, value: String| {
            for header in &mut headers {
                if header.0 == name {
                    header.1 = value.clone();
                }
            }
            headers
        };
        let drop = |headers: Vec<(String, String)>, name: &str| -> Vec<(String, String)> {
            headers.into_iter().filter(|header| header.0 != name).collect()
        };
        let good = signed(&body, now);
        let v1a = good[2].1.replace("v1,", "v1a,");
        let cases: Vec<(&str, Vec<(String, String)>)> = vec![
            (
                "signed with another secret",
                standard_webhook_headers(&other_secret, &body, &message_id(), now),
            ),
            (
                "signed over another body",
                signed(&json!({ "customers": [] }).to_string(), now),
            ),
            (
                "a signature that is not base64",
                replace(
                    signed(&body, now),
                    "webhook-signature",
                    "v1,not-a-signature".into(),
                ),
            ),
            (
                "a v1a (asymmetric) signature only",
                replace(good.clone(), "webhook-signature", v1a),
            ),
            (
                "the id changed after signing",
                replace(signed(&body, now), "webhook-id", "msg_tampered".into()),
            ),
            (
                "no signature header",
                drop(signed(&body, now), "webhook-signature"),
            ),
            (
                "no timestamp header",
                drop(signed(&body, now), "webhook-timestamp"),
            ),
            ("a timestamp 10 minutes old", signed(&body, now - 600)),
            ("a timestamp 10 minutes ahead", signed(&body, now + 600)),
            ("a timestamp in milliseconds", signed(&body, now * 1000)),
        ];
        for (description, headers) in cases {
            let answer = push(&app, hooked.webhook_url(), &body, "application/json", &headers).await;
            assert_error(&answer, 401, "unauthorized", description);
        }
        app.settle().await;
        let dashboard = Dashboard::new(&app, &hooked.business);
        assert!(
            dashboard
                .texts_containing(&hooked.page, "messenger", "Mallory", "Mallory Intruder")
                .await
                .is_empty(),
            "nothing of a refused push is searchable"
        );
        assert_eq!(hooked.status(&app).await["records"], 4, "the data is unchanged");
    });
}

#[test]
fn a_signature_list_with_one_valid_entry_is_accepted_as_the_standard_says() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        let body = customers_json(&hooked.customers);
        let (id, now) = (message_id(), now_seconds(&app));
        let other_secret = format!("whsec_{}", STANDARD.encode("yet-another-secret-24-bytes!"));
        let good = standard_webhook_headers(hooked.secret(), &body, &id, now);
        let other = standard_webhook_headers(&other_secret, &body, &id, now);
        let mut headers = good.clone();
        headers[2].1 = format!("{} {}", other[2].1, good[2].1);
        let answer = push(&app, hooked.webhook_url(), &body, "application/json", &headers).await;
        assert_eq!(answer.status, 202, "{}", answer.text());
        app.settle().await;
        assert_eq!(hooked.status(&app).await["records"], 4);
    });
}

#[test]
fn a_push_to_a_link_that_does_not_exist_is_404() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        let (base, id) = hooked.webhook_url().rsplit_once('/').unwrap_or_default();
        let unknown: String = id
            .chars()
            .map(|c| {
                if !c.is_ascii_alphanumeric() {
                    c
                } else if c == 'a' {
                    'b'
                } else {
                    'a'
                }
            })
            .collect();
        let headers = standard_webhook_headers(hooked.secret(), "{}", &message_id(), now_seconds(&app));
        let answer = push(
            &app,
            &format!("{base}/{unknown}"),
            "{}",
            "application/json",
            &headers,
        )
        .await;
        assert_error(&answer, 404, "not_found", "an unknown webhook link");
    });
}

#[test]
fn a_push_to_a_deleted_link_is_404() {
    test(|app| async move {
        let hooked = hooked(&app, true, "/hooks/customers").await;
        let dashboard = Dashboard::new(&app, &hooked.business);
        dashboard
            .call(
                Method::Delete,
                LINKS,
                Some(json!({ "page_id": hooked.page, "url": hooked.url })),
            )
            .await
            .expect(200);
        let answer = hooked
            .push(&app, &customers_json(&hooked.customers), "application/json")
            .await;
        assert_error(&answer, 404, "not_found", "the deleted link");
        assert!(
            dashboard
                .entry(&hooked.page, &hooked.url, "messenger")
                .await
                .is_none(),
            "the deleted link is not listed"
        );
    });
}

#[test]
fn a_webhook_link_pushed_to_while_inactive_keeps_the_push_out_of_search_and_indexes_it_once_activated() {
    test(|app| async move {
        let hooked = hooked(&app, false, "/hooks/quiet-customers").await;
        hooked
            .push(&app, &customers_json(&hooked.customers), "application/json")
            .await
            .expect(202);
        app.settle().await;
        assert_eq!(
            hooked.status(&app).await["records"],
            0,
            "nothing of an inactive link is indexed"
        );
        assert!(hooked.john_by_keyword(&app).await.is_empty(), "nor searchable");
        Dashboard::new(&app, &hooked.business)
            .set_active(&hooked.page, &hooked.url, true, None)
            .await;
        app.settle().await;
        assert_eq!(hooked.status(&app).await["records"], 4);
        let found = hooked.john_by_keyword(&app).await;
        assert_eq!(
            found.first().map(|top| top["text"].clone()),
            Some(json!(guide_john_doe(0))),
            "the data pushed while inactive is searchable once active"
        );
        assert!(
            hooked.crm.served().is_empty(),
            "and the link was never fetched from its url"
        );
    });
}
