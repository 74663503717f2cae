//! Reading messages (`tests/e2e/messages.test.mjs`): polling with `/api-messages-since` (the
//! seed's loop, which resumes after the last message's `created_at`, and the cursor), and a
//! customer's conversations. Messages arrive through the WhatsApp webhook, signed as Meta signs.

use crate::app::{App, test};
use crate::partners::form::url_encoded;
use crate::partners::meta::{self as meta_partner, whatsapp_notification};
use crate::partners::unique_hex;
use crate::paths::inbound::{MetaSetup, deliver_meta, meta_account};
use crate::steps::api::assert_error;
use crate::steps::customers::sync;
use edge::runtime::Method;
use serde_json::{Value, json};

const EPOCH: &str = "1970-01-01T00:00:00Z";

/// A query's parameters, in order.
type Query<'a> = &'a [(&'a str, &'a str)];

/// Delivers one WhatsApp notification carrying `messages` (`(from without +, text)`); returns
/// Meta's ids of them.
async fn deliver(app: &App, setup: &MetaSetup, messages: &[(String, String)]) -> Vec<String> {
    let ids: Vec<String> = messages.iter().map(|_| meta_partner::mid("wamid.")).collect();
    let notification = whatsapp_notification(
        &setup.address,
        json!({
            "contacts": messages.iter().map(|(from, _)| json!({ "profile": { "name": format!("Sender {from}") }, "wa_id": from })).collect::<Vec<_>>(),
            "messages": messages.iter().zip(&ids).map(|((from, text), id)| json!({
                "from": from, "id": id, "timestamp": (app.stack.now_ms() / 1000).to_string(), "type": "text", "text": { "body": text }
            })).collect::<Vec<_>>()
        }),
    );
    deliver_meta(app, setup, &notification).await.expect(200);
    ids
}

/// `GET /api-messages-since` with `query`: its status and body.
async fn since(app: &App, key: &str, query: &[(&str, &str)]) -> crate::app::Answer {
    app.api(
        key,
        Method::Get,
        &format!("/api-messages-since?{}", url_encoded(query)),
        None,
    )
    .await
}

fn messages(page: &Value) -> Vec<Value> {
    page["messages"].as_array().cloned().unwrap_or_default()
}

/// The seed's polling loop: `since` = the last message's `created_at`, until `has_more` is false.
async fn poll_like_the_seed(app: &App, key: &str, limit: &str) -> Vec<Value> {
    let mut last_check = EPOCH.to_owned();
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let page = since(app, key, &[("since", &last_check), ("limit", limit)])
            .await
            .expect(200)
            .json();
        let batch = messages(&page);
        if let Some(last) = batch.last() {
            last_check = last["created_at"].as_str().unwrap_or_default().to_owned();
        }
        seen.extend(batch);
        if page["has_more"] != true {
            return seen;
        }
    }
    panic!("polling did not finish");
}

async fn poll_by_cursor(app: &App, key: &str, limit: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut page = since(app, key, &[("since", EPOCH), ("limit", limit)])
        .await
        .expect(200)
        .json();
    for _ in 0..1000 {
        seen.extend(messages(&page));
        if page["has_more"] != true {
            return seen;
        }
        let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
        page = since(app, key, &[("cursor", &cursor), ("limit", limit)])
            .await
            .expect(200)
            .json();
    }
    panic!("polling did not finish");
}

/// A poller that keeps its cursor and everything it saw, in order.
#[derive(Default)]
struct Poller {
    cursor: Option<String>,
    seen: Vec<String>,
}

impl Poller {
    async fn poll_once(&mut self, app: &App, key: &str) {
        let page = match &self.cursor {
            Some(cursor) => since(app, key, &[("cursor", cursor), ("limit", "5")]).await,
            None => since(app, key, &[("since", EPOCH), ("limit", "5")]).await,
        }
        .expect(200)
        .json();
        for message in messages(&page) {
            let id = message["id"].as_str().unwrap_or_default().to_owned();
            assert!(!self.seen.contains(&id), "message {id} seen twice");
            self.seen.push(id);
        }
        if let Some(cursor) = page["next_cursor"].as_str() {
            self.cursor = Some(cursor.to_owned());
        }
    }
}

/// `count` messages `{label} {n}`, from `senders` numbers in turn.
fn batch(label: &str, count: usize, senders: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|n| (format!("3538700{:05}", n % senders), format!("{label} {n}")))
        .collect()
}

