//! Where embeddings are made and vectors kept, chosen by the `RAG_BACKEND` setting and never
//! switched silently: a backend that cannot be used fails its requests with the reason.
//!
//! - `cloudflare` (production): Workers AI's `@cf/baai/bge-small-en-v1.5` through the `AI`
//!   binding, and the `VECTORIZE` index, one namespace per business, with the source and page as
//!   metadata (the index needs a metadata index on `source_id` before its first insert; README).
//! - `local` (the local stack; `wrangler dev` cannot reach either binding offline): the local
//!   embedding server at `EMBEDDER_URL`, which runs all-MiniLM-L6-v2 and answers in Workers AI's
//!   REST shape, and vectors kept in D1 beside their pieces, searched by brute-force cosine.

use crate::bounded_fetch;
use crate::db::knowledge_chunks;
use crate::knowledge::vectorize::{self, Index};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::search::{Embedder, best, decode_vector, dot, normalized};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{Ai, D1Database, Env};

pub const RAG_BACKEND: &str = "RAG_BACKEND";
pub const EMBEDDER_URL: &str = "EMBEDDER_URL";
pub const AI: &str = "AI";
pub const VECTORIZE: &str = "VECTORIZE";
/// Texts per embedding call (Workers AI takes up to 100 for its embedding models).
const EMBED_BATCH: usize = 32;
const LOCAL_TIMEOUT_MS: u64 = 120_000;

enum Kind {
    Local { url: String },
    Cloudflare { ai: Ai, index: Index },
}

/// The configured embedder and vector store.
pub struct Rag {
    pub embedder: Embedder,
    kind: Kind,
}

/// What Workers AI's embedding models answer (inside `result` over REST).
#[derive(Deserialize)]
struct Embedded {
    shape: Vec<usize>,
    data: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct RestAnswer {
    result: Option<Embedded>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct Input<'a> {
    text: &'a [&'a str],
}

impl Rag {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let setting = env
            .var(RAG_BACKEND)
            .map(|value| value.to_string())
            .unwrap_or_default();
        let misconfigured = |why: String| ApiError::internal("choosing the RAG backend", why);
        match setting.as_str() {
            "local" => {
                let url = env
                    .var(EMBEDDER_URL)
                    .map(|value| value.to_string().trim_end_matches('/').to_owned())
                    .map_err(|_| {
                        misconfigured(format!("{RAG_BACKEND} is local but {EMBEDDER_URL} is not set"))
                    })?;
                Ok(Self {
                    embedder: Embedder::MiniLm,
                    kind: Kind::Local { url },
                })
            }
            "cloudflare" => Ok(Self {
                embedder: Embedder::BgeSmall,
                kind: Kind::Cloudflare {
                    ai: env
                        .ai(AI)
                        .map_err(|error| misconfigured(format!("the {AI} binding: {error}")))?,
                    index: Index::from_env(env, VECTORIZE).map_err(misconfigured)?,
                },
            }),
            other => Err(misconfigured(format!(
                "{RAG_BACKEND} is {other:?}; it must be cloudflare (production) or local"
            ))),
        }
    }

    /// Where vectors are kept, for the documents' details: D1, or the Vectorize index as it
    /// describes itself (its size is only eventually up to date).
    pub async fn describe_store(&self) -> serde_json::Value {
        match &self.kind {
            Kind::Local { url } => serde_json::json!({ "store": "d1", "embedder_url": url }),
            Kind::Cloudflare { index, .. } => match index.describe().await {
                Ok(description) => serde_json::json!({ "store": "vectorize", "index": description }),
                Err(why) => serde_json::json!({ "store": "vectorize", "error": why }),
            },
        }
    }

    /// Whether vectors are kept in D1 (else in Vectorize).
    pub fn keeps_vectors_in_d1(&self) -> bool {
        matches!(self.kind, Kind::Local { .. })
    }

    /// The normalized vectors of `texts`, in order. The error says what failed, for the link's
    /// status or the search's 503.
    pub async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let embedded = match &self.kind {
                Kind::Local { url } => local_embed(url, self.embedder, batch).await?,
                Kind::Cloudflare { ai, .. } => ai
                    .run::<_, Embedded>(self.embedder.model(), Input { text: batch })
                    .await
                    .map_err(|error| format!("Workers AI {}: {error}", self.embedder.model()))?,
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

    /// Writes the vectors of a source's new pieces to Vectorize (nothing to do when D1 keeps
    /// them: they are written with their pieces).
    pub async fn upsert(
        &self,
        tenant: &Tenant,
        page_id: &str,
        source: &SourceId,
        items: &[(String, &[f32])],
    ) -> Result<(), String> {
        let Kind::Cloudflare { index, .. } = &self.kind else {
            return Ok(());
        };
        #[derive(Serialize)]
        struct Metadata<'a> {
            source_id: &'a str,
            page_id: &'a str,
        }
        let vectors: Vec<vectorize::Vector<'_, Metadata<'_>>> = items
            .iter()
            .map(|(id, values)| vectorize::Vector {
                id,
                values,
                namespace: tenant.business_id.as_str(),
                metadata: Metadata {
                    source_id: source.as_str(),
                    page_id,
                },
            })
            .collect();
        index.upsert(&vectors).await
    }

    /// Deletes vectors from Vectorize by id (D1's go with their pieces).
    pub async fn delete(&self, ids: &[String]) -> Result<(), String> {
        match &self.kind {
            Kind::Cloudflare { index, .. } if !ids.is_empty() => index.delete_by_ids(ids).await,
            _ => Ok(()),
        }
    }

    /// The `k` pieces of `sources` nearest to `vector`: (piece id, cosine), best first.
    pub async fn nearest(
        &self,
        db: &D1Database,
        tenant: &Tenant,
        sources: &[(SourceId, i64)],
        vector: &[f32],
        k: usize,
    ) -> Result<Vec<(String, f64)>, ApiError> {
        match &self.kind {
            Kind::Local { .. } => {
                let mut scored = Vec::new();
                for (source, version) in sources {
                    let vectors = cached_vectors(db, tenant, source, *version, self.embedder).await?;
                    scored.extend(
                        vectors
                            .iter()
                            .map(|(id, values)| (id.clone(), f64::from(dot(vector, values)))),
                    );
                }
                Ok(best(scored, k))
            }
            Kind::Cloudflare { index, .. } => {
                #[derive(Serialize)]
                struct In<'a> {
                    #[serde(rename = "$in")]
                    any: Vec<&'a str>,
                }
                #[derive(Serialize)]
                struct Filter<'a> {
                    source_id: In<'a>,
                }
                let filter = Filter {
                    source_id: In {
                        any: sources.iter().map(|(id, _)| id.as_str()).collect(),
                    },
                };
                // Vectorize returns at most 100 matches without metadata.
                let matches = index
                    .query(vector, k.min(100), tenant.business_id.as_str(), &filter)
                    .await
                    .map_err(|why| {
                        ApiError::unavailable(format!("searching the vector index failed: {why}"), 5)
                    })?;
                Ok(matches.into_iter().map(|found| (found.id, found.score)).collect())
            }
        }
    }
}

