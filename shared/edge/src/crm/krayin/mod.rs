//! Krayin's side of the sync pipeline: a contact (one of our customers, or a Chatwoot contact
//! whose webhooks feed the connector) becomes a Person and a Lead (and, when its company is
//! known, an Organization), its conversations and messages become activities on the lead, and a
//! conversation's moments move the lead through its pipeline. What a request looks like and what
//! an answer means is pure (`domain::crm::krayin`); this module decides which calls a piece of
//! work needs, makes them through the connector's budget, and keeps the contact's Krayin ids.
//!
//! Exactly one Person and one Lead per contact: a contact's work is done by one worker at a time
//! (its lease), each id is kept as soon as Krayin gives it, and a Person is looked up by email
//! and phone before one is created (Krayin refuses a second Person with the same email or
//! number, so a create that loses a race finds the winner instead).
//!
//! This file holds the connection: its calls and what an answer that is no success means,
//! Krayin's pipelines (kept an hour), the connection test and the `Live` face the sync sees.
//! `contact` finds or makes a contact's Person, Lead and Organization; `activities` makes the
//! activities and moves the lead through its stages; `follow` turns each piece of work (ours, or
//! Chatwoot's events) into those steps.

mod activities;
mod contact;
mod follow;

use crate::Env;
use crate::crm::client::{Answer, Client, Refusal};
use crate::crm::{Connected, Connection, Live, Outcome, skipped, unreadable};
use crate::db::Db;
use crate::db::crm_connectors::Connector;
use crate::db::crm_contacts::Kept;
use crate::runtime;
use domain::crm::chatwoot::ChatwootEvent;
use domain::crm::krayin::activity::StageTrigger;
use domain::crm::krayin::answer::{self, Pipeline};
use domain::crm::krayin::api::{self, ApiRequest};
use domain::crm::krayin::{KrayinRefs, KrayinSettings, PersonId};
use domain::crm::retry::CallFailure;
use domain::crm::work::Routing;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::webhooks::EventType;
use follow::{follow_chatwoot, follow_conversation, follow_customer, follow_message, note};
use serde_json::{Map, Value};

/// Krayin's pipelines and stages are read again once what the connector keeps is this old.
const PIPELINES_FOR_SECONDS: i64 = 3600;

/// A Krayin connector ready to call.
pub type Krayin<'a> = Connection<'a, KrayinSettings>;

impl Krayin<'_> {
    /// Makes the call; an answer that is not a success (a 404, a 3xx) is returned as it is.
    pub async fn send(&self, request: &ApiRequest) -> Result<Answer, Refusal> {
        self.client.send(request).await
    }

    /// Makes the call and reads the record a success carries.
    async fn data(&self, request: &ApiRequest) -> Result<Map<String, Value>, Refusal> {
        let answer = self.send(request).await?;
        expect_success(&answer)?;
        answer::parse_data(&answer.body).map_err(|reason| unreadable("Krayin", reason))
    }

    async fn list(&self, request: &ApiRequest) -> Result<Vec<Map<String, Value>>, Refusal> {
        let answer = self.send(request).await?;
        expect_success(&answer)?;
        answer::parse_list(&answer.body).map_err(|reason| unreadable("Krayin", reason))
    }

    async fn created_id(&self, request: &ApiRequest) -> Result<u64, Refusal> {
        let answer = self.send(request).await?;
        expect_success(&answer)?;
        answer::parse_id(&answer.body).map_err(|reason| unreadable("Krayin", reason))
    }

    /// Krayin's pipelines with their stages: as the connector keeps them while under an hour old,
    /// else read again (and kept).
    pub async fn pipelines(&self) -> Result<Vec<Pipeline>, Refusal> {
        let connector = self.client.connector;
        let now = runtime::now().micros();
        if let (Some(cache), Some(at)) = (&connector.crm_cache, connector.crm_cache_us)
            && now - at < PIPELINES_FOR_SECONDS * 1_000_000
            && let Ok(pipelines) = answer::parse_pipelines(cache.to_string().as_bytes())
        {
            return Ok(pipelines);
        }
        self.read_pipelines().await
    }

    /// Reads Krayin's pipelines now, and keeps them for the next hour.
    pub async fn read_pipelines(&self) -> Result<Vec<Pipeline>, Refusal> {
        let (pipelines, answer) = self.fetch_pipelines().await?;
        self.keep_read(&answer).await?;
        Ok(pipelines)
    }

    /// Krayin's pipelines, and its answer as the connector keeps it.
    async fn fetch_pipelines(&self) -> Result<(Vec<Pipeline>, Value), Refusal> {
        let answer = self.send(&api::pipelines()).await?;
        expect_success(&answer)?;
        let pipelines =
            answer::parse_pipelines(&answer.body).map_err(|reason| unreadable("Krayin", reason))?;
        let document = serde_json::from_slice(&answer.body)
            .map_err(|error| unreadable("Krayin", error.to_string().into()))?;
        Ok((pipelines, document))
    }

    /// Checks the configured pipeline and stages against Krayin's, as the admin API saves the
    /// settings (a stage that is not in the lead pipeline is refused there, not at sync time);
    /// returns Krayin's pipelines to keep, or None when nothing needed checking.
    pub async fn check_settings(&self) -> Result<Option<Value>, ApiError> {
        if !self.settings.stage_progression && self.settings.pipeline_id.is_none() {
            return Ok(None);
        }
        let (pipelines, answer) = self
            .fetch_pipelines()
            .await
            .map_err(|refusal| super::refusal_error("Krayin", refusal))?;
        self.settings.check_stages(&pipelines)?;
        Ok(Some(answer))
    }
}

