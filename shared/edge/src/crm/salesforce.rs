//! Salesforce's side of the sync pipeline: our customers as Contacts (or Leads), their messages
//! as completed Tasks on that record, escalations as Cases. What a request looks like and what an
//! answer means is pure (`domain::crm::salesforce`); this module decides which calls a piece of
//! work needs, makes them through the connector's budget, keeps the ids Salesforce gives our
//! records, and watches the org's daily allowance on every answer (`Sforce-Limit-Info`): once the
//! org has used the business's share of it, the connector pauses and nothing is lost.
//!
//! Every step is safe to repeat: a record already linked is not made again; a customer is
//! upserted by the business's External ID field when it names one (one call, which cannot make a
//! second record), else found by email before one is made; a message's Task is upserted by the
//! business's Task External ID field when it names one.

use crate::Env;
use crate::console_log;
use crate::crm::client::{Answer, Client, Refusal};
use crate::crm::{
    Connected, Connection, ConnectionTest, Live, Outcome, attachment_links, refused_test, skipped, synced,
    unreadable,
};
use crate::db::crm_connectors::{self, Connector};
use crate::db::{self, Db, crm_links};
use crate::runtime;
use domain::crm::request::ApiRequest;
use domain::crm::salesforce::api::{self, ApiUsage, Fate, Item, Lookup, SObject};
use domain::crm::salesforce::settings::CustomerObject;
use domain::crm::salesforce::timeline::{self, CaseCustomer, Escalation};
use domain::crm::salesforce::{OrganizationId, SalesforceId, SalesforceSettings, permissions};
use domain::crm::spec::Crm;
use domain::crm::work::{LinkKind, Routing, Work};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::json::Malformed;
use domain::lookup::CustomerKey;
use domain::webhooks::EventType;
use serde_json::Value;

/// Messages of a conversation put in an escalation's Case (the newest that fit).
const HISTORY_MESSAGES: usize = 200;
/// The header every answer of the REST API carries with the org's use of its allowance.
const LIMIT_INFO: &str = "sforce-limit-info";

/// A Salesforce connector ready to call.
pub type Salesforce<'a> = Connection<'a, SalesforceSettings>;

