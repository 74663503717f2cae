//! `attachments`: the rows of files kept in R2 (`media_store` writes the bytes). A file is
//! uploaded alone, then linked to the one message it is sent with; files received with a message
//! are linked at once. Every statement is scoped by the tenant, but for the lookup of a signed
//! download link, whose signature names the business.

use crate::db::Read;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Sql, number, text};
use crate::db::{Db, Statement};
use domain::error::ApiError;
use domain::ids::{AttachmentId, BusinessId, ChannelAccountId, MessageId};
use domain::message::{Attachment, Message};
use domain::tenant::Tenant;
use serde::Deserialize;

/// The statement that records a stored file; run it in the caller's batch, so the row exists
/// only if the caller's transaction commits.
pub fn insert(
    db: &Db,
    tenant: &Tenant,
    attachment: &Attachment,
    storage_key: &str,
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO attachments (id, business_id, message_id, filename, mime_type, size, storage_key, created_at) \
             VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&[
            text(attachment.id.as_str()),
            db::optional_text(attachment.message_id.as_ref().map(MessageId::as_str)),
            text(&attachment.filename),
            text(&attachment.mime_type),
            number(attachment.size),
            text(storage_key),
            text(&attachment.created_at)])?)
}

/// The attachments of the given messages, in creation order.
pub async fn of_messages(
    db: &Db,
    tenant: &Tenant,
    message_ids: &[&MessageId],
) -> Result<Vec<Attachment>, ApiError> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    of_messages_read(db, tenant, message_ids)?.run().await
}

/// The read of [`of_messages`], for a caller's batch.
pub fn of_messages_read(
    db: &Db,
    tenant: &Tenant,
    message_ids: &[&MessageId],
) -> Result<Read<Vec<Attachment>>, ApiError> {
    Ok(Read::rows(db
        .scoped(tenant, "SELECT id, message_id, filename, mime_type AS \"type\", size, created_at, status, status_reason FROM attachments \
             WHERE business_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) ORDER BY created_at, id",
        )
        .bind(&[
            db::json_list(message_ids.iter().map(|id| id.as_str())),
        ])?))
}

/// The statement that reads the attachments of the messages `message_ids` selects (SQL naming
/// `:business`), in creation order: for a caller's batch that learns the messages in the same
/// round trip.
pub fn of_messages_among(
    db: &Db,
    tenant: &Tenant,
    message_ids: Sql,
) -> Result<Read<Vec<Attachment>>, ApiError> {
    Ok(Read::rows(
        message_ids
            .within(
                "SELECT id, message_id, filename, mime_type AS \"type\", size, created_at, status, status_reason FROM attachments \
                 WHERE business_id = :business AND message_id IN ({sql}) ORDER BY created_at, id",
            )
            .scoped(db, tenant)?,
    ))
}

/// Fills in each message's attachments (one query for all of them), with download links under
/// the deployment's `origin`.
pub async fn attach_to(
    db: &Db,
    tenant: &Tenant,
    origin: &str,
    messages: &mut [Message],
) -> Result<(), ApiError> {
    let ids: Vec<&MessageId> = messages.iter().map(|message| &message.id).collect();
    let mut found = of_messages(db, tenant, &ids).await?;
    for message in messages.iter_mut() {
        let (mine, rest): (Vec<_>, Vec<_>) = found
            .into_iter()
            .partition(|attachment| attachment.message_id.as_ref() == Some(&message.id));
        message.attachments = Some(
            mine.into_iter()
                .map(|attachment| attachment.with_download_url(origin))
                .collect(),
        );
        found = rest;
    }
    Ok(())
}

/// An attachment a client named, as stored: its owner message, if it has one already.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub id: AttachmentId,
    pub message_id: Option<MessageId>,
}

/// The tenant's attachments among `ids` (the others do not exist for this business).
pub async fn find(db: &Db, tenant: &Tenant, ids: &[&AttachmentId]) -> Result<Vec<Named>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = db
        .scoped(tenant, "SELECT id, message_id FROM attachments WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[
            db::json_list(ids.iter().map(|id| id.as_str())),
        ])?
        .all()
        .await?;
    Ok(result.rows::<Named>()?)
}

/// The statement that links the named uploads, those not sent with another message yet, to
/// `message_id`. Pair it with [`all_linked`] to refuse a send whose uploads another took first.
pub fn link(
    db: &Db,
    tenant: &Tenant,
    message_id: &MessageId,
    ids: &[&AttachmentId],
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE attachments SET message_id = ?2 WHERE business_id = ?1 AND message_id IS NULL \
             AND id IN (SELECT value FROM json_each(?3))",
        )
        .bind(&[
            text(message_id.as_str()),
            db::json_list(ids.iter().map(|id| id.as_str())),
        ])?)
}