fn expect_success(answer: &Answer) -> Result<(), Refusal> {
    if answer.is_success() {
        return Ok(());
    }
    Err(failure(answer))
}

/// What Krayin said in an answer that is not a success, as the call's failure.
fn failure(answer: &Answer) -> Refusal {
    Refusal::Failed(CallFailure::Status {
        status: answer.status,
        wait: None,
        reason: answer::error_reason(answer.status, &answer.body),
    })
}

impl Connected for domain::crm::krayin::Krayin {
    type Live<'a> = Krayin<'a>;

    fn connect<'a>(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<Krayin<'a>, String> {
        Krayin::new(env, db, connector)
    }
}

impl<'a> Live<'a> for Krayin<'a> {
    async fn erase(&self, crm_id: &str) -> Result<Outcome, Refusal> {
        let Ok(person) = crm_id.parse().map(PersonId) else {
            return Ok(Outcome::Invalid(format!("{crm_id:?} is no Krayin person id")));
        };
        let answer = self.client.send(&api::delete_person(person)).await?;
        super::erased(&answer, crm_id, "Krayin", failure)
    }

    fn client(&mut self) -> &mut Client<'a> {
        &mut self.client
    }

    fn follow_customer(
        &self,
        _retrying: bool,
        id: &CustomerId,
        event: EventType,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        follow_customer(self, id.clone(), event)
    }

    async fn follow_conversation(
        &self,
        _retrying: bool,
        id: &ConversationId,
        event: EventType,
    ) -> Result<Outcome, Refusal> {
        match event {
            EventType::ConversationAssigned => skipped("Krayin's activities have no assignee to change"),
            event => follow_conversation(self, id, event).await,
        }
    }

    fn follow_message(
        &self,
        _retrying: bool,
        id: &MessageId,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        follow_message(self, id)
    }

    fn escalate(
        &self,
        _retrying: bool,
        conversation: &ConversationId,
        reason: &str,
        _routing: &Routing,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        note(self, "Escalated to a person", conversation, reason)
    }

    async fn change_escalation(
        &self,
        _conversation: &ConversationId,
        _routing: &Routing,
    ) -> Result<Outcome, Refusal> {
        skipped("Krayin's activities have no priority or team to change")
    }

    fn note(
        &self,
        _retrying: bool,
        conversation: &ConversationId,
        body: &str,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        note(self, "Note", conversation, body)
    }

    fn follow_platform(&self, event: &ChatwootEvent) -> impl Future<Output = Result<Outcome, Refusal>> {
        follow_chatwoot(self, event)
    }

    fn test_connection(&self) -> impl Future<Output = Result<super::ConnectionTest, ApiError>> {
        test_connection(self)
    }

    fn check_settings(&self) -> impl Future<Output = Result<Option<Value>, ApiError>> {
        Krayin::check_settings(self)
    }
}

