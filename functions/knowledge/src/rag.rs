//! Search for the bot and the guide's debugging view of what is indexed.

use crate::own_page;
use domain::error::ApiError;
use edge::Env;

use domain::links::link::{PageId, redact_url};
use domain::links::search::Question;
use domain::tenant::Tenant;
use edge::db::{knowledge_chunks, knowledge_links, knowledge_sources};
use edge::knowledge::backend::Rag;
use edge::knowledge::search;
use edge::{DB, http, secrets_key};
use serde_json::{Value, json};
use std::collections::HashMap;
use worker::{Method, Request, Response};

const MAX_BODY: usize = 64 * 1024;

/// `GET|POST /api/dashboard/rag/search`
pub async fn search(mut req: Request, env: &Env, tenant: &Tenant) -> Result<Response, ApiError> {
    let question = if req.method() == Method::Post {
        let body: Value = http::read_json(&mut req, MAX_BODY).await?;
        if !body.is_object() {
            return Err(ApiError::invalid("body", "the body must be a JSON object"));
        }
        Question::parse(|name| body.get(name).filter(|value| !value.is_null()).cloned())?
    } else {
        let query = http::query(&req)?;
        Question::parse(|name| query.get(name).map(Value::from))?
    };
    let db = env.d1(DB)?;
    own_page(&db, tenant, &question.page_id).await?;
    let rag = Rag::from_env(env)?;
    let keys = secrets_key::keyring(env)?;
    let hits = search::search(&db, &rag, tenant, &question).await?;
    let sources: HashMap<String, knowledge_sources::Source> =
        knowledge_sources::list(&db, &keys, tenant, Some(&question.page_id))
            .await?
            .into_iter()
            .map(|source| (source.id.to_string(), source))
            .collect();
    let results: Vec<Value> = hits
        .iter()
        .map(|hit| {
            let link = sources.get(hit.found.source_id.as_str()).map(|source| {
                json!({
                    "id": source.id,
                    "name": source.link.name,
                    "url": redact_url(source.link.url.as_str()),
                    "type": source.link.link_type.as_str(),
                })
            });
            json!({
                "score": (hit.score * 10_000.0).round() / 10_000.0,
                "text": hit.found.text,
                "record": hit.found.record,
                "part": hit.found.part,
                "link": link,
            })
        })
        .collect();
    http::json(
        200,
        &json!({
            "query": question.text,
            "page_id": question.page_id.as_str(),
            "channel": question.channel.as_str(),
            "mode": question.mode.as_str(),
            "embedder": rag.embedder.id(),
            "min_score": rag.embedder.min_score(),
            "count": results.len(),
            "results": results,
        }),
    )
}

/// `GET /api/dashboard/rag/documents/details?page_id=&source=crm`: per link, what was fetched and
/// indexed, and how its last fetch went.
pub async fn details(req: &Request, env: &Env, tenant: &Tenant) -> Result<Response, ApiError> {
    let query = http::query(req)?;
    let page = PageId::parse(&Value::from(
        query
            .get("page_id")
            .ok_or_else(|| ApiError::invalid("page_id", "page_id is required"))?,
    ))?;
    match query.get("source") {
        None | Some("crm") => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "source",
                "source must be crm: CRM links are the only documents",
            ));
        }
    }
    let db = env.d1(DB)?;
    own_page(&db, tenant, &page).await?;
    let keys = secrets_key::keyring(env)?;
    let rag = Rag::from_env(env)?;
    let sources = knowledge_sources::list(&db, &keys, tenant, Some(&page)).await?;
    let entries = knowledge_links::list(&db, tenant, Some(&page), None).await?;
    let counts = knowledge_chunks::counts(&db, tenant, rag.embedder.id()).await?;
    let (mut total_chunks, mut total_embeddings) = (0, 0);
    let mut documents = Vec::with_capacity(sources.len());
    for source in &sources {
        let (chunks, embeddings) = counts.get(source.id.as_str()).copied().unwrap_or_default();
        total_chunks += chunks;
        total_embeddings += embeddings;
        let mine = entries.iter().filter(|entry| entry.source_id == source.id);
        let channels: Vec<&str> = mine.clone().map(|entry| entry.channel.as_str()).collect();
        let active: Vec<&str> = mine
            .filter(|entry| entry.is_active)
            .map(|entry| entry.channel.as_str())
            .collect();
        let samples = knowledge_chunks::samples(&db, tenant, &source.id, 3).await?;
        documents.push(json!({
            "link": {
                "id": source.id,
                "name": source.link.name,
                "url": redact_url(source.link.url.as_str()),
                "type": source.link.link_type.as_str(),
            },
            "channels": channels,
            "active_channels": active,
            "state": source.status.state.as_str(),
            "last_fetched_at": source.status.last_fetched_at,
            "last_http_status": source.status.last_http_status,
            "last_error": source.status.last_error,
            "next_fetch_at": source.status.next_fetch_at,
            "records": source.status.records,
            "chunks": chunks,
            "embeddings": embeddings,
            "embedder": rag.embedder.id(),
            "chunk_samples": samples.iter().map(|sample| json!({ "record": sample.record, "part": sample.part, "text": sample.text })).collect::<Vec<_>>(),
        }));
    }
    http::json(
        200,
        &json!({
            "page_id": page.as_str(),
            "source": "crm",
            "embedder": rag.embedder.id(),
            "vector_store": { "store": rag.store_name() },
            "documents": documents,
            "total_documents": documents.len(),
            "total_chunks": total_chunks,
            "total_embeddings": total_embeddings,
        }),
    )
}