async fn local_embed(url: &str, embedder: Embedder, texts: &[&str]) -> Result<Embedded, String> {
    let body = serde_json::to_vec(&Input { text: texts }).map_err(|error| error.to_string())?;
    let endpoint = format!("{url}/ai/run/{}", embedder.model());
    let exchange = bounded_fetch::post(
        &endpoint,
        &[("content-type", "application/json".to_owned())],
        &body,
        LOCAL_TIMEOUT_MS,
        texts.len() * Embedder::DIMENSIONS * 32 + 4096,
    )
    .await;
    let reply = match exchange.result {
        Ok(reply) => reply,
        Err(bounded_fetch::Failure::TimedOut) => {
            return Err(format!("the local embedder at {url} did not answer in time"));
        }
        Err(bounded_fetch::Failure::Unreachable(why)) => {
            return Err(format!(
                "the local embedder at {url} is not reachable ({why}): is scripts/dev running it?"
            ));
        }
    };
    let answer: RestAnswer = serde_json::from_slice(&reply.body).map_err(|error| {
        format!(
            "the local embedder answered {} with a body that is not its JSON: {error}",
            reply.status
        )
    })?;
    match answer.result {
        Some(result) if reply.status == 200 => Ok(result),
        _ => Err(format!(
            "the local embedder answered {}: {:?}",
            reply.status, answer.errors
        )),
    }
}

/// A source's vectors as this isolate last loaded them.
struct Cached {
    version: i64,
    embedder: Embedder,
    vectors: std::rc::Rc<Vec<(String, Vec<f32>)>>,
}

thread_local! {
    /// Vectors by source, kept between requests of an isolate and reloaded when the source's
    /// version moves on: search then reads D1 only for the list of active sources.
    static VECTORS: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

async fn cached_vectors(
    db: &D1Database,
    tenant: &Tenant,
    source: &SourceId,
    version: i64,
    embedder: Embedder,
) -> Result<std::rc::Rc<Vec<(String, Vec<f32>)>>, ApiError> {
    let hit = VECTORS.with(|cache| {
        cache
            .borrow()
            .get(source.as_str())
            .filter(|cached| cached.version == version && cached.embedder == embedder)
            .map(|cached| cached.vectors.clone())
    });
    if let Some(vectors) = hit {
        return Ok(vectors);
    }
    let rows = knowledge_chunks::vectors(db, tenant, source, embedder.id()).await?;
    let mut vectors = Vec::with_capacity(rows.len());
    for (id, encoded) in rows {
        let values = decode_vector(&encoded)
            .filter(|values| values.len() == Embedder::DIMENSIONS)
            .ok_or_else(|| crate::db::corrupt("knowledge chunk", &id, "vector"))?;
        vectors.push((id, values));
    }
    let vectors = std::rc::Rc::new(vectors);
    VECTORS.with(|cache| {
        cache.borrow_mut().insert(
            source.to_string(),
            Cached {
                version,
                embedder,
                vectors: vectors.clone(),
            },
        );
    });
    Ok(vectors)
}
