//! Kustomer's webhooks at `/api/webhooks/kustomer/{connector}` (tests/e2e/crm/kustomer-webhooks.test.mjs):
//! signed with the hook's token, deduplicated by event id, an agent's reply sent to the customer
//! on their channel (and not put back on the timeline), status and assignment changes applied
//! here without being sent back, and satisfaction kept. Anything unsigned, mis-signed or
//! malformed is refused.

use crate::app::{Answer, App, test};
use crate::partners::hmac_sha256;
use crate::partners::meta::Graph;
use crate::steps::api::assert_error;
use crate::steps::channels::{receive_whatsapp, whatsapp_account};
use crate::steps::crms::kustomer::{Connected, connected_business, settled_log};
use crate::steps::crms::{entry, sync_log};
use crate::steps::text;
use crate::steps::{unique_number, unique_phone};
use edge::runtime::Method;
use futures_util::future::join_all;
use serde_json::{Value, json};

/// A business on WhatsApp and Kustomer (its webhooks signed with `token`), with one customer's
/// conversation synced.
struct Synced {
    setup: Connected,
    graph: Graph,
    token: String,
    from: String,
    /// The conversation in Kustomer.
    conversation: Value,
    /// Our ids of the conversation and its customer.
    ours: String,
    customer_id: String,
}

async fn synced_conversation(app: &App) -> Synced {
    let token = format!("hook-token-{}", unique_number());
    let setup = connected_business(app, json!({ "secrets": { "webhook_secret": token } })).await;
    let graph = Graph::install(&app.stack);
    let whatsapp = whatsapp_account(app, &setup.business.id, None).await;
    let from = unique_phone();
    receive_whatsapp(app, &whatsapp, &from, "I need help").await;
    let log = settled_log(app, setup.id(), 3).await;
    let conversations = setup.kustomer.conversations();
    assert_eq!(conversations.len(), 1, "the conversation in Kustomer");
    assert_eq!(setup.kustomer.messages(text(&conversations[0]["id"])).len(), 1);
    Synced {
        ours: text(&entry(&log, "conversation.created")["record_id"]).to_owned(),
        customer_id: text(&entry(&log, "customer.created")["record_id"]).to_owned(),
        conversation: conversations[0].clone(),
        setup,
        graph,
        token,
        from,
    }
}

/// Kustomer's delivery of `event`, signed with `token`.
async fn post(app: &App, synced: &Synced, event: &Value, token: &str) -> Answer {
    let webhook = synced.setup.kustomer.webhook(token, event);
    app.request(
        Method::Post,
        synced.setup.webhook_path(),
        &webhook.header_pairs(),
        webhook.body.clone(),
    )
    .await
}

/// The customer's conversations as our API lists them.
async fn ours(app: &App, synced: &Synced) -> Value {
    app.api(
        &synced.setup.business.key,
        Method::Get,
        &format!(
            "/api-conversations-by-customer?customer_id={}",
            synced.customer_id
        ),
        None,
    )
    .await
    .expect(200)
    .json()
}

/// The outcome of a delivery that was taken (200).
fn outcome(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.text());
    text(&answer.json()["outcome"]).to_owned()
}

/// An agent's reply in Kustomer on `conversation_id`, with `extra` attributes.
fn agent_reply(synced: &Synced, conversation_id: &str, reply: &str, extra: Value) -> Value {
    let kustomer = &synced.setup.kustomer;
    let mut attributes = json!({ "direction": "out", "channel": "whatsapp", "preview": reply });
    for (key, value) in extra.as_object().into_iter().flatten() {
        attributes[key] = value.clone();
    }
    json!({
        "name": "kustomer.message.create",
        "id": kustomer.object_id(),
        "data": {
            "type": "message",
            "id": kustomer.object_id(),
            "attributes": attributes,
            "relationships": {
                "conversation": { "data": { "type": "conversation", "id": conversation_id } },
                "createdBy": { "data": { "type": "user", "id": kustomer.object_id() } }
            }
        }
    })
}

