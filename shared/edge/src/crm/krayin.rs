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

use crate::Env;
use crate::crm::client::{Answer, Client, Refusal};
use crate::crm::{Connected, Connection, Live, Outcome, attachment_links, gone, skipped, synced, unreadable};
use crate::db;
use crate::db::Db;
use crate::db::crm_connectors::Connector;
use crate::db::crm_contacts::{self, Kept};
use crate::runtime;
use domain::channel::Direction;
use domain::crm::chatwoot::{self, ChatwootEvent};
use domain::crm::krayin::activity::{self, PlannedActivity, StageTrigger};
use domain::crm::krayin::answer::{self, Person, Pipeline};
use domain::crm::krayin::api::{self, ApiRequest, Contact, LeadFields, OrganizationFields, PersonFields};
use domain::crm::krayin::{ActivityId, KrayinRefs, KrayinSettings, LeadId, OrganizationId, PersonId};
use domain::crm::retry::CallFailure;
use domain::crm::work::{ContactKey, LinkKind, Routing};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::lookup::CustomerKey;
use domain::message::Conversation;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use serde_json::{Map, Value};

/// Krayin's pipelines and stages are read again once what the connector keeps is this old.
const PIPELINES_FOR_SECONDS: i64 = 3600;

/// A Krayin connector ready to call.
pub type Krayin<'a> = Connection<'a, KrayinSettings>;

