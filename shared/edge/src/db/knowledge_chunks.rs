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

use crate::db::Read;
use crate::db::{self, Db, Param, Sql, Statement, json_arrays, knowledge_run_seen, number, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::keyword::{self, tokens};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Query words a keyword search uses at most.
const MAX_QUERY_WORDS: usize = 32;

/// The vector id of a piece: its source and the start of its content hash (64 bytes at most, as
/// Vectorize allows).
pub fn chunk_id(source: &SourceId, hash: &str) -> String {
    format!("{source}:{}", &hash[..hash.len().min(24)])
}

/// What a run records of a piece it saw: the start of its hash (`knowledge_run_seen`).
pub fn seen_key(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

/// A piece to store, with a vector of `embedder` in the store under [`chunk_id`], carrying its
/// subject's token.
#[derive(Serialize)]
pub struct NewPiece<'a> {
    pub id: String,
    pub hash: &'a str,
    /// The SHA-256 of its content alone (`domain::links::document::Piece::content_hash`).
    pub content_hash: &'a str,
    pub record: &'a str,
    pub part: usize,
    pub text: &'a str,
    /// Its subject's token (`domain::bot::subject::token`).
    pub subject: &'a str,
}

/// What the source holds live of some pieces, with a vector of a given model.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Their vectors carry their subject's token: nothing to do.
    pub tagged: HashSet<String>,
    /// Indexed before subjects: their vectors are in the store without the token, and are
    /// written again with it, from the store's own values.
    pub untagged: HashSet<String>,
}

/// Which of `hashes` the source holds live with a vector of `embedder`. A piece whose vector
/// another model made is embedded again; a piece staged by a run that did not end is staged again
/// by this one (its vector is in the store already). The hashes are bound as JSON lists of at
/// most [`db::WRITE_CHUNK_BYTES`] each, one statement each, all in one batch.
pub async fn stored_among(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    hashes: &[&str],
    embedder: &str,
) -> Result<Stored, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        hash: String,
        tagged: i64,
    }
    let mut statements = Vec::new();
    for list in json_arrays(hashes)? {
        statements.push(Read::<Vec<Row>>::rows(
            db.scoped(
                tenant,
                "SELECT hash, subject IS NOT NULL AS tagged FROM knowledge_chunks WHERE business_id = ?1 \
                 AND source_id = ?2 AND embedder = ?4 AND run_id IS NULL AND hash IN (SELECT value FROM json_each(?3))",
            )
            .bind(&[text(source.as_str()), text(&list), text(embedder)])?,
        ));
    }
    let mut stored = Stored::default();
    if statements.is_empty() {
        return Ok(stored);
    }
    for rows in db::read_together(db, statements).await? {
        for row in rows {
            if row.tagged == 1 {
                stored.tagged.insert(row.hash);
            } else {
                stored.untagged.insert(row.hash);
            }
        }
    }
    Ok(stored)
}

/// For each of `contents` (hashes of content alone) that a live piece of the source holds with a
/// vector of `embedder`, that piece's id: a piece whose subject changed takes its vector. One
/// statement per JSON list of hashes, all in one batch; nothing is read for none.
pub async fn by_content(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    contents: &[&str],
    embedder: &str,
) -> Result<HashMap<String, String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        content_hash: String,
        id: String,
    }
    let mut statements = Vec::new();
    for list in json_arrays(contents)? {
        statements.push(Read::<Vec<Row>>::rows(
            db.scoped(
                tenant,
                "SELECT content_hash, id FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 \
                 AND content_hash IN (SELECT value FROM json_each(?3)) AND embedder = ?4 AND run_id IS NULL",
            )
            .bind(&[text(source.as_str()), text(&list), text(embedder)])?,
        ));
    }
    let mut found = HashMap::new();
    if statements.is_empty() {
        return Ok(found);
    }
    for rows in db::read_together(db, statements).await? {
        for row in rows {
            found.insert(row.content_hash, row.id);
        }
    }
    Ok(found)
}

