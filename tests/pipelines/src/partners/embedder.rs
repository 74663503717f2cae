//! The local embedding server (`tools/embedder`) as a partner: the REST API the `local` RAG
//! backend calls, Workers AI's `POST /ai/run/<model>` and Vectorize's v2 paths
//! (`/vectorize/v2/indexes/<index>/{upsert,query,get_by_ids,delete_by_ids}`), routed, parsed and
//! answered by the tool's own code (`embedder::api`, `embedder::vector_api`) over its own
//! in-memory index (`embedder::vectors::Index`). Only the model is stood in for: loading
//! all-MiniLM-L6-v2 takes seconds, so a text's vector here is its hashed bag of words
//! ([`bag_of_words`]), normalised. Texts that share words are near, texts that share none are not: a search by a
//! customer's name or plan still ranks that customer's piece first, but a paraphrase that shares
//! no word with the text ("which tier did Jon pay for") is not understood as the model would.
//!
//! Every embedding call is kept, so a test can count the texts a refresh embedded; and every
//! generation request (the bot's, answered by the tool's composer, `embedder::generate`), so a
//! test can read what the model would have been told.

use ::embedder::api::{self, ApiError, EmbedIn, Route};
use ::embedder::http::Method;
use ::embedder::vector_api;
use ::embedder::vectors::Index;
use edge::runtime::native::{Outbound, Reply, Stack};
use std::cell::RefCell;
use std::rc::Rc;

pub const DIMENSIONS: usize = ::embedder::DIMENSIONS;

/// The embedding server at one origin.
#[derive(Clone)]
pub struct Embedder {
    host: String,
    state: Rc<RefCell<State>>,
}

struct State {
    index: Index,
    /// The texts of each embedding call, in order.
    embedded: Vec<Vec<String>>,
    /// The body of each generation request (the bot's), in order.
    generations: Vec<serde_json::Value>,
    /// Answers for the next calls (of any path), before the server's own.
    scripted: Vec<Reply>,
    /// What to do once after answering the next call whose path ends so.
    after: Vec<(String, Box<dyn FnOnce()>)>,
    /// Answers the bot's generation requests in place of the composer, when set: a test double
    /// for a model (given the request, the answer object the model writes).
    generator: Option<Model>,
}

/// A test double for the bot's model: given a generation request, the answer object it writes.
type Model = Rc<dyn Fn(&serde_json::Value) -> serde_json::Value>;

impl Embedder {
    /// The server at `http://{host}`, as `scripts/dev` starts it for the local stack.
    pub fn install(stack: &Stack, host: &str) -> Self {
        let embedder = Self {
            host: host.to_owned(),
            state: Rc::new(RefCell::new(State {
                index: Index::in_memory(),
                embedded: Vec::new(),
                generations: Vec::new(),
                scripted: Vec::new(),
                after: Vec::new(),
                generator: None,
            })),
        };
        let serving = embedder.clone();
        stack.partner(host, move |call| serving.answer(call));
        embedder
    }

    /// What `EMBEDDER_URL` is set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The texts of every embedding call so far, in order (a search's question is one).
    pub fn embedded(&self) -> Vec<Vec<String>> {
        self.state.borrow().embedded.clone()
    }

    /// The generation requests so far (the bot's, as Workers AI would be sent them), in order.
    pub fn generations(&self) -> Vec<serde_json::Value> {
        self.state.borrow().generations.clone()
    }

    /// How many texts were embedded over all calls.
    pub fn texts_embedded(&self) -> usize {
        self.state.borrow().embedded.iter().map(Vec::len).sum()
    }

    /// Forgets every vector, as another deployment's empty index would hold none.
    pub fn forget_vectors(&self) {
        self.state.borrow_mut().index = Index::in_memory();
    }

    /// How many vectors the index holds, over every business.
    pub fn vectors(&self) -> usize {
        self.state.borrow().index.len()
    }

    /// The bot's generation requests are answered by `model` from now on: given a request as
    /// Workers AI would be sent it, the object the model answers (`{action, text, used}`).
    pub fn generate_with(&self, model: impl Fn(&serde_json::Value) -> serde_json::Value + 'static) {
        self.state.borrow_mut().generator = Some(Rc::new(model));
    }

