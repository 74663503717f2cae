//! Settling the messages we send: the dispatcher marks each `sent` (recording `message.sent`)
//! or `failed`, or notes why it waits for another attempt. Status changes follow the rank of
//! `MessageStatus`: a message never moves backwards, so a late or repeated delivery of the queue
//! message cannot undo what a status webhook recorded.

use crate::db::Db;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{self, Violation};
use crate::runtime;
use domain::channel::MessageStatus;
use domain::error::ApiError;
use domain::ids::{EventId, MessageId};
use domain::tenant::Tenant;
use domain::webhooks::EventType;

/// What a move did.
pub struct Advanced {
    /// The message moved (it was not already there or further along).
    pub moved: bool,
    /// Events recorded with the move, for `outbox::publish`.
    pub event_ids: Vec<EventId>,
}

/// The provider accepted the message: it is `sent`, and `message.sent` is recorded once.
/// `base_url`: the deployment's public origin, for the event's download links.
pub async fn mark_sent(
    db: &Db,
    tenant: &Tenant,
    message_id: &MessageId,
    provider_message_id: Option<&str>,
    base_url: Option<&str>,
) -> Result<Advanced, ApiError> {
    let now = runtime::now();
    let now_text = now.to_rfc3339();
    let kind = EventType::MessageSent;
    // The event follows the update, so its snapshot shows the message as moved. It is written
    // only if this update moved it (the message carries this call's time), and only once.
    let statements = |provider_message_id: Option<&str>| -> Result<_, ApiError> {
        let mut statements = vec![
            db::messages::advance(
                db,
                tenant,
                message_id,
                MessageStatus::Sent,
                None,
                provider_message_id,
                &now_text,
            )?,
            webhook_events::record(
                db,
                tenant,
                base_url,
                now,
                &[NewEvent::new(
                    EventId::generate(runtime::random()?),
                    kind,
                    message_id,
                )],
                Guard::When(
                    db::messages::moved_to(message_id, MessageStatus::Sent, &now_text)
                        .and(webhook_events::none_recorded(kind, message_id)),
                ),
            )?,
        ];
        // Status callbacks that overtook this answer move the message on from `sent`.
        if let Some(provider_message_id) = provider_message_id {
            statements.extend(db::early_statuses::apply_and_forget(
                db,
                tenant,
                message_id,
                provider_message_id,
                &now_text,
            )?);
        }
        Ok(statements)
    };
    let results = match db.batch(statements(provider_message_id)?).await {
        Ok(results) => results,
        // The provider reused an id we hold for another message: the status still counts.
        Err(error) if Violation::of(&error).is_some_and(|v| v.is_unique_on("messages")) => {
            db.batch(statements(None)?).await?
        }
        Err(error) => return Err(ApiError::internal("updating outbound message", error)),
    };
    Ok(Advanced {
        moved: db::changes_at(&results, 0) > 0,
        event_ids: webhook_events::recorded(&results, 1)?,
    })
}

/// The message will not be sent; `reason` says why, for the client. True if it moved.
pub async fn mark_failed(
    db: &Db,
    tenant: &Tenant,
    message_id: &MessageId,
    reason: &str,
) -> Result<bool, ApiError> {
    let now = runtime::now().to_rfc3339();
    let result = db::messages::advance(
        db,
        tenant,
        message_id,
        MessageStatus::Failed,
        Some(reason),
        None,
        &now,
    )?
    .run()
    .await?;
    Ok(db::changes(&result) > 0)
}

/// Records why a still-queued message is waiting for another attempt.
pub async fn note_retry(
    db: &Db,
    tenant: &Tenant,
    message_id: &MessageId,
    reason: &str,
) -> Result<(), ApiError> {
    db::messages::note_retry(db, tenant, message_id, reason, &runtime::now().to_rfc3339()).await
}
