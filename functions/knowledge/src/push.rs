//! `POST /webhooks/crm-links/{link id}`: a CRM pushes a webhook link's data, signed as Standard
//! Webhooks sign (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC>`) with
//! the link's own secret. The body is kept and the fetcher indexes it as it would a fetched one.
//!
//! A push is accepted once: the same `webhook-id` again is acknowledged and does nothing, and a
//! push signed before the last accepted one (a captured push replayed, or an older snapshot
//! arriving late) is refused, so an older snapshot never replaces a newer one.

use domain::api::links::PushedOut;
use domain::error::ApiError;
use edge::Env;
use edge::db::knowledge_sources::{self, Asked, Due, Pushed};
use edge::platform::call::Accepted;
use edge::platform::signed::{CrmLink, LinkPush, Signed};
use edge::runtime::Internal;
use edge::{knowledge, runtime};

/// A push whose signature held (`edge::platform::signed::LinkPush`): kept, and the link handed to the
/// fetcher.
pub async fn receive(signed: Signed<LinkPush>, env: Env) -> Result<Accepted<PushedOut>, ApiError> {
    let env = &env;
    let Signed {
        owner: CrmLink { tenant, source: link },
        verified: pushed,
    } = signed;
    let id = link.id.clone();
    let db = env.db()?;
    let (webhook_id, seconds, content_type, text) = (
        pushed.webhook_id.as_str(),
        pushed.signed_at,
        pushed.content_type,
        pushed.text,
    );
    let key = knowledge::fetch::pushed_key(&id, webhook_id, seconds);
    knowledge::fetch::keep_pushed(
        &env.bucket_write(knowledge::PUSHED).internal("R2")?,
        &key,
        &content_type,
        text.into_bytes(),
    )
    .await?;
    match knowledge_sources::record_push(&db, &tenant, &id, webhook_id, seconds, &key).await? {
        (Pushed::Repeated, _) => {
            env.bucket_write(knowledge::PUSHED)
                .internal("R2")?
                .delete(&key)
                .await
                .internal("R2")?;
            return Ok(Accepted(PushedOut {
                message: "CRM data received already (this webhook-id was accepted before)",
                link_id: id,
            }));
        }
        (Pushed::Stale, _) => {
            env.bucket_write(knowledge::PUSHED)
                .internal("R2")?
                .delete(&key)
                .await
                .internal("R2")?;
            return Err(ApiError::conflict(
                "a push signed later than this one was accepted already: this one is older and is not used",
            ));
        }
        (Pushed::Accepted, previous) => {
            if let Some(previous) = previous {
                env.bucket_write(knowledge::PUSHED)
                    .internal("R2")?
                    .delete(&previous)
                    .await
                    .internal("R2")?;
            }
        }
    }
    if link.link.is_active
        && knowledge_sources::ask(&db, &tenant, &id, &runtime::now().to_rfc3339()).await? == Asked::New
    {
        knowledge::hand_over(
            env,
            &[Due {
                business_id: tenant.business_id.to_string(),
                source_id: id.clone(),
                run: None,
            }],
        )
        .await;
    }
    Ok(Accepted(PushedOut {
        message: "CRM data received",
        link_id: id,
    }))
}
