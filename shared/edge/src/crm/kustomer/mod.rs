//! Kustomer's side of the sync pipeline, and the calls the API makes to it directly (the
//! connection test, teams, a customer's history). What a request looks like and what an answer
//! means is pure (`domain::crm::kustomer`); this module decides which calls a piece of work needs,
//! makes them through the connector's budget, and keeps the ids Kustomer gives our records.
//!
//! Every step is safe to repeat: a record already linked is not created again, and a customer a
//! crashed try may have created is looked up by the external id we give every customer.
//!
//! This file holds the connection (its calls, what an answer that is no success means) and the
//! `Live` face the sync sees; `records` finds or makes the copies of our customers and
//! conversations in Kustomer, `follow` turns each piece of work into calls about them, and
//! `direct` is what the API asks Kustomer directly.

mod direct;
mod follow;
mod records;

pub use direct::{customer_by_email, history, open_titled_conversation, teams};

use crate::Env;
use crate::crm::client::{Answer, Client, Refusal};
use crate::crm::{Connected, Connection, ConnectionTest, Live, Outcome, unreadable};
use crate::db::Db;
use crate::db::crm_connectors::Connector;
use direct::{check_settings, test_connection};
use domain::crm::kustomer::api::{self, ApiRequest, Resource};
use domain::crm::kustomer::permissions::CurrentToken;
use domain::crm::kustomer::settings::KustomerSettings;
use domain::crm::work::Routing;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::time::Timestamp;
use domain::webhooks::EventType;
use follow::{
    escalate, follow_conversation, follow_conversation_change, follow_customer, follow_message, note, reroute,
};

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

    /// The resource a lookup finds, or None on its 404.
    async fn find(&self, request: &ApiRequest) -> Result<Option<Resource>, Refusal> {
        let answer = self.send(request).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        expect_resource(&answer).map(Some)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{Script, UNLIMITED, kustomer_connector};
    use crate::testing::Fixture;
    use domain::crm::retry::CallFailure;
    use domain::crm::work::Operation;
    use serde_json::{Value, json};

    /// Runs `operation` on `subject` for the connector as the sync consumer would, as try
    /// number `attempts + 1`.
    pub(super) async fn performed(
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

    pub(super) fn crm_id(outcome: Result<Outcome, Refusal>) -> String {
        match outcome {
            Ok(Outcome::Synced { crm_id: Some(id) }) => id,
            other => panic!("synced: {other:?}"),
        }
    }

    pub(super) fn customer_created() -> Operation {
        Operation::Follow(EventType::CustomerCreated)
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
}
