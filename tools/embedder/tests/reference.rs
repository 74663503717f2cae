//! The embedder held to sentence-transformers itself: token ids, embeddings and similarities
//! of varied texts, as the reference pipeline computed them (tests/fixtures/reference.json,
//! made by reference/reference.py), on the real model that scripts/setup puts in place.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use embedder::{DIMENSIONS, Embedder};

/// The largest difference allowed from the reference's values, which are rounded to 4 decimals.
const TOLERANCE: f32 = 1e-3;

struct Case {
    text: String,
    token_ids: Vec<u32>,
    first_values: Vec<f32>,
}

struct Reference {
    cases: Vec<Case>,
    cosines: Vec<Vec<f32>>,
}

fn reference() -> Result<Reference, Box<dyn Error>> {
    let fixture: serde_json::Value = serde_json::from_str(include_str!("fixtures/reference.json"))?;
    let numbers = |value: &serde_json::Value| -> Result<Vec<f64>, Box<dyn Error>> {
        value
            .as_array()
            .ok_or("not an array")?
            .iter()
            .map(|n| n.as_f64().ok_or_else(|| "not a number".into()))
            .collect()
    };
    let mut cases = Vec::new();
    for case in fixture["cases"].as_array().ok_or("no cases")? {
        cases.push(Case {
            text: case["text"].as_str().ok_or("no text")?.to_owned(),
            token_ids: numbers(&case["token_ids"])?
                .into_iter()
                .map(|id| id as u32)
                .collect(),
            first_values: numbers(&case["first_values"])?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        });
    }
    let cosines = fixture["cosines"]
        .as_array()
        .ok_or("no cosines")?
        .iter()
        .map(|row| Ok(numbers(row)?.into_iter().map(|c| c as f32).collect()))
        .collect::<Result<_, Box<dyn Error>>>()?;
    Ok(Reference { cases, cosines })
}

/// The model is loaded once for all tests. A missing model fails the tests rather than
/// skipping them: without it nothing here would be proven.
fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let repository = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap_or(Path::new("."));
        let dir = std::env::var_os("EMBEDDER_MODEL_DIR")
            .map_or_else(|| repository.join(".models/all-minilm-l6-v2"), PathBuf::from);
        match Embedder::load(&dir, 2) {
            Ok(embedder) => embedder,
            Err(error) => panic!(
                "the model is not at {} ({error}): run scripts/setup, which downloads it, \
                 or point EMBEDDER_MODEL_DIR at a directory holding model.safetensors and vocab.txt",
                dir.display()
            ),
        }
    })
}

#[test]
fn token_ids_are_those_of_the_reference_tokenizer() -> Result<(), Box<dyn Error>> {
    for case in reference()?.cases {
        assert_eq!(
            embedder().token_ids(&case.text),
            case.token_ids,
            "{:?}",
            case.text
        );
    }
    Ok(())
}

#[test]
fn embeddings_and_similarities_are_those_of_sentence_transformers() -> Result<(), Box<dyn Error>> {
    let reference = reference()?;
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    let embeddings = embedder().embed(&texts)?;
    let mut worst = 0f32;
    for (case, embedding) in reference.cases.iter().zip(&embeddings) {
        let norm = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "{:?} has length {norm}, not 1",
            case.text
        );
        for (got, want) in embedding.iter().zip(&case.first_values) {
            worst = worst.max((got - want).abs());
            assert!(
                (got - want).abs() < TOLERANCE,
                "{:?}: {:?} vs {:?}",
                case.text,
                &embedding[..8],
                case.first_values
            );
        }
    }
    for (i, row) in reference.cosines.iter().enumerate() {
        for (j, want) in row.iter().enumerate() {
            let got: f32 = embeddings[i].iter().zip(&embeddings[j]).map(|(a, b)| a * b).sum();
            worst = worst.max((got - want).abs());
            assert!(
                (got - want).abs() < TOLERANCE,
                "cosine of texts {i} and {j}: {got} vs {want}"
            );
        }
    }
    eprintln!("largest difference from the reference: {worst:.6}");
    Ok(())
}

#[test]
fn a_text_embeds_the_same_alone_as_in_a_batch() -> Result<(), Box<dyn Error>> {
    let texts = [
        "customers[0].subscription: Premium",
        "a much longer text about an order that shipped late",
    ];
    let batch = embedder().embed(&texts)?;
    for (text, in_batch) in texts.iter().zip(&batch) {
        let alone: [f32; DIMENSIONS] = embedder().embed(&[text])?[0];
        let difference = alone
            .iter()
            .zip(in_batch)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(difference < 1e-5, "{text:?} differs by {difference} in a batch");
    }
    Ok(())
}