/// The condition that exactly `count` attachments are linked to `message_id`.
pub fn all_linked(message_id: &MessageId, count: usize) -> Sql {
    Sql::new(
        "(SELECT COUNT(*) FROM attachments WHERE business_id = :business AND message_id = :linked_message) \
         = :linked_count",
    )
    .bind("linked_message", text(message_id.as_str()))
    .bind("linked_count", number(count as i64))
}

/// What a download needs of a stored file.
#[derive(Debug, Deserialize)]
pub struct Download {
    pub business_id: BusinessId,
    pub filename: String,
    pub mime_type: String,
    pub storage_key: String,
}

/// The stored file `id` of whatever business, for a download whose link or key is checked
/// against `business_id` next. A file still pending or failed has no bytes to download.
pub async fn for_download(db: &Db, id: &AttachmentId) -> Result<Option<Download>, ApiError> {
    Ok(db
        .unscoped(
            "SELECT business_id, filename, mime_type, storage_key FROM attachments WHERE id = ?1 AND status = 'stored'",
        )
        .bind(&[text(id.as_str())])?
        .first::<Download>(None)
        .await?)
}

/// A file received with a message, recorded before its bytes are fetched.
pub struct NewPending<'a> {
    pub id: &'a AttachmentId,
    pub message_id: &'a MessageId,
    pub account_id: &'a ChannelAccountId,
    pub filename: &'a str,
    pub mime_type: &'a str,
    pub storage_key: &'a str,
    /// The provider's description of where the bytes are (JSON).
    pub source: &'a str,
    pub created_at: &'a str,
}

/// The statement that records a file to fetch, `pending`.
pub fn insert_pending(db: &Db, tenant: &Tenant, new: &NewPending<'_>) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(tenant, "INSERT INTO attachments (id, business_id, message_id, filename, mime_type, size, storage_key, created_at, \
             status, source, account_id) VALUES (?2, ?1, ?3, ?4, ?5, 0, ?6, ?7, 'pending', ?8, ?9)",
        )
        .bind(&[
            text(new.id.as_str()),
            text(new.message_id.as_str()),
            text(new.filename),
            text(new.mime_type),
            text(new.storage_key),
            text(new.created_at),
            text(new.source),
            text(new.account_id.as_str())])?)
}

/// A file still to fetch, as recorded.
#[derive(Debug, Deserialize)]
pub struct Pending {
    pub message_id: MessageId,
    pub account_id: ChannelAccountId,
    pub filename: String,
    pub mime_type: String,
    pub storage_key: String,
    pub source: String,
}

/// The tenant's attachment `id` if it is still pending.
pub async fn pending(db: &Db, tenant: &Tenant, id: &AttachmentId) -> Result<Option<Pending>, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "SELECT message_id, account_id, filename, mime_type, storage_key, source FROM attachments \
             WHERE business_id = ?1 AND id = ?2 AND status = 'pending'",
        )
        .bind(&[text(id.as_str())])?
        .first::<Pending>(None)
        .await?)
}

/// Settles a pending attachment: `stored` with what was fetched, or `failed` with why. False
/// when it was not pending any more.
pub async fn settle(
    db: &Db,
    tenant: &Tenant,
    id: &AttachmentId,
    outcome: Result<(&str, i64), &str>,
) -> Result<bool, ApiError> {
    let (status, mime_type, size, reason) = match outcome {
        Ok((mime_type, size)) => ("stored", Some(mime_type), size, None),
        Err(reason) => ("failed", None, 0, Some(reason)),
    };
    let result = db
        .scoped(tenant, "UPDATE attachments SET status = ?3, mime_type = COALESCE(?4, mime_type), size = ?5, status_reason = ?6, \
             source = NULL WHERE business_id = ?1 AND id = ?2 AND status = 'pending'",
        )
        .bind(&[
            text(id.as_str()),
            text(status),
            db::optional_text(mime_type),
            number(size),
            db::optional_text(reason),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) > 0)
}

/// How many of the message's attachments are still pending.
pub async fn pending_of_message(db: &Db, tenant: &Tenant, message_id: &MessageId) -> Result<usize, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        pending: usize,
    }
    Ok(db
        .scoped(tenant, "SELECT COUNT(*) AS pending FROM attachments WHERE business_id = ?1 AND message_id = ?2 AND status = 'pending'",
        )
        .bind(&[text(message_id.as_str())])?
        .first::<Row>(None)
        .await?
        .map_or(0, |row| row.pending))
}

