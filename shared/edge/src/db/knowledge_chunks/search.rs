//! The keyword search: BM25 over the live pieces a search may return (some sources, and within
//! them some subjects), narrowed inside the full-text query itself, with the business's own
//! statistics (how many of its pieces hold each word, their average length) so that nothing of
//! another business's changes its scores or order.

use crate::db::Rows;
use crate::db::{self, Db, Param, number, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::keyword::{self, tokens};
use domain::tenant::Tenant;
use serde::Deserialize;
use std::collections::HashMap;

/// Query words a keyword search uses at most.
const MAX_QUERY_WORDS: usize = 32;

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
        .rows::<Counted>()?;
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
        .rows::<Row>()?;
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

    use super::super::tests::{a_source, hash, sorted, stage, stage_of};
    use super::super::{by_ids, delete, publish, samples, stored_among};
    use crate::testing::{Fixture, Must};
    use domain::bot::subject::{GENERAL, token};
    use std::collections::HashSet;

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
