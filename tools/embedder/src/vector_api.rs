//! The local vector index's API (`crate::vectors`), in the shape of Vectorize's v2 REST API
//! (`/vectorize/v2/indexes/{index}/{upsert,query,get_by_ids,delete_by_ids}`, without the account
//! part of the path), with JSON bodies and the same envelope as the embeddings (`result`,
//! `success`, `errors`, `messages`). The index name is accepted and ignored: there is one index.

use crate::DIMENSIONS;
use crate::api::ApiError;
use crate::http::Response;
use crate::vectors::{Index, Metadata, Vector};
use serde_json::{Value, json};

const PREFIX: &str = "/vectorize/v2/indexes/";
/// Vectors per upsert, ids per lookup or deletion, and top-k, as Vectorize bounds them.
pub const MAX_UPSERT: usize = 1_000;
pub const MAX_IDS: usize = 1_000;
pub const MAX_TOP_K: usize = 100;
/// Request bodies of this API at most: a thousand vectors in JSON.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Upsert,
    Query,
    GetByIds,
    DeleteByIds,
}

/// The operation a POST to `path` asks for, if the path is this API's.
pub fn operation(path: &str) -> Option<Operation> {
    let rest = path.strip_prefix(PREFIX)?;
    let (index, operation) = rest.split_once('/')?;
    if index.is_empty() {
        return None;
    }
    match operation {
        "upsert" => Some(Operation::Upsert),
        "query" => Some(Operation::Query),
        "get_by_ids" => Some(Operation::GetByIds),
        "delete_by_ids" => Some(Operation::DeleteByIds),
        _ => None,
    }
}

/// Does `operation` with the JSON `body` on `index`.
pub fn answer(index: &Index, operation: Operation, body: &[u8]) -> Response {
    match run(index, operation, body) {
        Ok(result) => {
            let body = json!({ "result": result, "success": true, "errors": [], "messages": [] });
            Response::json(200, body.to_string().into_bytes())
        }
        Err(error) => error.into_response(),
    }
}

fn run(index: &Index, operation: Operation, body: &[u8]) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_input(format!("the body is not valid JSON: {error}")))?;
    let stored = |error: std::io::Error| {
        eprintln!("embedder: the vector log could not be written: {error}");
        ApiError::internal()
    };
    match operation {
        Operation::Upsert => {
            let vectors = vectors(&body)?;
            let count = index.upsert(vectors).map_err(stored)?;
            Ok(json!({ "count": count, "mutationId": mutation_id() }))
        }
        Operation::DeleteByIds => {
            let ids = ids(&body)?;
            index.delete(&ids).map_err(stored)?;
            Ok(json!({ "count": ids.len(), "mutationId": mutation_id() }))
        }
        Operation::GetByIds => {
            let ids = ids(&body)?;
            // Whole vectors, as Vectorize answers a lookup.
            let found: Vec<Value> = index
                .vectors(&ids)
                .into_iter()
                .map(|vector| {
                    json!({
                        "id": vector.id,
                        "namespace": vector.namespace,
                        "values": vector.values,
                        "metadata": {
                            "source_id": vector.metadata.source_id,
                            "page_id": vector.metadata.page_id,
                            "subject": vector.metadata.subject,
                        },
                    })
                })
                .collect();
            Ok(Value::Array(found))
        }
        Operation::Query => {
            let query = values(body.get("vector"), "vector")?;
            let top_k = body.get("topK").and_then(Value::as_u64).unwrap_or(5) as usize;
            if top_k == 0 || top_k > MAX_TOP_K {
                return Err(ApiError::bad_input(format!("topK: 1 to {MAX_TOP_K}")));
            }
            let namespace = body.get("namespace").and_then(Value::as_str).unwrap_or_default();
            let sources: Vec<String> = body
                .pointer("/filter/source_id/$in")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .ok_or_else(|| {
                    ApiError::bad_input("filter: {\"source_id\": {\"$in\": [...]}} is required")
                })?;
            let subjects = subjects(body.pointer("/filter/subject"))?;
            let matches: Vec<Value> = index
                .query(namespace, &query, &sources, subjects.as_deref(), top_k)
                .into_iter()
                .map(|(id, score)| json!({ "id": id, "score": score }))
                .collect();
            Ok(json!({ "count": matches.len(), "matches": matches }))
        }
    }
}

