//! `knowledge_chunks`: the searchable pieces of each source's data (their vectors are in the
//! vector store, under the piece's id), and their full-text index `knowledge_fts`, which triggers
//! keep. Written only by the fetcher (and emptied with their source); read by search and by the
//! documents' details.
//!
//! A refresh writes only what changed: a new piece is inserted, a piece that left the data is
//! deleted, and a piece whose record merely moved is left as it was first seen. A run's new pieces
//! are staged (they carry the run's id) and search sees only live pieces, so a run that fails
//! half-way leaves the data as it was; its end publishes them.
//!
//! Each piece carries its subject's token (`domain::bot::subject::token`): a search may be
//! narrowed to some subjects inside the full-text query itself ([`Within`]). A piece indexed
//! before subjects has none: it is general, and its vector is written again with the token by
//! its link's next run ([`Stored::untagged`]).
//!
//! This file holds a piece's ids and the reads of live pieces (by id for search, counted and
//! sampled for the documents' details), and the restore's and the erasure's statements; `run`
//! is what a run writes (pieces staged, published, gone) and `search` is the keyword search, BM25
//! with the business's own statistics inside the full-text index.

mod run;
mod search;

pub use run::{Gone, NewPiece, Stored, by_content, delete, gone, ids_after, insert, publish, stored_among};
pub use search::{Within, keyword, keyword_within};

use crate::db::Rows;
use crate::db::{Db, Statement, number, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::tenant::Tenant;
use serde::Deserialize;
use std::collections::HashMap;

/// The vector id of a piece: its source and the start of its content hash (64 bytes at most, as
/// Vectorize allows).
pub fn chunk_id(source: &SourceId, hash: &str) -> String {
    format!("{source}:{}", &hash[..hash.len().min(24)])
}

/// What a run records of a piece it saw: the start of its hash (`knowledge_run_seen`).
pub fn seen_key(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

/// A piece as search answers with it.
#[derive(Deserialize, Debug, Clone)]
pub struct Found {
    pub id: String,
    pub source_id: SourceId,
    pub record: String,
    pub part: usize,
    pub text: String,
    /// Its subject's token; None for a piece indexed before subjects (general).
    pub subject: Option<String>,
}

/// The pieces with these ids, of these sources only (a vector store's answer is never trusted to
/// stay within the tenant on its own).
pub async fn by_ids(db: &Db, tenant: &Tenant, ids: &[String]) -> Result<Vec<Found>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db
        .scoped(
            tenant,
            "SELECT id, source_id, record, part, text, subject FROM knowledge_chunks WHERE business_id = ?1 \
             AND run_id IS NULL AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::to_string(ids)?)])?
        .all()
        .await?
        .rows::<Found>()?)
}

/// Per source of the business: its live pieces, and how many have a vector of `embedder`.
pub async fn counts(
    db: &Db,
    tenant: &Tenant,
    embedder: &str,
) -> Result<HashMap<String, (i64, i64)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        source_id: String,
        chunks: i64,
        embeddings: i64,
    }
    let rows = db
        .scoped(
            tenant, // From the business's sources to their pieces: grouped by source_id alone, SQLite
            // would walk every business's pieces in the (source_id, hash) index.
            "SELECT s.id AS source_id, COUNT(*) AS chunks, SUM(c.embedder = ?2) AS embeddings \
             FROM knowledge_sources s JOIN knowledge_chunks c ON c.source_id = s.id \
             WHERE s.business_id = ?1 AND c.business_id = ?1 AND c.run_id IS NULL GROUP BY s.id",
        )
        .bind(&[text(embedder)])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows
        .into_iter()
        .map(|row| (row.source_id, (row.chunks, row.embeddings)))
        .collect())
}

/// A few pieces of a source, for the documents' details.
pub async fn samples(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    limit: usize,
) -> Result<Vec<Found>, ApiError> {
    Ok(db
        .scoped(tenant, "SELECT id, source_id, record, part, text, subject FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 \
             AND run_id IS NULL ORDER BY seq LIMIT ?3",
        )
        .bind(&[text(source.as_str()), number(limit as i64)])?
        .all()
        .await?
        .rows::<Found>()?)
}

/// A restore's: every piece of the business is marked as indexed by no model, so that the next
/// run of its link writes its vector again (from the vector store, or embedded when the store
/// does not hold it, as on another deployment), and search by meaning finds it.
pub fn mark_restored(db: &Db, tenant: &Tenant) -> Result<Statement, ApiError> {
    Ok(db.scoped(
        tenant,
        "UPDATE knowledge_chunks SET embedder = 'restored' WHERE business_id = ?1 AND embedder IS NOT 'restored' \
         AND source_id IN (SELECT id FROM knowledge_sources WHERE business_id = ?1)",
    ))
}