/// SQL selecting the pending files of the message an event of the table aliased `events` is about.
pub fn pending_of_subject_sql(events: &str) -> Sql {
    Sql::new(format!(
        "SELECT 1 FROM attachments a WHERE a.message_id = {events}.subject_id \
         AND a.business_id = {events}.business_id AND a.status = 'pending'"
    ))
}

/// A pending file, across businesses, for the maintenance sweep.
#[derive(Debug, Deserialize)]
pub struct Unsettled {
    pub id: AttachmentId,
    pub business_id: BusinessId,
    pub message_id: MessageId,
}

/// Up to `limit` files still pending that were received before `before` (RFC 3339), oldest first;
/// with `not_requeued`, only those the sweep has not handed back yet.
pub async fn unsettled_before(
    db: &Db,
    moving: &Moving,
    before: &str,
    not_requeued: bool,
    limit: usize,
) -> Result<Vec<Unsettled>, ApiError> {
    let sql = if not_requeued {
        "SELECT id, business_id, message_id FROM attachments WHERE status = 'pending' AND created_at < ?1 \
         AND requeued_at IS NULL AND business_id NOT IN (SELECT value FROM json_each(?3)) \
         ORDER BY created_at LIMIT ?2"
    } else {
        "SELECT id, business_id, message_id FROM attachments WHERE status = 'pending' AND created_at < ?1 \
         AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY created_at LIMIT ?2"
    };
    Ok(db
        .unscoped(sql)
        .bind(&[text(before), number(limit as i64), moving.param()])?
        .all()
        .await?
        .rows::<Unsettled>()?)
}

/// Notes that the sweep handed these pending files back at `now`.
pub async fn mark_requeued(db: &Db, ids: &[&AttachmentId], now: &str) -> Result<(), ApiError> {
    let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    db.unscoped(
        "UPDATE attachments SET requeued_at = ?2 WHERE status = 'pending' AND id IN (SELECT value FROM json_each(?1))",
    )
    .bind(&[text(&serde_json::to_string(&ids)?), text(now)])?
    .run()
    .await?;
    Ok(())
}

/// A stored file of a message an erasure deletes: its row's id and its object's key.
#[derive(Debug, Clone, Deserialize)]
pub struct Stored {
    pub id: AttachmentId,
    pub storage_key: String,
}

/// The files of the messages `messages` selects, stored or not (an erasure deletes each object a
/// key names; one never stored is not there to delete).
pub async fn stored_of_messages(db: &Db, tenant: &Tenant, messages: Sql) -> Result<Vec<Stored>, ApiError> {
    Ok(messages
        .within(
            "SELECT id, storage_key FROM attachments WHERE business_id = :business AND message_id IN ({sql})",
        )
        .scoped(db, tenant)?
        .all()
        .await?
        .rows::<Stored>()?)
}

