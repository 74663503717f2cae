//! A business that is busy while it is moved to the other shard, step by step as the operator's
//! command moves it, its queues settled between the steps and time passing for their retries:
//! every message queued before or during the move reaches the customer exactly once (the provider
//! counts), the pause holds work that acts outside the database instead of letting it run and
//! fail to record what it did, and after the switch only the new shard's answer counts (a key
//! revoked, a session ended, a token revoked or a secret rotated then takes effect at once,
//! although the old copy still says otherwise).

use super::console::{Session, sign_in};
use super::inbound::{channel_account, post};
use super::krayin::{Connect, krayin_business, post as post_chatwoot};
use crate::app::{App, Business, ORIGIN, test};
use crate::partners::chatwoot::{self, Contact};
use crate::partners::form::url_encoded;
use crate::partners::meta::{self as meta_partner, GRAPH_HOST, graph_error, numeric_id};
use crate::partners::{mailgun as mailgun_partner, twilio as twilio_partner};
use crate::steps::channels::messages_of;
use crate::steps::customers::sync;
use crate::steps::unique_phone;
use edge::runtime::Method;
use edge::runtime::native::{Reply, Stack};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The shard the directory says the business lives on.
fn shard_of(app: &App, business: &Business) -> i64 {
    app.stack.sql("DB", |connection| {
        connection
            .query_row(
                "SELECT shard FROM business_shards WHERE business_id = ?1",
                [&business.id],
                |row| row.get::<_, i64>(0),
            )
            .unwrap_or(0)
    })
}

/// Starts the move of `business` to shard `to` in the directory as the move's first step does,
/// and restarts the isolate, so that it reads the directory afresh: the pause as an isolate sees
/// it when its freshness runs out in the middle of some work.
fn pause_lands(stack: &Stack, business: &str, to: i64) {
    stack.sql("DB", |connection| {
        connection
            .execute(
                "UPDATE business_shards SET moving_to = ?2, move_started_ms = ?3 WHERE business_id = ?1",
                (business, to, stack.now_ms()),
            )
            .unwrap_or_else(|error| panic!("{error}"))
    });
    stack.restart_isolate();
}

/// WhatsApp's Cloud API as the customer's phone sees it: the texts it accepted, each time it
/// accepted one. It fails the next `failing` sends with a 500, and the pause lands while it
/// accepts the text `pause_at`.
#[derive(Clone, Default)]
struct Phone {
    accepted: Rc<RefCell<Vec<String>>>,
    failing: Rc<RefCell<u32>>,
    pause_at: Rc<RefCell<Option<(String, String, i64)>>>,
}

impl Phone {
    fn install(stack: &Stack) -> Self {
        let phone = Self::default();
        let serving = phone.clone();
        let paused = stack.clone();
        stack.partner(GRAPH_HOST, move |call| {
            let text = call.json()["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            {
                let mut failing = serving.failing.borrow_mut();
                if *failing > 0 {
                    *failing -= 1;
                    return graph_error(500, 2, "An unexpected error has occurred.");
                }
            }
            let count = {
                let mut accepted = serving.accepted.borrow_mut();
                accepted.push(text.clone());
                accepted.len()
            };
            let pause = serving.pause_at.borrow().clone();
            if let Some((at, business, to)) = pause
                && at == text
            {
                pause_lands(&paused, &business, to);
            }
            Reply::json(
                200,
                &json!({
                    "messaging_product": "whatsapp",
                    "contacts": [{ "input": "353871000002", "wa_id": "353871000002" }],
                    "messages": [{ "id": format!("wamid.moved{count:04}") }]
                }),
            )
        });
        phone
    }

    /// How often each text was accepted.
    fn times_each(&self) -> BTreeMap<String, usize> {
        let mut times = BTreeMap::new();
        for text in self.accepted.borrow().iter() {
            *times.entry(text.clone()).or_insert(0) += 1;
        }
        times
    }
}

