//! The HubSpot connector following our events: a customer's contact upserted by email or found by
//! phone, never made twice however many events arrive at once; every message on the contact's
//! timeline in order, once, as the record HubSpot documents for its channel, with its files as
//! signed links; an escalation as one ticket in the configured pipeline and stage; HubSpot down
//! or throttling losing nothing and doubling nothing; the settings checked against HubSpot's
//! pipelines and the connection test showing the account.

use crate::app::{Answer, App, ORIGIN, test};
use crate::partners::hubspot::{HubSpot, SCOPES, any_call, too_many_requests};
use crate::partners::media_host::MediaHost;
use crate::partners::meta::Graph;
use crate::steps::channels::{receive_whatsapp, receive_whatsapp_image, whatsapp_account};
use crate::steps::crms::hubspot::{APP_CLIENT_ID, APP_CLIENT_SECRET, connected_business};
use crate::steps::crms::kustomer::settled_log;
use crate::steps::crms::{entry, sync_log};
use crate::steps::customers::sync;
use crate::steps::store::select;
use crate::steps::{text, unique, unique_email, unique_phone};
use edge::runtime::Method;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

/// A record's property as text.
fn property<'v>(record: &'v Value, name: &str) -> &'v str {
    text(&record["properties"][name])
}

/// The ids of the contacts `record` is associated with.
fn contacts_of(record: &Value) -> Vec<String> {
    record["associations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|association| association["toObjectType"] == "contacts")
        .map(|association| {
            let id = &association["toObjectId"];
            id.as_str().map_or_else(|| id.to_string(), str::to_owned)
        })
        .collect()
}

#[test]
fn a_whatsapp_conversation_of_twenty_messages_is_on_the_contacts_timeline_in_order_once_with_its_files() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let media = MediaHost::install(&app.stack, "media.meta.test");
        media.serve_png();
        let whatsapp = whatsapp_account(&app, &setup.business.id, Some(&media.api_base_url())).await;
        let from = unique_phone();
        for n in 1..=19 {
            receive_whatsapp(&app, &whatsapp, &from, &format!("message {n}")).await;
            app.stack.advance(Duration::from_millis(5));
        }
        receive_whatsapp_image(&app, &whatsapp, &from, "my receipt", "media-1").await;
        settled_log(&app, setup.id(), 22).await;

        let contacts = setup.hubspot.contacts();
        assert_eq!(contacts.len(), 1, "one contact: {contacts:#?}");
        assert_eq!(property(&contacts[0], "phone"), from, "{contacts:#?}");
        assert_eq!(property(&contacts[0], "hs_whatsapp_phone_number"), from);
        let contact = text(&contacts[0]["id"]).to_owned();

        let timeline = setup.hubspot.communications();
        assert_eq!(timeline.len(), 20, "every message once: {timeline:#?}");
        let mut by_time = timeline.clone();
        by_time.sort_by_key(|record| property(record, "hs_timestamp").to_owned());
        let bodies: Vec<&str> = by_time
            .iter()
            .map(|record| property(record, "hs_communication_body"))
            .collect();
        let expected: Vec<String> = (1..=19).map(|n| format!("message {n}")).collect();
        assert_eq!(bodies[..19], expected[..], "in the order they were written");
        let made: Vec<&str> = timeline
            .iter()
            .map(|record| property(record, "hs_communication_body"))
            .collect();
        assert_eq!(made[..19], expected[..], "and made in that order");
        for record in &timeline {
            assert_eq!(property(record, "hs_communication_channel_type"), "WHATS_APP");
            assert_eq!(property(record, "hs_communication_logged_from"), "CRM");
            assert_eq!(
                contacts_of(record),
                std::slice::from_ref(&contact),
                "on the contact: {record}"
            );
        }
        let with_file = bodies[19];
        assert!(
            with_file.starts_with("my receipt\n\nAttachments:\n"),
            "{with_file}"
        );
        let link = with_file
            .lines()
            .last()
            .and_then(|line| line.split_once(": "))
            .map(|(_, link)| link)
            .unwrap_or_default();
        let path = link
            .strip_prefix(ORIGIN)
            .unwrap_or_else(|| panic!("a link to the deployment: {with_file}"));
        assert!(path.contains("signature="), "signed: {link}");
        let download = app.request(Method::Get, path, &[], Vec::new()).await;
        assert_eq!(download.status, 200, "the link downloads the file");
        assert_eq!(download.body, media.image());

        let log = sync_log(&app, setup.id(), "").await;
        let messages: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["operation"] == "message.received")
            .collect();
        assert_eq!(messages.len(), 20, "{log:#?}");
        assert!(
            messages.iter().all(|entry| entry["status"] == "succeeded"),
            "{log:#?}"
        );
    });
}