/// The contact's Krayin ids as the admin API shows them.
pub fn contact_out(kept: &Kept) -> domain::api::admin::KrayinContact {
    let refs = kept
        .external_id
        .as_deref()
        .and_then(|external_id| KrayinRefs::parse(external_id).ok())
        .unwrap_or_default();
    domain::api::admin::KrayinContact {
        contact: kept.contact.to_string(),
        external_id: kept.external_id.clone(),
        person_id: refs.person.map(|id| id.0),
        lead_id: refs.lead.map(|id| id.0),
        organization_id: refs.organization.map(|id| id.0),
        activity_id: refs.activity.map(|id| id.0),
        stages_done: kept
            .stages_done
            .as_deref()
            .map(StageTrigger::parse_list)
            .unwrap_or_default()
            .iter()
            .map(|trigger| trigger.as_str())
            .collect(),
    }
}

/// The seed's "Test the connection": the token's user, or what Krayin said of it.
async fn test_connection(krayin: &Krayin<'_>) -> Result<super::ConnectionTest, ApiError> {
    match krayin.data(&api::current_user()).await {
        Ok(user) => Ok(super::ConnectionTest::passed(Value::Object(user))),
        Err(Refusal::Failed(CallFailure::Status { status: 404, .. })) => Ok(super::ConnectionTest::failed(
            Some(404),
            api::NO_REST_API.to_owned(),
        )),
        Err(refusal) => super::refused_test("Krayin", refusal),
    }
}

#[cfg(test)]
mod tests {
    //! The decisions this module makes, each against a Krayin scripted for the one answer that
    //! matters, on a native stack: which calls a piece of work makes, and what it keeps.

    use super::*;
    use crate::db::crm_connectors::{self, Fields};
    use crate::db::crm_contacts;
    use crate::runtime::native::{Outbound, Reply};
    use crate::testing::Fixture;
    use domain::crm::budget::Budget;
    use domain::crm::chatwoot::webhook;
    use domain::crm::work::{ConnectorKind, ContactKey};
    use domain::ids::ConnectorId;
    use serde_json::json;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    pub(super) const HOST: &str = "crm.example.com";

    pub(super) fn fail(error: impl std::fmt::Debug) -> ! {
        panic!("{error:?}")
    }

    /// A Krayin connector of a new business, stored as the admin API stores it: `settings` over
    /// Krayin's address, no budget.
    pub(super) async fn connector(fixture: &Fixture, settings: Value) -> Connector {
        let tenant = fixture.business("Acme").await;
        let mut all = json!({ "base_url": format!("https://{HOST}") });
        if let (Some(all), Value::Object(given)) = (all.as_object_mut(), settings) {
            all.extend(given);
        }
        let (settings, secrets) = domain::crm::config::checked(
            ConnectorKind::Krayin,
            &all,
            &json!({ "api_token": "1|token" }),
            false,
        )
        .unwrap_or_else(|e| fail(e));
        let id = ConnectorId::generate(runtime::random().unwrap_or_else(|e| fail(e)));
        let fields = Fields {
            name: "Krayin",
            settings: &settings,
            secrets: &secrets,
            enabled: true,
            rollout: domain::crm::rollout::Rollout::EVERYONE,
            budget: Budget {
                per_minute: None,
                per_second: None,
                per_day: None,
            },
        };
        let keys = fixture.env.keyring().unwrap_or_else(|e| fail(e));
        let now = runtime::now().to_rfc3339();
        crm_connectors::insert(
            &fixture.db,
            &keys,
            &tenant,
            &id,
            ConnectorKind::Krayin,
            &fields,
            &now,
        )
        .await
        .unwrap_or_else(|e| fail(e))
    }