/// The statement that deletes the rows of the files of the messages `messages` selects.
pub fn erase_of_messages(db: &Db, tenant: &Tenant, messages: Sql) -> Result<Statement, ApiError> {
    messages
        .within("DELETE FROM attachments WHERE business_id = :business AND message_id IN ({sql})")
        .scoped(db, tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::channel::Channel;
    use domain::message::AttachmentStatus;
    use std::time::Duration;

    fn upload(fixture: &Fixture, message: Option<&MessageId>) -> Attachment {
        Attachment {
            id: AttachmentId::generate(random()),
            message_id: message.cloned(),
            filename: "invoice.pdf".to_owned(),
            mime_type: "application/pdf".to_owned(),
            size: 2048,
            created_at: fixture.now().to_rfc3339(),
            status: AttachmentStatus::Stored,
            status_reason: None,
            download_url: None,
        }
    }

    async fn store(fixture: &Fixture, tenant: &Tenant, attachment: &Attachment) {
        let key = format!("businesses/{}/attachments/{}", tenant.business_id, attachment.id);
        fixture
            .db
            .batch(vec![insert(&fixture.db, tenant, attachment, &key).must()])
            .await
            .must();
    }

    async fn linked(fixture: &Fixture, tenant: &Tenant, message: &MessageId, count: usize) -> bool {
        #[derive(Deserialize)]
        struct Row {
            held: i64,
        }
        let row = all_linked(message, count)
            .within("SELECT {sql} AS held")
            .scoped(&fixture.db, tenant)
            .must()
            .first::<Row>(None)
            .await
            .must();
        row.is_some_and(|row| row.held == 1)
    }

    /// A business with a message of its own, and a file received with it still to fetch.
    async fn received(fixture: &Fixture, name: &str, shard: u16) -> (Tenant, MessageId, AttachmentId) {
        let tenant = fixture.business_on(name, shard).await;
        let account = fixture.account(&tenant, Channel::Whatsapp).await;
        let message = fixture
            .receive(
                &tenant,
                Channel::Whatsapp,
                &account,
                "+353871234567",
                "photo",
                "wamid.1",
            )
            .await;
        let message = message.unwrap_or_else(|| panic!("stored"));
        let id = AttachmentId::generate(random());
        let created_at = fixture.now().to_rfc3339();
        let pending = NewPending {
            id: &id,
            message_id: &message,
            account_id: &account,
            filename: "photo.jpg",
            mime_type: "application/octet-stream",
            storage_key: "businesses/b/attachments/a",
            source: "{\"media_id\":\"m1\"}",
            created_at: &created_at,
        };
        fixture
            .db
            .batch(vec![insert_pending(&fixture.db, &tenant, &pending).must()])
            .await
            .must();
        (tenant, message, id)
    }

    #[test]
    fn an_upload_goes_with_the_one_message_that_links_it_first() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let account = fixture.account(&acme, Channel::Email).await;
            let ann = fixture.customer(&acme, "Ann").await;
            let (first, second) = (
                fixture.send(&acme, &ann, Channel::Email, &account, "one").await,
                fixture.send(&acme, &ann, Channel::Email, &account, "two").await,
            );
            let file = upload(&fixture, None);
            store(&fixture, &acme, &file).await;
            let named = find(&fixture.db, &acme, &[&file.id]).await.must();
            assert_eq!(
                named
                    .iter()
                    .map(|n| (n.id.clone(), n.message_id.clone()))
                    .collect::<Vec<_>>(),
                [(file.id.clone(), None)]
            );
            assert_eq!(
                fixture
                    .changes(link(&fixture.db, &acme, &first.id, &[&file.id]).must())
                    .await,
                1
            );
            assert!(linked(&fixture, &acme, &first.id, 1).await);
            assert_eq!(
                fixture
                    .changes(link(&fixture.db, &acme, &second.id, &[&file.id]).must())
                    .await,
                0,
                "taken first"
            );
            assert!(
                !linked(&fixture, &acme, &second.id, 1).await,
                "the second send is refused"
            );
            let found = of_messages(&fixture.db, &acme, &[&first.id, &second.id])
                .await
                .must();
            assert_eq!(
                found,
                [Attachment {
                    message_id: Some(first.id.clone()),
                    ..file.clone()
                }]
            );

            let mut messages = crate::db::messages::by_ids(&fixture.db, &acme, &[&first.id, &second.id])
                .await
                .must();
            attach_to(&fixture.db, &acme, "https://edge.test", &mut messages)
                .await
                .must();
            let attached: Vec<usize> = messages
                .iter()
                .map(|m| m.attachments.as_ref().map_or(0, Vec::len))
                .collect();
            assert_eq!(attached, [1, 0]);
            let url = messages[0]
                .attachments
                .as_ref()
                .and_then(|a| a[0].download_url.clone());
            assert_eq!(
                url,
                Some(format!("https://edge.test/api/download-media?id={}", file.id))
            );
        });
    }

    #[test]
    fn another_business_neither_names_nor_links_nor_settles_a_file() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, message, pending_id) = received(&fixture, "Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let file = upload(&fixture, None);
            store(&fixture, &acme, &file).await;
            assert!(
                find(&fixture.db, &globex, &[&file.id, &pending_id])
                    .await
                    .must()
                    .is_empty()
            );
            assert!(
                of_messages(&fixture.db, &globex, &[&message])
                    .await
                    .must()
                    .is_empty()
            );
            assert!(pending(&fixture.db, &globex, &pending_id).await.must().is_none());
            assert_eq!(pending_of_message(&fixture.db, &globex, &message).await.must(), 0);
            assert_eq!(
                fixture
                    .changes(link(&fixture.db, &globex, &message, &[&file.id]).must())
                    .await,
                0
            );
            assert!(
                !settle(&fixture.db, &globex, &pending_id, Ok(("image/jpeg", 10)))
                    .await
                    .must()
            );
            assert_eq!(pending_of_message(&fixture.db, &acme, &message).await.must(), 1);
            // A download link names the business; the file is found by id alone, then checked.
            let download = for_download(&fixture.db, &file.id)
                .await
                .must()
                .unwrap_or_else(|| panic!("stored"));
            assert_eq!(download.business_id, acme.business_id);
        });
    }

    #[test]
    fn a_received_file_settles_once_and_is_downloadable_only_when_stored() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, message, id) = received(&fixture, "Acme", 0).await;
            let waiting = pending(&fixture.db, &acme, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("pending"));
            assert_eq!(
                (waiting.message_id, waiting.source.as_str()),
                (message.clone(), "{\"media_id\":\"m1\"}")
            );
            assert!(
                for_download(&fixture.db, &id).await.must().is_none(),
                "no bytes yet"
            );
            assert_eq!(pending_of_message(&fixture.db, &acme, &message).await.must(), 1);
            assert!(
                settle(&fixture.db, &acme, &id, Ok(("image/jpeg", 5120)))
                    .await
                    .must()
            );
            assert!(
                !settle(&fixture.db, &acme, &id, Err("late failure")).await.must(),
                "settled once"
            );
            let stored = of_messages(&fixture.db, &acme, &[&message]).await.must();
            assert_eq!(
                (stored[0].status, stored[0].mime_type.as_str(), stored[0].size),
                (AttachmentStatus::Stored, "image/jpeg", 5120)
            );
            assert!(pending(&fixture.db, &acme, &id).await.must().is_none());
            assert_eq!(pending_of_message(&fixture.db, &acme, &message).await.must(), 0);
            let row = &fixture.rows("attachments", "id")[0];
            assert_eq!(
                row["source"],
                serde_json::json!(null),
                "where it came from is forgotten"
            );
            let download = for_download(&fixture.db, &id)
                .await
                .must()
                .unwrap_or_else(|| panic!("stored"));
            assert_eq!(
                (download.filename.as_str(), download.mime_type.as_str()),
                ("photo.jpg", "image/jpeg")
            );

            let (other, other_message, failed) = received(&fixture, "Globex", 0).await;
            assert!(
                settle(&fixture.db, &other, &failed, Err("the provider lost it"))
                    .await
                    .must()
            );
            let found = of_messages(&fixture.db, &other, &[&other_message]).await.must();
            assert_eq!(
                (found[0].status, found[0].status_reason.as_deref()),
                (AttachmentStatus::Failed, Some("the provider lost it"))
            );
            assert_eq!(found[0].mime_type, "application/octet-stream", "kept as received");
            assert!(for_download(&fixture.db, &failed).await.must().is_none());
        });
    }

    #[test]
    fn the_sweep_finds_each_shards_unsettled_files_and_hands_each_back_once() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, message, old) = received(&fixture, "Acme", 0).await;
            let (globex, _, theirs) = received(&fixture, "Globex", 1).await;
            fixture.stack.advance(Duration::from_secs(600));
            let recent = AttachmentId::generate(random());
            let account = fixture.account(&acme, Channel::Sms).await;
            let created_at = fixture.now().to_rfc3339();
            let pending = NewPending {
                id: &recent,
                message_id: &message,
                account_id: &account,
                filename: "b.jpg",
                mime_type: "image/jpeg",
                storage_key: "k",
                source: "{}",
                created_at: &created_at,
            };
            fixture
                .db
                .batch(vec![insert_pending(&fixture.db, &acme, &pending).must()])
                .await
                .must();
            let before = fixture.now().plus_seconds(-300).to_rfc3339();
            let shards = fixture.db.each_shard();
            let ids = |found: Vec<Unsettled>| {
                found
                    .into_iter()
                    .map(|u| (u.business_id, u.id))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                ids(unsettled_before(&shards[0], &Moving::NONE, &before, true, 10)
                    .await
                    .must()),
                [(acme.business_id.clone(), old.clone())]
            );
            assert_eq!(
                ids(unsettled_before(&shards[1], &Moving::NONE, &before, true, 10)
                    .await
                    .must()),
                [(globex.business_id.clone(), theirs.clone())]
            );
            mark_requeued(&shards[0], &[&old], &fixture.now().to_rfc3339())
                .await
                .must();
            assert!(
                unsettled_before(&shards[0], &Moving::NONE, &before, true, 10)
                    .await
                    .must()
                    .is_empty(),
                "handed back once"
            );
            assert_eq!(
                ids(unsettled_before(&shards[0], &Moving::NONE, &before, false, 10)
                    .await
                    .must()),
                [(acme.business_id.clone(), old.clone())],
                "still unsettled"
            );
            settle(&fixture.db, &acme, &old, Err("gave up")).await.must();
            assert!(
                unsettled_before(
                    &shards[0],
                    &Moving::NONE,
                    &fixture.now().plus_seconds(1).to_rfc3339(),
                    false,
                    10
                )
                .await
                .must()
                .iter()
                .all(|u| u.id == recent)
            );
        });
    }
}