#[test]
fn twenty_events_at_once_for_one_new_contact_make_one_contact() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        setup.hubspot.latency(Duration::from_millis(40));
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        let texts: Vec<String> = (0..20).map(|i| format!("at once {i}")).collect();
        join_all(
            texts
                .iter()
                .map(|text| receive_whatsapp(&app, &whatsapp, &from, text)),
        )
        .await;
        settled_log(&app, setup.id(), 22).await;
        assert_eq!(setup.hubspot.contacts().len(), 1, "one contact");
        let timeline = setup.hubspot.communications();
        assert_eq!(timeline.len(), 20, "every message once");
        let mut bodies: Vec<&str> = timeline
            .iter()
            .map(|record| property(record, "hs_communication_body"))
            .collect();
        bodies.sort_unstable();
        bodies.dedup();
        assert_eq!(bodies.len(), 20, "no message twice");
    });
}

#[test]
fn a_customer_with_an_email_is_upserted_onto_the_contact_hubspot_has_and_updated_when_they_change() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let email = unique_email("ada");
        let existing = setup
            .hubspot
            .seed_contact(json!({ "email": email, "firstname": "A." }));
        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada Lovelace", "email": email }]),
        )
        .await;
        settled_log(&app, setup.id(), 1).await;
        let contacts = setup.hubspot.contacts();
        assert_eq!(
            contacts.len(),
            1,
            "the contact HubSpot had, not a second: {contacts:#?}"
        );
        assert_eq!(contacts[0]["id"], existing["id"]);
        assert_eq!(
            (
                property(&contacts[0], "firstname"),
                property(&contacts[0], "lastname")
            ),
            ("Ada", "Lovelace")
        );

        sync(
            &app,
            &setup.business.key,
            json!([{ "name": "Ada King", "email": email }]),
        )
        .await;
        app.settle().await;
        let contacts = setup.hubspot.contacts();
        assert_eq!(contacts.len(), 1);
        assert_eq!(
            property(&contacts[0], "lastname"),
            "King",
            "updated: {contacts:#?}"
        );
    });
}

#[test]
fn an_escalation_makes_one_ticket_in_the_configured_stage_and_a_second_one_a_note_on_it() {
    test(|app| async move {
        let setup =
            connected_business(&app, json!({ "ticket_stage": "2", "ticket_priority": "medium" })).await;
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "I want to talk to someone").await;
        let log = settled_log(&app, setup.id(), 3).await;
        let conversation = text(&entry(&log, "conversation.created")["record_id"]).to_owned();

        for reason in ["refund over limit", "still waiting"] {
            app.api(
                &setup.business.key,
                Method::Post,
                "/api-escalations",
                Some(json!({ "conversation_id": conversation, "reason": reason, "priority": "urgent" })),
            )
            .await
            .expect(202);
            app.settle().await;
        }
        let tickets = setup.hubspot.tickets();
        assert_eq!(tickets.len(), 1, "one ticket: {tickets:#?}");
        let ticket = &tickets[0];
        assert_eq!(property(ticket, "subject"), "Escalated: refund over limit");
        assert_eq!(
            (
                property(ticket, "hs_pipeline"),
                property(ticket, "hs_pipeline_stage")
            ),
            ("0", "2")
        );
        assert_eq!(
            property(ticket, "hs_ticket_priority"),
            "URGENT",
            "the priority asked for"
        );
        assert!(
            property(ticket, "content").contains("customer (whatsapp): I want to talk to someone"),
            "the history: {ticket}"
        );
        let contact = text(&setup.hubspot.contacts()[0]["id"]).to_owned();
        assert_eq!(contacts_of(ticket), [contact], "tied to the contact");
        let notes = setup.hubspot.notes();
        assert!(
            notes
                .iter()
                .any(|note| property(note, "hs_note_body").contains("Escalated again: still waiting")),
            "{notes:#?}"
        );
        let escalations = sync_log(&app, setup.id(), "operation=escalate").await;
        assert!(
            escalations.iter().all(|entry| entry["status"] == "succeeded"),
            "{escalations:#?}"
        );
    });
}