/// A `subject` filter, as Vectorize takes one: `{"$eq": token}` or `{"$in": [tokens]}`; none when
/// absent.
fn subjects(filter: Option<&Value>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let bad = || ApiError::bad_input("filter.subject: {\"$eq\": \"token\"} or {\"$in\": [\"token\", ...]}");
    let operators = filter
        .as_object()
        .filter(|operators| operators.len() == 1)
        .ok_or_else(bad)?;
    let subjects = match (operators.get("$eq"), operators.get("$in")) {
        (Some(Value::String(token)), None) => vec![token.clone()],
        (None, Some(Value::Array(tokens))) => tokens
            .iter()
            .map(|token| token.as_str().map(str::to_owned).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    Ok(Some(subjects))
}

fn mutation_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{nanos:x}")
}

fn values(value: Option<&Value>, field: &str) -> Result<Vec<f32>, ApiError> {
    let list = value
        .and_then(Value::as_array)
        .filter(|list| list.len() == DIMENSIONS)
        .ok_or_else(|| ApiError::bad_input(format!("{field}: {DIMENSIONS} numbers")))?;
    list.iter()
        .map(|number| {
            number
                .as_f64()
                .map(|number| number as f32)
                .ok_or_else(|| ApiError::bad_input(format!("{field}: numbers only")))
        })
        .collect()
}

fn ids(body: &Value) -> Result<Vec<String>, ApiError> {
    let list = body
        .get("ids")
        .and_then(Value::as_array)
        .filter(|list| list.len() <= MAX_IDS)
        .ok_or_else(|| ApiError::bad_input(format!("ids: a list of at most {MAX_IDS} ids")))?;
    list.iter()
        .map(|id| {
            id.as_str()
                .map(str::to_owned)
                .ok_or_else(|| ApiError::bad_input("ids: strings only"))
        })
        .collect()
}

fn vectors(body: &Value) -> Result<Vec<Vector>, ApiError> {
    let list = body
        .get("vectors")
        .and_then(Value::as_array)
        .filter(|list| !list.is_empty() && list.len() <= MAX_UPSERT)
        .ok_or_else(|| ApiError::bad_input(format!("vectors: a list of 1 to {MAX_UPSERT} vectors")))?;
    list.iter()
        .enumerate()
        .map(|(at, item)| {
            let text = |name: &str| {
                item.pointer(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let id = text("/id");
            if id.is_empty() || id.len() > 64 {
                return Err(ApiError::bad_input(format!("vectors[{at}].id: 1 to 64 bytes")));
            }
            Ok(Vector {
                id,
                namespace: text("/namespace"),
                values: values(item.get("values"), &format!("vectors[{at}].values"))?,
                metadata: Metadata {
                    source_id: text("/metadata/source_id"),
                    page_id: text("/metadata/page_id"),
                    subject: text("/metadata/subject"),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(index: &Index, path: &str, body: Value) -> (u16, Value) {
        let operation = operation(path).unwrap_or_else(|| panic!("{path} is not a route"));
        let response = answer(index, operation, body.to_string().as_bytes());
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    fn unit(axis: usize) -> Vec<f32> {
        let mut values = vec![0.0; DIMENSIONS];
        values[axis] = 1.0;
        values
    }

    #[test]
    fn vectors_are_upserted_found_queried_and_deleted_as_vectorize_does() {
        let index = Index::in_memory();
        let base = "/vectorize/v2/indexes/crm-edge-knowledge";
        let upserted = post(
            &index,
            &format!("{base}/upsert"),
            json!({ "vectors": [
            { "id": "s1:a", "namespace": "b1", "values": unit(0), "metadata": { "source_id": "s1", "page_id": "p" } },
            { "id": "s1:b", "namespace": "b1", "values": unit(1), "metadata": { "source_id": "s1", "page_id": "p" } },
        ] }),
        );
        assert_eq!((upserted.0, &upserted.1["result"]["count"]), (200, &json!(2)));
        let found = post(
            &index,
            &format!("{base}/get_by_ids"),
            json!({ "ids": ["s1:a", "s1:z"] }),
        );
        assert_eq!(found.1["result"][0]["id"], json!("s1:a"));
        assert_eq!(found.1["result"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            found.1["result"][0]["values"],
            json!(unit(0)),
            "whole, as Vectorize answers"
        );
        let query = json!({ "vector": unit(1), "topK": 1, "namespace": "b1", "filter": { "source_id": { "$in": ["s1"] } } });
        let queried = post(&index, &format!("{base}/query"), query.clone());
        assert_eq!(queried.1["result"]["matches"][0]["id"], json!("s1:b"));
        post(
            &index,
            &format!("{base}/delete_by_ids"),
            json!({ "ids": ["s1:b"] }),
        );
        let after = post(&index, &format!("{base}/query"), query);
        assert_eq!(after.1["result"]["matches"][0]["id"], json!("s1:a"));
    }

    #[test]
    fn bad_requests_name_the_field_at_fault() {
        let index = Index::in_memory();
        let base = "/vectorize/v2/indexes/i";
        for (path, body, field) in [
            ("upsert", json!({ "vectors": [] }), "vectors"),
            (
                "upsert",
                json!({ "vectors": [{ "id": "a", "values": [1.0] }] }),
                "vectors[0].values",
            ),
            ("query", json!({ "vector": unit(0), "topK": 0 }), "topK"),
            ("query", json!({ "vector": unit(0) }), "filter"),
            (
                "query",
                json!({ "vector": unit(0), "filter": { "source_id": { "$in": ["s1"] }, "subject": "t" } }),
                "filter.subject",
            ),
            (
                "query",
                json!({ "vector": unit(0), "filter": { "source_id": { "$in": ["s1"] }, "subject": { "$ne": "t" } } }),
                "filter.subject",
            ),
            (
                "query",
                json!({ "vector": unit(0), "filter": { "source_id": { "$in": ["s1"] }, "subject": { "$in": [1] } } }),
                "filter.subject",
            ),
            ("get_by_ids", json!({ "ids": [1] }), "ids"),
        ] {
            let (status, answer) = post(&index, &format!("{base}/{path}"), body);
            assert_eq!(status, 400, "{path}");
            assert!(
                answer["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(field)),
                "{path}: {answer}"
            );
        }
        assert_eq!(operation("/vectorize/v2/indexes//query"), None);
        assert_eq!(operation("/vectorize/v2/indexes/i/drop"), None);
    }

    #[test]
    fn a_query_takes_vectorizes_subject_filter_and_applies_it_before_the_nearest() {
        let index = Index::in_memory();
        let base = "/vectorize/v2/indexes/crm-edge-knowledge";
        let vector = |id: &str, axis: usize, subject: &str| json!({ "id": id, "namespace": "b1", "values": unit(axis), "metadata": { "source_id": "s1", "page_id": "p", "subject": subject } });
        post(
            &index,
            &format!("{base}/upsert"),
            json!({ "vectors": [vector("bob", 0, "b0b"), vector("ann", 1, "a22"), vector("plan", 2, "general")] }),
        );
        let nearest = |subject: Value| {
            let query = json!({ "vector": unit(0), "topK": 1, "namespace": "b1",
                "filter": { "source_id": { "$in": ["s1"] }, "subject": subject } });
            post(&index, &format!("{base}/query"), query).1["result"]["matches"][0]["id"].clone()
        };
        assert_eq!(
            nearest(json!({ "$in": ["a22", "c33"] })),
            json!("ann"),
            "Bob's is nearer and left out"
        );
        assert_eq!(nearest(json!({ "$eq": "general" })), json!("plan"));
        assert_eq!(nearest(json!({ "$eq": "b0b" })), json!("bob"));
    }
}
