//! `POST /webhooks/crm-links/{link id}`: a CRM pushes a webhook link's data, signed as Standard
//! Webhooks sign (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC>`) with
//! the link's own secret. The body is kept and the fetcher indexes it as it would a fetched one.
//!
//! A push is accepted once: the same `webhook-id` again is acknowledged and does nothing, and a
//! push signed before the last accepted one (a captured push replayed, or an older snapshot
//! arriving late) is refused, so an older snapshot never replaces a newer one.

use domain::api::Params;
use domain::api::links::PushedOut;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::fetch::MAX_PAGE_BYTES;
use domain::tenant::Tenant;
use domain::webhook_signing::{WebhookSecret, verify_standard};
use edge::Env;
use edge::call::Accepted;
use edge::db::knowledge_sources::{self, Asked, Due, Pushed};
use edge::runtime::Request;
use edge::{DB, http, knowledge, runtime, secrets_key};

/// How far a push's timestamp may be from our clock (Standard Webhooks' usual five minutes).
const TOLERANCE_SECONDS: i64 = 300;

/// Takes the request whole: its signature is over the raw body, which is read only once the
/// link and the headers are known.
pub async fn receive(params: Params, mut req: Request, env: Env) -> Result<Accepted<PushedOut>, ApiError> {
    let env = &env;
    let unknown = || ApiError::not_found("no such CRM link");
    let id = SourceId::parse(params.get("link_id")?).ok_or_else(unknown)?;
    let db = env.d1(DB)?;
    let business = knowledge_sources::business_of(&db, &id)
        .await?
        .ok_or_else(unknown)?;
    let tenant = Tenant::for_background(business);
    let keys = secrets_key::keyring(env)?;
    let link = knowledge_sources::find(&db, &keys, &tenant, &id)
        .await?
        .ok_or_else(unknown)?;
    let secret = link
        .webhook_secret
        .as_ref()
        .and_then(|secret| WebhookSecret::parse(secret.expose()))
        .ok_or_else(|| ApiError::not_found("this CRM link is not a webhook link"))?;
    let header = |name: &str| -> Result<String, ApiError> {
        req.headers()
            .get(name)?
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| ApiError::unauthorized(format!("missing {name} header")))
    };
    let (webhook_id, timestamp, signature) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| ApiError::unauthorized("webhook-timestamp is not unix seconds"))?;
    if (runtime::now().seconds() - seconds).abs() > TOLERANCE_SECONDS {
        return Err(ApiError::unauthorized(
            "webhook-timestamp is more than 5 minutes away: sign each push when it is sent",
        ));
    }
    let content_type = req
        .headers()
        .get("content-type")?
        .unwrap_or_else(|| "application/json".to_owned());
    let body = http::read_body(&mut req, MAX_PAGE_BYTES).await?;
    let text = String::from_utf8(body).map_err(|_| ApiError::malformed("the body is not UTF-8 text"))?;
    if !verify_standard(&secret, webhook_id.trim(), timestamp.trim(), &text, &signature) {
        return Err(ApiError::unauthorized(
            "the webhook-signature does not match this link's secret",
        ));
    }
    let webhook_id = webhook_id.trim();
    let key = knowledge::fetch::pushed_key(&id, webhook_id, seconds);
    knowledge::fetch::keep_pushed(
        &env.bucket_write(knowledge::PUSHED)?,
        &key,
        &content_type,
        text.into_bytes(),
    )
    .await?;
    match knowledge_sources::record_push(&db, &tenant, &id, webhook_id, seconds, &key).await? {
        (Pushed::Repeated, _) => {
            env.bucket_write(knowledge::PUSHED)?.delete(&key).await?;
            return Ok(Accepted(PushedOut {
                message: "CRM data received already (this webhook-id was accepted before)",
                link_id: id,
            }));
        }
        (Pushed::Stale, _) => {
            env.bucket_write(knowledge::PUSHED)?.delete(&key).await?;
            return Err(ApiError::conflict(
                "a push signed later than this one was accepted already: this one is older and is not used",
            ));
        }
        (Pushed::Accepted, previous) => {
            if let Some(previous) = previous {
                env.bucket_write(knowledge::PUSHED)?.delete(&previous).await?;
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
