//! `PATCH /api-conversations/{id}`: the platform's agents assign conversations and move them
//! through open → pending → resolved → closed. Each change records its event
//! (`conversation.assigned`, `conversation.status_changed`) in the transaction that makes it.

mod change;

use domain::error::ApiError;
use domain::ids::ConversationId;
use edge::Env;
use edge::{auth, http};
use worker::{Context, Method, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, conversations).await
}

async fn conversations(mut req: Request, env: Env) -> Result<Response, ApiError> {
    let path = req.path();
    let id = match path
        .trim_end_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["", "api-conversations", id] => {
            ConversationId::parse(id).ok_or_else(|| ApiError::not_found(format!("no conversation {id}")))?
        }
        _ => return Err(ApiError::not_found(format!("no such path: {path}"))),
    };
    http::require_method(&req, Method::Patch, "PATCH")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let input = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let origin = http::origin(&req, &env)?;
    change::apply(&env, &tenant, &id, input, &origin).await
}
