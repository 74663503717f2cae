//! `GET /api-conversations-by-customer?external_id=|customer_id=&include_messages=&include_attachments=`:
//! a customer and their conversations on every channel.

use domain::api::messages::{CONVERSATIONS_BY_CUSTOMER, ConversationsByCustomer, CustomerConversations};
use domain::error::ApiError;
use domain::identify::{Name, identify};
use domain::ids::ConversationId;
use domain::query::Query;
use domain::tenant::Tenant;
use edge::platform::call::{self, Json, Origin};
use edge::runtime::{Bindings, Request, Response};
use edge::{Env, db};

/// With `include_messages`, each conversation carries at most its latest this many messages
/// (`message_count` says how many it has; `/api-messages-since` pages through all of them).
const MESSAGES_PER_CONVERSATION: usize = 200;

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &CONVERSATIONS_BY_CUSTOMER,
        req,
        bindings,
        async |operation, call| match operation {
            ConversationsByCustomer::GetConversationsByCustomer => call.run(conversations_by_customer).await,
        },
    )
    .await
}

async fn conversations_by_customer(
    tenant: Tenant,
    env: Env,
    query: Query,
    Origin(origin): Origin,
) -> Result<Json<CustomerConversations>, ApiError> {
    let named = identify(
        &[
            (Name::CustomerId, query.get("customer_id")),
            (Name::ExternalId, query.get("external_id")),
        ],
        tenant.default_country,
    )?;
    let (include_messages, include_attachments) = (
        query.flag("include_messages")?,
        query.flag("include_attachments")?,
    );
    let db = env.db()?;
    let customer = db::customers::first_named(&db, &tenant, &named.keys, &named.named_by).await?;
    let mut conversations = db::conversations::of_customer(&db, &tenant, &customer.id).await?;
    if include_messages && !conversations.is_empty() {
        let ids: Vec<&ConversationId> = conversations.iter().map(|c| &c.id).collect();
        let mut messages =
            db::messages::of_conversations(&db, &tenant, &ids, MESSAGES_PER_CONVERSATION).await?;
        if include_attachments {
            db::attachments::attach_to(&db, &tenant, &origin, &mut messages).await?;
        }
        for conversation in &mut conversations {
            let (mine, rest): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .partition(|message| message.conversation_id == conversation.id);
            conversation.messages = Some(mine);
            messages = rest;
        }
    }
    Ok(Json(CustomerConversations {
        customer,
        conversations,
    }))
}
