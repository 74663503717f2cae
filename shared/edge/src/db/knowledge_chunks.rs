//! `knowledge_chunks`: the searchable pieces of each source's data, with the vector of each when
//! D1 is the vector store. Written only by the fetcher (and emptied with their source); read by
//! search and by the documents' details.

use crate::db::{json_list, number, optional_text, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::tenant::Tenant;
use serde::Deserialize;
use std::collections::HashMap;
use worker::{D1Database, D1PreparedStatement};

/// Statements per D1 batch when writing pieces: each carries a vector of about 2 KB.
const WRITE_BATCH: usize = 50;

/// The vector id of a piece: its source and the start of its content hash (64 bytes at most, as
/// Vectorize allows).
pub fn chunk_id(source: &SourceId, hash: &str) -> String {
    format!("{source}:{}", &hash[..hash.len().min(24)])
}

/// A piece to store, new or with a new vector.
pub struct NewChunk<'a> {
    pub hash: &'a str,
    pub record: &'a str,
    pub part: usize,
    pub text: &'a str,
    pub embedder: &'a str,
    /// The encoded vector when D1 is the vector store.
    pub vector: Option<String>,
}

/// A piece that is already embedded, at its place in the fresh data.
pub struct Moved<'a> {
    pub hash: &'a str,
    pub record: &'a str,
    pub part: usize,
    pub text: &'a str,
}

/// The stored pieces of a source: content hash → the embedder of its vector.
pub async fn stored(
    db: &D1Database,
    tenant: &Tenant,
    source: &SourceId,
) -> Result<HashMap<String, String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        hash: String,
        embedder: String,
    }
    let rows = db
        .prepare("SELECT hash, embedder FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2")
        .bind(&[text(tenant.business_id.as_str()), text(source.as_str())])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| (row.hash, row.embedder)).collect())
}

/// Writes a refresh of a source's pieces: new and re-embedded ones, moved ones, and deletions.
pub async fn write(
    db: &D1Database,
    tenant: &Tenant,
    source: &SourceId,
    embedded: &[NewChunk<'_>],
    moved: &[Moved<'_>],
    deleted: &[String],
    now: &str,
) -> Result<(), ApiError> {
    let business = text(tenant.business_id.as_str());
    let mut statements: Vec<D1PreparedStatement> = Vec::new();
    for chunk in embedded {
        statements.push(
            db.prepare(
                "INSERT INTO knowledge_chunks (id, business_id, source_id, hash, record, part, text, embedder, vector, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
                 ON CONFLICT (source_id, hash) DO UPDATE SET record = excluded.record, part = excluded.part, \
                 text = excluded.text, embedder = excluded.embedder, vector = excluded.vector, updated_at = excluded.updated_at",
            )
            .bind(&[
                text(&chunk_id(source, chunk.hash)),
                business.clone(),
                text(source.as_str()),
                text(chunk.hash),
                text(chunk.record),
                number(chunk.part as i64),
                text(chunk.text),
                text(chunk.embedder),
                optional_text(chunk.vector.as_deref()),
                text(now),
            ])?,
        );
    }
    for chunk in moved {
        statements.push(
            db.prepare(
                "UPDATE knowledge_chunks SET record = ?4, part = ?5, text = ?6, updated_at = ?7 \
                 WHERE business_id = ?1 AND source_id = ?2 AND hash = ?3 AND (record != ?4 OR part != ?5 OR text != ?6)",
            )
            .bind(&[
                business.clone(),
                text(source.as_str()),
                text(chunk.hash),
                text(chunk.record),
                number(chunk.part as i64),
                text(chunk.text),
                text(now),
            ])?,
        );
    }
    for hashes in deleted.chunks(200) {
        statements.push(
            db.prepare(
                "DELETE FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 \
                 AND hash IN (SELECT value FROM json_each(?3))",
            )
            .bind(&[
                business.clone(),
                text(source.as_str()),
                json_list(hashes.iter().map(String::as_str)),
            ])?,
        );
    }
    let mut statements = statements.into_iter().peekable();
    while statements.peek().is_some() {
        let batch: Vec<D1PreparedStatement> = statements.by_ref().take(WRITE_BATCH).collect();
        db.batch(batch).await?;
    }
    Ok(())
}

/// A piece as search answers with it.
#[derive(Deserialize, Debug, Clone)]
pub struct Found {
    pub id: String,
    pub source_id: SourceId,
    pub record: String,
    pub part: usize,
    pub text: String,
}

/// The pieces with these ids, of these sources only (a vector store's answer is never trusted to
/// stay within the tenant on its own).
pub async fn by_ids(db: &D1Database, tenant: &Tenant, ids: &[String]) -> Result<Vec<Found>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db
        .prepare(
            "SELECT id, source_id, record, part, text FROM knowledge_chunks WHERE business_id = ?1 \
             AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            json_list(ids.iter().map(String::as_str)),
        ])?
        .all()
        .await?
        .results::<Found>()?)
}

/// Every piece of a source with its vector (D1 as the vector store), for search to load.
pub async fn vectors(
    db: &D1Database,
    tenant: &Tenant,
    source: &SourceId,
    embedder: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        vector: String,
    }
    let rows = db
        .prepare(
            "SELECT id, vector FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 AND embedder = ?3 \
             AND vector IS NOT NULL",
        )
        .bind(&[text(tenant.business_id.as_str()), text(source.as_str()), text(embedder)])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| (row.id, row.vector)).collect())
}

/// Every piece of some sources with its text, for keyword search.
pub async fn texts(db: &D1Database, tenant: &Tenant, sources: &[SourceId]) -> Result<Vec<Found>, ApiError> {
    Ok(db
        .prepare(
            "SELECT id, source_id, record, part, text FROM knowledge_chunks WHERE business_id = ?1 \
             AND source_id IN (SELECT value FROM json_each(?2)) ORDER BY source_id, record, part",
        )
        .bind(&[
            text(tenant.business_id.as_str()),
            json_list(sources.iter().map(SourceId::as_str)),
        ])?
        .all()
        .await?
        .results::<Found>()?)
}

/// The ids of a source's pieces (to delete them from a vector store).
pub async fn ids(db: &D1Database, tenant: &Tenant, source: &SourceId) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let rows = db
        .prepare("SELECT id FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2")
        .bind(&[text(tenant.business_id.as_str()), text(source.as_str())])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Per source of the business: its pieces, and how many have a vector of `embedder`.
pub async fn counts(
    db: &D1Database,
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
        .prepare(
            "SELECT source_id, COUNT(*) AS chunks, SUM(embedder = ?2) AS embeddings FROM knowledge_chunks \
             WHERE business_id = ?1 GROUP BY source_id",
        )
        .bind(&[text(tenant.business_id.as_str()), text(embedder)])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows
        .into_iter()
        .map(|row| (row.source_id, (row.chunks, row.embeddings)))
        .collect())
}

/// A few pieces of a source, for the documents' details.
pub async fn samples(
    db: &D1Database,
    tenant: &Tenant,
    source: &SourceId,
    limit: usize,
) -> Result<Vec<Found>, ApiError> {
    Ok(db
        .prepare(
            "SELECT id, source_id, record, part, text FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 \
             ORDER BY record, part LIMIT ?3",
        )
        .bind(&[text(tenant.business_id.as_str()), text(source.as_str()), number(limit as i64)])?
        .all()
        .await?
        .results::<Found>()?)
}
