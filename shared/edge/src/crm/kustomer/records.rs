//! The copies of our records in Kustomer: a customer found (linked already, by email with Customer
//! Lookup, by the external id we give every customer when an earlier try may have made them) or
//! created, a 409 on create meaning Kustomer has them; a conversation made with its customer, as
//! an escalation makes it or as sync does; and a call about a record that Kustomer deleted, made
//! again about a new copy.

use super::{Kustomer, expect_resource};
use crate::crm::client::Refusal;
use crate::crm::gone;
use crate::db::{self, crm_links};
use domain::crm::kustomer::api::{self, ApiRequest, NewConversation, Resource};
use domain::crm::kustomer::settings::Priority;
use domain::crm::retry::CallFailure;
use domain::crm::work::{LinkKind, Routing};
use domain::ids::CustomerId;
use domain::lookup::CustomerKey;
use domain::message::Conversation;

impl Kustomer<'_> {
    /// Our customer's Kustomer id, finding or creating them: linked already; found by email
    /// (Customer Lookup); found by the external id we give every customer when an earlier try may
    /// have created them; otherwise created. `created` says whether this call created them.
    pub(super) async fn ensure_customer(
        &self,
        id: &CustomerId,
        retried: bool,
    ) -> Result<(String, bool), Refusal> {
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

    /// The team an escalation (or a new conversation) is given: the one asked for, else the
    /// default team when Auto Assignment is on.
    pub(super) fn team_of<'r>(&'r self, routing: Option<&'r Routing>) -> Option<&'r str> {
        routing.and_then(|routing| routing.team.as_deref()).or_else(|| {
            self.settings
                .auto_assignment
                .then_some(self.settings.default_team_id.as_deref())
                .flatten()
        })
    }

    /// The priority an escalation gives its conversation: the one asked for, else the escalation
    /// priority of the settings.
    pub(super) fn priority_of(&self, routing: &Routing) -> Priority {
        routing.priority.unwrap_or(self.settings.escalation_priority)
    }

    /// Our conversation's Kustomer id, creating the conversation (and its customer) when it has
    /// none; `as_escalation` (its reason and routing) creates it as an escalation does.
    pub(super) async fn ensure_conversation(
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
    pub(super) async fn call_on(
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
pub(super) enum Record<'r> {
    Customer(&'r CustomerId),
    Conversation(&'r Conversation),
}

#[cfg(test)]
mod tests {
    use super::super::tests::{crm_id, customer_created, performed};
    use super::*;
    use crate::crm::test_support::{
        Script, UNLIMITED, conversation, customer, kustomer_connector, kustomer_error, linked, record,
        rows_of,
    };
    use crate::testing::Fixture;
    use domain::crm::work::Operation;
    use serde_json::{Value, json};

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
}