/// What the connector keeps of one contact: its Krayin records and the stage moves made.
struct ContactState {
    refs: KrayinRefs,
    stages_done: Vec<StageTrigger>,
}

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

    async fn state(&self, key: &ContactKey) -> Result<ContactState, Refusal> {
        let kept = crm_contacts::kept(self.db(), self.tenant(), &self.client.connector.id, key).await?;
        Ok(state_of(kept.as_ref(), self.client.connector, key)?)
    }

    async fn keep(&self, key: &ContactKey, state: &ContactState) -> Result<(), Refusal> {
        let external_id = (!state.refs.is_empty()).then(|| state.refs.to_string());
        let stages = (!state.stages_done.is_empty()).then(|| StageTrigger::write_list(&state.stages_done));
        crm_contacts::keep(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            key,
            external_id.as_deref(),
            stages.as_deref(),
        )
        .await?;
        Ok(())
    }

    /// The Person Krayin has with one of the contact's emails or numbers (compared exactly:
    /// Krayin's search matches parts).
    async fn find_person(&self, contact: &Contact) -> Result<Option<PersonId>, Refusal> {
        for email in &contact.emails {
            let found = self.list(&api::search_person_by_email(email)).await?;
            if let Some(person) = persons(&found).find(|person| person.has_email(email)) {
                return Ok(Some(person.id));
            }
        }
        for phone in &contact.phones {
            let found = self.list(&api::search_person_by_phone(phone)).await?;
            if let Some(person) = persons(&found).find(|person| person.has_phone(phone)) {
                return Ok(Some(person.id));
            }
        }
        Ok(None)
    }

    /// The Organization of the contact's company: found by its exact name, else created (a
    /// create that loses a race with another contact of the same company finds the winner's).
    /// None when the contact names no company, or a name Krayin cannot be searched by.
    async fn organization(&self, contact: &Contact) -> Result<Option<OrganizationId>, Refusal> {
        let Some(mut fields) = OrganizationFields::from_contact(contact) else {
            return Ok(None);
        };
        fields.user_id = self.settings.user_id;
        let Some(search) = api::search_organization(&fields.name) else {
            return Ok(None);
        };
        let named = |found: &[Map<String, Value>]| {
            found
                .iter()
                .find(|item| item.get("name").and_then(Value::as_str) == Some(fields.name.as_str()))
                .and_then(|item| item.get("id"))
                .and_then(Value::as_u64)
                .map(OrganizationId)
        };
        if let Some(id) = named(&self.list(&search).await?) {
            return Ok(Some(id));
        }
        match self.created_id(&api::create_organization(&fields)).await {
            Ok(id) => Ok(Some(OrganizationId(id))),
            Err(Refusal::Failed(CallFailure::Status { status: 422, .. })) => {
                match named(&self.list(&search).await?) {
                    Some(id) => Ok(Some(id)),
                    None => Err(Refusal::Failed(gone(format!(
                        "Krayin refused the organization {} and has none of that name",
                        fields.name
                    )))),
                }
            }
            Err(other) => Err(other),
        }
    }

    fn person_fields(&self, contact: &Contact, organization: Option<OrganizationId>) -> PersonFields {
        let mut person = PersonFields::from_contact(contact);
        person.user_id = self.settings.user_id;
        person.organization_id = organization;
        if organization.is_none() && self.settings.sync_organizations {
            // A company Krayin cannot be searched by (a comma in its name): Krayin finds or
            // creates it by exact name itself.
            person.organization_name = contact
                .company
                .as_ref()
                .map(|company| company.name.clone())
                .filter(|name| api::search_organization(name).is_none());
        }
        person
    }

    /// The contact's Person and Lead, finding or creating each (and the Organization first, when
    /// organizations are synced). `created` says whether this call made the Person or the Lead.
    async fn ensure_contact(
        &self,
        key: &ContactKey,
        contact: &Contact,
    ) -> Result<(ContactState, bool), Refusal> {
        let mut state = self.state(key).await?;
        let mut created = false;
        let person = match state.refs.person {
            Some(person) => person,
            None => {
                if self.settings.sync_organizations && state.refs.organization.is_none() {
                    state.refs.organization = self.organization(contact).await?;
                }
                let person = match self.find_person(contact).await? {
                    Some(person) => person,
                    None => {
                        created = true;
                        self.create_person(contact, state.refs.organization).await?
                    }
                };
                state.refs.person = Some(person);
                self.keep(key, &state).await?;
                person
            }
        };
        if state.refs.lead.is_none() {
            // Krayin refuses a lead without a stage: the first of the lead pipeline (kept an hour).
            let initial = self.settings.initial_stage(&self.pipelines().await?);
            let lead = LeadFields::from_contact(contact, person, &self.settings, initial);
            state.refs.lead = Some(LeadId(self.created_id(&api::create_lead(&lead)).await?));
            self.keep(key, &state).await?;
            created = true;
        }
        Ok((state, created))
    }

    async fn create_person(
        &self,
        contact: &Contact,
        organization: Option<OrganizationId>,
    ) -> Result<PersonId, Refusal> {
        let fields = self.person_fields(contact, organization);
        match self.created_id(&api::create_person(&fields)).await {
            Ok(id) => Ok(PersonId(id)),
            // An email or number another Person has: Krayin has this contact already (someone
            // made them between our search and our create).
            Err(Refusal::Failed(CallFailure::Status {
                status: 422, reason, ..
            })) => match self.find_person(contact).await? {
                Some(id) => Ok(id),
                None => Err(Refusal::Failed(CallFailure::Status {
                    status: 422,
                    wait: None,
                    reason,
                })),
            },
            Err(other) => Err(other),
        }
    }

    /// Brings the contact's Person and Lead up to date (creating them when they are not there).
    /// A Lead a salesperson added products to is left as it is: Krayin's lead update deletes
    /// the products its body does not carry.
    async fn update_contact(&self, key: &ContactKey, contact: &Contact) -> Result<Outcome, Refusal> {
        let (mut state, created) = self.ensure_contact(key, contact).await?;
        let (Some(person), Some(lead)) = (state.refs.person, state.refs.lead) else {
            return Err(Refusal::Ours(ApiError::internal(
                "Krayin contact",
                "a contact made in Krayin has no person or lead",
            )));
        };
        if created {
            return synced(state.refs.to_string());
        }
        if self.settings.sync_organizations && state.refs.organization.is_none() {
            state.refs.organization = self.organization(contact).await?;
            self.keep(key, &state).await?;
        }
        self.data(&api::update_person(
            person,
            &self.person_fields(contact, state.refs.organization),
        ))
        .await?;
        let current = answer::Lead::from_data(&self.data(&api::get_lead(lead)).await?)
            .map_err(|reason| unreadable("Krayin", reason))?;
        if current.has_products {
            return Ok(Outcome::Skipped(format!(
                "person {person} updated; lead {lead} has products, which Krayin's update would delete, \
                 so it is left as it is"
            )));
        }
        if let Some(stage) = current.stage_id {
            let fields = LeadFields::from_contact(contact, person, &self.settings, None);
            self.data(&api::update_lead(lead, stage, &fields)).await?;
        }
        synced(state.refs.to_string())
    }

    /// Creates the activity (and marks it done when it records something finished that Krayin
    /// creates not done); returns its id.
    async fn create_activity(&self, planned: &PlannedActivity) -> Result<ActivityId, Refusal> {
        let id = ActivityId(self.created_id(&api::create_activity(&planned.fields)).await?);
        if planned.needs_marking_done() {
            self.data(&api::mark_activity_done(id)).await?;
        }
        Ok(id)
    }

    /// Moves the contact's lead to the stage configured for `trigger`: once per trigger, and only
    /// forwards along the lead's pipeline (a salesperson's own move further is never undone).
    async fn progress(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        trigger: StageTrigger,
    ) -> Result<(), Refusal> {
        let (Some(target), Some(lead)) = (activity::stage_for(&self.settings, trigger), state.refs.lead)
        else {
            return Ok(());
        };
        if state.stages_done.contains(&trigger) {
            return Ok(());
        }
        let pipelines = self.pipelines().await?;
        let current = answer::Lead::from_data(&self.data(&api::get_lead(lead)).await?)
            .map_err(|reason| unreadable("Krayin", reason))?;
        let pipeline = pipelines
            .iter()
            .find(|pipeline| Some(pipeline.id) == current.pipeline_id)
            .or_else(|| self.settings.lead_pipeline(&pipelines));
        if let Some(pipeline) = pipeline
            && let Some(stage) = pipeline.stage(target)
        {
            let at = current
                .stage_id
                .and_then(|id| pipeline.stage(id))
                .map(|stage| stage.sort_order);
            if let Some(next) = activity::next_stage(at, stage) {
                self.data(&api::move_lead(lead, next)).await?;
            }
        }
        // A stage that is not in the lead's pipeline (a salesperson moved the lead to another)
        // is not a move Krayin can make: the trigger is spent either way.
        state.stages_done.push(trigger);
        self.keep(key, state).await
    }

    /// The activity linked to our record or Chatwoot's (`local_id`), if there is one.
    async fn linked_activity(&self, kind: LinkKind, local_id: &str) -> Result<Option<ActivityId>, Refusal> {
        Ok(self
            .linked(kind, local_id)
            .await?
            .and_then(|id| id.parse().ok())
            .map(ActivityId))
    }

    /// The activity of our record or Chatwoot's (`kind`, `local_id`), made from `planned` when
    /// it has none (`planned` is None when the contact has no Person or Lead); true when made now.
    async fn activity_of(
        &self,
        kind: LinkKind,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<(ActivityId, bool)>, Refusal> {
        if let Some(activity) = self.linked_activity(kind, local_id).await? {
            return Ok(Some((activity, false)));
        }
        let Some(planned) = planned else {
            return Ok(None);
        };
        let activity = self.create_activity(&planned).await?;
        self.link(kind, local_id, &activity.to_string()).await?;
        Ok(Some((activity, true)))
    }

    /// A conversation's activity, made when it has none and kept as the contact's current one.
    async fn conversation_activity(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        let found = self
            .activity_of(LinkKind::Conversation, local_id, planned)
            .await?;
        if let Some((activity, true)) = found {
            state.refs.activity = Some(activity);
            self.keep(key, state).await?;
        }
        Ok(found.map(|(activity, _)| activity))
    }

    async fn message_activity(
        &self,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        let found = self.activity_of(LinkKind::Message, local_id, planned).await?;
        Ok(found.map(|(activity, _)| activity))
    }

    /// A conversation changed without ending: its activity brought up to date (made when it has
    /// none yet).
    async fn update_conversation_activity(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        match (
            self.linked_activity(LinkKind::Conversation, local_id).await?,
            &planned,
        ) {
            (Some(activity), Some(planned)) => {
                self.data(&api::update_activity(activity, &planned.fields, planned.done))
                    .await?;
                Ok(Some(activity))
            }
            (Some(activity), None) => Ok(Some(activity)),
            (None, _) => self.conversation_activity(key, state, local_id, planned).await,
        }
    }

    /// A conversation ended: its activity marked done (made done when it has none yet), and the
    /// lead moved to the resolved stage.
    async fn resolve(
        &self,
        key: &ContactKey,
        state: &mut ContactState,
        local_id: &str,
        planned: Option<PlannedActivity>,
    ) -> Result<Option<ActivityId>, Refusal> {
        let activity = match self.linked_activity(LinkKind::Conversation, local_id).await? {
            Some(activity) => {
                self.data(&api::mark_activity_done(activity)).await?;
                Some(activity)
            }
            None if self.settings.sync_conversations => {
                self.conversation_activity(key, state, local_id, planned).await?
            }
            None => None,
        };
        self.progress(key, state, StageTrigger::Resolved).await?;
        Ok(activity)
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

fn persons(found: &[Map<String, Value>]) -> impl Iterator<Item = Person> + '_ {
    found.iter().filter_map(|data| Person::from_data(data).ok())
}

/// What the connector keeps of a contact, as work reads it (nothing kept: no records yet).
fn state_of(kept: Option<&Kept>, connector: &Connector, key: &ContactKey) -> Result<ContactState, ApiError> {
    let refs = match kept.and_then(|kept| kept.external_id.as_deref()) {
        Some(external_id) => KrayinRefs::parse(external_id).map_err(|_| {
            db::corrupt(
                "CRM contact",
                &format!("{} {key}", connector.id),
                "its external id",
            )
        })?,
        None => KrayinRefs::default(),
    };
    Ok(ContactState {
        refs,
        stages_done: kept
            .and_then(|kept| kept.stages_done.as_deref())
            .map(StageTrigger::parse_list)
            .unwrap_or_default(),
    })
}

/// What the outcome of work on a contact's records says: the contact's Krayin ids, or the record
/// made.
fn done(state: &ContactState, record: Option<ActivityId>) -> Result<Outcome, Refusal> {
    synced(match record {
        Some(activity) => format!("krayin:activity:{activity}"),
        None => state.refs.to_string(),
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

async fn customer(krayin: &Krayin<'_>, id: &CustomerId) -> Result<domain::customer::Customer, Refusal> {
    db::customers::find_one(krayin.db(), krayin.tenant(), &CustomerKey::Id(id.clone()))
        .await?
        .ok_or_else(|| Refusal::Failed(gone(format!("customer {id} no longer exists"))))
}

async fn conversation(krayin: &Krayin<'_>, id: &ConversationId) -> Result<Conversation, Refusal> {
    db::conversations::by_ids(krayin.db(), krayin.tenant(), &[id])
        .await?
        .pop()
        .ok_or_else(|| Refusal::Failed(gone(format!("conversation {id} no longer exists"))))
}

async fn follow_customer(krayin: &Krayin<'_>, id: CustomerId, event: EventType) -> Result<Outcome, Refusal> {
    let contact = Contact::from_customer(&customer(krayin, &id).await?);
    let key = ContactKey::Customer(id);
    if event == EventType::CustomerCreated {
        let (state, _) = krayin.ensure_contact(&key, &contact).await?;
        return done(&state, None);
    }
    krayin.update_contact(&key, &contact).await
}

/// The contact's Person and Lead for work about one of our customers' conversations.
async fn our_contact(krayin: &Krayin<'_>, id: &CustomerId) -> Result<(ContactKey, ContactState), Refusal> {
    let contact = Contact::from_customer(&customer(krayin, id).await?);
    let key = ContactKey::Customer(id.clone());
    let (state, _) = krayin.ensure_contact(&key, &contact).await?;
    Ok((key, state))
}

/// A conversation's activity is per spell of it: the first from its start, and a new one each
/// time the customer reopens it, so Krayin's timeline shows every exchange.
async fn follow_conversation(
    krayin: &Krayin<'_>,
    id: &ConversationId,
    event: EventType,
) -> Result<Outcome, Refusal> {
    let conversation = conversation(krayin, id).await?;
    let (key, mut state) = our_contact(krayin, &conversation.customer_id).await?;
    let local_id = activity::spell_id(&conversation);
    let local_id = local_id.as_str();
    let at = match conversation.reopen_count {
        0 => Timestamp::parse_rfc3339(&conversation.created_at).unwrap_or_else(runtime::now),
        _ => runtime::now(),
    };
    if event == EventType::ConversationStatusChanged {
        if conversation.status.is_ended() {
            let planned = activity::our_conversation_activity(&conversation, &state.refs, at);
            let activity = krayin.resolve(&key, &mut state, local_id, planned).await?;
            return done(&state, activity);
        }
        if conversation.reopen_count == 0 {
            return skipped("the conversation is not resolved: Krayin's activity stays as it is");
        }
        // Reopened: the new spell's activity, once.
        if !krayin.settings.sync_conversations {
            return skipped("Sync Conversations is off");
        }
        let planned = activity::our_conversation_activity(&conversation, &state.refs, at);
        let activity = krayin
            .conversation_activity(&key, &mut state, local_id, planned)
            .await?;
        return done(&state, activity);
    }
    let activity = if krayin.settings.sync_conversations {
        let planned = activity::our_conversation_activity(&conversation, &state.refs, at);
        krayin
            .conversation_activity(&key, &mut state, local_id, planned)
            .await?
    } else {
        None
    };
    krayin
        .progress(&key, &mut state, StageTrigger::ConversationCreated)
        .await?;
    if activity.is_none() && !krayin.settings.sync_conversations {
        return skipped("Sync Conversations is off");
    }
    done(&state, activity)
}

async fn follow_message(krayin: &Krayin<'_>, id: &MessageId) -> Result<Outcome, Refusal> {
    let message = db::messages::by_ids(krayin.db(), krayin.tenant(), &[id])
        .await?
        .pop()
        .ok_or_else(|| Refusal::Failed(gone(format!("message {id} no longer exists"))))?;
    let conversation = conversation(krayin, &message.conversation_id).await?;
    let customer = customer(krayin, &message.customer_id).await?;
    let key = ContactKey::Customer(customer.id.clone());
    let (mut state, _) = krayin
        .ensure_contact(&key, &Contact::from_customer(&customer))
        .await?;
    let activity = if krayin.settings.sync_messages {
        let sender = match message.direction {
            Direction::Inbound => customer.name.clone(),
            Direction::Outbound => conversation
                .assignee
                .clone()
                .unwrap_or_else(|| "Agent".to_owned()),
        };
        let links = attachment_links(krayin.env, krayin.db(), krayin.tenant(), &message).await?;
        let planned =
            activity::message_activity(&message, &sender, conversation.id.as_str(), &links, &state.refs);
        krayin.message_activity(id.as_str(), planned).await?
    } else {
        None
    };
    if message.direction == Direction::Outbound {
        krayin
            .progress(&key, &mut state, StageTrigger::FirstResponse)
            .await?;
    }
    if activity.is_none() && !krayin.settings.sync_messages {
        return skipped("Sync Messages is off");
    }
    done(&state, activity)
}

/// An internal note, or an escalation's reason, as a note on the contact's lead, under `title`.
async fn note(krayin: &Krayin<'_>, title: &str, id: &ConversationId, text: &str) -> Result<Outcome, Refusal> {
    let conversation = conversation(krayin, id).await?;
    let (_, state) = our_contact(krayin, &conversation.customer_id).await?;
    let Some(planned) =
        activity::note_activity(title, conversation.id.as_str(), text, &state.refs, runtime::now())
    else {
        return skipped("the contact has no Krayin person or lead");
    };
    let activity = krayin.create_activity(&planned).await?;
    done(&state, Some(activity))
}

/// Follows a Chatwoot event: the delivery as it was verified is the work's input.
async fn follow_chatwoot(krayin: &Krayin<'_>, event: &ChatwootEvent) -> Result<Outcome, Refusal> {
    let Some(chatwoot_contact) = event.contact() else {
        return skipped("the event names no Chatwoot contact");
    };
    let key = ContactKey::Chatwoot(chatwoot_contact.id);
    let contact = Contact::from_chatwoot(chatwoot_contact);
    let now = runtime::now();
    match &event {
        ChatwootEvent::ContactCreated(_) => {
            let (state, _) = krayin.ensure_contact(&key, &contact).await?;
            done(&state, None)
        }
        ChatwootEvent::ContactUpdated(_) => krayin.update_contact(&key, &contact).await,
        ChatwootEvent::ConversationCreated(conversation) => {
            let (mut state, _) = krayin.ensure_contact(&key, &contact).await?;
            let local_id = format!("chatwoot:conversation:{}", conversation.id);
            let activity = if krayin.settings.sync_conversations {
                let planned = activity::conversation_activity(conversation, &state.refs, now);
                krayin
                    .conversation_activity(&key, &mut state, &local_id, planned)
                    .await?
            } else {
                None
            };
            krayin
                .progress(&key, &mut state, StageTrigger::ConversationCreated)
                .await?;
            if conversation.status == "resolved" {
                // Its activity was made done; the lead moves on as for a resolve.
                krayin.progress(&key, &mut state, StageTrigger::Resolved).await?;
            }
            if activity.is_none() && !krayin.settings.sync_conversations {
                return skipped("Sync Conversations is off");
            }
            done(&state, activity)
        }
        ChatwootEvent::ConversationUpdated(conversation)
        | ChatwootEvent::ConversationStatusChanged(conversation) => {
            let resolved = conversation.status == "resolved";
            if !resolved && !krayin.settings.sync_conversations {
                return skipped("Sync Conversations is off");
            }
            let (mut state, _) = krayin.ensure_contact(&key, &contact).await?;
            let local_id = format!("chatwoot:conversation:{}", conversation.id);
            let planned = activity::conversation_activity(conversation, &state.refs, now);
            let activity = if resolved {
                krayin.resolve(&key, &mut state, &local_id, planned).await?
            } else {
                // Assigned, reopened, its attributes changed: the activity says so now.
                krayin
                    .update_conversation_activity(&key, &mut state, &local_id, planned)
                    .await?
            };
            done(&state, activity)
        }
        ChatwootEvent::MessageCreated(message) => {
            if message.message_type == chatwoot::MessageType::Activity {
                return skipped("Chatwoot's own activity messages are not part of the exchange");
            }
            let (mut state, _) = krayin.ensure_contact(&key, &contact).await?;
            let activity = if krayin.settings.sync_messages {
                let planned = activity::chatwoot_message_activity(message, &state.refs, now);
                krayin
                    .message_activity(&format!("chatwoot:message:{}", message.id), planned)
                    .await?
            } else {
                None
            };
            if activity::is_agent_response(message) {
                krayin
                    .progress(&key, &mut state, StageTrigger::FirstResponse)
                    .await?;
            }
            if activity.is_none() && !krayin.settings.sync_messages {
                return skipped("Sync Messages is off");
            }
            done(&state, activity)
        }
        ChatwootEvent::Other(name) => skipped(&format!("Chatwoot's {name} is not synced")),
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
    use crate::runtime::native::{Outbound, Reply};
    use crate::testing::Fixture;
    use domain::crm::budget::Budget;
    use domain::crm::chatwoot::webhook;
    use domain::crm::work::ConnectorKind;
    use domain::ids::ConnectorId;
    use serde_json::json;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    const HOST: &str = "crm.example.com";

    fn fail(error: impl std::fmt::Debug) -> ! {
        panic!("{error:?}")
    }

    /// A Krayin connector of a new business, stored as the admin API stores it: `settings` over
    /// Krayin's address, no budget.
    async fn connector(fixture: &Fixture, settings: Value) -> Connector {
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
    async fn holding(fixture: &Fixture, connector: &Connector, id: u64, external_id: Option<&str>) {
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

    async fn kept(fixture: &Fixture, connector: &Connector, id: u64) -> Option<Kept> {
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
    async fn follow(fixture: &Fixture, connector: &Connector, payload: Value) -> Result<Outcome, Refusal> {
        let event = webhook::parse(payload.to_string().as_bytes()).unwrap_or_else(|e| fail(e));
        let krayin = Krayin::new(&fixture.env, &fixture.db, connector).unwrap_or_else(|e| fail(e));
        follow_chatwoot(&krayin, &event).await
    }

    fn contact(id: u64) -> Value {
        json!({ "event": "contact_created", "id": id, "name": "Ann Lee", "email": "ann@acme.com" })
    }

    fn conversation(event: &str, id: u64, contact: u64, channel: &str) -> Value {
        json!({ "event": event, "id": id, "status": "open", "channel": channel,
                "meta": { "sender": { "id": contact, "name": "Ann Lee", "email": "ann@acme.com" } } })
    }

    fn message(id: u64, contact: u64, channel: &str) -> Value {
        json!({ "event": "message_created", "id": id, "content": "Hello", "message_type": "incoming",
                "private": false, "sender": { "id": contact, "name": "Ann Lee", "type": "contact" },
                "conversation": { "id": 5, "status": "open", "channel": channel,
                                  "meta": { "sender": { "id": contact, "name": "Ann Lee" } } } })
    }

    fn pipelines() -> Reply {
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

    fn person(id: u64, email: &str) -> Value {
        json!({ "id": id, "name": "Ann Lee", "emails": [{ "value": email, "label": "work" }],
                "contact_numbers": [{ "value": "", "label": "work" }] })
    }

    fn created(id: u64) -> Reply {
        Reply::json(
            200,
            &json!({ "data": { "id": id }, "message": "Created successfully." }),
        )
    }

    fn taken(field: &str) -> Reply {
        let message = "The value has already been taken.";
        Reply::json(
            422,
            &json!({ "message": message, "errors": { field: [message] } }),
        )
    }

    /// `METHOD /path` of each call Krayin got.
    fn calls(fixture: &Fixture) -> Vec<String> {
        fixture
            .stack
            .calls_to(HOST)
            .iter()
            .map(|call| format!("{} {}", call.method, call.path()))
            .collect()
    }

    fn body_of(fixture: &Fixture, method: &str, path: &str) -> Value {
        fixture
            .stack
            .calls_to(HOST)
            .iter()
            .find(|call| call.method == method && call.path() == path)
            .map(Outbound::json)
            .unwrap_or_else(|| panic!("no {method} {path}: {:?}", calls(fixture)))
    }

    fn synced_to(outcome: &Result<Outcome, Refusal>) -> String {
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
    fn a_person_is_found_by_its_exact_email_among_the_partial_matches_of_krayins_search() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({})).await;
            holding(&fixture, &connector, 42, None).await;
            fixture
                .stack
                .partner(HOST, |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(
                        200,
                        &json!({ "data": [person(5, "joann@acme.com"), person(7, " ANN@acme.com")] }),
                    ),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => created(11),
                    _ => Reply::status(500),
                });
            let outcome = follow(&fixture, &connector, contact(42)).await;
            assert_eq!(synced_to(&outcome), "krayin:person:7|krayin:lead:11");
            assert!(
                !calls(&fixture).contains(&"POST /api/v1/contacts/persons".to_owned()),
                "no second person: {:?}",
                calls(&fixture)
            );
            let lead = body_of(&fixture, "POST", "/api/v1/leads");
            assert_eq!(
                (&lead["person_id"], &lead["lead_pipeline_stage_id"]),
                (&json!(7), &json!(1)),
                "on the person found, in the default pipeline's first stage"
            );
            let kept = kept(&fixture, &connector, 42).await;
            assert_eq!(
                kept.and_then(|kept| kept.external_id).as_deref(),
                Some("krayin:person:7|krayin:lead:11")
            );
        });
    }

    #[test]
    fn a_person_krayin_refuses_as_taken_is_looked_for_again_and_used_when_someone_made_it_meanwhile() {
        for (winner, expected) in [(true, Some("krayin:person:9|krayin:lead:11")), (false, None)] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({})).await;
                holding(&fixture, &connector, 42, None).await;
                let searches = Rc::new(Cell::new(0));
                let counted = Rc::clone(&searches);
                fixture
                    .stack
                    .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                        ("GET", "/api/v1/contacts/persons/search") => {
                            counted.set(counted.get() + 1);
                            let found = if winner && counted.get() > 1 {
                                vec![person(9, "ann@acme.com")]
                            } else {
                                Vec::new()
                            };
                            Reply::json(200, &json!({ "data": found }))
                        }
                        ("POST", "/api/v1/contacts/persons") => taken("emails.0.value"),
                        ("GET", "/api/v1/settings/pipelines") => pipelines(),
                        ("POST", "/api/v1/leads") => created(11),
                        _ => Reply::status(500),
                    });
                let outcome = follow(&fixture, &connector, contact(42)).await;
                match expected {
                    Some(id) => assert_eq!(synced_to(&outcome), id, "winner found"),
                    None => assert!(
                        matches!(
                            &outcome,
                            Err(Refusal::Failed(CallFailure::Status { status: 422, reason, .. }))
                                if reason.contains("emails.0.value")
                        ),
                        "nobody found: Krayin's refusal stands: {outcome:?}"
                    ),
                }
                assert_eq!(searches.get(), 2, "searched before and after the create");
                let creates = calls(&fixture)
                    .iter()
                    .filter(|call| *call == "POST /api/v1/contacts/persons")
                    .count();
                assert_eq!(creates, 1, "created once");
            });
        }
    }

    #[test]
    fn an_organization_is_taken_by_its_exact_name_and_a_lost_race_to_create_it_finds_the_winner() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({ "sync_organizations": true })).await;
            holding(&fixture, &connector, 42, None).await;
            let lists = Rc::new(Cell::new(0));
            let counted = Rc::clone(&lists);
            fixture
                .stack
                .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/organizations") => {
                        counted.set(counted.get() + 1);
                        let mut found = vec![json!({ "id": 3, "name": "Acme Corp Ltd" })];
                        if counted.get() > 1 {
                            found.push(json!({ "id": 4, "name": "Acme Corp" }));
                        }
                        Reply::json(200, &json!({ "data": found }))
                    }
                    ("POST", "/api/v1/contacts/organizations") => taken("name"),
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(200, &json!({ "data": [] })),
                    ("POST", "/api/v1/contacts/persons") => created(7),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => created(11),
                    _ => Reply::status(500),
                });
            let mut payload = contact(42);
            payload["additional_attributes"] = json!({ "company_name": "Acme Corp" });
            let outcome = follow(&fixture, &connector, payload).await;
            assert_eq!(
                synced_to(&outcome),
                "krayin:person:7|krayin:lead:11|krayin:organization:4"
            );
            let search = fixture
                .stack
                .calls_to(HOST)
                .into_iter()
                .find(|call| call.path() == "/api/v1/contacts/organizations")
                .map(|call| call.query().get("name").map(str::to_owned));
            assert_eq!(search, Some(Some("Acme Corp".to_owned())), "an exact filter");
            let person = body_of(&fixture, "POST", "/api/v1/contacts/persons");
            assert_eq!(person["organization_id"], 4, "not Acme Corp Ltd: {person}");
            assert!(person.get("organization_name").is_none(), "{person}");
        });
    }

    #[test]
    fn a_company_krayin_cannot_be_searched_by_is_left_to_krayin_to_find_or_create_by_name() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({ "sync_organizations": true })).await;
            holding(&fixture, &connector, 42, None).await;
            fixture
                .stack
                .partner(HOST, |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/contacts/persons/search") => Reply::json(200, &json!({ "data": [] })),
                    ("POST", "/api/v1/contacts/persons") => created(7),
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("POST", "/api/v1/leads") => created(11),
                    _ => Reply::status(500),
                });
            let mut payload = contact(42);
            payload["additional_attributes"] = json!({ "company_name": "Acme, Inc." });
            let outcome = follow(&fixture, &connector, payload).await;
            assert_eq!(synced_to(&outcome), "krayin:person:7|krayin:lead:11");
            assert!(
                !calls(&fixture).iter().any(|call| call.contains("/organizations")),
                "a comma would split Krayin's filter: {:?}",
                calls(&fixture)
            );
            let person = body_of(&fixture, "POST", "/api/v1/contacts/persons");
            assert_eq!(person["organization_name"], "Acme, Inc.");
        });
    }

    #[test]
    fn an_update_keeps_the_lead_in_its_stage_and_leaves_a_lead_with_products_as_it_is() {
        for (products, description) in [
            (json!([]), "a lead without products"),
            (json!([{ "id": 1 }]), "a lead with products"),
        ] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({})).await;
                holding(&fixture, &connector, 42, Some("krayin:person:7|krayin:lead:11")).await;
                let lead = json!({ "data": { "id": 11, "lead_pipeline_id": 1, "lead_pipeline_stage_id": 3,
                                             "lead_products": products } });
                fixture
                    .stack
                    .partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                        ("PUT", "/api/v1/contacts/persons/7") => created(7),
                        ("GET", "/api/v1/leads/11") => Reply::json(200, &lead),
                        ("PUT", "/api/v1/leads/11") => created(11),
                        _ => Reply::status(500),
                    });
                let mut payload = contact(42);
                payload["event"] = json!("contact_updated");
                let outcome = follow(&fixture, &connector, payload).await;
                let updated_lead = calls(&fixture).contains(&"PUT /api/v1/leads/11".to_owned());
                if products.as_array().is_some_and(Vec::is_empty) {
                    assert_eq!(
                        synced_to(&outcome),
                        "krayin:person:7|krayin:lead:11",
                        "{description}"
                    );
                    let body = body_of(&fixture, "PUT", "/api/v1/leads/11");
                    assert_eq!(
                        body["lead_pipeline_stage_id"], 3,
                        "{description}: sent in its stage, or Krayin moves it back to the first"
                    );
                } else {
                    assert!(
                        matches!(&outcome, Ok(Outcome::Skipped(reason)) if reason.contains("products")),
                        "{description}: {outcome:?}"
                    );
                    assert!(
                        !updated_lead,
                        "{description}: Krayin's update would delete its products"
                    );
                }
                assert!(
                    calls(&fixture).contains(&"PUT /api/v1/contacts/persons/7".to_owned()),
                    "{description}: the person is updated either way"
                );
            });
        }
    }

    #[test]
    fn a_lead_moves_forward_along_its_own_pipeline_once_per_trigger_and_never_back() {
        let cases = [
            (
                1,
                1,
                Some(2),
                "from the first stage it moves on to the configured one",
            ),
            (1, 4, None, "a salesperson's move past it is never undone"),
            (
                2,
                7,
                None,
                "a lead a salesperson put in another pipeline stays there",
            ),
        ];
        for (pipeline, stage, moved_to, description) in cases {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(
                    &fixture,
                    json!({ "pipeline_id": 1, "stage_progression": true, "stage_on_conversation_created": 2,
                            "sync_conversations": false }),
                )
                .await;
                holding(&fixture, &connector, 42, Some("krayin:person:7|krayin:lead:11")).await;
                let lead = json!({ "data": { "id": 11, "lead_pipeline_id": pipeline, "lead_pipeline_stage_id": stage } });
                fixture.stack.partner(HOST, move |call| match (call.method.as_str(), call.path()) {
                    ("GET", "/api/v1/settings/pipelines") => pipelines(),
                    ("GET", "/api/v1/leads/11") => Reply::json(200, &lead),
                    ("PUT", "/api/v1/leads/stage/edit/11") => created(11),
                    _ => Reply::status(500),
                });
                let first = follow(&fixture, &connector, conversation("conversation_created", 5, 42, "Channel::Api")).await;
                assert!(
                    matches!(first, Ok(Outcome::Skipped(_))),
                    "{description}: conversations are not synced: {first:?}"
                );
                let moves: Vec<Value> = fixture
                    .stack
                    .calls_to(HOST)
                    .iter()
                    .filter(|call| call.path() == "/api/v1/leads/stage/edit/11")
                    .map(Outbound::json)
                    .collect();
                let expected: Vec<Value> = moved_to
                    .map(|stage| json!({ "lead_pipeline_stage_id": stage }))
                    .into_iter()
                    .collect();
                assert_eq!(moves, expected, "{description}");
                let spent = kept(&fixture, &connector, 42).await.and_then(|kept| kept.stages_done);
                assert_eq!(spent.as_deref(), Some("conversation_created"), "{description}");

                let before = calls(&fixture).len();
                follow(&fixture, &connector, conversation("conversation_created", 6, 42, "Channel::Api"))
                    .await
                    .unwrap_or_else(|e| fail(e));
                assert_eq!(
                    calls(&fixture).len(),
                    before,
                    "{description}: a second conversation asks Krayin nothing"
                );
            });
        }
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
    fn a_finished_exchange_of_a_type_krayin_makes_not_done_is_marked_done_and_a_note_is_not() {
        for (channel, kind, marked) in [
            ("Channel::Whatsapp", "call", true),
            ("Channel::Email", "email", true),
            ("Channel::WebWidget", "note", false),
        ] {
            let fixture = Fixture::new();
            fixture.run(async {
                let connector = connector(&fixture, json!({ "sync_messages": true })).await;
                holding(&fixture, &connector, 42, Some("krayin:person:7|krayin:lead:11")).await;
                fixture
                    .stack
                    .partner(HOST, |call| match (call.method.as_str(), call.path()) {
                        ("POST", "/api/v1/activities") => created(31),
                        ("PUT", "/api/v1/activities/31") => created(31),
                        _ => Reply::status(500),
                    });
                let outcome = follow(&fixture, &connector, message(900, 42, channel)).await;
                assert_eq!(synced_to(&outcome), "krayin:activity:31", "{channel}");
                let activity = body_of(&fixture, "POST", "/api/v1/activities");
                assert_eq!(activity["type"], kind, "{channel}");
                assert_eq!(activity["lead_id"], 11, "{channel}: on the lead");
                assert_eq!(
                    activity["participants"],
                    json!({ "persons": [7] }),
                    "{channel}: with the person"
                );
                assert_eq!(
                    activity.get("schedule_from").is_some(),
                    kind != "note",
                    "{channel}: Krayin wants a schedule of every type but a note"
                );
                let marks: Vec<Value> = fixture
                    .stack
                    .calls_to(HOST)
                    .iter()
                    .filter(|call| call.method == "PUT")
                    .map(Outbound::json)
                    .collect();
                let expected = if marked {
                    vec![json!({ "is_done": 1 })]
                } else {
                    Vec::new()
                };
                assert_eq!(marks, expected, "{channel}");

                let again = follow(&fixture, &connector, message(900, 42, channel)).await;
                assert_eq!(synced_to(&again), "krayin:activity:31", "{channel}: linked once");
                assert_eq!(
                    calls(&fixture)
                        .iter()
                        .filter(|call| *call == "POST /api/v1/activities")
                        .count(),
                    1,
                    "{channel}: the same message makes no second activity"
                );
            });
        }
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

    #[test]
    fn chatwoots_own_activity_messages_are_skipped_without_asking_krayin() {
        let fixture = Fixture::new();
        fixture.run(async {
            let connector = connector(&fixture, json!({ "sync_messages": true })).await;
            holding(&fixture, &connector, 42, None).await;
            let mut payload = message(901, 42, "Channel::Whatsapp");
            payload["message_type"] = json!("activity");
            payload["sender"] = Value::Null;
            let outcome = follow(&fixture, &connector, payload).await;
            assert!(matches!(outcome, Ok(Outcome::Skipped(_))), "{outcome:?}");
            assert!(calls(&fixture).is_empty(), "{:?}", calls(&fixture));
        });
    }
}
