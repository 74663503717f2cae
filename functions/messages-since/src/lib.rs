//! `GET /api-messages-since?since=|cursor=&limit=&include_attachments=`: every message of the
//! business created after a point, oldest first, one page at a time.
//!
//! Message times are unique within a business and increase in commit order, so the seed's
//! loop (pass the last message's `created_at` back as `since`) never misses or repeats a
//! message, even when many arrive within one millisecond; `next_cursor` does the same opaquely.

use domain::api::messages::{MESSAGES_SINCE, MessagePage, MessagesSince};
use domain::error::ApiError;
use domain::message::{Cursor, SinceQuery};
use domain::query::Query;
use domain::tenant::Tenant;
use edge::platform::call::{self, Json, Origin};
use edge::runtime::{Bindings, Request, Response};
use edge::{Env, db};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &MESSAGES_SINCE,
        req,
        bindings,
        async |operation, call| match operation {
            MessagesSince::GetMessagesSince => call.run(messages_since).await,
        },
    )
    .await
}

async fn messages_since(
    tenant: Tenant,
    env: Env,
    query: Query,
    Origin(origin): Origin,
) -> Result<Json<MessagePage>, ApiError> {
    let query = SinceQuery::parse(&query)?;
    let db = env.db()?;
    // One more than asked for tells whether there is more without a count.
    let mut messages = db::messages::since(&db, &tenant, query.after, query.limit + 1).await?;
    let has_more = messages.len() > query.limit;
    messages.truncate(query.limit);
    if query.include_attachments {
        db::attachments::attach_to(&db, &tenant, &origin, &mut messages).await?;
    }
    let next_cursor = messages.last().map(|last| {
        Cursor {
            after_us: last.created_us,
        }
        .encode()
    });
    Ok(Json(MessagePage {
        messages,
        has_more,
        next_cursor,
    }))
}
