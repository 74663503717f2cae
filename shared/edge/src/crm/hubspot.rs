//! HubSpot's side of the sync pipeline: our customers as contacts, their messages on the
//! contact's timeline, escalations as tickets. What a request looks like and what an answer means
//! is pure (`domain::crm::hubspot`); this module decides which calls a piece of work needs, makes
//! them through the connector's budget, and keeps the ids HubSpot gives our records.
//!
//! Every step is safe to repeat: a record already linked is not made again, and a contact is
//! written by batch upsert keyed by a unique property (the business's own id property, else the
//! email), which makes it or finds it in one call whatever an earlier try did.

use crate::Env;
use crate::crm::client::{Answer, Client, Refusal};
use crate::crm::{
    Connected, Connection, ConnectionTest, Live, Outcome, attachment_links, refused_test, skipped, synced,
    unreadable,
};
use crate::db::crm_connectors::Connector;
use crate::db::{self, Db, crm_links};
use domain::crm::hubspot::api::{self, Association, Object, Pipeline};
use domain::crm::hubspot::settings::{DEFAULT_PIPELINE, DEFAULT_STAGE, HubSpotSettings, TicketPriority};
use domain::crm::hubspot::timeline;
use domain::crm::request::ApiRequest;
use domain::crm::retry::CallFailure;
use domain::crm::work::{LinkKind, Routing};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::json::Malformed;
use domain::webhooks::EventType;
use serde_json::{Map, Value, json};

/// Messages of a conversation put in an escalation's ticket (the newest that fit).
const HISTORY_MESSAGES: usize = 200;

/// A HubSpot connector ready to call.
pub type HubSpot<'a> = Connection<'a, HubSpotSettings>;

