//! Exporting one business page by page and restoring it where it does not exist
//! (`POST /admin/businesses/{id}/backup` and `/restore`; `domain::backup` owns the file's format
//! and the page budgets). Both read and write rows as a move does (`db::moves`), every table of
//! `MOVED_TABLES` in its order, so a backup holds what a move copies and nothing is written twice.
//!
//! Per invocation (1,000 D1 queries, 128 MB): an export page is one batch of 28 statements (the
//! first page's bounds), one read of at most 16 rows per query until 200 rows or 4 MB, and a
//! directory read: under 60 queries. A restore page is one directory read, a claim per channel
//! account, and one batch of one insert a row (at most 200): under 450 queries with a discard's
//! deletions in front of it.
//!
//! A restore writes nothing partial that could be taken for the business: each page is one batch
//! (whole or not at all); the first places the business held as a move holds it (its writes
//! answered 503, the sweeps leaving it alone: `Entry::restoring`); the last checks every table's
//! rows against the header's counts before it lets the business go. A restore that broke off is
//! discarded by the next one's first page.
//!
//! `export` writes the pages of a backup; `restore` checks a page and writes it where the
//! business does not exist (or discards a restore that broke off); `quarantine` switches off, in
//! each page's batch, what a restored business held that could act, and switches it back on when
//! the operator resumes it.

mod export;
mod quarantine;
mod restore;

pub use export::export_page;
pub use quarantine::resume;
pub use restore::{discard, restore_page};
