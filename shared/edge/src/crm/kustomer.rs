//! Kustomer's side of the sync pipeline, and the calls the API makes to it directly (the
//! connection test, teams, a customer's history). What a request looks like and what an answer
//! means is pure (`domain::crm::kustomer`); this module decides which calls a piece of work needs,
//! makes them through the connector's budget, and keeps the ids Kustomer gives our records.
//!
//! Every step is safe to repeat: a record already linked is not created again, and a customer a
//! crashed try may have created is looked up by the external id we give every customer.

use crate::Env;
use crate::crm::client::{Answer, Client, Refusal};
use crate::crm::{
    Connected, Connection, ConnectionTest, Live, Outcome, attachment_links, gone, refusal_error, skipped,
    synced, unreadable,
};
use crate::db::Db;
use crate::db::crm_connectors::Connector;
use crate::db::{self, crm_links};
use crate::runtime;
use domain::crm::kustomer::api::{self, ApiRequest, NewConversation, Resource};
use domain::crm::kustomer::escalation;
use domain::crm::kustomer::permissions::{self, CurrentToken};
use domain::crm::kustomer::settings::{KustomerSettings, Priority};
use domain::crm::retry::CallFailure;
use domain::crm::work::{LinkKind, Routing};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::lookup::CustomerKey;
use domain::message::Conversation;
use domain::time::Timestamp;
use domain::webhooks::EventType;

/// Messages of a conversation included in an escalation's note (the note keeps the newest that fit).
const HISTORY_MESSAGES: usize = 200;

/// A Kustomer connector ready to call.
pub type Kustomer<'a> = Connection<'a, KustomerSettings>;

