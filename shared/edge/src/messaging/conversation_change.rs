//! Changing a conversation's status or assignee, for the API's agents and for a CRM's webhook
//! alike.
//!
//! The conversation is read, and the change written only if it still holds what was read (a
//! compare-and-set, retried a few times), so the event's `previous_status`/`previous_assignee`
//! are exactly what the change replaced, even when agents act at once, and its snapshot is the
//! conversation as the change left it. A change a CRM made names its connector in the events'
//! detail, so it is not sent back to that CRM.

use crate::Env;
use crate::db::Db;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::{db, events::outbox, runtime};
use domain::crm::work::ORIGIN_CONNECTOR;
use domain::error::ApiError;
use domain::ids::{ConnectorId, ConversationId, EventId};
use domain::message::{Conversation, ConversationStatus};
use domain::tenant::Tenant;
use domain::webhooks::EventType;
use serde_json::{Value, json};

const ATTEMPTS: usize = 3;

/// A checked change: a status, and/or an assignee (None inside: unassigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: Option<ConversationStatus>,
    pub assignee: Option<Option<String>>,
}

/// Where a change comes from: the origin of the request (for links in its events) and the
/// connector whose CRM made it, if one did.
#[derive(Default)]
pub struct Source<'a> {
    pub origin: Option<&'a str>,
    pub connector: Option<&'a ConnectorId>,
}

