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
use crate::{db, outbox, runtime};
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
        let results = db.batch(vec![update, record]).await?;
        if db::changes_at(&results, 0) == 0 {
            continue;
        }
        outbox::publish(env, tenant, webhook_events::recorded(&results, 1)?).await;
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