#[test]
fn hubspot_down_for_a_minute_then_throttling_loses_nothing_and_doubles_nothing() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        setup.hubspot.down();
        for n in 1..=5 {
            receive_whatsapp(&app, &whatsapp, &from, &format!("while down {n}")).await;
        }
        app.settle_within(Duration::from_secs(60)).await;
        assert!(setup.hubspot.communications().is_empty());
        let failed = sync_log(&app, setup.id(), "status=failed").await;
        assert!(
            failed.is_empty(),
            "a connection refused is retried, not failed: {failed:#?}"
        );

        setup.hubspot.up();
        setup.hubspot.fail(6, any_call, too_many_requests(2));
        settled_log(&app, setup.id(), 7).await;
        assert_eq!(setup.hubspot.contacts().len(), 1);
        let timeline = setup.hubspot.communications();
        let bodies: Vec<&str> = timeline
            .iter()
            .map(|record| property(record, "hs_communication_body"))
            .collect();
        let expected: Vec<String> = (1..=5).map(|n| format!("while down {n}")).collect();
        assert_eq!(bodies, expected, "each once, in order");
        let received = setup.hubspot.received();
        assert!(
            received.iter().any(|call| call.status.is_none()),
            "calls were made while HubSpot was down"
        );
        assert_eq!(
            received.iter().filter(|call| call.status == Some(429)).count(),
            6,
            "every 429 was answered and the call made again"
        );
    });
}

#[test]
fn settings_are_checked_against_hubspots_pipelines_and_the_connection_test_shows_the_account() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let id = setup.id();
        let refused = app
            .admin(
                Method::Patch,
                &format!("/admin/connectors/{id}"),
                Some(json!({ "settings": { "ticket_stage": "9" } })),
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text());
        let said = refused.json();
        assert!(
            text(&said["error"]["message"]).contains("its stages are 1 (New)"),
            "{said}"
        );
        let tested = app
            .admin(Method::Post, &format!("/admin/connectors/{id}/test"), None)
            .await
            .expect(200)
            .json();
        assert_eq!(tested["ok"], true, "{tested}");
        assert!(tested["user"]["portal_id"].is_u64(), "{tested}");

        let refused = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/connectors", setup.business.id),
                Some(json!({ "kind": "hubspot", "settings": {}, "secrets": { "access_token": "pat-unknown" } })),
            )
            .await;
        assert_eq!(
            refused.status,
            201,
            "a token is checked by the test, not on save: {}",
            refused.text()
        );
        let other = refused.json();
        let tested = app
            .admin(
                Method::Post,
                &format!("/admin/connectors/{}/test", text(&other["id"])),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(
            (tested["ok"].as_bool(), tested["status"].as_u64()),
            (Some(false), Some(401)),
            "{tested}"
        );
        assert!(
            text(&tested["reason"]).contains("Check secrets.access_token"),
            "{tested}"
        );
    });
}

