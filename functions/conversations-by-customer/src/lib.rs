//! `GET /api-conversations-by-customer?external_id=|customer_id=&include_messages=&include_attachments=`:
//! a customer and their conversations on every channel.

use serde::Serialize;
use domain::customer::Customer;
use edge::messages_repo::{self, Conversation};
use edge::{DB, auth, customers_repo, http};
use domain::error::ApiError;
use domain::lookup::{CustomerKey, KeyKind};
use domain::message::flag;
use worker::{Context, Env, Method, Request, Response, event};

/// With `include_messages`, each conversation carries at most its latest this many messages
/// (`message_count` says how many it has; `/api-messages-since` pages through all of them).
const MESSAGES_PER_CONVERSATION: usize = 200;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    http::serve(req, env, conversations_by_customer).await
}

#[derive(Serialize)]
struct CustomerConversationsOut {
    customer: Customer,
    conversations: Vec<Conversation>,
}

async fn conversations_by_customer(req: Request, env: Env) -> Result<Response, ApiError> {
    http::require_method(&req, Method::Get, "GET")?;
    let tenant = auth::authenticate(&req, &env).await?;
    let pairs = http::query_pairs(&req)?;
    let key = customer_key(&pairs)?;
    let (include_messages, include_attachments) = (
        flag(&pairs, "include_messages")?,
        flag(&pairs, "include_attachments")?,
    );
    let db = env.d1(DB)?;
    let customer = customers_repo::find_one(&db, &tenant, &key)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no customer with {} {}", key.kind().name(), key.as_str()))
        })?;
    let mut conversations = messages_repo::conversations_of(&db, &tenant, customer.id.as_str()).await?;
    if include_messages && !conversations.is_empty() {
        let ids: Vec<&str> = conversations.iter().map(|c| c.id.as_str()).collect();
        let mut messages =
            messages_repo::of_conversations(&db, &tenant, &ids, MESSAGES_PER_CONVERSATION).await?;
        if include_attachments {
            messages_repo::attach(&db, &tenant, &http::origin(&req)?, &mut messages).await?;
        }
        for conversation in &mut conversations {
            let (mine, rest): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .partition(|message| message.conversation_id == conversation.id);
            conversation.messages = Some(mine);
            messages = rest;
        }
    }
    http::json(
        200,
        &CustomerConversationsOut {
            customer,
            conversations,
        },
    )
}

/// `customer_id` (ours) or `external_id` (the CRM's), exactly one.
fn customer_key(pairs: &[(String, String)]) -> Result<CustomerKey, ApiError> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let (kind, value) = match (get("customer_id"), get("external_id")) {
        (Some(id), None) => (KeyKind::Id, id),
        (None, Some(external_id)) => (KeyKind::ExternalId, external_id),
        _ => {
            return Err(ApiError::malformed(
                "give exactly one of the query parameters customer_id, external_id",
            ));
        }
    };
    let field = if kind == KeyKind::Id {
        "customer_id"
    } else {
        "external_id"
    };
    CustomerKey::parse(kind, value, None).map_err(|message| ApiError::invalid(field, message))
}
