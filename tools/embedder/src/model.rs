//! all-MiniLM-L6-v2 as sentence-transformers runs it: a 6-layer BERT encoder over the token
//! ids, the mean of its outputs over each text's tokens, scaled to unit length.
//!
//! A batch is run as one matrix of all its texts' tokens end to end, without padding: only
//! attention looks across tokens, and it is computed text by text.

use std::path::Path;

use crate::kernels::{
    Packed, TILE_COLS, TILE_ROWS, gelu, layer_norm, matmul, softmax_rows, split_jobs, split_rows,
};
use crate::safetensors::{SafeTensors, WeightsError};

/// The shape of all-MiniLM-L6-v2 (its config.json); the weights are checked against it.
pub const HIDDEN: usize = 384;
const LAYERS: usize = 6;
const HEADS: usize = 12;
const HEAD_DIM: usize = HIDDEN / HEADS;
const INTERMEDIATE: usize = 1536;
const VOCAB: usize = 30522;
const MAX_POSITIONS: usize = 512;
const LAYER_NORM_EPS: f32 = 1e-12;
/// Tokens per forward pass at most: bounds the activations' memory (about 10 KB a token)
/// whatever the batch.
const TOKENS_PER_PASS: usize = 4096;

/// A PyTorch Linear, its weight ([outputs, inputs]) packed for the product.
struct Linear {
    weight: Packed<TILE_COLS>,
    bias: Vec<f32>,
    inputs: usize,
}

impl Linear {
    /// The Linear whose weight stacks the weights of `prefixes`' Linears, one after another:
    /// several projections of the same input computed as one product.
    fn load(
        tensors: &SafeTensors,
        prefixes: &[String],
        outputs: usize,
        inputs: usize,
    ) -> Result<Self, WeightsError> {
        let mut weight = Vec::with_capacity(prefixes.len() * outputs * inputs);
        let mut bias = Vec::with_capacity(prefixes.len() * outputs);
        for prefix in prefixes {
            weight.extend(tensors.f32_tensor(&format!("{prefix}.weight"), &[outputs, inputs])?);
            bias.extend(tensors.f32_tensor(&format!("{prefix}.bias"), &[outputs])?);
        }
        Ok(Self {
            weight: Packed::from_rows(&weight, inputs),
            bias,
            inputs,
        })
    }

    fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `x · weightᵀ + bias` for `x` of [rows, inputs], the rows split across threads.
    fn forward(&self, x: &[f32], threads: usize) -> Vec<f32> {
        let rows = x.len() / self.inputs;
        let outputs = self.outputs();
        let mut out = vec![0.0; rows * outputs];
        split_rows(
            threads,
            rows,
            outputs,
            self.inputs * outputs,
            &mut out,
            |range, part| {
                let x = Packed::<TILE_ROWS>::from_rows(
                    &x[range.start * self.inputs..range.end * self.inputs],
                    self.inputs,
                );
                matmul(&x, &self.weight, Some(&self.bias), part);
            },
        );
        out
    }
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl LayerNorm {
    fn load(tensors: &SafeTensors, prefix: &str) -> Result<Self, WeightsError> {
        Ok(Self {
            gamma: tensors.f32_tensor(&format!("{prefix}.weight"), &[HIDDEN])?,
            beta: tensors.f32_tensor(&format!("{prefix}.bias"), &[HIDDEN])?,
        })
    }

    fn apply(&self, x: &mut [f32]) {
        layer_norm(x, &self.gamma, &self.beta, LAYER_NORM_EPS);
    }
}

struct Layer {
    /// Query, key and value projections stacked into one [3·HIDDEN, HIDDEN] product.
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(tensors: &SafeTensors, index: usize) -> Result<Self, WeightsError> {
        let prefix = format!("encoder.layer.{index}");
        let qkv = ["query", "key", "value"].map(|part| format!("{prefix}.attention.self.{part}"));
        let one = |name: &str| [format!("{prefix}.{name}")];
        Ok(Self {
            qkv: Linear::load(tensors, &qkv, HIDDEN, HIDDEN)?,
            attention_output: Linear::load(tensors, &one("attention.output.dense"), HIDDEN, HIDDEN)?,
            attention_norm: LayerNorm::load(tensors, &format!("{prefix}.attention.output.LayerNorm"))?,
            intermediate: Linear::load(tensors, &one("intermediate.dense"), INTERMEDIATE, HIDDEN)?,
            output: Linear::load(tensors, &one("output.dense"), HIDDEN, INTERMEDIATE)?,
            output_norm: LayerNorm::load(tensors, &format!("{prefix}.output.LayerNorm"))?,
        })
    }