impl Kustomer<'_> {
    /// Makes the call; an answer that is not a success (a 404, a 3xx) is returned as it is.
    pub async fn send(&self, request: &ApiRequest) -> Result<Answer, Refusal> {
        self.client.send(request).await
    }

    /// Makes the call and reads the resource a success carries; anything else is a failure with
    /// what Kustomer said.
    pub async fn resource(&self, request: &ApiRequest) -> Result<Resource, Refusal> {
        let answer = self.send(request).await?;
        expect_resource(&answer)
    }

    /// Our customer's Kustomer id, finding or creating them: linked already; found by email
    /// (Customer Lookup); found by the external id we give every customer when an earlier try may
    /// have created them; otherwise created. `created` says whether this call created them.
    async fn ensure_customer(&self, id: &CustomerId, retried: bool) -> Result<(String, bool), Refusal> {
        if let Some(crm_id) = self.linked(LinkKind::Customer, id.as_str()).await? {
            return Ok((crm_id, false));
        }
        let Some(customer) =
            db::customers::find_one(self.db(), self.tenant(), &CustomerKey::Id(id.clone())).await?
        else {
            return Err(Refusal::Failed(gone(format!("customer {id} no longer exists"))));
        };
        let external_id = domain::crm::kustomer::external_id_of(&customer);
        if self.settings.customer_lookup
            && let Some(email) = customer.email.as_deref()
            && let Some(found) = self.find(&api::find_customer_by_email(email)).await?
        {
            return Ok((
                self.link(LinkKind::Customer, id.as_str(), &found.id).await?,
                false,
            ));
        }
        if retried
            && let Some(found) = self
                .find(&api::find_customer_by_external_id(&external_id))
                .await?
        {
            return Ok((
                self.link(LinkKind::Customer, id.as_str(), &found.id).await?,
                false,
            ));
        }
        let (body, _left_out) = self.settings.field_mapping.customer_body(&customer);
        let (created, made) = match self.send(&api::create_customer(body)).await {
            Ok(answer) => (expect_resource(&answer)?, true),
            // Kustomer has them already (their external id or email): the one our external id
            // finds is ours. The client returns a 409 as a failure, not as an answer.
            Err(Refusal::Failed(conflict @ CallFailure::Status { status: 409, .. })) => {
                let found = self
                    .find(&api::find_customer_by_external_id(&external_id))
                    .await?;
                (found.ok_or(Refusal::Failed(conflict))?, false)
            }
            Err(refusal) => return Err(refusal),
        };
        Ok((
            self.link(LinkKind::Customer, id.as_str(), &created.id).await?,
            made,
        ))
    }

    /// The resource a lookup finds, or None on its 404.
    async fn find(&self, request: &ApiRequest) -> Result<Option<Resource>, Refusal> {
        let answer = self.send(request).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        expect_resource(&answer).map(Some)
    }

    /// The team an escalation (or a new conversation) is given: the one asked for, else the
    /// default team when Auto Assignment is on.
    fn team_of<'r>(&'r self, routing: Option<&'r Routing>) -> Option<&'r str> {
        routing.and_then(|routing| routing.team.as_deref()).or_else(|| {
            self.settings
                .auto_assignment
                .then_some(self.settings.default_team_id.as_deref())
                .flatten()
        })
    }

    /// The priority an escalation gives its conversation: the one asked for, else the escalation
    /// priority of the settings.
    fn priority_of(&self, routing: &Routing) -> Priority {
        routing.priority.unwrap_or(self.settings.escalation_priority)
    }

    /// Our conversation's Kustomer id, creating the conversation (and its customer) when it has
    /// none; `as_escalation` (its reason and routing) creates it as an escalation does.
    async fn ensure_conversation(
        &self,
        conversation: &Conversation,
        retried: bool,
        as_escalation: Option<(&str, &Routing)>,
    ) -> Result<String, Refusal> {
        if let Some(crm_id) = self
            .linked(LinkKind::Conversation, conversation.id.as_str())
            .await?
        {
            return Ok(crm_id);
        }
        let (customer, _) = self.ensure_customer(&conversation.customer_id, retried).await?;
        let routing = as_escalation.map(|(_, routing)| routing);
        let team = self.team_of(routing);
        let name = match as_escalation {
            Some((reason, _)) => format!("Escalated: {}", reason.chars().take(200).collect::<String>()),
            None => api::conversation_name(conversation.channel),
        };
        let created = self
            .resource(&api::create_conversation(&NewConversation {
                customer: &customer,
                name,
                priority: match routing {
                    Some(routing) => self.priority_of(routing),
                    None => self.settings.default_priority,
                },
                team,
                external_id: Some(conversation.id.to_string()),
                tags: Vec::new(),
            }))
            .await?;
        self.link(LinkKind::Conversation, conversation.id.as_str(), &created.id)
            .await
    }

    /// The Kustomer id of a record of ours, finding or making it.
    async fn ensure(&self, record: Record<'_>, retried: bool) -> Result<String, Refusal> {
        match record {
            Record::Customer(id) => Ok(self.ensure_customer(id, retried).await?.0),
            Record::Conversation(conversation) => self.ensure_conversation(conversation, retried, None).await,
        }
    }

    /// Makes a call about a record of ours in Kustomer (`request` of its Kustomer id). When
    /// Kustomer answers 404 (someone deleted the record there), the link is forgotten, the
    /// record made again, and the call made once more about the new one.
    async fn call_on(
        &self,
        record: Record<'_>,
        retried: bool,
        request: impl Fn(&str) -> ApiRequest,
    ) -> Result<(String, Resource), Refusal> {
        let crm_id = self.ensure(record, retried).await?;
        let answer = self.send(&request(&crm_id)).await?;
        if answer.status != 404 {
            return Ok((crm_id.clone(), expect_resource(&answer)?));
        }
        let (kind, local_id) = match record {
            Record::Customer(id) => (LinkKind::Customer, id.as_str()),
            Record::Conversation(conversation) => (LinkKind::Conversation, conversation.id.as_str()),
        };
        crm_links::unlink(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            kind,
            local_id,
            &crm_id,
        )
        .await?;
        let crm_id = self.ensure(record, retried).await?;
        let resource = self.resource(&request(&crm_id)).await?;
        Ok((crm_id, resource))
    }
}

