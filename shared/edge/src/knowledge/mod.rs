//! CRM links as the bot's knowledge: the sources' data fetched, cut into pieces, embedded and
//! searched (the pure rules are `domain::links`).
//!
//! - `backend`: where embeddings are made and vectors kept (Workers AI and Vectorize in
//!   production, the local embedding server and D1 in the local stack), chosen by `RAG_BACKEND`;
//! - `vectorize`: the Vectorize binding's calls, which `worker` does not wrap;
//! - `fetch`: reading a link's pages, or the body pushed to a webhook link;
//! - `index`: one fetch of a source, from its lease to its recorded status;
//! - `search`: semantic, keyword and hybrid search over a page's active links.

pub mod backend;
pub mod fetch;
pub mod index;
pub mod search;
mod vectorize;

use crate::db::knowledge_sources::Due;
use worker::{Env, console_error};

/// The queue that hands due sources to the fetcher.
pub const KNOWLEDGE: &str = "KNOWLEDGE";
/// Where pushed bodies are kept (the attachments bucket, under `knowledge/`).
pub const PUSHED: &str = crate::media_store::ATTACHMENTS;

/// Hands sources to the fetcher. One that cannot be queued stays due, and the sweep queues it.
pub async fn hand_over(env: &Env, due: &[Due]) {
    if due.is_empty() {
        return;
    }
    if let Err(error) = crate::queue::send_all(env, KNOWLEDGE, due, 0).await {
        console_error!("{} CRM link fetches left for the sweep: {error}", due.len());
    }
}
