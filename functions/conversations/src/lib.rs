//! `PATCH /api-conversations/{id}`: the platform's agents assign conversations and move them
//! through open → pending → resolved → closed. Each change records its event
//! (`conversation.assigned`, `conversation.status_changed`) in the transaction that makes it.

mod change;

use domain::api_legacy::{self as api, Routed};
use domain::error::ApiError;
use domain::ids::ConversationId;
use domain::tenant::Tenant;
use edge::Env;
use edge::http;
use worker::{Context, Request, Response, event};

#[event(fetch)]
async fn fetch(req: Request, env: worker::Env, _ctx: Context) -> worker::Result<Response> {
    http::serve_tenant(&api::CONVERSATIONS, req, env, conversations).await
}

async fn conversations(
    mut req: Request,
    env: Env,
    routed: Routed,
    tenant: Tenant,
) -> Result<Response, ApiError> {
    let id = routed.id("conversation_id", "conversation", ConversationId::parse)?;
    let input = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let origin = http::origin(&req, &env)?;
    change::apply(&env, &tenant, &id, input, &origin).await
}
