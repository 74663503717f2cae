//! The JSON the embedded page calls, with its token in `Authorization: Bearer`: the timeline
//! (first load, then polls with a cursor) and, where the scope allows, a reply.

use domain::channel::Channel;
use domain::embed::{self, LinkSigner, MessageView};
use domain::error::{ApiError, ErrorCode};
use domain::ids::MessageId;
use domain::media::LINK_LIFETIME_SECONDS;
use domain::message::{Cursor, Message};
use domain::outgoing::OutgoingMessage;
use edge::Env;
use edge::db::Db;
use edge::sso_sessions::{self, Session};
use edge::{DB, db, http, runtime, send_queue};
use serde::{Deserialize, Serialize};
use worker::{Request, Response};

/// Messages the first load shows; older ones stay in `/api-conversations-by-customer`.
const FIRST_LOAD: usize = 200;
/// Messages one poll returns at most; the page polls again at once while there are more.
const POLL_PAGE: usize = 100;
/// Queued replies whose progress one poll asks after.
const MAX_PENDING: usize = 50;

async fn session(req: &Request, db: &Db) -> Result<Session, ApiError> {
    let header = req.headers().get("authorization")?.unwrap_or_default();
    let token = header.strip_prefix("Bearer ").map(str::trim);
    sso_sessions::resolve(db, token, runtime::now())
        .await?
        .map_err(sso_sessions::Refusal::into_error)
}

fn link_secret(env: &Env) -> Result<String, ApiError> {
    Ok(env
        .secret("MEDIA_LINK_SECRET")
        .map_err(|_| ApiError::internal("embed-inbox", "the MEDIA_LINK_SECRET secret is not configured"))?
        .to_string())
}

#[derive(Serialize)]
struct CustomerView {
    name: String,
}

#[derive(Serialize)]
struct TimelineOut {
    /// On the first load only: who, what the page may do, and where a reply can go.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<CustomerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<ReplyOptions>,
    expires_at: String,
    messages: Vec<MessageView>,
    /// The current state of the queued replies the poll asked about (`pending=`).
    updated: Vec<MessageView>,
    has_more: bool,
    next_cursor: String,
}

#[derive(Serialize)]
struct ReplyOptions {
    channels: Vec<Channel>,
    default_channel: Option<Channel>,
}

pub async fn timeline(req: Request, env: Env) -> Result<Response, ApiError> {
    let db = env.d1(DB)?;
    let session = session(&req, &db).await?;
    let query = http::query(&req)?;
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(
            Cursor::decode(text)
                .ok_or_else(|| ApiError::invalid("after", "after is the next_cursor of a previous answer"))?,
        ),
    };
    let pending: Vec<MessageId> = query
        .get("pending")
        .unwrap_or_default()
        .split(',')
        .filter_map(MessageId::parse)
        .take(MAX_PENDING)
        .collect();

    let (tenant, customer_id) = (&session.tenant, &session.customer.id);
    let limit = if after.is_some() { POLL_PAGE } else { FIRST_LOAD };
    let mut messages = db::messages::of_customer(&db, tenant, customer_id, after, limit).await?;
    let has_more = after.is_some() && messages.len() == limit;
    let pending: Vec<&MessageId> = pending.iter().collect();
    let mut updated = db::messages::of_customer_by_ids(&db, tenant, customer_id, &pending).await?;
    let origin = http::origin(&req, &env)?;
    db::attachments::attach_to(&db, tenant, &origin, &mut messages).await?;
    db::attachments::attach_to(&db, tenant, &origin, &mut updated).await?;
    let next_cursor = messages
        .last()
        .map(|message| Cursor {
            after_us: message.created_us,
        })
        .or(after)
        .unwrap_or(Cursor { after_us: 0 })
        .encode();

    let (customer, scope, reply) = if after.is_none() {
        let reply = if session.scope.can_reply() {
            let channels = send_queue::sendable_channels(&db, &session.tenant, &session.customer).await?;
            Some(ReplyOptions {
                default_channel: embed::default_reply_channel(&messages, &channels),
                channels,
            })
        } else {
            None
        };
        (
            Some(CustomerView {
                name: session.customer.name.clone(),
            }),
            Some(session.scope.as_str()),
            reply,
        )
    } else {
        (None, None, None)
    };

    let secret = link_secret(&env)?;
    let signer = LinkSigner {
        secret: secret.as_bytes(),
        origin: &origin,
        business_id: &tenant.business_id,
        expires: runtime::now().seconds() + LINK_LIFETIME_SECONDS,
    };
    let view = |list: Vec<Message>| list.into_iter().map(|m| embed::view(m, &signer)).collect();
    http::json(
        200,
        &TimelineOut {
            customer,
            scope,
            reply,
            expires_at: session.expires_at.to_rfc3339(),
            messages: view(messages),
            updated: view(updated),
            has_more,
            next_cursor,
        },
    )
}

#[derive(Deserialize)]
struct ReplyIn {
    channel: Option<String>,
    content: Option<String>,
    subject: Option<String>,
}

#[derive(Serialize)]
struct ReplyOut {
    message: MessageView,
}

/// Sends a reply through the same checks, storage and queue as `/api-send-message`.
pub async fn reply(mut req: Request, env: Env) -> Result<Response, ApiError> {
    let db = env.d1(DB)?;
    let session = session(&req, &db).await?;
    if !session.scope.can_reply() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this link lets you read the conversations, not reply",
        ));
    }
    let input: ReplyIn = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let outgoing = OutgoingMessage::parse(
        input.channel.as_deref(),
        input.content,
        input.subject.as_deref(),
        Vec::new(),
    )?;
    let origin = http::origin(&req, &env)?;
    let message =
        send_queue::accept_on_channel(&env, &db, &session.tenant, &session.customer, &outgoing, &origin)
            .await?;
    let secret = link_secret(&env)?;
    let signer = LinkSigner {
        secret: secret.as_bytes(),
        origin: &origin,
        business_id: &session.tenant.business_id,
        expires: runtime::now().seconds() + LINK_LIFETIME_SECONDS,
    };
    http::json(
        202,
        &ReplyOut {
            message: embed::view(message, &signer),
        },
    )
}
