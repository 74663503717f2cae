//! `knowledge_run_seen`: what each page of a CRM link's run saw (the start of each piece's hash),
//! so that the run's end removes exactly the pieces that left the data without writing every
//! piece that stayed. Written with each page's pieces, read once at the run's end, and cleared
//! with the run.

use crate::db::{Db, Sql, Statement, number, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::tenant::Tenant;

/// The statement that records the pieces page `page` of slice `slice` of run `run` saw.
pub fn record(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    run: &str,
    slice: i64,
    page: usize,
    hashes: &[&str],
) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "INSERT INTO knowledge_run_seen (business_id, source_id, run_id, slice, page, hashes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (source_id, run_id, slice, page) DO UPDATE SET hashes = excluded.hashes",
        )
        .bind(&[
            text(source.as_str()),
            text(run),
            number(slice),
            number(page as i64),
            text(&serde_json::to_string(hashes)?),
        ])?)
}

/// SQL selecting every hash start the run `:run` of the business `:business`'s source
/// `:source` saw.
pub fn seen_sql() -> Sql {
    Sql::new(
        "SELECT s.value FROM knowledge_run_seen r, json_each(r.hashes) s \
         WHERE r.business_id = :business AND r.source_id = :source AND r.run_id = :run",
    )
}

/// The statement that forgets what the source's runs saw (a run ended, or started over).
pub fn clear(db: &Db, tenant: &Tenant, source: &SourceId) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "DELETE FROM knowledge_run_seen WHERE business_id = ?1 AND source_id = ?2",
        )
        .bind(&[text(source.as_str())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, link, page};
    use domain::links::link::{LinkChannel, LinkType};

    async fn seen(fixture: &Fixture, tenant: &Tenant, source: &SourceId, run: &str) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Row {
            value: String,
        }
        let rows = seen_sql()
            .bind("source", text(source.as_str()))
            .bind("run", text(run))
            .scoped(&fixture.db, tenant)
            .must()
            .all()
            .await
            .must()
            .results::<Row>()
            .must();
        let mut values: Vec<String> = rows.into_iter().map(|row| row.value).collect();
        values.sort();
        values
    }

    #[test]
    fn what_each_page_of_a_run_saw_is_kept_once_and_forgotten_with_the_run() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let id = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("A", "https://crm.example.com/a", LinkType::Api),
                    &[LinkChannel::Messenger],
                )
                .await;
            let write = |run: &'static str, slice: i64, page: usize, hashes: &'static [&'static str]| {
                let statement = record(&fixture.db, &acme, &id, run, slice, page, hashes).must();
                fixture.db.batch(vec![statement])
            };
            write("run-1", 0, 0, &["aaaa", "bbbb"]).await.must();
            write("run-1", 0, 0, &["cccc"]).await.must();
            write("run-1", 0, 1, &["dddd"]).await.must();
            write("run-1", 1, 0, &["eeee"]).await.must();
            write("run-0", 0, 0, &["ffff"]).await.must();
            assert_eq!(
                seen(&fixture, &acme, &id, "run-1").await,
                ["cccc", "dddd", "eeee"],
                "a page read again replaces what it saw"
            );
            assert!(
                seen(&fixture, &globex, &id, "run-1").await.is_empty(),
                "another business's"
            );
            fixture
                .db
                .batch(vec![clear(&fixture.db, &globex, &id).must()])
                .await
                .must();
            assert_eq!(fixture.rows("knowledge_run_seen", "page").len(), 4);
            fixture
                .db
                .batch(vec![clear(&fixture.db, &acme, &id).must()])
                .await
                .must();
            assert!(
                fixture.rows("knowledge_run_seen", "page").is_empty(),
                "every run of the source"
            );
        });
    }
}