/// A business with a WhatsApp account (through Meta) and a customer reachable on it.
async fn busy(app: &App) -> (Business, Value) {
    let business = app.business("Busy").await;
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/channel-accounts", business.id),
        Some(json!({
            "channel": "whatsapp", "provider": "meta", "address": numeric_id(), "settings": {},
            "secrets": { "app_secret": "app-secret", "verify_token": "verify", "access_token": "EAAGtoken" }
        })),
    )
    .await
    .expect(201);
    let synced = sync(
        app,
        &business.key,
        json!([{ "external_id": "CRM-ADA", "name": "Ada", "phone": "+353871000001", "whatsapp_number": "+353871000002" }]),
    )
    .await;
    let customer = synced["results"]["details"][0].clone();
    (business, customer)
}

async fn send(app: &App, business: &Business, content: &str) {
    app.api(
        &business.key,
        Method::Post,
        "/api-send-message",
        Some(json!({ "customer_id": "CRM-ADA", "channel": "whatsapp", "content": content })),
    )
    .await
    .expect(202);
}

/// Lets `wait` pass, the queues settled whenever something on them is due.
async fn pass(app: &App, wait: Duration) {
    let until = app.stack.now_ms() + i64::try_from(wait.as_millis()).unwrap_or(0);
    app.settle_within(wait).await;
    let left = until - app.stack.now_ms();
    if left > 0 {
        app.stack
            .advance(Duration::from_millis(u64::try_from(left).unwrap_or(0)));
    }
    app.settle().await;
}

/// One step of the move, as the operator's command asks for it.
async fn step(app: &App, business: &Business, to: i64, cursor: Option<&str>) -> Value {
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/move", business.id),
        Some(json!({ "to_shard": to, "cursor": cursor })),
    )
    .await
    .expect(200)
    .json()
}

/// Moves the business step by step until `last` is the phase answered, each step after the wait
/// the one before asked for, the queues settled meanwhile; the last answer.
async fn move_until(app: &App, business: &Business, to: i64, last: &str) -> Value {
    let mut answer = step(app, business, to, None).await;
    let mut phases = vec![answer["phase"].clone()];
    for _ in 0..60 {
        if answer["phase"] == last {
            return answer;
        }
        pass(
            app,
            Duration::from_secs(answer["wait_seconds"].as_u64().unwrap_or(0)),
        )
        .await;
        answer = step(app, business, to, answer["cursor"].as_str()).await;
        phases.push(answer["phase"].clone());
    }
    panic!("the move never answered {last}: {phases:?}");
}

#[test]
fn every_message_queued_before_or_during_a_move_reaches_the_customer_exactly_once() {
    test(|app| async move {
        let (business, _) = busy(&app).await;
        let phone = Phone::install(&app.stack);
        let to = 1 - shard_of(&app, &business);

        // One send fails once and waits for its retry; three more wait on the queue, and the
        // pause lands while the provider accepts the second of them (its isolate reads the
        // directory afresh then): the provider has it, and recording it is refused.
        *phone.failing.borrow_mut() = 1;
        send(&app, &business, "retried").await;
        app.settle().await;
        assert!(phone.times_each().is_empty(), "the first attempt failed");
        *phone.pause_at.borrow_mut() = Some(("in flight".to_owned(), business.id.clone(), to));
        for content in ["queued first", "in flight", "queued last"] {
            send(&app, &business, content).await;
        }
        app.settle().await;
        let during: usize = phone.times_each().values().sum();
        assert!(
            during <= 3,
            "what went out before the pause landed went out once: {:?}",
            phone.times_each()
        );

        // The move, its queues settled and time passing between its steps: nothing is sent
        // while the business is paused.
        let switched = move_until(&app, &business, to, "switched").await;
        assert_eq!(
            phone.times_each().values().sum::<usize>(),
            during,
            "nothing is sent while the business is paused: {:?}",
            phone.times_each()
        );
        pass(
            &app,
            Duration::from_secs(switched["wait_seconds"].as_u64().unwrap_or(0)),
        )
        .await;
        let mut answer = step(&app, &business, to, switched["cursor"].as_str()).await;
        for _ in 0..40 {
            if answer["phase"] == "done" {
                break;
            }
            pass(
                &app,
                Duration::from_secs(answer["wait_seconds"].as_u64().unwrap_or(0)),
            )
            .await;
            answer = step(&app, &business, to, answer["cursor"].as_str()).await;
        }
        assert_eq!(answer["phase"], "done", "{answer}");
        pass(&app, Duration::from_secs(600)).await;
        // The lost-send sweep, long after: nothing of it is lost, so nothing goes again.
        app.stack.advance(Duration::from_secs(3 * 3600));
        app.sweep().await;
        pass(&app, Duration::from_secs(600)).await;

        let once: BTreeMap<String, usize> = ["retried", "queued first", "in flight", "queued last"]
            .iter()
            .map(|text| ((*text).to_owned(), 1))
            .collect();
        assert_eq!(phone.times_each(), once, "each message reached the customer once");
        let statuses: Vec<(Value, Value)> = messages_of(&app, &business.key)
            .await
            .into_iter()
            .map(|message| (message["content"].clone(), message["status"].clone()))
            .collect();
        assert_eq!(statuses.len(), 4, "{statuses:?}");
        assert!(
            statuses.iter().all(|(_, status)| status == "sent"),
            "and each is recorded sent: {statuses:?}"
        );
        assert_eq!(shard_of(&app, &business), to, "on its new shard");
    });
}

