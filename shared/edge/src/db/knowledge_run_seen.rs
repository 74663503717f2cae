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
