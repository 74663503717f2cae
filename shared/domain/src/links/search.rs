//! Search over a page's CRM data for the chatbot: the question as the API takes it, the
//! embedders a vector can come from (each with its own score scale), vectors as stored, and the
//! ranking of semantic, keyword and hybrid search.

use crate::error::ApiError;
use crate::links::link::{LinkChannel, PageId};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::collections::HashMap;

pub const DEFAULT_TOP_K: usize = 5;
pub const MAX_TOP_K: usize = 20;
const MAX_QUESTION_CHARS: usize = 1_000;
/// How many candidates each ranking hands to the hybrid fusion.
pub const FUSION_DEPTH: usize = 50;
/// Reciprocal rank fusion's constant: how much the first ranks dominate.
const RRF_K: f64 = 60.0;

/// A model that turns text into vectors. Vectors of two embedders are never compared: each
/// stored vector names its embedder, and a change of model re-embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedder {
    /// Production: Workers AI's `@cf/baai/bge-small-en-v1.5`.
    BgeSmall,
    /// Local: sentence-transformers' all-MiniLM-L6-v2, served by the local embedding server.
    MiniLm,
}

impl Embedder {
    pub const DIMENSIONS: usize = 384;

    /// The name stored with every vector.
    pub fn id(self) -> &'static str {
        match self {
            Self::BgeSmall => "workers-ai:@cf/baai/bge-small-en-v1.5",
            Self::MiniLm => "local:all-minilm-l6-v2",
        }
    }

    /// The model's name in a Workers AI call.
    pub fn model(self) -> &'static str {
        match self {
            Self::BgeSmall => "@cf/baai/bge-small-en-v1.5",
            Self::MiniLm => "all-minilm-l6-v2",
        }
    }

    /// Cosine similarity below which a chunk is not an answer. The two models score on different
    /// scales, so a threshold is only meaningful for its own model. MiniLM's was measured on the
    /// labelled questions: a right record paraphrased ("which tier did Jon pay for") can score
    /// 0.12 while unrelated records stay under 0.06. bge-small is documented to put unrelated
    /// English text around 0.4 to 0.6; its threshold is not measured here (it runs only on
    /// Cloudflare).
    pub fn min_score(self) -> f64 {
        match self {
            Self::BgeSmall => 0.45,
            Self::MiniLm => 0.1,
        }
    }
}

/// How results are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// By the cosine similarity of embeddings.
    Semantic,
    /// BM25 over words: the baseline.
    Keyword,
    /// Both rankings fused by reciprocal rank.
    Hybrid,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Semantic => "semantic",
            Self::Keyword => "keyword",
            Self::Hybrid => "hybrid",
        }
    }
}

/// `GET /api/dashboard/rag/search?page_id=&channel=&q=&top_k=&mode=`, or the same as a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub page_id: PageId,
    pub channel: LinkChannel,
    pub text: String,
    pub top_k: usize,
    pub mode: Mode,
}

impl Question {
    /// From the query's fields or the body's (strings or, for `top_k`, a number).
    pub fn parse(field: impl Fn(&str) -> Option<Value>) -> Result<Self, ApiError> {
        let page_id = PageId::parse(
            &field("page_id").ok_or_else(|| ApiError::invalid("page_id", "page_id is required"))?,
        )?;
        let channel = field("channel").ok_or_else(|| {
            ApiError::invalid("channel", "channel is required: search answers for one channel")
        })?;
        let channel = channel.as_str().and_then(LinkChannel::parse).ok_or_else(|| {
            ApiError::invalid(
                "channel",
                format!(
                    "channel must be one of {}",
                    LinkChannel::ALL.map(LinkChannel::as_str).join(", ")
                ),
            )
        })?;
        let text = field("q")
            .and_then(|value| value.as_str().map(str::trim).map(str::to_owned))
            .filter(|text| !text.is_empty())
            .ok_or_else(|| ApiError::invalid("q", "q, the question, is required"))?;
        if text.chars().count() > MAX_QUESTION_CHARS {
            return Err(ApiError::invalid(
                "q",
                format!("q is longer than {MAX_QUESTION_CHARS} characters"),
            ));
        }
        let top_k = match field("top_k") {
            None => DEFAULT_TOP_K,
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
                .and_then(|k| usize::try_from(k).ok())
                .filter(|k| (1..=MAX_TOP_K).contains(k))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "top_k",
                        format!("top_k must be a whole number from 1 to {MAX_TOP_K}"),
                    )
                })?,
        };
        let mode = match field("mode") {
            None => Mode::Semantic,
            Some(value) => [Mode::Semantic, Mode::Keyword, Mode::Hybrid]
                .into_iter()
                .find(|mode| value.as_str() == Some(mode.as_str()))
                .ok_or_else(|| ApiError::invalid("mode", "mode must be semantic, keyword or hybrid"))?,
        };
        Ok(Self {
            page_id,
            channel,
            text,
            top_k,
            mode,
        })
    }
}