#[test]
fn a_ticket_closed_in_hubspot_resolves_its_conversation_once_and_unsigned_or_stale_deliveries_are_refused() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let id = setup.id().to_owned();
        let (client_id, client_secret) = (APP_CLIENT_ID, APP_CLIENT_SECRET);
        setup.subscribe_app(&app, &["tickets"]).await;
        Graph::install(&app.stack);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "I need a person").await;
        let log = settled_log(&app, &id, 3).await;
        let conversation = text(&entry(&log, "conversation.created")["record_id"]).to_owned();
        app.api(
            &setup.business.key,
            Method::Post,
            "/api-escalations",
            Some(json!({ "conversation_id": conversation, "reason": "refund" })),
        )
        .await
        .expect(202);
        app.settle().await;
        let ticket = text(&setup.hubspot.tickets()[0]["id"]).to_owned();
        let status = |app: &crate::app::App| {
            let rows = select(
                app,
                "SELECT status FROM conversations WHERE id = ?1",
                &[&conversation],
            );
            text(&rows[0]["status"]).to_owned()
        };
        assert_eq!(status(&app), "open");

        let path = format!("/api/webhooks/hubspot/{id}");
        let deliver = |events: &Value, at_ms: i64, secret: &str| {
            let (setup, app) = (&setup, &app);
            let events = events.clone();
            let secret = secret.to_owned();
            async move { setup.deliver(app, &events, at_ms, &secret).await }
        };
        // The app's secret signs every installing account's events: another account's move of a
        // ticket with the same id, or an event naming no account, acts on nothing here.
        let details_read = || {
            setup
                .hubspot
                .calls()
                .iter()
                .filter(|call| call.path().ends_with("/details"))
                .count()
        };
        let before = details_read();
        let mut elsewhere = setup.hubspot.ticket_moved(client_id, &ticket, "4");
        elsewhere[0]["portalId"] = json!(setup.hubspot.portal_id() + 1);
        let mut unnamed = setup.hubspot.ticket_moved(client_id, &ticket, "4");
        if let Some(event) = unnamed[0].as_object_mut() {
            event.remove("portalId");
        }
        for (events, which) in [(&elsewhere, "another account's"), (&unnamed, "no account's")] {
            let answer = deliver(events, app.stack.now_ms(), client_secret)
                .await
                .expect(200)
                .json();
            assert_eq!(
                answer["events"][0]["outcome"],
                "ignored: an event of another HubSpot account than the one this connector's credentials reach",
                "{which} event: {answer}"
            );
            assert_eq!(status(&app), "open", "{which} event acts on nothing");
        }
        assert_eq!(
            details_read(),
            before + 1,
            "the account is read once and kept for the next deliveries"
        );

        let closed = setup.hubspot.ticket_moved(client_id, &ticket, "4");
        let now = app.stack.now_ms();
        let answer = deliver(&closed, now, client_secret).await.expect(200).json();
        assert_eq!(
            answer["events"][0]["outcome"], "resolved the conversation",
            "{answer}"
        );
        assert_eq!(status(&app), "resolved");
        let again = deliver(&closed, now, client_secret).await.expect(200).json();
        assert_eq!(
            again["events"][0]["outcome"], "duplicate: already handled",
            "{again}"
        );

        let stale = deliver(&closed, now - 6 * 60 * 1000, client_secret).await;
        assert_eq!(stale.status, 401, "a stale delivery: {}", stale.text());
        let forged = deliver(&closed, now, "not-the-secret").await;
        assert_eq!(
            forged.status,
            401,
            "a delivery signed with another secret: {}",
            forged.text()
        );
        let unsigned = app
            .request(
                Method::Post,
                &path,
                &[("content-type", "application/json")],
                b"[]".to_vec(),
            )
            .await;
        assert_eq!(unsigned.status, 401);

        let reopened = setup.hubspot.ticket_moved(client_id, &ticket, "1");
        let answer = deliver(&reopened, app.stack.now_ms(), client_secret)
            .await
            .expect(200)
            .json();
        assert_eq!(
            answer["events"][0]["outcome"], "reopened the conversation",
            "{answer}"
        );
        assert_eq!(status(&app), "open");
        let log = sync_log(&app, &id, "").await;
        assert!(
            !log.iter()
                .any(|entry| entry["operation"] == "conversation.status_changed"),
            "HubSpot's own change is not work for its connector: {log:#?}"
        );
    });
}