/// A record of ours that Kustomer has a copy of.
#[derive(Clone, Copy)]
enum Record<'r> {
    Customer(&'r CustomerId),
    Conversation(&'r Conversation),
}

fn status_failure(answer: &Answer) -> domain::crm::retry::CallFailure {
    domain::crm::retry::CallFailure::Status {
        status: answer.status,
        wait: None,
        reason: api::error_reason(answer.status, &answer.body),
    }
}

/// The resource of a successful answer; anything else fails with what Kustomer said.
pub fn expect_resource(answer: &Answer) -> Result<Resource, Refusal> {
    if !answer.is_success() {
        return Err(Refusal::Failed(status_failure(answer)));
    }
    api::parse_resource(&answer.body).map_err(|reason| unreadable("Kustomer", reason))
}

impl Connected for domain::crm::kustomer::Kustomer {
    type Live<'a> = Kustomer<'a>;

    fn connect<'a>(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<Kustomer<'a>, String> {
        Kustomer::new(env, db, connector)
    }
}

impl<'a> Live<'a> for Kustomer<'a> {
    async fn erase(&self, crm_id: &str) -> Result<Outcome, Refusal> {
        let answer = self.client.send(&api::delete_customer(crm_id)).await?;
        super::erased(&answer, crm_id, "Kustomer", |answer| {
            Refusal::Failed(status_failure(answer))
        })
    }

    fn client(&mut self) -> &mut Client<'a> {
        &mut self.client
    }

    fn follow_customer(
        &self,
        retrying: bool,
        id: &CustomerId,
        event: EventType,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        follow_customer(self, retrying, id, event)
    }

    async fn follow_conversation(
        &self,
        retrying: bool,
        id: &ConversationId,
        event: EventType,
    ) -> Result<Outcome, Refusal> {
        match event {
            EventType::ConversationCreated => follow_conversation(self, retrying, id).await,
            event => follow_conversation_change(self, retrying, id, event).await,
        }
    }

    fn follow_message(
        &self,
        retrying: bool,
        id: &MessageId,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        follow_message(self, retrying, id)
    }

    fn escalate(
        &self,
        retrying: bool,
        conversation: &ConversationId,
        reason: &str,
        routing: &Routing,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        escalate(self, retrying, conversation, reason, routing)
    }

    fn change_escalation(
        &self,
        conversation: &ConversationId,
        routing: &Routing,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        reroute(self, conversation, routing)
    }

    fn note(
        &self,
        retrying: bool,
        conversation: &ConversationId,
        body: &str,
    ) -> impl Future<Output = Result<Outcome, Refusal>> {
        note(self, retrying, conversation, body)
    }

    fn test_connection(&self) -> impl Future<Output = Result<ConnectionTest, ApiError>> {
        test_connection(self)
    }

    async fn check_settings(&self) -> Result<Option<serde_json::Value>, ApiError> {
        check_settings(self).await.map(|()| None)
    }

    async fn key_expiry(&self) -> Option<Result<Option<Timestamp>, Refusal>> {
        let token = self.resource(&api::current_token()).await;
        Some(token.map(|resource| CurrentToken::from_resource(&resource).expires_at))
    }
}

async fn follow_customer(
    kustomer: &Kustomer<'_>,
    retrying: bool,
    id: &CustomerId,
    event: EventType,
) -> Result<Outcome, Refusal> {
    let (crm_id, created) = kustomer.ensure_customer(id, retrying).await?;
    if created || event == EventType::CustomerCreated {
        return synced(crm_id);
    }
    let Some(customer) =
        db::customers::find_one(kustomer.db(), kustomer.tenant(), &CustomerKey::Id(id.clone())).await?
    else {
        return Err(Refusal::Failed(gone(format!("customer {id} no longer exists"))));
    };
    let (body, _left_out) = kustomer.settings.field_mapping.customer_body(&customer);
    let (crm_id, _) = kustomer
        .call_on(Record::Customer(id), retrying, |crm_id| {
            api::update_customer(crm_id, body.clone())
        })
        .await?;
    synced(crm_id)
}

async fn follow_conversation(
    kustomer: &Kustomer<'_>,
    retrying: bool,
    id: &ConversationId,
) -> Result<Outcome, Refusal> {
    if !kustomer.settings.conversation_sync {
        return skipped("Conversation Sync is off");
    }
    let conversation = kustomer.conversation(id).await?;
    synced(
        kustomer
            .ensure_conversation(&conversation, retrying, None)
            .await?,
    )
}

/// A status changed or an assignment (`event`), applied to the synced conversation.
async fn follow_conversation_change(
    kustomer: &Kustomer<'_>,
    retrying: bool,
    id: &ConversationId,
    event: EventType,
) -> Result<Outcome, Refusal> {
    if !kustomer.settings.conversation_sync {
        return skipped("Conversation Sync is off");
    }
    let conversation = kustomer.conversation(id).await?;
    let request: Box<dyn Fn(&str) -> ApiRequest> = if event == EventType::ConversationStatusChanged {
        let Some(status) = api::kustomer_status(conversation.status) else {
            return skipped("the status has no Kustomer equivalent");
        };
        Box::new(move |crm_id| api::update_conversation_status(crm_id, status))
    } else {
        match conversation.assignee.as_deref() {
            Some(user) if api::is_kustomer_id(user) => {
                let users = vec![user.to_owned()];
                Box::new(move |crm_id| api::assign_conversation(crm_id, &users, &[]))
            }
            Some(_) => return skipped("the assignee is not a Kustomer user id"),
            None => return skipped("unassigned here; Kustomer keeps its assignee"),
        }
    };
    let (crm_id, _) = kustomer
        .call_on(Record::Conversation(&conversation), retrying, request)
        .await?;
    synced(crm_id)
}

