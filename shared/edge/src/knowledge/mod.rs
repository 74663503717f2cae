//! CRM links as the bot's knowledge: the sources' data fetched, cut into pieces, embedded and
//! searched (the pure rules are `domain::links`).
//!
//! - `backend`: where embeddings are made and vectors kept (Workers AI and Vectorize in
//!   production, the local embedding server, which keeps vectors too, in the local stack), chosen
//!   by `RAG_BACKEND`;
//! - `vectorize`: the vector store's calls, through the Vectorize binding or the local stand-in;
//! - `fetch`: reading a link's data a page at a time, or the body pushed to a webhook link;
//! - `local`: calls to the local embedding server, which stands in for both in the local stack;
//! - `index`: a run over a source's data, in slices of one invocation each;
//! - `search`: semantic, keyword (full-text index) and hybrid search over a page's active links.

pub mod backend;
pub mod fetch;
pub mod index;
mod local;
pub mod search;
pub mod vectorize;

use crate::Env;
use crate::console_error;
use crate::db::knowledge_sources::Due;

/// The queue that hands due sources to the fetcher.
pub const KNOWLEDGE: &str = "KNOWLEDGE";
/// Where pushed bodies are kept (the attachments bucket, under `knowledge/`).
pub const PUSHED: &str = crate::media_store::ATTACHMENTS;

/// Hands sources to the fetcher. One that cannot be queued stays due, and the sweep queues it.
pub async fn hand_over(env: &Env, due: &[Due]) {
    hand_over_in(env, due, 0).await;
}

/// Hands sources to the fetcher after `delay_seconds`.
pub async fn hand_over_in(env: &Env, due: &[Due], delay_seconds: u32) {
    if due.is_empty() {
        return;
    }
    if let Err(error) = crate::queue::send_all(env, KNOWLEDGE, due, delay_seconds).await {
        console_error!("{} CRM link fetches left for the sweep: {error}", due.len());
    }
}
