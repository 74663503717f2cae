//! One fetch of a source, as the fetcher does it: take the source's lease, read its data, cut it
//! into pieces, embed only what is new, write the pieces and vectors, drop what left the data,
//! and record how it went. Failures keep the data indexed before (domain::links::fetch).

use crate::db::knowledge_chunks::{self, Moved, NewChunk};
use crate::db::knowledge_sources::{self, Due, Source};
use crate::knowledge::backend::Rag;
use crate::knowledge::fetch;
use crate::queue::Settle;
use crate::runtime;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::links::chunk::ChunkOptions;
use domain::links::document::{Pages, pieces, refresh};
use domain::links::fetch::Failure;
use domain::links::link::LinkType;
use domain::links::search::encode_vector;
use domain::sealed::Keyring;
use domain::tenant::Tenant;
use worker::{Bucket, D1Database, console_log, console_warn};

/// How long one fetch holds its source: longer than any fetch of 50 pages and their embedding.
const LEASE_SECONDS: i64 = 15 * 60;
/// A source another fetch holds is looked at again after this.
const HELD_RETRY_SECONDS: u32 = 30;

/// What a fetcher needs.
pub struct Fetcher<'a> {
    pub db: &'a D1Database,
    pub keys: &'a Keyring,
    pub rag: &'a Rag,
    pub pushed: &'a Bucket,
    pub allow_loopback: bool,
}

impl Fetcher<'_> {
    /// Fetches and indexes one due source.
    pub async fn run(&self, due: &Due) -> Result<Settle, ApiError> {
        let Some(business) = BusinessId::parse(&due.business_id) else {
            console_warn!("a CRM link task names no business ({}); dropped", due.business_id);
            return Ok(Settle::Ack);
        };
        let tenant = Tenant::for_background(business);
        let now = runtime::now();
        let until = now.plus_seconds(LEASE_SECONDS).to_rfc3339();
        if !knowledge_sources::lease(self.db, &tenant, &due.source_id, &now.to_rfc3339(), &until).await? {
            // Another fetch of it is running; this one (a push, a refresh) comes after it.
            return Ok(Settle::RetryIn(HELD_RETRY_SECONDS));
        }
        let Some(source) = knowledge_sources::find(self.db, self.keys, &tenant, &due.source_id).await? else {
            return Ok(Settle::Ack);
        };
        if !source.link.is_active {
            knowledge_sources::release(self.db, &tenant, &source.id).await?;
            return Ok(Settle::Ack);
        }
        console_log!(
            "Starting CRM data fetch for page {} ({}, link {})",
            source.page_id.as_str(),
            source.link.name,
            source.id
        );
        let data = match source.link.link_type {
            LinkType::Api | LinkType::File => fetch::pages(&source.link, self.allow_loopback).await.map(Some),
            LinkType::Webhook => fetch::pushed(self.pushed, &source.id, &source.link).await,
            LinkType::Database => Ok(None),
        };
        let outcome = match data {
            Ok(Some(pages)) => self.index(&tenant, &source, &pages).await,
            Ok(None) => {
                knowledge_sources::release(self.db, &tenant, &source.id).await?;
                return Ok(Settle::Ack);
            }
            Err(failure) => Err(failure),
        };
        let now = runtime::now();
        match outcome {
            Ok(()) => {}
            Err(failure) => {
                let verdict = failure.verdict(
                    now,
                    source.link.fetch_interval_minutes,
                    source.status.failures + 1,
                );
                console_warn!(
                    "Failed to fetch CRM data: {} (page {}, link {}; next try {})",
                    verdict.error,
                    source.page_id.as_str(),
                    source.id,
                    verdict.next_fetch_at.to_rfc3339()
                );
                knowledge_sources::record_failure(self.db, &tenant, &source, &verdict, now).await?;
            }
        }
        Ok(Settle::Ack)
    }

    /// Makes the pieces of `pages` the source's searchable data.
    async fn index(&self, tenant: &Tenant, source: &Source, pages: &Pages) -> Result<(), Failure> {
        let internal =
            |error: ApiError| Failure::Embedding(error.detail().unwrap_or(&error.body.message).to_owned());
        let fresh = pieces(pages.lines(), &ChunkOptions::for_embedding());
        let stored = knowledge_chunks::stored(self.db, tenant, &source.id)
            .await
            .map_err(internal)?;
        let embedder = self.rag.embedder.id();
        let plan = refresh(&fresh, &stored, embedder);
        let contents: Vec<&str> = plan
            .embed
            .iter()
            .map(|&index| fresh[index].content.as_str())
            .collect();
        let vectors = self.rag.embed(&contents).await.map_err(Failure::Embedding)?;
        let ids: Vec<String> = plan
            .embed
            .iter()
            .map(|&index| knowledge_chunks::chunk_id(&source.id, &fresh[index].hash))
            .collect();
        let items: Vec<(String, &[f32])> = ids
            .iter()
            .cloned()
            .zip(vectors.iter().map(Vec::as_slice))
            .collect();
        self.rag
            .upsert(tenant, source.page_id.as_str(), &source.id, &items)
            .await
            .map_err(Failure::Embedding)?;
        let in_d1 = self.rag.keeps_vectors_in_d1();
        let embedded: Vec<NewChunk<'_>> = plan
            .embed
            .iter()
            .zip(&vectors)
            .map(|(&index, vector)| NewChunk {
                hash: &fresh[index].hash,
                record: &fresh[index].record,
                part: fresh[index].part,
                text: &fresh[index].text,
                embedder,
                vector: in_d1.then(|| encode_vector(vector)),
            })
            .collect();
        let moved: Vec<Moved<'_>> = plan
            .keep
            .iter()
            .map(|&index| Moved {
                hash: &fresh[index].hash,
                record: &fresh[index].record,
                part: fresh[index].part,
                text: &fresh[index].text,
            })
            .collect();
        let now = runtime::now();
        knowledge_chunks::write(
            self.db,
            tenant,
            &source.id,
            &embedded,
            &moved,
            &plan.delete,
            &now.to_rfc3339(),
        )
        .await
        .map_err(internal)?;
        let gone: Vec<String> = plan
            .delete
            .iter()
            .map(|hash| knowledge_chunks::chunk_id(&source.id, hash))
            .collect();
        self.rag.delete(&gone).await.map_err(Failure::Embedding)?;
        let changed = !plan.embed.is_empty() || !plan.delete.is_empty();
        knowledge_sources::record_success(self.db, tenant, source, pages.records(), changed, now)
            .await
            .map_err(internal)?;
        console_log!(
            "Stored {} embeddings from CRM data (page {}, link {}: {} records, {} pieces, {} unchanged, {} removed)",
            plan.embed.len(),
            source.page_id.as_str(),
            source.id,
            pages.records(),
            fresh.len(),
            plan.keep.len(),
            plan.delete.len()
        );
        Ok(())
    }
}