    /// The contact's row, held as a worker holds it, with `external_id` kept already (if any).
    pub(super) async fn holding(
        fixture: &Fixture,
        connector: &Connector,
        id: u64,
        external_id: Option<&str>,
    ) {
        let key = ContactKey::Chatwoot(id);
        let now = runtime::now().micros();
        let (db, tenant) = (&fixture.db, &connector.tenant);
        crm_contacts::claim(db, tenant, &connector.id, &key, "lease", now, now + 60_000_000)
            .await
            .unwrap_or_else(|e| fail(e));
        crm_contacts::keep(db, tenant, &connector.id, &key, external_id, None)
            .await
            .unwrap_or_else(|e| fail(e));
    }

    pub(super) async fn kept(fixture: &Fixture, connector: &Connector, id: u64) -> Option<Kept> {
        crm_contacts::kept(
            &fixture.db,
            &connector.tenant,
            &connector.id,
            &ContactKey::Chatwoot(id),
        )
        .await
        .unwrap_or_else(|e| fail(e))
    }

    /// Follows a Chatwoot delivery of `payload`, as crm-sync does with its work.
    pub(super) async fn follow(
        fixture: &Fixture,
        connector: &Connector,
        payload: Value,
    ) -> Result<Outcome, Refusal> {
        let event = webhook::parse(payload.to_string().as_bytes()).unwrap_or_else(|e| fail(e));
        let krayin = Krayin::new(&fixture.env, &fixture.db, connector).unwrap_or_else(|e| fail(e));
        follow_chatwoot(&krayin, &event).await
    }

    pub(super) fn contact(id: u64) -> Value {
        json!({ "event": "contact_created", "id": id, "name": "Ann Lee", "email": "ann@acme.com" })
    }

    pub(super) fn conversation(event: &str, id: u64, contact: u64, channel: &str) -> Value {
        json!({ "event": event, "id": id, "status": "open", "channel": channel,
                "meta": { "sender": { "id": contact, "name": "Ann Lee", "email": "ann@acme.com" } } })
    }

    pub(super) fn message(id: u64, contact: u64, channel: &str) -> Value {
        json!({ "event": "message_created", "id": id, "content": "Hello", "message_type": "incoming",
                "private": false, "sender": { "id": contact, "name": "Ann Lee", "type": "contact" },
                "conversation": { "id": 5, "status": "open", "channel": channel,
                                  "meta": { "sender": { "id": contact, "name": "Ann Lee" } } } })
    }

    pub(super) fn pipelines() -> Reply {
        Reply::json(
            200,
            &json!({ "data": [
                { "id": 1, "name": "Default Pipeline", "is_default": 1, "stages": [
                    { "id": 1, "code": "new", "name": "New" }, { "id": 2, "code": "follow-up", "name": "Follow Up" },
                    { "id": 3, "code": "prospect", "name": "Prospect" }, { "id": 4, "code": "won", "name": "Won" } ] },
                { "id": 2, "name": "Partnerships", "is_default": 0, "stages": [
                    { "id": 7, "code": "new", "name": "New" }, { "id": 8, "code": "won", "name": "Won" } ] }
            ] }),
        )
    }

    pub(super) fn person(id: u64, email: &str) -> Value {
        json!({ "id": id, "name": "Ann Lee", "emails": [{ "value": email, "label": "work" }],
                "contact_numbers": [{ "value": "", "label": "work" }] })
    }

    pub(super) fn created(id: u64) -> Reply {
        Reply::json(
            200,
            &json!({ "data": { "id": id }, "message": "Created successfully." }),
        )
    }

    pub(super) fn taken(field: &str) -> Reply {
        let message = "The value has already been taken.";
        Reply::json(
            422,
            &json!({ "message": message, "errors": { field: [message] } }),
        )
    }

    /// `METHOD /path` of each call Krayin got.
    pub(super) fn calls(fixture: &Fixture) -> Vec<String> {
        fixture
            .stack
            .calls_to(HOST)
            .iter()
            .map(|call| format!("{} {}", call.method, call.path()))
            .collect()
    }