/// The statements that stage new pieces under `run` (a live piece stored with another model's
/// vector takes the new one and stays live, and so does one whose vector was written again with
/// its subject's token; a piece staged by another run is staged by this one), a few hundred
/// kilobytes of JSON each.
pub fn insert(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    run: &str,
    pieces: &[NewPiece<'_>],
    embedder: &str,
    now: &str,
) -> Result<Vec<Statement>, ApiError> {
    let mut statements = Vec::new();
    for rows in json_arrays(pieces)? {
        statements.push(
            db.scoped(tenant, "INSERT INTO knowledge_chunks (id, business_id, source_id, hash, record, part, text, embedder, \
                 run_id, created_at, updated_at, subject, content_hash) \
                 SELECT json_extract(value, '$.id'), ?1, ?2, json_extract(value, '$.hash'), json_extract(value, '$.record'), \
                 json_extract(value, '$.part'), json_extract(value, '$.text'), ?3, ?6, ?4, ?4, json_extract(value, '$.subject'), \
                 json_extract(value, '$.content_hash') \
                 FROM json_each(?5) WHERE true \
                 ON CONFLICT (source_id, hash) DO UPDATE SET embedder = excluded.embedder, updated_at = excluded.updated_at, \
                 subject = excluded.subject, content_hash = excluded.content_hash, \
                 run_id = CASE WHEN knowledge_chunks.run_id IS NULL THEN NULL ELSE excluded.run_id END",
            )
            .bind(&[
                text(source.as_str()),
                text(embedder),
                text(now),
                text(&rows),
                text(run),
            ])?,
        );
    }
    Ok(statements)
}

/// Publishes up to `limit` of the pieces the run `run` staged: search sees them from now on. How
/// many it published.
pub async fn publish(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    run: &str,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .scoped(
            tenant,
            "UPDATE knowledge_chunks SET run_id = NULL WHERE seq IN (SELECT seq FROM knowledge_chunks \
             WHERE business_id = ?1 AND source_id = ?2 AND run_id = ?3 LIMIT ?4)",
        )
        .bind(&[text(source.as_str()), text(run), number(limit as i64)])?
        .run()
        .await?;
    Ok(crate::db::changes(&result))
}

/// A stored piece a run did not see.
#[derive(Deserialize, Debug, Clone)]
pub struct Gone {
    pub id: String,
}

/// Up to `limit` of the source's pieces that the run `run_id` did not see: what left the data, and
/// what runs that did not end staged and this one did not see again.
pub async fn gone(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    run_id: &str,
    limit: usize,
) -> Result<Vec<Gone>, ApiError> {
    let sql = Sql::compose(
        "SELECT c.id FROM knowledge_chunks c WHERE c.business_id = :business AND c.source_id = :source \
         AND substr(c.hash, 1, 16) NOT IN ({sql}) LIMIT :limit",
        vec![knowledge_run_seen::seen_sql()],
    )
    .bind("source", text(source.as_str()))
    .bind("run", text(run_id))
    .bind("limit", number(limit as i64));
    Ok(sql.scoped(db, tenant)?.all().await?.results::<Gone>()?)
}

/// The statement that deletes the source's pieces among `ids`.
pub fn delete(db: &Db, tenant: &Tenant, source: &SourceId, ids: &[String]) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 \
             AND id IN (SELECT value FROM json_each(?3))",
        )
        .bind(&[text(source.as_str()), text(&serde_json::to_string(ids)?)])?)
}

/// Up to `limit` ids of the source's pieces after the piece numbered `after` (0: from the
/// start), with the last one's number: a source's vectors are deleted a page of ids at a time.
pub async fn ids_after(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    after: i64,
    limit: usize,
) -> Result<(Vec<String>, i64), ApiError> {
    #[derive(Deserialize)]
    struct Row {
        seq: i64,
        id: String,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT seq, id FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 AND seq > ?3 \
             ORDER BY seq LIMIT ?4",
        )
        .bind(&[text(source.as_str()), number(after), number(limit as i64)])?
        .all()
        .await?
        .results::<Row>()?;
    let last = rows.last().map_or(after, |row| row.seq);
    Ok((rows.into_iter().map(|row| row.id).collect(), last))
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
        .results::<Found>()?)
}

/// The business's own statistics for a keyword search, one row per query word (a JSON list, `?2`)
/// over the business's sources among `?3` (a JSON list), narrowed by the full-text filter `?4`
/// (` AND (…)`: the sources with their subjects, as the ranking asks): how many of their pieces hold the word
/// (counted up to just past half of them: a word held more widely weighs nothing), how many
/// pieces they have in the full-text index, and the pieces and words their last complete runs
/// counted (their average length). Nothing of another business's is counted: the sources are
/// the business's (`business_id = ?1`), and each count is narrowed to them inside the index.
/// Only live pieces count, as only they are searched: those a run in progress staged are found
/// by their own index and left out.
const STATISTICS: &str = "WITH s(filter, sized, tokens) AS (SELECT 'fts_source : (' || \
     COALESCE(group_concat('\"s' || replace(id, '-', '') || '\"', ' OR '), '\"s\"') || ')' || ?4, \
     COALESCE(SUM(CASE WHEN tokens > 0 THEN pieces ELSE 0 END), 0), COALESCE(SUM(tokens), 0) \
     FROM knowledge_sources WHERE +business_id = ?1 AND id IN (SELECT value FROM json_each(?3))), \
     staged(seq) AS (SELECT seq FROM knowledge_chunks WHERE +business_id = ?1 \
     AND source_id IN (SELECT value FROM json_each(?3)) AND run_id IS NOT NULL), \
     n(pieces) AS (SELECT COUNT(*) FROM knowledge_fts WHERE knowledge_fts MATCH (SELECT filter FROM s) \
     AND rowid NOT IN staged) \
     SELECT w.value AS term, (SELECT COUNT(*) FROM (SELECT 1 FROM knowledge_fts WHERE knowledge_fts MATCH \
     ('text : \"' || w.value || '\" AND ' || (SELECT filter FROM s)) AND rowid NOT IN staged \
     LIMIT (SELECT pieces FROM n) / 2 + 1)) AS doc, \
     (SELECT pieces FROM n) AS indexed, (SELECT sized FROM s) AS sized, (SELECT tokens FROM s) AS tokens \
     FROM json_each(?2) w";