impl HubSpot<'_> {
    /// Makes the call and reads what a success carries with `parse`; anything else is a failure
    /// with what HubSpot said (the client hands 404s and 3xx back as answers).
    async fn read<T>(
        &self,
        request: &ApiRequest,
        parse: fn(&[u8]) -> Result<T, Malformed>,
    ) -> Result<T, Refusal> {
        let answer = self.client.send(request).await?;
        if !answer.is_success() {
            return Err(failure(&answer));
        }
        parse(&answer.body).map_err(|reason| unreadable("HubSpot", reason))
    }

    /// Makes the call and reads the object a success carries.
    async fn object(&self, request: &ApiRequest) -> Result<Object, Refusal> {
        self.read(request, api::parse_object).await
    }

    /// Our customer's contact id, finding or making the contact; `true` when this call wrote it
    /// (its properties are then current).
    async fn ensure_contact(&self, id: &CustomerId) -> Result<(String, bool), Refusal> {
        if let Some(contact) = self.linked(LinkKind::Customer, id.as_str()).await? {
            return Ok((contact, false));
        }
        let customer = self.customer(id).await?;
        let contact = self.write_contact(&customer).await?;
        Ok((self.link(LinkKind::Customer, id.as_str(), &contact).await?, true))
    }

    /// Writes the customer's properties to the contact that is theirs, making it when there is
    /// none, and (`sync_companies`) associates it with its email's company: upserted by email, else by the business's unique id property (one call, which cannot
    /// make a second contact); a customer with a phone alone and no such property is looked for
    /// by phone (a search that sees contacts made until a few seconds ago) and made when not found.
    async fn write_contact(&self, customer: &Customer) -> Result<String, Refusal> {
        let contact = self.upsert_contact(customer).await?;
        if self.settings.sync_companies
            && let Some(domain) = customer.email.as_deref().and_then(timeline::company_domain)
        {
            self.join_company(&contact, &domain).await?;
        }
        Ok(contact)
    }

    /// Associates the contact with the company HubSpot has at `domain`, making it (associated as
    /// it is made) when there is none. Two new contacts of a domain HubSpot has no company for,
    /// written within the seconds its search lags behind, can make it twice.
    async fn join_company(&self, contact: &str, domain: &str) -> Result<(), Refusal> {
        let found = self
            .read(&api::search_companies(domain), api::parse_search)
            .await?;
        match found.into_iter().next() {
            Some(company) => {
                self.read(&api::associate_company(contact, &company.id), |_| Ok(()))
                    .await
            }
            None => self
                .object(&api::create_company(domain, contact))
                .await
                .map(|_| ()),
        }
    }

    async fn upsert_contact(&self, customer: &Customer) -> Result<String, Refusal> {
        let properties = timeline::contact_properties(customer, &self.settings);
        // The email first: a contact HubSpot had before the connector (by email) is the customer's,
        // and gets our id in the business's property on the way.
        let email = customer
            .email
            .as_deref()
            .map(str::trim)
            .filter(|email| !email.is_empty());
        let key = match (email, &self.settings.customer_id_property) {
            (Some(email), _) => Some(("email", email)),
            (None, Some(property)) => Some((property.as_str(), customer.id.as_str())),
            (None, None) => None,
        };
        if let Some((property, value)) = key {
            let upsert = api::upsert_contact(property, value, &properties);
            return Ok(self.read(&upsert, api::parse_upserted).await?.id);
        }
        if let Some(phone) = properties.get("phone").and_then(Value::as_str) {
            let found = self
                .read(&api::search_contacts("phone", phone), api::parse_search)
                .await?;
            if let Some(contact) = found.into_iter().next() {
                self.object(&api::update_contact(&contact.id, &properties))
                    .await?;
                return Ok(contact.id);
            }
        }
        Ok(self.object(&api::create_contact(&properties)).await?.id)
    }

    /// The account's details, read now and kept on the connector (its CRM cache, which a change
    /// of the connector forgets).
    async fn account(&self) -> Result<Value, Refusal> {
        let account = self.read(&api::account_details(), api::parse_account).await?;
        self.keep_read(&account).await?;
        Ok(account)
    }

    /// The account's ticket pipelines and their stages.
    async fn pipelines(&self) -> Result<Vec<Pipeline>, ApiError> {
        self.read(&api::ticket_pipelines(), api::parse_pipelines)
            .await
            .map_err(|refusal| super::refusal_error("HubSpot", refusal))
    }

    /// The ticket an escalation of the conversation made, if any.
    async fn ticket_of(&self, conversation: &ConversationId) -> Result<Option<String>, Refusal> {
        self.linked(LinkKind::Conversation, conversation.as_str()).await
    }

    /// A note on the contact's timeline, and on the ticket when there is one.
    async fn add_note(&self, contact: &str, ticket: Option<&str>, body: &str) -> Result<Object, Refusal> {
        let mut associations = vec![(Association::NoteToContact, contact)];
        if let Some(ticket) = ticket {
            associations.push((Association::NoteToTicket, ticket));
        }
        let at = crate::runtime::now().to_rfc3339();
        self.object(&api::create_object(
            "notes",
            timeline::note_properties(body, &at),
            &associations,
        ))
        .await
    }
}