    /// One encoder layer over `hidden` ([tokens, HIDDEN]) in place; `lengths` are the texts'
    /// token counts, in order.
    fn forward(&self, hidden: &mut [f32], lengths: &[usize], threads: usize) {
        let qkv = self.qkv.forward(hidden, threads);
        let context = attention(&qkv, lengths, threads);
        let attended = self.attention_output.forward(&context, threads);
        for (h, a) in hidden.iter_mut().zip(&attended) {
            *h += a;
        }
        self.attention_norm.apply(hidden);

        let mut intermediate = self.intermediate.forward(hidden, threads);
        split_rows(
            threads,
            intermediate.len() / INTERMEDIATE,
            INTERMEDIATE,
            INTERMEDIATE * 20,
            &mut intermediate,
            |_, part| gelu(part),
        );
        let output = self.output.forward(&intermediate, threads);
        for (h, o) in hidden.iter_mut().zip(&output) {
            *h += o;
        }
        self.output_norm.apply(hidden);
    }
}

/// Multi-head self-attention within each text: `qkv` holds each token's query, key and value
/// ([tokens, 3·HIDDEN]); the result is each token's context, [tokens, HIDDEN].
fn attention(qkv: &[f32], lengths: &[usize], threads: usize) -> Vec<f32> {
    let tokens: usize = lengths.iter().sum();
    // One job per (text, head): its first token and length.
    let mut jobs = Vec::with_capacity(lengths.len() * HEADS);
    let mut first = 0;
    for &length in lengths {
        for head in 0..HEADS {
            jobs.push((first, length, head));
        }
        first += length;
    }
    // Each job writes its [length, HEAD_DIM] context into its own slot of `per_job`.
    let sizes: Vec<usize> = jobs.iter().map(|&(_, length, _)| length * HEAD_DIM).collect();
    let costs: Vec<usize> = jobs
        .iter()
        .map(|&(_, length, _)| length * length * HEAD_DIM * 2)
        .collect();
    let mut per_job = vec![0.0; sizes.iter().sum()];
    split_jobs(
        threads,
        &jobs,
        &sizes,
        &costs,
        &mut per_job,
        |&(first, length, head), out| one_head(qkv, first, length, head, out),
    );
    let mut context = vec![0.0; tokens * HIDDEN];
    let mut offset = 0;
    for &(first, length, head) in &jobs {
        for t in 0..length {
            let destination = (first + t) * HIDDEN + head * HEAD_DIM;
            context[destination..destination + HEAD_DIM]
                .copy_from_slice(&per_job[offset + t * HEAD_DIM..offset + (t + 1) * HEAD_DIM]);
        }
        offset += length * HEAD_DIM;
    }
    context
}

/// Scaled dot-product attention of one head over one text's tokens.
fn one_head(qkv: &[f32], first: usize, length: usize, head: usize, out: &mut [f32]) {
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    // Element `d` of the query, key or value (`part` 0, 1, 2) of this head at token `t`.
    let at =
        |part: usize, t: usize, d: usize| qkv[(first + t) * 3 * HIDDEN + part * HIDDEN + head * HEAD_DIM + d];
    let queries = Packed::<TILE_ROWS>::new(length, HEAD_DIM, |t, d| at(0, t, d) * scale);
    let keys = Packed::<TILE_COLS>::new(length, HEAD_DIM, |t, d| at(1, t, d));
    let mut scores = vec![0.0; length * length];
    matmul(&queries, &keys, None, &mut scores);
    softmax_rows(&mut scores, length);
    // The context is scores · values: the values' columns are the right operand's rows.
    let values = Packed::<TILE_COLS>::new(HEAD_DIM, length, |d, t| at(2, t, d));
    matmul(&Packed::from_rows(&scores, length), &values, None, out);
}

/// A token sequence the model cannot take.
#[derive(Debug)]
pub struct SequenceError(String);

impl std::fmt::Display for SequenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SequenceError {}

/// The weights of all-MiniLM-L6-v2, loaded once and only read afterwards.
pub struct Model {
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Every token is of type 0 (a single text, no pair).
    token_type_embedding: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    threads: usize,
}

impl Model {
    /// Loads `model.safetensors`; `threads` is how many cores a forward pass may use.
    pub fn load(path: &Path, threads: usize) -> Result<Self, WeightsError> {
        let tensors = SafeTensors::read(path)?;
        let mut token_type = tensors.f32_tensor("embeddings.token_type_embeddings.weight", &[2, HIDDEN])?;
        token_type.truncate(HIDDEN);
        Ok(Self {
            word_embeddings: tensors.f32_tensor("embeddings.word_embeddings.weight", &[VOCAB, HIDDEN])?,
            position_embeddings: tensors
                .f32_tensor("embeddings.position_embeddings.weight", &[MAX_POSITIONS, HIDDEN])?,
            token_type_embedding: token_type,
            embeddings_norm: LayerNorm::load(&tensors, "embeddings.LayerNorm")?,
            layers: (0..LAYERS)
                .map(|i| Layer::load(&tensors, i))
                .collect::<Result<_, _>>()?,
            threads: threads.max(1),
        })
    }

