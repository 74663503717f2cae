//! `GET /api-messages-since?since=|cursor=&limit=&include_attachments=`: every message of the
//! business created after a point, oldest first, one page at a time.
//!
//! Message times are unique within a business and increase in commit order, so the seed's
//! loop (pass the last message's `created_at` back as `since`) never misses or repeats a
//! message, even when many arrive within one millisecond; `next_cursor` does the same opaquely.

use domain::api_legacy::{self as api, Routed};
use domain::error::ApiError;
use domain::message::{Cursor, Message, SinceQuery};
use domain::tenant::Tenant;
use edge::Env;
use edge::{DB, db, http};
use serde::Serialize;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::MESSAGES_SINCE, req, env, messages_since).await
}

#[derive(Serialize)]
struct PageOut {
    messages: Vec<Message>,
    has_more: bool,
    /// Pass back as `cursor=` for the next page; present whenever the page is not empty.
    next_cursor: Option<String>,
}

async fn messages_since(req: Request, env: Env, _: Routed, tenant: Tenant) -> Result<Response, ApiError> {
    let query = SinceQuery::parse(&http::query(&req)?)?;
    let db = env.d1(DB)?;
    // One more than asked for tells whether there is more without a count.
    let mut messages = db::messages::since(&db, &tenant, query.after, query.limit + 1).await?;
    let has_more = messages.len() > query.limit;
    messages.truncate(query.limit);
    if query.include_attachments {
        db::attachments::attach_to(&db, &tenant, &http::origin(&req, &env)?, &mut messages).await?;
    }
    let next_cursor = messages.last().map(|last| {
        Cursor {
            after_us: last.created_us,
        }
        .encode()
    });
    http::json(
        200,
        &PageOut {
            messages,
            has_more,
            next_cursor,
        },
    )
}