async fn follow_message(kustomer: &Kustomer<'_>, retrying: bool, id: &MessageId) -> Result<Outcome, Refusal> {
    if !kustomer.settings.conversation_sync {
        return skipped("Conversation Sync is off");
    }
    if let Some(crm_id) = kustomer.linked(LinkKind::Message, id.as_str()).await? {
        return Ok(Outcome::Synced { crm_id: Some(crm_id) });
    }
    let message = kustomer.message(id).await?;
    let conversation = kustomer.conversation(&message.conversation_id).await?;
    let links = attachment_links(kustomer.env, kustomer.db(), kustomer.tenant(), &message).await?;
    let (_, created) = kustomer
        .call_on(Record::Conversation(&conversation), retrying, |crm_id| {
            api::create_message(crm_id, &message, &links)
        })
        .await?;
    let crm_id = kustomer.link(LinkKind::Message, id.as_str(), &created.id).await?;
    synced(crm_id)
}

/// Hands the conversation to a person in Kustomer: the synced conversation raised to the
/// escalation priority and given to the default team (Auto Assignment), or a new one made so,
/// and an internal note with the reason and the chat history. The customer was told when the
/// escalation was recorded (`crm::escalation`), whether Kustomer was up or not.
async fn escalate(
    kustomer: &Kustomer<'_>,
    retrying: bool,
    id: &ConversationId,
    reason: &str,
    routing: &Routing,
) -> Result<Outcome, Refusal> {
    if !kustomer.settings.ticket_creation {
        return skipped("Automatic Ticket Creation is off");
    }
    let conversation = kustomer.conversation(id).await?;
    let existed = kustomer
        .linked(LinkKind::Conversation, conversation.id.as_str())
        .await?
        .is_some();
    let crm_id = kustomer
        .ensure_conversation(&conversation, retrying, Some((reason, routing)))
        .await?;
    if existed {
        let teams: Vec<String> = kustomer
            .team_of(Some(routing))
            .map(str::to_owned)
            .into_iter()
            .collect();
        kustomer
            .resource(&api::escalate_conversation(
                &crm_id,
                kustomer.priority_of(routing),
                &teams,
            ))
            .await?;
    }
    let history = db::messages::of_conversations(
        kustomer.db(),
        kustomer.tenant(),
        &[&conversation.id],
        HISTORY_MESSAGES,
    )
    .await?;
    kustomer
        .resource(&api::create_note(
            &crm_id,
            &escalation::escalation_note(reason, &history),
        ))
        .await?;
    synced(crm_id)
}

/// Gives the escalated conversation in Kustomer the priority and team asked for since; a
/// conversation its escalation did not make in Kustomer (ticket creation off) is left alone.
async fn reroute(
    kustomer: &Kustomer<'_>,
    id: &ConversationId,
    routing: &Routing,
) -> Result<Outcome, Refusal> {
    let Some(crm_id) = kustomer.linked(LinkKind::Conversation, id.as_str()).await? else {
        return skipped("the conversation is not in Kustomer: its escalation made no ticket there");
    };
    kustomer
        .resource(&api::reroute_conversation(
            &crm_id,
            routing.priority,
            routing.team.as_deref(),
        ))
        .await?;
    synced(crm_id)
}

/// Adds an internal note to the conversation in Kustomer (making the conversation there first if
/// it has not been synced).
async fn note(
    kustomer: &Kustomer<'_>,
    retrying: bool,
    id: &ConversationId,
    body: &str,
) -> Result<Outcome, Refusal> {
    let conversation = kustomer.conversation(id).await?;
    let (_, created) = kustomer
        .call_on(Record::Conversation(&conversation), retrying, |crm_id| {
            api::create_note(crm_id, body)
        })
        .await?;
    synced(created.id)
}

/// The seed's "Test the connection" and "API Permissions Verification": the key's user, checked
/// against the configured organization, then the key's roles and expiry against what the
/// configured work needs.
async fn test_connection(kustomer: &Kustomer<'_>) -> Result<ConnectionTest, ApiError> {
    let resource = match kustomer.resource(&api::current_user()).await {
        Ok(resource) => resource,
        Err(refusal) => return super::refused_test("Kustomer", refusal),
    };
    let user = api::CurrentUser::from_resource(&resource);
    if let (Some(expected), Some(actual)) =
        (kustomer.settings.organization_id.as_deref(), user.org.as_deref())
        && expected != actual
    {
        return Ok(ConnectionTest::failed(
            Some(403),
            format!(
                "the API key belongs to organization {actual}, not the configured {expected}; \
                 fix settings.organization_id or use a key of that organization"
            ),
        ));
    }
    let token = match kustomer.resource(&api::current_token()).await {
        Ok(resource) => CurrentToken::from_resource(&resource),
        Err(refusal) => return super::refused_test("Kustomer", refusal),
    };
    Ok(permissions::connection_test(
        serde_json::to_value(user)?,
        &token,
        &kustomer.settings,
        runtime::now(),
    ))
}