/// Up to `limit` ids of the business's pieces whose subject's token is one of `tokens` (an
/// erasure's: the customer's own records in its CRM links), across its links.
pub async fn ids_of_subjects(
    db: &Db,
    tenant: &Tenant,
    tokens: &[String],
    limit: usize,
) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT id FROM knowledge_chunks WHERE business_id = ?1 AND subject IN (SELECT value FROM json_each(?2)) LIMIT ?3",
        )
        .bind(&[text(&serde_json::to_string(tokens)?), number(limit as i64)])?
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// The statement that deletes the business's pieces among `ids`, of whichever link.
pub fn erase(db: &Db, tenant: &Tenant, ids: &[String]) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM knowledge_chunks WHERE business_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::to_string(ids)?)])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{Fixture, Must, link, page};
    use domain::bot::subject::GENERAL;
    use domain::links::link::{LinkChannel, LinkType};

    pub(super) fn hash(n: u32) -> String {
        format!("{n:08x}{}", "0".repeat(56))
    }

    /// Stages `texts` as general pieces of the source under `run` (piece n's hash made from n).
    pub(super) async fn stage(
        fixture: &Fixture,
        tenant: &Tenant,
        source: &SourceId,
        run: &str,
        from: u32,
        texts: &[&str],
        embedder: &str,
    ) -> Vec<String> {
        stage_of(fixture, tenant, source, run, from, texts, embedder, GENERAL).await
    }

    /// Stages `texts` as pieces of the subject whose token is `subject`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn stage_of(
        fixture: &Fixture,
        tenant: &Tenant,
        source: &SourceId,
        run: &str,
        from: u32,
        texts: &[&str],
        embedder: &str,
        subject: &str,
    ) -> Vec<String> {
        let hashes: Vec<String> = (from..from + texts.len() as u32).map(hash).collect();
        let pieces: Vec<NewPiece<'_>> = hashes
            .iter()
            .zip(texts)
            .enumerate()
            .map(|(at, (hash, text))| NewPiece {
                id: chunk_id(source, hash),
                hash,
                content_hash: hash,
                record: "customers[0]",
                part: at,
                text,
                subject,
            })
            .collect();
        let now = fixture.now().to_rfc3339();
        let statements = insert(&fixture.db, tenant, source, run, &pieces, embedder, &now).must();
        fixture.db.batch(statements).await.must();
        pieces.into_iter().map(|piece| piece.id).collect()
    }

    pub(super) async fn a_source(fixture: &Fixture, tenant: &Tenant, url: &str) -> SourceId {
        fixture
            .source(
                tenant,
                &page("1001"),
                &link("A", url, LinkType::Api),
                &[LinkChannel::Messenger],
            )
            .await
    }

    pub(super) fn sorted(mut ids: Vec<String>) -> Vec<String> {
        ids.sort();
        ids
    }

    #[test]
    fn staged_pieces_are_seen_only_once_their_run_publishes_them() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let source = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            let ids = stage(
                &fixture,
                &acme,
                &source,
                "run-1",
                0,
                &["Ann Byrne gold", "Bob Kane", "Cat Roe"],
                "m1",
            )
            .await;
            let hashes: Vec<String> = (0..3).map(hash).collect();
            let asked: Vec<&str> = hashes.iter().map(String::as_str).collect();
            assert!(by_ids(&fixture.db, &acme, &ids).await.must().is_empty(), "staged");
            assert!(samples(&fixture.db, &acme, &source, 10).await.must().is_empty());
            assert!(counts(&fixture.db, &acme, "m1").await.must().is_empty());
            assert!(
                stored_among(&fixture.db, &acme, &source, &asked, "m1")
                    .await
                    .must()
                    .tagged
                    .is_empty()
            );
            assert!(
                keyword(&fixture.db, &acme, std::slice::from_ref(&source), "gold", 5)
                    .await
                    .must()
                    .is_empty()
            );

            assert_eq!(
                publish(&fixture.db, &acme, &source, "run-0", 10).await.must(),
                0,
                "another run's"
            );
            assert_eq!(
                publish(&fixture.db, &acme, &source, "run-1", 2).await.must(),
                2,
                "to the limit"
            );
            assert_eq!(publish(&fixture.db, &acme, &source, "run-1", 2).await.must(), 1);
            let found: Vec<String> = by_ids(&fixture.db, &acme, &ids)
                .await
                .must()
                .into_iter()
                .map(|f| f.id)
                .collect();
            assert_eq!(sorted(found), sorted(ids.clone()));
            let texts: Vec<String> = samples(&fixture.db, &acme, &source, 2)
                .await
                .must()
                .into_iter()
                .map(|f| f.text)
                .collect();
            assert_eq!(
                texts,
                ["Ann Byrne gold", "Bob Kane"],
                "in the order stored, to the limit"
            );
            assert_eq!(
                counts(&fixture.db, &acme, "m1").await.must().get(source.as_str()),
                Some(&(3, 3))
            );
            assert_eq!(
                stored_among(&fixture.db, &acme, &source, &asked, "m1")
                    .await
                    .must()
                    .tagged
                    .len(),
                3
            );
            let best = keyword(&fixture.db, &acme, std::slice::from_ref(&source), "gold", 5)
                .await
                .must();
            assert_eq!(
                best.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
                [ids[0].clone()]
            );
            // A better piece a later run staged takes no place among the best.
            stage(&fixture, &acme, &source, "run-2", 10, &["gold gold gold"], "m1").await;
            let best = keyword(&fixture.db, &acme, std::slice::from_ref(&source), "gold", 1)
                .await
                .must();
            assert_eq!(
                best.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
                [ids[0].clone()],
                "the live piece, while the run goes on"
            );
        });
    }
}