    /// The unit-length mean-pooled embedding of each token sequence. Every sequence must be
    /// non-empty, at most MAX_POSITIONS long, with ids below the vocabulary size (the
    /// tokenizer's output always is); others are refused.
    pub fn embed(&self, sequences: &[Vec<u32>]) -> Result<Vec<[f32; HIDDEN]>, SequenceError> {
        for ids in sequences {
            if ids.is_empty() || ids.len() > MAX_POSITIONS {
                return Err(SequenceError(format!(
                    "a sequence has {} tokens, not 1 to {MAX_POSITIONS}",
                    ids.len()
                )));
            }
            if let Some(id) = ids.iter().find(|&&id| id as usize >= VOCAB) {
                return Err(SequenceError(format!("token id {id} is outside the vocabulary")));
            }
        }
        let mut embeddings = Vec::with_capacity(sequences.len());
        let mut start = 0;
        while start < sequences.len() {
            let mut end = start + 1;
            let mut tokens = sequences[start].len();
            while end < sequences.len() && tokens + sequences[end].len() <= TOKENS_PER_PASS {
                tokens += sequences[end].len();
                end += 1;
            }
            embeddings.extend(self.forward(&sequences[start..end]));
            start = end;
        }
        Ok(embeddings)
    }

    fn forward(&self, sequences: &[Vec<u32>]) -> Vec<[f32; HIDDEN]> {
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        let mut hidden = Vec::with_capacity(lengths.iter().sum::<usize>() * HIDDEN);
        for ids in sequences {
            for (position, &id) in ids.iter().enumerate() {
                let word = &self.word_embeddings[id as usize * HIDDEN..(id as usize + 1) * HIDDEN];
                let place = &self.position_embeddings[position * HIDDEN..(position + 1) * HIDDEN];
                hidden.extend(
                    word.iter()
                        .zip(place)
                        .zip(&self.token_type_embedding)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        self.embeddings_norm.apply(&mut hidden);
        for layer in &self.layers {
            layer.forward(&mut hidden, &lengths, self.threads);
        }
        let mut pooled = Vec::with_capacity(sequences.len());
        let mut rows = hidden.chunks_exact(HIDDEN);
        for &length in &lengths {
            let mut sum = [0f32; HIDDEN];
            for row in rows.by_ref().take(length) {
                for (s, v) in sum.iter_mut().zip(row) {
                    *s += v;
                }
            }
            let mean = sum.map(|s| s / length as f32);
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            pooled.push(mean.map(|v| v / norm));
        }
        pooled
    }
}