#[test]
fn a_customer_without_an_email_is_upserted_by_the_businesss_id_property_and_never_made_twice() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "customer_id_property": "crm_edge_id" })).await;
        setup.hubspot.add_contact_property("crm_edge_id", true);
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let from = unique_phone();
        receive_whatsapp(&app, &whatsapp, &from, "first").await;
        let log = settled_log(&app, setup.id(), 3).await;
        let customer = text(&entry(&log, "customer.created")["record_id"]).to_owned();
        // The link to the contact lost (as if the try that made it crashed before keeping it): the
        // next work finds the contact by our id, not a second one.
        let forgotten =
            crate::steps::store::execute(&app, "DELETE FROM crm_links WHERE kind = 'customer'", &[]);
        assert_eq!(forgotten, 1);
        receive_whatsapp(&app, &whatsapp, &from, "second").await;
        settled_log(&app, setup.id(), 4).await;
        let contacts = setup.hubspot.contacts();
        assert_eq!(contacts.len(), 1, "{contacts:#?}");
        assert_eq!(property(&contacts[0], "crm_edge_id"), customer);
        let upserts = setup
            .hubspot
            .calls()
            .iter()
            .filter(|call| call.path().ends_with("/contacts/batch/upsert"))
            .count();
        assert_eq!(upserts, 2, "one upsert per try that had no link");
    });
}

/// The query parameter `name` of `url`.
fn parameter(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap_or_else(|problem| panic!("{url}: {problem}"))
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("{url} has no {name}"))
}

/// `POST /api-connector-authorizations` for HubSpot's app `app-client`.
async fn start_oauth(app: &App, key: &str) -> Answer {
    app.api(
        key,
        Method::Post,
        "/api-connector-authorizations",
        Some(json!({ "kind": "hubspot", "name": "Sales", "client_id": "app-client", "client_secret": "app-secret" })),
    )
    .await
}

/// `POST /api-connector-authorizations/complete` with what the consent page gave back.
async fn complete_oauth(app: &App, key: &str, state: &str, code: &str) -> Answer {
    app.api(
        key,
        Method::Post,
        "/api-connector-authorizations/complete",
        Some(json!({ "state": state, "code": code })),
    )
    .await
}

