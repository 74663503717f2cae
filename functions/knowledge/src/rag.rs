//! Search for the bot and the guide's debugging view of what is indexed.

use crate::{own_page, view};
use domain::api::links::{ChunkSample, DetailsOut, DocumentOut, SearchHit, SearchOut, VectorStore};
use domain::error::ApiError;
use domain::links::link::PageId;
use domain::links::search::Question;
use domain::query::Query;
use domain::tenant::Tenant;
use edge::Env;
use edge::db::{knowledge_chunks, knowledge_links, knowledge_sources};
use edge::knowledge::backend::Rag;
use edge::knowledge::search;
use edge::platform::call::Json;
use serde_json::Value;
use std::collections::HashMap;

/// `GET /api/dashboard/rag/search`
pub async fn search(tenant: Tenant, env: Env, query: Query) -> Result<Json<SearchOut>, ApiError> {
    let question = Question::parse(|name| query.get(name).map(Value::from))?;
    answer(&tenant, &env, question).await
}

/// `POST /api/dashboard/rag/search`
pub async fn search_posted(
    tenant: Tenant,
    env: Env,
    Json(body): Json<Value>,
) -> Result<Json<SearchOut>, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    let question = Question::parse(|name| body.get(name).filter(|value| !value.is_null()).cloned())?;
    answer(&tenant, &env, question).await
}

async fn answer(tenant: &Tenant, env: &Env, question: Question) -> Result<Json<SearchOut>, ApiError> {
    let db = env.db()?;
    own_page(&db, tenant, &question.page_id).await?;
    let rag = Rag::from_env(env)?;
    let keys = env.keyring()?;
    let hits = search::search(&db, &rag, tenant, &question).await?;
    let sources: HashMap<String, knowledge_sources::Source> =
        knowledge_sources::list(&db, &keys, tenant, Some(&question.page_id))
            .await?
            .into_iter()
            .map(|source| (source.id.to_string(), source))
            .collect();
    let results: Vec<SearchHit> = hits
        .into_iter()
        .map(|hit| SearchHit {
            score: (hit.score * 10_000.0).round() / 10_000.0,
            link: sources.get(hit.found.source_id.as_str()).map(view::reference),
            text: hit.found.text,
            record: hit.found.record,
            part: hit.found.part,
        })
        .collect();
    Ok(Json(SearchOut {
        query: question.text,
        page_id: question.page_id.as_str().to_owned(),
        channel: question.channel.as_str(),
        mode: question.mode.as_str(),
        embedder: rag.embedder.id(),
        min_score: rag.embedder.min_score(),
        count: results.len(),
        results,
    }))
}

/// `GET /api/dashboard/rag/documents/details?page_id=&source=crm`: per link, what was fetched and
/// indexed, and how its last fetch went.
pub async fn details(tenant: Tenant, env: Env, query: Query) -> Result<Json<DetailsOut>, ApiError> {
    let (env, tenant) = (&env, &tenant);
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
    let db = env.db()?;
    own_page(&db, tenant, &page).await?;
    let keys = env.keyring()?;
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
        documents.push(DocumentOut {
            link: view::reference(source),
            channels,
            active_channels: active,
            state: source.status.state.as_str(),
            last_fetched_at: source.status.last_fetched_at.clone(),
            last_http_status: source.status.last_http_status,
            last_error: source.status.last_error.clone(),
            next_fetch_at: source.status.next_fetch_at.clone(),
            records: source.status.records,
            records_without_key: source.status.without_key,
            chunks,
            embeddings,
            embedder: rag.embedder.id(),
            chunk_samples: samples
                .into_iter()
                .map(|sample| ChunkSample {
                    record: sample.record,
                    part: sample.part,
                    text: sample.text,
                })
                .collect(),
        });
    }
    Ok(Json(DetailsOut {
        page_id: page.as_str().to_owned(),
        source: "crm",
        embedder: rag.embedder.id(),
        vector_store: VectorStore {
            store: rag.store_name(),
        },
        total_documents: documents.len(),
        documents,
        total_chunks,
        total_embeddings,
    }))
}
