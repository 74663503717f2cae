//! The JSON the embedded page calls, with its token in `Authorization: Bearer`: the timeline
//! (first load, then polls with a cursor) and, where the scope allows, a reply.

use domain::api::embed::{CustomerView, ReplyIn, ReplyOptions, ReplyOut, TimelineOut};
use domain::embed::{self, LinkSigner};
use domain::error::{ApiError, ErrorCode};
use domain::ids::MessageId;
use domain::media::LINK_LIFETIME_SECONDS;
use domain::message::{Cursor, Message};
use domain::outgoing::OutgoingMessage;
use domain::query::Query;
use edge::Env;
use edge::platform::call::{Accepted, Call, FromCall, Json, Origin};
use edge::platform::sso_sessions::{self, Session};
use edge::runtime::Internal;
use edge::{db, messaging::send_queue, runtime};

/// Messages the first load shows; older ones stay in `/api-conversations-by-customer`.
const FIRST_LOAD: usize = 200;
/// Messages one poll returns at most; the page polls again at once while there are more.
const POLL_PAGE: usize = 100;
/// Queued replies whose progress one poll asks after.
const MAX_PENDING: usize = 50;

/// The inbox session the page's token opens (`Authorization: Bearer`): 401 without a valid
/// one, 403 once revoked.
pub struct Viewer(Session);

impl FromCall for Viewer {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        let header = call
            .request()?
            .headers()
            .get("authorization")
            .internal("reading a request header")?
            .unwrap_or_default();
        let token = header.strip_prefix("Bearer ").map(str::trim);
        sso_sessions::resolve(&call.env().db()?, token, runtime::now())
            .await?
            .map(Viewer)
            .map_err(sso_sessions::Refusal::into_error)
    }
}

pub async fn timeline(
    Viewer(session): Viewer,
    env: Env,
    query: Query,
    Origin(origin): Origin,
) -> Result<Json<TimelineOut>, ApiError> {
    let db = env.db()?;
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

    let links = env.required_media_links()?;
    let signer = LinkSigner {
        links: &links,
        origin: &origin,
        business_id: &tenant.business_id,
        expires: runtime::now().seconds() + LINK_LIFETIME_SECONDS,
    };
    let view = |list: Vec<Message>| list.into_iter().map(|m| embed::view(m, &signer)).collect();
    Ok(Json(TimelineOut {
        customer,
        scope,
        reply,
        expires_at: session.expires_at.to_rfc3339(),
        messages: view(messages),
        updated: view(updated),
        has_more,
        next_cursor,
    }))
}

/// Sends a reply through the same checks, storage and queue as `/api-send-message`.
pub async fn reply(
    Replier(session): Replier,
    env: Env,
    Origin(origin): Origin,
    Json(input): Json<ReplyIn>,
) -> Result<Accepted<ReplyOut>, ApiError> {
    let db = env.db()?;
    let outgoing = OutgoingMessage::parse(
        input.channel.as_deref(),
        input.content,
        input.subject.as_deref(),
        Vec::new(),
    )?;
    let message =
        send_queue::accept_on_channel(&env, &db, &session.tenant, &session.customer, &outgoing, &origin)
            .await?;
    let links = env.required_media_links()?;
    let signer = LinkSigner {
        links: &links,
        origin: &origin,
        business_id: &session.tenant.business_id,
        expires: runtime::now().seconds() + LINK_LIFETIME_SECONDS,
    };
    Ok(Accepted(ReplyOut {
        message: embed::view(message, &signer),
    }))
}

/// A session whose scope lets it reply: 403 for a read-only link, before its body is read.
pub struct Replier(Session);

impl FromCall for Replier {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        let Viewer(session) = Viewer::from_call(call).await?;
        if !session.scope.can_reply() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this link lets you read the conversations, not reply",
            ));
        }
        Ok(Replier(session))
    }
}