#[test]
fn a_connector_authorised_with_oauth_syncs_and_its_token_is_refreshed_before_it_expires_and_on_a_401() {
    test(|app| async move {
        let business = app.business("Acme").await;
        let hubspot = HubSpot::install(&app.stack, &unique("pat-na1-"));
        let redirect = format!("{ORIGIN}/console");
        hubspot.register_app("app-client", "app-secret", &redirect, &SCOPES);
        let started = start_oauth(&app, &business.key).await.expect(201).json();
        assert_eq!(started["redirect_uri"], redirect);
        let back = hubspot
            .consent(text(&started["authorize_url"]))
            .unwrap_or_else(|shown| panic!("the consent page showed: {shown}"));
        let (code, state) = (parameter(&back, "code"), parameter(&back, "state"));
        assert_eq!(state, text(&started["state"]));

        // Another business cannot finish it, nor can an altered or made-up state.
        let other = app.business("Other").await;
        let middle = state.len() / 2;
        let flipped = if &state[middle..=middle] == "A" { "B" } else { "A" };
        let altered = format!("{}{flipped}{}", &state[..middle], &state[middle + 1..]);
        for (key, state) in [
            (other.key.as_str(), state.clone()),
            (business.key.as_str(), altered),
            (business.key.as_str(), r#"{"kind":"hubspot"}"#.to_owned()),
        ] {
            let refused = complete_oauth(&app, key, &state, &code).await.expect(422).json();
            assert_eq!(refused["error"]["field"], "state", "{refused}");
        }
        // Nor another key of the same business: only who started it finishes it.
        let another = app
            .admin(
                Method::Post,
                &format!("/admin/businesses/{}/api-keys", business.id),
                Some(json!({ "name": "another" })),
            )
            .await
            .expect(201)
            .json();
        let refused = complete_oauth(&app, text(&another["key"]), &state, &code)
            .await
            .expect(422)
            .json();
        assert!(
            text(&refused["error"]["message"]).contains("started by another key or console session"),
            "{refused}"
        );

        let connector = complete_oauth(&app, &business.key, &state, &code)
            .await
            .expect(201)
            .json();
        assert_eq!(connector["name"], "Sales");
        assert_eq!(
            connector["secrets_set"],
            json!([
                "access_token",
                "access_token_expires_ms",
                "client_id",
                "client_secret",
                "refresh_token"
            ])
        );
        let again = complete_oauth(&app, &business.key, &state, &code)
            .await
            .expect(422)
            .json();
        assert_eq!(
            again["error"]["field"], "state",
            "a state finishes one authorisation, before HubSpot is asked: {again}"
        );
        let id = text(&connector["id"]).to_owned();
        let tested = app
            .api(
                &business.key,
                Method::Post,
                &format!("/api-connectors/{id}/test"),
                None,
            )
            .await
            .expect(200)
            .json();
        assert_eq!(tested["ok"], true, "{tested}");

        // Within the token's half hour: no refresh. 26 minutes on, it is refreshed before the
        // call; once HubSpot expires it early, the 401 is followed by a refresh and the call again.
        let whatsapp = whatsapp_account(&app, &business.id, None).await;
        let from = unique_phone();
        let refreshes = || {
            hubspot
                .received()
                .iter()
                .filter(|r| {
                    r.call.url.contains("/oauth/")
                        && String::from_utf8_lossy(&r.call.body).contains("grant_type=refresh_token")
                })
                .count()
        };
        receive_whatsapp(&app, &whatsapp, &from, "first").await;
        settled_log(&app, &id, 2).await;
        assert_eq!(refreshes(), 0);
        app.stack.advance(Duration::from_secs(26 * 60));
        receive_whatsapp(&app, &whatsapp, &from, "second").await;
        settled_log(&app, &id, 3).await;
        assert_eq!(refreshes(), 1, "refreshed before it expired");
        let unauthorised = |hubspot: &HubSpot| {
            hubspot
                .received()
                .iter()
                .filter(|r| r.status == Some(401))
                .count()
        };
        assert_eq!(
            unauthorised(&hubspot),
            0,
            "no call was made with an expired token"
        );
        hubspot.expire_access_tokens_now();
        receive_whatsapp(&app, &whatsapp, &from, "third").await;
        settled_log(&app, &id, 4).await;
        assert_eq!(refreshes(), 2);
        assert_eq!(unauthorised(&hubspot), 1, "one 401, then the refreshed token");
        let bodies: Vec<String> = hubspot
            .communications()
            .iter()
            .map(|record| property(record, "hs_communication_body").to_owned())
            .collect();
        assert_eq!(bodies, ["first", "second", "third"]);
        assert!(
            sync_log(&app, &id, "status=failed").await.is_empty(),
            "no job failed"
        );
        let stored = select(
            &app,
            "SELECT secrets FROM crm_connectors WHERE id = ?1",
            &[id.as_str()],
        );
        let sealed = text(&stored[0]["secrets"]);
        assert!(
            sealed.starts_with("v1:") && !sealed.contains("refresh"),
            "the tokens are stored sealed: {sealed}"
        );

        // A state is good for 10 minutes.
        let late = start_oauth(&app, &business.key).await.expect(201).json();
        let back = hubspot
            .consent(text(&late["authorize_url"]))
            .unwrap_or_else(|shown| panic!("{shown}"));
        app.stack.advance(Duration::from_secs(11 * 60));
        let refused = complete_oauth(
            &app,
            &business.key,
            &parameter(&back, "state"),
            &parameter(&back, "code"),
        )
        .await
        .expect(422)
        .json();
        assert_eq!(refused["error"]["field"], "state", "{refused}");
    });
}

#[test]
fn an_oauth_authorisation_is_refused_for_a_crm_that_takes_a_token_and_without_its_client() {
    test(|app| async move {
        let business = app.business("Acme").await;
        for (body, field) in [
            (
                json!({ "kind": "kustomer", "client_id": "c", "client_secret": "s" }),
                "kind",
            ),
            (json!({ "kind": "hubspot", "client_secret": "s" }), "client_id"),
            (
                json!({ "kind": "hubspot", "client_id": "c", "client_secret": " " }),
                "client_secret",
            ),
            (
                json!({ "kind": "hubspot", "client_id": "c", "client_secret": "s", "settings": { "sync_messages": "yes" } }),
                "settings.sync_messages",
            ),
        ] {
            let refused = app
                .api(
                    &business.key,
                    Method::Post,
                    "/api-connector-authorizations",
                    Some(body.clone()),
                )
                .await
                .expect(422)
                .json();
            assert_eq!(refused["error"]["field"], field, "{body}: {refused}");
        }
    });
}

#[test]
fn contacts_merged_in_hubspot_keep_our_customers_on_the_merged_one_and_a_deleted_one_is_forgotten() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let id = setup.id().to_owned();
        let client_id = APP_CLIENT_ID;
        setup.subscribe_app(&app, &SCOPES).await;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let (first, second) = (unique_phone(), unique_phone());
        receive_whatsapp(&app, &whatsapp, &first, "hello").await;
        receive_whatsapp(&app, &whatsapp, &second, "hello too").await;
        settled_log(&app, &id, 6).await;
        let contact_of = |phone: &str| {
            let contacts = setup.hubspot.contacts();
            contacts
                .iter()
                .find(|contact| property(contact, "phone") == phone)
                .map(|contact| text(&contact["id"]).to_owned())
                .unwrap_or_else(|| panic!("no contact for {phone}: {contacts:#?}"))
        };
        let (a, b) = (contact_of(&first), contact_of(&second));
        let linked = |crm_id: &str| {
            select(
                &app,
                "SELECT local_id FROM crm_links WHERE kind = 'customer' AND crm_id = ?1",
                &[crm_id],
            )
            .len()
        };
        let deliver = |events: Value| {
            let (setup, app) = (&setup, &app);
            async move {
                let answer = setup
                    .deliver(app, &events, app.stack.now_ms(), APP_CLIENT_SECRET)
                    .await
                    .expect(200)
                    .json();
                text(&answer["events"][0]["outcome"]).to_owned()
            }
        };

        // A merged into B in HubSpot: the first customer's next message lands on B.
        setup.hubspot.remove_contact(&a);
        let mut merge = setup.hubspot.event(client_id, "contact.merge", &b, None);
        merge["primaryObjectId"] = json!(b.parse::<u64>().unwrap_or_default());
        merge["mergedObjectIds"] = json!([a.parse::<u64>().unwrap_or_default()]);
        let merge = json!([merge]);
        assert_eq!(
            deliver(merge.clone()).await,
            "followed the merge: the customer is kept on the merged contact"
        );
        assert_eq!(deliver(merge).await, "duplicate: already handled");
        assert_eq!((linked(&a), linked(&b)), (0, 2));
        receive_whatsapp(&app, &whatsapp, &first, "after the merge").await;
        settled_log(&app, &id, 7).await;
        let after = setup
            .hubspot
            .communications()
            .into_iter()
            .find(|record| property(record, "hs_communication_body") == "after the merge")
            .unwrap_or_else(|| panic!("the message is on the timeline"));
        assert_eq!(
            contacts_of(&after),
            std::slice::from_ref(&b),
            "on the merged contact"
        );
        assert_eq!(setup.hubspot.contacts().len(), 1, "no contact made again");

        // B deleted in HubSpot: forgotten, and made again by the next message.
        setup.hubspot.remove_contact(&b);
        let deletion = json!([setup.hubspot.event(client_id, "contact.deletion", &b, None)]);
        assert_eq!(
            deliver(deletion).await,
            "forgot the contact: the customer's next change or message makes it again"
        );
        assert_eq!(linked(&b), 0);
        receive_whatsapp(&app, &whatsapp, &second, "after the deletion").await;
        settled_log(&app, &id, 8).await;
        let made = contact_of(&second);
        assert_ne!(made, b);
        assert_eq!(linked(&made), 1);
        let unknown = json!([setup.hubspot.event(client_id, "contact.deletion", "12345", None)]);
        assert_eq!(
            deliver(unknown).await,
            "ignored: not a contact crm-edge keeps a customer on"
        );
        assert!(sync_log(&app, &id, "status=failed").await.is_empty());
    });
}

