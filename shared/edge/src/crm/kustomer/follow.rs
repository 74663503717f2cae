//! Each piece of work turned into Kustomer's calls: a customer created or changed, a conversation
//! made or its status or assignee changed, a message written to the timeline once, an escalation
//! (the conversation raised to its priority and team, with a note of why and the history), its
//! routing changed since, and an internal note.

use super::Kustomer;
use super::records::Record;
use crate::crm::client::Refusal;
use crate::crm::{Outcome, attachment_links, gone, skipped, synced};
use crate::db;
use domain::crm::kustomer::api::{self, ApiRequest};
use domain::crm::kustomer::escalation;
use domain::crm::work::{LinkKind, Routing};
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::lookup::CustomerKey;
use domain::webhooks::EventType;

/// Messages of a conversation included in an escalation's note (the note keeps the newest that fit).
const HISTORY_MESSAGES: usize = 200;

pub(super) async fn follow_customer(
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

pub(super) async fn follow_conversation(
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
pub(super) async fn follow_conversation_change(
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

pub(super) async fn follow_message(
    kustomer: &Kustomer<'_>,
    retrying: bool,
    id: &MessageId,
) -> Result<Outcome, Refusal> {
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
pub(super) async fn escalate(
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
pub(super) async fn reroute(
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
pub(super) async fn note(
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

#[cfg(test)]
mod tests {
    use super::super::tests::{crm_id, performed};
    use super::*;
    use crate::crm::test_support::{
        Script, UNLIMITED, conversation, customer, kustomer_connector, linked, message,
    };
    use crate::testing::Fixture;
    use domain::crm::work::Operation;
    use serde_json::{Value, json};

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
}