    pub(super) fn body_of(fixture: &Fixture, method: &str, path: &str) -> Value {
        fixture
            .stack
            .calls_to(HOST)
            .iter()
            .find(|call| call.method == method && call.path() == path)
            .map(Outbound::json)
            .unwrap_or_else(|| panic!("no {method} {path}: {:?}", calls(fixture)))
    }

    pub(super) fn synced_to(outcome: &Result<Outcome, Refusal>) -> String {
        match outcome {
            Ok(Outcome::Synced { crm_id: Some(id) }) => id.clone(),
            other => panic!("not synced: {other:?}"),
        }
    }

    #[test]
    fn a_krayin_without_its_rest_api_package_is_named_as_such_by_the_connection_test() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({})).await;
            // What Laravel answers for a route no package registered.
            fixture
                .stack
                .partner(HOST, |_| Reply::json(404, &json!({ "message": "Not Found" })));
            let krayin = Krayin::new(&fixture.env, &fixture.db, &connector).unwrap_or_else(|e| fail(e));
            let tested = test_connection(&krayin).await.unwrap_or_else(|e| fail(e));
            assert_eq!((tested.ok, tested.status), (false, Some(404)));
            let reason = tested.reason.unwrap_or_default();
            assert!(
                reason.contains("REST API package") && !reason.contains("deleted"),
                "{reason}"
            );
        });
    }

    #[test]
    fn krayins_pipelines_are_read_once_an_hour_for_the_leads_made_meanwhile() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({})).await;
            let leads = Rc::new(Cell::new(10));
            let counted = Rc::clone(&leads);
            fixture
                .stack
                .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(200, &json!({ "data": [] })),
                    ("POST", "/api/v1/contacts/persons") => created(counted.get()),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => {
                        counted.set(counted.get() + 1);
                        created(counted.get())
                    }
                    _ => Reply::status(500),
                });
            let reads = |fixture: &Fixture| {
                calls(fixture)
                    .iter()
                    .filter(|call| *call == "GET /api/v1/settings/pipelines")
                    .count()
            };
            for (id, minutes_later, expected) in [(1, 0, 1), (2, 59, 1), (3, 2, 2)] {
                fixture.stack.advance(Duration::from_secs(minutes_later * 60));
                // What the drain reads: the connector as it is now, with what it keeps.
                let keys = fixture.env.keyring().unwrap_or_else(|e| fail(e));
                let now = crm_connectors::find(&fixture.db, &keys, &connector.tenant, &connector.id)
                    .await
                    .unwrap_or_else(|e| fail(e))
                    .unwrap_or_else(|| panic!("the connector"));
                holding(&fixture, &now, id, None).await;
                let mut payload = contact(id);
                payload["email"] = json!(format!("ann{id}@acme.com"));
                follow(&fixture, &now, payload).await.unwrap_or_else(|e| fail(e));
                assert_eq!(reads(&fixture), expected, "contact {id}, {minutes_later} min on");
            }
        });
    }

    #[test]
    fn an_answer_that_is_no_success_fails_the_work_with_its_status_and_makes_nothing() {
        for (reply, status) in [
            (Reply::status(302).header("location", "/admin/login"), 302),
            (Reply::json(401, &json!({ "message": "Unauthenticated." })), 401),
            (
                Reply::json(503, &json!({ "message": "Down for maintenance" })),
                503,
            ),
        ] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({})).await;
                holding(&fixture, &connector, 42, None).await;
                let answer = reply.clone();
                fixture.stack.partner(HOST, move |_| answer.clone());
                let outcome = follow(&fixture, &connector, contact(42)).await;
                assert!(
                    matches!(&outcome, Err(Refusal::Failed(CallFailure::Status { status: got, .. })) if *got == status),
                    "{status}: {outcome:?}"
                );
                assert_eq!(calls(&fixture), ["GET /api/v1/contacts/persons/search"], "{status}");
                assert_eq!(
                    kept(&fixture, &connector, 42).await.and_then(|kept| kept.external_id),
                    None,
                    "{status}: nothing kept"
                );
            });
        }
    }
}