/// The ticket pipelines of the connector's HubSpot account (through its budget), for its webhook
/// receiver to tell a closed stage from an open one.
pub async fn ticket_pipelines(env: &Env, db: &Db, connector: &Connector) -> Result<Vec<Pipeline>, ApiError> {
    let hubspot = HubSpot::new(env, db, connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    hubspot.pipelines().await
}

/// The HubSpot account (portal) the connector's credentials reach, for its webhook receiver to
/// act only on that account's events: as kept from the last read of the account's details, else
/// read now (through its budget) and kept.
pub async fn portal_id(env: &Env, db: &Db, connector: &Connector) -> Result<u64, ApiError> {
    if let Some(portal) = connector.crm_cache.as_ref().and_then(api::portal_of) {
        return Ok(portal);
    }
    let hubspot = HubSpot::new(env, db, connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    let account = hubspot
        .account()
        .await
        .map_err(|refusal| super::refusal_error("HubSpot", refusal))?;
    api::portal_of(&account)
        .ok_or_else(|| ApiError::crm_failed("HubSpot's account details carry no portalId"))
}

/// What HubSpot said in an answer that is not a success, as the call's failure.
fn failure(answer: &Answer) -> Refusal {
    Refusal::Failed(CallFailure::Status {
        status: answer.status,
        wait: None,
        reason: api::error_reason(answer.status, &answer.body),
    })
}

impl Connected for domain::crm::hubspot::HubSpot {
    type Live<'a> = HubSpot<'a>;

    fn connect<'a>(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<HubSpot<'a>, String> {
        HubSpot::new(env, db, connector)
    }
}

impl<'a> Live<'a> for HubSpot<'a> {
    async fn erase(&self, crm_id: &str) -> Result<Outcome, Refusal> {
        let answer = self.client.send(&api::gdpr_delete_contact(crm_id)).await?;
        super::erased(&answer, crm_id, "HubSpot", failure)
    }

    fn client(&mut self) -> &mut Client<'a> {
        &mut self.client
    }

    async fn follow_customer(
        &self,
        _retrying: bool,
        id: &CustomerId,
        event: EventType,
    ) -> Result<Outcome, Refusal> {
        let (contact, written) = self.ensure_contact(id).await?;
        if written || event == EventType::CustomerCreated {
            return synced(contact);
        }
        let customer = self.customer(id).await?;
        let properties = timeline::contact_properties(&customer, &self.settings);
        let answer = self
            .client
            .send(&api::update_contact(&contact, &properties))
            .await?;
        if answer.status != 404 {
            return if answer.is_success() {
                synced(contact)
            } else {
                Err(failure(&answer))
            };
        }
        // Deleted in HubSpot since: the link is forgotten and the contact made again.
        crm_links::unlink(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            LinkKind::Customer,
            id.as_str(),
            &contact,
        )
        .await?;
        synced(self.ensure_contact(id).await?.0)
    }

    /// HubSpot keeps a chat as its messages on the contact's timeline: a new conversation makes
    /// sure its contact is there; its status and assignee have no HubSpot record to change.
    async fn follow_conversation(
        &self,
        _retrying: bool,
        id: &ConversationId,
        event: EventType,
    ) -> Result<Outcome, Refusal> {
        if event != EventType::ConversationCreated {
            return skipped(
                "HubSpot keeps no conversation record: its messages are on the contact's timeline",
            );
        }
        let conversation = self.conversation(id).await?;
        synced(self.ensure_contact(&conversation.customer_id).await?.0)
    }

    async fn follow_message(&self, _retrying: bool, id: &MessageId) -> Result<Outcome, Refusal> {
        if !self.settings.sync_messages {
            return skipped("message sync is off (settings.sync_messages)");
        }
        if let Some(record) = self.linked(LinkKind::Message, id.as_str()).await? {
            return synced(record);
        }
        let message = self.message(id).await?;
        let (contact, _) = self.ensure_contact(&message.customer_id).await?;
        let files = attachment_links(self.env, self.db(), self.tenant(), &message).await?;
        let (engagement, properties) = timeline::engagement_properties(&message, &files);
        let made = self
            .object(&api::create_object(
                engagement.object(),
                properties,
                &[(engagement.to_contact(), &contact)],
            ))
            .await?;
        synced(self.link(LinkKind::Message, id.as_str(), &made.id).await?)
    }

    /// A ticket in the configured pipeline and stage, tied to the contact, with the chat history
    /// as its description; a conversation escalated again gets a note on its ticket (and the new
    /// priority) rather than a second ticket.
    async fn escalate(
        &self,
        _retrying: bool,
        id: &ConversationId,
        reason: &str,
        routing: &Routing,
    ) -> Result<Outcome, Refusal> {
        if !self.settings.ticket_creation {
            return skipped("ticket creation is off (settings.ticket_creation)");
        }
        let conversation = self.conversation(id).await?;
        let (contact, _) = self.ensure_contact(&conversation.customer_id).await?;
        if let Some(ticket) = self.ticket_of(id).await? {
            // Only what the new escalation asks for: a ticket an agent raised keeps its priority.
            let asked = routing.priority.map(TicketPriority::of);
            self.object(&api::update_ticket(
                &ticket,
                routed(asked, routing.team.as_deref()),
            ))
            .await?;
            self.add_note(
                &contact,
                Some(&ticket),
                &format!("Escalated again: {}", reason.trim()),
            )
            .await?;
            return synced(ticket);
        }
        let priority = routing
            .priority
            .map_or(self.settings.ticket_priority, TicketPriority::of);
        let history =
            db::messages::of_conversations(self.db(), self.tenant(), &[id], HISTORY_MESSAGES).await?;
        let properties = timeline::ticket_properties(
            &self.settings,
            reason,
            &history,
            priority,
            routing.team.as_deref(),
        );
        let ticket = self
            .object(&api::create_object(
                "tickets",
                properties,
                &[(Association::TicketToContact, &contact)],
            ))
            .await?;
        synced(self.link(LinkKind::Conversation, id.as_str(), &ticket.id).await?)
    }

    async fn change_escalation(&self, id: &ConversationId, routing: &Routing) -> Result<Outcome, Refusal> {
        let Some(ticket) = self.ticket_of(id).await? else {
            return skipped("the conversation has no HubSpot ticket: its escalation made none");
        };
        let priority = routing.priority.map(TicketPriority::of);
        self.object(&api::update_ticket(
            &ticket,
            routed(priority, routing.team.as_deref()),
        ))
        .await?;
        synced(ticket)
    }

    /// A note on the contact's timeline, and on the conversation's ticket when it has one.
    async fn note(&self, _retrying: bool, id: &ConversationId, body: &str) -> Result<Outcome, Refusal> {
        let conversation = self.conversation(id).await?;
        let (contact, _) = self.ensure_contact(&conversation.customer_id).await?;
        let ticket = self.ticket_of(id).await?;
        synced(self.add_note(&contact, ticket.as_deref(), body).await?.id)
    }

    async fn test_connection(&self) -> Result<ConnectionTest, ApiError> {
        match self.account().await {
            Ok(account) => Ok(ConnectionTest::passed(account)),
            Err(refusal) => refused_test("HubSpot", refusal),
        }
    }

    /// With ticket creation on, a pipeline, stage or owner other than the account's own first
    /// ones (pipeline 0, stage 1, no owner: what every account starts with) is checked against
    /// HubSpot's, so that saving the defaults needs no call.
    async fn check_settings(&self) -> Result<Option<Value>, ApiError> {
        let settings = &self.settings;
        let defaults = settings.ticket_pipeline == DEFAULT_PIPELINE
            && settings.ticket_stage == DEFAULT_STAGE
            && settings.ticket_owner_id.is_none();
        if !settings.ticket_creation || defaults {
            return Ok(None);
        }
        let pipelines = self.pipelines().await?;
        let owners = match self.settings.ticket_owner_id {
            None => Vec::new(),
            Some(_) => self
                .read(&api::owners(), api::parse_owners)
                .await
                .map_err(|refusal| super::refusal_error("HubSpot", refusal))?,
        };
        self.settings.check_tickets(&pipelines, &owners)?;
        Ok(None)
    }
}

/// A ticket's new priority and team, as properties (only those given).
fn routed(priority: Option<TicketPriority>, team: Option<&str>) -> Value {
    let mut properties = Map::new();
    if let Some(priority) = priority {
        properties.insert("hs_ticket_priority".to_owned(), json!(priority.as_str()));
    }
    if let Some(team) = team {
        properties.insert("hubspot_team_id".to_owned(), json!(team));
    }
    Value::Object(properties)
}
