//! The vector store: a Vectorize index, through its binding (production), or the local stand-in
//! the embedder serves in the shape of Vectorize's REST API (the local stack, which cannot reach
//! Vectorize offline). Both are called the same four ways: `upsert`, `get_by_ids`,
//! `delete_by_ids` and `query` (by cosine, in one namespace, with a `source_id $in` filter), each
//! call one subrequest of the invocation. D1 holds the pieces' text, never their vectors.
//!
//! `worker` 0.8.7 does not wrap the Vectorize binding: its JavaScript methods are called with
//! arguments built as JSON and parsed into plain JavaScript objects, because Vectorize reads
//! metadata and filters as plain objects (a `Map`, which a serde serializer would make by default,
//! is not read).

use crate::Env;
use crate::knowledge::local;
use domain::platform::{self, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::js_sys::{self, Function, JSON, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// What a query returns at most, as Vectorize does without values or metadata.
pub const MAX_TOP_K: usize = 100;
const LOCAL_TIMEOUT_MS: u64 = 30_000;
/// The local index's name in its paths (it keeps one index, whatever the name).
const LOCAL_INDEX: &str = "crm-edge-knowledge";

/// One vector to write.
#[derive(Serialize)]
pub struct Vector<'a> {
    pub id: &'a str,
    pub values: &'a [f32],
    pub namespace: &'a str,
    pub metadata: Metadata<'a>,
}

/// What the index filters on (it needs a metadata index on `source_id`; docs/operations.md).
#[derive(Serialize)]
pub struct Metadata<'a> {
    pub source_id: &'a str,
    pub page_id: &'a str,
}

/// A match of a query, best first.
#[derive(Deserialize, Debug)]
pub struct Match {
    pub id: String,
    pub score: f64,
}

#[derive(Deserialize)]
struct Matches {
    #[serde(default)]
    matches: Vec<Match>,
}

#[derive(Deserialize)]
struct Found {
    id: String,
}

pub enum Store {
    /// The Vectorize binding.
    Vectorize { binding: JsValue, name: &'static str },
    /// The embedder's stand-in at this origin.
    Local { url: String },
}

impl Store {
    pub fn vectorize(env: &Env, name: &'static str) -> Result<Self, String> {
        let binding = env
            .bindings()
            .js(name)
            .ok_or_else(|| format!("the {name} Vectorize binding is not configured"))?;
        Ok(Self::Vectorize { binding, name })
    }