#[test]
fn the_seeds_polling_loop_sees_every_message_exactly_once_when_many_share_a_millisecond() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        // One webhook with 40 messages: they are stored within the same millisecond.
        let sent = batch("message", 40, 5);
        let ids = deliver(&app, &setup, &sent).await;
        let seen = poll_like_the_seed(&app, &setup.business.key, "7").await;
        assert_eq!(seen.len(), 40, "every message once");
        let mut unique: Vec<&Value> = seen.iter().map(|message| &message["id"]).collect();
        unique.sort_by_key(|id| id.to_string());
        unique.dedup();
        assert_eq!(unique.len(), 40, "no message twice");
        let contents: Vec<&str> = seen
            .iter()
            .map(|message| message["content"].as_str().unwrap_or_default())
            .collect();
        let texts: Vec<&str> = sent.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(contents, texts, "in the order they arrived");
        let mut millis: Vec<&str> = seen
            .iter()
            .map(|message| {
                message["created_at"]
                    .as_str()
                    .unwrap_or_default()
                    .get(..23)
                    .unwrap_or_default()
            })
            .collect();
        millis.dedup();
        assert!(
            millis.len() < 40,
            "meaningful only if some messages share a millisecond ({} distinct)",
            millis.len()
        );
        assert!(
            seen.iter()
                .all(|message| !ids.iter().any(|id| message["id"] == id.as_str())),
            "our ids are ours, not the provider's"
        );
    });
}

#[test]
fn the_cursor_pages_through_the_same_messages_and_a_poll_during_delivery_misses_nothing() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let key = setup.business.key.clone();
        let mut poller = Poller::default();
        let mut delivered = Vec::new();
        for round in 0..6 {
            let sent: Vec<(String, String)> = (0..6)
                .map(|n| ("353870099999".to_owned(), format!("round {round} message {n}")))
                .collect();
            let (ids, ()) =
                futures_util::future::join(deliver(&app, &setup, &sent), poller.poll_once(&app, &key)).await;
            delivered.extend(ids);
        }
        for _ in 0..20 {
            if poller.seen.len() >= 36 {
                break;
            }
            poller.poll_once(&app, &key).await;
        }
        assert_eq!(
            poller.seen.len(),
            36,
            "every delivered message was polled exactly once"
        );
        let by_cursor: Vec<String> = poll_by_cursor(&app, &key, "8")
            .await
            .iter()
            .map(|message| message["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(by_cursor, poller.seen, "the cursor sees the same order");
    });
}

#[test]
fn messages_have_the_seeds_fields_and_a_business_sees_only_its_own() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let other = meta_account(&app, "whatsapp").await;
        let from = "353871112223".to_owned();
        deliver(
            &app,
            &setup,
            &[(from.clone(), "Hello, I need help with my order".to_owned())],
        )
        .await;
        deliver(&app, &other, &[(from, "not yours".to_owned())]).await;
        let page = since(
            &app,
            &setup.business.key,
            &[("since", EPOCH), ("include_attachments", "true")],
        )
        .await
        .expect(200)
        .json();
        let listed = messages(&page);
        assert_eq!(listed.len(), 1, "{page}");
        let message = &listed[0];
        assert_eq!(message["content"], "Hello, I need help with my order");
        assert_eq!(message["platform"], "whatsapp");
        assert_eq!(message["channel"], "whatsapp");
        assert_eq!(message["direction"], "inbound");
        assert_eq!(message["status"], "received");
        let created_at = message["created_at"].as_str().unwrap_or_default();
        assert!(
            is_microsecond_utc(created_at),
            "created_at is RFC 3339 with microseconds: {created_at}"
        );
        assert_eq!(message["attachments"], json!([]));
        assert_eq!(page["has_more"], false);
        assert!(page["next_cursor"].is_string(), "{page}");
        let later = since(&app, &setup.business.key, &[("since", created_at)])
            .await
            .expect(200)
            .json();
        assert_eq!(later["messages"], json!([]), "since is exclusive");
        assert_eq!(later["next_cursor"], Value::Null);
    });
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn is_microsecond_utc(text: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(got, want)| {
            if want == 'd' {
                got.is_ascii_digit()
            } else {
                got == want
            }
        })
}

