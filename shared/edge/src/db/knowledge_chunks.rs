//! `knowledge_chunks`: the searchable pieces of each source's data (their vectors are in the
//! vector store, under the piece's id), and their full-text index `knowledge_fts`, which triggers
//! keep. Written only by the fetcher (and emptied with their source); read by search and by the
//! documents' details.
//!
//! A refresh writes only what changed: a new piece is inserted, a piece that left the data is
//! deleted, and a piece whose record merely moved is left as it was first seen. A run's new pieces
//! are staged (they carry the run's id) and search sees only live pieces, so a run that fails
//! half-way leaves the data as it was; its end publishes them.

use crate::db::{self, Db, Sql, Statement, json_arrays, knowledge_run_seen, number, text};
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

/// A piece to store, with a vector of `embedder` in the store under [`chunk_id`].
#[derive(Serialize)]
pub struct NewPiece<'a> {
    pub id: String,
    pub hash: &'a str,
    pub record: &'a str,
    pub part: usize,
    pub text: &'a str,
}

/// The hashes among `hashes` the source holds live with a vector of `embedder`. A piece whose
/// vector another model made is embedded again; a piece staged by a run that did not end is
/// staged again by this one (its vector is in the store already).
pub async fn stored_among(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    hashes: &[&str],
    embedder: &str,
) -> Result<HashSet<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        hash: String,
    }
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT hash FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 AND embedder = ?4 \
             AND run_id IS NULL AND hash IN (SELECT value FROM json_each(?3))",
        )
        .bind(&[
            text(source.as_str()),
            text(&serde_json::to_string(hashes)?),
            text(embedder),
        ])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| row.hash).collect())
}

/// The statements that stage new pieces under `run` (a live piece stored with another model's
/// vector takes the new one and stays live; a piece staged by another run is staged by this one),
/// a few hundred kilobytes of JSON each.
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
                 run_id, created_at, updated_at) \
                 SELECT json_extract(value, '$.id'), ?1, ?2, json_extract(value, '$.hash'), json_extract(value, '$.record'), \
                 json_extract(value, '$.part'), json_extract(value, '$.text'), ?3, ?6, ?4, ?4 FROM json_each(?5) WHERE true \
                 ON CONFLICT (source_id, hash) DO UPDATE SET embedder = excluded.embedder, updated_at = excluded.updated_at, \
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
            "SELECT id, source_id, record, part, text FROM knowledge_chunks WHERE business_id = ?1 \
             AND run_id IS NULL AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::to_string(ids)?)])?
        .all()
        .await?
        .results::<Found>()?)
}

/// How many pieces hold each word of a JSON list (`knowledge_fts_terms`, one lookup per word:
/// the vocabulary is searched by its term only when it is the inner side of the join).
const HOLDING: &str =
    "SELECT t.term, t.doc FROM json_each(?1) w CROSS JOIN knowledge_fts_terms t ON t.term = w.value";

/// The full-text index's averages record (row 1 of its data, in hex), which begins with the
/// number of pieces it indexes: the N of its BM25.
const AVERAGES: &str = "SELECT hex(block) AS averages FROM knowledge_fts_data WHERE id = 1";

/// The best live pieces of the business among those the full-text query matches, by BM25
/// (FTS5's `rank`, so that the index hands over its matches best first and the join reads no
/// more pieces than it keeps).
const MATCHING: &str = "SELECT c.id, -knowledge_fts.rank AS score FROM knowledge_fts \
     JOIN knowledge_chunks c ON c.seq = knowledge_fts.rowid \
     WHERE knowledge_fts MATCH ?2 AND knowledge_fts.rank MATCH 'bm25(1.0, 0.0)' \
     AND c.business_id = ?1 AND c.run_id IS NULL ORDER BY knowledge_fts.rank LIMIT ?3";