/// Applies the change; the conversation as it is afterwards. Not found is a 404.
pub async fn apply(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    id: &ConversationId,
    change: &Change,
    source: &Source<'_>,
) -> Result<Conversation, ApiError> {
    let detail = |key: &str, value: Value| {
        let mut detail = json!({ key: value });
        if let (Some(connector), Value::Object(map)) = (source.connector, &mut detail) {
            map.insert(ORIGIN_CONNECTOR.to_owned(), json!(connector.as_str()));
        }
        detail
    };
    for _ in 0..ATTEMPTS {
        let current = db::conversations::by_ids(db, tenant, &[id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
        let status = change.status.unwrap_or(current.status);
        let assignee = change
            .assignee
            .clone()
            .unwrap_or_else(|| current.assignee.clone());
        let mut new_events = Vec::new();
        if status != current.status {
            let event = NewEvent::new(
                EventId::generate(runtime::random()?),
                EventType::ConversationStatusChanged,
                id,
            );
            new_events.push(event.with_detail(detail("previous_status", json!(current.status))));
        }
        if assignee != current.assignee {
            let event = NewEvent::new(
                EventId::generate(runtime::random()?),
                EventType::ConversationAssigned,
                id,
            );
            new_events.push(event.with_detail(detail("previous_assignee", json!(current.assignee))));
        }
        if new_events.is_empty() {
            return Ok(current);
        }
        let now = runtime::now();
        let now_text = now.to_rfc3339();
        let update = db::conversations::change(db, tenant, &current, status, assignee.as_deref(), &now_text)?;
        // The events follow the update, so their snapshots show the conversation as changed;
        // they are written only if this update applied (the conversation carries its values).
        let record = webhook_events::record(
            db,
            tenant,
            source.origin,
            now,
            &new_events,
            Guard::When(db::conversations::changed_to(
                id,
                status,
                assignee.as_deref(),
                &now_text,
            )),
        )?;
        let mut batch = db::Batch::default();
        let (update, record) = (batch.write(update), batch.read(record));
        let answers = batch.run(db).await?;
        if answers.changes(update) == 0 {
            continue;
        }
        outbox::publish(env, tenant, answers.take(record)?).await;
        let mut conversation = current;
        conversation.status = status;
        conversation.assignee = assignee;
        conversation.updated_at = now_text;
        return Ok(conversation);
    }
    Err(ApiError::conflict(
        "the conversation was being changed by someone else at the same time; retry",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::outbox::{WEBHOOKS, WebhookTask};
    use crate::testing::Fixture;
    use serde_json::Map;

    /// A business with an endpoint taking every event, and a conversation with Ada (open, no
    /// assignee); the events so far forgotten.
    async fn conversation(fixture: &Fixture) -> (Tenant, ConversationId) {
        let (tenant, _) = fixture.whatsapp_business().await;
        let ada = fixture.ada(&tenant).await;
        let message = fixture.accept_whatsapp(&tenant, &ada, "Hello").await;
        fixture.execute("DELETE FROM webhook_events", &[]);
        fixture.stack.purge(WEBHOOKS);
        (tenant, message.conversation_id)
    }

    fn events(fixture: &Fixture) -> Vec<Map<String, Value>> {
        fixture.rows("webhook_events", "type")
    }

    fn detail(event: &Map<String, Value>) -> Value {
        serde_json::from_str(event["detail"].as_str().unwrap_or("null")).unwrap_or_default()
    }

    async fn change(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &ConversationId,
        change: Change,
        source: &Source<'_>,
    ) -> Result<Conversation, ApiError> {
        apply(&fixture.env, &fixture.db, tenant, id, &change, source).await
    }

    #[test]
    fn a_status_change_records_what_it_replaced_and_the_conversation_as_it_left_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = conversation(&fixture).await;
            fixture.stack.advance(std::time::Duration::from_secs(5));
            let changed = change(
                &fixture,
                &tenant,
                &id,
                Change {
                    status: Some(ConversationStatus::Resolved),
                    assignee: None,
                },
                &Source {
                    origin: Some("https://api.example"),
                    connector: None,
                },
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(changed.status, ConversationStatus::Resolved);
            assert_eq!(changed.updated_at, runtime::now().to_rfc3339());
            assert_eq!(fixture.rows("conversations", "id")[0]["status"], "resolved");
            let events = events(&fixture);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0]["type"], "conversation.status_changed");
            assert_eq!(detail(&events[0]), json!({ "previous_status": "open" }));
            let snapshot: Value = serde_json::from_str(events[0]["snapshot"].as_str().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(snapshot["conversation"]["status"], "resolved", "{snapshot}");
            let published = fixture.stack.queued(WEBHOOKS);
            assert_eq!(published.len(), 1);
            assert!(matches!(
                serde_json::from_str::<WebhookTask>(&published[0].body),
                Ok(WebhookTask::Dispatch { event_ids, .. }) if event_ids.len() == 1
            ));
        });
    }

    #[test]
    fn an_assignment_records_the_previous_assignee_and_both_at_once_record_both() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = conversation(&fixture).await;
            change(
                &fixture,
                &tenant,
                &id,
                Change {
                    status: None,
                    assignee: Some(Some("grace".to_owned())),
                },
                &Source::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            let assigned = events(&fixture);
            assert_eq!(assigned.len(), 1);
            assert_eq!(
                (assigned[0]["type"].as_str(), detail(&assigned[0])),
                (
                    Some("conversation.assigned"),
                    json!({ "previous_assignee": null })
                )
            );
            fixture.execute("DELETE FROM webhook_events", &[]);
            let both = change(
                &fixture,
                &tenant,
                &id,
                Change {
                    status: Some(ConversationStatus::Pending),
                    assignee: Some(None),
                },
                &Source::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!((both.status, both.assignee), (ConversationStatus::Pending, None));
            let recorded: Vec<(String, Value)> = events(&fixture)
                .iter()
                .map(|event| {
                    (
                        event["type"].as_str().unwrap_or_default().to_owned(),
                        detail(event),
                    )
                })
                .collect();
            assert_eq!(
                recorded,
                vec![
                    (
                        "conversation.assigned".to_owned(),
                        json!({ "previous_assignee": "grace" })
                    ),
                    (
                        "conversation.status_changed".to_owned(),
                        json!({ "previous_status": "open" })
                    ),
                ]
            );
        });
    }

    #[test]
    fn a_change_to_what_it_already_is_records_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = conversation(&fixture).await;
            let unchanged = change(
                &fixture,
                &tenant,
                &id,
                Change {
                    status: Some(ConversationStatus::Open),
                    assignee: Some(None),
                },
                &Source::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(unchanged.status, ConversationStatus::Open);
            assert!(events(&fixture).is_empty());
            assert!(fixture.stack.queued(WEBHOOKS).is_empty());
        });
    }

    #[test]
    fn a_change_a_crm_made_names_its_connector_so_it_is_not_sent_back() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = conversation(&fixture).await;
            let connector = ConnectorId::generate([4; 16]);
            change(
                &fixture,
                &tenant,
                &id,
                Change {
                    status: Some(ConversationStatus::Closed),
                    assignee: None,
                },
                &Source {
                    origin: None,
                    connector: Some(&connector),
                },
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                detail(&events(&fixture)[0]),
                json!({ "previous_status": "open", ORIGIN_CONNECTOR: connector.as_str() })
            );
        });
    }

    #[test]
    fn another_businesss_conversation_or_none_is_not_found() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (_, id) = conversation(&fixture).await;
            let other = fixture.business("Globex").await;
            let cases = [
                (other.clone(), id.clone(), "another business's"),
                (other, ConversationId::generate([9; 16]), "none"),
            ];
            for (tenant, id, description) in cases {
                let error = change(
                    &fixture,
                    &tenant,
                    &id,
                    Change {
                        status: Some(ConversationStatus::Closed),
                        assignee: None,
                    },
                    &Source::default(),
                )
                .await
                .err();
                assert_eq!(error.map(|error| error.status()), Some(404), "{description}");
            }
            assert_eq!(fixture.rows("conversations", "id")[0]["status"], "open");
        });
    }
}
