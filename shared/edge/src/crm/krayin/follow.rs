//! Each piece of work turned into Krayin's steps: one of our customers created or changed, a
//! conversation's moments (its activity per spell, its end, the lead's moves), a message, a note
//! or an escalation's reason; and each of Chatwoot's events, for a connector its webhooks feed.

use super::Krayin;
use super::contact::ContactState;
use crate::crm::client::Refusal;
use crate::crm::{Outcome, attachment_links, gone, skipped, synced};
use crate::db;
use crate::runtime;
use domain::channel::Direction;
use domain::crm::chatwoot::{self, ChatwootEvent};
use domain::crm::krayin::ActivityId;
use domain::crm::krayin::activity::{self, StageTrigger};
use domain::crm::krayin::api::Contact;
use domain::crm::work::ContactKey;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::lookup::CustomerKey;
use domain::message::Conversation;
use domain::time::Timestamp;
use domain::webhooks::EventType;

/// What the outcome of work on a contact's records says: the contact's Krayin ids, or the record
/// made.
fn done(state: &ContactState, record: Option<ActivityId>) -> Result<Outcome, Refusal> {
    synced(match record {
        Some(activity) => format!("krayin:activity:{activity}"),
        None => state.refs.to_string(),
    })
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

pub(super) async fn follow_customer(
    krayin: &Krayin<'_>,
    id: CustomerId,
    event: EventType,
) -> Result<Outcome, Refusal> {
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
pub(super) async fn follow_conversation(
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

pub(super) async fn follow_message(krayin: &Krayin<'_>, id: &MessageId) -> Result<Outcome, Refusal> {
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
pub(super) async fn note(
    krayin: &Krayin<'_>,
    title: &str,
    id: &ConversationId,
    text: &str,
) -> Result<Outcome, Refusal> {
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
pub(super) async fn follow_chatwoot(krayin: &Krayin<'_>, event: &ChatwootEvent) -> Result<Outcome, Refusal> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{calls, connector, follow, holding, message};
    use super::*;
    use crate::testing::Fixture;
    use serde_json::{Value, json};

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