impl Salesforce<'_> {
    /// Makes the call, then pauses the connector when the answer says the org has used the
    /// business's share of its daily allowance (the call itself was answered: it stands).
    async fn call(&self, request: &ApiRequest) -> Result<Answer, Refusal> {
        let answer = self.client.send(request).await?;
        let usage = answer.limit_header(LIMIT_INFO).and_then(ApiUsage::parse);
        if let Some(usage) = usage
            && let Some(seconds) = usage.pause_seconds(self.settings.api_share)
        {
            let connector = self.client.connector;
            let until = runtime::now().micros() + i64::from(seconds) * 1_000_000;
            crm_connectors::pause(self.db(), &connector.tenant, &connector.id, until).await?;
            console_log!(
                "salesforce {}: the org has used {} of its {} daily API calls, {} % or more of which is the \
                 business's share: paused for {seconds} s",
                connector.id,
                usage.used,
                usage.max,
                self.settings.api_share.get()
            );
        }
        Ok(answer)
    }

    /// Makes the call and reads what a success carries with `parse`; anything else is a failure
    /// with what Salesforce said.
    async fn read<T>(
        &self,
        request: &ApiRequest,
        parse: fn(&[u8]) -> Result<T, Malformed>,
    ) -> Result<T, Refusal> {
        let answer = self.call(request).await?;
        if !answer.is_success() {
            return Err(failure(&answer));
        }
        parse(&answer.body).map_err(|reason| unreadable("Salesforce", reason))
    }

    /// Makes a create or an upsert and reads the record it saved; a record Salesforce refused
    /// is a failure with its reasons.
    async fn save(&self, request: &ApiRequest) -> Result<SalesforceId, Refusal> {
        match self.read(request, api::parse_saved).await? {
            Item::Saved(saved) => Ok(saved.id),
            Item::Failed(errors) => Err(Refusal::Failed(api::refused_record(&errors))),
        }
    }

    /// A linked record's id; a link that is not a Salesforce id is damaged (ours).
    async fn linked_record(&self, kind: LinkKind, local_id: &str) -> Result<Option<SalesforceId>, Refusal> {
        let Some(linked) = self.linked(kind, local_id).await? else {
            return Ok(None);
        };
        SalesforceId::parse(&linked)
            .map(Some)
            .ok_or_else(|| Refusal::Ours(db::corrupt("crm link", local_id, "not a Salesforce id")))
    }

    /// Keeps `record` as Salesforce's copy of our record; the id kept (an earlier try's, when one
    /// linked it first).
    async fn link_record(
        &self,
        kind: LinkKind,
        local_id: &str,
        record: &SalesforceId,
    ) -> Result<SalesforceId, Refusal> {
        let kept = self.link(kind, local_id, record.as_str()).await?;
        Ok(SalesforceId::parse(&kept).unwrap_or_else(|| record.clone()))
    }

    /// Our customer's record, finding or making it; `true` when this call wrote it (its fields
    /// are then current).
    async fn ensure_record(&self, id: &CustomerId) -> Result<(SalesforceId, bool), Refusal> {
        if let Some(record) = self.linked_record(LinkKind::Customer, id.as_str()).await? {
            return Ok((record, false));
        }
        let customer = self.customer(id).await?;
        let record = self.write_customer(&customer, None).await?;
        Ok((
            self.link_record(LinkKind::Customer, id.as_str(), &record).await?,
            true,
        ))
    }

    /// Writes the customer to the record that is theirs (`known`, else the one found), making
    /// it when there is none: by the business's External ID field in one upsert when it names
    /// one; else an update of the record that has the customer's email (the oldest, when the org
    /// has several), else a new record.
    async fn write_customer(
        &self,
        customer: &Customer,
        known: Option<&SalesforceId>,
    ) -> Result<SalesforceId, Refusal> {
        let found = match (known, &self.settings.external_id_field) {
            (Some(known), _) => Some(known.clone()),
            (None, Some(_)) => None,
            (None, None) => self.find_by_email(customer).await?,
        };
        let request = timeline::customer_request(customer, &self.settings, found.as_ref());
        match (&self.settings.external_id_field, found) {
            (None, Some(record)) => {
                let answer = self.call(&request).await?;
                match answer.status {
                    204 | 200 => Ok(record),
                    _ => Err(failure(&answer)),
                }
            }
            _ => self.save(&request).await,
        }
    }

    /// Several customers' records written together, each linked as [`Self::ensure_record`] links
    /// one: upserted by the business's External ID field, 200 a call; else the oldest record of
    /// each email found (one query for them all) and updated, 200 a call, and the rest made, 200
    /// a call. A record Salesforce refused is left to its customer's own work, which says why.
    async fn write_customers(&self, customers: &[Customer]) -> Result<(), Refusal> {
        let object = SObject::from(self.settings.customer_object);
        let fields = |customer: &Customer| timeline::customer_fields(customer, &self.settings);
        if let Some(field) = &self.settings.external_id_field {
            let records: Vec<_> = customers.iter().map(fields).collect();
            let customers: Vec<&Customer> = customers.iter().collect();
            return self
                .save_many(&customers, &api::upsert_many(object, field, &records))
                .await;
        }
        let emails: Vec<&str> = customers.iter().filter_map(|c| c.email.as_deref()).collect();
        let mut found = Vec::new();
        let mut complete = true;
        for request in api::find_customers_by_email(self.settings.customer_object, &emails) {
            let answer = self.read(&request, api::parse_query).await?;
            complete &= answer.next_records_url.is_none();
            found.extend(answer.records);
        }
        let (mut known, mut new) = (Vec::new(), Vec::new());
        for customer in customers {
            let email = customer.email.as_deref();
            match email.and_then(|email| api::oldest_of_email(&found, email)) {
                Some(record) => known.push((customer, record.clone())),
                // An email the query's first page did not reach may have a record on the next.
                None if !complete && email.is_some() => {}
                None => new.push(customer),
            }
        }
        let record = |customer: &Customer, id: Option<SalesforceId>| api::CollectionRecord {
            object,
            id,
            fields: fields(customer),
        };
        let updates: Vec<_> = known
            .iter()
            .map(|(customer, found)| record(customer, Some(found.clone())))
            .collect();
        let known: Vec<&Customer> = known.into_iter().map(|(customer, _)| customer).collect();
        self.save_many(&known, &api::update_many(&updates)).await?;
        let creates: Vec<_> = new.iter().map(|customer| record(customer, None)).collect();
        self.save_many(&new, &api::create_many(&creates)).await
    }

    /// Makes the collection calls `requests` (the records of `customers`, in order) and links each
    /// record saved to its customer.
    async fn save_many(&self, customers: &[&Customer], requests: &[ApiRequest]) -> Result<(), Refusal> {
        let mut customers = customers.iter();
        for request in requests {
            for item in self.read(request, api::parse_collection).await? {
                let Some(customer) = customers.next() else {
                    return Ok(());
                };
                match item {
                    Item::Saved(saved) => {
                        self.link_record(LinkKind::Customer, customer.id.as_str(), &saved.id)
                            .await?;
                    }
                    Item::Failed(errors) => {
                        let codes: Vec<&str> = errors.iter().map(|error| error.error_code.as_str()).collect();
                        console_log!(
                            "salesforce {}: customer {} refused in a collection ({}); its own work tries again",
                            self.client.connector.id,
                            customer.id,
                            codes.join(", ")
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the work writes to the customer's record (and so makes it first).
    fn needs_record(&self, work: &Work) -> bool {
        match work {
            Work::Customer { .. } | Work::Note { .. } => true,
            Work::Conversation { event, .. } => *event == EventType::ConversationCreated,
            Work::Message { .. } => self.settings.sync_messages,
            Work::Escalate { .. } => self.settings.create_cases,
            Work::ChangeEscalation { .. } | Work::Chatwoot(_) | Work::Erase { .. } => false,
        }
    }

    /// The record of the customer's email, when the org has one.
    async fn find_by_email(&self, customer: &Customer) -> Result<Option<SalesforceId>, Refusal> {
        let Some(email) = customer
            .email
            .as_deref()
            .map(str::trim)
            .filter(|email| !email.is_empty())
        else {
            return Ok(None);
        };
        let request = api::find_customer(
            self.settings.customer_object,
            Lookup::Email(email),
            self.settings.external_id_field.as_ref(),
        );
        let found = self.read(&request, api::parse_query).await?;
        Ok(found.records.into_iter().next().map(|record| record.id))
    }

    /// What became of a record that answered 404: merged into another (our customer follows it),
    /// or deleted (the link is forgotten, and the customer's record made again).
    async fn refind(&self, id: &CustomerId, record: &SalesforceId) -> Result<SalesforceId, Refusal> {
        let object = SObject::from(self.settings.customer_object);
        let fate = self
            .read(&api::record_fate(object, record), api::parse_fate)
            .await?;
        let tenant = self.tenant();
        let connector = &self.client.connector.id;
        crm_links::unlink(
            self.db(),
            tenant,
            connector,
            LinkKind::Customer,
            id.as_str(),
            record.as_str(),
        )
        .await?;
        match fate {
            Fate::MergedInto(master) => self.link_record(LinkKind::Customer, id.as_str(), &master).await,
            Fate::Alive | Fate::Deleted | Fate::Gone => Ok(self.ensure_record(id).await?.0),
        }
    }

    /// The Case an escalation of the conversation opened, if any.
    async fn case_of(&self, conversation: &ConversationId) -> Result<Option<SalesforceId>, Refusal> {
        self.linked_record(LinkKind::Conversation, conversation.as_str())
            .await
    }

    /// A completed Task on the record, and on the Case when there is one.
    async fn add_note(
        &self,
        who: &SalesforceId,
        case: Option<&SalesforceId>,
        body: &str,
    ) -> Result<SalesforceId, Refusal> {
        let fields = timeline::note_task(body, who, case, runtime::now());
        self.save(&api::create(SObject::Task, &fields)).await
    }

    /// Who connected, kept on the connector (its CRM cache) for the Outbound Message receiver.
    async fn identity(&self) -> Result<api::Identity, Refusal> {
        let identity = self.read(&api::identity(), api::parse_identity).await?;
        self.keep_read(&serde_json::json!({ "organization_id": identity.organization_id.as_str() }))
            .await?;
        Ok(identity)
    }
}

/// What Salesforce said in an answer that is not a success, as the call's failure.
fn failure(answer: &Answer) -> Refusal {
    Refusal::Failed(domain::crm::salesforce::Salesforce::call_failure(
        answer.status,
        &answer.body,
        None,
    ))
}

/// The org the connector's Outbound Messages must come from: as its settings name it (learnt
/// when a person connected it), else as kept from the last connection test, else read now
/// (through its budget) and kept.
pub async fn organization_id(env: &Env, db: &Db, connector: &Connector) -> Result<OrganizationId, ApiError> {
    let salesforce =
        Salesforce::new(env, db, connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    if let Some(organization) = &salesforce.settings.organization_id {
        return Ok(organization.clone());
    }
    let kept = connector
        .crm_cache
        .as_ref()
        .and_then(|cache| cache.get("organization_id"))
        .and_then(Value::as_str)
        .and_then(OrganizationId::parse);
    if let Some(organization) = kept {
        return Ok(organization);
    }
    salesforce
        .identity()
        .await
        .map(|identity| identity.organization_id)
        .map_err(|refusal| super::refusal_error("Salesforce", refusal))
}

/// The Case as it is in Salesforce now (through the connector's budget), for the Outbound Message
/// receiver to follow its status whatever order the notifications came in; None when it is gone.
pub async fn case_state(
    env: &Env,
    db: &Db,
    connector: &Connector,
    case: &SalesforceId,
) -> Result<Option<api::CaseState>, ApiError> {
    let salesforce =
        Salesforce::new(env, db, connector).map_err(|reason| ApiError::invalid("settings", reason))?;
    let refused = |refusal| super::refusal_error("Salesforce", refusal);
    let answer = salesforce.call(&api::case_state(case)).await.map_err(refused)?;
    match answer.status {
        404 => Ok(None),
        200 => api::parse_case_state(&answer.body)
            .map(Some)
            .map_err(|reason| refused(unreadable("Salesforce", reason))),
        _ => Err(refused(failure(&answer))),
    }
}

impl Connected for domain::crm::salesforce::Salesforce {
    type Live<'a> = Salesforce<'a>;

    /// Several new customers are made with sObject Collections.
    const PREPARES: bool = true;

    fn connect<'a>(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<Salesforce<'a>, String> {
        Salesforce::new(env, db, connector)
    }
}

impl<'a> Live<'a> for Salesforce<'a> {
    /// The customer's record deleted: it goes to the org's recycle bin, which Salesforce empties
    /// after 15 days.
    async fn erase(&self, crm_id: &str) -> Result<Outcome, Refusal> {
        let Some(record) = SalesforceId::parse(crm_id) else {
            return skipped("the CRM id kept is not a Salesforce id: nothing to delete");
        };
        let object = SObject::from(self.settings.customer_object);
        let answer = self.call(&api::delete(object, &record)).await?;
        super::erased(&answer, crm_id, "Salesforce", failure)
    }

    fn client(&mut self) -> &mut Client<'a> {
        &mut self.client
    }

    /// The records several customers' next work needs, made together (two or more: one costs the
    /// same calls alone).
    async fn prepare(&self, due: &[(CustomerId, Work)]) -> Result<(), Refusal> {
        let mut customers: Vec<Customer> = Vec::new();
        for (id, work) in due {
            if !self.needs_record(work)
                || customers.iter().any(|customer| customer.id == *id)
                || self.linked(LinkKind::Customer, id.as_str()).await?.is_some()
            {
                continue;
            }
            if let Some(customer) =
                db::customers::find_one(self.db(), self.tenant(), &CustomerKey::Id(id.clone())).await?
            {
                customers.push(customer);
            }
        }
        if customers.len() < 2 {
            return Ok(());
        }
        self.write_customers(&customers).await
    }

    async fn follow_customer(
        &self,
        _retrying: bool,
        id: &CustomerId,
        event: EventType,
    ) -> Result<Outcome, Refusal> {
        let (record, written) = self.ensure_record(id).await?;
        if written || event == EventType::CustomerCreated {
            return synced(record.as_str().to_owned());
        }
        let customer = self.customer(id).await?;
        let object = SObject::from(self.settings.customer_object);
        let fields = timeline::customer_fields(&customer, &self.settings);
        let answer = self.call(&api::update(object, &record, &fields)).await?;
        match answer.status {
            200..=299 => synced(record.as_str().to_owned()),
            // Deleted or merged in Salesforce since.
            404 => {
                let record = self.refind(id, &record).await?;
                let customer = self.customer(id).await?;
                let record = self.write_customer(&customer, Some(&record)).await?;
                synced(record.as_str().to_owned())
            }
            _ => Err(failure(&answer)),
        }
    }

    /// Salesforce keeps a chat as its Tasks on the customer's record: a new conversation makes
    /// sure the record is there; its status and assignee have no Salesforce record to change.
    async fn follow_conversation(
        &self,
        _retrying: bool,
        id: &ConversationId,
        event: EventType,
    ) -> Result<Outcome, Refusal> {
        if event != EventType::ConversationCreated {
            return skipped(
                "Salesforce keeps no conversation record: its messages are Tasks on the customer's record",
            );
        }
        let conversation = self.conversation(id).await?;
        let (record, _) = self.ensure_record(&conversation.customer_id).await?;
        synced(record.as_str().to_owned())
    }

    async fn follow_message(&self, _retrying: bool, id: &MessageId) -> Result<Outcome, Refusal> {
        if !self.settings.sync_messages {
            return skipped("message sync is off (settings.sync_messages)");
        }
        if let Some(task) = self.linked(LinkKind::Message, id.as_str()).await? {
            return synced(task);
        }
        let message = self.message(id).await?;
        let (who, _) = self.ensure_record(&message.customer_id).await?;
        let files = attachment_links(self.env, self.db(), self.tenant(), &message).await?;
        let request = timeline::message_request(&message, &files, &who, &self.settings);
        let task = self.save(&request).await?;
        synced(
            self.link_record(LinkKind::Message, id.as_str(), &task)
                .await?
                .as_str()
                .to_owned(),
        )
    }

    /// A Case with the conversation's subject, the chat history as its description, its priority
    /// and origin, tied to the Contact (a Case cannot point at a Lead: it carries the customer's
    /// name, email and phone instead); a conversation escalated again gets a note on its Case
    /// (and the new priority) rather than a second Case.
    async fn escalate(
        &self,
        _retrying: bool,
        id: &ConversationId,
        reason: &str,
        routing: &Routing,
    ) -> Result<Outcome, Refusal> {
        if !self.settings.create_cases {
            return skipped("Case creation is off (settings.create_cases)");
        }
        let conversation = self.conversation(id).await?;
        let (who, _) = self.ensure_record(&conversation.customer_id).await?;
        if let Some(case) = self.case_of(id).await? {
            if let Some(priority) = routing.priority {
                let fields = timeline::case_priority(priority, &self.settings);
                let answer = self.call(&api::update(SObject::Case, &case, &fields)).await?;
                if !answer.is_success() {
                    return Err(failure(&answer));
                }
            }
            self.add_note(&who, Some(&case), &format!("Escalated again: {}", reason.trim()))
                .await?;
            return synced(case.as_str().to_owned());
        }
        let history =
            db::messages::of_conversations(self.db(), self.tenant(), &[id], HISTORY_MESSAGES).await?;
        let customer = self.customer(&conversation.customer_id).await?;
        let escalation = Escalation {
            subject: None,
            reason,
            channel: Some(conversation.channel),
            priority: routing.priority,
            history: &history,
        };
        let about = match self.settings.customer_object {
            CustomerObject::Contact => CaseCustomer::Contact(&who),
            CustomerObject::Lead => CaseCustomer::Supplied(&customer),
        };
        let fields = timeline::case_fields(&escalation, about, &self.settings);
        let case = self.save(&api::create(SObject::Case, &fields)).await?;
        synced(
            self.link_record(LinkKind::Conversation, id.as_str(), &case)
                .await?
                .as_str()
                .to_owned(),
        )
    }

    /// A new priority on the conversation's Case. A team has no Case field of Salesforce's own
    /// (an org routes Cases with its own assignment rules), so it is left to them.
    async fn change_escalation(&self, id: &ConversationId, routing: &Routing) -> Result<Outcome, Refusal> {
        let Some(case) = self.case_of(id).await? else {
            return skipped("the conversation has no Salesforce Case: its escalation made none");
        };
        let Some(priority) = routing.priority else {
            return skipped(
                "only a priority changes a Salesforce Case: the org's assignment rules route it to a team",
            );
        };
        let fields = timeline::case_priority(priority, &self.settings);
        let answer = self.call(&api::update(SObject::Case, &case, &fields)).await?;
        if !answer.is_success() {
            return Err(failure(&answer));
        }
        synced(case.as_str().to_owned())
    }

    /// A completed Task on the customer's record, and on the conversation's Case when it has one.
    async fn note(&self, _retrying: bool, id: &ConversationId, body: &str) -> Result<Outcome, Refusal> {
        let conversation = self.conversation(id).await?;
        let (who, _) = self.ensure_record(&conversation.customer_id).await?;
        let case = self.case_of(id).await?;
        synced(
            self.add_note(&who, case.as_ref(), body)
                .await?
                .as_str()
                .to_owned(),
        )
    }

    /// Who the credentials reach, the object permissions the configured work needs that the user
    /// lacks, and how much of the org's daily allowance is left (None when the user may not read
    /// the org's limits).
    async fn test_connection(&self) -> Result<ConnectionTest, ApiError> {
        // The REST API first: an expired token is refused there with a 401, which refreshes it
        // (the identity service answers 403 to an expired token).
        let objects = match self.read(&api::objects(), api::parse_objects).await {
            Ok(objects) => objects,
            Err(refusal) => return refused_test("Salesforce", refusal),
        };
        let identity = match self.identity().await {
            Ok(identity) => identity,
            Err(refusal) => return refused_test("Salesforce", refusal),
        };
        let limits = match self.read(&api::limits(), api::parse_limits).await {
            Ok(limits) => Some(limits),
            // Reading the org's limits needs View Setup and Configuration: a user without it
            // connects, and the test says so.
            Err(Refusal::Failed(domain::crm::retry::CallFailure::Status { status: 403, .. })) => None,
            Err(refusal) => return refused_test("Salesforce", refusal),
        };
        Ok(permissions::connection_test(
            &identity,
            &objects,
            limits,
            &self.settings,
        ))
    }

    /// Salesforce's settings need no call to check: a field they name that the org lacks is
    /// said by the connection test and by the first write that uses it.
    async fn check_settings(&self) -> Result<Option<Value>, ApiError> {
        Ok(None)
    }
}
