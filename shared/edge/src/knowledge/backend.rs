//! Where embeddings are made and vectors kept, chosen by the `RAG_BACKEND` setting and never
//! switched silently: a backend that cannot be used fails its requests with the reason.
//!
//! - `cloudflare` (production): Workers AI's `@cf/baai/bge-small-en-v1.5` through the `AI`
//!   binding, and the `VECTORIZE` index, one namespace per business, with the source and page as
//!   metadata (the index needs a metadata index on `source_id` before its first insert; docs/operations.md).
//! - `local` (the local stack; `wrangler dev` cannot reach either binding offline): the local
//!   embedding server at `EMBEDDER_URL`, which runs all-MiniLM-L6-v2 and answers in Workers AI's
//!   REST shape, and keeps the vectors as Vectorize would (`vectorize::Store::Local`).
//!
//! Either way D1 holds the pieces' text and the vector store their vectors, under the piece's id.

use crate::Env;
use crate::knowledge::local;
use crate::knowledge::vectorize::{self, Store};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::search::{Embedder, normalized};
use domain::platform::{self, Resource};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use worker::Ai;

pub const RAG_BACKEND: &str = "RAG_BACKEND";
pub const EMBEDDER_URL: &str = "EMBEDDER_URL";
pub const AI: &str = "AI";
pub const VECTORIZE: &str = "VECTORIZE";
const LOCAL_TIMEOUT_MS: u64 = 120_000;

enum Embedding {
    Local { url: String },
    Cloudflare { ai: Ai },
}

/// The configured embedder and vector store, for one invocation.
pub struct Rag {
    pub embedder: Embedder,
    embedding: Embedding,
    store: Store,
    /// The invocation's bindings: every call to the embedder or the store is a subrequest.
    env: Env,
}

/// What Workers AI's embedding models answer (inside `result` over REST).
#[derive(Deserialize)]
struct Embedded {
    shape: Vec<usize>,
    data: Vec<Vec<f32>>,
}

#[derive(Serialize)]
struct Input<'a> {
    text: &'a [&'a str],
}

impl Rag {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let setting = env.var(RAG_BACKEND).unwrap_or_default();
        let misconfigured = |why: String| ApiError::internal("choosing the RAG backend", why);
        match setting.as_str() {
            "local" => {
                let url = env
                    .var(EMBEDDER_URL)
                    .map(|value| value.trim_end_matches('/').to_owned())
                    .ok_or_else(|| {
                        misconfigured(format!("{RAG_BACKEND} is local but {EMBEDDER_URL} is not set"))
                    })?;
                Ok(Self {
                    embedder: Embedder::MiniLm,
                    store: Store::Local { url: url.clone() },
                    embedding: Embedding::Local { url },
                    env: env.clone(),
                })
            }
            "cloudflare" => Ok(Self {
                embedder: Embedder::BgeSmall,
                embedding: Embedding::Cloudflare {
                    ai: env
                        .bindings()
                        .ai(AI)
                        .map_err(|error| misconfigured(format!("the {AI} binding: {error}")))?,
                },
                store: Store::vectorize(env, VECTORIZE).map_err(misconfigured)?,
                env: env.clone(),
            }),
            other => Err(misconfigured(format!(
                "{RAG_BACKEND} is {other:?}; it must be cloudflare (production) or local"
            ))),
        }
    }

    /// Where vectors are kept, for the documents' details: the kind of store only (a Vectorize
    /// index's own description counts every business's vectors, and the local store's address is
    /// the operator's business).
    pub fn store_name(&self) -> &'static str {
        match self.store {
            Store::Vectorize { .. } => "vectorize",
            Store::Local { .. } => "local",
        }
    }

    /// The normalized vectors of `texts`, in order, [`platform::AI_TEXTS_PER_CALL`] a call. The
    /// error says what failed, for the link's status or the search's 503.
    pub async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(platform::AI_TEXTS_PER_CALL) {
            let embedded = match &self.embedding {
                Embedding::Local { url } => local_embed(&self.env, url, self.embedder, batch).await?,
                Embedding::Cloudflare { ai } => {
                    self.env
                        .charge(Resource::Subrequest, 1)
                        .map_err(|error| error.to_string())?;
                    ai.run::<_, Embedded>(self.embedder.model(), Input { text: batch })
                        .await
                        .map_err(|error| format!("Workers AI {}: {error}", self.embedder.model()))?
                }
            };
            if embedded.data.len() != batch.len()
                || embedded.shape.first() != Some(&batch.len())
                || embedded
                    .data
                    .iter()
                    .any(|vector| vector.len() != Embedder::DIMENSIONS)
            {
                return Err(format!(
                    "the embedder answered {} vectors of shape {:?} for {} texts",
                    embedded.data.len(),
                    embedded.shape,
                    batch.len()
                ));
            }
            vectors.extend(embedded.data.into_iter().map(normalized));
        }
        Ok(vectors)
    }

    /// Writes the vectors of a source's pieces, by piece id.
    pub async fn upsert(
        &self,
        tenant: &Tenant,
        page_id: &str,
        source: &SourceId,
        items: &[(String, &[f32])],
    ) -> Result<(), String> {
        let vectors: Vec<vectorize::Vector<'_>> = items
            .iter()
            .map(|(id, values)| vectorize::Vector {
                id,
                values,
                namespace: tenant.business_id.as_str(),
                metadata: vectorize::Metadata {
                    source_id: source.as_str(),
                    page_id,
                },
            })
            .collect();
        self.store.upsert(&self.env, &vectors).await
    }

    /// The pieces among `ids` whose vectors the store holds already (written by a slice that did
    /// not get to record its pieces).
    pub async fn existing(&self, ids: &[String]) -> Result<Vec<String>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.store.existing(&self.env, ids).await
    }

    /// Deletes vectors by piece id.
    pub async fn delete(&self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        self.store.delete_by_ids(&self.env, ids).await
    }

    /// The `k` pieces of `sources` nearest to `vector`: (piece id, cosine), best first.
    pub async fn nearest(
        &self,
        tenant: &Tenant,
        sources: &[SourceId],
        vector: &[f32],
        k: usize,
    ) -> Result<Vec<(String, f64)>, ApiError> {
        let sources: Vec<&str> = sources.iter().map(SourceId::as_str).collect();
        let matches = self
            .store
            .query(&self.env, vector, k, tenant.business_id.as_str(), &sources)
            .await
            .map_err(|why| ApiError::unavailable(format!("searching the vector index failed: {why}"), 5))?;
        Ok(matches.into_iter().map(|found| (found.id, found.score)).collect())
    }
}

async fn local_embed(env: &Env, url: &str, embedder: Embedder, texts: &[&str]) -> Result<Embedded, String> {
    let path = format!("/ai/run/{}", embedder.model());
    let max_body = texts.len() * Embedder::DIMENSIONS * 32 + 4096;
    local::post(
        env,
        "embedder",
        url,
        &path,
        &Input { text: texts },
        LOCAL_TIMEOUT_MS,
        max_body,
    )
    .await
}
