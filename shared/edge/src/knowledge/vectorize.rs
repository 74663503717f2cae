//! The vector store: a Vectorize index, through its binding (production), or the local stand-in
//! the embedder serves in the shape of Vectorize's REST API (the local stack, which cannot reach
//! Vectorize offline). Both are called the same four ways: `upsert`, `get_by_ids`,
//! `delete_by_ids` and `query` (by cosine, in one namespace, with a `source_id $in` filter and,
//! for a customer's search, a `subject` filter too), each call one subrequest of the invocation.
//! D1 holds the pieces' text, never their vectors.
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
/// Ids looked up a call when their values are wanted: a tenth of a lookup of ids alone, so that
/// an answer stays around a megabyte.
const VALUES_PER_CALL: usize = 100;
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

/// What the index filters on (it needs metadata indexes on `source_id` and `subject`;
/// docs/operations.md).
#[derive(Serialize)]
pub struct Metadata<'a> {
    pub source_id: &'a str,
    pub page_id: &'a str,
    /// The piece's subject's token (`domain::bot::subject::token`).
    pub subject: &'a str,
}

/// The subjects a query is narrowed to, by their tokens, as Vectorize's filter writes them.
#[derive(Serialize, Debug, Clone, Copy)]
pub enum Subjects<'a> {
    /// This one.
    #[serde(rename = "$eq")]
    Is(&'a str),
    /// Any of these.
    #[serde(rename = "$in")]
    AnyOf(&'a [&'a str]),
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

/// A vector as `getByIds` answers with it: its values a list (or, from a typed array, an object
/// by index).
#[derive(Deserialize)]
struct Held {
    id: String,
    #[serde(default)]
    values: serde_json::Value,
}

impl Held {
    fn values(&self) -> Option<Vec<f32>> {
        let number = |value: &serde_json::Value| value.as_f64().map(|number| number as f32);
        match &self.values {
            serde_json::Value::Array(list) => list.iter().map(number).collect(),
            serde_json::Value::Object(by_index) => (0..by_index.len())
                .map(|at| by_index.get(&at.to_string()).and_then(number))
                .collect(),
            _ => None,
        }
    }
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

    /// The values of the vectors among `ids` the store holds, [`VALUES_PER_CALL`] ids a call: a
    /// vector written without its subject's token is written again from them, not embedded again.
    pub async fn values(&self, env: &Env, ids: &[String]) -> Result<Vec<(String, Vec<f32>)>, String> {
        #[derive(Serialize)]
        struct Ids<'a> {
            ids: &'a [String],
        }
        let mut found = Vec::new();
        for slice in ids.chunks(VALUES_PER_CALL) {
            let answer: Vec<Held> = match self {
                Self::Vectorize { .. } => from_plain(&self.call(env, "getByIds", &[plain(&slice)?]).await?)?,
                Self::Local { .. } => self.local(env, "get_by_ids", &Ids { ids: slice }).await?,
            };
            for held in answer {
                let values = held
                    .values()
                    .ok_or_else(|| format!("the vector store answered {} without its values", held.id))?;
                found.push((held.id, values));
            }
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
    /// `sources` and, when `subjects` are given, whose subject is one of them, best first: the
    /// store leaves the others out before it takes the nearest.
    pub async fn query(
        &self,
        env: &Env,
        vector: &[f32],
        top_k: usize,
        namespace: &str,
        sources: &[&str],
        subjects: Option<Subjects<'_>>,
    ) -> Result<Vec<Match>, String> {
        #[derive(Serialize)]
        struct In<'a> {
            #[serde(rename = "$in")]
            any: &'a [&'a str],
        }
        #[derive(Serialize)]
        struct Filter<'a> {
            source_id: In<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            subject: Option<Subjects<'a>>,
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
                subject: subjects,
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
            // A lookup answers with the vectors' values, as Vectorize's does.
            16 * 1024 * 1024,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::local_server::{self, DIMENSIONS, HOST, URL, unit};
    use crate::testing::Fixture;
    use serde_json::json;

    fn local() -> Store {
        Store::Local { url: URL.to_owned() }
    }

    fn vector<'a>(id: &'a str, values: &'a [f32], namespace: &'a str, source_id: &'a str) -> Vector<'a> {
        of(id, values, namespace, source_id, "general")
    }

