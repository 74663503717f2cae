//! Where embeddings are made and vectors kept, chosen by the `RAG_BACKEND` setting and never
//! switched silently: a backend that cannot be used fails its requests with the reason.
//!
//! - `cloudflare` (production): Workers AI's `@cf/baai/bge-small-en-v1.5` through the `AI`
//!   binding, and the `VECTORIZE` index, one namespace per business, with the source, the page and
//!   the subject's token as metadata (the index needs metadata indexes on `source_id` and `subject`
//!   before the vectors they filter are written; docs/operations.md).
//! - `local` (the local stack; `wrangler dev` cannot reach either binding offline): the local
//!   embedding server at `EMBEDDER_URL`, which runs all-MiniLM-L6-v2 and answers in Workers AI's
//!   REST shape, and keeps the vectors as Vectorize would (`vectorize::Store::Local`).
//!
//! Either way D1 holds the pieces' text and the vector store their vectors, under the piece's id.

use crate::Env;
use crate::knowledge::local;
use crate::knowledge::vectorize::{self, Store, Subjects};
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

/// The configured vector store alone, for work that only deletes vectors (an erasure, which runs
/// where no embedder is bound).
pub fn store_from_env(env: &Env) -> Result<Store, ApiError> {
    let misconfigured = |why: String| ApiError::internal("choosing the vector store", why);
    match env.var(RAG_BACKEND).unwrap_or_default().as_str() {
        "local" => env
            .var(EMBEDDER_URL)
            .map(|url| Store::Local {
                url: url.trim_end_matches('/').to_owned(),
            })
            .ok_or_else(|| misconfigured(format!("{RAG_BACKEND} is local but {EMBEDDER_URL} is not set"))),
        "cloudflare" => Store::vectorize(env, VECTORIZE).map_err(misconfigured),
        other => Err(misconfigured(format!(
            "{RAG_BACKEND} is {other:?}; it must be cloudflare (production) or local"
        ))),
    }
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

    /// Writes the vectors of a source's pieces, by piece id, each with its subject's token.
    pub async fn upsert(
        &self,
        tenant: &Tenant,
        page_id: &str,
        source: &SourceId,
        items: &[(String, &[f32], &str)],
    ) -> Result<(), String> {
        let vectors: Vec<vectorize::Vector<'_>> = items
            .iter()
            .map(|(id, values, subject)| vectorize::Vector {
                id,
                values,
                namespace: tenant.business_id.as_str(),
                metadata: vectorize::Metadata {
                    source_id: source.as_str(),
                    page_id,
                    subject,
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

    /// The values of the vectors among `ids` the store holds (to write them again with their
    /// subject's token, without embedding them again).
    pub async fn values(&self, ids: &[String]) -> Result<Vec<(String, Vec<f32>)>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.store.values(&self.env, ids).await
    }

    /// Deletes vectors by piece id.
    pub async fn delete(&self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        self.store.delete_by_ids(&self.env, ids).await
    }

    /// The `k` pieces of `sources` nearest to `vector`, of the `subjects` asked when they are:
    /// (piece id, cosine), best first.
    pub async fn nearest(
        &self,
        tenant: &Tenant,
        sources: &[SourceId],
        subjects: Option<Subjects<'_>>,
        vector: &[f32],
        k: usize,
    ) -> Result<Vec<(String, f64)>, ApiError> {
        let sources: Vec<&str> = sources.iter().map(SourceId::as_str).collect();
        let matches = self
            .store
            .query(
                &self.env,
                vector,
                k,
                tenant.business_id.as_str(),
                &sources,
                subjects,
            )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::local_server::{self, DIMENSIONS, HOST, URL, unit};
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use serde_json::json;

    fn local(fixture: &Fixture) -> Rag {
        fixture.stack.set_var(RAG_BACKEND, "local");
        fixture.stack.set_var(EMBEDDER_URL, &format!("{URL}/"));
        Rag::from_env(&fixture.env).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn the_backend_is_chosen_by_rag_backend_and_one_that_cannot_be_used_says_why() {
        let cases = [
            (
                None,
                None,
                "RAG_BACKEND is \"\"; it must be cloudflare (production) or local",
            ),
            (
                Some("vectorize"),
                Some(URL),
                "RAG_BACKEND is \"vectorize\"; it must be",
            ),
            (
                Some("local"),
                None,
                "RAG_BACKEND is local but EMBEDDER_URL is not set",
            ),
            (Some("cloudflare"), None, "the AI binding: "),
        ];
        let fixture = Fixture::new();
        for (backend, url, why) in cases {
            match backend {
                Some(backend) => fixture.stack.set_var(RAG_BACKEND, backend),
                None => fixture.stack.remove_var(RAG_BACKEND),
            }
            match url {
                Some(url) => fixture.stack.set_var(EMBEDDER_URL, url),
                None => fixture.stack.remove_var(EMBEDDER_URL),
            }
            let Err(error) = Rag::from_env(&fixture.env) else {
                panic!("{backend:?}: chosen");
            };
            assert_eq!(
                error.status(),
                500,
                "{backend:?}: our configuration, not the caller's"
            );
            assert!(
                error
                    .detail()
                    .and_then(|detail| detail.strip_prefix("choosing the RAG backend: "))
                    .is_some_and(|detail| detail.starts_with(why)),
                "{backend:?}: {:?}",
                error.detail()
            );
        }
        let rag = local(&fixture);
        assert_eq!((rag.embedder, rag.store_name()), (Embedder::MiniLm, "local"));
    }

    #[test]
    fn texts_are_embedded_a_hundred_a_call_in_order_and_normalised() {
        let fixture = Fixture::new();
        local_server::install(&fixture.stack, |text| {
            // Unnormalised on purpose: (3, 4) along two axes picked by the text.
            let at: usize = text.trim_start_matches("text ").parse().unwrap_or(0) % (DIMENSIONS - 1);
            let mut vector = [0.0; DIMENSIONS];
            (vector[at], vector[at + 1]) = (3.0, 4.0);
            vector
        });
        let rag = local(&fixture);
        let texts: Vec<String> = (0..250).map(|at| format!("text {at}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = fixture
            .run(rag.embed(&refs))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(vectors.len(), 250);
        for (at, vector) in vectors.iter().enumerate() {
            let axis = at % (DIMENSIONS - 1);
            assert!(
                (vector[axis] - 0.6).abs() < 1e-6 && (vector[axis + 1] - 0.8).abs() < 1e-6,
                "text {at}: its own vector, at unit length"
            );
        }
        let calls = fixture.stack.calls_to(HOST);
        let batches: Vec<usize> = calls
            .iter()
            .map(|call| call.json()["text"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(batches, [100, 100, 50], "Workers AI's 100 texts a call");
        assert_eq!(calls[0].url, format!("{URL}/ai/run/all-minilm-l6-v2"));
    }

    #[test]
    fn an_answer_of_the_wrong_shape_is_an_error_and_never_a_vector() {
        let row = vec![0.5f32; DIMENSIONS];
        let cases = [
            (
                "fewer vectors than texts",
                json!({ "shape": [1, DIMENSIONS], "data": [row] }),
            ),
            (
                "a shape that disagrees",
                json!({ "shape": [3, DIMENSIONS], "data": [row, row] }),
            ),
            (
                "383 dimensions",
                json!({ "shape": [2, 383], "data": [vec![0.5f32; 383], vec![0.5f32; 383]] }),
            ),
        ];
        let fixture = Fixture::new();
        for (description, result) in cases {
            let answer = json!({ "result": result, "success": true, "errors": [] });
            fixture.stack.partner(HOST, move |_| Reply::json(200, &answer));
            let rag = local(&fixture);
            let embedded = fixture.run(rag.embed(&["a", "b"]));
            assert!(
                embedded
                    .as_ref()
                    .is_err_and(|why| why.starts_with("the embedder answered")),
                "{description}: {:?}",
                embedded.map(|vectors| vectors.len())
            );
        }
    }

    #[test]
    fn a_pieces_vector_is_kept_in_its_businesss_namespace_with_its_source_and_page_and_found_by_them() {
        let fixture = Fixture::new();
        local_server::install(&fixture.stack, |_| unit(0));
        let rag = local(&fixture);
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let other = fixture.business("Other").await;
            let source = SourceId::generate([1; 16]);
            let elsewhere = SourceId::generate([2; 16]);
            let (near, far) = (unit(0), unit(1));
            rag.upsert(
                &acme,
                "104729000007919",
                &source,
                &[("p1".into(), &near[..], "general"), ("p2".into(), &far[..], "general")],
            )
            .await
            .unwrap_or_else(|error| panic!("{error}"));
            let found = rag
                .nearest(&acme, std::slice::from_ref(&source), None, &near, 5)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                found.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
                ["p1", "p2"],
                "best first"
            );
            let not_linked = rag
                .nearest(&acme, &[elsewhere], None, &near, 5)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert!(not_linked.is_empty(), "another source's search sees none of them");
            let not_theirs = rag
                .nearest(&other, &[source], None, &near, 5)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert!(not_theirs.is_empty(), "another business sees none of them");
            let upsert = fixture
                .stack
                .calls_to(HOST)
                .into_iter()
                .find(|call| call.path().ends_with("/upsert"))
                .map(|call| call.json())
                .unwrap_or_default();
            assert_eq!(upsert["vectors"][0]["namespace"], acme.business_id.as_str());
            assert_eq!(
                upsert["vectors"][0]["metadata"],
                json!({ "source_id": SourceId::generate([1; 16]).as_str(), "page_id": "104729000007919", "subject": "general" })
            );

            let calls = fixture.stack.calls_to(HOST).len();
            rag.existing(&[]).await.unwrap_or_else(|error| panic!("{error}"));
            rag.delete(&[]).await.unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                fixture.stack.calls_to(HOST).len(),
                calls,
                "nothing to look up or delete, no call"
            );
        });
    }

    #[test]
    fn a_vector_store_that_fails_a_search_is_a_503_with_the_reason() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOST, |_| Reply::text(502, "Bad Gateway"));
        let rag = local(&fixture);
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let Err(error) = rag
                .nearest(&tenant, &[SourceId::generate([1; 16])], None, &unit(0), 5)
                .await
            else {
                panic!("a search without a vector store answered");
            };
            assert_eq!(error.status(), 503);
            assert!(
                error
                    .to_string()
                    .contains("searching the vector index failed: the local vector store answered 502"),
                "{error}"
            );
        });
    }
}