/// Lets the move start and pauses the business: the first step, and the wait it asks for.
async fn paused(app: &App, business: &Business, to: i64) -> Value {
    let first = step(app, business, to, None).await;
    assert_eq!(first["phase"], "pausing", "{first}");
    pass(
        app,
        Duration::from_secs(first["wait_seconds"].as_u64().unwrap_or(0)),
    )
    .await;
    first
}

/// Goes on with the move from `answer` until it is done, the queues settled between the steps.
async fn to_the_end(app: &App, business: &Business, to: i64, mut answer: Value) {
    for _ in 0..60 {
        if answer["phase"] == "done" {
            return;
        }
        answer = step(app, business, to, answer["cursor"].as_str()).await;
        pass(
            app,
            Duration::from_secs(answer["wait_seconds"].as_u64().unwrap_or(0)),
        )
        .await;
    }
    panic!("the move did not end: {answer}");
}

#[test]
fn messages_that_arrive_while_the_business_is_moved_are_answered_200_and_stored_once_after_the_move() {
    test(|app| async move {
        let business = app.business("Receiving").await;
        let account = |fields: Value| channel_account(&app, &business.id, fields);
        let (meta_address, app_secret) = (numeric_id(), "meta-app-secret");
        let meta = account(json!({
            "channel": "whatsapp", "provider": "meta", "address": meta_address, "settings": {},
            "secrets": { "app_secret": app_secret, "verify_token": "verify", "access_token": "access" }
        }))
        .await;
        let (twilio_number, auth_token) = (unique_phone(), "twilio-auth-token");
        let twilio = account(json!({
            "channel": "sms", "provider": "twilio", "address": twilio_number,
            "settings": { "account_sid": twilio_partner::account_sid() },
            "secrets": { "auth_token": auth_token }
        }))
        .await;
        let (mailbox, signing_key) = ("support@in.example.com", "mailgun-signing-key");
        let mailgun = account(json!({
            "channel": "email", "provider": "mailgun", "address": mailbox,
            "settings": { "domain": "in.example.com" },
            "secrets": { "signing_key": signing_key, "api_key": "key-mailgun" }
        }))
        .await;
        let path = |account: &Value| account["webhook_path"].as_str().unwrap_or_default().to_owned();
        let to = 1 - shard_of(&app, &business);
        let first = paused(&app, &business, to).await;

        // Meta's notification (delivered twice, as Meta repeats one), Twilio's SMS and Mailgun's
        // email, each while the business's writes are refused.
        let notification = serde_json::to_vec(&meta_partner::whatsapp_text(
            &meta_address,
            "353870000010",
            "Meta sender",
            &meta_partner::mid("wamid."),
            "sent through Meta during the move",
        ))
        .unwrap_or_default();
        let signature = meta_partner::signature(app_secret, &notification);
        for _ in 0..2 {
            post(
                &app,
                &path(&meta),
                &[
                    ("content-type", "application/json"),
                    ("x-hub-signature-256", &signature),
                ],
                notification.clone(),
            )
            .await
            .expect(200);
        }
        let sms = twilio_partner::incoming(
            &twilio_number,
            "+353870000011",
            "sent through Twilio during the move",
            &twilio_partner::message_sid(),
        );
        let url = format!("{ORIGIN}{}", path(&twilio));
        let twilio_signature = twilio_partner::signature(auth_token, &url, &sms);
        let twiml = post(
            &app,
            &path(&twilio),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", &twilio_signature),
            ],
            url_encoded(&sms).into_bytes(),
        )
        .await
        .expect(200);
        assert!(twiml.text().contains("<Response></Response>"), "{}", twiml.text());
        let mail: Vec<(String, String)> = mailgun_partner::signed(signing_key, app.stack.now_ms() / 1000)
            .into_iter()
            .chain(
                mailgun_partner::Mail {
                    recipient: mailbox,
                    sender: "customer@example.com",
                    from: "customer@example.com",
                    subject: "sent through Mailgun during the move",
                    body: "Hello",
                    message_id: &mailgun_partner::message_id(),
                }
                .fields(),
            )
            .collect();
        post(
            &app,
            &path(&mailgun),
            &[("content-type", "application/x-www-form-urlencoded")],
            url_encoded(&mail).into_bytes(),
        )
        .await
        .expect(200);
        assert!(
            messages_of(&app, &business.key).await.is_empty(),
            "nothing is stored while the business is paused"
        );

        to_the_end(&app, &business, to, first).await;
        pass(&app, Duration::from_secs(600)).await;
        let mut stored: Vec<(String, String)> = messages_of(&app, &business.key)
            .await
            .iter()
            .map(|message| {
                (
                    message["channel"].as_str().unwrap_or_default().to_owned(),
                    message["content"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        stored.sort();
        assert_eq!(stored.len(), 3, "each once: {stored:?}");
        assert_eq!(stored[0].0, "email");
        assert!(
            stored[0].1.contains("sent through Mailgun during the move"),
            "{stored:?}"
        );
        assert_eq!(
            stored[1..],
            [
                ("sms".to_owned(), "sent through Twilio during the move".to_owned()),
                (
                    "whatsapp".to_owned(),
                    "sent through Meta during the move".to_owned()
                ),
            ]
        );
        assert_eq!(shard_of(&app, &business), to);
        assert!(
            app.stack.dead_letters("HELD_INBOUND").is_empty(),
            "nothing given up"
        );
    });
}

/// A business that lives on the first shard, so that its old copy would be met first.
async fn on_the_first_shard(app: &App) -> Business {
    for _ in 0..40 {
        let business = app.business("Switching").await;
        if shard_of(app, &business) == 0 {
            return business;
        }
    }
    panic!("no business landed on the first shard");
}

#[test]
fn after_a_switch_a_revoked_key_an_ended_session_a_revoked_token_and_a_rotated_secret_take_effect_at_once() {
    test(|app| async move {
        let business = on_the_first_shard(&app).await;
        let (address, old_secret, new_secret) = (numeric_id(), "app-secret-before", "app-secret-after");
        let account = channel_account(
            &app,
            &business.id,
            json!({
                "channel": "whatsapp", "provider": "meta", "address": address, "settings": {},
                "secrets": { "app_secret": old_secret, "verify_token": "verify", "access_token": "access" }
            }),
        )
        .await;
        let webhook = account["webhook_path"].as_str().unwrap_or_default().to_owned();
        let notify = |secret: &'static str, text: &'static str| {
            let (app, webhook, address) = (&app, webhook.clone(), address.clone());
            async move {
                let body = serde_json::to_vec(&meta_partner::whatsapp_text(
                    &address,
                    "353870000020",
                    "Signer",
                    &meta_partner::mid("wamid."),
                    text,
                ))
                .unwrap_or_default();
                let signature = meta_partner::signature(secret, &body);
                post(
                    app,
                    &webhook,
                    &[
                        ("content-type", "application/json"),
                        ("x-hub-signature-256", &signature),
                    ],
                    body,
                )
                .await
                .status
            }
        };
        let spare = app
            .api(
                &business.key,
                Method::Post,
                "/api-keys",
                Some(json!({ "name": "spare" })),
            )
            .await
            .expect(201)
            .json();
        let spare_key = spare["key"].as_str().unwrap_or_default().to_owned();
        let session = sign_in(&app, &business).await;
        let synced = sync(
            &app,
            &business.key,
            json!([{ "external_id": "CRM-SSO", "name": "Sso", "email": "sso@example.com" }]),
        )
        .await;
        let customer_id = synced["results"]["details"][0]["customer_id"].clone();
        let token = app
            .api(
                &business.key,
                Method::Post,
                "/api-sso-generate-token",
                Some(json!({ "customer_id": customer_id })),
            )
            .await
            .expect(201)
            .json()["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let timeline = |token: String| {
            let app = &app;
            async move {
                let bearer = format!("Bearer {token}");
                app.request(
                    Method::Get,
                    "/embed/api/timeline",
                    &[("authorization", &bearer)],
                    Vec::new(),
                )
                .await
                .status
            }
        };
        let session_status = |session: &Session| {
            let app = &app;
            let cookie = session.cookie.clone();
            async move {
                app.request(
                    Method::Get,
                    "/console/session",
                    &[("cookie", &cookie)],
                    Vec::new(),
                )
                .await
                .status
            }
        };
        assert_eq!(
            app.api(&spare_key, Method::Get, "/api-keys", None).await.status,
            200
        );
        assert_eq!(session_status(&session).await, 200);
        assert_eq!(timeline(token.clone()).await, 200);
        assert_eq!(notify(old_secret, "before the move").await, 200);

        move_until(&app, &business, 1, "switched").await;
        let old_copy = app.stack.sql("DB", |connection| {
            connection
                .query_row(
                    "SELECT count(*) FROM api_keys WHERE business_id = ?1",
                    [&business.id],
                    |row| row.get::<_, i64>(0),
                )
                .unwrap_or(0)
        });
        assert_eq!(old_copy, 2, "the old copy is still there, both keys live in it");

        let spare_path = format!("/api-keys/{}", spare["id"].as_str().unwrap_or_default());
        app.api(&business.key, Method::Delete, &spare_path, None)
            .await
            .expect(200);
        assert_eq!(
            app.api(&spare_key, Method::Get, "/api-keys", None).await.status,
            401,
            "the key revoked after the switch"
        );
        app.request(
            Method::Post,
            "/console/sign-out",
            &[("cookie", &session.cookie), ("x-csrf-token", &session.csrf)],
            Vec::new(),
        )
        .await
        .expect(204);
        assert_eq!(
            session_status(&session).await,
            401,
            "the session that signed out after the switch"
        );
        app.api(
            &business.key,
            Method::Post,
            "/api-sso-revoke-token",
            Some(json!({ "token": token })),
        )
        .await
        .expect(200);
        assert_eq!(
            timeline(token.clone()).await,
            403,
            "the SSO token revoked after the switch (as a revoked token is answered)"
        );
        app.admin(
            Method::Patch,
            &format!("/admin/channel-accounts/{}", account["id"].as_str().unwrap_or_default()),
            Some(json!({ "secrets": { "app_secret": new_secret, "verify_token": "verify", "access_token": "access" } })),
        )
        .await
        .expect(200);
        assert_eq!(
            notify(old_secret, "signed with the rotated secret").await,
            401,
            "the secret rotated after the switch no longer verifies"
        );
        assert_eq!(
            notify(new_secret, "signed with the new secret").await,
            200,
            "and the new one does"
        );
    });
}

#[test]
fn a_chatwoot_delivery_while_the_business_is_moved_is_answered_200_and_written_to_krayin_after_the_move() {
    test(|app| async move {
        let setup = krayin_business(&app, Connect::settings(json!({ "pipeline_id": 2 }))).await;
        let to = 1 - shard_of(&app, &setup.business);
        let first = paused(&app, &setup.business, to).await;
        let jane = Contact::new(4343, "Jane Paused").email("jane.paused@example.com");
        let delivery = setup.delivery(&chatwoot::contact_created(&jane));
        let answer = post_chatwoot(&app, setup.path(), &delivery)
            .await
            .expect(200)
            .json();
        assert_eq!(
            answer["outcome"], "kept: recorded once the business's move is over",
            "Chatwoot does not deliver it again, so it is kept: {answer}"
        );
        app.settle().await;
        assert!(
            setup.krayin.persons().is_empty(),
            "nothing reaches Krayin while the business is paused"
        );

        to_the_end(&app, &setup.business, to, first).await;
        pass(&app, Duration::from_secs(600)).await;
        let persons = setup.krayin.persons();
        assert_eq!(persons.len(), 1, "written once after the move: {persons:#?}");
        assert_eq!(persons[0].name, "Jane Paused");
        let resigned = setup.delivery(&chatwoot::contact_created(&jane));
        let again = post_chatwoot(&app, setup.path(), &resigned)
            .await
            .expect(200)
            .json();
        assert!(
            again["outcome"]
                .as_str()
                .is_some_and(|outcome| outcome.starts_with("duplicate")),
            "the same body delivered again after the move records nothing: {again}"
        );
    });
}

#[test]
fn inbound_kept_while_paused_and_never_stored_is_deleted_past_the_retention_period() {
    test(|app| async move {
        let business = app.business("Kept").await;
        let (address, app_secret) = (numeric_id(), "meta-app-secret");
        let meta = channel_account(
            &app,
            &business.id,
            json!({
                "channel": "whatsapp", "provider": "meta", "address": address, "settings": {},
                "secrets": { "app_secret": app_secret, "verify_token": "verify", "access_token": "access" }
            }),
        )
        .await;
        let path = meta["webhook_path"].as_str().unwrap_or_default().to_owned();
        let kept = || {
            app.stack
                .r2_keys("ATTACHMENTS")
                .into_iter()
                .filter(|key| key.starts_with("held-inbound/"))
                .collect::<Vec<_>>()
        };
        let receive = |text: &str| {
            let notification = serde_json::to_vec(&meta_partner::whatsapp_text(
                &address,
                "353870000012",
                "Meta sender",
                &meta_partner::mid("wamid."),
                text,
            ))
            .unwrap_or_default();
            let signature = meta_partner::signature(app_secret, &notification);
            let (app, path) = (&app, path.clone());
            async move {
                post(
                    app,
                    &path,
                    &[
                        ("content-type", "application/json"),
                        ("x-hub-signature-256", &signature),
                    ],
                    notification,
                )
                .await
                .expect(200);
            }
        };
        let to = 1 - shard_of(&app, &business);
        paused(&app, &business, to).await;
        receive("kept, and the move never ends").await;
        let old = kept();
        assert_eq!(old.len(), 1, "kept while the business is paused");

        // A month later (the move left paused all along), a second one is kept; then the sweep.
        app.stack.advance(Duration::from_secs(31 * 24 * 3_600));
        receive("kept a month later").await;
        app.sweep().await;
        let left = kept();
        assert_eq!(left.len(), 1, "one left: {left:?}");
        assert!(!left.contains(&old[0]), "the month-old one is deleted: {left:?}");
        assert!(
            app.stack
                .logged(edge::runtime::Level::Warn, "past the retention period")
                .iter()
                .any(|line| line.contains(&old[0])),
            "its deletion is logged"
        );
    });
}
