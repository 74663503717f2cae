//! Settling the messages we send: the dispatcher marks each `sent` (recording `message.sent`)
//! or `failed`, or notes why it waits for another attempt. Status changes follow the rank of
//! `MessageStatus`: a message never moves backwards, so a late or repeated delivery of the queue
//! message cannot undo what a status webhook recorded.

use crate::db;
use crate::db::Db;
use crate::db::webhook_events::{self, Guard, NewEvent};
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
    let batch = |provider_message_id: Option<&str>| -> Result<_, ApiError> {
        let mut batch = db::Batch::default();
        let moved = batch.write(db::messages::advance(
            db,
            tenant,
            message_id,
            MessageStatus::Sent,
            None,
            provider_message_id,
            &now_text,
        )?);
        let recorded = batch.read(webhook_events::record(
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
        )?);
        // Status callbacks that overtook this answer move the message on from `sent`.
        if let Some(provider_message_id) = provider_message_id {
            batch.push(db::early_statuses::apply_and_forget(
                db,
                tenant,
                message_id,
                provider_message_id,
                &now_text,
            )?);
        }
        Ok((batch, moved, recorded))
    };
    let (first, moved, recorded) = batch(provider_message_id)?;
    let (answers, moved, recorded) = match first.run(db).await {
        Ok(answers) => (answers, moved, recorded),
        // The provider reused an id we hold for another message: the status still counts.
        Err(error) if error.is_unique_on("messages") => {
            let (again, moved, recorded) = batch(None)?;
            (again.run(db).await?, moved, recorded)
        }
        Err(error) => return Err(ApiError::from(error).doing("updating outbound message")),
    };
    Ok(Advanced {
        moved: answers.changes(moved) > 0,
        event_ids: answers.take(recorded)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    /// A business with an endpoint taking every event, and one message accepted for sending.
    async fn queued(fixture: &Fixture) -> (Tenant, MessageId) {
        let (tenant, _) = fixture.whatsapp_business().await;
        let ada = fixture.ada(&tenant).await;
        let message = fixture.accept_whatsapp(&tenant, &ada, "Hello").await;
        (tenant, message.id)
    }

    /// [`mark_sent`] on `id` now, which must not fail.
    async fn marked_sent(
        fixture: &Fixture,
        tenant: &Tenant,
        id: &MessageId,
        provider_message_id: &str,
        base_url: Option<&str>,
    ) -> Advanced {
        mark_sent(&fixture.db, tenant, id, Some(provider_message_id), base_url)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn message(fixture: &Fixture, id: &MessageId) -> serde_json::Map<String, serde_json::Value> {
        fixture
            .rows("messages", "created_us")
            .into_iter()
            .find(|row| row["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no message {id}"))
    }

    fn sent_events(fixture: &Fixture) -> usize {
        fixture
            .rows("webhook_events", "created_us")
            .iter()
            .filter(|row| row["type"] == "message.sent")
            .count()
    }

    #[test]
    fn a_message_the_provider_accepted_is_sent_with_its_id_and_says_so_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = queued(&fixture).await;
            let first = marked_sent(&fixture, &tenant, &id, "wamid.out", Some("https://api.example")).await;
            assert!(first.moved);
            assert_eq!(first.event_ids.len(), 1);
            let row = message(&fixture, &id);
            assert_eq!(
                (row["status"].as_str(), row["provider_message_id"].as_str()),
                (Some("sent"), Some("wamid.out"))
            );
            let again = marked_sent(&fixture, &tenant, &id, "wamid.out", Some("https://api.example")).await;
            assert!(
                !again.moved && again.event_ids.is_empty(),
                "a repeated queue delivery"
            );
            fixture.stack.advance(std::time::Duration::from_secs(1));
            let later = marked_sent(&fixture, &tenant, &id, "wamid.out", None).await;
            assert!(!later.moved && later.event_ids.is_empty());
            assert_eq!(sent_events(&fixture), 1);
        });
    }

    #[test]
    fn a_message_further_along_is_not_moved_back() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = queued(&fixture).await;
            fixture.execute(
                "UPDATE messages SET status = 'read', provider_message_id = 'wamid.out' WHERE id = ?1",
                &[id.as_str()],
            );
            let sent = marked_sent(&fixture, &tenant, &id, "wamid.out", None).await;
            assert!(!sent.moved);
            let failed = mark_failed(&fixture.db, &tenant, &id, "too late")
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(!failed, "failed follows anything but read");
            assert_eq!(message(&fixture, &id)["status"], "read");
            assert_eq!(sent_events(&fixture), 0);
        });
    }

    #[test]
    fn a_failed_send_says_why_and_a_wait_for_another_attempt_is_noted() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, id) = queued(&fixture).await;
            note_retry(&fixture.db, &tenant, &id, "WhatsApp answered 503; trying again")
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let row = message(&fixture, &id);
            assert_eq!(
                (row["status"].as_str(), row["status_reason"].as_str()),
                (Some("queued"), Some("WhatsApp answered 503; trying again"))
            );
            let moved = mark_failed(&fixture.db, &tenant, &id, "the number is not on WhatsApp")
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert!(moved);
            let row = message(&fixture, &id);
            assert_eq!(
                (row["status"].as_str(), row["status_reason"].as_str()),
                (Some("failed"), Some("the number is not on WhatsApp"))
            );
            note_retry(&fixture.db, &tenant, &id, "late note")
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                message(&fixture, &id)["status_reason"],
                "the number is not on WhatsApp",
                "a note is only for a message still waiting"
            );
        });
    }

    #[test]
    fn a_provider_id_another_message_holds_still_marks_the_message_sent() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, first) = queued(&fixture).await;
            let ada = fixture.ada(&tenant).await;
            let second = fixture.accept_whatsapp(&tenant, &ada, "Again").await.id;
            marked_sent(&fixture, &tenant, &first, "wamid.reused", None).await;
            let advanced = marked_sent(&fixture, &tenant, &second, "wamid.reused", None).await;
            assert!(advanced.moved);
            let row = message(&fixture, &second);
            assert_eq!(
                (row["status"].as_str(), row["provider_message_id"].as_str()),
                (Some("sent"), None)
            );
            assert_eq!(sent_events(&fixture), 2);
        });
    }
}