    /// The next calls are answered with these replies, in order, whatever they ask.
    pub fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.borrow_mut().scripted.extend(replies);
    }

    /// Runs `action` once, right after answering the next call whose path ends with `operation`
    /// (`upsert`: the vectors are written, and then the caller's world changes: its database
    /// goes away, as when a worker dies between two writes).
    pub fn after_next(&self, operation: &str, action: impl FnOnce() + 'static) {
        self.state
            .borrow_mut()
            .after
            .push((operation.to_owned(), Box::new(action)));
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let reply = self.serve(call);
        let due = {
            let mut state = self.state.borrow_mut();
            let at = state
                .after
                .iter()
                .position(|(operation, _)| call.path().ends_with(operation.as_str()));
            at.map(|at| state.after.remove(at).1)
        };
        if let Some(action) = due {
            action();
        }
        reply
    }

    fn serve(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        if !state.scripted.is_empty() {
            return state.scripted.remove(0);
        }
        let method = match call.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            _ => return reply(ApiError::wrong_method("GET or POST").into_response()),
        };
        if let Some(operation) = vector_api::operation(call.path()) {
            if method != Method::Post {
                return reply(ApiError::wrong_method("POST").into_response());
            }
            return reply(vector_api::answer(&state.index, operation, &call.body));
        }
        match api::route(method, call.path()) {
            Route::Health => reply(api::health_response()),
            Route::Generate => {
                let request = call.json();
                state.generations.push(request.clone());
                match state.generator.clone() {
                    Some(model) => {
                        let envelope = serde_json::json!({
                            "result": { "response": model(&request), "model": "test-double" },
                            "success": true, "errors": [], "messages": [],
                        });
                        Reply::json(200, &envelope)
                    }
                    None => reply(::embedder::generate::answer(&call.body)),
                }
            }
            Route::Run => match EmbedIn::parse(&call.body) {
                Ok(input) => {
                    let vectors: Vec<[f32; DIMENSIONS]> =
                        input.texts().iter().map(|text| bag_of_words(text)).collect();
                    state.embedded.push(input.texts().to_vec());
                    reply(api::embeddings_response(&vectors))
                }
                Err(error) => reply(error.into_response()),
            },
            Route::LastGeneration => match state.generations.last() {
                Some(request) => Reply::json(200, request),
                None => reply(ApiError::not_found().into_response()),
            },
            // The cost bench's count of tokens embedded: this double embeds by words and has no
            // vocabulary to count tokens with, so it has no count to give.
            Route::Usage => reply(ApiError::not_found().into_response()),
            Route::WrongMethod { allow } => reply(ApiError::wrong_method(allow).into_response()),
            Route::NotFound => reply(ApiError::not_found().into_response()),
        }
    }
}

fn reply(response: ::embedder::http::Response) -> Reply {
    Reply::status(response.status)
        .header("content-type", "application/json")
        .body(response.body)
}

/// The stand-in for the model: the text's words (runs of letters, lowercased: numbers, ids and
/// dates carry little of a sentence's meaning to the model either), each weighted by
/// 1 + ln(count) and added to the one of the 384 dimensions its hash (FNV-1a) picks (added, never
/// subtracted: two words that share a dimension never cancel out), the vector scaled to unit
/// length (zero for a text without words).
pub fn bag_of_words(text: &str) -> [f32; DIMENSIONS] {
    let lowered = text.to_lowercase();
    let mut counts: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for word in lowered
        .split(|c: char| !c.is_alphabetic())
        .filter(|word| !word.is_empty())
    {
        *counts.entry(word).or_default() += 1;
    }
    let mut vector = [0.0f32; DIMENSIONS];
    for (word, count) in counts {
        let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        vector[usize::try_from(hash % DIMENSIONS as u64).unwrap_or(0)] += 1.0 + (count as f32).ln();
    }
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        for value in &mut vector {
            *value /= norm;
        }
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &str, b: &str) -> f32 {
        bag_of_words(a)
            .iter()
            .zip(bag_of_words(b))
            .map(|(x, y)| x * y)
            .sum()
    }

    #[test]
    fn texts_that_share_words_are_near_and_texts_that_share_none_are_not() {
        let john = "id: cust-123\nname: John Doe\nemail: john@example.com\nsubscription: Premium";
        let amara = "id: cust-124\nname: Amara Okafor\nemail: amara.okafor@example.com\nsubscription: Basic";
        let question = "What plan is John Doe on?";
        assert!(
            cosine(question, john) > 0.25,
            "John's piece answers a question naming him: {}",
            cosine(question, john)
        );
        assert!(
            cosine(question, amara) < 0.1,
            "Amara's does not, under MiniLM's threshold: {}",
            cosine(question, amara)
        );
        assert!(
            (cosine(john, john) - 1.0).abs() < 1e-5,
            "a text is its own nearest"
        );
        assert_eq!(bag_of_words("!!!"), [0.0; DIMENSIONS], "no words, no direction");
        assert!(
            cosine("yara.lambert295@shopper.example", "Yara Lambert") > 0.5,
            "an address holds its name's words"
        );
    }
}