/// Pages read at most by one listing call (teams, a customer's history).
const MAX_PAGES: u32 = 10;

/// Every page of a Kustomer list, up to [`MAX_PAGES`].
async fn all_pages(
    kustomer: &Kustomer<'_>,
    page: impl Fn(u32) -> ApiRequest,
) -> Result<Vec<Resource>, Refusal> {
    let mut resources = Vec::new();
    for number in 1..=MAX_PAGES {
        let answer = kustomer.send(&page(number)).await?;
        if !answer.is_success() {
            return Err(Refusal::Failed(status_failure(&answer)));
        }
        let (items, more) = api::parse_list(&answer.body).map_err(|reason| unreadable("Kustomer", reason))?;
        resources.extend(items);
        if !more {
            break;
        }
    }
    Ok(resources)
}

/// Checks the settings against Kustomer as the admin API saves them: the default team, when one
/// is set, must be one of the organization's teams.
async fn check_settings(kustomer: &Kustomer<'_>) -> Result<(), ApiError> {
    if kustomer.settings.default_team_id.is_none() {
        return Ok(());
    }
    api::Team::check_default(&kustomer.settings, &teams(kustomer).await?)
}

/// The organization's teams, for choosing the default team.
pub async fn teams(kustomer: &Kustomer<'_>) -> Result<Vec<api::Team>, ApiError> {
    let resources = all_pages(kustomer, api::list_teams)
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(resources.iter().map(api::Team::from_resource).collect())
}

/// A Kustomer resource as its API answers it (JSON:API's `data`).
fn resource_json(resource: &Resource) -> serde_json::Value {
    serde_json::json!({
        "type": resource.kind,
        "id": resource.id,
        "attributes": resource.attributes,
        "relationships": resource.relationships,
    })
}

/// The guide's "Customer Lookup Test": Kustomer's customer with this address, None when it has
/// none.
pub async fn customer_by_email(
    kustomer: &Kustomer<'_>,
    email: &str,
) -> Result<Option<serde_json::Value>, ApiError> {
    let found = kustomer
        .find(&api::find_customer_by_email(email))
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(found.as_ref().map(resource_json))
}

/// The guide's "Ticket Creation Test": the titled conversation opened in Kustomer, as Kustomer
/// answered it.
pub async fn open_titled_conversation(
    kustomer: &Kustomer<'_>,
    conversation: &api::TitledConversation,
) -> Result<serde_json::Value, ApiError> {
    let opened = kustomer
        .resource(&api::create_titled_conversation(conversation))
        .await
        .map_err(|refusal| match refusal {
            // Kustomer refused what was asked (a customer it does not have): the caller's to fix.
            Refusal::Failed(CallFailure::Status {
                status: 400 | 404 | 422,
                reason,
                ..
            }) => ApiError::invalid("customer_id", reason),
            refusal => refusal_error("Kustomer", refusal),
        })?;
    Ok(resource_json(&opened))
}