/// A vector as D1 keeps it: its f32 values, little-endian, in base64.
pub fn encode_vector(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|value| value.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

pub fn decode_vector(text: &str) -> Option<Vec<f32>> {
    let bytes = STANDARD.decode(text).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|four| f32::from_le_bytes([four[0], four[1], four[2], four[3]]))
            .collect(),
    )
}

/// A vector scaled to length 1, so that a dot product is a cosine similarity. A zero vector
/// stays zero (it matches nothing).
pub fn normalized(mut values: Vec<f32>) -> Vec<f32> {
    let length = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    if length > 0.0 {
        values.iter_mut().for_each(|value| *value /= length);
    }
    values
}

/// The dot product of two vectors of the same length (a cosine for normalized vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `k` best of `(id, score)`, best first; equal scores keep their given order.
pub fn best<T>(mut scored: Vec<(T, f64)>, k: usize) -> Vec<(T, f64)> {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    scored
}

/// Fuses rankings (each best first) by reciprocal rank: an item's score is the sum over the
/// rankings that hold it of `1 / (60 + rank)`. Best first.
pub fn fuse<T: Clone + Eq + std::hash::Hash>(rankings: &[Vec<T>], k: usize) -> Vec<(T, f64)> {
    let mut scores: HashMap<T, f64> = HashMap::new();
    let mut order: Vec<T> = Vec::new();
    for ranking in rankings {
        for (rank, item) in ranking.iter().enumerate() {
            let score = scores.entry(item.clone()).or_insert_with(|| {
                order.push(item.clone());
                0.0
            });
            *score += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let scored = order
        .into_iter()
        .map(|item| {
            let score = scores.get(&item).copied().unwrap_or_default();
            (item, score)
        })
        .collect();
    best(scored, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn question(fields: Value) -> Result<Question, ApiError> {
        Question::parse(|name| fields.get(name).cloned())
    }

    #[test]
    fn a_question_needs_a_page_a_channel_and_words() {
        let asked =
            question(json!({"page_id": "123", "channel": "messenger", "q": " what plan is John on? "}));
        let asked = asked.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (asked.text.as_str(), asked.top_k, asked.mode),
            ("what plan is John on?", 5, Mode::Semantic)
        );
        for (fields, field) in [
            (json!({"channel": "messenger", "q": "x"}), "page_id"),
            (json!({"page_id": "1", "q": "x"}), "channel"),
            (json!({"page_id": "1", "channel": "email", "q": "x"}), "channel"),
            (json!({"page_id": "1", "channel": "messenger", "q": "  "}), "q"),
            (
                json!({"page_id": "1", "channel": "messenger", "q": "x", "top_k": "0"}),
                "top_k",
            ),
            (
                json!({"page_id": "1", "channel": "messenger", "q": "x", "top_k": 21}),
                "top_k",
            ),
            (
                json!({"page_id": "1", "channel": "messenger", "q": "x", "top_k": "2.5"}),
                "top_k",
            ),
            (
                json!({"page_id": "1", "channel": "messenger", "q": "x", "mode": "magic"}),
                "mode",
            ),
            (
                json!({"page_id": "1", "channel": "messenger", "q": "x".repeat(1001)}),
                "q",
            ),
        ] {
            let error = question(fields.clone())
                .err()
                .unwrap_or_else(|| panic!("{fields} was accepted"));
            assert_eq!(error.body.field.as_deref(), Some(field), "{fields}: {error}");
        }
        let query = question(
            json!({"page_id": "1", "channel": "facebook", "q": "x", "top_k": "20", "mode": "hybrid"}),
        );
        assert_eq!(query.map(|q| (q.top_k, q.mode)).ok(), Some((20, Mode::Hybrid)));
    }

    #[test]
    fn vectors_survive_the_round_trip_through_text() {
        let values = vec![0.25, -1.5, 3.0e-8, 0.0];
        assert_eq!(decode_vector(&encode_vector(&values)), Some(values));
        assert_eq!(decode_vector("AAA="), None, "not a whole number of floats");
        assert_eq!(decode_vector("not base64!"), None);
    }

    #[test]
    fn cosine_is_the_dot_product_of_normalized_vectors() {
        let a = normalized(vec![3.0, 4.0]);
        assert!((dot(&a, &normalized(vec![6.0, 8.0])) - 1.0).abs() < 1e-6);
        assert!(dot(&a, &normalized(vec![-4.0, 3.0])).abs() < 1e-6);
        assert_eq!(normalized(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn fusion_rewards_what_both_rankings_hold() {
        let semantic = vec!["a", "b", "c"];
        let keyword = vec!["c", "d", "b"];
        let fused: Vec<&str> = fuse(&[semantic, keyword], 3)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(fused, ["c", "b", "a"]);
    }

    #[test]
    fn each_embedder_has_its_own_name_and_threshold() {
        assert_ne!(Embedder::BgeSmall.id(), Embedder::MiniLm.id());
        assert!(Embedder::BgeSmall.min_score() > Embedder::MiniLm.min_score());
    }
}
