//! The files of an inbound message: one the webhook carried stored in R2 with its message, any
//! other recorded as pending and its fetch queued (a webhook's answer never waits on a provider's
//! download; a file the queue refuses stays pending for the sweep).

use crate::Env;
use crate::console_error;
use crate::db::attachments::NewPending;
use crate::db::channel_accounts::ChannelAccount;
use crate::db::{self, Db};
use crate::messaging::inbound_media::{INBOUND_MEDIA, MediaFetch};
use crate::messaging::media_store::{self, ATTACHMENTS};
use crate::runtime;
use crate::runtime::Internal;
use domain::error::ApiError;
use domain::ids::{AttachmentId, MessageId};
use domain::inbound::InboundMedia;
use domain::media::clean_filename;

/// Where a file of an inbound message went.
pub(super) enum Stored {
    /// Its bytes came with the webhook and are stored.
    Now,
    /// It is a pending attachment on the inbound media queue.
    Queued,
}

/// Stores a file the webhook carried; records any other as pending and queues its fetch. A file
/// the queue refuses stays pending: the sweep hands it to the media-fetcher (`maintenance`), as
/// it does a file whose fetch was lost. A webhook's answer never waits on a provider's download.
pub(super) async fn store_media(
    env: &Env,
    db: &Db,
    account: &ChannelAccount,
    message_id: &MessageId,
    media: InboundMedia,
) -> Result<Stored, ApiError> {
    let media = match media {
        InboundMedia::Inline {
            filename,
            mime_type,
            bytes,
        } => {
            let mime_type = if mime_type.is_empty() {
                "application/octet-stream"
            } else {
                &mime_type
            };
            let bucket = env.bucket_write(ATTACHMENTS).internal("R2")?;
            media_store::store(
                &bucket,
                db,
                &account.tenant,
                Some(message_id),
                &filename,
                mime_type,
                bytes,
            )
            .await?;
            return Ok(Stored::Now);
        }
        remote => remote,
    };
    let (filename, mime_type) = media.declared();
    let tenant = &account.tenant;
    let id = AttachmentId::generate(runtime::random()?);
    let source =
        serde_json::to_string(&media).map_err(|error| ApiError::internal("recording media source", error))?;
    db::attachments::insert_pending(
        db,
        tenant,
        &NewPending {
            id: &id,
            message_id,
            account_id: &account.id,
            filename: &clean_filename(filename.unwrap_or("attachment")),
            mime_type: mime_type.unwrap_or_default(),
            storage_key: &media_store::storage_key(tenant, &id),
            source: &source,
            created_at: &runtime::now().to_rfc3339(),
        },
    )?
    .run()
    .await?;
    let job = MediaFetch {
        business_id: tenant.business_id.clone(),
        attachment_id: id.clone(),
    };
    let queued = match env.queue(INBOUND_MEDIA, 1) {
        Ok(queue) => queue.send(job).await,
        Err(error) => Err(error),
    };
    if let Err(error) = queued {
        console_error!("media {id} could not be queued ({error}); the sweep hands it over later");
    }
    Ok(Stored::Queued)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{events, text, type_of};
    use super::*;
    use crate::testing::{ADA_PHONE, Fixture};
    use domain::channel::Channel;
    use domain::providers::Provider;
    use serde_json::{Value, json};

    #[test]
    fn a_file_in_the_webhook_is_stored_with_its_message() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let mail = fixture
                .channel_account(
                    &tenant,
                    Channel::Email,
                    Provider::Mailgun,
                    "support@acme.example",
                    json!({ "api_key": "k", "webhook_signing_key": "w" }),
                )
                .await;
            let mut message = text("<m1@mail>", "ada@example.com", "Invoice attached");
            message.media = vec![InboundMedia::Inline {
                filename: "../invoice.pdf".to_owned(),
                mime_type: String::new(),
                bytes: b"%PDF-1.7".to_vec(),
            }];
            let report = fixture.ingest_one(&mail, message).await;
            assert_eq!((report.media_stored, report.media_queued), (1, 0));
            let files = fixture.rows("attachments", "id");
            assert_eq!(files.len(), 1);
            assert_eq!(files[0]["status"], "stored");
            assert_eq!(files[0]["mime_type"], "application/octet-stream");
            assert_eq!(files[0]["size"], 8);
            assert_eq!(files[0]["message_id"], fixture.rows("messages", "id")[0]["id"]);
            let key = files[0]["storage_key"].as_str().unwrap_or_default();
            assert_eq!(
                fixture.stack.r2_bytes("ATTACHMENTS", key),
                Some(b"%PDF-1.7".to_vec())
            );
            assert!(
                key.starts_with(&format!("businesses/{}/attachments/", tenant.business_id)),
                "{key}"
            );
        });
    }

    #[test]
    fn a_file_to_fetch_is_pending_and_queued_and_holds_back_message_received() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account) = fixture.whatsapp_business().await;
            let mut message = text("wamid.1", ADA_PHONE, "");
            message.media = vec![InboundMedia::WhatsappMediaId {
                id: "media-1".to_owned(),
                mime_type: Some("image/jpeg".to_owned()),
                filename: None,
            }];
            let report = fixture.ingest_one(&account, message).await;
            assert_eq!((report.media_stored, report.media_queued), (0, 1));
            let files = fixture.rows("attachments", "id");
            assert_eq!(
                (files[0]["status"].as_str(), files[0]["filename"].as_str(), files[0]["mime_type"].as_str()),
                (Some("pending"), Some("attachment"), Some("image/jpeg"))
            );
            let source: Value = serde_json::from_str(files[0]["source"].as_str().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(source, json!({ "kind": "whatsapp_media_id", "id": "media-1", "mime_type": "image/jpeg", "filename": null }));
            let jobs: Vec<MediaFetch> = fixture.queued(INBOUND_MEDIA);
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].business_id, tenant.business_id);
            assert_eq!(jobs[0].attachment_id.as_str(), files[0]["id"].as_str().unwrap_or_default());
            let published: Vec<String> = fixture.dispatched().iter().map(|id| type_of(&fixture, id)).collect();
            assert!(events(&fixture).contains(&"message.received".to_owned()));
            assert!(
                !published.contains(&"message.received".to_owned()),
                "held back while its file is fetched: {published:?}"
            );
        });
    }
}
