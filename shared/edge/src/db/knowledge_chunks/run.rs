//! What a run writes: which of a page's pieces the source holds live already (and whether their
//! vectors carry their subject's token), the live piece of the same content whose vector a piece
//! takes, the new pieces staged under the run, published at its end, and what the run did not see
//! found and deleted; and a source's pieces paged by their number, for its vectors' deletion.

use crate::db::Rows;
use crate::db::{self, Db, Read, Sql, Statement, json_arrays, knowledge_run_seen, number, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// A piece to store, with a vector of `embedder` in the store under [`chunk_id`](super::chunk_id), carrying its
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
    Ok(sql.scoped(db, tenant)?.all().await?.rows::<Gone>()?)
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
        .rows::<Row>()?;
    let last = rows.last().map_or(after, |row| row.seq);
    Ok((rows.into_iter().map(|row| row.id).collect(), last))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{a_source, hash, stage};
    use super::super::{counts, seen_key};
    use super::*;
    use crate::testing::{Fixture, Must};

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
}
