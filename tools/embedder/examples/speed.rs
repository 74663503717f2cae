//! How fast the embedder is on 128-token texts, one at a time and in batches of 32:
//! `cargo run --release -p embedder --example speed -- MODEL_DIR` (with `-C target-cpu=native`,
//! as scripts/build compiles the server).

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use embedder::Embedder;

const TOKENS: usize = 128;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: speed MODEL_DIR")?);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let embedder = Embedder::load(&dir, threads)?;
    // 32 different texts of exactly TOKENS tokens, made of words of one word piece each.
    let words = "the customer asked about an order and a refund for the late delivery of it".split(' ');
    let texts: Vec<String> = (0..32)
        .map(|i| {
            let mut text = format!("{i}");
            for word in words.clone().cycle() {
                if embedder.token_ids(&text).len() >= TOKENS {
                    break;
                }
                text = format!("{text} {word}");
            }
            text
        })
        .collect();
    for threads in [threads, 1] {
        let embedder = Embedder::load(&dir, threads)?;
        let length = embedder.token_ids(&texts[0]).len();
        if length != TOKENS {
            return Err(format!("the sample text is {length} tokens, not {TOKENS}").into());
        }
        for batch in [1, 32] {
            embedder.embed(&texts[..batch])?;
            let rounds = if batch == 1 { 20 } else { 3 };
            let started = Instant::now();
            for _ in 0..rounds {
                embedder.embed(&texts[..batch])?;
            }
            let seconds = started.elapsed().as_secs_f64() / f64::from(rounds) / batch as f64;
            eprintln!(
                "{threads} thread(s), batch of {batch:2}: {:6.1} ms per {TOKENS}-token text, {:6.0} tokens/s",
                seconds * 1000.0,
                TOKENS as f64 / seconds
            );
        }
    }
    Ok(())
}