/// The customer's past conversations in Kustomer (the seed's "Customer Found → loads history and
/// context"); None when the customer is not in Kustomer (and not found by email either).
pub async fn history(
    kustomer: &Kustomer<'_>,
    customer: &domain::customer::Customer,
) -> Result<Option<(String, Vec<api::PastConversation>)>, ApiError> {
    let linked = kustomer
        .linked(LinkKind::Customer, customer.id.as_str())
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    let crm_id = match linked {
        Some(crm_id) => crm_id,
        None => {
            let found = match customer.email.as_deref() {
                Some(email) if kustomer.settings.customer_lookup => kustomer
                    .find(&api::find_customer_by_email(email))
                    .await
                    .map_err(|refusal| refusal_error("Kustomer", refusal))?,
                _ => None,
            };
            match found {
                Some(found) => found.id,
                None => return Ok(None),
            }
        }
    };
    let resources = all_pages(kustomer, |page| api::customer_conversations(&crm_id, page, 100))
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(Some((
        crm_id,
        resources
            .iter()
            .map(api::PastConversation::from_resource)
            .collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{
        HOST, ORG, Script, UNLIMITED, conversation, customer, kustomer_connector, kustomer_error, linked,
        message, record, rows_of,
    };
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::crm::retry::CallFailure;
    use domain::crm::work::Operation;
    use serde_json::{Value, json};

    /// Runs `operation` on `subject` for the connector as the sync consumer would, as try
    /// number `attempts + 1`.
    async fn performed(
        fixture: &Fixture,
        connector: &Connector,
        customer: &CustomerId,
        operation: Operation,
        subject: &str,
        input: Value,
        attempts: u32,
    ) -> Result<Outcome, Refusal> {
        let mut job =
            crate::crm::test_support::work(fixture, connector, customer, operation, subject, input).await;
        job.attempts = attempts;
        crate::crm::perform_with::<domain::crm::kustomer::Kustomer>(
            &fixture.env,
            &fixture.db,
            connector,
            &job,
        )
        .await
    }

    fn crm_id(outcome: Result<Outcome, Refusal>) -> String {
        match outcome {
            Ok(Outcome::Synced { crm_id: Some(id) }) => id,
            other => panic!("synced: {other:?}"),
        }
    }

    fn customer_created() -> Operation {
        Operation::Follow(EventType::CustomerCreated)
    }

    #[test]
    fn customer_lookup_links_a_customer_kustomer_has_by_email_and_off_creates_without_asking() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let on = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", Some("ada@example.com")).await;
            let script = Script::install(&fixture.stack);
            script.then([record(200, "customer", "5f00000000000000000000c1")]);
            let found = crm_id(
                performed(
                    &fixture,
                    &on,
                    &ada,
                    customer_created(),
                    ada.as_str(),
                    Value::Null,
                    0,
                )
                .await,
            );
            assert_eq!(found, "5f00000000000000000000c1");
            assert_eq!(
                script.lines(),
                ["GET /v1/customers/email=ada%40example.com"],
                "found, not created"
            );
            let links = rows_of(&fixture, "crm_links", "crm_id", &tenant);
            assert_eq!(links.len(), 1, "{links:?}");
            assert_eq!(links[0]["crm_id"], "5f00000000000000000000c1");

            let off =
                kustomer_connector(&fixture, &tenant, json!({ "customer_lookup": false }), UNLIMITED).await;
            crm_id(
                performed(
                    &fixture,
                    &off,
                    &ada,
                    customer_created(),
                    ada.as_str(),
                    Value::Null,
                    0,
                )
                .await,
            );
            let lines = script.lines();
            assert_eq!(
                lines[1..],
                ["POST /v1/customers"],
                "no lookup with Customer Lookup off"
            );
            let body = script.calls()[1].json();
            assert_eq!(
                body["externalId"],
                ada.as_str(),
                "our id is Kustomer's externalId: {body}"
            );
        });
    }

    #[test]
    fn a_retry_finds_by_external_id_the_customer_an_earlier_try_may_have_created() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", Some("ada@example.com")).await;
            let script = Script::install(&fixture.stack);
            script.then([
                kustomer_error(404, "No customer"),
                record(200, "customer", "5f00000000000000000000c2"),
            ]);
            let found = crm_id(
                performed(
                    &fixture,
                    &connector,
                    &ada,
                    customer_created(),
                    ada.as_str(),
                    Value::Null,
                    1,
                )
                .await,
            );
            assert_eq!(found, "5f00000000000000000000c2");
            assert_eq!(
                script.lines(),
                [
                    "GET /v1/customers/email=ada%40example.com".to_owned(),
                    format!("GET /v1/customers/externalId={ada}"),
                ],
                "nobody created twice"
            );
        });
    }

    #[test]
    fn a_409_on_create_means_kustomer_has_them_and_the_one_its_external_id_finds_is_ours() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector =
                kustomer_connector(&fixture, &tenant, json!({ "customer_lookup": false }), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let script = Script::install(&fixture.stack);
            script.then([
                kustomer_error(409, "A customer with externalId already exists"),
                record(200, "customer", "5f00000000000000000000c3"),
            ]);
            let found = crm_id(
                performed(
                    &fixture,
                    &connector,
                    &ada,
                    customer_created(),
                    ada.as_str(),
                    Value::Null,
                    0,
                )
                .await,
            );
            assert_eq!(found, "5f00000000000000000000c3");
            assert_eq!(
                script.lines(),
                [
                    "POST /v1/customers".to_owned(),
                    format!("GET /v1/customers/externalId={ada}")
                ]
            );
        });
    }

    #[test]
    fn unusable_settings_make_the_work_invalid_and_a_customer_gone_here_fails_as_404_without_a_call() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let mut connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            let nobody = CustomerId::generate([7; 16]);
            match performed(
                &fixture,
                &connector,
                &nobody,
                customer_created(),
                nobody.as_str(),
                Value::Null,
                0,
            )
            .await
            {
                Err(Refusal::Failed(CallFailure::Status {
                    status: 404, reason, ..
                })) => {
                    assert!(reason.contains("no longer exists"), "{reason}")
                }
                other => panic!("gone: {other:?}"),
            }
            connector.settings = json!({ "subdomain": "a.b" });
            match performed(
                &fixture,
                &connector,
                &nobody,
                customer_created(),
                nobody.as_str(),
                Value::Null,
                0,
            )
            .await
            {
                Ok(Outcome::Invalid(reason)) => {
                    assert!(
                        reason.starts_with("the connector's settings are unusable"),
                        "{reason}"
                    )
                }
                other => panic!("invalid: {other:?}"),
            }
            assert!(script.calls().is_empty());
        });
    }

    #[test]
    fn a_message_is_written_to_the_timeline_once_however_often_its_work_runs() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            let hello = message(&fixture, &tenant, &talk, &ada, "Where is my order?").await;
            let script = Script::install(&fixture.stack);
            let received = Operation::Follow(EventType::MessageReceived);
            let first = crm_id(
                performed(
                    &fixture,
                    &connector,
                    &ada,
                    received,
                    hello.as_str(),
                    Value::Null,
                    0,
                )
                .await,
            );
            let lines = script.lines();
            assert_eq!(lines.len(), 3, "{lines:?}");
            assert_eq!(lines[..2], ["POST /v1/customers", "POST /v1/conversations"]);
            assert!(lines[2].ends_with("/messages"), "{lines:?}");
            let written = script.calls()[2].json();
            assert_eq!(written["direction"], "in", "{written}");
            assert_eq!(written["channel"], "whatsapp", "{written}");
            assert_eq!(written["preview"], "Where is my order?", "{written}");
            assert_eq!(written["externalId"], hello.as_str(), "{written}");
            let again = crm_id(
                performed(
                    &fixture,
                    &connector,
                    &ada,
                    received,
                    hello.as_str(),
                    Value::Null,
                    1,
                )
                .await,
            );
            assert_eq!(again, first);
            assert_eq!(script.calls().len(), 3, "not written again");
        });
    }

    #[test]
    fn a_conversation_deleted_in_kustomer_is_made_again_and_the_call_made_once_more() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            linked(
                &fixture,
                &connector,
                LinkKind::Customer,
                ada.as_str(),
                "5f00000000000000000000c4",
            )
            .await;
            linked(
                &fixture,
                &connector,
                LinkKind::Conversation,
                talk.as_str(),
                "5f000000000000000000dead",
            )
            .await;
            let script = Script::install(&fixture.stack);
            script.then([kustomer_error(404, "No conversation")]);
            crm_id(
                performed(
                    &fixture,
                    &connector,
                    &ada,
                    Operation::Note,
                    talk.as_str(),
                    json!({ "body": "VIP" }),
                    0,
                )
                .await,
            );
            let lines = script.lines();
            assert_eq!(
                lines[..2],
                [
                    "POST /v1/conversations/5f000000000000000000dead/notes",
                    "POST /v1/conversations"
                ]
            );
            let made = lines[2].clone();
            assert!(made.ends_with("/notes") && !made.contains("dead"), "{lines:?}");
            let conversation_body = script.calls()[1].json();
            assert_eq!(
                conversation_body["customer"], "5f00000000000000000000c4",
                "the customer kept: {conversation_body}"
            );
            let links = rows_of(&fixture, "crm_links", "crm_id", &tenant);
            assert!(
                links
                    .iter()
                    .all(|link| link["crm_id"] != "5f000000000000000000dead"),
                "the deleted one is forgotten: {links:?}"
            );
        });
    }

    #[test]
    fn an_escalation_of_a_synced_conversation_raises_it_to_the_default_team_and_notes_why_with_the_history() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let team = "5f00000000000000000000b1";
            let connector = kustomer_connector(
                &fixture,
                &tenant,
                json!({ "auto_assignment": true, "default_team_id": team }),
                UNLIMITED,
            )
            .await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            message(&fixture, &tenant, &talk, &ada, "my parcel never came").await;
            linked(&fixture, &connector, LinkKind::Conversation, talk.as_str(), "5f00000000000000000000f1").await;
            let script = Script::install(&fixture.stack);
            let reason = json!({ "reason": "refund over limit", "escalation_id": "x" });
            crm_id(performed(&fixture, &connector, &ada, Operation::Escalate, talk.as_str(), reason, 0).await);
            assert_eq!(
                script.lines(),
                ["PATCH /v1/conversations/5f00000000000000000000f1", "POST /v1/conversations/5f00000000000000000000f1/notes"]
            );
            let raised = script.calls()[0].json();
            assert_eq!(raised["priority"], 4, "{raised}");
            assert_eq!(raised["assignedTeams"], json!([team]), "{raised}");
            let note = script.calls()[1].json();
            let body = note["body"].as_str().unwrap_or_default();
            assert!(body.contains("refund over limit") && body.contains("my parcel never came"), "{body}");

            let off = kustomer_connector(&fixture, &tenant, json!({ "ticket_creation": false }), UNLIMITED).await;
            let skipped = performed(&fixture, &off, &ada, Operation::Escalate, talk.as_str(), json!({ "reason": "r" }), 0).await;
            assert!(
                matches!(&skipped, Ok(Outcome::Skipped(reason)) if reason == "Automatic Ticket Creation is off"),
                "{skipped:?}"
            );
            assert_eq!(script.calls().len(), 2);
        });
    }

    #[test]
    fn the_connection_test_names_the_organization_a_key_belongs_to_when_it_is_not_the_configured_one() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            Script::install(&fixture.stack);
            let ours =
                kustomer_connector(&fixture, &tenant, json!({ "organization_id": ORG }), UNLIMITED).await;
            let kustomer =
                Kustomer::new(&fixture.env, &fixture.db, &ours).unwrap_or_else(|reason| panic!("{reason}"));
            let passed = test_connection(&kustomer)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(passed.ok, "{passed:?}");
            assert_eq!(
                passed.user.as_ref().map(|user| user["org"].clone()),
                Some(json!(ORG))
            );

            let elsewhere = "5f0000000000000000000999";
            let theirs = kustomer_connector(
                &fixture,
                &tenant,
                json!({ "organization_id": elsewhere }),
                UNLIMITED,
            )
            .await;
            let kustomer =
                Kustomer::new(&fixture.env, &fixture.db, &theirs).unwrap_or_else(|reason| panic!("{reason}"));
            let failed = test_connection(&kustomer)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(!failed.ok);
            assert_eq!(failed.status, Some(403));
            let reason = failed.reason.unwrap_or_default();
            assert!(reason.contains(ORG) && reason.contains(elsewhere), "{reason}");
        });
    }

    #[test]
    fn teams_are_read_page_by_page_up_to_ten_pages() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            script.then((1..=12).map(|page| {
                Reply::json(
                    200,
                    &json!({
                        "data": [{ "type": "team", "id": format!("{page:024x}"), "attributes": { "name": format!("Team {page}") } }],
                        "links": { "next": format!("/v1/teams?page={}", page + 1) }
                    }),
                )
            }));
            let kustomer = Kustomer::new(&fixture.env, &fixture.db, &connector).unwrap_or_else(|reason| panic!("{reason}"));
            let listed = teams(&kustomer).await.unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(listed.len(), 10, "{listed:?}");
            assert_eq!(listed[9].name, "Team 10");
            let pages: Vec<String> = script
                .calls()
                .iter()
                .map(|call| call.query().get("page").unwrap_or_default().to_owned())
                .collect();
            assert_eq!(pages, (1..=10).map(|page| page.to_string()).collect::<Vec<_>>());
            assert!(script.calls().iter().all(|call| call.url.starts_with(&format!("https://{HOST}/"))));
        });
    }

    #[test]
    fn history_is_none_for_a_customer_kustomer_does_not_know_and_lists_a_linked_ones_conversations() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            let kustomer = Kustomer::new(&fixture.env, &fixture.db, &connector).unwrap_or_else(|reason| panic!("{reason}"));
            let find = |id: &CustomerId| {
                let (db, tenant, id) = (&fixture.db, &tenant, id.clone());
                async move {
                    db::customers::find_one(db, tenant, &CustomerKey::Id(id))
                        .await
                        .unwrap_or_else(|error| panic!("{error:?}"))
                        .unwrap_or_else(|| panic!("the customer"))
                }
            };
            let unknown = customer(&fixture, &tenant, "Bo", Some("bo@example.com")).await;
            let none = history(&kustomer, &find(&unknown).await).await.unwrap_or_else(|error| panic!("{error:?}"));
            assert!(none.is_none());
            assert_eq!(script.lines(), ["GET /v1/customers/email=bo%40example.com"]);

            let ada = customer(&fixture, &tenant, "Ada", None).await;
            linked(&fixture, &connector, LinkKind::Customer, ada.as_str(), "5f00000000000000000000c5").await;
            script.then([Reply::json(
                200,
                &json!({ "data": [
                    { "type": "conversation", "id": "5f00000000000000000000e1", "attributes": { "name": "Old order question", "status": "done" } }
                ], "links": { "next": null } }),
            )]);
            let (crm_id, past) = history(&kustomer, &find(&ada).await)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .unwrap_or_else(|| panic!("Kustomer knows Ada"));
            assert_eq!(crm_id, "5f00000000000000000000c5");
            assert_eq!(past.len(), 1);
            assert_eq!(script.lines()[1], "GET /v1/customers/5f00000000000000000000c5/conversations");
        });
    }
}
