//! Search for the bot: the pieces of a page's active links on one channel that best answer a
//! question, ranked by meaning (semantic, through the vector store), by words (keyword, BM25
//! through SQLite's full-text index) or by both (hybrid, fused by reciprocal rank).

use crate::db::Db;
use crate::db::knowledge_chunks::{self, Found};
use crate::db::knowledge_links;
use crate::knowledge::backend::Rag;
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::search::{FUSION_DEPTH, Mode, Question, fuse};
use domain::tenant::Tenant;
use futures_util::future::try_join;
use std::collections::HashMap;

/// One answer: a piece and its score (a cosine for semantic search, BM25 for keyword, the fused
/// reciprocal rank for hybrid).
pub struct Hit {
    pub found: Found,
    pub score: f64,
}

pub async fn search(db: &Db, rag: &Rag, tenant: &Tenant, question: &Question) -> Result<Vec<Hit>, ApiError> {
    let sources = knowledge_links::active_sources(db, tenant, &question.page_id, question.channel).await?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let ranked: Vec<(String, f64)> = match question.mode {
        Mode::Semantic => semantic(rag, tenant, &sources, &question.text, question.top_k).await?,
        Mode::Keyword => {
            knowledge_chunks::keyword(db, tenant, &sources, &question.text, question.top_k).await?
        }
        Mode::Hybrid => {
            // The two rankings wait on different places (the embedder and the vector index; D1's
            // full-text index), so they run at once. Where both are CPU work on one small machine
            // (the local stack at 100,000 pieces) they still queue: BENCHMARKS.md, links at size.
            let (by_meaning, by_words) = try_join(
                semantic(rag, tenant, &sources, &question.text, FUSION_DEPTH),
                knowledge_chunks::keyword(db, tenant, &sources, &question.text, FUSION_DEPTH),
            )
            .await?;
            let rankings = [by_meaning, by_words]
                .map(|ranking| ranking.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
            fuse(&rankings, question.top_k)
        }
    };
    let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
    let mut found: HashMap<String, Found> = knowledge_chunks::by_ids(db, tenant, &ids)
        .await?
        .into_iter()
        .map(|found| (found.id.clone(), found))
        .collect();
    let active: Vec<&str> = sources.iter().map(SourceId::as_str).collect();
    Ok(ranked
        .into_iter()
        .filter_map(|(id, score)| found.remove(&id).map(|found| Hit { found, score }))
        .filter(|hit| active.contains(&hit.found.source_id.as_str()))
        .collect())
}

async fn semantic(
    rag: &Rag,
    tenant: &Tenant,
    sources: &[SourceId],
    text: &str,
    k: usize,
) -> Result<Vec<(String, f64)>, ApiError> {
    let vectors = rag
        .embed(&[text])
        .await
        .map_err(|why| ApiError::unavailable(format!("the question could not be embedded: {why}"), 5))?;
    let Some(vector) = vectors.first() else {
        return Ok(Vec::new());
    };
    let threshold = rag.embedder.min_score();
    let nearest = rag.nearest(tenant, sources, vector, k).await?;
    Ok(nearest
        .into_iter()
        .filter(|(_, score)| *score >= threshold)
        .collect())
}