#[test]
fn a_reply_reaches_the_customer_on_whatsapp_once_and_is_not_put_on_the_timeline_again() {
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let conversation_id = text(&synced.conversation["id"]);
        let event = agent_reply(
            &synced,
            conversation_id,
            "A person here: how can I help?",
            json!({}),
        );
        let first = post(&app, &synced, &event, &synced.token).await;
        assert_eq!(outcome(&first), "sent to the customer");
        app.settle().await;
        assert_eq!(
            synced.graph.texts_sent_to(&synced.from),
            ["A person here: how can I help?"]
        );

        let again = post(&app, &synced, &event, &synced.token).await;
        assert_eq!(outcome(&again), "duplicate: already handled");
        app.settle().await;
        assert_eq!(
            synced.graph.texts_sent_to(&synced.from).len(),
            1,
            "a repeated delivery sends nothing"
        );

        let log = settled_log(&app, synced.setup.id(), 4).await;
        let sent = entry(&log, "message.sent");
        assert_eq!(sent["status"], "succeeded", "{sent}");
        assert_eq!(
            sent["crm_id"], event["data"]["id"],
            "linked to the agent's Kustomer message"
        );
        assert_eq!(
            synced.setup.kustomer.messages(conversation_id).len(),
            1,
            "the timeline has the customer's message only"
        );
    });
}

#[test]
fn the_same_reply_delivered_three_times_at_once_reaches_the_customer_once() {
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let event = agent_reply(
            &synced,
            text(&synced.conversation["id"]),
            "Only once, please",
            json!({}),
        );
        let answers = join_all((0..3).map(|_| post(&app, &synced, &event, &synced.token))).await;
        let mut outcomes: Vec<String> = answers.iter().map(outcome).collect();
        outcomes.sort();
        assert_eq!(
            outcomes,
            [
                "duplicate: already handled",
                "duplicate: already handled",
                "sent to the customer"
            ]
        );
        app.settle().await;
        assert_eq!(
            synced.graph.texts_sent_to(&synced.from),
            ["Only once, please"],
            "one message to the customer"
        );
    });
}

#[test]
fn a_reply_handled_again_after_a_failure_between_accepting_and_linking_it_reaches_the_customer_once() {
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let event = agent_reply(
            &synced,
            text(&synced.conversation["id"]),
            "Accepted once, linked late",
            json!({}),
        );
        let first = post(&app, &synced, &event, &synced.token).await;
        assert_eq!(outcome(&first), "sent to the customer");
        // What a failure after the reply was accepted and before it was linked leaves behind: no
        // link, and the event's claim let go, so Kustomer's retry of it is handled again.
        let (reply_id, event_id) = (text(&event["data"]["id"]), text(&event["id"]));
        for shard in ["DB", "DB_1"] {
            app.stack.sql(shard, |connection| {
                connection
                    .execute(
                        "DELETE FROM crm_links WHERE kind = 'message' AND crm_id = ?1",
                        [reply_id],
                    )
                    .and_then(|_| {
                        connection.execute("DELETE FROM crm_inbound_events WHERE event_id = ?1", [event_id])
                    })
                    .unwrap_or_else(|error| panic!("{error}"))
            });
        }
        let retried = post(&app, &synced, &event, &synced.token).await;
        assert_eq!(outcome(&retried), "sent to the customer before");
        app.settle().await;
        assert_eq!(
            synced.graph.texts_sent_to(&synced.from),
            ["Accepted once, linked late"],
            "the retry found the message it accepted and sent nothing more"
        );
        let log = settled_log(&app, synced.setup.id(), 4).await;
        assert_eq!(
            entry(&log, "message.sent")["crm_id"],
            event["data"]["id"],
            "and linked it this time, so it is not put on the timeline"
        );
    });
}

#[test]
fn messages_crm_edge_put_on_the_timeline_inbound_ones_and_other_channels_are_left_alone() {
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let conversation_id = text(&synced.conversation["id"]);
        let ours = synced.setup.kustomer.messages(conversation_id)[0].clone();
        let elsewhere = synced.setup.kustomer.object_id();
        let cases = [
            (
                agent_reply(
                    &synced,
                    conversation_id,
                    "echo",
                    json!({ "externalId": ours["attributes"]["externalId"] }),
                ),
                "ignored: a message crm-edge put on the timeline",
            ),
            (
                agent_reply(&synced, conversation_id, "inbound", json!({ "direction": "in" })),
                "ignored: not an agent's reply",
            ),
            (
                agent_reply(
                    &synced,
                    conversation_id,
                    "by email",
                    json!({ "channel": "email" }),
                ),
                "ignored: a reply on another channel, which Kustomer delivers",
            ),
            (
                agent_reply(&synced, &elsewhere, "elsewhere", json!({})),
                "ignored: not a conversation crm-edge synced",
            ),
        ];
        for (event, expected) in cases {
            let answer = post(&app, &synced, &event, &synced.token).await;
            assert_eq!(outcome(&answer), expected, "{event}");
        }
        app.settle().await;
        assert_eq!(synced.graph.texts_sent_to(&synced.from).len(), 0, "nothing sent");
    });
}