#[test]
fn bad_queries_are_refused_with_the_parameter_at_fault() {
    test(|app| async move {
        let business = app.business("Poller").await;
        let cases: [(Query<'_>, u16, &str, &str); 5] = [
            (&[], 400, "malformed_request", "neither since nor cursor"),
            (
                &[("since", "yesterday")],
                422,
                "validation_failed",
                "a since that is not a timestamp",
            ),
            (
                &[("cursor", "forged")],
                422,
                "validation_failed",
                "a forged cursor",
            ),
            (
                &[("since", EPOCH), ("limit", "0")],
                422,
                "validation_failed",
                "limit 0",
            ),
            (
                &[("since", EPOCH), ("limit", "501")],
                422,
                "validation_failed",
                "limit over 500",
            ),
        ];
        for (query, status, code, description) in cases {
            assert_error(
                &since(&app, &business.key, query).await,
                status,
                code,
                description,
            );
        }
        let no_key = app
            .request(
                Method::Get,
                &format!("/api-messages-since?since={EPOCH}"),
                &[],
                Vec::new(),
            )
            .await;
        assert_error(&no_key, 401, "unauthorized", "no key");
    });
}

#[test]
fn a_crm_customers_whatsapp_conversation_is_found_by_external_id_with_its_messages_in_order() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let external_id = format!("CRM-{}", unique_hex(8));
        let synced = sync(
            &app,
            &setup.business.key,
            json!([{ "external_id": external_id, "name": "Joe Bloggs", "phone": "+353871234999" }]),
        )
        .await;
        assert_eq!(synced["results"]["created"], 1, "{synced}");
        let from = "353871234999".to_owned();
        deliver(
            &app,
            &setup,
            &[(from.clone(), "first".to_owned()), (from, "second".to_owned())],
        )
        .await;
        let found = app
            .api(
                &setup.business.key,
                Method::Get,
                &format!(
                    "/api-conversations-by-customer?external_id={external_id}&include_messages=true&include_attachments=true"
                ),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(found["customer"]["external_id"], external_id.as_str());
        assert_eq!(
            found["customer"]["name"], "Joe Bloggs",
            "the inbound message found the synced customer by phone"
        );
        let conversations = found["conversations"].as_array().cloned().unwrap_or_default();
        assert_eq!(conversations.len(), 1, "{found}");
        let conversation = &conversations[0];
        assert_eq!(conversation["channel"], "whatsapp");
        assert_eq!(conversation["status"], "open");
        assert_eq!(conversation["message_count"], 2);
        assert!(conversation["channel_account_id"].is_string(), "{conversation}");
        assert_eq!(
            conversation["whatsapp_account_id"], conversation["channel_account_id"],
            "the core guide's name for a WhatsApp conversation's account"
        );
        let listed = messages(conversation);
        let contents: Vec<&Value> = listed.iter().map(|message| &message["content"]).collect();
        assert_eq!(contents, [&json!("first"), &json!("second")]);
        let attachments: Vec<&Value> = listed.iter().map(|message| &message["attachments"]).collect();
        assert_eq!(attachments, [&json!([]), &json!([])]);

        let customer_id = found["customer"]["id"].as_str().unwrap_or_default();
        let without = app
            .api(
                &setup.business.key,
                Method::Get,
                &format!("/api-conversations-by-customer?customer_id={customer_id}"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert!(
            without["conversations"][0].get("messages").is_none(),
            "messages only when asked for: {without}"
        );
    });
}

#[test]
fn unknown_ambiguous_and_other_businesses_customers_are_refused() {
    test(|app| async move {
        let setup = meta_account(&app, "whatsapp").await;
        let other = app.business("Other").await;
        let external_id = format!("CRM-{}", unique_hex(8));
        sync(
            &app,
            &setup.business.key,
            json!([{ "external_id": external_id, "name": "Mine", "email": format!("m-{}@example.com", unique_hex(8)) }]),
        )
        .await;
        let ask = |key: &str, query: String| {
            let app = &app;
            let key = key.to_owned();
            async move {
                app.api(
                    &key,
                    Method::Get,
                    &format!("/api-conversations-by-customer{query}"),
                    None,
                )
                .await
            }
        };
        let mine = setup.business.key.as_str();
        let cases = [
            (
                other.key.as_str(),
                format!("?external_id={external_id}"),
                404,
                "not_found",
                "another business",
            ),
            (
                mine,
                "?external_id=nobody".to_owned(),
                404,
                "not_found",
                "unknown",
            ),
            (mine, String::new(), 422, "validation_failed", "no key"),
            (
                mine,
                "?external_id=a&customer_id=8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f".to_owned(),
                422,
                "validation_failed",
                "two keys",
            ),
            // customer_id is our id or, failing that, the CRM's, as everywhere a customer is named.
            (
                mine,
                "?customer_id=x".to_owned(),
                404,
                "not_found",
                "an id that is neither ours nor the CRM's",
            ),
            (
                mine,
                format!("?external_id={external_id}&include_messages=maybe"),
                422,
                "validation_failed",
                "a bad flag",
            ),
        ];
        for (key, query, status, code, description) in cases {
            assert_error(&ask(key, query).await, status, code, description);
        }
    });
}