/// The `k` pieces of `sources` that best match the words of `query` by BM25, through the
/// full-text index: (piece id, score, higher is better). The sources are a column of the index,
/// so the query reads only their pieces' postings; and it asks only for the words that weigh in
/// BM25 (`keyword::weighing`: a word half the index holds would make it rank half the index).
pub async fn keyword(
    db: &Db,
    tenant: &Tenant,
    sources: &[SourceId],
    query: &str,
    k: usize,
) -> Result<Vec<(String, f64)>, ApiError> {
    let mut words: Vec<String> = tokens(query).collect();
    words.sort();
    words.dedup();
    words.truncate(MAX_QUERY_WORDS);
    if words.is_empty() || sources.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(Deserialize)]
    struct Holding {
        term: String,
        doc: u64,
    }
    #[derive(Deserialize)]
    struct Averages {
        averages: String,
    }
    let counted = db
        .batch(vec![
            db.on_tenants_shard(tenant, HOLDING)
                .bind(&[text(&serde_json::to_string(&words)?)])?,
            db.on_tenants_shard(tenant, AVERAGES),
        ])
        .await?;
    let holding: HashMap<String, u64> = db::rows::<Holding>(&counted, 0)?
        .into_iter()
        .map(|row| (row.term, row.doc))
        .collect();
    let indexed = match db::first_row::<Averages>(&counted, 1)? {
        // An index that never held a piece has no averages record.
        None => 0,
        Some(row) => indexed_pieces(&row.averages).ok_or_else(|| {
            ApiError::internal(
                "reading the size of the full-text index",
                format!("an averages record that is not a varint: {:.18}", row.averages),
            )
        })?,
    };
    let weighing = keyword::weighing(&words, &holding, indexed);
    if weighing.is_empty() {
        return Ok(Vec::new());
    }
    // Each word quoted, so that none is read as FTS5 syntax (tokens hold letters and digits only).
    let terms: Vec<String> = weighing.iter().map(|word| format!("\"{word}\"")).collect();
    let source_tokens: Vec<String> = sources
        .iter()
        .map(|source| format!("\"s{}\"", source.as_str().replace('-', "")))
        .collect();
    let matching = format!(
        "text : ({}) AND fts_source : ({})",
        terms.join(" OR "),
        source_tokens.join(" OR ")
    );
    #[derive(Deserialize)]
    struct Row {
        id: String,
        score: f64,
    }
    let rows = db
        .scoped(tenant, MATCHING)
        .bind(&[text(&matching), number(k as i64)])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows.into_iter().map(|row| (row.id, row.score)).collect())
}

