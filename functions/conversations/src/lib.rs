//! `PATCH /api-conversations/{id}`: the platform's agents assign conversations and move them
//! through open → pending → resolved → closed. Each change records its event
//! (`conversation.assigned`, `conversation.status_changed`) in the transaction that makes it.

mod change;

use domain::api::messages::{CONVERSATIONS, ChangeIn, ConversationOut, Conversations};
use domain::error::ApiError;
use domain::ids::ConversationId;
use domain::tenant::Tenant;
use edge::Env;
use edge::platform::call::{self, Json, Origin, Path};
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &CONVERSATIONS,
        req,
        bindings,
        async |operation, call| match operation {
            Conversations::UpdateConversation => call.run(update).await,
        },
    )
    .await
}

async fn update(
    tenant: Tenant,
    env: Env,
    Path(id): Path<ConversationId>,
    Json(input): Json<ChangeIn>,
    Origin(origin): Origin,
) -> Result<Json<ConversationOut>, ApiError> {
    change::apply(&env, &tenant, &id, input, &origin).await.map(Json)
}
