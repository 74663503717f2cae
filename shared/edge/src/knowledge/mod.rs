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
pub(crate) mod local;
pub mod search;
pub mod vectorize;

use crate::Env;
use crate::console_error;
use crate::db::knowledge_sources::Due;

/// The queue that hands due sources to the fetcher.
pub const KNOWLEDGE: &str = "KNOWLEDGE";

impl crate::platform::queue::Work for crate::db::knowledge_sources::Due {
    const QUEUE: &'static str = KNOWLEDGE;

    fn business(&self) -> Option<domain::ids::BusinessId> {
        domain::ids::BusinessId::parse(&self.business_id)
    }
}
/// Where pushed bodies are kept (the attachments bucket, under `knowledge/`).
pub const PUSHED: &str = crate::messaging::media_store::ATTACHMENTS;

/// Hands sources to the fetcher. One that cannot be queued stays due, and the sweep queues it.
pub async fn hand_over(env: &Env, due: &[Due]) {
    hand_over_in(env, due, 0).await;
}

/// Hands sources to the fetcher after `delay_seconds`.
pub async fn hand_over_in(env: &Env, due: &[Due], delay_seconds: u32) {
    if due.is_empty() {
        return;
    }
    if let Err(error) = crate::platform::queue::send_all(env, due, delay_seconds).await {
        console_error!("{} CRM link fetches left for the sweep: {error}", due.len());
    }
}

/// The local embedding server for edge's tests: tools/embedder's own REST API (its routes, its
/// vector store over its in-memory index), in-process; the model is the test's `embed`.
#[cfg(test)]
pub(crate) mod local_server {
    use crate::runtime::native::{Outbound, Reply, Stack};
    use embedder::api::{self, EmbedIn};
    use embedder::vector_api;
    use embedder::vectors::Index;
    use std::rc::Rc;

    pub const HOST: &str = "embedder.test";
    pub const URL: &str = "http://embedder.test";
    pub const DIMENSIONS: usize = embedder::DIMENSIONS;

    /// Answers at [`URL`]; a text's embedding is `embed(text)`. The index, to look into.
    pub fn install(stack: &Stack, embed: impl Fn(&str) -> [f32; DIMENSIONS] + 'static) -> Rc<Index> {
        let index = Rc::new(Index::in_memory());
        let serving = Rc::clone(&index);
        stack.partner(HOST, move |call: &Outbound| {
            let response = match vector_api::operation(call.path()) {
                Some(operation) => vector_api::answer(&serving, operation, &call.body),
                None => match EmbedIn::parse(&call.body) {
                    Ok(input) => {
                        let vectors: Vec<[f32; DIMENSIONS]> =
                            input.texts().iter().map(|text| embed(text)).collect();
                        api::embeddings_response(&vectors)
                    }
                    Err(error) => error.into_response(),
                },
            };
            Reply::status(response.status)
                .header("content-type", "application/json")
                .body(response.body)
        });
        index
    }

    /// A unit vector along `axis`.
    pub fn unit(axis: usize) -> [f32; DIMENSIONS] {
        let mut vector = [0.0; DIMENSIONS];
        vector[axis] = 1.0;
        vector
    }
}

/// Links added and indexed as the API and the fetcher do, for edge's tests: the CRM is the test's
/// partner, the embedder [`local_server`].
#[cfg(test)]
pub(crate) mod linked {
    use crate::db::knowledge_links;
    use crate::db::knowledge_sources::{self, Due, Fields};
    use crate::knowledge::backend::Rag;
    use crate::knowledge::index::Fetcher;

    use crate::testing::Fixture;
    use domain::ids::SourceId;
    use domain::links::fetch::State;
    use domain::links::link::{LinkChannel, NewLink};
    use domain::tenant::Tenant;
    use serde_json::{Value, json};

    pub const PAGE: &str = "104729000007919";

    /// A link of [`PAGE`] on messenger at `url`, holding `holds`, added and fetched to the end.
    pub async fn link(fixture: &Fixture, rag: &Rag, tenant: &Tenant, url: &str, holds: Value) -> SourceId {
        let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error}"));
        let new = NewLink::parse(
            &json!({ "page_id": PAGE, "channels": ["messenger"], "name": "CRM", "url": url, "type": "api",
                     "is_active": true, "holds": holds }),
            false,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let id = SourceId::generate(crate::testing::random());
        let now = fixture.now().to_rfc3339();
        let fields = Fields {
            link: &new.link,
            state: State::Pending,
            next_fetch_at: None,
            webhook_secret: None,
        };
        knowledge_sources::insert(&fixture.db, &keys, tenant, &id, &new.page_id, &fields, &now)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        knowledge_links::insert(
            &fixture.db,
            tenant,
            &id,
            &new.page_id,
            &[LinkChannel::Messenger],
            true,
            &now,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        fetch(fixture, rag, tenant, &id).await;
        id
    }

    /// Fetches the source now, one run to its end.
    pub async fn fetch(fixture: &Fixture, rag: &Rag, tenant: &Tenant, id: &SourceId) {
        let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error}"));
        let now = fixture.now().to_rfc3339();
        knowledge_sources::ask(&fixture.db, tenant, id, &now)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let fetcher = Fetcher {
            env: &fixture.env,
            db: &fixture.db,
            keys: &keys,
            rag,
            allow_loopback: false,
        };
        let due = Due {
            business_id: tenant.business_id.to_string(),
            source_id: id.clone(),
            run: None,
        };
        fetcher.run(&due).await.unwrap_or_else(|error| panic!("{error}"));
        let source = knowledge_sources::find(&fixture.db, &keys, tenant, id)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(
            source
                .as_ref()
                .is_some_and(|source| source.run.is_none() && source.status.state == State::Ok),
            "the run ended: {source:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::knowledge_sources::Step;
    use crate::testing::Fixture;
    use domain::ids::SourceId;

    #[test]
    fn due_sources_are_queued_for_the_fetcher_after_the_delay_asked_and_none_is_no_message() {
        let fixture = Fixture::new();
        let source = SourceId::generate([7; 16]);
        let due = Due {
            business_id: "b1".to_owned(),
            source_id: source.clone(),
            run: Some(Step {
                id: "run-1".to_owned(),
                slice: 2,
            }),
        };
        fixture.run(async {
            hand_over(&fixture.env, &[]).await;
            assert!(
                fixture.stack.queued(KNOWLEDGE).is_empty(),
                "nothing to hand over, nothing sent"
            );
            hand_over_in(&fixture.env, std::slice::from_ref(&due), 30).await;
        });
        let queued = fixture.stack.queued(KNOWLEDGE);
        assert_eq!(queued.len(), 1);
        assert_eq!(
            queued[0].json(),
            serde_json::json!({ "business_id": "b1", "source_id": source.as_str(), "run": { "id": "run-1", "slice": 2 } })
        );
        assert_eq!(
            queued[0].due_ms,
            fixture.stack.now_ms() + 30_000,
            "delivered after the delay"
        );
    }
}