#[test]
fn done_in_kustomer_resolves_ours_emits_our_event_and_is_not_sent_back_satisfaction_is_kept() {
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let agent = synced.setup.kustomer.object_id();
        let event = json!({
            "name": "kustomer.conversation.update",
            "data": {
                "type": "conversation",
                "id": synced.conversation["id"],
                "attributes": {
                    "status": "done",
                    "assignedUsers": [agent],
                    "satisfaction": 4,
                    "satisfactionLevel": { "rating": "satisfied", "answers": [{ "answer": "Quick and kind" }] }
                }
            },
            "changes": { "attributes": {
                "status": { "before": "open", "after": "done" },
                "assignedUsers": { "before": [], "after": [agent] }
            } }
        });
        let answer = post(&app, &synced, &event, &synced.token).await;
        assert_eq!(outcome(&answer), "applied");
        let listed = ours(&app, &synced).await;
        let conversation = &listed["conversations"][0];
        assert_eq!(conversation["id"], synced.ours.as_str(), "{listed}");
        assert_eq!(conversation["status"], "resolved", "{conversation}");
        assert_eq!(conversation["assignee"], agent.as_str(), "{conversation}");

        settled_log(&app, synced.setup.id(), 5).await;
        let log = sync_log(&app, synced.setup.id(), "").await;
        let skipped: Vec<&Value> = log
            .iter()
            .filter(|entry| {
                text(&entry["operation"]).starts_with("conversation.") && entry["status"] == "skipped"
            })
            .collect();
        assert_eq!(skipped.len(), 2, "the changes recorded as skipped: {log:#?}");
        assert!(
            skipped
                .iter()
                .all(|entry| entry["last_error"] == "the change came from this CRM; it is not sent back"),
            "{skipped:#?}"
        );
        assert!(
            !synced
                .setup
                .kustomer
                .calls()
                .iter()
                .any(|call| call.method == "PATCH"),
            "nothing PATCHed back to Kustomer"
        );
        let ratings: Vec<Value> = app
            .stack
            .shard_bindings()
            .iter()
            .flat_map(|shard| {
                app.stack.sql(shard, |connection| {
                    let mut statement = connection
                        .prepare("SELECT score, level, comment FROM crm_satisfaction")
                        .unwrap_or_else(|error| panic!("{error}"));
                    statement
                        .query_map([], |row| {
                            Ok(json!([
                                row.get::<_, f64>(0)?,
                                row.get::<_, Option<String>>(1)?,
                                row.get::<_, Option<String>>(2)?
                            ]))
                        })
                        .unwrap_or_else(|error| panic!("{error}"))
                        .map(|row| row.unwrap_or_else(|error| panic!("{error}")))
                        .collect::<Vec<Value>>()
                })
            })
            .collect();
        assert_eq!(
            ratings,
            [json!([4.0, "satisfied", "Quick and kind"])],
            "the satisfaction is kept"
        );
    });
}

#[test]
fn unsigned_mis_signed_unknown_and_malformed_deliveries_are_refused_a_connector_without_a_token_refuses_all()
{
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let path = synced.setup.webhook_path().to_owned();
        let event = agent_reply(&synced, text(&synced.conversation["id"]), "x", json!({}));
        assert_error(
            &post(&app, &synced, &event, "wrong-token").await,
            401,
            "unauthorized",
            "signed with another token",
        );
        let webhook = synced.setup.kustomer.webhook(&synced.token, &event);
        let unsigned = app
            .request(
                Method::Post,
                &path,
                &[("content-type", "application/json")],
                webhook.body.clone(),
            )
            .await;
        assert_error(&unsigned, 401, "unauthorized", "unsigned");
        let tampered = String::from_utf8_lossy(&webhook.body).replace("\"x\"", "\"y\"");
        let answer = app
            .request(
                Method::Post,
                &path,
                &webhook.header_pairs(),
                tampered.into_bytes(),
            )
            .await;
        assert_error(&answer, 401, "unauthorized", "tampered");
        for (raw, why) in [
            ("{not json".to_owned(), "not JSON"),
            ("[]".to_owned(), "not an object"),
            ("{\"id\":5}".to_owned(), "wrong types"),
            ("{\"a\":".repeat(5000), "deeply nested"),
        ] {
            let signature = hex::encode(hmac_sha256(synced.token.as_bytes(), raw.as_bytes()));
            let answer = app
                .request(
                    Method::Post,
                    &path,
                    &[
                        ("content-type", "application/json"),
                        ("x-kustomer-webhook-signature", &signature),
                    ],
                    raw.into_bytes(),
                )
                .await;
            assert_error(&answer, 400, "malformed_request", why);
        }
        let not_an_id = format!("/api/webhooks/kustomer/{}", synced.setup.kustomer.object_id());
        assert_error(
            &app.request(Method::Post, &not_an_id, &[], b"{}".to_vec()).await,
            404,
            "not_found",
            "not a connector id",
        );
        assert_error(
            &app.request(
                Method::Post,
                "/api/webhooks/kustomer/00000000-0000-4000-8000-000000000000",
                &[],
                b"{}".to_vec(),
            )
            .await,
            404,
            "not_found",
            "no such connector",
        );
        assert_error(
            &app.request(Method::Get, &path, &[], Vec::new()).await,
            405,
            "method_not_allowed",
            "GET",
        );
        let huge = vec![b'x'; 1024 * 1024 + 10];
        assert_error(
            &app.request(Method::Post, &path, &webhook.header_pairs(), huge)
                .await,
            413,
            "payload_too_large",
            "over 1 MiB",
        );

        app.admin(
            Method::Patch,
            &format!("/admin/connectors/{}", synced.setup.id()),
            Some(json!({ "secrets": { "webhook_secret": null } })),
        )
        .await
        .expect(200);
        assert_error(
            &post(&app, &synced, &event, &synced.token).await,
            401,
            "unauthorized",
            "no token configured",
        );
        assert_eq!(
            synced.graph.texts_sent_to(&synced.from).len(),
            0,
            "nothing refused was acted on"
        );
    });
}