    fn of<'a>(
        id: &'a str,
        values: &'a [f32],
        namespace: &'a str,
        source_id: &'a str,
        subject: &'a str,
    ) -> Vector<'a> {
        Vector {
            id,
            values,
            namespace,
            metadata: Metadata {
                source_id,
                page_id: "104729000007919",
                subject,
            },
        }
    }

    fn ids(matches: &[Match]) -> Vec<&str> {
        matches.iter().map(|found| found.id.as_str()).collect()
    }

    #[test]
    fn vectors_are_written_found_queried_within_their_business_and_sources_and_deleted() {
        let fixture = Fixture::new();
        let index = local_server::install(&fixture.stack, |_| unit(0));
        let store = local();
        let (a, b) = (unit(0), unit(1));
        let mut between = [0.0f32; DIMENSIONS];
        (between[0], between[1]) = (0.6, 0.8);
        fixture.run(async {
            let env = &fixture.env;
            store
                .upsert(
                    env,
                    &[
                        vector("s1:a", &a, "b1", "s1"),
                        vector("s1:b", &b, "b1", "s1"),
                        vector("s2:c", &between, "b1", "s2"),
                        vector("s3:a", &a, "b2", "s3"),
                    ],
                )
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let held = store
                .existing(env, &["s1:a".into(), "s2:c".into(), "nowhere".into()])
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(held, ["s1:a", "s2:c"]);

            let query = |sources: &'static [&'static str], namespace: &'static str| {
                store.query(env, &a, 10, namespace, sources, None)
            };
            let one = query(&["s1"], "b1")
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                ids(&one),
                ["s1:a", "s1:b"],
                "only the sources asked for, best first"
            );
            assert!(
                (one[0].score - 1.0).abs() < 1e-6 && one[1].score.abs() < 1e-6,
                "{one:?}"
            );
            let both = query(&["s1", "s2"], "b1")
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(ids(&both), ["s1:a", "s2:c", "s1:b"]);
            assert!((both[1].score - 0.6).abs() < 1e-6, "a cosine: {both:?}");
            let elsewhere = query(&["s1", "s3"], "b2")
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                ids(&elsewhere),
                ["s3:a"],
                "another business's namespace holds only its own"
            );

            store
                .delete_by_ids(env, &["s1:a".into(), "s2:c".into()])
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let after = query(&["s1", "s2"], "b1")
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(ids(&after), ["s1:b"]);
        });
        assert_eq!(index.len(), 2, "s1:b and the other business's s3:a are left");
    }

    #[test]
    fn each_call_stays_within_vectorizes_bounds_and_counts_as_a_subrequest() {
        let fixture = Fixture::new();
        local_server::install(&fixture.stack, |_| unit(0));
        let store = local();
        let many: Vec<String> = (0..=platform::VECTORIZE_UPSERT)
            .map(|at| format!("s1:{at}"))
            .collect();
        let before = fixture.env.usage().subrequests;
        fixture.run(async {
            let env = &fixture.env;
            store
                .existing(env, &many)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            store
                .delete_by_ids(env, &many)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            store
                .query(env, &unit(3), 500, "b1", &["s1", "s2"], None)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
        });
        let calls = fixture.stack.calls_to(HOST);
        let sizes: Vec<(&str, usize)> = calls
            .iter()
            .filter(|call| !call.path().ends_with("/query"))
            .map(|call| {
                (
                    call.path().rsplit('/').next().unwrap_or_default(),
                    call.json()["ids"].as_array().map_or(0, Vec::len),
                )
            })
            .collect();
        assert_eq!(
            sizes,
            [
                ("get_by_ids", 1_000),
                ("get_by_ids", 1),
                ("delete_by_ids", 1_000),
                ("delete_by_ids", 1)
            ],
            "a thousand ids a call"
        );
        let query = calls
            .iter()
            .find(|call| call.path() == "/vectorize/v2/indexes/crm-edge-knowledge/query")
            .unwrap_or_else(|| panic!("no query: {calls:?}"))
            .json();
        assert_eq!(query["topK"], 100, "top-k capped at Vectorize's 100");
        assert_eq!(query["namespace"], "b1");
        assert_eq!(query["filter"], json!({ "source_id": { "$in": ["s1", "s2"] } }));
        assert_eq!(
            (&query["returnValues"], &query["returnMetadata"]),
            (&json!(false), &json!("none"))
        );
        assert_eq!(query["vector"].as_array().map(Vec::len), Some(DIMENSIONS));
        assert_eq!(
            fixture.env.usage().subrequests - before,
            5,
            "each call one subrequest"
        );
    }

    #[test]
    fn a_store_that_does_not_answer_fails_with_the_reason() {
        let fixture = Fixture::new();
        let failed = fixture.run(local().existing(&fixture.env, &["s1:a".into()]));
        assert!(
            failed.as_ref().is_err_and(
                |why| why.starts_with("the local vector store at http://embedder.test is not reachable")
            ),
            "{failed:?}"
        );
    }

    #[test]
    fn a_query_narrowed_to_subjects_leaves_the_others_out_before_it_takes_the_nearest() {
        let fixture = Fixture::new();
        local_server::install(&fixture.stack, |_| unit(0));
        let store = local();
        let (a, b) = (unit(0), unit(1));
        let mut near = [0.0f32; DIMENSIONS];
        (near[0], near[1]) = (0.6, 0.8);
        fixture.run(async {
            let env = &fixture.env;
            store
                .upsert(
                    env,
                    &[
                        of("s1:bob", &a, "b1", "s1", "b0b"),
                        of("s1:ann", &near, "b1", "s1", "a22"),
                        of("s2:plan", &b, "b1", "s2", "general"),
                    ],
                )
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let ask = |subjects| store.query(env, &a, 1, "b1", &["s1", "s2"], Some(subjects));
            let anns = ask(Subjects::AnyOf(&["a22", "c33"]))
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(ids(&anns), ["s1:ann"], "Bob's is nearer, and never a candidate");
            let general = ask(Subjects::Is("general"))
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(ids(&general), ["s2:plan"]);
            let values = store
                .values(env, &["s1:ann".into(), "nowhere".into()])
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                values,
                [("s1:ann".to_owned(), near.to_vec())],
                "its values, as written"
            );
        });
        let filters: Vec<serde_json::Value> = fixture
            .stack
            .calls_to(HOST)
            .iter()
            .filter(|call| call.path().ends_with("/query"))
            .map(|call| call.json()["filter"].clone())
            .collect();
        assert_eq!(
            filters,
            [
                json!({ "source_id": { "$in": ["s1", "s2"] }, "subject": { "$in": ["a22", "c33"] } }),
                json!({ "source_id": { "$in": ["s1", "s2"] }, "subject": { "$eq": "general" } }),
            ],
            "as Vectorize's filter writes them"
        );
    }
}
