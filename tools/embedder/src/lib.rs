//! A local stand-in for Cloudflare Workers AI's text embeddings, for running crm-edge offline:
//! the sentence-transformers model all-MiniLM-L6-v2 (384 dimensions), tokenized and run here
//! in plain Rust, served over HTTP in the shape of Workers AI's REST API; and for a Vectorize
//! index (`vectors`, `vector_api`), so that vectors live outside D1 locally as in production;
//! and for the bot's text generation (`generate`), answered by its deterministic composer.

pub mod api;
pub mod generate;
pub mod http;
mod kernels;
pub mod model;
pub mod safetensors;
pub mod server;
pub mod tokenizer;
mod unicode_tables;
pub mod vector_api;
pub mod vectors;

use std::fmt;
use std::path::Path;

pub use model::HIDDEN as DIMENSIONS;

/// The name the responses give: the model that really ran, whatever model a caller asked for.
pub const MODEL_NAME: &str = "all-minilm-l6-v2";
/// sentence-transformers' max_seq_length for this model: longer texts are cut to their first
/// 254 word pieces.
pub const MAX_TOKENS: usize = 256;

#[derive(Debug)]
pub enum LoadError {
    Vocab(tokenizer::VocabError),
    Weights(safetensors::WeightsError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vocab(error) => error.fmt(f),
            Self::Weights(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// The tokenizer and the model, loaded from a model directory (vocab.txt, model.safetensors).
pub struct Embedder {
    tokenizer: tokenizer::Tokenizer,
    model: model::Model,
}

impl Embedder {
    /// Loads the model in `dir`; a forward pass uses up to `threads` cores.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, LoadError> {
        Ok(Self {
            tokenizer: tokenizer::Tokenizer::read(&dir.join("vocab.txt")).map_err(LoadError::Vocab)?,
            model: model::Model::load(&dir.join("model.safetensors"), threads).map_err(LoadError::Weights)?,
        })
    }

    /// The token ids the model sees for `text`, `[CLS]` and `[SEP]` included.
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, MAX_TOKENS)
    }

    /// The unit-length embedding of each text. The tokenizer's sequences always suit the
    /// model, so an error here means the vocabulary and the weights do not belong together.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<[f32; DIMENSIONS]>, model::SequenceError> {
        self.embed_counting(texts).map(|(embeddings, _)| embeddings)
    }

    /// [`Embedder::embed`], and how many tokens the texts were: what Workers AI bills an
    /// embedding model by (this vocabulary is BERT's uncased WordPiece, as bge-small-en-v1.5's is).
    pub fn embed_counting<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<(Vec<[f32; DIMENSIONS]>, usize), model::SequenceError> {
        let sequences: Vec<Vec<u32>> = texts.iter().map(|t| self.token_ids(t.as_ref())).collect();
        let tokens = sequences.iter().map(Vec::len).sum();
        Ok((self.model.embed(&sequences)?, tokens))
    }
}