/// The Kustomer guide's own webhook: `POST /api/webhooks/kustomer` with `{event, data}`, the
/// business's API key, and the body signed with the connector's webhook secret.
async fn post_guides(app: &App, key: &str, body: &[u8], token: &str) -> Answer {
    let signature = hex::encode(hmac_sha256(token.as_bytes(), body));
    app.request(
        Method::Post,
        "/api/webhooks/kustomer",
        &[
            ("x-api-key", key),
            ("content-type", "application/json"),
            ("x-kustomer-webhook-signature", &signature),
        ],
        body.to_vec(),
    )
    .await
}

#[test]
fn the_guides_webhook_body_at_the_guides_path_acts_as_kustomers_own_once_and_only_signed_with_the_key() {
    test(|app| async move {
        let synced = synced_conversation(&app).await;
        let key = synced.setup.business.key.clone();
        // As the guide writes it: `POST /api/webhooks/kustomer {"event": "conversation.updated", "data": …}`.
        let body = serde_json::to_vec(&json!({
            "event": "conversation.updated",
            "data": { "type": "conversation", "id": synced.conversation["id"], "attributes": { "status": "done" } }
        }))
        .unwrap_or_default();
        assert_eq!(
            outcome(&post_guides(&app, &key, &body, &synced.token).await),
            "applied"
        );
        let again = post_guides(&app, &key, &body, &synced.token).await;
        assert!(
            outcome(&again).starts_with("duplicate"),
            "the same body twice acts once"
        );
        let listed = ours(&app, &synced).await;
        assert_eq!(listed["conversations"][0]["status"], "resolved", "{listed}");

        let other = app.business("Other").await;
        let keyless = app
            .request(
                Method::Post,
                "/api/webhooks/kustomer",
                &[("content-type", "application/json")],
                body.clone(),
            )
            .await;
        assert_error(&keyless, 401, "unauthorized", "no API key");
        for (answer, status, code, why) in [
            (
                post_guides(&app, &key, &body, "not-the-token").await,
                401,
                "unauthorized",
                "signed with another secret",
            ),
            (
                post_guides(&app, &key, b"{\"event\":", &synced.token).await,
                400,
                "malformed_request",
                "not JSON",
            ),
            (
                post_guides(&app, &other.key, &body, &synced.token).await,
                404,
                "not_found",
                "a business without Kustomer",
            ),
        ] {
            assert_error(&answer, status, code, why);
        }

        let second = format!("eysecond{}", unique_number());
        synced.setup.kustomer.add_key(
            &second,
            &synced.setup.kustomer.org(),
            &crate::partners::kustomer::PERMISSIONS,
        );
        let subdomain = synced.setup.kustomer.subdomain();
        crate::steps::crms::kustomer::connect(&app, &synced.setup.business, &subdomain, &second, json!({}))
            .await;
        let changed = serde_json::to_vec(&json!({
            "event": "conversation.updated",
            "data": { "type": "conversation", "id": synced.conversation["id"], "attributes": { "status": "open" } }
        }))
        .unwrap_or_default();
        let error = assert_error(
            &post_guides(&app, &key, &changed, &synced.token).await,
            409,
            "conflict",
            "two Kustomer connectors: which one is meant cannot be told",
        );
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("webhook_path")),
            "{error}"
        );
    });
}