    /// Writes vectors, [`platform::VECTORIZE_UPSERT`] a call. Vectorize applies writes
    /// asynchronously: they become visible to queries within seconds.
    pub async fn upsert(&self, env: &Env, vectors: &[Vector<'_>]) -> Result<(), String> {
        #[derive(Serialize)]
        struct Upsert<'a, 'b> {
            vectors: &'a [Vector<'b>],
        }
        for slice in vectors.chunks(platform::VECTORIZE_UPSERT) {
            match self {
                Self::Vectorize { .. } => {
                    self.call(env, "upsert", &[plain(&slice)?]).await?;
                }
                Self::Local { .. } => {
                    self.local::<serde_json::Value, _>(env, "upsert", &Upsert { vectors: slice })
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The ids among `ids` the store holds.
    pub async fn existing(&self, env: &Env, ids: &[String]) -> Result<Vec<String>, String> {
        #[derive(Serialize)]
        struct Ids<'a> {
            ids: &'a [String],
        }
        let mut found = Vec::new();
        for slice in ids.chunks(platform::VECTORIZE_UPSERT) {
            let answer: Vec<Found> = match self {
                Self::Vectorize { .. } => from_plain(&self.call(env, "getByIds", &[plain(&slice)?]).await?)?,
                Self::Local { .. } => self.local(env, "get_by_ids", &Ids { ids: slice }).await?,
            };
            found.extend(answer.into_iter().map(|vector| vector.id));
        }
        Ok(found)
    }

    /// Deletes vectors by id (the only way Vectorize deletes).
    pub async fn delete_by_ids(&self, env: &Env, ids: &[String]) -> Result<(), String> {
        #[derive(Serialize)]
        struct Ids<'a> {
            ids: &'a [String],
        }
        for slice in ids.chunks(platform::VECTORIZE_UPSERT) {
            match self {
                Self::Vectorize { .. } => {
                    self.call(env, "deleteByIds", &[plain(&slice)?]).await?;
                }
                Self::Local { .. } => {
                    self.local::<serde_json::Value, _>(env, "delete_by_ids", &Ids { ids: slice })
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The `top_k` nearest vectors to `vector` in `namespace` whose `source_id` is one of
    /// `sources`, best first.
    pub async fn query(
        &self,
        env: &Env,
        vector: &[f32],
        top_k: usize,
        namespace: &str,
        sources: &[&str],
    ) -> Result<Vec<Match>, String> {
        #[derive(Serialize)]
        struct In<'a> {
            #[serde(rename = "$in")]
            any: &'a [&'a str],
        }
        #[derive(Serialize)]
        struct Filter<'a> {
            source_id: In<'a>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Options<'a> {
            top_k: usize,
            namespace: &'a str,
            filter: Filter<'a>,
            return_values: bool,
            return_metadata: &'static str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Query<'a> {
            vector: &'a [f32],
            #[serde(flatten)]
            options: Options<'a>,
        }
        let options = Options {
            top_k: top_k.min(MAX_TOP_K),
            namespace,
            filter: Filter {
                source_id: In { any: sources },
            },
            return_values: false,
            return_metadata: "none",
        };
        let matches: Matches = match self {
            Self::Vectorize { .. } => from_plain(
                &self
                    .call(env, "query", &[plain(&vector)?, plain(&options)?])
                    .await?,
            )?,
            Self::Local { .. } => self.local(env, "query", &Query { vector, options }).await?,
        };
        Ok(matches.matches)
    }

    /// One call of the binding's method `method`.
    async fn call(&self, env: &Env, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
        let Self::Vectorize { binding, name } = self else {
            return Err("not a Vectorize binding".to_owned());
        };
        env.charge(Resource::Subrequest, 1)
            .map_err(|error| error.to_string())?;
        let failed = |error: JsValue| {
            let message = error
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
                .unwrap_or_else(|| format!("{error:?}"));
            format!("Vectorize {name}.{method}: {message}")
        };
        let function: Function = Reflect::get(binding, &JsValue::from_str(method))
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| format!("Vectorize {name}.{method} is not a function"))?;
        let arguments: js_sys::Array = args.iter().collect();
        let returned = function.apply(binding, &arguments).map_err(failed)?;
        JsFuture::from(Promise::resolve(&returned)).await.map_err(failed)
    }

    /// One call of the local stand-in's `operation`.
    async fn local<T: DeserializeOwned, B: Serialize>(
        &self,
        env: &Env,
        operation: &str,
        body: &B,
    ) -> Result<T, String> {
        let Self::Local { url } = self else {
            return Err("not the local vector store".to_owned());
        };
        let path = format!("/vectorize/v2/indexes/{LOCAL_INDEX}/{operation}");
        local::post(
            env,
            "vector store",
            url,
            &path,
            body,
            LOCAL_TIMEOUT_MS,
            4 * 1024 * 1024,
        )
        .await
    }
}

fn plain<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, String> {
    let json =
        serde_json::to_string(value).map_err(|error| format!("encoding a Vectorize argument: {error}"))?;
    JSON::parse(&json).map_err(|_| "a Vectorize argument is not JSON".to_owned())
}

fn from_plain<T: DeserializeOwned>(value: &JsValue) -> Result<T, String> {
    let json: String = JSON::stringify(value)
        .map_err(|_| "a Vectorize answer is not JSON".to_owned())?
        .into();
    serde_json::from_str(&json).map_err(|error| format!("reading a Vectorize answer: {error}"))
}