/// The number of pieces the full-text index holds, from its averages record in hex: a SQLite
/// varint (big-endian, seven bits a byte while the high bit is set, the ninth byte whole).
fn indexed_pieces(averages: &str) -> Option<u64> {
    let mut value: u64 = 0;
    for (at, pair) in averages.as_bytes().chunks(2).take(9).enumerate() {
        let byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        if at == 8 {
            return Some((value << 8) | u64::from(byte));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
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
        .scoped(tenant, "SELECT id, source_id, record, part, text FROM knowledge_chunks WHERE business_id = ?1 AND source_id = ?2 \
             AND run_id IS NULL ORDER BY seq LIMIT ?3",
        )
        .bind(&[text(source.as_str()), number(limit as i64)])?
        .all()
        .await?
        .results::<Found>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statements::{migrated, plan};

    #[test]
    fn the_averages_record_begins_with_the_pieces_indexed() {
        assert_eq!(indexed_pieces("00"), Some(0));
        assert_eq!(indexed_pieces("7F0102"), Some(127));
        assert_eq!(indexed_pieces("8100"), Some(128));
        // The 100,000-record bench's index: 96,949 pieces, then each column's tokens.
        assert_eq!(indexed_pieces("85F53585D0FD5F85F535"), Some(96_949));
        assert_eq!(indexed_pieces(""), None);
        assert_eq!(indexed_pieces("85"), None, "cut short");
        assert_eq!(indexed_pieces("ZZ"), None);
    }

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

    #[test]
    fn a_search_asks_the_index_only_for_the_words_that_weigh() {
        let db = pieces(&[
            "customers[0].name: Felix Kane\ncustomers[0].tags: gold",
            "customers[1].name: Ada Byrne\ncustomers[1].tags: gold",
            "customers[2].name: Jane Roe",
            "customers[3].name: Quinn Joyce",
        ]);
        let words: Vec<String> = ["customers", "felix", "gold", "nowhere"]
            .map(String::from)
            .to_vec();
        let holding: HashMap<String, u64> = db
            .prepare(HOLDING)
            .and_then(|mut statement| {
                statement
                    .query_map([serde_json::to_string(&words).unwrap_or_default()], |row| {
                        Ok((row.get(0)?, row.get::<_, i64>(1)?.unsigned_abs()))
                    })?
                    .collect()
            })
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            holding,
            HashMap::from([("customers".into(), 4), ("felix".into(), 1), ("gold".into(), 2)])
        );
        let averages: String = db
            .query_row(AVERAGES, [], |row| row.get(0))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(indexed_pieces(&averages), Some(4));
        assert_eq!(keyword::weighing(&words, &holding, 4), ["felix"]);

        let found: Vec<String> = db
            .prepare(MATCHING)
            .and_then(|mut statement| {
                statement
                    .query_map(
                        rusqlite::params!["b1", "text : (\"felix\") AND fts_source : (\"ssrc1\")", 5],
                        |row| row.get(0),
                    )?
                    .collect()
            })
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(found, ["p0"]);
    }

    #[test]
    fn the_vocabulary_is_searched_word_by_word() {
        // Scanned whole, the vocabulary of a large index takes seconds: its plan must hand each
        // word to it as a constraint (the low bit of FTS5's vocabulary index: the term equals a
        // value).
        let db = migrated();
        let steps = plan(&db, HOLDING);
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(steps[0].starts_with("SCAN w VIRTUAL TABLE"), "{steps:?}");
        let index = steps[1]
            .strip_prefix("SCAN t VIRTUAL TABLE INDEX ")
            .and_then(|rest| rest.trim_end_matches(':').parse::<u32>().ok());
        assert_eq!(index.map(|index| index & 1), Some(1), "{steps:?}");
    }

    use crate::testing::{Fixture, Must, link, page};
    use domain::links::link::{LinkChannel, LinkType};

    fn hash(n: u32) -> String {
        format!("{n:08x}{}", "0".repeat(56))
    }

    /// Stages `texts` as pieces of the source under `run` (piece n's hash made from n).
    async fn stage(
        fixture: &Fixture,
        tenant: &Tenant,
        source: &SourceId,
        run: &str,
        from: u32,
        texts: &[&str],
        embedder: &str,
    ) -> Vec<String> {
        let hashes: Vec<String> = (from..from + texts.len() as u32).map(hash).collect();
        let pieces: Vec<NewPiece<'_>> = hashes
            .iter()
            .zip(texts)
            .enumerate()
            .map(|(at, (hash, text))| NewPiece {
                id: chunk_id(source, hash),
                hash,
                record: "customers[0]",
                part: at,
                text,
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
                    .is_empty(),
                "its vector is another model's now"
            );
            assert_eq!(
                stored_among(&fixture.db, &acme, &source, &asked, "m2")
                    .await
                    .must()
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
    fn search_stays_within_the_business_and_the_sources_asked() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let ours = a_source(&fixture, &acme, "https://crm.example.com/a").await;
            let also_ours = a_source(&fixture, &acme, "https://crm.example.com/b").await;
            let theirs = a_source(&fixture, &globex, "https://crm.example.com/a").await;
            // The index is the shard's: a word half its pieces hold weighs nothing, whoever's they are.
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
}