#[test]
fn with_sync_companies_a_contact_joins_the_company_of_its_emails_domain_made_once_and_a_free_mail_one_none() {
    test(|app| async move {
        let setup = connected_business(&app, json!({ "sync_companies": true })).await;
        let domain = format!("{}.example", unique("acme-").to_ascii_lowercase());
        let known = setup
            .hubspot
            .seed_company(json!({ "name": "Known Ltd", "domain": "known.example" }));
        sync(
            &app,
            &setup.business.key,
            json!([
                { "name": "Ada Lovelace", "email": format!("ada@{domain}") },
                { "name": "Grace Hopper", "email": format!("grace@{}", domain.to_ascii_uppercase()) },
                { "name": "Jo Private", "email": format!("{}@gmail.com", unique("jo-")) },
                { "name": "Kim Known", "email": "kim@known.example" },
            ]),
        )
        .await;
        settled_log(&app, setup.id(), 4).await;
        let companies = setup.hubspot.companies();
        assert_eq!(
            companies.len(),
            2,
            "the new domain's company made once, the known one kept: {companies:#?}"
        );
        let made = companies
            .iter()
            .find(|company| property(company, "domain") == domain)
            .unwrap_or_else(|| panic!("a company at {domain}: {companies:#?}"));
        let company_of = |email: &str| {
            let contacts = setup.hubspot.contacts();
            let contact = contacts
                .iter()
                .find(|contact| property(contact, "email").eq_ignore_ascii_case(email))
                .unwrap_or_else(|| panic!("no contact {email}"));
            let id = text(&contact["id"]);
            // Either way round: a company made with its contact holds the association.
            let mut ids: Vec<String> = setup
                .hubspot
                .associations_of("contacts", id)
                .into_iter()
                .filter(|association| association.to_object == "companies")
                .map(|association| association.to_id)
                .chain(setup.hubspot.companies().iter().filter_map(|company| {
                    let company_id = text(&company["id"]);
                    setup
                        .hubspot
                        .associations_of("companies", company_id)
                        .iter()
                        .any(|association| association.to_object == "contacts" && association.to_id == id)
                        .then(|| company_id.to_owned())
                }))
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        assert_eq!(
            company_of(&format!("ada@{domain}")),
            [text(&made["id"]).to_owned()]
        );
        assert_eq!(
            company_of(&format!("grace@{domain}")),
            [text(&made["id"]).to_owned()]
        );
        assert_eq!(company_of("kim@known.example"), [text(&known["id"]).to_owned()]);
        let private = setup
            .hubspot
            .contacts()
            .into_iter()
            .find(|contact| property(contact, "email").ends_with("@gmail.com"))
            .unwrap_or_else(|| panic!("the gmail contact"));
        assert!(
            company_of(property(&private, "email")).is_empty(),
            "no company for a free mail address"
        );
        assert!(sync_log(&app, setup.id(), "status=failed").await.is_empty());
    });
}
