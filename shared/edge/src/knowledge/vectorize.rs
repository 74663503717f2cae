//! The Vectorize binding, which `worker` 0.8.7 does not wrap: the four calls we need (`upsert`,
//! `query`, `deleteByIds`, `describe`), made through the binding's own JavaScript methods.
//! Arguments are built as JSON and parsed into plain JavaScript objects, because Vectorize reads
//! metadata and filters as plain objects (a `Map`, which a serde serializer would make by
//! default, is not read).

use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::Env;
use worker::js_sys::{self, Function, JSON, Promise, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// A Vectorize index bound to the worker.
pub struct Index {
    binding: JsValue,
    name: &'static str,
}

/// One vector to write.
#[derive(Serialize)]
pub struct Vector<'a, M: Serialize> {
    pub id: &'a str,
    pub values: &'a [f32],
    pub namespace: &'a str,
    pub metadata: M,
}

/// A match of a query, best first.
#[derive(serde::Deserialize, Debug)]
pub struct Match {
    pub id: String,
    pub score: f64,
}

#[derive(serde::Deserialize)]
struct Matches {
    #[serde(default)]
    matches: Vec<Match>,
}

impl Index {
    pub fn from_env(env: &Env, name: &'static str) -> Result<Self, String> {
        let binding = Reflect::get(env, &JsValue::from_str(name))
            .map_err(|_| format!("the {name} Vectorize binding cannot be read"))?;
        if binding.is_undefined() || binding.is_null() {
            return Err(format!("the {name} Vectorize binding is not configured"));
        }
        Ok(Self { binding, name })
    }

    async fn call(&self, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
        let failed = |error: JsValue| {
            let message = error
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
                .unwrap_or_else(|| format!("{error:?}"));
            format!("Vectorize {}.{method}: {message}", self.name)
        };
        let function: Function = Reflect::get(&self.binding, &JsValue::from_str(method))
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| format!("Vectorize {}.{method} is not a function", self.name))?;
        let arguments: js_sys::Array = args.iter().collect();
        let returned = function.apply(&self.binding, &arguments).map_err(failed)?;
        JsFuture::from(Promise::resolve(&returned)).await.map_err(failed)
    }

    /// Writes vectors (at most 1000 a call, as the binding takes). Vectorize applies writes
    /// asynchronously: they become visible to queries within seconds.
    pub async fn upsert<M: Serialize>(&self, vectors: &[Vector<'_, M>]) -> Result<(), String> {
        for chunk in vectors.chunks(1000) {
            self.call("upsert", &[plain(&chunk)?]).await?;
        }
        Ok(())
    }

    /// Deletes vectors by id (the only way Vectorize deletes).
    pub async fn delete_by_ids(&self, ids: &[String]) -> Result<(), String> {
        for chunk in ids.chunks(1000) {
            self.call("deleteByIds", &[plain(&chunk)?]).await?;
        }
        Ok(())
    }

    /// The nearest vectors to `vector` within `namespace` that pass `filter` (on indexed
    /// metadata), best first.
    pub async fn query<F: Serialize>(
        &self,
        vector: &[f32],
        top_k: usize,
        namespace: &str,
        filter: &F,
    ) -> Result<Vec<Match>, String> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Options<'a, F: Serialize> {
            top_k: usize,
            namespace: &'a str,
            filter: &'a F,
            return_values: bool,
            return_metadata: &'static str,
        }
        let options = Options {
            top_k,
            namespace,
            filter,
            return_values: false,
            return_metadata: "none",
        };
        let answer = self.call("query", &[plain(&vector)?, plain(&options)?]).await?;
        let matches: Matches = from_plain(&answer)?;
        Ok(matches.matches)
    }

    /// The index's configuration and size, as Vectorize describes it.
    pub async fn describe(&self) -> Result<serde_json::Value, String> {
        let answer = self.call("describe", &[]).await?;
        from_plain(&answer)
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