/// The best live pieces among those the full-text query `?3` matches (the weighing words, within
/// the sources), by BM25 from the business's statistics: each word's weight (`?2`, a JSON list
/// of `[word, weight]`), K1 (`?4`), B (`?5`) and the average length (`?6`). A word's frequency in
/// a piece is counted from its occurrences (`knowledge_fts_instances`), and a piece's length is
/// the first varint of its `knowledge_fts_docsize` record (its text column's words; a piece of at
/// most 900 characters has fewer than 16,384, two bytes), plus `?9` ([`FILTER_TOKENS`]) for its source's
/// and its subject's tokens: FTS5's `bm25()` counts the words of every column, and so the ranking
/// is the one `bm25()` would give an index of the searched sources alone. Pieces a run staged (in the sources `?8`, found by
/// the staged pieces' index) are left out before the best `?7` are taken, so that only those are
/// read from the table. Ties go to the piece stored first.
const RANKING: &str = "WITH w(term, weight) AS (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') \
     FROM json_each(?2)), \
     hit(seq) AS (SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH ?3), \
     tf(seq, weight, n) AS (SELECT i.doc, w.weight, COUNT(*) FROM w CROSS JOIN knowledge_fts_instances i \
     ON i.term = w.term WHERE i.col = 'text' AND i.doc IN hit GROUP BY i.doc, w.term), \
     sized(seq, weight, n, h) AS (SELECT tf.seq, tf.weight, tf.n, hex(substr(d.sz, 1, 2)) \
     FROM tf JOIN knowledge_fts_docsize d ON d.id = tf.seq), \
     long(seq, weight, n, len) AS (SELECT seq, weight, n, CASE WHEN instr('0123456789ABCDEF', substr(h, 1, 1)) > 8 \
     THEN ((instr('0123456789ABCDEF', substr(h, 1, 1)) - 9) * 16 + instr('0123456789ABCDEF', substr(h, 2, 1)) - 1) * 128 \
     + (instr('0123456789ABCDEF', substr(h, 3, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 4, 1)) - 1 \
     ELSE (instr('0123456789ABCDEF', substr(h, 1, 1)) - 1) * 16 + instr('0123456789ABCDEF', substr(h, 2, 1)) - 1 END \
     FROM sized), \
     staged(seq) AS (SELECT seq FROM knowledge_chunks WHERE source_id IN (SELECT value FROM json_each(?8)) \
     AND run_id IS NOT NULL), \
     scored(seq, score) AS (SELECT seq, SUM(weight * n * (?4 + 1.0) / (n + ?4 * (1.0 - ?5 + ?5 * (len + ?9) / ?6))) \
     FROM long WHERE seq NOT IN staged GROUP BY seq) \
     SELECT c.id, s.score FROM (SELECT seq, score FROM scored ORDER BY score DESC, seq LIMIT ?7) s \
     JOIN knowledge_chunks c ON c.seq = s.seq WHERE c.business_id = ?1 ORDER BY s.score DESC, s.seq";

/// The words of each piece's filter columns (its source's token and its subject's), which FTS5's
/// `bm25()` counts in its length.
const FILTER_TOKENS: f64 = 2.0;

/// Which pieces a search may return: the live pieces of `sources`, and, when `subjects` (tokens,
/// `domain::bot::subject::token`) are given, only those whose subject's token is one of them.
#[derive(Debug, Clone, Copy)]
pub struct Within<'a> {
    pub sources: &'a [SourceId],
    pub subjects: Option<&'a [String]>,
}

/// The `k` pieces of `sources` that best match the words of `query` by BM25 ([`keyword_within`]).
pub async fn keyword(
    db: &Db,
    tenant: &Tenant,
    sources: &[SourceId],
    query: &str,
    k: usize,
) -> Result<Vec<(String, f64)>, ApiError> {
    let within = Within {
        sources,
        subjects: None,
    };
    keyword_within(db, tenant, &[within], query, k).await
}

