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
    ConnectionTest, Outcome, attachment_links, gone, refusal_error, skipped, synced, unreadable, work,
};
use crate::db::Db;
use crate::db::crm_connectors::Connector;
use crate::db::crm_sync_jobs::Job;
use crate::db::{self, crm_links};
use crate::{http, runtime};
use domain::crm::kustomer::api::{self, ApiRequest, NewConversation, Resource};
use domain::crm::kustomer::escalation;
use domain::crm::kustomer::settings::KustomerSettings;
use domain::crm::work::{LinkKind, Work};
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::lookup::CustomerKey;
use domain::message::{Conversation, Message};
use domain::tenant::Tenant;
use domain::webhooks::EventType;

/// Messages of a conversation included in an escalation's note (the note keeps the newest that fit).
const HISTORY_MESSAGES: usize = 200;

/// A Kustomer connector ready to call.
pub struct Kustomer<'a> {
    pub client: Client<'a>,
    pub settings: KustomerSettings,
    env: &'a Env,
}

impl<'a> Kustomer<'a> {
    /// The connector's settings and key, read back as the admin API stored them; Err says why
    /// they cannot be used.
    pub fn new(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<Self, String> {
        let settings = KustomerSettings::parse(&connector.settings, http::allows_loopback(env))
            .map_err(|error| format!("the connector's settings are unusable: {}", error.body.message))?;
        Ok(Self {
            client: Client::new(env, db, connector, settings.api_base()),
            settings,
            env,
        })
    }

    fn tenant(&self) -> &Tenant {
        &self.client.connector.tenant
    }

    fn db(&self) -> &Db {
        self.client.db
    }

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

    async fn link(&self, kind: LinkKind, local_id: &str, crm_id: &str) -> Result<String, Refusal> {
        Ok(crm_links::link(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            kind,
            local_id,
            crm_id,
            runtime::now().micros(),
        )
        .await?)
    }

    async fn linked(&self, kind: LinkKind, local_id: &str) -> Result<Option<String>, Refusal> {
        Ok(crm_links::crm_id(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            kind,
            local_id,
        )
        .await?)
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
        let answer = self.send(&api::create_customer(body)).await?;
        let created = if answer.status == 409 {
            // Kustomer has them already (their external id or email): the one found is ours.
            self.find(&api::find_customer_by_external_id(&external_id))
                .await?
                .ok_or_else(|| Refusal::Failed(status_failure(&answer)))?
        } else {
            expect_resource(&answer)?
        };
        Ok((
            self.link(LinkKind::Customer, id.as_str(), &created.id).await?,
            answer.status != 409,
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

    async fn conversation(&self, id: &ConversationId) -> Result<Conversation, Refusal> {
        db::conversations::by_ids(self.db(), self.tenant(), &[id])
            .await?
            .pop()
            .ok_or_else(|| Refusal::Failed(gone(format!("conversation {id} no longer exists"))))
    }

    /// Our conversation's Kustomer id, creating the conversation (and its customer) when it has
    /// none; `priority_of_escalation` creates it as an escalation does.
    async fn ensure_conversation(
        &self,
        conversation: &Conversation,
        retried: bool,
        as_escalation: Option<&str>,
    ) -> Result<String, Refusal> {
        if let Some(crm_id) = self
            .linked(LinkKind::Conversation, conversation.id.as_str())
            .await?
        {
            return Ok(crm_id);
        }
        let (customer, _) = self.ensure_customer(&conversation.customer_id, retried).await?;
        let team = self
            .settings
            .auto_assignment
            .then_some(self.settings.default_team_id.as_deref())
            .flatten();
        let name = match as_escalation {
            Some(reason) => format!("Escalated: {}", reason.chars().take(200).collect::<String>()),
            None => api::conversation_name(conversation.channel),
        };
        let created = self
            .resource(&api::create_conversation(&NewConversation {
                customer: &customer,
                name,
                priority: if as_escalation.is_some() {
                    self.settings.escalation_priority
                } else {
                    self.settings.default_priority
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

    async fn message(&self, id: &MessageId) -> Result<Message, Refusal> {
        db::messages::by_ids(self.db(), self.tenant(), &[id])
            .await?
            .pop()
            .ok_or_else(|| Refusal::Failed(gone(format!("message {id} no longer exists"))))
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

/// Does one piece of Kustomer work.
pub async fn perform(env: &Env, db: &Db, connector: &Connector, job: &Job) -> Result<Outcome, Refusal> {
    let kustomer = match Kustomer::new(env, db, connector) {
        Ok(kustomer) => kustomer,
        Err(reason) => return Ok(Outcome::Invalid(reason)),
    };
    // A call made before may have reached Kustomer: a retry finds what it made first.
    let retrying = job.attempts > 0;
    match work(job)? {
        Work::Customer { id, event } => follow_customer(&kustomer, retrying, &id, event).await,
        Work::Conversation {
            id,
            event: EventType::ConversationCreated,
        } => follow_conversation(&kustomer, retrying, &id).await,
        Work::Conversation { id, event } => follow_conversation_change(&kustomer, retrying, &id, event).await,
        Work::Message { id } => follow_message(&kustomer, retrying, &id).await,
        Work::Escalate { conversation, reason } => {
            escalate(&kustomer, retrying, &conversation, &reason).await
        }
        Work::Note { conversation, body } => note(&kustomer, retrying, &conversation, &body).await,
        Work::Chatwoot(_) => skipped("Chatwoot's webhooks feed Krayin connectors, not Kustomer"),
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
        .ensure_conversation(&conversation, retrying, Some(reason))
        .await?;
    if existed {
        let teams: Vec<String> = if kustomer.settings.auto_assignment {
            kustomer.settings.default_team_id.iter().cloned().collect()
        } else {
            Vec::new()
        };
        kustomer
            .resource(&api::escalate_conversation(
                &crm_id,
                kustomer.settings.escalation_priority,
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

/// The seed's "Test the connection": the key's user, checked against the configured organization.
pub async fn test_connection(kustomer: &Kustomer<'_>) -> Result<ConnectionTest, ApiError> {
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
    Ok(ConnectionTest::passed(serde_json::to_value(user)?))
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

/// The organization's teams, for choosing the default team.
pub async fn teams(kustomer: &Kustomer<'_>) -> Result<Vec<api::Team>, ApiError> {
    let resources = all_pages(kustomer, api::list_teams)
        .await
        .map_err(|refusal| refusal_error("Kustomer", refusal))?;
    Ok(resources.iter().map(api::Team::from_resource).collect())
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
