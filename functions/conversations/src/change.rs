//! Changing a conversation's status or assignee.
//!
//! The conversation is read, and the change written only if it still holds what was read (a
//! compare-and-set, retried a few times), so the event's `previous_status`/`previous_assignee`
//! are exactly what the change replaced, even when agents act at once, and its snapshot is the
//! conversation as the change left it.

use domain::error::ApiError;
use domain::ids::{ConversationId, EventId};
use domain::message::Conversation;
use domain::tenant::Tenant;
use domain::webhooks::EventType;
use edge::db::webhook_events::{self, Guard, NewEvent};
use edge::{DB, db, http, outbox, runtime};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use worker::{Env, Response};

const STATUSES: [&str; 4] = ["open", "pending", "resolved", "closed"];
const MAX_ASSIGNEE_CHARS: usize = 200;
const ATTEMPTS: usize = 3;

#[derive(Debug, Default, Deserialize)]
pub struct ChangeIn {
    status: Option<String>,
    /// Absent: unchanged; null: unassigned.
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// The change, checked.
struct Change {
    status: Option<&'static str>,
    assignee: Option<Option<String>>,
}

fn check(input: ChangeIn) -> Result<Change, ApiError> {
    let status = match input.status.as_deref().map(str::trim) {
        None => None,
        Some(name) => Some(
            STATUSES
                .into_iter()
                .find(|status| *status == name)
                .ok_or_else(|| {
                    ApiError::invalid("status", format!("status is one of {}", STATUSES.join(", ")))
                })?,
        ),
    };
    let assignee = match input.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(name)) => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_ASSIGNEE_CHARS {
                return Err(ApiError::invalid(
                    "assignee",
                    format!("assignee is 1 to {MAX_ASSIGNEE_CHARS} characters, or null to unassign"),
                ));
            }
            Some(Some(name.to_owned()))
        }
    };
    if status.is_none() && assignee.is_none() {
        return Err(ApiError::invalid(
            "status",
            "give status and/or assignee to change",
        ));
    }
    Ok(Change { status, assignee })
}

#[derive(Serialize)]
struct ConversationOut {
    conversation: Conversation,
}

pub async fn apply(
    env: &Env,
    tenant: &Tenant,
    id: &ConversationId,
    input: ChangeIn,
    origin: &str,
) -> Result<Response, ApiError> {
    let change = check(input)?;
    let db = env.d1(DB)?;
    for _ in 0..ATTEMPTS {
        let current = db::conversations::by_ids(&db, tenant, &[id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?;
        let status = change
            .status
            .map_or_else(|| current.status.clone(), str::to_owned);
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
            new_events.push(event.with_detail(json!({ "previous_status": current.status })));
        }
        if assignee != current.assignee {
            let event = NewEvent::new(
                EventId::generate(runtime::random()?),
                EventType::ConversationAssigned,
                id,
            );
            new_events.push(event.with_detail(json!({ "previous_assignee": current.assignee })));
        }
        if new_events.is_empty() {
            return http::json(
                200,
                &ConversationOut {
                    conversation: current,
                },
            );
        }
        let now = runtime::now();
        let now_text = now.to_rfc3339();
        let update =
            db::conversations::change(&db, tenant, &current, &status, assignee.as_deref(), &now_text)?;
        // The events follow the update, so their snapshots show the conversation as changed;
        // they are written only if this update applied (the conversation carries its values).
        let record = webhook_events::record(
            &db,
            tenant,
            Some(origin),
            now,
            &new_events,
            Guard::When(db::conversations::changed_to(
                id,
                &status,
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
        return http::json(200, &ConversationOut { conversation });
    }
    Err(ApiError::conflict(
        "the conversation was being changed by someone else at the same time; retry",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> ChangeIn {
        serde_json::from_str(json).unwrap_or_default()
    }

    #[test]
    fn a_change_names_a_known_status_or_an_assignee() {
        let cases = [
            (r#"{"status":"resolved"}"#, true, "a known status"),
            (r#"{"assignee":"ana@example.com"}"#, true, "an assignee"),
            (r#"{"assignee":null}"#, true, "unassigning"),
            (r#"{"status":"done"}"#, false, "an unknown status"),
            (r#"{"assignee":"  "}"#, false, "a blank assignee"),
            (r#"{}"#, false, "nothing to change"),
        ];
        for (json, ok, why) in cases {
            assert_eq!(check(input(json)).is_ok(), ok, "{why}");
        }
        let unassign = check(input(r#"{"assignee":null}"#)).ok().and_then(|c| c.assignee);
        assert_eq!(unassign, Some(None));
    }
}