/// `"a" OR "b"`: tokens of the full-text index's filter columns, quoted (they hold letters and
/// digits only; anything else is no token and is left out).
fn any_of<'a>(tokens: impl Iterator<Item = &'a str>) -> String {
    tokens
        .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|token| format!("\"{token}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// A source as one token of the full-text index (its `fts_source` column).
fn source_token(source: &SourceId) -> String {
    format!("s{}", source.as_str().replace('-', ""))
}

/// The `k` pieces that best match the words of `query` by BM25 among those any of `within` may
/// return, narrowed inside the full-text query itself (nothing is filtered afterwards), ranked
/// with the business's own statistics (module `keyword`): (piece id, score, higher is better). It
/// asks only for the words that weigh (`keyword::weighing`: a word half the pieces hold would make
/// it rank half of them).
pub async fn keyword_within(
    db: &Db,
    tenant: &Tenant,
    within: &[Within<'_>],
    query: &str,
    k: usize,
) -> Result<Vec<(String, f64)>, ApiError> {
    let mut words: Vec<String> = tokens(query).collect();
    words.sort();
    words.dedup();
    words.truncate(MAX_QUERY_WORDS);
    let within: Vec<&Within<'_>> = within
        .iter()
        .filter(|part| !part.sources.is_empty() && part.subjects.is_none_or(|subjects| !subjects.is_empty()))
        .collect();
    let mut sources: Vec<&SourceId> = within.iter().flat_map(|part| part.sources).collect();
    sources.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    sources.dedup();
    if words.is_empty() || sources.is_empty() {
        return Ok(Vec::new());
    }
    // Each source with its own subjects, if any: the statistics count these pieces only, and the
    // ranking ranks them only.
    let parts: Vec<String> = within
        .iter()
        .map(|part| {
            let tokens: Vec<String> = part.sources.iter().map(source_token).collect();
            let sources = any_of(tokens.iter().map(String::as_str));
            match part.subjects {
                None => format!("(fts_source : ({sources}))"),
                Some(subjects) => format!(
                    "(fts_source : ({sources}) AND fts_subject : ({}))",
                    any_of(subjects.iter().map(String::as_str))
                ),
            }
        })
        .collect();
    let scope = format!("({})", parts.join(" OR "));
    let asked = db::json_list(sources.iter().map(|source| source.as_str()));
    let counted = db
        .scoped(tenant, STATISTICS)
        .bind(&[
            text(&serde_json::to_string(&words)?),
            asked,
            text(&format!(" AND {scope}")),
        ])?
        .all()
        .await?
        .results::<Counted>()?;
    let Some(statistics) = Statistics::of(&counted) else {
        return Ok(Vec::new());
    };
    let weighing = keyword::weighing(&words, &statistics.holding, statistics.indexed);
    if weighing.is_empty() {
        return Ok(Vec::new());
    }
    let weights: Vec<(&str, f64)> = weighing
        .iter()
        .map(|word| {
            let held = statistics.holding.get(*word).copied().unwrap_or(0);
            (*word, keyword::idf(held, statistics.indexed))
        })
        .collect();
    // Each word quoted, so that none is read as FTS5 syntax (tokens hold letters and digits only).
    let terms: Vec<String> = weighing.iter().map(|word| format!("\"{word}\"")).collect();
    let matching = format!("text : ({}) AND {scope}", terms.join(" OR "));
    // Without a known average length, every piece counts as of average length.
    let (b, average) = match statistics.average {
        Some(average) => (keyword::B, average),
        None => (0.0, 1.0),
    };
    #[derive(Deserialize)]
    struct Row {
        id: String,
        score: f64,
    }
    let rows = db
        .scoped(tenant, RANKING)
        .bind(&[
            text(&serde_json::to_string(&weights)?),
            text(&matching),
            Param::Number(keyword::K1),
            Param::Number(b),
            Param::Number(average),
            number(k as i64),
            db::json_list(sources.iter().map(|source| source.as_str())),
            Param::Number(FILTER_TOKENS),
        ])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| (row.id, row.score)).collect())
}

/// One row of [`STATISTICS`].
#[derive(Deserialize)]
struct Counted {
    term: String,
    doc: u64,
    indexed: u64,
    sized: u64,
    tokens: u64,
}

/// The statistics a keyword search weighs with, all within the searched sources.
struct Statistics {
    holding: HashMap<String, u64>,
    indexed: u64,
    average: Option<f64>,
}

impl Statistics {
    fn of(rows: &[Counted]) -> Option<Self> {
        let first = rows.first()?;
        Some(Self {
            holding: rows.iter().map(|row| (row.term.clone(), row.doc)).collect(),
            indexed: first.indexed,
            // Each piece's text, and the tokens of its filter columns (see RANKING).
            average: (first.sized > 0 && first.tokens > 0)
                .then(|| first.tokens as f64 / first.sized as f64 + FILTER_TOKENS),
        })
    }
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
        .results::<Row>()?;
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
        .results::<Found>()?)
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
        .results::<Row>()?;
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
    use crate::db::statements::{migrated, plan};

    /// Pieces of one source, live, with the given texts; their full-text index kept by triggers.
    fn pieces(texts: &[&str]) -> rusqlite::Connection {
        let db = migrated();
        db.execute_batch("PRAGMA foreign_keys = OFF")
            .unwrap_or_else(|error| panic!("{error}"));
        for (at, piece) in texts.iter().enumerate() {
            db.execute(
                "INSERT INTO knowledge_chunks (id, business_id, source_id, hash, record, part, text, \
                 embedder, created_at, updated_at) VALUES (?1, 'b1', 'src-1', ?1, 'r', 0, ?2, 'm', '', '')",
                rusqlite::params![format!("p{at}"), piece],
            )
            .unwrap_or_else(|error| panic!("{error}"));
        }
        db
    }

    /// The rows of `sql` with `params`, as (text, number) pairs.
    fn pairs(db: &rusqlite::Connection, sql: &str, params: impl rusqlite::Params) -> Vec<(String, f64)> {
        db.prepare(sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params, |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    #[test]
    fn a_search_counts_the_words_within_the_business_sources_only() {
        let db = pieces(&[
            "customers[0].name: Felix Kane\ncustomers[0].tags: gold",
            "customers[1].name: Ada Byrne\ncustomers[1].tags: gold",
            "customers[2].name: Jane Roe",
            "customers[3].name: Quinn Joyce",
        ]);
        // Another business's source on the shard, holding the same words.
        for (at, text) in ["Felix gold", "Felix gold", "Felix"].iter().enumerate() {
            db.execute(
                "INSERT INTO knowledge_chunks (id, business_id, source_id, hash, record, part, text, \
                 embedder, created_at, updated_at) VALUES (?1, 'b2', 'src-2', ?1, 'r', 0, ?2, 'm', '', '')",
                rusqlite::params![format!("q{at}"), text],
            )
            .unwrap_or_else(|error| panic!("{error}"));
        }
        for (id, business, tokens) in [("src-1", "b1", 20), ("src-2", "b2", 5)] {
            db.execute(
                "INSERT INTO knowledge_sources (id, business_id, page_id, url, name, type, fetch_interval_minutes, secrets, state, pieces, tokens, \
                 created_at, updated_at) VALUES (?1, ?2, 'p', 'https://crm.example.com', 'CRM', 'api', 30, '', 'ok', 4, ?3, '', '')",
                rusqlite::params![id, business, tokens],
            )
            .unwrap_or_else(|error| panic!("{error}"));
        }
        let words = r#"["customers","felix","gold","nowhere"]"#;
        let counted = |business: &str, sources: &str| -> Vec<(String, i64, i64, i64, i64)> {
            db.prepare(STATISTICS)
                .and_then(|mut statement| {
                    statement
                        .query_map(rusqlite::params![business, words, sources, ""], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                        })?
                        .collect()
                })
                .unwrap_or_else(|error| panic!("{error}"))
        };
        assert_eq!(
            counted("b1", r#"["src-1"]"#),
            [
                ("customers".to_owned(), 3, 4, 4, 20),
                ("felix".to_owned(), 1, 4, 4, 20),
                ("gold".to_owned(), 2, 4, 4, 20),
                ("nowhere".to_owned(), 0, 4, 4, 20),
            ],
            "the counts of b1's four pieces (a word half of them hold is counted to just past the half)"
        );
        assert!(
            counted("b1", r#"["src-2"]"#)
                .iter()
                .all(|row| row.1 == 0 && row.2 == 0 && row.4 == 0),
            "another business's source named counts nothing: {:?}",
            counted("b1", r#"["src-2"]"#)
        );
        let holding: HashMap<String, u64> = counted("b1", r#"["src-1"]"#)
            .into_iter()
            .map(|(word, held, ..)| (word, held.unsigned_abs()))
            .collect();
        let words: Vec<String> = ["customers", "felix", "gold", "nowhere"]
            .map(String::from)
            .to_vec();
        assert_eq!(keyword::weighing(&words, &holding, 4), ["felix"]);
    }

    #[test]
    fn one_business_alone_is_ranked_as_fts5s_own_bm25_ranks_it() {
        // Lengths on both sides of 128 words (a two-byte length in the index), words held once
        // and twice.
        let long = format!("Felix gold {}", "filler ".repeat(140));
        let texts = [
            "Felix Kane gold gold",
            "Ada Byrne gold",
            long.as_str(),
            "Kane Kane Felix",
            "Jane Roe",
            "Quinn Joyce",
            "Sam Dunne",
            "Tom Hart",
            "Mei Zhou",
        ];
        let db = pieces(&texts);
        let matching = "text : (\"felix\" OR \"gold\" OR \"kane\") AND fts_source : (\"ssrc1\")";
        let expected = pairs(
            &db,
            "SELECT c.id, -bm25(knowledge_fts, 1.0, 0.0, 0.0) FROM knowledge_fts JOIN knowledge_chunks c \
             ON c.seq = knowledge_fts.rowid WHERE knowledge_fts MATCH ?1 ORDER BY rank",
            [matching],
        );
        // The statistics counted here from the texts, not from the index.
        let indexed = texts.len() as u64;
        let lengths: Vec<usize> = texts.iter().map(|text| tokens(text).count()).collect();
        // bm25() counts every column's words: the source and subject columns hold one each.
        let average = lengths.iter().sum::<usize>() as f64 / indexed as f64 + FILTER_TOKENS;
        let held = |word: &str| {
            texts
                .iter()
                .filter(|text| tokens(text).any(|token| token == word))
                .count() as u64
        };
        let weights: Vec<(&str, f64)> = ["felix", "gold", "kane"]
            .map(|word| (word, keyword::idf(held(word), indexed)))
            .to_vec();
        let weights = serde_json::to_string(&weights).unwrap_or_default();
        let ranked = pairs(
            &db,
            RANKING,
            rusqlite::params![
                "b1",
                weights,
                matching,
                keyword::K1,
                keyword::B,
                average,
                10,
                r#"["src-1"]"#,
                FILTER_TOKENS
            ],
        );
        assert_eq!(ranked.len(), 4, "{ranked:?}");
        assert_eq!(
            ranked.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            expected.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            "the same order: {ranked:?} {expected:?}"
        );
        for ((id, ours), (_, theirs)) in ranked.iter().zip(&expected) {
            assert!(
                (ours - theirs).abs() < 1e-9,
                "{id}: {ours} against FTS5's {theirs}"
            );
        }
    }

    #[test]
    fn the_occurrences_are_read_word_by_word() {
        // Scanned whole, the occurrences of a large index take seconds: the plan must hand each
        // word to them as a constraint (the low bit of FTS5's vocabulary index: the term equals
        // a value).
        let db = migrated();
        let steps = plan(&db, RANKING);
        let index = steps
            .iter()
            .find_map(|step| step.strip_prefix("SCAN i VIRTUAL TABLE INDEX "))
            .and_then(|rest| rest.trim_end_matches(':').parse::<u32>().ok());
        assert_eq!(index.map(|index| index & 1), Some(1), "{steps:?}");
    }

    use crate::testing::{Fixture, Must, link, page};
    use domain::bot::subject::{GENERAL, token};
    use domain::links::link::{LinkChannel, LinkType};

    fn hash(n: u32) -> String {
        format!("{n:08x}{}", "0".repeat(56))
    }

    /// Stages `texts` as general pieces of the source under `run` (piece n's hash made from n).
    async fn stage(
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
    async fn stage_of(
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

    async fn a_source(fixture: &Fixture, tenant: &Tenant, url: &str) -> SourceId {
        fixture
            .source(
                tenant,
                &page("1001"),
                &link("A", url, LinkType::Api),
                &[LinkChannel::Messenger],
            )
            .await
    }

    fn sorted(mut ids: Vec<String>) -> Vec<String> {
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

    #[test]
    fn a_page_of_50000_hashes_is_looked_up_in_lists_under_d1s_value_limit() {
        // 50,000 × 67 bytes of JSON is 3.3 MB, over D1's 2,000,000 bytes a value, which the native
        // shard refuses as D1 does.
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let source = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            stage(&fixture, &acme, &source, "run-1", 49_990, &["Ann", "Bob"], "m1").await;
            publish(&fixture.db, &acme, &source, "run-1", 10).await.must();
            let hashes: Vec<String> = (0..50_000).map(hash).collect();
            let asked: Vec<&str> = hashes.iter().map(String::as_str).collect();
            let stored = stored_among(&fixture.db, &acme, &source, &asked, "m1")
                .await
                .must();
            assert_eq!(stored.tagged, HashSet::from([hash(49_990), hash(49_991)]));
        });
    }

    #[test]
    fn a_live_piece_staged_again_stays_live_with_its_new_vector() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let source = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            stage(&fixture, &acme, &source, "run-1", 0, &["Ann"], "m1").await;
            publish(&fixture.db, &acme, &source, "run-1", 10).await.must();
            stage(&fixture, &acme, &source, "run-2", 0, &["Ann"], "m2").await;
            let first = hash(0);
            let asked = [first.as_str()];
            assert!(
                stored_among(&fixture.db, &acme, &source, &asked, "m1")
                    .await
                    .must()
                    .tagged
                    .is_empty(),
                "its vector is another model's now"
            );
            assert_eq!(
                stored_among(&fixture.db, &acme, &source, &asked, "m2")
                    .await
                    .must()
                    .tagged
                    .len(),
                1,
                "and it stays live"
            );
            assert_eq!(
                counts(&fixture.db, &acme, "m1").await.must().get(source.as_str()),
                Some(&(1, 0))
            );
            // A piece staged by a run that never ended is staged by the next one.
            stage(&fixture, &acme, &source, "run-2", 1, &["Bob"], "m2").await;
            stage(&fixture, &acme, &source, "run-3", 1, &["Bob"], "m2").await;
            assert_eq!(publish(&fixture.db, &acme, &source, "run-2", 10).await.must(), 0);
            assert_eq!(publish(&fixture.db, &acme, &source, "run-3", 10).await.must(), 1);
        });
    }

    #[test]
    fn what_the_run_did_not_see_is_gone_and_deleted_by_id() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let source = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            let ids = stage(&fixture, &acme, &source, "run-1", 0, &["Ann", "Bob", "Cat"], "m1").await;
            publish(&fixture.db, &acme, &source, "run-1", 10).await.must();
            let (kept_first, kept_last) = (hash(0), hash(2));
            let seen = [seen_key(&kept_first), seen_key(&kept_last)];
            let statement =
                knowledge_run_seen::record(&fixture.db, &acme, &source, "run-2", 0, 0, &seen).must();
            fixture.db.batch(vec![statement]).await.must();
            let gone_now: Vec<String> = gone(&fixture.db, &acme, &source, "run-2", 10)
                .await
                .must()
                .into_iter()
                .map(|g| g.id)
                .collect();
            assert_eq!(gone_now, [ids[1].clone()]);
            let statement = delete(&fixture.db, &acme, &source, &gone_now).must();
            fixture.db.batch(vec![statement]).await.must();
            assert!(
                gone(&fixture.db, &acme, &source, "run-2", 10)
                    .await
                    .must()
                    .is_empty()
            );
            assert_eq!(
                counts(&fixture.db, &acme, "m1").await.must().get(source.as_str()),
                Some(&(2, 2))
            );
        });
    }

    #[test]
    fn a_sources_pieces_are_paged_by_their_number() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let source = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            let other = a_source(&fixture, &acme, "https://crm.example.com/b").await;
            let ids = stage(
                &fixture,
                &acme,
                &source,
                "run-1",
                0,
                &["a", "b", "c", "d", "e"],
                "m1",
            )
            .await;
            stage(&fixture, &acme, &other, "run-1", 0, &["x"], "m1").await;
            let (first, after) = ids_after(&fixture.db, &acme, &source, 0, 2).await.must();
            assert_eq!(first, ids[..2]);
            let (second, after) = ids_after(&fixture.db, &acme, &source, after, 2).await.must();
            assert_eq!(second, ids[2..4]);
            let (third, after) = ids_after(&fixture.db, &acme, &source, after, 2).await.must();
            assert_eq!(third, ids[4..]);
            let (none, last) = ids_after(&fixture.db, &acme, &source, after, 2).await.must();
            assert!(none.is_empty());
            assert_eq!(last, after, "an empty page keeps the cursor");
        });
    }

    #[test]
    fn another_business_holding_the_probe_word_changes_nothing_in_a_business_scores_or_order() {
        // The review's probe: business A holds a token (a phone number) and a reference word
        // only it holds; whether business B, on the same shard, holds the token too must not show
        // in A's scores, nor in the order of A's pieces for a query of both words.
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let ours = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            let theirs = a_source(&fixture, &globex, "https://crm.example.com/b").await;
            let texts = [
                "name: Ann Byrne\nphone: 5550123\nnote: zyxwv",
                "name: Bob Kane\nphone: 5550123",
                "name: Cat Roe\nnote: zyxwv zyxwv",
                "name: Dan Hart",
                "name: Eve Lund",
                "name: Fay Moss",
                "name: Gus Nye",
            ];
            stage(&fixture, &acme, &ours, "r", 0, &texts, "m1").await;
            publish(&fixture.db, &acme, &ours, "r", 100).await.must();
            // A's average length, as its runs record it.
            let recorded = |source: &SourceId, pieces: i64, tokens: i64| {
                fixture.stack.sql("DB", |connection| {
                    connection
                        .execute(
                            "UPDATE knowledge_sources SET pieces = ?2, tokens = ?3 WHERE id = ?1",
                            rusqlite::params![source.as_str(), pieces, tokens],
                        )
                        .unwrap_or_else(|error| panic!("{error}"))
                })
            };
            recorded(&ours, 7, 25);
            let queries = ["5550123", "5550123 zyxwv", "zyxwv byrne 5550123"];
            let ask = |query: &'static str| {
                let (db, acme, ours) = (fixture.db.clone(), acme.clone(), ours.clone());
                async move {
                    keyword(&db, &acme, std::slice::from_ref(&ours), query, 10)
                        .await
                        .must()
                }
            };
            let mut alone = Vec::new();
            for query in queries {
                alone.push(ask(query).await);
            }
            assert_eq!(
                alone[0].len(),
                2,
                "A finds its two pieces with the probe: {alone:?}"
            );
            assert!(alone.iter().flatten().all(|(_, score)| *score > 0.0), "{alone:?}");

            let longer = "phone: 5550123 call back about the invoice and the order of last week";
            let held: Vec<&str> = std::iter::repeat_n(longer, 30).collect();
            stage(&fixture, &globex, &theirs, "r", 100, &held, "m1").await;
            publish(&fixture.db, &globex, &theirs, "r", 100).await.must();
            recorded(&theirs, 30, 30 * 14);
            for (query, before) in queries.into_iter().zip(&alone) {
                assert_eq!(
                    &ask(query).await,
                    before,
                    "{query}: A's scores and order are the same whether or not B holds the probe"
                );
            }
        });
    }

    #[test]
    fn search_stays_within_the_business_and_the_sources_asked() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let ours = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            let also_ours = a_source(&fixture, &acme, "https://crm.example.com/b").await;
            let theirs = a_source(&fixture, &globex, "https://crm.example.com/a").await;
            // A word half the searched pieces hold weighs nothing.
            let texts = [
                "Felix Kane gold",
                "Ada Byrne",
                "Jane Roe",
                "Quinn Joyce",
                "Sam Dunne",
                "Tom Hart",
            ];
            let mine = stage(&fixture, &acme, &ours, "r", 0, &texts, "m1").await;
            let other = stage(&fixture, &acme, &also_ours, "r", 10, &["Felix Other"], "m1").await;
            let foreign = stage(&fixture, &globex, &theirs, "r", 20, &["Felix Foreign"], "m1").await;
            for (tenant, source) in [(&acme, &ours), (&acme, &also_ours), (&globex, &theirs)] {
                publish(&fixture.db, tenant, source, "r", 10).await.must();
            }
            let found = |tenant: &Tenant, sources: Vec<SourceId>| {
                let (db, tenant) = (fixture.db.clone(), tenant.clone());
                async move {
                    let best = keyword(&db, &tenant, &sources, "felix", 10).await.must();
                    sorted(best.into_iter().map(|(id, _)| id).collect())
                }
            };
            assert_eq!(found(&acme, vec![ours.clone()]).await, [mine[0].clone()]);
            assert_eq!(
                found(&acme, vec![ours.clone(), also_ours.clone()]).await,
                sorted(vec![mine[0].clone(), other[0].clone()])
            );
            assert!(
                found(&acme, vec![theirs.clone()]).await.is_empty(),
                "another business's source asked by name"
            );
            assert!(by_ids(&fixture.db, &acme, &foreign).await.must().is_empty());
            assert!(samples(&fixture.db, &acme, &theirs, 10).await.must().is_empty());
            assert!(
                keyword(&fixture.db, &acme, &[], "felix", 10)
                    .await
                    .must()
                    .is_empty(),
                "no source asked"
            );
            let statement = delete(&fixture.db, &acme, &theirs, &foreign).must();
            fixture.db.batch(vec![statement]).await.must();
            assert_eq!(
                by_ids(&fixture.db, &globex, &foreign).await.must().len(),
                1,
                "another business deletes nothing"
            );
        });
    }

    /// The ids of the pieces a keyword search within `within` finds, sorted.
    async fn found_within(db: &Db, tenant: &Tenant, within: &[Within<'_>], query: &str) -> Vec<String> {
        let best = keyword_within(db, tenant, within, query, 10).await.must();
        sorted(best.into_iter().map(|(id, _)| id).collect())
    }

    #[test]
    fn a_search_within_subjects_is_narrowed_inside_the_full_text_query() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let plans = a_source(&fixture, &acme, "https://crm.example.com/plans").await;
            let customers = a_source(&fixture, &acme, "https://crm.example.com/customers").await;
            let (ann, bob) = (
                token(Some("email:ann@example.com")),
                token(Some("email:bob@example.com")),
            );
            let general = stage(
                &fixture,
                &acme,
                &plans,
                "r",
                0,
                &[
                    "plan: Gold felix",
                    "plan: Basic",
                    "refunds within 30 days",
                    "opening hours 9 to 5",
                ],
                "m1",
            )
            .await;
            let anns = stage_of(
                &fixture,
                &acme,
                &customers,
                "r",
                10,
                &["name: Ann Lee felix\nplan: Gold"],
                "m1",
                &ann,
            )
            .await;
            let bobs = stage_of(
                &fixture,
                &acme,
                &customers,
                "r",
                20,
                &["name: Bob Kane felix\nemail: bob@example.com"],
                "m1",
                &bob,
            )
            .await;
            // What the customers link held as general knowledge before it held customers.
            let before = stage(
                &fixture,
                &acme,
                &customers,
                "r",
                30,
                &["name: Bob Kane felix before"],
                "m1",
            )
            .await;
            for source in [&plans, &customers] {
                publish(&fixture.db, &acme, source, "r", 100).await.must();
            }
            let general_only = vec![GENERAL.to_owned()];
            let anns_only = vec![ann.clone()];
            let for_ann = [
                Within {
                    sources: std::slice::from_ref(&plans),
                    subjects: Some(&general_only),
                },
                Within {
                    sources: std::slice::from_ref(&customers),
                    subjects: Some(&anns_only),
                },
            ];
            assert_eq!(
                found_within(&fixture.db, &acme, &for_ann, "felix").await,
                sorted(vec![general[0].clone(), anns[0].clone()]),
                "Bob's piece, and the customers link's general piece, are never candidates"
            );
            for query in ["bob kane", "bob@example.com", "Bob Kane before"] {
                assert!(
                    found_within(&fixture.db, &acme, &for_ann, query).await.is_empty(),
                    "{query}: asking for Bob finds nothing of his"
                );
            }
            let everything = keyword(
                &fixture.db,
                &acme,
                &[plans.clone(), customers.clone()],
                "kane",
                10,
            )
            .await
            .must();
            assert_eq!(
                sorted(everything.into_iter().map(|(id, _)| id).collect()),
                sorted(vec![bobs[0].clone(), before[0].clone()]),
                "the business's own search covers every record"
            );
            let none: Vec<String> = Vec::new();
            let nobody = [Within {
                sources: std::slice::from_ref(&customers),
                subjects: Some(&none),
            }];
            assert!(
                found_within(&fixture.db, &acme, &nobody, "felix")
                    .await
                    .is_empty(),
                "no subjects asked: nothing personal"
            );

            // A piece indexed before subjects is general to search, and untagged to the indexer.
            fixture.stack.sql("DB", |connection| {
                connection
                    .execute(
                        "UPDATE knowledge_chunks SET subject = NULL WHERE id = ?1",
                        rusqlite::params![general[1]],
                    )
                    .unwrap_or_else(|error| panic!("{error}"))
            });
            assert_eq!(
                found_within(&fixture.db, &acme, &for_ann, "basic").await,
                [general[1].clone()]
            );
            let (first, second) = (hash(0), hash(1));
            let stored = stored_among(
                &fixture.db,
                &acme,
                &plans,
                &[first.as_str(), second.as_str()],
                "m1",
            )
            .await
            .must();
            assert_eq!(
                (stored.tagged, stored.untagged),
                (HashSet::from([first.clone()]), HashSet::from([second.clone()]))
            );
            let read = by_ids(&fixture.db, &acme, &[general[1].clone(), anns[0].clone()])
                .await
                .must();
            let mut subjects: Vec<Option<String>> = read.into_iter().map(|found| found.subject).collect();
            subjects.sort();
            assert_eq!(subjects, [None, Some(ann.clone())]);
        });
    }

    #[test]
    fn the_full_text_index_reads_a_piece_without_a_subject_as_general_knowledge() {
        // The migration's token for pieces indexed before subjects is the domain's.
        let db = pieces(&["Felix"]);
        let token: String = db
            .query_row("SELECT fts_subject FROM knowledge_chunks", [], |row| row.get(0))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(token, GENERAL);
    }
}
